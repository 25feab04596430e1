//! A client session over a byte stream: one message at a time (lines, repeat), or everything
//! at once (pipe), every echoed byte compared with what was sent.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{SessionOptions, SessionReport, Source, no_echo, peer_err, within, write_err};
use crate::{BoxStream, Error, Result, mismatch};

const STREAM_HINT: &str = "is it an echo server? Raise --timeout if it is slow";

/// Lines or repeats over a stream: write one message, read its echo back byte for byte, show it.
pub(super) async fn turns<R, W>(
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
pub(super) async fn pipe<R, W>(
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

#[cfg(test)]
mod tests {
    use super::*;

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
