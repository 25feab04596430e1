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

use crate::{BoxStream, Channel, DatagramSocket, Error, Result, mismatch};

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

/// Lines or repeats over a stream: write one message, read its echo back byte for byte, show it.
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
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(message) = source.next().await? {
        stream
            .write_all(&message)
            .await
            .map_err(|e| peer_err(url, e))?;
        stream.flush().await.map_err(|e| peer_err(url, e))?;
        report.messages += 1;
        report.bytes_sent += message.len() as u64;
        read_echo(&mut stream, &message, &mut buf, report.bytes_received, opts).await?;
        report.bytes_received += message.len() as u64;
        output.write_all(&message).await.map_err(write_err)?;
        output.flush().await.map_err(write_err)?;
    }
    // Half-close and let the server close its side; anything more it sends echoes nothing.
    if stream.shutdown().await.is_ok() {
        if let Some(Ok(n @ 1..)) = within(opts.echo_timeout, stream.read(&mut buf)).await {
            let mut extra = buf[..n].to_vec();
            read_a_little_more(&mut stream, &mut extra).await;
            return Err(Error::Echo(mismatch::not_an_echo(
                url,
                b"",
                &extra,
                report.bytes_received,
            )));
        }
    }
    Ok(report)
}

/// Reads the echo of `message`, comparing every byte as it arrives; the first byte that
/// differs ends the session with what came back instead (`offset`: bytes echoed before).
async fn read_echo<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    message: &[u8],
    buf: &mut [u8],
    offset: u64,
    opts: &SessionOptions,
) -> Result<()> {
    let url = opts.url.as_str();
    let mut got = 0;
    while got < message.len() {
        let want = (message.len() - got).min(buf.len());
        let n = match within(opts.echo_timeout, stream.read(&mut buf[..want])).await {
            None => {
                let after = opts.echo_timeout.unwrap_or_default();
                return Err(no_echo(url, after, STREAM_HINT));
            }
            Some(Ok(0)) => {
                return Err(Error::Echo(format!(
                    "{url} closed the connection before echoing the whole message; is it an \
                     echo server?"
                )));
            }
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(peer_err(url, e)),
        };
        if buf[..n] != message[got..got + n] {
            // Show the reply from the start of this message, with whatever else came with it.
            let mut reply = message[..got].to_vec();
            reply.extend_from_slice(&buf[..n]);
            read_a_little_more(stream, &mut reply).await;
            return Err(Error::Echo(mismatch::not_an_echo(
                url, message, &reply, offset,
            )));
        }
        got += n;
    }
    Ok(())
}

/// After a reply that is not an echo, collects a little more of it (what arrives within a
/// moment) so the error can show and recognise it.
async fn read_a_little_more<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, reply: &mut Vec<u8>) {
    let mut more = [0u8; 256];
    while reply.len() < 256 {
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut more)).await {
            Ok(Ok(n @ 1..)) => reply.extend_from_slice(&more[..n]),
            _ => break,
        }
    }
}

/// Pipe-mode bytes sent and not yet echoed, at most this many (in chunks of up to 64 KiB):
/// the input waits beyond it, so a server that reads and never echoes cannot make the client
/// hold the whole input in memory.
const PIPE_CHUNKS_IN_FLIGHT: usize = 64;

/// Pipe mode over a stream: send everything while reading echoes and checking every byte
/// against what was sent, half-close at end of input, read to the server's end of stream.
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
    // What was sent, in order, for the reader to check the echo against. A chunk is queued
    // before it is written, so an echo can never arrive before its bytes are known.
    let (sent_tx, sent_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PIPE_CHUNKS_IN_FLIGHT);
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
            if sent_tx.send(buf[..n].to_vec()).await.is_err() {
                // The reader stopped: it has the error to report.
                break;
            }
            wr.write_all(&buf[..n])
                .await
                .map_err(|e| peer_err(url, e))?;
            wr.flush().await.map_err(|e| peer_err(url, e))?;
            sent.fetch_add(n as u64, Relaxed);
            writes.fetch_add(1, Relaxed);
        }
        drop(sent_tx);
        wr.shutdown().await.map_err(|e| peer_err(url, e))?;
        Ok::<_, Error>(())
    };
    let download = async {
        let mut expected = Expected::new(sent_rx);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match within(opts.echo_timeout, rd.read(&mut buf)).await {
                // Waiting with nothing outstanding is the input being slow, not the server.
                None if !expected.outstanding() => continue,
                None => {
                    let after = opts.echo_timeout.unwrap_or_default();
                    return Err(no_echo(url, after, STREAM_HINT));
                }
                Some(r) => r.map_err(|e| peer_err(url, e))?,
            };
            if n == 0 {
                return expected.at_end(url, &sent);
            }
            let checked = expected.check(&buf[..n]);
            output
                .write_all(&buf[..checked.matching])
                .await
                .map_err(write_err)?;
            output.flush().await.map_err(write_err)?;
            if let Some(error) = checked.mismatch(url, &buf[..n], &mut rd).await {
                return Err(error);
            }
        }
    };
    let ((), received) = tokio::try_join!(upload, download)?;
    Ok(SessionReport {
        messages: writes.load(Relaxed),
        bytes_sent: sent.load(Relaxed),
        bytes_received: received,
        ..SessionReport::default()
    })
}

/// The bytes a pipe-mode echo must consist of, chunk by chunk as they were sent.
struct Expected {
    chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Bytes echoed and checked so far.
    echoed: u64,
}

/// The outcome of checking one read against what was sent.
struct Checked {
    /// How many bytes of the read were the right echo.
    matching: usize,
    /// The bytes that should have come instead of the rest (empty: more came than was sent).
    wanted: Vec<u8>,
    /// Where in the conversation the read began.
    offset: u64,
}

impl Expected {
    fn new(chunks: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Expected {
            chunks,
            current: Vec::new(),
            pos: 0,
            echoed: 0,
        }
    }

    /// Whether bytes were sent that have not come back yet.
    fn outstanding(&self) -> bool {
        self.pos < self.current.len() || !self.chunks.is_empty()
    }

    /// Compares `got` with the next bytes sent.
    fn check(&mut self, got: &[u8]) -> Checked {
        let offset = self.echoed;
        let mut i = 0;
        while i < got.len() {
            if self.pos == self.current.len() {
                match self.chunks.try_recv() {
                    Ok(chunk) => (self.current, self.pos) = (chunk, 0),
                    Err(_) => break,
                }
            }
            let k = (got.len() - i).min(self.current.len() - self.pos);
            let (have, want) = (&got[i..i + k], &self.current[self.pos..self.pos + k]);
            if let Some(d) = have.iter().zip(want).position(|(a, b)| a != b) {
                i += d;
                self.pos += d;
                break;
            }
            i += k;
            self.pos += k;
        }
        self.echoed += i as u64;
        let wanted = if i < got.len() {
            self.current[self.pos..].to_vec()
        } else {
            Vec::new()
        };
        Checked {
            matching: i,
            wanted,
            offset,
        }
    }

    /// The server ended its side: right if everything sent came back.
    fn at_end(&mut self, url: &str, sent: &AtomicU64) -> Result<u64> {
        while let Ok(chunk) = self.chunks.try_recv() {
            (self.current, self.pos) = (chunk, 0);
        }
        if self.pos < self.current.len() || self.echoed < sent.load(Relaxed) {
            return Err(Error::Echo(format!(
                "{url} echoed {} of the {} bytes sent before closing the connection",
                self.echoed,
                sent.load(Relaxed)
                    .max(self.echoed + (self.current.len() - self.pos) as u64)
            )));
        }
        Ok(self.echoed)
    }
}

impl Checked {
    /// The error for a read that was not all echo, if it was not.
    async fn mismatch<S: AsyncRead + Unpin + ?Sized>(
        &self,
        url: &str,
        got: &[u8],
        stream: &mut S,
    ) -> Option<Error> {
        if self.matching == got.len() {
            return None;
        }
        let mut reply = got[self.matching..].to_vec();
        read_a_little_more(stream, &mut reply).await;
        let at = self.offset + self.matching as u64;
        Some(Error::Echo(mismatch::not_an_echo(
            url,
            &self.wanted,
            &reply,
            at,
        )))
    }
}

/// Most datagram bytes in flight at once. Linux's default receive buffer (212992 bytes) is
/// charged about twice the payload per datagram, so this leaves room for the echoes.
const IN_FLIGHT_BYTES: usize = 64 * 1024;

/// Datagrams remembered after they were echoed or given up, so that a duplicate or a late echo
/// is told apart from a reply that matches nothing sent.
const REMEMBERED: usize = 256;

/// What a datagram session says when an echo does not come.
const DATAGRAM_HINT: &str = "datagrams are unreliable, so it or its echo may have been lost; \
     is a server listening on that address? Try --retries 3 or a longer --timeout";

/// A datagram waiting for its echo.
struct InFlight {
    seq: u64,
    payload: Vec<u8>,
    echoed: bool,
    tries: u32,
    deadline: Instant,
}

/// What a received datagram is.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// The echo of the in-flight datagram at this index.
    Echo(usize),
    /// Again the echo of a datagram already echoed.
    Duplicate,
    /// The echo of a datagram already counted lost, with its number.
    Late(u64),
    /// Nothing that was sent.
    Stranger,
}

/// The datagrams of one session: in flight, and recently finished.
#[derive(Default)]
struct Datagrams {
    in_flight: VecDeque<InFlight>,
    echoed: VecDeque<Vec<u8>>,
    lost: VecDeque<(u64, Vec<u8>)>,
    highest_echoed: u64,
    report: SessionReport,
}

impl Datagrams {
    /// Names a received datagram.
    fn classify(&self, data: &[u8]) -> Reply {
        if let Some(k) = self
            .in_flight
            .iter()
            .position(|d| !d.echoed && d.payload == data)
        {
            return Reply::Echo(k);
        }
        let again = self.in_flight.iter().any(|d| d.echoed && d.payload == data);
        if again || self.echoed.iter().any(|p| p == data) {
            return Reply::Duplicate;
        }
        match self.lost.iter().find(|(_, p)| p == data) {
            Some((seq, _)) => Reply::Late(*seq),
            None => Reply::Stranger,
        }
    }

    /// Takes in one received datagram. In lines mode a reply that is not an echo ends the
    /// session at once; in pipe mode it is counted and reported at the end.
    fn receive(&mut self, data: &[u8], pipe: bool, url: &str) -> Result<()> {
        match self.classify(data) {
            Reply::Echo(k) => {
                // Overtaken, not lost: a later datagram's echo came first.
                let seq = self.in_flight[k].seq;
                if seq < self.highest_echoed {
                    self.report.reordered += 1;
                    warn!(
                        "datagram #{seq} was echoed after #{}: reordered",
                        self.highest_echoed
                    );
                }
                self.highest_echoed = self.highest_echoed.max(seq);
                self.in_flight[k].echoed = true;
            }
            Reply::Duplicate => {
                self.report.duplicated += 1;
                warn!(
                    bytes = data.len(),
                    "an echo came twice: duplicated on the way"
                );
            }
            Reply::Late(seq) => {
                self.report.late += 1;
                warn!("the echo of datagram #{seq} came after it was counted lost: late, not lost");
            }
            Reply::Stranger => {
                let sent = self.in_flight.front().map(|d| d.payload.clone());
                let text = mismatch::not_an_echo(
                    url,
                    sent.as_deref().unwrap_or_default(),
                    data,
                    self.report.bytes_received,
                );
                if !pipe {
                    return Err(Error::Echo(text));
                }
                self.report.unexpected += 1;
                warn!("{text}");
            }
        }
        Ok(())
    }

    /// Records a datagram just sent.
    fn sent(&mut self, payload: Vec<u8>, timeout: Duration) {
        self.report.messages += 1;
        self.report.bytes_sent += payload.len() as u64;
        self.in_flight.push_back(InFlight {
            seq: self.report.messages,
            payload,
            echoed: false,
            tries: 0,
            deadline: Instant::now() + timeout,
        });
    }

    /// Gives up on the oldest datagram: it was lost.
    fn lose_front(&mut self, timeout: Duration) {
        let Some(front) = self.in_flight.pop_front() else {
            return;
        };
        self.report.lost += 1;
        warn!(
            "datagram #{} ({} bytes) was lost: no echo within {} after {} {}",
            front.seq,
            front.payload.len(),
            crate::duration::display(timeout),
            front.tries + 1,
            if front.tries == 0 { "try" } else { "tries" }
        );
        remember(&mut self.lost, (front.seq, front.payload));
    }

    /// Writes out, in the order sent, every datagram at the front whose echo has come.
    async fn write_done<W: AsyncWrite + Unpin>(&mut self, output: &mut W) -> Result<()> {
        while self.in_flight.front().is_some_and(|d| d.echoed) {
            let done = self.in_flight.pop_front().expect("checked by is_some_and");
            self.report.bytes_received += done.payload.len() as u64;
            output.write_all(&done.payload).await.map_err(write_err)?;
            remember(&mut self.echoed, done.payload);
        }
        output.flush().await.map_err(write_err)
    }

    /// The session's verdict: replies that were not echoes and lost datagrams fail it;
    /// duplicates and late echoes are told, since the output is complete despite them.
    fn verdict(self, url: &str, timeout: Duration) -> Result<SessionReport> {
        let r = self.report;
        if r.unexpected > 0 {
            return Err(Error::Echo(format!(
                "{} {} from {url} {} not an echo of anything sent (see the warnings above)",
                r.unexpected,
                plural(r.unexpected, "reply", "replies"),
                if r.unexpected == 1 { "was" } else { "were" }
            )));
        }
        if r.lost > 0 {
            let late = match r.late {
                0 => String::new(),
                n => format!(" ({n} of them came back later: late, not lost)"),
            };
            return Err(Error::Echo(format!(
                "{} of {} datagrams to {url} got no echo within {}{late}; the output has gaps \
                 where they were. {DATAGRAM_HINT}",
                r.lost,
                r.messages,
                crate::duration::display(timeout)
            )));
        }
        if r.duplicated > 0 {
            warn!(
                "{} {} came twice (duplicated by the network or the server); each was written once",
                r.duplicated,
                plural(r.duplicated, "echo", "echoes")
            );
        }
        Ok(r)
    }
}

/// Keeps the last [`REMEMBERED`] items.
fn remember<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() == REMEMBERED {
        list.pop_front();
    }
    list.push_back(item);
}

/// `one` or `many`, by count.
fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Datagrams: one message per datagram, a window of them in flight, echoes matched to what was
/// sent and written out in the order sent; loss, reordering, duplicates, late echoes and
/// strangers are told apart.
async fn datagram_session<R, W>(
    socket: &dyn DatagramSocket,
    mut source: Source<R>,
    output: &mut W,
    opts: &SessionOptions,
) -> Result<SessionReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin,
{
    let url = opts.url.as_str();
    let max = socket.max_payload();
    let pipe = opts.feed == Feed::Pipe;
    let too_large = |size| Error::TooLarge {
        proto: url.split("://").next().unwrap_or(url).to_string(),
        size,
        max,
    };
    if pipe && opts.datagram_size > max {
        return Err(too_large(opts.datagram_size));
    }
    // In flight at once: the window, but never more bytes than a default socket receive buffer
    // holds comfortably, or the echoes themselves would overflow it and be dropped.
    let window = match pipe {
        true => (opts.window).clamp(1, (IN_FLIGHT_BYTES / opts.datagram_size.max(1)).max(1)),
        false => 1,
    };
    let timeout = opts.echo_timeout.unwrap_or(Duration::from_secs(86_400));
    // The input is read beside the socket, so that echoes keep arriving and deadlines keep
    // passing while the input is slow.
    let (next_tx, mut next_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let input = async move {
        while let Some(payload) = source.next().await? {
            if next_tx.send(payload).await.is_err() {
                break;
            }
        }
        Ok::<_, Error>(())
    };
    let mut state = Datagrams::default();
    let mut input_done = false;
    // One byte more than any datagram, so a reply is never cut short unnoticed.
    let mut buf = vec![0u8; 65_536.max(max + 1)];
    let exchange = async {
        loop {
            let room = !input_done && state.in_flight.len() < window;
            let deadline = state.in_flight.front().map(|d| d.deadline);
            if !room && deadline.is_none() {
                return Ok(());
            }
            let waiting = deadline.is_some();
            let until = deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                received = socket.recv(&mut buf), if waiting => {
                    let n = received.map_err(|e| peer_err(url, e))?;
                    state.receive(&buf[..n], pipe, url)?;
                }
                () = tokio::time::sleep_until(until), if waiting => {
                    let front = state.in_flight.front_mut().expect("waiting on it");
                    if front.tries < opts.retries {
                        front.tries += 1;
                        front.deadline = Instant::now() + timeout;
                        socket.send(&front.payload).await.map_err(|e| peer_err(url, e))?;
                    } else if !pipe {
                        return Err(no_echo(url, timeout, DATAGRAM_HINT));
                    } else {
                        state.lose_front(timeout);
                    }
                }
                next = next_rx.recv(), if room => match next {
                    None => input_done = true,
                    Some(payload) => {
                        if payload.len() > max {
                            return Err(too_large(payload.len()));
                        }
                        socket.send(&payload).await.map_err(|e| peer_err(url, e))?;
                        state.sent(payload, timeout);
                    }
                },
            }
            state.write_done(output).await?;
        }
    };
    let ((), ()) = tokio::try_join!(input, exchange)?;
    state.verdict(url, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_replies_are_told_apart() {
        let mut state = Datagrams::default();
        state.sent(b"one".to_vec(), Duration::from_secs(1));
        state.sent(b"two".to_vec(), Duration::from_secs(1));
        assert_eq!(state.classify(b"two"), Reply::Echo(1));
        state.receive(b"two", true, "udp://x").unwrap();
        assert_eq!(
            state.classify(b"two"),
            Reply::Duplicate,
            "echoed, still in flight"
        );
        state.lose_front(Duration::from_secs(1));
        assert_eq!(state.classify(b"one"), Reply::Late(1));
        assert_eq!(state.classify(b"three"), Reply::Stranger);
        state.receive(b"three", true, "udp://x").unwrap();
        let err = state
            .verdict("udp://x", Duration::from_secs(1))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("1 reply from udp://x was not an echo"),
            "{err}"
        );
    }

    #[test]
    fn a_stranger_ends_a_lines_session_at_once() {
        let mut state = Datagrams::default();
        state.sent(b"hello\n".to_vec(), Duration::from_secs(1));
        let err = state.receive(b"HELLO\n", false, "udp://x").unwrap_err();
        assert!(err.to_string().contains("letters' case"), "{err}");
    }

    async fn expecting(chunks: &[&[u8]]) -> Expected {
        let (tx, rx) = tokio::sync::mpsc::channel(chunks.len().max(1));
        for chunk in chunks {
            tx.send(chunk.to_vec()).await.unwrap();
        }
        Expected::new(rx)
    }

    #[tokio::test]
    async fn pipe_echoes_are_checked_across_chunk_boundaries() {
        let mut expected = expecting(&[b"abc", b"def"]).await;
        assert_eq!(expected.check(b"ab").matching, 2);
        assert_eq!(expected.check(b"cd").matching, 2);
        assert!(expected.outstanding());
        let extra = expected.check(b"efmore");
        assert_eq!(
            (extra.matching, extra.wanted.len()),
            (2, 0),
            "more than was sent"
        );
        assert!(!expected.outstanding());

        let mut expected = expecting(&[b"abc", b"def"]).await;
        assert_eq!(expected.check(b"abcd").matching, 4);
        let bad = expected.check(b"eX");
        assert_eq!((bad.matching, bad.offset), (1, 4));
        assert_eq!(bad.wanted, b"f");
    }
}
