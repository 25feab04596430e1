//! `echo-peer-quinn`: a minimal quinn echo server at quinn's default settings.
//!
//! The QUIC baseline of echotool's benchmarks (issue 19 measures memory per idle connection
//! against it): what anyone gets from quinn's defaults in a few dozen lines. So it is
//! deliberately plain: `TransportConfig::default()`, rustls's default session handling, a
//! self-signed certificate made at start with rcgen, ALPN `echo`, one task per connection and
//! one per bidirectional stream, each stream echoed with `tokio::io::copy` until the peer's FIN.
//!
//! Usage: `echo-peer-quinn [ADDR:PORT]` (default `127.0.0.1:0`). Prints
//! `listening on quic://IP:PORT` to stderr once bound; exits on Ctrl-C or SIGTERM.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::PrivatePkcs8KeyDer;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    // `args_os`: `args` would panic on an argument that is not UTF-8.
    let addr: SocketAddr = match std::env::args_os().nth(1) {
        Some(arg) => {
            let arg = arg.to_string_lossy();
            arg.parse()
                .map_err(|e| format!("{arg}: {e}; usage: echo-peer-quinn [ADDR:PORT]"))?
        }
        None => ([127, 0, 0, 1], 0).into(),
    };
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    // What `quinn::ServerConfig::with_single_cert` builds, plus the ALPN it cannot set.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key.into())?;
    tls.max_early_data_size = u32::MAX;
    tls.alpn_protocols = vec![b"echo".to_vec()];
    let config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    let endpoint = quinn::Endpoint::server(config, addr)?;
    eprintln!("listening on quic://{}", endpoint.local_addr()?);
    tokio::select! {
        () = accept(endpoint) => Ok(()),
        r = shutdown_signal() => r,
    }
}

async fn accept(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        // A failed handshake or a lost connection ends that connection only.
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    if tokio::io::copy(&mut recv, &mut send).await.is_ok() {
                        let _ = send.finish();
                    }
                });
            }
        });
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! { r = tokio::signal::ctrl_c() => r?, _ = term.recv() => {} }
    Ok(())
}
