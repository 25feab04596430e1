//! `echotool connect`: dial, then run the seesaw between standard input, the server and
//! standard output.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use echotool_core::client::{Feed, SessionOptions, default_echo_timeout, run_session};
use echotool_core::{
    Binding, ClientOptions, HostPort, Kind, Registry, SocketOptions, TlsClientOptions, Transport,
};
use tracing::{debug, warn};

use crate::cli::{ConnectArgs, ConnectTlsArgs, ModeArg};
use crate::exit::Exit;

/// Dials the server and echoes standard input through it.
pub fn run(registry: &Registry, args: ConnectArgs) -> Result<()> {
    let (transport, addr) = registry.locate(args.addr.as_ref(), &args.proto)?;
    let url = url(transport.name(), &addr);
    refuse_unused_flags(&args, &*transport, &url)?;
    let datagrams = args.datagram || transport.kind() == Kind::Datagram;
    let kind = if datagrams {
        Kind::Datagram
    } else {
        Kind::Stream
    };
    let timeout = args.timeout.unwrap_or(default_echo_timeout(kind));
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
    let defaults = SessionOptions::new(url, feed);
    let session = SessionOptions {
        echo_timeout: limit,
        retries: args.retries.unwrap_or(defaults.retries),
        datagram_size: args.size.unwrap_or(defaults.datagram_size),
        ..defaults
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

/// Flags that would do nothing for this transport are a mistake worth saying, not ignoring:
/// `--ca` on plain TCP, `--datagram` on UDP, `--size` on a stream.
fn refuse_unused_flags(args: &ConnectArgs, transport: &dyn Transport, url: &str) -> Result<()> {
    let name = transport.name();
    if let Some(flag) = tls_flags_given(&args.tls)
        .first()
        .filter(|_| !transport.secure())
    {
        return Err(Exit::usage(format!(
            "{flag} does nothing for {url}: the TLS flags apply to TLS and QUIC; did you mean \
             --proto tls?"
        )));
    }
    if args.datagram && (transport.kind() == Kind::Datagram || !transport.offers_datagrams()) {
        let why = match transport.kind() {
            Kind::Datagram => format!("{name} always sends datagrams"),
            Kind::Stream => format!("{name} carries a stream only; --datagram is for QUIC"),
        };
        return Err(Exit::usage(format!(
            "--datagram does nothing for {url}: {why}"
        )));
    }
    let datagrams = args.datagram || transport.kind() == Kind::Datagram;
    let datagram_only = [
        ("--retries", args.retries.is_some()),
        ("--size", args.size.is_some()),
    ];
    if let Some((flag, _)) = datagram_only.iter().find(|(_, given)| *given && !datagrams) {
        return Err(Exit::usage(format!(
            "{flag} does nothing for {url}: it applies to datagrams (udp, or quic with \
             --datagram), and {name} carries a stream"
        )));
    }
    if args.nagle && transport.binds() != Binding::Tcp {
        let runs = match transport.binds() {
            Binding::Udp => "runs over UDP",
            _ => "is a local socket, not TCP",
        };
        return Err(Exit::usage(format!(
            "--nagle does nothing for {url}: TCP_NODELAY is a TCP option, and {name} {runs}"
        )));
    }
    if args.message.is_some() && args.mode != ModeArg::Auto {
        return Err(Exit::usage(
            "--mode does nothing with --message, which sends its text --count times, waiting \
             for each echo: drop one of them",
        ));
    }
    Ok(())
}

/// The TLS flags given on the command line, by name.
pub fn tls_flags_given(args: &ConnectTlsArgs) -> Vec<&'static str> {
    [
        ("--ca", args.ca.is_some()),
        ("--server-name", args.server_name.is_some()),
        ("--insecure", args.insecure),
        ("--pin", args.pin.is_some()),
        ("--cert", args.cert.is_some()),
        ("--key", args.key.is_some()),
        ("--tls-version", args.tls_version.is_some()),
        ("--alpn", !args.alpn.is_empty()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
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
