//! The client side of the seesaw: send what the user types (or pipes), wait for its echo,
//! show it.
//!
//! Three ways to feed the server, each over a stream or datagrams:
//! - **lines**: one line at a time, waiting for each echo before reading the next (a terminal);
//! - **pipe**: everything on the input as fast as the server echoes it, then half-close and read
//!   the rest of the echo (a shell pipe); binary-safe;
//! - **repeat**: one message a fixed number of times (`--message`, `--count`).
//!
//! Every echo is compared with what was sent, byte for byte: over a stream in `stream`,
//! over datagrams (with loss, duplicates, late echoes and strangers told apart) in
//! `datagram`.

mod datagram;
mod stream;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};

use crate::{Channel, Error, Result};

/// How long an echo may take over a stream unless told otherwise: long enough for a slow
/// network or a busy server.
pub const STREAM_ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a datagram's echo may take unless told otherwise: short, since a lost datagram
/// never comes and waiting longer only delays the verdict.
pub const DATAGRAM_ECHO_TIMEOUT: Duration = Duration::from_secs(1);

/// The default echo timeout for a transport of `kind`.
pub fn default_echo_timeout(kind: crate::Kind) -> Duration {
    match kind {
        crate::Kind::Stream => STREAM_ECHO_TIMEOUT,
        crate::Kind::Datagram => DATAGRAM_ECHO_TIMEOUT,
    }
}

/// How the input is turned into messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// One line (with its newline) per message, each echoed before the next is read.
    Lines,
    /// The input as it comes, many messages in flight; on a stream, half-close at the end.
    Pipe,
    /// This payload, `count` times, each echoed before the next is sent.
    Repeat {
        /// The message.
        payload: Vec<u8>,
        /// How many times to send it.
        count: u64,
    },
}

/// Settings of one client session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// The server as a URL, for messages.
    pub url: String,
    /// How the input becomes messages.
    pub feed: Feed,
    /// How long to wait for an echo; `None` waits forever.
    pub echo_timeout: Option<Duration>,
    /// Datagrams: how many times to resend one whose echo does not come in time.
    pub retries: u32,
    /// Datagrams in pipe mode: the largest datagram to cut the input into.
    pub datagram_size: usize,
    /// Datagrams in pipe mode: how many may be in flight at once.
    pub window: usize,
}

impl SessionOptions {
    /// Defaults for `url`: lines, 5 s echo timeout, no retries, 1024-byte datagrams.
    pub fn new(url: impl Into<String>, feed: Feed) -> Self {
        SessionOptions {
            url: url.into(),
            feed,
            echo_timeout: Some(STREAM_ECHO_TIMEOUT),
            retries: 0,
            datagram_size: 1024,
            window: 32,
        }
    }
}

/// What a session did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Messages sent (datagrams, lines, or writes in pipe mode).
    pub messages: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes of echo received.
    pub bytes_received: u64,
    /// Datagrams whose echo never came.
    pub lost: u64,
    /// Datagram echoes that came before an earlier one's.
    pub reordered: u64,
    /// Datagram replies that matched nothing sent (altered by the server).
    pub unexpected: u64,
    /// Datagram echoes that came twice.
    pub duplicated: u64,
    /// Datagram echoes that came after the datagram was counted lost.
    pub late: u64,
}

/// Runs one session over `channel`: reads `input`, writes every echo to `output`.
///
/// Fails when an echo does not come in time, the server closes early, or (datagrams, pipe
/// mode) anything was lost or altered; everything that did come back is written first.
pub async fn run_session<R, W>(
    channel: Channel,
    input: R,
    mut output: W,
    opts: &SessionOptions,
) -> Result<SessionReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    match channel {
        Channel::Stream(stream) => match opts.feed {
            Feed::Pipe => stream::pipe(stream, input, &mut output, opts).await,
            _ => stream::turns(stream, Source::new(input, opts), &mut output, opts).await,
        },
        Channel::Datagram(socket) => {
            datagram::session(&*socket, Source::new(input, opts), &mut output, opts).await
        }
    }
}

/// Where messages come from.
enum Source<R> {
    Lines(BufReader<R>),
    Chunks(R, usize),
    Repeat(Vec<u8>, u64),
}

impl<R: AsyncRead + Unpin> Source<R> {
    fn new(input: R, opts: &SessionOptions) -> Self {
        match &opts.feed {
            Feed::Lines => Source::Lines(BufReader::new(input)),
            Feed::Pipe => Source::Chunks(input, opts.datagram_size.max(1)),
            Feed::Repeat { payload, count } => Source::Repeat(payload.clone(), *count),
        }
    }

    /// The next message, or `None` at the end of the input.
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        let read_err = |e| Error::io("cannot read standard input", e);
        match self {
            Source::Lines(reader) => {
                let mut line = Vec::new();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(read_err)?;
                Ok((n > 0).then_some(line))
            }
            Source::Chunks(reader, size) => {
                let mut chunk = vec![0; *size];
                let n = reader.read(&mut chunk).await.map_err(read_err)?;
                chunk.truncate(n);
                Ok((n > 0).then_some(chunk))
            }
            Source::Repeat(payload, left) => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                Ok(Some(payload.clone()))
            }
        }
    }
}

fn write_err(e: io::Error) -> Error {
    Error::io("cannot write to standard output", e)
}

/// Turns an I/O error on the connection into a message about the server.
fn peer_err(url: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::Connect {
            url: url.to_string(),
            source: e,
        },
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Error::Echo(format!(
            "{url} closed the connection abruptly ({e}); is it an echo server, and is it at its \
             connection limit?"
        )),
        _ => Error::io(format!("talking to {url}"), e),
    }
}

fn no_echo(url: &str, after: Duration, hint: &str) -> Error {
    Error::Timeout {
        what: format!("no echo from {url}"),
        after,
        hint: hint.to_string(),
    }
}

/// Runs `fut` with an optional time limit; `None` when the limit passed.
async fn within<T>(
    limit: Option<Duration>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}
