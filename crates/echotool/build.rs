//! Records, for `echotool version`, the target triple and the versions of the libraries that
//! shape what echotool measures (rustls, quinn, tokio, aws-lc-rs, the allocator), as locked in
//! Cargo.lock.

use std::path::Path;

/// The libraries `echotool version` names.
const LIBRARIES: [&str; 6] = [
    "rustls",
    "quinn",
    "tokio",
    "aws-lc-rs",
    "aws-lc-sys",
    "tikv-jemallocator",
];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock = Path::new(&manifest).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for library in LIBRARIES {
        let version = locked_version(&text, library).unwrap_or_else(|| "unknown".into());
        let key = library.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=ECHOTOOL_DEP_{key}={version}");
    }
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=ECHOTOOL_TARGET={target}");
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=ECHOTOOL_PROFILE={profile}");
}

/// The version of `name` in a Cargo.lock: the `version` line after its `name` line.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}
