//! A client session over datagrams: a window of them in flight, echoes matched to what was
//! sent and written out in the order sent; loss, reordering, duplicates, late echoes and
//! replies that match nothing sent are told apart.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::warn;

use super::{Feed, SessionOptions, SessionReport, Source, no_echo, peer_err, write_err};
use crate::{DatagramSocket, Error, Result, mismatch};

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

    /// The oldest datagram's time is up: it is sent again while retries remain; then it is
    /// lost (pipe mode), or the session fails (lines mode).
    async fn overdue(
        &mut self,
        socket: &dyn DatagramSocket,
        opts: &SessionOptions,
        timeout: Duration,
        pipe: bool,
    ) -> Result<()> {
        let url = opts.url.as_str();
        let Some(front) = self.in_flight.front_mut() else {
            return Ok(());
        };
        if front.tries < opts.retries {
            front.tries += 1;
            front.deadline = Instant::now() + timeout;
            socket
                .send(&front.payload)
                .await
                .map_err(|e| peer_err(url, e))?;
        } else if !pipe {
            return Err(no_echo(url, timeout, DATAGRAM_HINT));
        } else {
            self.lose_front(timeout);
        }
        Ok(())
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

/// Datagrams in flight at once: one at a time in lines mode; in pipe mode the window, but
/// never more bytes than a default socket receive buffer holds comfortably, or the echoes
/// themselves would overflow it and be dropped.
fn window(opts: &SessionOptions, pipe: bool) -> usize {
    match pipe {
        true => (opts.window).clamp(1, (IN_FLIGHT_BYTES / opts.datagram_size.max(1)).max(1)),
        false => 1,
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
pub(super) async fn session<R, W>(
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
    let window = window(opts, pipe);
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
                    state.overdue(socket, opts, timeout, pipe).await?;
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
}
