//! `echotool connect`: dial, then run the seesaw between standard input, the server and
//! standard output.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use echotool_core::session::{Feed, SessionOptions, run_session};
use echotool_core::{ClientOptions, HostPort, Kind, Registry, SocketOptions, TlsClientOptions};
use tracing::{debug, warn};

use crate::cli::{ConnectArgs, ConnectTlsArgs, ModeArg};

/// Dials the server and echoes standard input through it.
pub fn run(registry: &Registry, args: ConnectArgs) -> Result<()> {
    let (transport, addr) = registry.locate(args.addr.as_ref(), &args.proto)?;
    let datagrams = args.datagram || transport.kind() == Kind::Datagram;
    let timeout = args
        .timeout
        .unwrap_or(Duration::from_secs(if datagrams { 1 } else { 5 }));
    let limit = (timeout > Duration::ZERO).then_some(timeout);
    let client = ClientOptions {
        connect_timeout: limit.unwrap_or(Duration::from_secs(86_400)),
        socket: SocketOptions {
            nodelay: !args.nagle,
            ..SocketOptions::default()
        },
        tls: tls_options(&args.tls),
        datagrams: args.datagram,
        ..ClientOptions::default()
    };
    let feed = match (&args.message, args.mode) {
        (Some(text), _) => Feed::Repeat {
            payload: format!("{text}\n").into_bytes(),
            count: args.count,
        },
        (None, ModeArg::Lines) => Feed::Lines,
        (None, ModeArg::Pipe) => Feed::Pipe,
        (None, ModeArg::Auto) if std::io::stdin().is_terminal() => Feed::Lines,
        (None, ModeArg::Auto) => Feed::Pipe,
    };
    let url = url(transport.name(), &addr);
    let session = SessionOptions {
        echo_timeout: limit,
        retries: args.retries,
        datagram_size: args.size,
        ..SessionOptions::new(url, feed)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let connection = transport.dial(&addr, &client).await?;
        for detail in &connection.details {
            debug!("{detail}");
        }
        run_session(
            connection.channel,
            tokio::io::stdin(),
            tokio::io::stdout(),
            &session,
        )
        .await?;
        Ok(())
    })
}

/// The TLS flags of `connect` (and `bench --target`) as client options; warns once about
/// `--insecure`.
pub fn tls_options(args: &ConnectTlsArgs) -> TlsClientOptions {
    if args.insecure {
        warn!(
            "--insecure: the server's certificate is not verified; anyone on the path can pose as the server"
        );
    }
    TlsClientOptions {
        ca: args.ca.clone(),
        server_name: args.server_name.clone(),
        insecure: args.insecure,
        cert: args.cert.clone(),
        key: args.key.clone(),
        version: args.tls_version,
        alpn: args.alpn.clone(),
        pin: args.pin.clone(),
    }
}

fn url(proto: &str, addr: &HostPort) -> String {
    format!("{proto}://{addr}")
}
