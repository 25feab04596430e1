//! Client configurations kept across dials, so that a transport dialing the same server again
//! (a benchmark, a reconnecting client) can resume its session.

use std::sync::Mutex;

use echotool_core::TlsClientOptions;
use rustls::pki_types::ServerName;

use crate::TlsError;
use crate::config::{ClientSetup, Flavor, client_config};
use echotool_core::lock_ignoring_poison;

/// A small cache of client configurations by options.
#[derive(Default)]
pub struct ClientConfigs {
    cached: Mutex<Vec<(TlsClientOptions, bool, ClientSetup)>>,
}

impl ClientConfigs {
    /// The configuration for `opts`, built once and then reused (with its session cache).
    pub fn get(
        &self,
        opts: &TlsClientOptions,
        flavor: Flavor,
        resume: bool,
    ) -> Result<ClientSetup, TlsError> {
        let mut cached = lock_ignoring_poison(&self.cached);
        if let Some((_, _, setup)) = cached.iter().find(|(o, r, _)| o == opts && *r == resume) {
            return Ok(setup.clone());
        }
        let setup = client_config(opts, flavor, resume)?;
        // Options change rarely; a handful of entries is plenty.
        if cached.len() >= 8 {
            cached.remove(0);
        }
        cached.push((opts.clone(), resume, setup.clone()));
        Ok(setup)
    }
}

/// The name a client checks the server's certificate against, `--server-name` or else the
/// host it dials, as text (for messages) and as rustls's [`ServerName`]. Every TLS-based
/// transport asks for it before it opens a socket, so a name that is neither a DNS name nor an
/// IP address is refused in the same words everywhere, whether or not a server listens.
pub fn server_name(
    opts: &TlsClientOptions,
    host: &str,
) -> Result<(String, ServerName<'static>), TlsError> {
    let name = opts.server_name.as_deref().unwrap_or(host).to_string();
    match ServerName::try_from(name.clone()) {
        Ok(server_name) => Ok((name, server_name)),
        Err(_) => Err(TlsError::BadServerName { name }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_flag_or_else_the_host_and_must_be_a_name_or_an_address() {
        let mut opts = TlsClientOptions::default();
        assert_eq!(server_name(&opts, "localhost").unwrap().0, "localhost");
        assert!(matches!(
            server_name(&opts, "::1").unwrap().1,
            ServerName::IpAddress(_)
        ));
        opts.server_name = Some("echo.example".into());
        assert_eq!(server_name(&opts, "127.0.0.1").unwrap().0, "echo.example");
        opts.server_name = Some("bad name".into());
        let err = server_name(&opts, "localhost").unwrap_err().to_string();
        assert!(
            err.contains("'bad name' is not a valid TLS server name"),
            "{err}"
        );
        assert!(err.contains("--server-name"), "{err}");
    }
}
