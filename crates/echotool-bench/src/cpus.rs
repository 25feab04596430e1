//! Which CPUs the embedded servers and the client run on.
//!
//! A benchmark whose client and server fight over the same core measures the fight. With two
//! or more CPUs available, the embedded servers get the first half and the client the second
//! half, each runtime's threads pinned there with `sched_setaffinity`.

use serde::{Deserialize, Serialize};

/// The CPU split of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CpuPlan {
    /// CPUs the embedded servers' runtime is pinned to (empty: not pinned).
    pub server_cpus: Vec<usize>,
    /// CPUs the client runtime is pinned to (empty: not pinned).
    pub client_cpus: Vec<usize>,
    /// Worker threads of the servers' runtime (0 with an external target).
    pub server_threads: usize,
    /// Worker threads of the client runtime.
    pub client_threads: usize,
}

/// The CPUs this process may run on.
pub fn allowed() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Plans threads and CPUs: separate halves when there are servers to run, `pin` allows it
/// and there are at least two CPUs.
pub fn plan(embedded: bool, pin: bool) -> CpuPlan {
    let cpus = allowed();
    if !embedded {
        return CpuPlan {
            server_cpus: Vec::new(),
            client_cpus: Vec::new(),
            server_threads: 0,
            client_threads: cpus.len().max(1),
        };
    }
    if cpus.len() < 2 {
        return CpuPlan {
            server_cpus: Vec::new(),
            client_cpus: Vec::new(),
            server_threads: 1,
            client_threads: 1,
        };
    }
    let half = cpus.len() / 2;
    let (server, client) = cpus.split_at(half);
    CpuPlan {
        server_threads: server.len(),
        client_threads: client.len(),
        server_cpus: if pin { server.to_vec() } else { Vec::new() },
        client_cpus: if pin { client.to_vec() } else { Vec::new() },
    }
}

/// Pins the calling thread to `cpus` (nothing when empty). Failure only costs precision.
pub fn pin_current_thread(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    // SAFETY: as above; the set is built locally and passed by pointer with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// What a runtime's threads do first, besides pinning: enter a side of an emulated link.
pub type ThreadStart = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A multi-threaded runtime with `threads` workers pinned to `cpus`, each thread (workers and
/// blocking ones) running `start` first when given.
pub fn runtime(
    name: &str,
    threads: usize,
    cpus: &[usize],
    start: Option<ThreadStart>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = cpus.to_vec();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .on_thread_start(move || {
            if let Some(start) = &start {
                start();
            }
            pin_current_thread(&cpus);
        })
        .enable_all()
        .build()
}
