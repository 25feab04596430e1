//! A link emulator for echotool: a client side and a server side, each its own network
//! namespace, joined by a userspace forwarder that delays, jitters, loses, rate-limits, queues,
//! reorders, duplicates and MTU-limits packets one by one.
//!
//! # Spec grammar
//!
//! A spec is comma-separated items: optionally a profile first, then `KEY=VALUE` pairs that set
//! or refine it. A key applies to both directions; `up:KEY=VALUE` sets client-to-server only and
//! `down:KEY=VALUE` server-to-client only; later items win.
//!
//! | key | value | meaning |
//! | --- | --- | --- |
//! | `delay` | duration: `20ms`, `500us`, `1.5s` | one-way propagation delay (RTT = up + down) |
//! | `jitter` | duration | each packet's delay is uniform in `delay ± jitter`, never reordering |
//! | `loss` | percentage: `1%`, `0.05%` | independent random loss on entry |
//! | `rate` | `bit`, `kbit`, `mbit`, `gbit` per second | serialisation rate of IP bytes |
//! | `queue` | size: `B`, `KB`, `KiB`, `MB`, `MiB` | drop-tail queue in front of the rate |
//! | `reorder` | percentage | held back 1 ms so later packets overtake |
//! | `dup` | percentage | delivered twice |
//! | `mtu` | bytes, 1280..=65535 | larger packets dropped; the sending TUN gets this MTU |
//!
//! Rates are bits per second with SI prefixes (`mbit` = 10⁶ bit/s); `kbps`, `mbps`, `gbps` mean
//! the same as `kbit`, `mbit`, `gbit`, as networking people usually write them. **This differs
//! from `tc`**, where `mbps` means megabytes per second. Sizes follow SI and IEC: `KB` = 1000,
//! `KiB` = 1024. Durations need a unit except `0`; percentages need `%` except `0`. Without
//! `rate` the link is unlimited and has no queue; with a rate and no `queue` the queue is
//! unbounded (as in mahimahi). Without `mtu` the devices have Ethernet's 1500.
//!
//! # Profiles
//!
//! `none` and `loopback` impair nothing. The others (refine any with keys: `4g,loss=2%`):
//!
//! | profile | spec | what and source |
//! | --- | --- | --- |
//! | `lan` | `delay=100us,rate=1gbit,queue=1500KB` | switched gigabit Ethernet (IEEE 802.3ab); 1000-packet queue like Linux's default txqueuelen |
//! | `wifi` | `delay=3ms,jitter=2ms,loss=0.1%,rate=100mbit,queue=256KB` | home 802.11ac: a few ms RTT with ms-scale variance (Sui et al., "Characterizing and Improving WiFi Latency in Large-Scale Operational Networks", MobiSys 2016) |
//! | `4g` | `delay=25ms,jitter=5ms,loss=0.1%,down:rate=30mbit,up:rate=10mbit,queue=512KB` | LTE: ~50 ms RTT, 30/10 Mbit/s down/up (medians in Opensignal's "State of Mobile Network Experience" reports); deep base-station buffers |
//! | `intercontinental` | `delay=80ms,loss=0.1%,rate=100mbit,queue=2MB` | trans-Pacific: 160 ms RTT, the bound in Verizon's published IP latency guarantees (trans-Atlantic: 90 ms) |
//! | `satellite` | `delay=300ms,jitter=10ms,loss=0.5%,down:rate=25mbit,up:rate=3mbit,queue=1MB` | geostationary consumer service: ~600 ms RTT (physics alone: 477 ms) and 25/3 Mbit/s plans (FCC "Measuring Broadband America") |
//!
//! The figures are typical values, not measurements of any one network.

#![warn(missing_docs)]

mod error;
#[cfg(target_os = "linux")]
mod forward;
mod link;
pub mod netns;
mod pcap;
pub mod shaper;
pub mod spec;
pub mod trace;
#[cfg(target_os = "linux")]
mod tun;

pub use error::{LinkError, Result};
pub use link::{Link, LinkOptions, LinkStats};
pub use netns::{NsGuard, Privilege, Role, Side, unprivileged_setup};
pub use shaper::{DirectionStats, DropReason};
pub use spec::{Impairments, LinkSpec, Percent};

use shaper::{Direction, Nanos};

/// Something that sees every packet the link delivers or drops: the capture and the trace.
pub(crate) trait Recorder: Send {
    /// One packet crossed (`dropped` is `None`) or was dropped, at `at` since the start.
    fn record(&mut self, dir: Direction, at: Nanos, packet: &[u8], dropped: Option<DropReason>);
    /// Writes out anything buffered; called when the link stops.
    fn flush(&mut self);
}
