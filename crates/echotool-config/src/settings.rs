//! The settings one listener can have, each optional so that layers can be merged: built-in
//! defaults, `[defaults]`, the listener's own table, then command-line flags.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use echotool_core::{OnLimit, ServerOptions, TlsVersion};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Settings of a listener, named as `echotool serve`'s long flags.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Where to listen, as a URL (`udp://127.0.0.1:5555`) or `HOST:PORT` (TCP). Only in a
    /// `[[listener]]` table.
    pub listen: Option<toml::Spanned<String>>,
    /// `--max-conns`.
    pub max_conns: Option<usize>,
    /// `--on-limit`.
    pub on_limit: Option<Parsed<OnLimit>>,
    /// `--idle-timeout` (0 = never).
    pub idle_timeout: Option<Seconds>,
    /// `--handshake-timeout`.
    pub handshake_timeout: Option<Seconds>,
    /// `--drain-timeout`.
    pub drain_timeout: Option<Seconds>,
    /// `--backlog`.
    pub backlog: Option<u32>,
    /// TCP_NODELAY (`--nagle` turns it off).
    pub nodelay: Option<bool>,
    /// `--recv-buffer`.
    pub recv_buffer: Option<Bytes>,
    /// `--send-buffer`.
    pub send_buffer: Option<Bytes>,
    /// `--workers`.
    pub workers: Option<u32>,
    /// `--udp-rate-limit`.
    pub udp_rate_limit: Option<u32>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--client-ca`.
    pub client_ca: Option<PathBuf>,
    /// `--tls-version`.
    pub tls_version: Option<Parsed<TlsVersion>>,
    /// `--alpn`.
    pub alpn: Option<Vec<String>>,
}

impl Settings {
    /// These settings with every value set in `over` replaced by it.
    pub fn overlay(&self, over: &Settings) -> Settings {
        macro_rules! pick {
            ($($field:ident),*) => {
                Settings { $($field: over.$field.clone().or_else(|| self.$field.clone())),* }
            };
        }
        pick!(
            listen,
            max_conns,
            on_limit,
            idle_timeout,
            handshake_timeout,
            drain_timeout,
            backlog,
            nodelay,
            recv_buffer,
            send_buffer,
            workers,
            udp_rate_limit,
            cert,
            key,
            client_ca,
            tls_version,
            alpn
        )
    }

    /// Writes every value that is set into `opts`.
    pub fn apply(&self, opts: &mut ServerOptions) {
        let limits = &mut opts.limits;
        set(&mut limits.max_conns, self.max_conns);
        set(&mut limits.on_limit, self.on_limit.map(|p| p.0));
        if let Some(Seconds(idle)) = self.idle_timeout {
            limits.idle_timeout = (!idle.is_zero()).then_some(idle);
        }
        set(
            &mut limits.handshake_timeout,
            self.handshake_timeout.map(|s| s.0),
        );
        set(&mut limits.drain_timeout, self.drain_timeout.map(|s| s.0));
        let socket = &mut opts.socket;
        set(&mut socket.backlog, self.backlog);
        set(&mut socket.nodelay, self.nodelay);
        if let Some(Bytes(n)) = self.recv_buffer {
            socket.recv_buffer = Some(n);
        }
        if let Some(Bytes(n)) = self.send_buffer {
            socket.send_buffer = Some(n);
        }
        if let Some(n) = self.workers {
            opts.datagram.workers = Some(n as usize);
        }
        if let Some(n) = self.udp_rate_limit {
            opts.datagram.rate_limit = Some(n);
        }
        let tls = &mut opts.tls;
        if self.cert.is_some() {
            tls.cert.clone_from(&self.cert);
        }
        if self.key.is_some() {
            tls.key.clone_from(&self.key);
        }
        if self.client_ca.is_some() {
            tls.client_ca.clone_from(&self.client_ca);
        }
        if let Some(v) = self.tls_version {
            tls.version = Some(v.0);
        }
        if let Some(alpn) = &self.alpn {
            tls.alpn.clone_from(alpn);
        }
    }

    /// Makes relative file paths relative to `dir` (the config file's directory).
    pub(crate) fn rebase(&mut self, dir: &Path) {
        for path in [&mut self.cert, &mut self.key, &mut self.client_ca]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// A duration: seconds as a number, or a string with a unit (`"250ms"`, `"10s"`, `"2m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 5, \"250ms\", \"10s\" or \"2m\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|v| Seconds(Duration::from_secs(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Duration::try_from_secs_f64(v)
                    .map(Seconds)
                    .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                echotool_core::duration::parse(v)
                    .map(Seconds)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte size: a number, or a string with a unit (`"16K"`, `"4M"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub usize);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 65536, \"64K\" or \"4M\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
                usize::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
                usize::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                echotool_core::size::parse(v)
                    .map(Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written as a string and parsed with its `FromStr` (`"refuse"`, `"1.3"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<T>(pub T);

/// What a [`Parsed`] value expects, for error messages.
pub trait Expecting {
    /// E.g. `"wait" or "refuse"`.
    const EXPECTING: &'static str;
}

impl Expecting for OnLimit {
    const EXPECTING: &'static str = "\"wait\" or \"refuse\"";
}

impl Expecting for TlsVersion {
    const EXPECTING: &'static str = "\"1.2\" or \"1.3\"";
}

impl<'de, T: std::str::FromStr + Expecting> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: std::str::FromStr + Expecting> Visitor<'_> for V<T> {
            type Value = Parsed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Parsed<T>, E> {
                v.parse()
                    .map(Parsed)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Parsed<T>, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
