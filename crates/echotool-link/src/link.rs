//! `Link`: the two sides, the forwarder between them, and the handles a caller needs: sides to
//! run in, counters to read, a spec to change between runs, a trace to aim at one flow.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::lateness::Lateness;
use crate::netns::Side;
use crate::shaper::DirectionStats;
use crate::spec::LinkSpec;

/// How to run a link beyond its spec.
pub struct LinkOptions {
    /// Write every packet that crossed or was dropped to this pcapng file.
    pub pcap: Option<PathBuf>,
    /// Write a one-line summary per packet here (see [`crate::trace`]).
    pub trace: Option<Box<dyn Write + Send>>,
    /// Seeds the random fates (loss, jitter, reorder, dup), so runs can be repeated exactly.
    pub seed: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            pcap: None,
            trace: None,
            seed: 0x5EED,
        }
    }
}

impl std::fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOptions")
            .field("pcap", &self.pcap)
            .field("trace", &self.trace.is_some())
            .field("seed", &self.seed)
            .finish()
    }
}

/// Counters of both directions since the link started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Client to server.
    pub up: DirectionStats,
    /// Server to client.
    pub down: DirectionStats,
    /// How late the forwarder wrote packets out against their schedule, both directions.
    pub lateness: Lateness,
    /// Time since the link started.
    pub elapsed: Duration,
}

/// A running link: a client side and a server side joined by the emulated path. Dropping it
/// stops the forwarder; the namespaces go when the last [`Side`] clone goes too.
pub struct Link {
    client: Side,
    server: Side,
    inner: os::Inner,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("spec", &self.spec().to_string())
            .field("client", &self.client)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Makes both sides and starts forwarding between them with `spec`.
    pub fn start(spec: &LinkSpec, options: LinkOptions) -> Result<Link> {
        let (client, server, inner) = os::start(spec, options)?;
        Ok(Link {
            client,
            server,
            inner,
        })
    }

    /// The side where clients run (their packets travel `up`).
    pub fn client(&self) -> &Side {
        &self.client
    }

    /// The side where servers run (their packets travel `down`).
    pub fn server(&self) -> &Side {
        &self.server
    }

    /// Changes what the link does from the next packet on (and the devices' MTUs), keeping
    /// the namespaces, sockets and connections: for sweeping several links in one run.
    pub fn reconfigure(&self, spec: &LinkSpec) -> Result<()> {
        os::reconfigure(&self.inner, spec)
    }

    /// The spec in force.
    pub fn spec(&self) -> LinkSpec {
        os::spec(&self.inner)
    }

    /// Counters of both directions.
    pub fn stats(&self) -> LinkStats {
        os::stats(&self.inner)
    }

    /// Narrows the trace to the first new flow that starts from now on (the client's first
    /// packet of a TCP connection or UDP flow not seen before), so a bench can trace one
    /// connection among many.
    pub fn trace_next_flow(&self) {
        os::trace_next_flow(&self.inner)
    }
}

#[cfg(target_os = "linux")]
mod os {
    //! The Linux link: namespaces, TUN devices, the forwarder thread.

    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Instant, SystemTime};

    use super::{LinkOptions, LinkStats};
    use crate::Recorder;
    use crate::error::Result;
    use crate::forward::{self, Forwarder, Shapers};
    use crate::netns::{self, DEVICE, Role, Side};
    use crate::pcap::Capture;
    use crate::shaper::Shaper;
    use crate::spec::LinkSpec;
    use crate::trace::{FlowFilter, Tracer};
    use crate::tun::Control;

    /// Everything a running link holds besides its sides.
    #[derive(Debug)]
    pub(super) struct Inner {
        /// The spec in force.
        spec: Mutex<LinkSpec>,
        /// Shared with the forwarder, which deals fates; read for counters.
        shapers: Arc<Mutex<Shapers>>,
        /// Configuration sockets inside the client and server sides, to change MTUs.
        controls: (Control, Control),
        /// Aims the trace at one flow.
        filter: Arc<FlowFilter>,
        /// When the link started; times in traces and captures count from here.
        start: Instant,
        /// Held for its `Drop`, which stops the thread and closes the devices.
        _forwarder: Forwarder,
    }

    pub(super) fn start(spec: &LinkSpec, options: LinkOptions) -> Result<(Side, Side, Inner)> {
        let (client, client_tun, client_control) =
            netns::create(Role::Client, spec.up.effective_mtu())?;
        let (server, server_tun, server_control) =
            netns::create(Role::Server, spec.down.effective_mtu())?;
        // Prove entering works now, so runtime hooks cannot fail later for want of privilege.
        drop(client.enter()?);
        drop(server.enter()?);
        let start = Instant::now();
        let filter = Arc::new(FlowFilter::default());
        let mut recorders: Vec<Box<dyn Recorder>> = Vec::new();
        if let Some(path) = &options.pcap {
            recorders.push(Box::new(Capture::create(path, SystemTime::now(), spec)?));
        }
        if let Some(out) = options.trace {
            recorders.push(Box::new(Tracer::new(out, Arc::clone(&filter))));
        }
        let shapers = Arc::new(Mutex::new(Shapers {
            up: Shaper::new(spec.up, options.seed),
            down: Shaper::new(spec.down, options.seed ^ 0xD0D0_D0D0_D0D0_D0D0),
            lateness: Default::default(),
        }));
        let forwarder = Forwarder::start(
            client_tun,
            server_tun,
            Arc::clone(&shapers),
            recorders,
            start,
        )?;
        let inner = Inner {
            spec: Mutex::new(spec.clone()),
            shapers,
            controls: (client_control, server_control),
            filter,
            start,
            _forwarder: forwarder,
        };
        Ok((client, server, inner))
    }

    pub(super) fn reconfigure(inner: &Inner, spec: &LinkSpec) -> Result<()> {
        inner.controls.0.set_mtu(DEVICE, spec.up.effective_mtu())?;
        inner
            .controls
            .1
            .set_mtu(DEVICE, spec.down.effective_mtu())?;
        let mut shapers = forward::lock(&inner.shapers);
        shapers.up.reconfigure(spec.up);
        shapers.down.reconfigure(spec.down);
        *inner.spec.lock().unwrap_or_else(PoisonError::into_inner) = spec.clone();
        Ok(())
    }

    pub(super) fn spec(inner: &Inner) -> LinkSpec {
        inner
            .spec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn stats(inner: &Inner) -> LinkStats {
        let shapers = forward::lock(&inner.shapers);
        LinkStats {
            up: shapers.up.stats(),
            down: shapers.down.stats(),
            lateness: shapers.lateness.clone(),
            elapsed: inner.start.elapsed(),
        }
    }

    pub(super) fn trace_next_flow(inner: &Inner) {
        inner.filter.arm();
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    //! Elsewhere a link cannot start; the other functions are never reached.

    use super::{LinkOptions, LinkStats};
    use crate::error::Result;
    use crate::netns::{Side, not_linux};
    use crate::spec::LinkSpec;

    /// No running link exists here.
    #[derive(Debug)]
    pub(super) enum Inner {}

    pub(super) fn start(_: &LinkSpec, _: LinkOptions) -> Result<(Side, Side, Inner)> {
        Err(not_linux())
    }

    pub(super) fn reconfigure(inner: &Inner, _: &LinkSpec) -> Result<()> {
        match *inner {}
    }

    pub(super) fn spec(inner: &Inner) -> LinkSpec {
        match *inner {}
    }

    pub(super) fn stats(inner: &Inner) -> LinkStats {
        match *inner {}
    }

    pub(super) fn trace_next_flow(inner: &Inner) {
        match *inner {}
    }
}
