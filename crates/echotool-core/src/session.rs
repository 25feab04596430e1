//! The client side of the seesaw: send what the user types (or pipes), wait for its echo,
//! show it.
//!
//! Three ways to feed the server, each over a stream or datagrams:
//! - **lines**: one line at a time, waiting for each echo before reading the next (a terminal);
//! - **pipe**: everything on the input as fast as the server echoes it, then half-close and read
//!   the rest of the echo (a shell pipe); binary-safe;
//! - **repeat**: one message a fixed number of times (`--message`, `--count`).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use tracing::warn;

use crate::{BoxStream, Channel, DatagramSocket, Error, Result};

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
            echo_timeout: Some(Duration::from_secs(5)),
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
    /// Datagram echoes that matched nothing sent (altered or duplicated by the server).
    pub unexpected: u64,
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
            Feed::Pipe => stream_pipe(stream, input, &mut output, opts).await,
            _ => stream_turns(stream, Source::new(input, opts), &mut output, opts).await,
        },
        Channel::Datagram(socket) => {
            datagram_session(&*socket, Source::new(input, opts), &mut output, opts).await
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

const STREAM_HINT: &str = "is it an echo server? Raise --timeout if it is slow";

/// Lines or repeats over a stream: write one message, read exactly its length back, show it.
async fn stream_turns<R, W>(
    mut stream: BoxStream,
    mut source: Source<R>,
    output: &mut W,
    opts: &SessionOptions,
) -> Result<SessionReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let url = opts.url.as_str();
    let mut report = SessionReport::default();
    let mut echo = Vec::new();
    while let Some(message) = source.next().await? {
        stream
            .write_all(&message)
            .await
            .map_err(|e| peer_err(url, e))?;
        stream.flush().await.map_err(|e| peer_err(url, e))?;
        report.messages += 1;
        report.bytes_sent += message.len() as u64;
        echo.resize(message.len(), 0);
        let read = within(opts.echo_timeout, stream.read_exact(&mut echo)).await;
        match read {
            None => {
                return Err(no_echo(
                    url,
                    opts.echo_timeout.unwrap_or_default(),
                    STREAM_HINT,
                ));
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::Echo(format!(
                    "{url} closed the connection before echoing the whole message; is it an \
                     echo server?"
                )));
            }
            Some(r) => r.map_err(|e| peer_err(url, e))?,
        };
        report.bytes_received += echo.len() as u64;
        output.write_all(&echo).await.map_err(write_err)?;
        output.flush().await.map_err(write_err)?;
    }
    // Half-close and let the server close its side; anything else it sends is shown too.
    if stream.shutdown().await.is_ok() {
        let mut rest = Vec::new();
        if let Some(Ok(n)) = within(opts.echo_timeout, stream.read_to_end(&mut rest)).await {
            if n > 0 {
                report.bytes_received += n as u64;
                output.write_all(&rest).await.map_err(write_err)?;
                output.flush().await.map_err(write_err)?;
            }
        }
    }
    Ok(report)
}

/// Pipe mode over a stream: send everything while reading echoes, half-close at end of input,
/// read to the server's end of stream, and check the byte counts agree.
async fn stream_pipe<R, W>(
    stream: BoxStream,
    mut input: R,
    output: &mut W,
    opts: &SessionOptions,
) -> Result<SessionReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let url = opts.url.as_str();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let sent = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let upload = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("cannot read standard input", e))?;
            if n == 0 {
                break;
            }
            wr.write_all(&buf[..n])
                .await
                .map_err(|e| peer_err(url, e))?;
            wr.flush().await.map_err(|e| peer_err(url, e))?;
            sent.fetch_add(n as u64, Relaxed);
            writes.fetch_add(1, Relaxed);
        }
        wr.shutdown().await.map_err(|e| peer_err(url, e))?;
        Ok::<_, Error>(())
    };
    let download = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        loop {
            let n = match within(opts.echo_timeout, rd.read(&mut buf)).await {
                // Waiting with nothing outstanding is the input being slow, not the server.
                None if sent.load(Relaxed) <= received => continue,
                None => {
                    return Err(no_echo(
                        url,
                        opts.echo_timeout.unwrap_or_default(),
                        STREAM_HINT,
                    ));
                }
                Some(r) => r.map_err(|e| peer_err(url, e))?,
            };
            if n == 0 {
                return Ok(received);
            }
            received += n as u64;
            output.write_all(&buf[..n]).await.map_err(write_err)?;
            output.flush().await.map_err(write_err)?;
        }
    };
    let ((), received) = tokio::try_join!(upload, download)?;
    let sent = sent.load(Relaxed);
    if received != sent {
        return Err(Error::Echo(format!(
            "{url} echoed {received} of the {sent} bytes sent before closing the connection"
        )));
    }
    Ok(SessionReport {
        messages: writes.load(Relaxed),
        bytes_sent: sent,
        bytes_received: received,
        ..SessionReport::default()
    })
}

/// Most datagram bytes in flight at once. Linux's default receive buffer (212992 bytes) is
/// charged about twice the payload per datagram, so this leaves room for the echoes.
const IN_FLIGHT_BYTES: usize = 64 * 1024;

/// A datagram waiting for its echo.
struct InFlight {
    seq: u64,
    payload: Vec<u8>,
    echoed: bool,
    tries: u32,
    deadline: Instant,
}

/// Datagrams: one message per datagram, a window of them in flight, echoes matched to what was
/// sent and written out in the order sent; loss, reordering and strangers are reported.
async fn datagram_session<R, W>(
    socket: &dyn DatagramSocket,
    mut source: Source<R>,
    output: &mut W,
    opts: &SessionOptions,
) -> Result<SessionReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    const HINT: &str = "datagrams are unreliable, so it or its echo may have been lost; is a \
         server listening on that address? Try --retries 3 or a longer --timeout";
    let url = opts.url.as_str();
    let max = socket.max_payload();
    let pipe = opts.feed == Feed::Pipe;
    if pipe && opts.datagram_size > max {
        return Err(Error::TooLarge {
            proto: url.split("://").next().unwrap_or(url).to_string(),
            size: opts.datagram_size,
            max,
        });
    }
    // In flight at once: the window, but never more bytes than a default socket receive buffer
    // holds comfortably, or the echoes themselves would overflow it and be dropped.
    let window = if pipe {
        opts.window
            .clamp(1, (IN_FLIGHT_BYTES / opts.datagram_size.max(1)).max(1))
    } else {
        1
    };
    let mut highest_echoed = 0u64;
    let timeout = opts.echo_timeout.unwrap_or(Duration::from_secs(86_400));
    let mut report = SessionReport::default();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut input_done = false;
    let mut buf = vec![0u8; max.max(1)];
    loop {
        while !input_done && in_flight.len() < window {
            let Some(payload) = source.next().await? else {
                input_done = true;
                break;
            };
            if payload.len() > max {
                return Err(Error::TooLarge {
                    proto: url.split("://").next().unwrap_or(url).to_string(),
                    size: payload.len(),
                    max,
                });
            }
            socket.send(&payload).await.map_err(|e| peer_err(url, e))?;
            report.messages += 1;
            report.bytes_sent += payload.len() as u64;
            in_flight.push_back(InFlight {
                seq: report.messages,
                payload,
                echoed: false,
                tries: 0,
                deadline: Instant::now() + timeout,
            });
        }
        let Some(front) = in_flight.front() else {
            break;
        };
        match tokio::time::timeout_at(front.deadline, socket.recv(&mut buf)).await {
            Ok(received) => {
                let n = received.map_err(|e| peer_err(url, e))?;
                let data = &buf[..n];
                match in_flight
                    .iter()
                    .position(|d| !d.echoed && d.payload == data)
                {
                    Some(k) => {
                        // Overtaken, not lost: a later datagram's echo came first.
                        let seq = in_flight[k].seq;
                        if seq < highest_echoed {
                            report.reordered += 1;
                            warn!("datagram #{seq} was echoed after #{highest_echoed}: reordered");
                        }
                        highest_echoed = highest_echoed.max(seq);
                        in_flight[k].echoed = true;
                    }
                    None => {
                        report.unexpected += 1;
                        warn!(
                            bytes = n,
                            "an echo of {n} bytes matches no datagram in flight: the server \
                             altered or duplicated it"
                        );
                    }
                }
            }
            Err(_) => {
                let front = in_flight.front_mut().expect("checked above");
                if front.tries < opts.retries {
                    front.tries += 1;
                    front.deadline = Instant::now() + timeout;
                    socket
                        .send(&front.payload)
                        .await
                        .map_err(|e| peer_err(url, e))?;
                    continue;
                }
                if !pipe {
                    return Err(no_echo(url, timeout, HINT));
                }
                report.lost += 1;
                warn!(
                    "datagram #{} ({} bytes) was lost: no echo within {} after {} {}",
                    front.seq,
                    front.payload.len(),
                    crate::duration::display(timeout),
                    front.tries + 1,
                    if front.tries == 0 { "try" } else { "tries" }
                );
                in_flight.pop_front();
            }
        }
        while in_flight.front().is_some_and(|d| d.echoed) {
            let done = in_flight.pop_front().expect("checked by is_some_and");
            report.bytes_received += done.payload.len() as u64;
            output.write_all(&done.payload).await.map_err(write_err)?;
        }
        output.flush().await.map_err(write_err)?;
    }
    if report.lost > 0 || report.unexpected > 0 {
        return Err(Error::Echo(format!(
            "{} of {} datagrams to {url} were lost and {} echoes matched nothing sent; the output \
             has gaps (see the warnings above)",
            report.lost, report.messages, report.unexpected
        )));
    }
    Ok(report)
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
