//! `echotool`: echo servers and clients over several transports, from one command line.
//!
//! This crate is deliberately thin: it parses flags, builds settings, fills the transport
//! registry and calls the libraries. Behaviour lives in `echotool-core` and the transport crates.
//!
//! The one thing chosen here for every crate is the allocator: jemalloc (`tikv-jemallocator`),
//! not glibc's malloc. tokio allocates each task and each socket registration 128-byte aligned,
//! and glibc leaves about 176 bytes of gaps around every such block; jemalloc's size classes
//! leave none, so an idle TCP connection costs about 730 bytes instead of 1 030 (issue 19:
//! the goal is 1 KiB). The price is about 1.4 MiB more at start; an idle QUIC connection costs
//! about the same (about 23.9 KB, against 23.7 KB), and RSS under the soak is as flat as with
//! glibc. mimalloc was measured too and lost on each of these (1 062 B per idle TCP
//! connection, twice the RSS at start). Figures: benches/results/idle-memory.md. It is the
//! default feature `jemalloc`; a build without it (`--no-default-features --features tcp,udp`,
//! say) uses the system's malloc and needs no C compiler.

mod bench;
#[cfg(feature = "secure")]
mod certs;
mod cli;
mod connect;
mod exit;
mod logging;
mod os_signals;
mod registry;
mod report;
mod serve;

use std::process::ExitCode;

use crate::cli::{Command, ConfigCommand};

/// jemalloc, not glibc's malloc: see the crate docs.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    exit::install_panic_hook();
    // An emulated link needs the right to make network namespaces; without root, a user
    // namespace of its own gives it, and only a process with one thread may make one: so
    // before anything else starts a thread.
    if std::env::args().any(|a| a == "--link" || a.starts_with("--link=")) {
        let _ = echotool_link::unprivileged_setup();
    }
    let registry = registry::all();
    let cli = match cli::parse(&registry) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints usage errors and --help itself, with exit code 2 (0 for --help).
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        // serve sets up logging itself, once its config file has been read.
        Command::Serve(args) => serve::run(&registry, &cli.log, args),
        Command::Connect(args) => {
            let _ = logging::init(&cli.log, None);
            connect::run(&registry, args)
        }
        Command::Bench(args) => {
            let _ = logging::init(&cli.log, None);
            bench::run(&registry, args, cli.log.quiet > 0)
        }
        Command::Report(args) => {
            let _ = logging::init(&cli.log, None);
            report::run(args, cli.log.quiet > 0)
        }
        #[cfg(feature = "secure")]
        Command::Certs(args) => {
            let _ = logging::init(&cli.log, None);
            certs::run(args)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let _ = logging::init(&cli.log, None);
            serve::check(&registry, &file)
        }
        Command::Completions { shell } => {
            let mut command = cli::command(&registry);
            clap_complete::generate(shell, &mut command, "echotool", &mut std::io::stdout());
            Ok(())
        }
        Command::Manpage => manpage(&registry),
        Command::Version => {
            version(&registry);
            Ok(())
        }
    };
    exit::report(result)
}

/// The manual page, in roff.
fn manpage(registry: &echotool_core::Registry) -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(cli::command(registry));
    page.render(&mut std::io::stdout().lock())?;
    Ok(())
}

/// `echotool version`: this build and what it measures with.
fn version(registry: &echotool_core::Registry) {
    println!(
        "echotool {} ({}, {} build)",
        env!("CARGO_PKG_VERSION"),
        env!("ECHOTOOL_TARGET"),
        env!("ECHOTOOL_PROFILE")
    );
    println!("transports: {}", registry.names().join(", "));
    #[cfg(feature = "secure")]
    {
        println!("rustls {}", env!("ECHOTOOL_DEP_RUSTLS"));
        println!(
            "crypto provider: aws-lc-rs {} (AWS-LC via aws-lc-sys {})",
            env!("ECHOTOOL_DEP_AWS_LC_RS"),
            env!("ECHOTOOL_DEP_AWS_LC_SYS")
        );
    }
    #[cfg(feature = "quic")]
    println!("quinn {}", env!("ECHOTOOL_DEP_QUINN"));
    println!("tokio {}", env!("ECHOTOOL_DEP_TOKIO"));
    // The allocator shapes every memory figure (idle bytes per connection, RSS in the soak).
    #[cfg(feature = "jemalloc")]
    println!(
        "allocator: jemalloc (tikv-jemallocator {})",
        env!("ECHOTOOL_DEP_TIKV_JEMALLOCATOR")
    );
    #[cfg(not(feature = "jemalloc"))]
    println!("allocator: the system's malloc");
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }
}
