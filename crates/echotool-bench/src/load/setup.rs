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
    mut before_first: Option<crate::measure::BeforeFirstDial>,
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
        seq += 1;
    }
    (connected, first_echo)
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
