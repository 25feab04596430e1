//! Connection set-up load: dial (with any handshake), one echo, orderly close, again and again.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use echotool_core::{Channel, ClientOptions, HostPort, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::{Drive, Window};
use crate::payload::Payload;
use crate::tally::Tally;

/// Called right before the first measured dial (aims the link's trace at it).
pub(crate) type BeforeFirstDial = Arc<dyn Fn() + Send + Sync>;

/// Connection set-up, one after another until the window closes: dial (with any handshake),
/// one echo, orderly close. Returns the set-up times and the times to the first echo.
/// `before_first` is called right before the first dial that is measured (after the one that
/// leaves a session to resume).
pub async fn setup(
    transport: Arc<dyn Transport>,
    addr: HostPort,
    client: ClientOptions,
    drive: Drive,
    window: Window,
    mut before_first: Option<BeforeFirstDial>,
) -> (Tally, Tally) {
    let payload = Payload::new(drive.size.max(crate::payload::SEQ_BYTES));
    let (mut connected, mut first_echo) = (Tally::default(), Tally::default());
    let dial = || tokio::time::timeout(drive.connect_timeout, transport.dial(&addr, &client));
    if client.resume {
        // Resumption needs a session to resume: one connection first, outside the window.
        if let Ok(Ok(conn)) = dial().await {
            let probe = payload.make(u64::MAX);
            let _ = tokio::time::timeout(drive.echo_timeout, one_echo(conn.channel, &probe)).await;
        }
        let_close_leave().await;
    }
    let mut seq = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            break;
        }
        let measured = window.contains(t0);
        if measured && let Some(aim) = before_first.take() {
            aim();
        }
        let conn = match dial().await {
            Ok(Ok(conn)) => conn,
            failed => {
                if measured {
                    match failed {
                        Ok(Err(err)) => connected.error(&err),
                        _ => connected.error(&no_connection(drive.connect_timeout)),
                    }
                }
                // A refusing target would otherwise be hammered in a tight loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let t1 = Instant::now();
        if measured && conn.resumed {
            connected.resumed += 1;
            first_echo.resumed += 1;
        }
        let msg = payload.make(seq);
        // The channel alone holds the connection, so that it closes when the echo is done: a
        // QUIC connection's opener for more streams would hold it past the next dial.
        drop(conn.streams);
        let echoed = tokio::time::timeout(drive.echo_timeout, one_echo(conn.channel, &msg)).await;
        match echoed {
            Ok(Ok((echo, _))) if !payload.matches(seq, &echo) => first_echo.mismatch(&msg, &echo),
            Ok(Ok((_, t2))) if measured => {
                connected.record(t1 - t0, 0);
                first_echo.record(t2 - t0, msg.len());
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) if measured => first_echo.error(&err),
            Err(_) if measured => first_echo.error(&format!(
                "no echo within {}",
                echotool_core::duration::display(drive.echo_timeout)
            )),
            _ => {}
        }
        let_close_leave().await;
        seq += 1;
    }
    (connected, first_echo)
}

/// Gives the runtime two turns, so that what closing a connection set in motion is done before
/// the next dial starts its clock.
///
/// TCP's FIN and TLS's close_notify leave inside the echo ([`one_echo`]); QUIC's
/// CONNECTION_CLOSE leaves from the connection's driver task, which used to run only after the
/// next dial had sent its Initial: the server then handled the old connection's close and
/// teardown in the middle of the new handshake, and QUIC's set-up rows paid for the previous
/// connection. Captured with tcpdump (3 300 connections, `0-rtt-shared`): when the loop held the
/// connection to its end and gave no turn, 3 260 closes left after the next Initial; holding it
/// only through the echo, with one turn 62 did, with two 6.
async fn let_close_leave() {
    for _ in 0..2 {
        tokio::task::yield_now().await;
    }
}

/// A dial that did not finish in time, in words.
fn no_connection(limit: Duration) -> String {
    format!(
        "no connection within {}",
        echotool_core::duration::display(limit)
    )
}

/// Sends one message and reads its echo (returning it and when it arrived), then closes in an
/// orderly way (a close_notify, a FIN) so the server does not count an abrupt end as an
/// error.
async fn one_echo(channel: Channel, msg: &[u8]) -> io::Result<(Vec<u8>, Instant)> {
    let mut echo = vec![0u8; msg.len()];
    let arrived;
    match channel {
        Channel::Stream(mut stream) => {
            stream.write_all(msg).await?;
            stream.read_exact(&mut echo).await?;
            arrived = Instant::now();
            super::close(stream).await?;
        }
        Channel::Datagram(socket) => {
            socket.send(msg).await?;
            let n = socket.recv(&mut echo).await?;
            arrived = Instant::now();
            echo.truncate(n);
        }
    }
    Ok((echo, arrived))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use echotool_core::{
        BoxStream, Connection, Peer, Result, Server, ServerOptions, StreamOpener, async_trait,
    };
    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

    use super::*;

    /// What happened, in order: "dial" when a dial starts, "close" when a close has left.
    type Log = Arc<Mutex<Vec<&'static str>>>;

    /// A multiplexed connection as QUIC's is: its streams and its opener hold it, and when the
    /// last of them goes, its driver task sends the close, after putting itself at the back of
    /// the run queue once (as quinn's driver does when a close wakes the application).
    struct Held(Log);

    impl Drop for Held {
        fn drop(&mut self) {
            let log = self.0.clone();
            let mut deferred = false;
            tokio::spawn(std::future::poll_fn(move |cx| {
                if !deferred {
                    deferred = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                log.lock().unwrap().push("close");
                Poll::Ready(())
            }));
        }
    }

    /// A stream of a [`Held`] connection.
    struct HeldStream {
        io: DuplexStream,
        _held: Arc<Held>,
    }

    impl AsyncRead for HeldStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for HeldStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.io).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// The opener of more streams on a [`Held`] connection.
    struct Opener {
        _held: Arc<Held>,
    }

    #[async_trait]
    impl StreamOpener for Opener {
        async fn open(&self) -> io::Result<BoxStream> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Dials [`Held`] connections to an echo task, `left` of them, then refuses.
    struct Multiplexed {
        log: Log,
        left: Mutex<usize>,
    }

    #[async_trait]
    impl Transport for Multiplexed {
        fn name(&self) -> &'static str {
            "held"
        }
        fn summary(&self) -> &'static str {
            "a stand-in for QUIC's connections"
        }
        async fn bind(&self, _: &HostPort, _: &ServerOptions) -> Result<Box<dyn Server>> {
            Err(echotool_core::Error::Invalid("not here".into()))
        }
        async fn dial(&self, _: &HostPort, _: &ClientOptions) -> Result<Connection> {
            {
                let mut left = self.left.lock().unwrap();
                if *left == 0 {
                    return Err(echotool_core::Error::Invalid("enough".into()));
                }
                *left -= 1;
            }
            self.log.lock().unwrap().push("dial");
            let (ours, mut theirs) = tokio::io::duplex(1024);
            tokio::spawn(async move {
                let (mut read, mut write) = tokio::io::split(&mut theirs);
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
            let held = Arc::new(Held(self.log.clone()));
            Ok(Connection {
                channel: Channel::Stream(Box::new(HeldStream {
                    io: ours,
                    _held: held.clone(),
                })),
                peer: Peer::Local(None),
                details: Vec::new(),
                resumed: false,
                streams: Some(Box::new(Opener { _held: held })),
            })
        }
    }

    #[tokio::test]
    async fn a_connection_has_closed_before_the_next_dial() {
        let log = Log::default();
        let transport = Arc::new(Multiplexed {
            log: log.clone(),
            left: Mutex::new(4),
        });
        let drive = Drive {
            size: 16,
            depth: 1,
            rate: None,
            echo_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        };
        let window = Window::after(Duration::ZERO, Duration::from_millis(50));
        let addr = HostPort::new("127.0.0.1", 5555);
        let (_, first_echo) = tokio::time::timeout(
            Duration::from_secs(10),
            setup(
                transport,
                addr,
                ClientOptions::default(),
                drive,
                window,
                None,
            ),
        )
        .await
        .expect("the window is 50 ms");
        assert_eq!(
            (first_echo.errors, first_echo.mismatches),
            (0, 0),
            "{:?}",
            first_echo.first_error
        );
        assert_eq!(
            log.lock().unwrap().as_slice(),
            ["dial", "close"].repeat(4).as_slice()
        );
    }
}
