//! What a benchmark run measures, and how.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use echotool_core::{ClientOptions, Endpoint};
use serde::{Deserialize, Serialize};

use echotool_link::LinkSpec;

use crate::{BenchError, Interrupt};

/// A kind of measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// One connection, small messages, one in flight: the round-trip time.
    Latency,
    /// Several connections, large messages, several in flight: how much gets through.
    Throughput,
    /// Connect (and handshake), one echo, close, as fast as possible.
    Setup,
    /// Several independent echo streams over one connection: separate streams where the
    /// transport has them (QUIC), messages in flight on the one byte stream otherwise (TCP,
    /// TLS). Under loss it shows head-of-line blocking.
    Multistream,
}

impl Scenario {
    /// The scenarios a default run measures, in order.
    pub const ALL: [Scenario; 3] = [Scenario::Latency, Scenario::Throughput, Scenario::Setup];

    /// Every scenario there is, also those measured only when asked for.
    pub const EVERY: [Scenario; 4] = [
        Scenario::Latency,
        Scenario::Throughput,
        Scenario::Setup,
        Scenario::Multistream,
    ];

    /// Connections, message size and depth when the command line does not say.
    pub fn defaults(self) -> (usize, usize, usize) {
        match self {
            Scenario::Latency => (1, 64, 1),
            Scenario::Throughput => (4, 16 * 1024, 2),
            Scenario::Setup => (1, 64, 1),
            Scenario::Multistream => (1, 64, 8),
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Throughput => "throughput",
            Scenario::Setup => "setup",
            Scenario::Multistream => "multistream",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Self, BenchError> {
        match s {
            "latency" => Ok(Scenario::Latency),
            "throughput" => Ok(Scenario::Throughput),
            "setup" => Ok(Scenario::Setup),
            "multistream" => Ok(Scenario::Multistream),
            _ => Err(BenchError::Invalid(format!(
                "'{s}' is not a scenario: choose latency, throughput, setup or multistream"
            ))),
        }
    }
}

/// Everything that shapes a benchmark run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Protocols to measure, by registry name; empty measures the registry's
    /// [`echotool_core::Registry::compared`]. Ignored with `targets`.
    pub protocols: Vec<String>,
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// Only these set-up variants, by name (`resumed`, `0-rtt-shared`); empty measures every
    /// variant of each protocol. A protocol without variants (TCP) is measured as usual.
    pub variants: Vec<String>,
    /// Connections (sockets for datagrams); `None` uses each scenario's default.
    pub conns: Option<usize>,
    /// Message sizes to sweep; empty uses each scenario's default.
    pub sizes: Vec<usize>,
    /// Messages in flight per connection (closed loop); `None` uses the scenario's default.
    pub depth: Option<usize>,
    /// Measured time per run.
    pub duration: Duration,
    /// Unmeasured time before each run.
    pub warmup: Duration,
    /// Repetitions of each measurement; the report gives the median and the spread.
    pub runs: usize,
    /// Open loop: messages per second in total, sent on schedule whatever the server does;
    /// latency counts from the scheduled time.
    pub rate: Option<f64>,
    /// Measure these external echo servers, side by side, instead of starting embedded ones.
    pub targets: Vec<Endpoint>,
    /// Start the first warm-up at this wall-clock time, and every later one on a schedule
    /// from it ([`BenchOptions::slot`]), so that agents on several hosts measure together.
    pub start_at: Option<SystemTime>,
    /// How clients dial (trust for a secure target, timeouts).
    pub client: ClientOptions,
    /// How long an echo may take, from when its message left, before it counts as lost
    /// (datagrams) or fails its connection (streams); `None` uses each kind's default
    /// ([`echotool_core::client::default_echo_timeout`]).
    pub echo_timeout: Option<Duration>,
    /// Pin the embedded servers and the client to separate CPUs.
    pub pin_cpus: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Stops the run early (Ctrl-C); what finished is still reported.
    pub interrupt: Interrupt,
    /// Emulated links to measure over, one after the other (`--link`); empty: loopback.
    pub links: Vec<LinkSpec>,
    /// Write every packet that crossed the link to this pcapng file.
    pub pcap: Option<PathBuf>,
    /// Print the first connection of every row as a timeline of its packets, on stderr.
    pub trace: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            protocols: Vec::new(),
            scenarios: Scenario::ALL.to_vec(),
            variants: Vec::new(),
            conns: None,
            sizes: Vec::new(),
            depth: None,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            runs: 1,
            rate: None,
            targets: Vec::new(),
            start_at: None,
            client: ClientOptions::default(),
            echo_timeout: None,
            pin_cpus: true,
            progress: false,
            interrupt: Interrupt::new(),
            links: Vec::new(),
            pcap: None,
            trace: false,
        }
    }
}

/// The shape of one measurement: a scenario with its connections, size, depth and rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// The scenario.
    pub scenario: Scenario,
    /// Connections (sockets) at once.
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Messages in flight per connection (closed loop).
    pub depth: usize,
    /// Open-loop rate in messages per second, in total.
    pub rate: Option<f64>,
}

impl BenchOptions {
    /// Every shape this run measures per protocol, in order.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut shapes = Vec::new();
        for &scenario in &self.scenarios {
            let (conns, size, depth) = scenario.defaults();
            let sizes = if self.sizes.is_empty() {
                vec![size]
            } else {
                self.sizes.clone()
            };
            for size in sizes {
                shapes.push(Shape {
                    scenario,
                    conns: self.conns.unwrap_or(conns).max(1),
                    size,
                    depth: self.depth.unwrap_or(depth).max(1),
                    rate: if scenario == Scenario::Setup {
                        None
                    } else {
                        self.rate
                    },
                });
            }
        }
        shapes
    }

    /// What the options do not do, said out loud: flags that apply to none of the scenarios
    /// asked for.
    pub fn notices(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.depth.is_some() && self.rate.is_some() {
            notes.push(
                "--depth does nothing with --rate: an open loop sends on schedule, however many \
                 messages are in flight"
                    .to_string(),
            );
        } else if self.depth.is_some() && self.scenarios == [Scenario::Setup] {
            notes
                .push("--depth does nothing for setup, which sends one echo per connection".into());
        }
        if self.rate.is_some() && self.scenarios.contains(&Scenario::Setup) {
            notes.push(
                "--rate paces the latency and throughput scenarios; setup dials back to back \
                 as fast as it can, whatever the rate"
                    .to_string(),
            );
        }
        notes
    }

    /// Checks values that would make the run meaningless.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.runs == 0 {
            return Err(BenchError::Invalid("--runs must be at least 1".into()));
        }
        if self.duration.is_zero() {
            return Err(BenchError::Invalid("--duration must be more than 0".into()));
        }
        if self.sizes.contains(&0) {
            return Err(BenchError::Invalid("--size must be at least 1 byte".into()));
        }
        if let Some(rate) = self.rate {
            check_rate(rate)?;
        }
        if self.scenarios.is_empty() {
            return Err(BenchError::Invalid("no scenario to run".into()));
        }
        if !self.variants.is_empty() && !self.scenarios.contains(&Scenario::Setup) {
            return Err(BenchError::Invalid(
                "--variant picks among the set-up scenario's variants: add --scenario setup".into(),
            ));
        }
        if !self.links.is_empty() && !self.targets.is_empty() {
            return Err(BenchError::Invalid(
                "--link puts an emulated path between the client and the embedded servers; a \
                 --target is outside it: drop one of them"
                    .into(),
            ));
        }
        if self.links.is_empty() && (self.pcap.is_some() || self.trace) {
            let flag = if self.trace { "--trace" } else { "--pcap" };
            return Err(BenchError::Invalid(format!(
                "{flag} shows the packets that cross an emulated link: add --link (e.g. --link \
                 delay=10ms, or --link none for no impairment)"
            )));
        }
        if let Some(at) = self.start_at {
            check_start_at(at, SystemTime::now())?;
        }
        Ok(())
    }

    /// With `start_at`, when the warm-up of the `n`th measurement (from 0, in the order the
    /// run takes them) starts: every [`BenchOptions::period`] from `start_at`, the same for
    /// every agent given the same flags.
    pub fn slot(&self, n: usize) -> Option<SystemTime> {
        let period = self.period();
        self.start_at
            .map(|at| at + period.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The time between two measurements' starts under `start_at`: the warm-up, the window and
    /// [`START_GAP`] for the one to drain and the next to connect.
    pub fn period(&self) -> Duration {
        self.warmup + self.duration + START_GAP
    }
}

/// Parses `--rate`: messages per second in total, a positive number (`2000`, `0.5`, `1e4`).
pub fn parse_rate(text: &str) -> Result<f64, BenchError> {
    let rate: f64 = text.trim().parse().map_err(|_| {
        BenchError::Invalid(format!(
            "'{text}' is not a rate: give messages per second, e.g. 1000 or 0.5"
        ))
    })?;
    check_rate(rate)?;
    Ok(rate)
}

/// A rate the open loop can pace.
fn check_rate(rate: f64) -> Result<(), BenchError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(BenchError::Invalid(format!(
            "--rate {rate} is not a positive number of messages per second"
        )))
    }
}

/// The time between two messages of one connection that sends `rate` messages per second
/// (its share of `--rate`), on the open loop's schedule: at most
/// [`echotool_core::duration::MAX`], which a rate so low means one message and then none.
pub fn send_interval(rate: f64) -> Duration {
    Duration::try_from_secs_f64(1.0 / rate)
        .ok()
        .and_then(echotool_core::duration::within_max)
        .unwrap_or(echotool_core::duration::MAX)
}

/// Under `--start-at`, the time between one measurement's window closing and the next one's
/// warm-up: the first drains its last echoes and the second connects in it.
pub const START_GAP: Duration = Duration::from_secs(3);

/// How far in the past a `--start-at` may be and still be taken as "now": the time to start
/// a process after computing the time.
const START_LATE: Duration = Duration::from_secs(1);

/// How far ahead a `--start-at` may be: beyond, it is more likely a mistake (a date in the
/// wrong year, milliseconds for seconds) than a plan.
const START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// A `--start-at` must be now, or soon.
fn check_start_at(at: SystemTime, now: SystemTime) -> Result<(), BenchError> {
    let shown = crate::clock::rfc3339(at);
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AHEAD => Err(BenchError::Invalid(format!(
            "--start-at {shown} is {} h from now: more than a day ahead is likely a mistake \
             (Unix seconds, not milliseconds); give a time within the next 24 h",
            ahead.as_secs() / 3600
        ))),
        Ok(_) => Ok(()),
        Err(past) if past.duration() > START_LATE => Err(BenchError::Invalid(format!(
            "--start-at {shown} was {} ago: this agent would not measure together with the \
             others; give every agent a time far enough ahead for all of them to start (e.g. \
             --start-at $(( $(date +%s) + 30 )))",
            echotool_core::duration::display(Duration::from_secs(past.duration().as_secs().max(1)))
        ))),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the units fuzz target (minimised: `--rate .000000000000002`): shared among
    /// 100 000 connections, the interval between two messages of one was beyond what a
    /// Duration holds, and the open loop panicked making it.
    #[test]
    fn a_rate_too_low_to_pace_sends_once_instead_of_panicking() {
        let rate = parse_rate(".000000000000002").unwrap();
        assert_eq!(
            send_interval(rate / 100_000.0),
            echotool_core::duration::MAX
        );
        assert_eq!(
            send_interval(f64::MIN_POSITIVE),
            echotool_core::duration::MAX
        );
        assert_eq!(send_interval(1000.0), Duration::from_millis(1));
        for bad in ["0", "-5", "inf", "NaN", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_must_be_soon_and_slots_follow_it() {
        let now = SystemTime::now();
        assert!(check_start_at(now + Duration::from_secs(30), now).is_ok());
        assert!(check_start_at(now - Duration::from_millis(500), now).is_ok());
        let past = check_start_at(now - Duration::from_secs(12), now)
            .unwrap_err()
            .to_string();
        assert!(past.contains("was 12 s ago"), "{past}");
        let far = check_start_at(now + Duration::from_secs(3 * 24 * 3600), now)
            .unwrap_err()
            .to_string();
        assert!(far.contains("is 72 h from now"), "{far}");

        let opts = BenchOptions {
            start_at: Some(now),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            ..BenchOptions::default()
        };
        assert_eq!(opts.slot(0), Some(now));
        assert_eq!(
            opts.slot(2),
            Some(now + 2 * (Duration::from_secs(6) + START_GAP))
        );
        assert_eq!(BenchOptions::default().slot(3), None);
    }
}
