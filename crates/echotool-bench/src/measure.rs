//! One measurement: one shape against one target, for the warm-up and the window, with every
//! connection's load in a task of its own.
//!
//! A measurement owns everything it needs, so that it runs as a task on the client's runtime:
//! with an emulated link, only that runtime's threads are inside the link's client side, and
//! every socket must be made there.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use echotool_core::client::default_echo_timeout;
use echotool_core::{Channel, ClientOptions, HostPort, Transport};
use tokio::task::JoinSet;

use crate::load::{BeforeFirstDial, Drive, Window, datagram_echo, setup, stream_echo};
use crate::tally::Tally;
use crate::{Scenario, Shape, Span};

/// Everything one measurement needs, owned.
pub(crate) struct Measurement {
    /// The transport dialed.
    pub transport: Arc<dyn Transport>,
    /// The server's address.
    pub addr: HostPort,
    /// How to dial it.
    pub client: ClientOptions,
    /// What to measure.
    pub shape: Shape,
    /// Set-up: dial resuming an earlier session.
    pub resume: bool,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// The echo timeout asked for, if any.
    pub echo_timeout: Option<Duration>,
    /// Called before the first connection that counts.
    pub before_first_dial: Option<BeforeFirstDial>,
    /// Do not start the warm-up before this wall-clock time (`--start-at`).
    pub not_before: Option<SystemTime>,
}

impl Measurement {
    /// Runs it: the main tally, and for set-up the time-to-first-echo tally too. The load
    /// runs in tasks of a [`JoinSet`], so abandoning the measurement (an interrupt) stops
    /// them all.
    pub(crate) async fn run(self) -> (Tally, Option<Tally>, Span) {
        let kind = self.transport.kind();
        let drive = Drive {
            size: self.shape.size,
            depth: self.shape.depth,
            rate: self.shape.rate.map(|r| r / self.shape.conns as f64),
            echo_timeout: self.echo_timeout.unwrap_or(default_echo_timeout(kind)),
            connect_timeout: self.client.connect_timeout,
        };
        match self.shape.scenario {
            Scenario::Setup => {
                let window = self.window().await;
                let (connected, first) = self.setups(drive, window).await;
                (connected, Some(first), window.span())
            }
            Scenario::Multistream => {
                let (tally, window) = self.streams(drive).await;
                (tally, None, window.span())
            }
            Scenario::Latency | Scenario::Throughput => {
                let (tally, window) = self.echoes(drive).await;
                (tally, None, window.span())
            }
        }
    }

    /// The warm-up and measured window, starting now, or at `not_before` if that is later.
    async fn window(&self) -> Window {
        if let Some(wait) = self
            .not_before
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
        {
            tokio::time::sleep(wait).await;
        }
        Window::after(self.warmup, self.duration)
    }

    /// Set-ups, one task per connection at a time.
    async fn setups(self, drive: Drive, window: Window) -> (Tally, Tally) {
        let mut client = self.client.clone();
        client.resume = self.resume;
        let mut tasks = JoinSet::new();
        for n in 0..self.shape.conns {
            let (transport, addr) = (self.transport.clone(), self.addr.clone());
            let aim = self.before_first_dial.clone().filter(|_| n == 0);
            tasks.spawn(setup(transport, addr, client.clone(), drive, window, aim));
        }
        let (mut connected, mut first) = (Tally::default(), Tally::default());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((c, f)) => {
                    connected.merge(&c);
                    first.merge(&f);
                }
                Err(join) => connected.error(&join),
            }
        }
        (connected, first)
    }

    /// Several independent streams per connection, `depth` of them, each with one message in
    /// flight: separate streams where the connection has them (QUIC), else all in flight on
    /// its one byte stream, where a loss holds back every message behind it.
    async fn streams(self, drive: Drive) -> (Tally, Window) {
        let mut total = Tally::default();
        if let Some(aim) = &self.before_first_dial {
            aim();
        }
        // Every stream opened first; the warm-up starts once they are all there.
        let mut streams = Vec::new();
        for _ in 0..self.shape.conns {
            let conn = match self.transport.dial(&self.addr, &self.client).await {
                Ok(conn) => conn,
                Err(err) => {
                    total.error(&err);
                    continue;
                }
            };
            let Channel::Stream(first) = conn.channel else {
                continue;
            };
            let Some(opener) = conn.streams else {
                streams.push((first, drive));
                continue;
            };
            let one = Drive { depth: 1, ..drive };
            streams.push((first, one));
            for opened in 1..self.shape.depth {
                // A server grants a fixed number of concurrent streams (an echotool QUIC
                // server 100): one more waits for credit that only a closed stream brings,
                // and these stay open, so the wait is bounded and explained.
                let wait = self.client.connect_timeout;
                match tokio::time::timeout(wait, opener.open()).await {
                    Ok(Ok(stream)) => streams.push((stream, one)),
                    Ok(Err(err)) => total.error(&err),
                    Err(_) => {
                        total.error(&format!(
                            "stream {} of {} could not be opened within {}: the server allows \
                             {opened} concurrent streams per connection (an echotool QUIC \
                             server allows 100); use --depth {opened} or less",
                            opened + 1,
                            self.shape.depth,
                            echotool_core::duration::display(wait)
                        ));
                        break;
                    }
                }
            }
        }
        let window = self.window().await;
        let mut tasks = JoinSet::new();
        for (stream, drive) in streams {
            tasks.spawn(stream_echo(stream, drive, window));
        }
        (collect(tasks, total).await, window)
    }

    /// Echoes over connections dialed first, one task each.
    async fn echoes(self, drive: Drive) -> (Tally, Window) {
        let mut total = Tally::default();
        if let Some(aim) = &self.before_first_dial {
            aim();
        }
        let mut channels = Vec::with_capacity(self.shape.conns);
        for _ in 0..self.shape.conns {
            match self.transport.dial(&self.addr, &self.client).await {
                Ok(conn) => channels.push(conn.channel),
                Err(err) => {
                    tracing::warn!(target = %self.addr, error = %err, "cannot connect");
                    total.error(&err);
                }
            }
        }
        let window = self.window().await;
        let mut tasks = JoinSet::new();
        for channel in channels {
            tasks.spawn(async move {
                match channel {
                    Channel::Stream(stream) => stream_echo(stream, drive, window).await,
                    Channel::Datagram(socket) => datagram_echo(socket, drive, window).await,
                }
            });
        }
        (collect(tasks, total).await, window)
    }
}

/// Waits for every connection's task and adds its tally to `total`.
async fn collect(mut tasks: JoinSet<Tally>, mut total: Tally) -> Tally {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(&tally),
            Err(join) => total.error(&join),
        }
    }
    total
}
