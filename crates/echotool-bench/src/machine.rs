//! What the figures were measured on.

use serde::{Deserialize, Serialize};

/// The machine a report comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// The host's name (`uname -n`): a pod's name on Kubernetes.
    #[serde(default)]
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// The CPU's model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: usize,
}

impl Machine {
    /// Reads the machine's description.
    pub fn current() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let (hostname, kernel) = uname();
        Machine {
            hostname,
            kernel,
            cpu_model,
            cpus: crate::cpus::allowed().len(),
        }
    }
}

/// The host's name and the kernel's release.
fn uname() -> (String, String) {
    // SAFETY: uname fills a zeroed struct of NUL-terminated C strings.
    unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return ("unknown".into(), "unknown".into());
        }
        let text = |field: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(field.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        (text(&name.nodename), text(&name.release))
    }
}
