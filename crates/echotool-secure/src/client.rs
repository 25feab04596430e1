//! Client configurations kept across dials, so that a transport dialing the same server again
//! (a benchmark, a reconnecting client) can resume its session.

use std::sync::Mutex;

use echotool_core::TlsClientOptions;

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
