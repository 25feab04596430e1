//! What the three candidate WebSocket echo servers share, so that they differ only in the crate
//! under test: the command line, the accept loop (one task per connection, `TCP_NODELAY`), and a
//! small HTTP/1.1 request-head reader for the servers whose crate cannot show a plain request
//! before the upgrade (tokio-tungstenite's callback runs only after its own upgrade checks
//! passed; tokio-websockets' `accept` answers anything else with a bare 400).
//!
//! Every server speaks the same tiny protocol: an upgrade on any path becomes an echo, each
//! message sent back with its own opcode; a plain `GET /` gets the tutorial's page
//! (`crates/echotool-ws/src/page.html`), any other plain request a `426 Upgrade Required`, a
//! method other than GET `405`. Messages above `--max-message` bytes close the connection with
//! status 1009.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The tutorial's page, served on a plain `GET /`: the same file echotool's ws transport will
/// serve, so that the browser test can run against each candidate too.
pub const PAGE: &str = include_str!("../../../crates/echotool-ws/src/page.html");

/// The largest request head any server reads before giving up: a browser's upgrade request is
/// about 500 bytes.
pub const MAX_HEAD: usize = 8 * 1024;

/// What every server is told on its command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The largest message (after reassembly) a server accepts; larger ones close with 1009.
    pub max_message: usize,
    /// Arguments the shared parser does not know, for the server's own flags.
    pub rest: Vec<String>,
}

/// Parses `[ADDR:PORT] [--max-message BYTES] [server flags...]`, exiting with a usage line on
/// nonsense.
pub fn options(name: &str) -> Options {
    let usage =
        format!("usage: {name} [ADDR:PORT] [--max-message BYTES]  (default 127.0.0.1:0, 1048576)");
    let mut opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_message: 1 << 20,
        rest: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max-message" {
            match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => opts.max_message = n,
                None => fail(&usage),
            }
        } else if arg.starts_with("--") {
            opts.rest.push(arg);
        } else {
            match arg.parse() {
                Ok(addr) => opts.listen = addr,
                Err(_) => fail(&usage),
            }
        }
    }
    opts
}

fn fail(usage: &str) -> ! {
    eprintln!("{usage}");
    std::process::exit(2)
}

/// Binds, prints `listening on ws://ADDR` to stderr, and runs `serve` in its own task for every
/// accepted connection; a failed connection is printed and never stops the loop.
pub async fn accept_loop<F, Fut>(opts: &Options, serve: F) -> io::Result<()>
where
    F: Fn(TcpStream, Options) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let listener = TcpListener::bind(opts.listen).await?;
    eprintln!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // EMFILE and friends: the 1000-connection idle test must not kill the server.
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let fut = serve(stream, opts.clone());
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                // Quiet by default: a benchmark load generator closing early is not news.
                if std::env::var_os("WS_VERBOSE").is_some() {
                    eprintln!("connection: {e}");
                }
            }
        });
    }
}

/// The parts of an HTTP/1.1 request head the servers decide on.
#[derive(Debug)]
pub struct Head {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, e.g. `/` or `/ws`.
    pub path: String,
    /// `Sec-WebSocket-Key`, present on an upgrade request.
    pub key: Option<String>,
    /// True when `Upgrade: websocket`, `Connection: upgrade` and version 13 are all there.
    pub upgrade: bool,
}

/// Reads one request head (up to the blank line, at most [`MAX_HEAD`] bytes) and parses it.
/// Bytes after the head are refused: a WebSocket client waits for the 101 before it sends.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Head, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the end of the request head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req
            .parse(&buf)
            .map_err(|e| format!("bad request head: {e}"))?
        {
            httparse::Status::Partial if buf.len() < MAX_HEAD => continue,
            httparse::Status::Partial => return Err("request head too long".into()),
            httparse::Status::Complete(len) if len != buf.len() => {
                return Err("bytes after the request head, before the upgrade".into());
            }
            httparse::Status::Complete(_) => return Ok(head_of(&req)),
        }
    }
}

fn head_of(req: &httparse::Request) -> Head {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let key = header("sec-websocket-key").map(str::to_owned);
    Head {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        upgrade: has_token("upgrade", "websocket")
            && has_token("connection", "upgrade")
            && header("sec-websocket-version") == Some("13")
            && key.is_some(),
        key,
    }
}

/// Answers a request that is not an upgrade: the page on `GET /`, else a 4xx that says what to
/// do. Returns after writing; the caller closes.
pub async fn answer_plain<S: AsyncWrite + Unpin>(stream: &mut S, head: &Head) -> io::Result<()> {
    let (status, kind, body) = plain_response(&head.method, &head.path);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Status line, content type and body for a plain (non-upgrade) request.
pub fn plain_response(method: &str, path: &str) -> (&'static str, &'static str, &'static str) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET", "/") => ("200 OK", "text/html; charset=utf-8", PAGE),
        ("GET", _) => (
            "426 Upgrade Required",
            TEXT,
            "this is a WebSocket echo server: connect with a WebSocket client, or open / in a browser\n",
        ),
        _ => (
            "405 Method Not Allowed",
            TEXT,
            "only GET: a WebSocket upgrade, or / for the page\n",
        ),
    }
}

/// The `101 Switching Protocols` response, given the `Sec-WebSocket-Accept` value.
pub fn switching_protocols(accept: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2), for the servers whose
/// crate does not export it.
pub fn accept_key(key: &str) -> String {
    use base64::Engine;
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.digest().bytes())
}

/// Runs a server's `main`: a multi-thread tokio runtime (as echotool's), the accept loop, exit
/// code 1 on a bind error.
pub fn run<F, Fut>(name: &str, serve: F)
where
    F: Fn(TcpStream, Options) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let opts = options(name);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = runtime.block_on(accept_loop(&opts, serve)) {
        eprintln!("error: {e}");
        std::process::exit(1)
    }
}
