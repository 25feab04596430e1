//! What a link does to packets, as a small value parsed from text such as
//! `delay=20ms,loss=1%,rate=50mbit` or `4g,loss=2%`, and printed back the same way.
//!
//! The grammar, the units and the named profiles (with the sources of their figures) are
//! documented in the crate docs; this module is their single implementation. A spec is two
//! [`Impairments`], one per direction (`up` = client to server, `down` = server to client); a
//! key without a prefix sets both.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{LinkError, Result};

/// A probability in parts per million, so specs compare and print exactly (`0.1%` is 1000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    /// Never.
    pub const ZERO: Percent = Percent(0);
    /// One million parts per million: always.
    pub const PPM_ALL: u32 = 1_000_000;

    /// A probability from parts per million (clamped to 100 %).
    pub fn from_ppm(ppm: u32) -> Self {
        Percent(ppm.min(Self::PPM_ALL))
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// The probability as a fraction in 0..=1.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / f64::from(Self::PPM_ALL)
    }

    /// Whether this never happens.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 4 decimals of a percent is one part per million: print them, then trim the zeros.
        let text = format!("{}.{:04}", self.0 / 10_000, self.0 % 10_000);
        write!(f, "{}%", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// What one direction of the link does to its packets. The default does nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Impairments {
    /// One-way propagation delay added to every packet.
    pub delay: Duration,
    /// Each packet's delay varies uniformly within `delay ± jitter` (never below zero), without
    /// reordering packets.
    pub jitter: Duration,
    /// Chance that a packet is dropped on entry (Bernoulli, independent per packet).
    pub loss: Percent,
    /// Serialisation rate in bits per second of IP packet bytes; `None` is unlimited.
    pub rate: Option<u64>,
    /// Drop-tail limit in bytes of the queue in front of the serializer; `None` is unbounded.
    pub queue: Option<u64>,
    /// Chance that a packet is held back by [`REORDER_HOLD`] so later packets overtake it.
    pub reorder: Percent,
    /// Chance that a packet is delivered twice.
    pub dup: Percent,
    /// Largest IP packet that crosses; larger ones are dropped and the sending TUN device gets
    /// this MTU so the kernel segments to fit. `None` is [`DEFAULT_MTU`].
    pub mtu: Option<u32>,
}

/// How long a packet chosen by `reorder` is held back beyond its normal delivery time.
pub const REORDER_HOLD: Duration = Duration::from_millis(1);

/// The MTU of the TUN devices when a spec sets none: Ethernet's.
pub const DEFAULT_MTU: u32 = 1500;

/// The smallest MTU accepted: IPv6 needs 1280 bytes, and the link carries IPv6.
pub const MIN_MTU: u32 = 1280;

/// The largest MTU accepted: the largest IP packet without jumbograms.
pub const MAX_MTU: u32 = 65_535;

impl Impairments {
    /// Whether this direction passes packets untouched.
    pub fn is_none(&self) -> bool {
        *self == Impairments::default()
    }

    /// The MTU this direction's sending device gets.
    pub fn effective_mtu(&self) -> u32 {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }
}

/// A link: what each direction does to packets, and the profile it started from, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkSpec {
    /// Client to server.
    pub up: Impairments,
    /// Server to client.
    pub down: Impairments,
    /// The named profile the spec started from (`4g` in `4g,loss=2%`), for labels.
    profile: Option<&'static str>,
}

/// A named profile: its figures as a spec, and where they come from.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// The name typed in a spec.
    pub name: &'static str,
    /// The figures, in the spec grammar.
    pub spec: &'static str,
    /// What the figures model and where they come from.
    pub source: &'static str,
}

/// The named profiles. The crate docs repeat them in a table; a test keeps the two in step.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "none",
        spec: "",
        source: "no impairment: the two namespaces joined directly (the link's own cost only)",
    },
    Profile {
        name: "loopback",
        spec: "",
        source: "same as none",
    },
    Profile {
        name: "lan",
        spec: "delay=100us,rate=1gbit,queue=1500KB",
        source: "switched gigabit Ethernet (IEEE 802.3ab): 0.2 ms round trip, a 1000-packet \
                 queue like Linux's default txqueuelen",
    },
    Profile {
        name: "wifi",
        spec: "delay=3ms,jitter=2ms,loss=0.1%,rate=100mbit,queue=256KB",
        source: "a home 802.11ac network: a few ms round trip with ms-scale variance, as measured \
                 on operational WiFi by Sui et al., 'Characterizing and Improving WiFi Latency \
                 in Large-Scale Operational Networks', MobiSys 2016",
    },
    Profile {
        name: "4g",
        spec: "delay=25ms,jitter=5ms,loss=0.1%,down:rate=30mbit,up:rate=10mbit,queue=512KB",
        source: "LTE: about 50 ms round trip and 30/10 Mbit/s down/up, the medians reported by \
                 Opensignal's 'State of Mobile Network Experience' reports; deep base-station \
                 buffers (bufferbloat)",
    },
    Profile {
        name: "intercontinental",
        spec: "delay=80ms,loss=0.1%,rate=100mbit,queue=2MB",
        source: "a trans-Pacific path: 160 ms round trip, the bound in Verizon's published IP \
                 latency guarantees for Trans-Pacific routes (Trans-Atlantic is 90 ms)",
    },
    Profile {
        name: "satellite",
        spec: "delay=300ms,jitter=10ms,loss=0.5%,down:rate=25mbit,up:rate=3mbit,queue=1MB",
        source: "geostationary consumer service: about 600 ms round trip (physics alone gives \
                 477 ms for 4 x 35786 km) and 25/3 Mbit/s plans, as measured by the FCC's \
                 'Measuring Broadband America' reports",
    },
];

/// Finds a named profile.
pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// Which directions a key applies to.
#[derive(Clone, Copy)]
enum Target {
    Both,
    Up,
    Down,
}

impl LinkSpec {
    /// No impairment in either direction.
    pub fn none() -> Self {
        LinkSpec::default()
    }

    /// The same impairments both ways.
    pub fn symmetric(both: Impairments) -> Self {
        LinkSpec {
            up: both,
            down: both,
            profile: None,
        }
    }

    /// Whether neither direction impairs anything.
    pub fn is_none(&self) -> bool {
        self.up.is_none() && self.down.is_none()
    }

    /// The profile the spec started from, if any.
    pub fn profile(&self) -> Option<&'static str> {
        self.profile
    }

    /// Parses a spec; see the crate docs for the grammar.
    pub fn parse(text: &str) -> Result<Self> {
        let mut spec = LinkSpec::default();
        let items: Vec<&str> = text.split(',').map(str::trim).collect();
        if items.iter().all(|item| item.is_empty()) {
            return Err(LinkError::spec(
                text,
                "empty: write a profile (none, lan, wifi, 4g, intercontinental, satellite) or \
                 keys such as delay=20ms,loss=1%",
            ));
        }
        for (index, item) in items.iter().enumerate() {
            if item.is_empty() {
                return Err(LinkError::spec(text, "an empty item between commas"));
            }
            if !item.contains('=') {
                spec.apply_profile(item, index)?;
                continue;
            }
            spec.apply_key(item)?;
        }
        Ok(spec)
    }

    /// Parses a list of specs, as `--link lan,4g,loss=2%,satellite` gives it: every profile
    /// name after the first item starts the next spec, and keys refine the spec before them.
    /// A list without a second profile is one spec (`delay=20ms,loss=1%`).
    pub fn parse_list(text: &str) -> Result<Vec<Self>> {
        let mut groups: Vec<Vec<&str>> = Vec::new();
        for item in text.split(',').map(str::trim) {
            match groups.last_mut() {
                Some(group) if item.contains('=') || item.is_empty() => group.push(item),
                _ => groups.push(vec![item]),
            }
        }
        groups
            .iter()
            .map(|group| LinkSpec::parse(&group.join(",")))
            .collect()
    }

    fn apply_profile(&mut self, item: &str, index: usize) -> Result<()> {
        let Some(found) = profile(&item.to_ascii_lowercase()) else {
            return Err(LinkError::spec(
                item,
                format!(
                    "not a profile nor KEY=VALUE: profiles are {}; keys are {}",
                    profile_names(),
                    KEYS.join(", ")
                ),
            ));
        };
        if index != 0 {
            return Err(LinkError::spec(
                item,
                "a profile must come first, keys after it refine it (4g,loss=2%)",
            ));
        }
        let mut base = if found.spec.is_empty() {
            LinkSpec::default()
        } else {
            LinkSpec::parse(found.spec)?
        };
        base.profile = Some(found.name);
        *self = base;
        Ok(())
    }

    fn apply_key(&mut self, item: &str) -> Result<()> {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let key = key.trim().to_ascii_lowercase();
        let (target, name) = match key.split_once(':') {
            Some(("up", name)) => (Target::Up, name),
            Some(("down", name)) => (Target::Down, name),
            Some((other, _)) => {
                return Err(LinkError::spec(
                    item,
                    format!("'{other}:' is not a direction: use up: (client to server) or down:"),
                ));
            }
            None => (Target::Both, key.as_str()),
        };
        let value = value.trim();
        let set = |imp: &mut Impairments| set_key(imp, name, value, item);
        match target {
            Target::Both => {
                set(&mut self.up)?;
                set(&mut self.down)
            }
            Target::Up => set(&mut self.up),
            Target::Down => set(&mut self.down),
        }
    }

    /// A short label for report columns and plot legends: the profile's name when unrefined,
    /// otherwise the round trip, loss and rate that matter most.
    pub fn label(&self) -> String {
        if self.is_none() {
            return self.profile.unwrap_or("none").to_string();
        }
        if let Some(name) = self.profile
            && profile(name)
                .and_then(|p| LinkSpec::parse(p.spec).ok())
                .is_some_and(|p| (p.up, p.down) == (self.up, self.down))
        {
            return name.to_string();
        }
        let mut parts = Vec::new();
        let rtt = self.up.delay + self.down.delay;
        if !rtt.is_zero() {
            parts.push(format!("rtt {}", format_duration(rtt)));
        }
        let loss = self.up.loss.max(self.down.loss);
        if !loss.is_zero() {
            parts.push(format!("loss {loss}"));
        }
        match (self.up.rate, self.down.rate) {
            (Some(up), Some(down)) if up == down => parts.push(format_rate(up)),
            (Some(up), Some(down)) => {
                parts.push(format!("{}/{}", format_rate(down), format_rate(up)))
            }
            (Some(one), None) | (None, Some(one)) => parts.push(format_rate(one)),
            (None, None) => {}
        }
        if parts.is_empty() {
            parts.push(self.to_string());
        }
        match self.profile {
            Some(name) => format!("{name}* {}", parts.join(" ")),
            None => parts.join(" "),
        }
    }
}

/// The keys a spec accepts, in canonical order.
pub const KEYS: [&str; 8] = [
    "delay", "jitter", "loss", "rate", "queue", "reorder", "dup", "mtu",
];

fn profile_names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn set_key(imp: &mut Impairments, key: &str, value: &str, item: &str) -> Result<()> {
    let bad = |expected: &str| LinkError::spec(item, format!("{key} takes {expected}"));
    match key {
        "delay" => imp.delay = parse_duration(value).ok_or_else(|| bad(DURATION))?,
        "jitter" => imp.jitter = parse_duration(value).ok_or_else(|| bad(DURATION))?,
        "loss" => imp.loss = parse_percent(value).ok_or_else(|| bad(PERCENT))?,
        "reorder" => imp.reorder = parse_percent(value).ok_or_else(|| bad(PERCENT))?,
        "dup" => imp.dup = parse_percent(value).ok_or_else(|| bad(PERCENT))?,
        "rate" => imp.rate = parse_rate(value).ok_or_else(|| bad(RATE))?,
        "queue" if matches!(value, "unbounded" | "none") => imp.queue = None,
        "queue" => imp.queue = Some(parse_size(value).ok_or_else(|| bad(SIZE))?),
        "mtu" => {
            let mtu = value
                .parse::<u32>()
                .ok()
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m));
            // The default written out is the default: `mtu=1500` and no mtu are one spec.
            imp.mtu = Some(mtu.ok_or_else(|| bad(MTU))?).filter(|m| *m != DEFAULT_MTU);
        }
        other => {
            return Err(LinkError::spec(
                item,
                format!("unknown key '{other}': keys are {}", KEYS.join(", ")),
            ));
        }
    }
    Ok(())
}

const DURATION: &str = "a duration with a unit: 20ms, 500us, 1.5s (or 0)";
const PERCENT: &str = "a percentage from 0% to 100%: 1%, 0.5%, 0.01% (or 0)";
const RATE: &str = "a rate in bits per second: 50mbit, 800kbit, 1gbit, 20mbps (or unlimited)";
const SIZE: &str = "a size in bytes: 64KiB, 100KB, 1MiB, 1500B, 9000 (or unbounded)";
const MTU: &str = "a number of bytes from 1280 (IPv6's minimum) to 65535: mtu=1500";

/// Splits `12.5ms` into (12.5, "ms"); `None` when there is no number in front.
fn split_number(text: &str) -> Option<(f64, String)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let value: f64 = number.parse().ok()?;
    value
        .is_finite()
        .then(|| (value, unit.trim().to_ascii_lowercase()))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (value, unit) = split_number(text)?;
    let scale = match unit.as_str() {
        "" if value == 0.0 => 0.0,
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * scale)
        .ok()
        .filter(|d| *d <= Duration::from_secs(3600))
}

fn parse_percent(text: &str) -> Option<Percent> {
    let (value, unit) = split_number(text)?;
    if !(unit == "%" || (unit.is_empty() && value == 0.0)) || value > 100.0 {
        return None;
    }
    Some(Percent::from_ppm((value * 10_000.0).round() as u32))
}

fn parse_rate(text: &str) -> Option<Option<u64>> {
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "unlimited" | "inf" | "none"
    ) {
        return Some(None);
    }
    let (value, unit) = split_number(text)?;
    let scale = match unit.as_str() {
        "bit" | "bps" => 1.0,
        "kbit" | "kbps" => 1e3,
        "mbit" | "mbps" => 1e6,
        "gbit" | "gbps" => 1e9,
        _ => return None,
    };
    let bits = (value * scale).round();
    // Below 8 kbit/s a full-size packet would occupy the link for more than a second.
    (8_000.0..=1e12)
        .contains(&bits)
        .then_some(Some(bits as u64))
}

fn parse_size(text: &str) -> Option<u64> {
    let (value, unit) = split_number(text)?;
    let scale = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (value * scale).round();
    (bytes <= 1e12).then_some(bytes as u64)
}

/// Prints a duration the way the spec reads it, in the largest unit that keeps it whole.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0ms".into()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// Prints a rate in bits per second the way the spec reads it.
pub fn format_rate(bits: u64) -> String {
    for (scale, unit) in [
        (1_000_000_000, "gbit"),
        (1_000_000, "mbit"),
        (1_000, "kbit"),
    ] {
        if bits % scale == 0 {
            return format!("{}{unit}", bits / scale);
        }
    }
    format!("{bits}bit")
}

/// Prints a size in bytes the way the spec reads it.
pub fn format_size(bytes: u64) -> String {
    let units = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "KB"),
    ];
    for (scale, unit) in units {
        if bytes >= scale && bytes % scale == 0 {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Each key's value in one direction, or `None` where it is the default.
fn key_values(imp: &Impairments) -> [Option<String>; 8] {
    let pct = |p: Percent| (!p.is_zero()).then(|| p.to_string());
    [
        (!imp.delay.is_zero()).then(|| format_duration(imp.delay)),
        (!imp.jitter.is_zero()).then(|| format_duration(imp.jitter)),
        pct(imp.loss),
        imp.rate.map(format_rate),
        imp.queue.map(format_size),
        pct(imp.reorder),
        pct(imp.dup),
        imp.mtu.map(|m| m.to_string()),
    ]
}

impl fmt::Display for LinkSpec {
    /// The canonical spec: keys in a fixed order, defaults left out, a key with the same value
    /// both ways written once and others with `up:`/`down:`; `none` when nothing is impaired.
    /// Parsing it gives back an equal spec (apart from the profile name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = key_values(&self.up);
        let down = key_values(&self.down);
        let mut items = Vec::new();
        for (index, key) in KEYS.iter().enumerate() {
            match (&up[index], &down[index]) {
                (u, d) if u == d => items.extend(u.as_ref().map(|v| format!("{key}={v}"))),
                (u, d) => {
                    let default = |v: &Option<String>| v.clone().unwrap_or_else(|| reset(key));
                    items.push(format!("up:{key}={}", default(u)));
                    items.push(format!("down:{key}={}", default(d)));
                }
            }
        }
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

/// The value that sets a key back to its default, for a direction that differs only by it.
fn reset(key: &str) -> String {
    match key {
        "rate" => "unlimited".into(),
        "queue" => "unbounded".into(),
        "mtu" => DEFAULT_MTU.to_string(),
        _ => "0".into(),
    }
}

impl FromStr for LinkSpec {
    type Err = LinkError;

    fn from_str(text: &str) -> Result<Self> {
        LinkSpec::parse(text)
    }
}

#[cfg(test)]
mod tests;
