//! `echotool serve`: build listener settings from flags, bind, print, serve until a signal.

use std::time::Duration;

use anyhow::Result;
use echotool_core::server::{ListenSpec, bind_all, start};
use echotool_core::{
    DatagramServerOptions, Limits, OnLimit, Registry, ServerOptions, SocketOptions,
    TlsServerOptions,
};

use crate::cli::{OnLimitArg, ServeArgs};

/// Runs the server until Ctrl-C or SIGTERM, then prints a summary per listener.
pub fn run(registry: &Registry, args: ServeArgs) -> Result<()> {
    let options = options(&args);
    let endpoints = if args.listen.is_empty() {
        vec![None]
    } else {
        args.listen.iter().map(Some).collect()
    };
    let specs = endpoints
        .into_iter()
        .map(|endpoint| {
            let (transport, addr) = registry.locate(endpoint, &args.proto)?;
            Ok(ListenSpec {
                transport,
                addr,
                options: options.clone(),
            })
        })
        .collect::<echotool_core::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bound = bind_all(&specs).await?;
        for listener in &bound {
            eprintln!("listening on {}", listener.url);
            for note in &listener.notes {
                eprintln!("  {note}");
            }
        }
        let running = start(bound);
        let signal = wait_for_signal().await;
        eprintln!("{signal}: finishing in-flight echoes (Ctrl-C again to quit at once)");
        let summaries = tokio::select! {
            summaries = running.stop() => summaries,
            again = wait_for_signal() => {
                eprintln!("{again} again: quitting without draining");
                std::process::exit(130);
            }
        };
        for summary in summaries {
            eprintln!("summary {}: {}", summary.url, summary.stats);
        }
        Ok(())
    })
}

fn options(args: &ServeArgs) -> ServerOptions {
    ServerOptions {
        limits: Limits {
            max_conns: args.max_conns,
            on_limit: match args.on_limit {
                OnLimitArg::Wait => OnLimit::Wait,
                OnLimitArg::Refuse => OnLimit::Refuse,
            },
            idle_timeout: (args.idle_timeout > Duration::ZERO).then_some(args.idle_timeout),
            drain_timeout: args.drain_timeout,
            handshake_timeout: args.handshake_timeout,
        },
        socket: SocketOptions {
            nodelay: !args.nagle,
            backlog: args.backlog,
            recv_buffer: args.recv_buffer,
            send_buffer: args.send_buffer,
        },
        datagram: DatagramServerOptions {
            workers: args.workers.map(|n| n as usize),
            rate_limit: args.udp_rate_limit,
        },
        tls: TlsServerOptions {
            cert: args.tls.cert.clone(),
            key: args.tls.key.clone(),
            client_ca: args.tls.client_ca.clone(),
            version: args.tls.tls_version,
            alpn: args.tls.alpn.clone(),
        },
    }
}

/// Waits for SIGINT or SIGTERM and names it.
async fn wait_for_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}
