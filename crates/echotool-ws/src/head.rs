//! The HTTP/1.1 around a WebSocket: the request head a server reads before deciding between
//! the upgrade, the page and a refusal; the responses it writes; the client's upgrade request
//! and its check of the server's answer; and the `Sec-WebSocket-Accept` value both sides
//! compute (RFC 6455 §4).
//!
//! tokio-websockets would do the server's handshake itself, but answers anything that is not
//! an upgrade with a bare `400` the application never sees, so the page and the 4xx that say
//! what to do could not be served (benches/results/ws-crates.md). The heads are small: read
//! with httparse, at most [`MAX_HEAD`] bytes, under the caller's time limit.

use std::io;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request or response head read before giving up: a browser's upgrade request is
/// about 500 bytes, so this leaves room for cookies without letting a peer make us buffer
/// without end.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most header lines parsed in one head; browsers send about 15.
const MAX_HEADERS: usize = 64;

/// RFC 6455's fixed suffix of the accept key's SHA-1 input.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The tutorial's page, served on a plain `GET` of the listener's path.
pub const PAGE: &str = include_str!("page.html");

/// Reads one head, up to and including its blank line, at most [`MAX_HEAD`] bytes; returns it
/// and whatever came after it in the same reads (a response's body, or bytes a request should
/// not have sent yet).
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed { read: buf.len() });
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLong);
        }
    }
}

/// Why a head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// Reading the connection failed.
    #[error("{0}")]
    Io(io::Error),
    /// The peer closed before the blank line.
    #[error("the connection closed after {read} bytes, before the end of the HTTP head")]
    Closed {
        /// Bytes read until then.
        read: usize,
    },
    /// No blank line within [`MAX_HEAD`] bytes.
    #[error("the HTTP head is longer than {MAX_HEAD} bytes")]
    TooLong,
    /// Not HTTP/1.1 as RFC 9112 writes it.
    #[error("not an HTTP/1.1 head: {0}")]
    Malformed(String),
}

/// What a server decides on in a request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path of the request target, without any query.
    pub path: String,
    /// `Sec-WebSocket-Key` of a complete upgrade request (`Upgrade: websocket`,
    /// `Connection: upgrade`, version 13); `None` for a plain request.
    pub upgrade_key: Option<String>,
    /// An upgrade asked for a WebSocket version other than 13.
    pub wrong_version: Option<String>,
}

impl Request {
    /// Parses a complete head as [`read_head`] returns it.
    pub fn parse(head: &[u8]) -> Result<Request, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HeadError::Malformed("the head is incomplete".into()));
            }
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        }
        let header = |name: &str| header(req.headers, name);
        let has_token = |name: &str, token: &str| {
            header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        let asks_upgrade = has_token("upgrade", "websocket") && has_token("connection", "upgrade");
        let version = header("sec-websocket-version").map(str::trim);
        let key = header("sec-websocket-key").map(|k| k.trim().to_owned());
        let target = req.path.unwrap_or("/");
        Ok(Request {
            method: req.method.unwrap_or_default().to_owned(),
            path: target.split('?').next().unwrap_or("/").to_owned(),
            upgrade_key: key.filter(|_| asks_upgrade && version == Some("13")),
            wrong_version: version
                .filter(|v| asks_upgrade && *v != "13")
                .map(str::to_owned),
        })
    }
}

/// A header's value as text, by case-insensitive name.
fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// A response to a request that gets no WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain {
    /// Status code and reason: `404 Not Found`.
    pub status: &'static str,
    /// Extra header lines, each ending in CRLF.
    pub headers: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body: the page, or one line that says what to do.
    pub body: String,
}

impl Plain {
    /// The response as bytes, closing the connection after it.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Cache-Control: no-store\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.content_type,
            self.body.len(),
            self.headers,
            self.body
        )
        .into_bytes()
    }

    /// Whether this is a refusal (4xx) rather than the page.
    pub fn refused(&self) -> bool {
        self.status.starts_with('4')
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// What a server at `path` answers a request that is not a valid upgrade there: the page on a
/// plain `GET` of its path, else a 4xx whose body says what to do. `None` for an upgrade of
/// its path, which gets the 101.
pub fn answer(req: &Request, path: &str) -> Option<Plain> {
    let refuse = |status, headers, body: String| Plain {
        status,
        headers,
        content_type: TEXT,
        body: body + "\n",
    };
    if req.method != "GET" {
        return Some(refuse(
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            format!(
                "{} is not served here: this is a WebSocket echo server; use GET {path} \
                 with a WebSocket upgrade, or open it in a browser for the page",
                req.method
            ),
        ));
    }
    if req.path != path {
        return Some(refuse(
            "404 Not Found",
            "",
            format!(
                "nothing at {}: the WebSocket echo is at {path}; open that in a browser for the \
                 page, or connect a WebSocket client to it",
                req.path
            ),
        ));
    }
    if let Some(version) = &req.wrong_version {
        return Some(refuse(
            "426 Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
            format!("WebSocket version {version} is not spoken here: use version 13 (RFC 6455)"),
        ));
    }
    match req.upgrade_key {
        Some(_) => None,
        None => Some(Plain {
            status: "200 OK",
            headers: "",
            content_type: "text/html; charset=utf-8",
            body: PAGE.to_owned(),
        }),
    }
}

/// The 400 for a head that is not HTTP/1.1, saying what was wrong.
pub fn bad_request(err: &HeadError) -> Plain {
    Plain {
        status: "400 Bad Request",
        headers: "",
        content_type: TEXT,
        body: format!(
            "{err}: send an HTTP/1.1 GET with a WebSocket upgrade (RFC 6455), or open the \
             server's URL in a browser\n"
        ),
    }
}

/// The `101 Switching Protocols` answering `key`.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of SHA-1 of the key and the GUID
/// (RFC 6455 §4.2.2). SHA-1 from aws-lc-rs, which echotool builds for TLS anyway.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1.finish())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64, from the operating system
/// (getrandom, as tokio-websockets' masks). Not aws-lc-rs: its generator seeds itself on first
/// use, which cost a client half a second before its first upgrade.
pub fn new_key() -> Result<String, io::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("no random bytes for the WebSocket key: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The client's upgrade request for `path` on `host` (as it goes in the Host header).
pub fn upgrade_request(host: &str, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: echotool\r\n\r\n"
    )
    .into_bytes()
}

/// Checks a server's answer to the upgrade request with `key`: a 101 with the right accept
/// key, or an error in words that says what the server answered instead.
pub fn check_response(head: &[u8], body: &[u8], key: &str) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("its answer is incomplete".into()),
        Err(e) => {
            return Err(format!(
                "its answer is not HTTP/1.1 ({e}); is it a web server?"
            ));
        }
    }
    let code = res.code.unwrap_or_default();
    if code != 101 {
        let said = String::from_utf8_lossy(body);
        let said = said.lines().next().unwrap_or_default().trim();
        let reason = res.reason.unwrap_or_default();
        let said = match said.is_empty() {
            true => String::new(),
            false => format!(": {said}"),
        };
        return Err(format!(
            "the server answered HTTP {code} {reason}{said} (it did not switch to WebSocket; is \
             the path right, and is it a WebSocket server?)"
        ));
    }
    let expected = accept_key(key);
    match header(res.headers, "sec-websocket-accept").map(str::trim) {
        Some(accept) if accept == expected => Ok(()),
        Some(accept) => Err(format!(
            "the server switched to WebSocket with Sec-WebSocket-Accept {accept}, where RFC 6455 \
             makes it {expected}: a broken server or proxy"
        )),
        None => Err(
            "the server switched protocols without Sec-WebSocket-Accept: not a \
                     WebSocket server (RFC 6455 §4.1)"
                .into(),
        ),
    }
}

/// The length of a response body that follows a head, when it says so (a refusal's one line
/// is worth showing); capped, since it is only shown.
pub fn content_length(head: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    if !matches!(res.parse(head), Ok(httparse::Status::Complete(_))) {
        return 0;
    }
    header(res.headers, "content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        Request::parse(text.as_bytes()).expect("parses")
    }

    const UPGRADE: &str = "GET /echo?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn the_accept_key_is_rfc_6455s_own_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn an_upgrade_of_the_path_gets_the_101_and_anything_else_an_answer() {
        let up = request(UPGRADE);
        assert_eq!(up.path, "/echo");
        assert_eq!(up.upgrade_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(answer(&up, "/echo"), None);
        assert_eq!(answer(&up, "/").map(|p| p.status), Some("404 Not Found"));
        let page = answer(&request("GET /echo HTTP/1.1\r\n\r\n"), "/echo").expect("page");
        assert_eq!(page.status, "200 OK");
        assert!(page.body.contains("<html"));
        let post = answer(&request("POST /echo HTTP/1.1\r\n\r\n"), "/echo").expect("405");
        assert_eq!(
            (post.status, post.headers),
            ("405 Method Not Allowed", "Allow: GET\r\n")
        );
        let old = UPGRADE.replace("Version: 13", "Version: 8");
        let old = answer(&request(&old), "/echo").expect("426");
        assert_eq!(old.status, "426 Upgrade Required");
    }

    #[test]
    fn a_refusal_is_one_line_that_says_what_to_do() {
        let other = answer(&request("GET /x HTTP/1.1\r\n\r\n"), "/").expect("404");
        assert!(other.refused());
        assert_eq!(other.body.lines().count(), 1, "{}", other.body);
        assert!(
            other.body.contains("the WebSocket echo is at /"),
            "{}",
            other.body
        );
        let bytes = String::from_utf8(other.to_bytes()).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 404 Not Found\r\n"), "{bytes}");
        assert!(bytes.contains(&format!("Content-Length: {}\r\n", other.body.len())));
    }

    #[test]
    fn the_client_checks_the_status_and_the_accept_key() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: \
                  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_response(ok.as_bytes(), b"", key), Ok(()));
        let wrong = ok.replace("s3pP", "AAAA");
        assert!(
            check_response(wrong.as_bytes(), b"", key)
                .unwrap_err()
                .contains("broken server")
        );
        let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(content_length(head.as_bytes()), 12);
        let err = check_response(head.as_bytes(), b"nothing at /x\n", key).unwrap_err();
        assert!(
            err.starts_with("the server answered HTTP 404 Not Found: nothing at /x"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn heads_are_bounded_and_keep_what_follows() {
        let mut long = std::io::Cursor::new(vec![b'a'; MAX_HEAD + 10]);
        assert!(matches!(
            read_head(&mut long).await,
            Err(HeadError::TooLong)
        ));
        let mut cut = std::io::Cursor::new(b"GET / HT".to_vec());
        assert!(matches!(
            read_head(&mut cut).await,
            Err(HeadError::Closed { read: 8 })
        ));
        let mut fine = std::io::Cursor::new(UPGRADE.as_bytes().to_vec());
        let (head, rest) = read_head(&mut fine).await.unwrap();
        assert_eq!((&head[..], rest.len()), (UPGRADE.as_bytes(), 0));
        let mut answered = std::io::Cursor::new(b"HTTP/1.1 404 No\r\n\r\nbody".to_vec());
        let (_, body) = read_head(&mut answered).await.unwrap();
        assert_eq!(body, b"body");
        assert!(Request::parse(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
    }
}
