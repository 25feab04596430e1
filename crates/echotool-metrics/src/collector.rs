//! What a scrape reads: every listener's live counters, turned into Prometheus metric families
//! at the moment of the scrape, and whether the server is ready.
//!
//! The families are a table ([`FAMILIES`]) of a name, a help text, a type, the kind of listener
//! they apply to and the counter they read, so that adding one is one line. Counters whose
//! label values are not known in advance (failed handshakes by cause) appear once they count
//! something; those that are known (datagrams dropped by reason) appear from the start at 0.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use echotool_core::{EchoStats, Kind, StatsSnapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The versions that say which build answers a scrape: `echotool_build_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// echotool's own version.
    pub version: &'static str,
    /// The rustls version built in (`none` without TLS or QUIC).
    pub rustls: &'static str,
    /// The quinn version built in (`none` without QUIC).
    pub quinn: &'static str,
    /// The target triple.
    pub target: &'static str,
}

/// Where the server is in its life, as `/healthz` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Listeners are being bound: not ready yet (503).
    Starting = 0,
    /// Every listener is bound and serving (200).
    Ready = 1,
    /// Draining after a signal: take no new work here (503).
    Stopping = 2,
}

impl Phase {
    fn from_u8(n: u8) -> Phase {
        match n {
            1 => Phase::Ready,
            2 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }
}

/// The text formats a scrape can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, ending in `# EOF`; Prometheus asks for it first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for everything else (curl, older scrapers).
    Prometheus,
}

impl Format {
    /// The format to answer a request whose `Accept` header is `accept`: OpenMetrics when it is
    /// asked for, the Prometheus text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The metrics of one process: a registry whose collector reads the listeners' live counters,
/// and the phase `/healthz` reports. Cheap to clone; every clone is the same.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Holds the [`EchoCollector`] (and nothing else): prometheus-client encodes through it.
    registry: Registry,
    /// The same collector, to hand it the listeners once they are bound.
    collector: Arc<EchoCollector>,
    /// A [`Phase`] as a number, read by every `/healthz`.
    phase: AtomicU8,
}

impl Metrics {
    /// Metrics with no listeners yet, in [`Phase::Starting`]: a scrape shows the build alone.
    pub fn new(build: BuildInfo) -> Metrics {
        let collector = Arc::new(EchoCollector {
            build,
            listeners: OnceLock::new(),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                collector,
                phase: AtomicU8::new(Phase::Starting as u8),
            }),
        }
    }

    /// Every listener is bound and serving: from now on scrapes read these counters (URL and
    /// live counters, as [`echotool_core::Running::stats`] gives them) and `/healthz` answers
    /// 200. Only the first call's listeners count.
    pub fn ready<'a>(&self, listeners: impl IntoIterator<Item = (&'a str, &'a Arc<EchoStats>)>) {
        let listeners = listeners
            .into_iter()
            .map(|(url, stats)| Listener::new(url, stats.clone()))
            .collect();
        let _ = self.inner.collector.listeners.set(listeners);
        self.inner
            .phase
            .store(Phase::Ready as u8, Ordering::Release);
    }

    /// Draining has begun: `/healthz` answers 503 again, scrapes still read the counters.
    pub fn stopping(&self) {
        self.inner
            .phase
            .store(Phase::Stopping as u8, Ordering::Release);
    }

    /// Where the server is in its life.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.inner.phase.load(Ordering::Acquire))
    }

    /// Every metric, read now, in `format`.
    pub fn encode(&self, format: Format) -> Result<String, fmt::Error> {
        let mut text = String::new();
        match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?
            }
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(
                &mut text,
                &self.inner.registry,
            )?,
        }
        Ok(text)
    }
}

/// One listener as the metrics label it.
#[derive(Debug)]
struct Listener {
    /// Its URL with the real port: the `listener` label.
    url: String,
    /// Its URL's scheme (`tcp`, `udp`, `tls`, ...): the `protocol` label.
    protocol: String,
    /// Its live counters.
    stats: Arc<EchoStats>,
}

impl Listener {
    fn new(url: &str, stats: Arc<EchoStats>) -> Listener {
        let protocol = url.split_once("://").map_or("", |(scheme, _)| scheme);
        Listener {
            url: url.to_string(),
            protocol: protocol.to_string(),
            stats,
        }
    }

    /// The labels every family of this listener carries.
    fn labels(&self) -> [(&'static str, &str); 2] {
        [("listener", &self.url), ("protocol", &self.protocol)]
    }
}

/// Reads one number from a listener's counters.
type Read = fn(&StatsSnapshot) -> u64;

/// A family of one number per listener, read from its counters.
struct Family {
    /// The name without `_total`, which prometheus-client adds to counters.
    name: &'static str,
    help: &'static str,
    metric_type: MetricType,
    /// Only listeners of this kind have it; `None` for every listener.
    of: Option<Kind>,
    value: Read,
}

/// The families with one series per listener, in the order a scrape lists them.
const FAMILIES: [Family; 7] = [
    Family {
        name: "echotool_connections_open",
        help: "Connections open now.",
        metric_type: MetricType::Gauge,
        of: Some(Kind::Stream),
        value: |s| s.active,
    },
    Family {
        name: "echotool_connections_accepted",
        help: "Connections accepted.",
        metric_type: MetricType::Counter,
        of: Some(Kind::Stream),
        value: |s| s.connections,
    },
    Family {
        name: "echotool_connections_refused",
        help: "Connections refused at the connection limit (--max-conns with --on-limit refuse).",
        metric_type: MetricType::Counter,
        of: Some(Kind::Stream),
        value: |s| s.refused,
    },
    Family {
        name: "echotool_messages",
        help: "Messages echoed: datagrams sent back, or read-then-write rounds on streams.",
        metric_type: MetricType::Counter,
        of: None,
        value: |s| s.messages,
    },
    Family {
        name: "echotool_received_bytes",
        help: "Bytes received, dropped datagrams included.",
        metric_type: MetricType::Counter,
        of: None,
        value: |s| s.bytes_in,
    },
    Family {
        name: "echotool_sent_bytes",
        help: "Bytes sent back.",
        metric_type: MetricType::Counter,
        of: None,
        value: |s| s.bytes_out,
    },
    Family {
        name: "echotool_errors",
        help: "Connections (or datagrams) that ended in an error after any handshake: resets, \
               stream errors, failed sends.",
        metric_type: MetricType::Counter,
        of: None,
        value: |s| s.errors,
    },
];

/// The reasons a datagram is dropped on purpose, as the `reason` label says them.
const DROP_REASONS: [(&str, Read); 4] = [
    ("reflection", |s| s.dropped_reflection),
    ("rate_limit", |s| s.dropped_rate_limit),
    ("unnamed", |s| s.dropped_unnamed),
    ("stalled", |s| s.dropped_stalled),
];

/// Reads every listener's counters on each scrape.
#[derive(Debug)]
struct EchoCollector {
    build: BuildInfo,
    /// Set once, when every listener is bound.
    listeners: OnceLock<Vec<Listener>>,
}

impl Collector for EchoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // One snapshot per listener, so that every family of a scrape reads the same moment.
        let snapshots: Vec<(&Listener, StatsSnapshot)> = self
            .listeners
            .get()
            .map(|all| all.iter().map(|l| (l, l.stats.snapshot())).collect())
            .unwrap_or_default();
        for family in &FAMILIES {
            encode_family(&mut encoder, family, &snapshots)?;
        }
        encode_failed_handshakes(&mut encoder, &snapshots)?;
        encode_dropped(&mut encoder, &snapshots)?;
        encode_tasks(&mut encoder)?;
        self.encode_build(&mut encoder)
    }
}

impl EchoCollector {
    /// `echotool_build_info{version, rustls, quinn, target} 1`.
    fn encode_build(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let b = &self.build;
        let labels = [
            ("version", b.version),
            ("rustls", b.rustls),
            ("quinn", b.quinn),
            ("target", b.target),
        ];
        encoder
            .encode_descriptor(
                "echotool_build",
                "The build answering: echotool's version, the rustls and quinn versions in it, \
                 and its target.",
                None,
                MetricType::Info,
            )?
            .encode_info(&labels)
    }
}

/// One series of `family` per listener it applies to.
fn encode_family(
    encoder: &mut DescriptorEncoder,
    family: &Family,
    snapshots: &[(&Listener, StatsSnapshot)],
) -> Result<(), fmt::Error> {
    let mut metric =
        encoder.encode_descriptor(family.name, family.help, None, family.metric_type)?;
    for (listener, snapshot) in snapshots {
        if family.of.is_some_and(|kind| kind != snapshot.kind) {
            continue;
        }
        let value = (family.value)(snapshot);
        let labels = listener.labels();
        let series = metric.encode_family(&labels)?;
        match family.metric_type {
            MetricType::Gauge => ConstGauge::new(value).encode(series)?,
            _ => ConstCounter::new(value).encode(series)?,
        }
    }
    Ok(())
}

/// `echotool_handshakes_failed_total{listener, protocol, cause}`, for the causes seen so far.
fn encode_failed_handshakes(
    encoder: &mut DescriptorEncoder,
    snapshots: &[(&Listener, StatsSnapshot)],
) -> Result<(), fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "echotool_handshakes_failed",
        "TLS and QUIC handshakes that failed, by cause (not TLS, untrusted certificate, timed \
         out, ...).",
        None,
        MetricType::Counter,
    )?;
    for (listener, snapshot) in snapshots {
        for &(cause, n) in &snapshot.failed_handshakes {
            let [l, p] = listener.labels();
            let labels = [l, p, ("cause", cause)];
            ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// `echotool_tokio_tasks_alive`: the tasks alive now on the runtime that answers the scrape,
/// which is the one every listener runs on. A task per connection, so a count that keeps
/// rising while connections do not is a leak; the soak test (`benches/soak.sh`) watches it.
/// Absent when the scrape runs outside a tokio runtime (unit tests).
fn encode_tasks(encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Ok(());
    };
    let alive = runtime.metrics().num_alive_tasks();
    let metric = encoder.encode_descriptor(
        "echotool_tokio_tasks_alive",
        "Tokio tasks alive now in the server's runtime: one per connection and listener, plus a \
         few of the server's own.",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(u64::try_from(alive).unwrap_or(u64::MAX)).encode(metric)
}

/// `echotool_datagrams_dropped_total{listener, protocol, reason}`, every reason of every
/// datagram listener.
fn encode_dropped(
    encoder: &mut DescriptorEncoder,
    snapshots: &[(&Listener, StatsSnapshot)],
) -> Result<(), fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "echotool_datagrams_dropped",
        "Datagrams dropped on purpose, by reason: from the port of an echo-like service \
         (reflection), over the per-source rate limit (rate_limit), from a socket with no \
         address to answer (unnamed), or echoes a client's full socket did not take (stalled).",
        None,
        MetricType::Counter,
    )?;
    for (listener, snapshot) in snapshots {
        if snapshot.kind != Kind::Datagram {
            continue;
        }
        for (reason, value) in DROP_REASONS {
            let [l, p] = listener.labels();
            let labels = [l, p, ("reason", reason)];
            ConstCounter::new(value(snapshot)).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    fn build() -> BuildInfo {
        BuildInfo {
            version: "0.1.0",
            rustls: "0.23.31",
            quinn: "0.11.8",
            target: "x86_64-unknown-linux-gnu",
        }
    }

    /// A stream listener and a datagram listener with some of everything counted.
    fn listeners() -> Vec<(String, Arc<EchoStats>)> {
        let tls = Arc::new(EchoStats::new(Kind::Stream));
        let open = tls.open_connection();
        drop(tls.open_connection());
        tls.record_echo(5);
        tls.record_echo(7);
        tls.record_failed_handshake("not TLS");
        tls.record_failed_handshake("not TLS");
        tls.record_failed_handshake("timed out");
        tls.refused.fetch_add(3, Relaxed);
        std::mem::forget(open); // one connection stays open
        let udp = Arc::new(EchoStats::new(Kind::Datagram));
        for _ in 0..4 {
            udp.record_received(10);
        }
        udp.record_sent(10);
        udp.dropped_reflection.fetch_add(1, Relaxed);
        udp.dropped_rate_limit.fetch_add(2, Relaxed);
        vec![
            ("tls://127.0.0.1:5556".into(), tls),
            ("udp://[::1]:5555".into(), udp),
        ]
    }

    fn ready_metrics() -> Metrics {
        let metrics = Metrics::new(build());
        let listeners = listeners();
        metrics.ready(listeners.iter().map(|(url, stats)| (url.as_str(), stats)));
        metrics
    }

    /// The sample lines (no comments) of an exposition.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn a_snapshot_encodes_as_prometheus_text() {
        let text = ready_metrics().encode(Format::Prometheus).unwrap();
        let tls = r#"listener="tls://127.0.0.1:5556",protocol="tls""#;
        let udp = r#"listener="udp://[::1]:5555",protocol="udp""#;
        let want = [
            format!("echotool_connections_open{{{tls}}} 1"),
            format!("echotool_connections_accepted_total{{{tls}}} 2"),
            format!("echotool_connections_refused_total{{{tls}}} 3"),
            format!("echotool_messages_total{{{tls}}} 2"),
            format!("echotool_messages_total{{{udp}}} 1"),
            format!("echotool_received_bytes_total{{{tls}}} 12"),
            format!("echotool_received_bytes_total{{{udp}}} 40"),
            format!("echotool_sent_bytes_total{{{tls}}} 12"),
            format!("echotool_sent_bytes_total{{{udp}}} 10"),
            format!("echotool_errors_total{{{tls}}} 0"),
            format!("echotool_errors_total{{{udp}}} 0"),
            format!(r#"echotool_handshakes_failed_total{{{tls},cause="not TLS"}} 2"#),
            format!(r#"echotool_handshakes_failed_total{{{tls},cause="timed out"}} 1"#),
            format!(r#"echotool_datagrams_dropped_total{{{udp},reason="reflection"}} 1"#),
            format!(r#"echotool_datagrams_dropped_total{{{udp},reason="rate_limit"}} 2"#),
            format!(r#"echotool_datagrams_dropped_total{{{udp},reason="unnamed"}} 0"#),
            format!(r#"echotool_datagrams_dropped_total{{{udp},reason="stalled"}} 0"#),
            r#"echotool_build_info{version="0.1.0",rustls="0.23.31",quinn="0.11.8",target="x86_64-unknown-linux-gnu"} 1"#.to_string(),
        ];
        assert_eq!(samples(&text), want, "{text}");
        assert!(
            text.contains("# TYPE echotool_messages_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE echotool_connections_open gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn openmetrics_ends_in_eof_and_types_the_family_without_its_suffix() {
        let text = ready_metrics().encode(Format::OpenMetrics).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("# TYPE echotool_messages counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE echotool_build info\n"), "{text}");
        assert!(
            text.contains(
                r#"echotool_messages_total{listener="udp://[::1]:5555",protocol="udp"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn counters_are_read_at_scrape_time() {
        let metrics = Metrics::new(build());
        let listeners = listeners();
        metrics.ready(listeners.iter().map(|(url, stats)| (url.as_str(), stats)));
        let line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with(r#"echotool_messages_total{listener="tls"#))
                .map(str::to_string)
        };
        let before = line(&metrics.encode(Format::Prometheus).unwrap());
        listeners[0].1.record_echo(1);
        let after = line(&metrics.encode(Format::Prometheus).unwrap());
        assert!(before.unwrap().ends_with(" 2"));
        assert!(after.unwrap().ends_with(" 3"));
    }

    #[test]
    fn before_ready_a_scrape_shows_the_build_alone() {
        let text = Metrics::new(build()).encode(Format::Prometheus).unwrap();
        let samples = samples(&text);
        assert_eq!(samples.len(), 1, "{text}");
        assert!(samples[0].starts_with("echotool_build_info{"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new(build());
        let stats = Arc::new(EchoStats::new(Kind::Stream));
        stats.record_failed_handshake("said \"no\"\\");
        let url = "tls://h:1".to_string();
        metrics.ready([(url.as_str(), &stats)]);
        let text = metrics.encode(Format::Prometheus).unwrap();
        assert!(text.contains(r#"cause="said \"no\"\\"} 1"#), "{text}");
    }

    #[test]
    fn the_phase_goes_from_starting_to_ready_to_stopping() {
        let metrics = Metrics::new(build());
        assert_eq!(metrics.phase(), Phase::Starting);
        metrics.ready([]);
        assert_eq!(metrics.clone().phase(), Phase::Ready);
        metrics.stopping();
        assert_eq!(metrics.phase(), Phase::Stopping);
    }

    #[test]
    fn openmetrics_is_answered_only_when_asked_for() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert!(
            Format::Prometheus
                .content_type()
                .starts_with("text/plain; version=0.0.4")
        );
    }

    #[tokio::test]
    async fn a_scrape_in_a_runtime_counts_its_tasks() {
        let (stop, parked) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = parked.await;
        });
        let text = ready_metrics().encode(Format::Prometheus).unwrap();
        let alive = samples(&text)
            .into_iter()
            .find_map(|l| l.strip_prefix("echotool_tokio_tasks_alive "))
            .and_then(|n| n.parse::<u64>().ok());
        assert!(alive.is_some_and(|n| n >= 1), "{text}");
        drop(stop);
        task.await.unwrap();
    }
}
