//! Where the bench's client and its embedded servers meet: loopback, or the two sides of an
//! emulated link (`--link`), swept spec by spec without rebuilding anything.
//!
//! With a link, the servers' runtime lives in the link's server side and the client's runtime
//! in its client side (every thread enters its side before anything else runs), and the
//! embedded servers listen on the server side's addresses, so every packet between them
//! crosses the link. Nothing of the link is routed through the host's own namespace.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use echotool_core::{Family, lock_ignoring_poison};
use echotool_link::{Link, LinkOptions, LinkSpec, LinkStats, NsGuard};
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::cpus::ThreadStart;

/// The path between the bench's client and its servers.
pub(crate) struct Network {
    link: Option<Arc<Link>>,
    /// Where the link writes its trace, for the bench to print row by row.
    trace: Option<TraceBuffer>,
    specs: Vec<LinkSpec>,
    /// Counters when the current spec began, to report each spec's share.
    since: Option<LinkStats>,
}

/// What the link did while one spec was in force, for the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkSummary {
    /// The spec, canonical (`delay=20ms,loss=1%`).
    pub spec: String,
    /// Its short label, as the table's link column shows it.
    pub label: String,
    /// Packets offered client to server, and how many were dropped (loss, queue, MTU).
    pub up_packets: u64,
    /// Packets dropped client to server.
    pub up_dropped: u64,
    /// Packets offered server to client.
    pub down_packets: u64,
    /// Packets dropped server to client.
    pub down_dropped: u64,
    /// How late the forwarder wrote packets out against their schedule over the whole run,
    /// in microseconds: its own timing error, where the link's accuracy ends.
    pub lateness_p50_us: f64,
    /// The same, 99th percentile.
    pub lateness_p99_us: f64,
    /// The same, the latest packet.
    pub lateness_max_us: f64,
}

/// The link's trace, kept until the bench prints it under the row it belongs to.
#[derive(Clone, Default)]
struct TraceBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for TraceBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        lock_ignoring_poison(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Network {
    /// Loopback when `specs` is empty; otherwise a link set to the first spec, capturing to
    /// `pcap` and tracing to standard error when asked.
    pub(crate) fn new(
        specs: &[LinkSpec],
        pcap: Option<PathBuf>,
        trace: bool,
    ) -> Result<Network, BenchError> {
        let Some(first) = specs.first() else {
            return Ok(Network {
                link: None,
                trace: None,
                specs: Vec::new(),
                since: None,
            });
        };
        let buffer = trace.then(TraceBuffer::default);
        let options = LinkOptions {
            pcap,
            trace: buffer
                .clone()
                .map(|b| Box::new(b) as Box<dyn std::io::Write + Send>),
            ..LinkOptions::default()
        };
        let link = Link::start(first, options).map_err(|e| BenchError::Link(e.to_string()))?;
        let since = Some(link.stats());
        Ok(Network {
            link: Some(Arc::new(link)),
            trace: buffer,
            specs: specs.to_vec(),
            since,
        })
    }

    /// What the servers' runtime threads do first: enter the server side.
    pub(crate) fn server_start(&self) -> Option<ThreadStart> {
        let link = self.link.as_ref()?;
        Some(Arc::new(link.server().runtime_hook()))
    }

    /// What the client's runtime threads do first: enter the client side.
    pub(crate) fn client_start(&self) -> Option<ThreadStart> {
        let link = self.link.as_ref()?;
        Some(Arc::new(link.client().runtime_hook()))
    }

    /// Where an embedded server of `family` listens: loopback, or the server side's address.
    pub(crate) fn server_host(&self, family: Family) -> String {
        match &self.link {
            None => family.loopback().to_string(),
            Some(link) => match family {
                Family::V6 => link.server().v6().to_string(),
                Family::Any | Family::V4 => link.server().v4().to_string(),
            },
        }
    }

    /// The paths to measure over, in order: loopback alone, or each link spec.
    pub(crate) fn paths(&self) -> Vec<Option<LinkSpec>> {
        match self.link {
            None => vec![None],
            Some(_) => self.specs.iter().cloned().map(Some).collect(),
        }
    }

    /// Puts `spec` in force (the first one already is).
    pub(crate) fn switch_to(&mut self, spec: &LinkSpec) -> Result<(), BenchError> {
        let Some(link) = &self.link else {
            return Ok(());
        };
        if link.spec() != *spec {
            link.reconfigure(spec)
                .map_err(|e| BenchError::Link(e.to_string()))?;
        }
        self.since = Some(link.stats());
        Ok(())
    }

    /// Something to call right before a connection, to aim the trace at it.
    pub(crate) fn aim_trace(&self) -> impl Fn() + Send + Sync + 'static {
        let link = self.link.clone();
        move || {
            if let Some(link) = &link {
                link.trace_next_flow();
            }
        }
    }

    /// The trace lines written since the last call.
    pub(crate) fn take_trace(&self) -> String {
        let Some(buffer) = &self.trace else {
            return String::new();
        };
        let lines = std::mem::take(&mut *lock_ignoring_poison(&buffer.0));
        String::from_utf8_lossy(&lines).into_owned()
    }

    /// Puts the calling thread inside the client side until the guard is dropped; nothing
    /// without a link.
    pub(crate) fn enter_client(&self) -> Result<Option<NsGuard>, BenchError> {
        self.link
            .as_ref()
            .map(|link| link.client().enter())
            .transpose()
            .map_err(|e| BenchError::Link(e.to_string()))
    }

    /// What the link did since the current spec was put in force.
    pub(crate) fn summary(&self) -> Option<LinkSummary> {
        let link = self.link.as_ref()?;
        let (now, since) = (link.stats(), self.since.clone().unwrap_or_default());
        let spec = link.spec();
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        Some(LinkSummary {
            spec: spec.to_string(),
            label: spec.label(),
            up_packets: now.up.packets_in - since.up.packets_in,
            up_dropped: now.up.dropped() - since.up.dropped(),
            down_packets: now.down.packets_in - since.down.packets_in,
            down_dropped: now.down.dropped() - since.down.dropped(),
            lateness_p50_us: us(now.lateness.quantile(0.5)),
            lateness_p99_us: us(now.lateness.quantile(0.99)),
            lateness_max_us: us(now.lateness.max()),
        })
    }
}
