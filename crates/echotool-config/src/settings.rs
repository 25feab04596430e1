//! The settings one listener can have, each optional so that layers can be merged: built-in
//! defaults, `[defaults]`, the listener's own table, then command-line flags.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use echotool_core::{OnLimit, ServerOptions, Setting, TlsVersion, duration};
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
    /// `--mode`.
    pub mode: Option<FileMode>,
    /// `--ws-max-message`.
    pub ws_max_message: Option<Bytes>,
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
            mode,
            ws_max_message,
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
        if let Some(FileMode(mode)) = self.mode {
            opts.socket_file.mode = Some(mode);
        }
        if let Some(Bytes(n)) = self.ws_max_message {
            opts.websocket.max_message = Some(n);
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

    /// Whether `setting` is given here.
    pub fn has(&self, setting: Setting) -> bool {
        use Setting::*;
        match setting {
            MaxConns => self.max_conns.is_some(),
            OnLimit => self.on_limit.is_some(),
            IdleTimeout => self.idle_timeout.is_some(),
            HandshakeTimeout => self.handshake_timeout.is_some(),
            DrainTimeout => self.drain_timeout.is_some(),
            Backlog => self.backlog.is_some(),
            Nodelay => self.nodelay.is_some(),
            RecvBuffer => self.recv_buffer.is_some(),
            SendBuffer => self.send_buffer.is_some(),
            Workers => self.workers.is_some(),
            UdpRateLimit => self.udp_rate_limit.is_some(),
            Mode => self.mode.is_some(),
            WsMaxMessage => self.ws_max_message.is_some(),
            Cert => self.cert.is_some(),
            Key => self.key.is_some(),
            ClientCa => self.client_ca.is_some(),
            TlsVersion => self.tls_version.is_some(),
            Alpn => self.alpn.is_some(),
        }
    }

    /// Every setting given here (every key but `listen`), in [`Setting::ALL`] order.
    pub fn given(&self) -> Vec<Setting> {
        Setting::ALL.into_iter().filter(|&s| self.has(s)).collect()
    }

    /// These settings with only those in `keep` left (and `listen`): what a listener that reads
    /// `keep` gets from them.
    pub fn only(&self, keep: &[Setting]) -> Settings {
        let mut kept = self.clone();
        for setting in Setting::ALL.into_iter().filter(|s| !keep.contains(s)) {
            kept.clear(setting);
        }
        kept
    }

    fn clear(&mut self, setting: Setting) {
        use Setting::*;
        match setting {
            MaxConns => self.max_conns = None,
            OnLimit => self.on_limit = None,
            IdleTimeout => self.idle_timeout = None,
            HandshakeTimeout => self.handshake_timeout = None,
            DrainTimeout => self.drain_timeout = None,
            Backlog => self.backlog = None,
            Nodelay => self.nodelay = None,
            RecvBuffer => self.recv_buffer = None,
            SendBuffer => self.send_buffer = None,
            Workers => self.workers = None,
            UdpRateLimit => self.udp_rate_limit = None,
            Mode => self.mode = None,
            WsMaxMessage => self.ws_max_message = None,
            Cert => self.cert = None,
            Key => self.key = None,
            ClientCa => self.client_ca = None,
            TlsVersion => self.tls_version = None,
            Alpn => self.alpn = None,
        }
    }

    /// The numbers [`Setting::accepts`] judges for `setting`: the value in the unit of
    /// [`Setting::range`], or for `alpn` the length of each name.
    fn numbers(&self, setting: Setting) -> Vec<u64> {
        use Setting::*;
        let whole = |n: Option<usize>| n.map(|n| u64::try_from(n).unwrap_or(u64::MAX));
        let millis =
            |d: Option<Seconds>| d.map(|d| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX));
        let one = match setting {
            MaxConns => whole(self.max_conns),
            Backlog => self.backlog.map(u64::from),
            Workers => self.workers.map(u64::from),
            UdpRateLimit => self.udp_rate_limit.map(u64::from),
            Mode => self.mode.map(|m| u64::from(m.0)),
            RecvBuffer => whole(self.recv_buffer.map(|b| b.0)),
            SendBuffer => whole(self.send_buffer.map(|b| b.0)),
            WsMaxMessage => whole(self.ws_max_message.map(|b| b.0)),
            IdleTimeout => millis(self.idle_timeout),
            HandshakeTimeout => millis(self.handshake_timeout),
            DrainTimeout => millis(self.drain_timeout),
            Alpn => {
                let names = self.alpn.iter().flatten();
                return names.map(|name| name.len() as u64).collect();
            }
            _ => None,
        };
        one.into_iter().collect()
    }

    /// The first setting given here whose value is outside what it accepts
    /// ([`Setting::accepts`]): `workers = 0`, `max-conns = 0`, an empty ALPN name.
    pub fn out_of_range(&self) -> Option<Setting> {
        Setting::ALL
            .into_iter()
            .find(|&s| self.numbers(s).into_iter().any(|n| !s.accepts(n)))
    }

    /// The files given (`cert`, `key`, `client-ca`), with the setting that names each.
    pub fn files(&self) -> Vec<(Setting, &Path)> {
        [
            (Setting::Cert, &self.cert),
            (Setting::Key, &self.key),
            (Setting::ClientCa, &self.client_ca),
        ]
        .into_iter()
        .filter_map(|(setting, path)| Some((setting, path.as_deref()?)))
        .collect()
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
                f.write_str(
                    "a duration such as 5, \"250ms\", \"10s\" or \"2m\" (at most 100 years)",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                duration::within_max(Duration::from_secs(v))
                    .map(Seconds)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Duration::try_from_secs_f64(v)
                    .ok()
                    .and_then(duration::within_max)
                    .map(Seconds)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                duration::parse(v)
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

/// A file mode, written as a string of octal digits the way chmod takes them (`"0660"`). A
/// number is refused: TOML reads `660` as decimal, which is not the mode anyone means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file mode in octal, as a string such as \"0660\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                echotool_core::mode::parse(v)
                    .map(FileMode)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_a_key_of_the_file() {
        for setting in Setting::ALL {
            let text = format!("{} = 1", setting.key());
            if let Err(e) = toml::from_str::<Settings>(&text) {
                assert!(!e.message().contains("unknown"), "{setting}: {e}");
            }
        }
    }

    #[test]
    fn given_and_only_agree_with_the_fields() {
        let all: Settings = toml::from_str(
            "max-conns = 1\non-limit = \"wait\"\nidle-timeout = 1\nhandshake-timeout = 1\n\
             drain-timeout = 1\nbacklog = 1\nnodelay = true\nrecv-buffer = 1\nsend-buffer = 1\n\
             workers = 1\nudp-rate-limit = 1\nmode = \"0660\"\nws-max-message = \"4M\"\ncert = \"c\"\nkey = \"k\"\n\
             client-ca = \"a\"\n\
             tls-version = \"1.3\"\nalpn = [\"echo\"]\n",
        )
        .unwrap();
        assert_eq!(all.given(), Setting::ALL);
        let kept = all.only(&[Setting::Workers, Setting::Cert]);
        assert_eq!(kept.given(), [Setting::Workers, Setting::Cert]);
        assert_eq!(all.out_of_range(), None);
        assert_eq!(all.files().len(), 3);
    }

    #[test]
    fn values_outside_their_range_are_found() {
        for (text, setting) in [
            ("workers = 0", Setting::Workers),
            ("workers = 1025", Setting::Workers),
            ("max-conns = 0", Setting::MaxConns),
            ("udp-rate-limit = 0", Setting::UdpRateLimit),
            ("backlog = 0", Setting::Backlog),
            ("recv-buffer = 0", Setting::RecvBuffer),
            ("send-buffer = \"0K\"", Setting::SendBuffer),
            ("handshake-timeout = 0", Setting::HandshakeTimeout),
            ("alpn = [\"echo\", \"\"]", Setting::Alpn),
            ("mode = \"1777\"", Setting::Mode),
            ("ws-max-message = 0", Setting::WsMaxMessage),
            ("ws-max-message = \"2G\"", Setting::WsMaxMessage),
        ] {
            let settings: Settings = toml::from_str(text).unwrap();
            assert_eq!(settings.out_of_range(), Some(setting), "{text}");
        }
        let err = toml::from_str::<Settings>("mode = 660").unwrap_err();
        assert!(
            err.message().contains("as a string such as \"0660\""),
            "{err}"
        );
        let zero_is_never: Settings = toml::from_str("idle-timeout = 0").unwrap();
        assert_eq!(zero_is_never.out_of_range(), None);
    }

    /// Found by the config_value fuzz target: `drain-timeout = "11490111111111111"` (and any
    /// number of seconds up to 2^64) was taken, and overflowed the clock as a deadline.
    #[test]
    fn durations_beyond_a_hundred_years_are_refused() {
        for text in [
            "drain-timeout = \"11490111111111111\"",
            "idle-timeout = 9223372036854775807",
            "handshake-timeout = 1e12",
        ] {
            let err = toml::from_str::<Settings>(text).unwrap_err().to_string();
            assert!(err.contains("(at most 100 years)"), "{text}: {err}");
        }
        let longest: Settings = toml::from_str("idle-timeout = 3153600000").unwrap();
        assert_eq!(longest.idle_timeout, Some(Seconds(duration::MAX)));
    }
}
