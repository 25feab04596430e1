//! A link emulator for echotool: a client side and a server side, each its own network
//! namespace, joined by a userspace forwarder that delays, jitters, loses, rate-limits, queues,
//! reorders, duplicates and MTU-limits packets one by one.
//!
//! Loopback has a 20 µs round trip and no loss, so a comparison made over it mostly shows CPU
//! cost; what separates TCP, TLS and QUIC on real paths is round trips and loss. The kernel's
//! netem qdisc would do this but is often missing (this machine's kernel has none) or not
//! allowed (containers, CI runners), so the link is the mahimahi design, done in one process:
//!
//! ```text
//!  client namespace                                          server namespace
//!  198.18.0.2, 2001:2::2                                     198.18.0.1, 2001:2::1
//!  sockets ── link0 (TUN) ══ forwarder thread: up shaper ══▶ link0 (TUN) ── sockets
//!                         ◀══                down shaper ══
//! ```
//!
//! - [`Link::start`] makes two anonymous network namespaces ([`netns`]), each with `lo` and
//!   one TUN device `link0` holding that side's address (RFC 2544's 198.18.0.0/15 and RFC
//!   5180's 2001:2::/48, which no real network uses). Each side reaches the other only through
//!   its TUN device. Nothing is created, named or routed in the host's namespace, and
//!   everything disappears with the process, even after SIGKILL (a test checks both).
//! - One forwarder thread reads packets from each device, gives each to that direction's
//!   [`shaper::Shaper`] (pure scheduling logic, unit-tested with a fake clock) and writes it
//!   to the other device when it is due.
//! - A caller runs code in a side with [`Side::enter`] (one thread, until the guard drops) or
//!   [`Side::runtime_hook`] (every thread of a tokio runtime). Sockets keep the namespace they
//!   were created in, so only their creation needs to happen inside.
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use echotool_link::{Link, LinkOptions, LinkSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec: LinkSpec = "4g,loss=2%".parse()?;
//! let link = Link::start(&spec, LinkOptions::default())?;
//! let server = {
//!     let _inside = link.server().enter()?;
//!     UdpSocket::bind(link.server().addr(false, 7))?
//! };
//! let client = {
//!     let _inside = link.client().enter()?;
//!     UdpSocket::bind(link.client().addr(false, 0))?
//! };
//! client.send_to(b"hello", server.local_addr()?)?; // crosses the emulated 4G path
//! link.reconfigure(&"satellite".parse()?)?;        // same sockets, another path
//! println!("{:?}", link.stats());
//! # Ok(()) }
//! ```
//!
//! A tokio runtime is put in a side with
//! `Builder::new_multi_thread().on_thread_start(link.server().runtime_hook())`: its workers
//! and blocking threads then create every socket inside. Never create a socket for a link
//! address in the host's namespace: the host would send it out of its default route.
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

//!
//! # Timing
//!
//! The forwarder sleeps in `ppoll(2)` with a nanosecond timeout until the next packet is due,
//! with its timer slack set to 1 ns (`PR_SET_TIMERSLACK`; the default 50 µs lets the kernel
//! fire timers late) and its nice value at -20 where allowed; the last 30 µs before a due time
//! it polls without sleeping, since waking from sleep costs tens of microseconds. Tokio's
//! millisecond timer wheel is not used. [`LinkStats::lateness`] reports how late packets were
//! written against their schedule, so every run can check its own accuracy.
//!
//! Measured with `cargo run --release -p echotool-link --example link_cost` on the project's
//! 2-core VM, three runs while other builds kept both cores busy (load average 3.5 to 4.7), so
//! the ranges are wide and pessimistic:
//!
//! | figure | three runs |
//! | --- | --- |
//! | UDP round trip, two sockets in one namespace (p50) | 13 to 47 µs |
//! | UDP round trip through the link at `delay=0` (p50) | 24 to 82 µs (the link adds 11 to 35 µs) |
//! | round trip at `delay=1ms`, above 2 ms (p50) | 82 to 114 µs |
//! | forwarder lateness against schedule (p50 / p99) | 5 to 9 µs / 0.7 to 2.3 ms |
//! | packets forwarded per second, 64-byte UDP payloads | 47 000 to 77 000 |
//! | packets forwarded per second, 1400-byte UDP payloads | 27 000 to 44 000 (300 to 500 Mbit/s) |
//!
//! The forwarder itself is on time to about 10 µs when it gets a core; its p99 is the
//! scheduler's, on a machine with more runnable threads than cores. At `delay=1ms` the round
//! trip exceeds 2 ms by more than the link's cost at `delay=0` because the receiving thread
//! then wakes on an idle virtual CPU, which the link cannot help. The link forwards a few
//! hundred Mbit/s: enough for the profiles above, not for emulating 10 Gbit/s. On a loaded
//! machine, read [`LinkStats::lateness`] before trusting a sub-millisecond figure. The
//! integration tests hold round trips to 2 × delay + 10 % + 0.5 ms in debug builds.
//!
//! # Privilege
//!
//! Making namespaces and TUN devices needs CAP_SYS_ADMIN and CAP_NET_ADMIN. As root (and in
//! CI, which runs as root) that is given. Without root, [`unprivileged_setup`] moves the
//! process into a user namespace of its own, where it holds those capabilities over the
//! namespaces it creates; the kernel allows that only to a single-threaded process, so the
//! binary must call it first thing in `main`, before tokio or anything else starts a thread
//! (re-executing itself under `unshare --user --map-root-user` is the alternative, not taken
//! because a call is simpler and keeps one process). `/dev/net/tun` must still be openable by
//! the user: mode 0666, as most distributions ship it. When something is missing,
//! [`LinkError`] says which (not Linux, no CAP_NET_ADMIN, no or unopenable `/dev/net/tun`,
//! user namespaces off) and what to do. The `lifecycle` test runs itself as `nobody` through
//! `setpriv`; on this machine, whose `/dev/net/tun` is 0600, it checks the error, and with the
//! device made 0666 by hand the whole path (user namespace, link, exchange) worked.
//!
//! On other systems the crate compiles, and [`Link::start`] and [`unprivileged_setup`]
//! return [`LinkError::NotLinux`].
//!
//! # Capture and trace
//!
//! [`LinkOptions::pcap`] writes a pcapng file of every packet, delivered or dropped, for
//! Wireshark and tcpdump, and [`LinkOptions::trace`] one line per packet
//! ([`trace`]), which [`Link::trace_next_flow`] narrows to one connection. Dependencies, and
//! why: `pcap-file` (maintained, pure Rust, writes pcapng with per-packet options, so drops
//! carry a comment with their reason and packets their direction), `etherparse` (IPv4/IPv6
//! with extension headers, TCP and UDP parsing for the trace, malformed packets handled),
//! `libc` and `thiserror` as elsewhere in the workspace. The capture has one raw-IP
//! interface, direction in `epb_flags` (outbound = up), nanosecond timestamps; libpcap
//! rejects files with two raw-IP interfaces, which is why drops are not on one of their own.

#![warn(missing_docs)]

mod error;
#[cfg(target_os = "linux")]
mod forward;
mod lateness;
mod link;
pub mod netns;
#[cfg(target_os = "linux")]
mod pcap;
pub mod shaper;
pub mod spec;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod trace;
#[cfg(target_os = "linux")]
mod tun;

pub use error::{LinkError, Result};
pub use lateness::Lateness;
pub use link::{Link, LinkOptions, LinkStats};
pub use netns::{NsGuard, Privilege, Role, Side, unprivileged_setup};
pub use shaper::{DirectionStats, DropReason};
pub use spec::{Impairments, LinkSpec, Percent};

use shaper::{Direction, Nanos};

/// Something that sees every packet the link delivers or drops: the capture and the trace.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) trait Recorder: Send {
    /// One packet crossed (`dropped` is `None`) or was dropped, at `at` since the start.
    fn record(&mut self, dir: Direction, at: Nanos, packet: &[u8], dropped: Option<DropReason>);
    /// Writes out anything buffered; called when the link stops.
    fn flush(&mut self);
}
