//! The forwarder: one thread that moves packets between the two TUN devices through the two
//! shapers, on time to a few microseconds.
//!
//! Tokio's timer wheel has millisecond granularity, far too coarse for a 100 µs LAN, so the
//! thread sleeps in `ppoll(2)` with a nanosecond timeout, after setting its timer slack to 1 ns
//! (`PR_SET_TIMERSLACK`; the default 50 µs slack lets the kernel fire timers late to batch
//! wake-ups). When the next packet is due within [`SPIN`], it polls without sleeping instead,
//! since a wake-up from sleep costs tens of microseconds on a busy machine. A write to an
//! eventfd wakes it to stop when the link is dropped.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Recorder;
use crate::error::{LinkError, Result};
use crate::lateness::Lateness;
use crate::shaper::{Direction, Nanos, Shaper};
use crate::tun::Tun;

/// How close to a packet's due time the thread stops sleeping and polls instead.
pub(crate) const SPIN: Nanos = 30_000;

/// Packets read from one device per wake-up, so a flood one way cannot starve the other.
const BATCH: usize = 64;

/// The two shapers, shared between the forwarder and the `Link` that reconfigures and reads
/// counters.
#[derive(Debug)]
pub(crate) struct Shapers {
    /// Client to server.
    pub(crate) up: Shaper,
    /// Server to client.
    pub(crate) down: Shaper,
    /// The forwarder's timing error.
    pub(crate) lateness: Lateness,
}

impl Shapers {
    fn get(&mut self, dir: Direction) -> &mut Shaper {
        match dir {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

/// Locks the shapers; a panic elsewhere while holding them leaves them usable.
pub(crate) fn lock(shapers: &Mutex<Shapers>) -> MutexGuard<'_, Shapers> {
    shapers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running forwarder thread and how to stop it.
#[derive(Debug)]
pub(crate) struct Forwarder {
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

/// What the forwarder thread owns.
struct Run {
    client: Tun,
    server: Tun,
    shapers: Arc<Mutex<Shapers>>,
    recorders: Vec<Box<dyn Recorder>>,
    start: Instant,
    wake: Arc<OwnedFd>,
}

impl Forwarder {
    /// Starts the thread.
    pub(crate) fn start(
        client: Tun,
        server: Tun,
        shapers: Arc<Mutex<Shapers>>,
        recorders: Vec<Box<dyn Recorder>>,
        start: Instant,
    ) -> Result<Forwarder> {
        // SAFETY: eventfd(2) with valid flags; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(LinkError::last_os("make the forwarder's wake-up eventfd"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let run = Run {
            client,
            server,
            shapers,
            recorders,
            start,
            wake: Arc::clone(&wake),
        };
        let thread = std::thread::Builder::new()
            .name("link-forwarder".into())
            .spawn(move || run.forward())
            .map_err(|source| LinkError::Os {
                context: "start the forwarder thread".into(),
                source,
            })?;
        Ok(Forwarder {
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&raw const one).cast(), 8) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Run {
    fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos() as Nanos
    }

    fn forward(mut self) {
        // SAFETY: prctl(2) on the calling thread only; failure leaves the default slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        // The highest nice priority, where allowed, so a busy machine delays the forwarder
        // less; best effort, as an unprivileged process may not raise it.
        // SAFETY: gettid(2) cannot fail; setpriority(2) on this thread only.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -20);
        }
        let mut buf = vec![0u8; 65_536];
        loop {
            let next = self.deliver_due();
            let timeout = next.map(|due| due.saturating_sub(self.now()));
            let sleep = match timeout {
                Some(left) if left <= SPIN => Some(0),
                Some(left) => Some(left - SPIN),
                None => None,
            };
            let ready = match self.poll(sleep) {
                Ok(ready) => ready,
                Err(err) => {
                    eprintln!("link forwarder stopped: ppoll: {err}");
                    break;
                }
            };
            if ready.stop {
                break;
            }
            if ready.client {
                self.ingest(Direction::Up, &mut buf);
            }
            if ready.server {
                self.ingest(Direction::Down, &mut buf);
            }
        }
        for recorder in &mut self.recorders {
            recorder.flush();
        }
    }

    /// Writes every packet whose time has come; returns when the next one is due.
    fn deliver_due(&mut self) -> Option<Nanos> {
        let mut shapers = lock(&self.shapers);
        loop {
            let now = self.now();
            let mut any = false;
            for dir in [Direction::Up, Direction::Down] {
                while let Some((due, packet)) = shapers.get(dir).pop_due(now) {
                    shapers.lateness.record(Duration::from_nanos(now - due));
                    any = true;
                    let tun = match dir {
                        Direction::Up => &self.server,
                        Direction::Down => &self.client,
                    };
                    // A full device queue drops the packet, as a real interface would.
                    let _ = tun.write(&packet);
                    for recorder in &mut self.recorders {
                        recorder.record(dir, now, &packet, None);
                    }
                }
            }
            if !any {
                return [shapers.up.next_due(), shapers.down.next_due()]
                    .into_iter()
                    .flatten()
                    .min();
            }
        }
    }

    /// Reads up to a batch of packets from the device that feeds `dir`.
    fn ingest(&mut self, dir: Direction, buf: &mut [u8]) {
        let tun = match dir {
            Direction::Up => &self.client,
            Direction::Down => &self.server,
        };
        let mut shapers = lock(&self.shapers);
        for _ in 0..BATCH {
            let len = match tun.read(buf) {
                Ok(len) => len,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    eprintln!("link forwarder: reading {dir:?} packets: {err}");
                    return;
                }
            };
            let now = self.now();
            if let Err(dropped) = shapers.get(dir).offer(now, buf[..len].to_vec()) {
                for recorder in &mut self.recorders {
                    recorder.record(dir, now, &dropped.packet, Some(dropped.reason));
                }
            }
        }
    }

    /// Waits for a packet on either device, the stop signal, or `sleep` nanoseconds
    /// (`None`: no timeout).
    fn poll(&self, sleep: Option<Nanos>) -> io::Result<Ready> {
        let fd = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [
            fd(self.client.as_raw_fd()),
            fd(self.server.as_raw_fd()),
            fd(self.wake.as_raw_fd()),
        ];
        let ts = sleep.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `fds` and `ts` outlive the call; a null timeout means wait forever.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 3, ts_ptr, std::ptr::null()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(Ready::default());
            }
            return Err(err);
        }
        let readable = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLERR) != 0;
        Ok(Ready {
            client: readable(&fds[0]),
            server: readable(&fds[1]),
            stop: readable(&fds[2]),
        })
    }
}

/// Which descriptors `ppoll` found ready.
#[derive(Default)]
struct Ready {
    client: bool,
    server: bool,
    stop: bool,
}
