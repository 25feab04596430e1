//! Reading a config file and turning its listeners into [`ListenSpec`]s.
//!
//! Everything `serve --config` would refuse is found here, before anything is bound, and
//! pointed at by file, line and key: syntax, types and unknown keys; values outside their
//! range; certificate files that cannot be read, whatever the protocol; keys that do nothing
//! for their listener; errors a transport finds in its settings (at the key that set the
//! value); and listeners that could never bind side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use echotool_core::{Endpoint, Registry, ServerOptions, Setting, Transport};
use echotool_core::{ListenSpec, find_conflict};
use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::error::humane;
use crate::reads::{readers, suggestion};
use crate::{ConfigError, MetricsSettings, Settings, parse_metrics_address};

/// The `[log]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// How much to log; `-v`/`-q` override it.
    pub level: Option<LogLevel>,
    /// How to write log lines; `--log-format` overrides it.
    pub format: Option<LogFormat>,
}

/// Log levels, as in `RUST_LOG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default: start-up, shutdown and warnings.
    Info,
    /// Every connection.
    Debug,
    /// Everything.
    Trace,
}

/// Log line formats, for the config file's `[log] format` and the `--log-format` flag alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Every format by name, as `--log-format` and the file take it.
    pub const NAMES: [&'static str; 2] = ["text", "json"];
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("'{s}' is not a log format: use text or json")),
        }
    }
}

/// The file's layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    log: LogSettings,
    #[serde(default)]
    defaults: Settings,
    #[serde(default)]
    listener: Vec<Settings>,
    metrics: Option<MetricsSettings>,
}

/// Where each key of a table is written: the span of its value, which starts on the key's line.
type Places = BTreeMap<String, Spanned<IgnoredAny>>;

/// The same layout again, with where things are written instead of what they say.
#[derive(Debug, Default, Deserialize)]
struct FilePlaces {
    #[serde(default)]
    defaults: Places,
    #[serde(default)]
    listener: Vec<Spanned<Places>>,
}

/// A table that settings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    /// `[defaults]`.
    Defaults,
    /// The listener table with this index.
    Listener(usize),
}

/// A parsed config file.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    source: String,
    file: ConfigFile,
    places: FilePlaces,
    /// `[metrics] listen`, parsed.
    metrics: Option<echotool_core::HostPort>,
}

impl Config {
    /// Reads and parses `path`, and checks that every certificate, key and CA file it names can
    /// be read.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::file(
                path,
                format!("cannot read the config file: {}", io_reason(&e)),
            )
        })?;
        let config = Config::parse(path, source)?;
        config.check_files()?;
        Ok(config)
    }

    /// Parses `source` as the contents of `path`: syntax, types, keys and ranges of values.
    pub fn parse(path: &Path, source: String) -> Result<Config, ConfigError> {
        let syntax = |e: toml::de::Error| {
            let (line, key) = match e.span() {
                Some(span) => locate(&source, span.start),
                None => (None, None),
            };
            ConfigError {
                path: path.to_path_buf(),
                line,
                key,
                message: humane(e.message()),
            }
        };
        let mut file: ConfigFile = toml::from_str(&source).map_err(syntax)?;
        let places: FilePlaces = toml::from_str(&source).map_err(syntax)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        file.defaults.rebase(dir);
        for listener in &mut file.listener {
            listener.rebase(dir);
        }
        let mut config = Config {
            path: path.to_path_buf(),
            source,
            file,
            places,
            metrics: None,
        };
        if let Some(listen) = config.file.metrics.as_ref().map(|m| &m.listen) {
            let address = parse_metrics_address(listen.get_ref())
                .map_err(|e| config.error_at(listen.span().start, &e))?;
            config.metrics = Some(address);
        }
        if let Some(listen) = &config.file.defaults.listen {
            return Err(config.error_at(
                listen.span().start,
                "'listen' belongs in a [[listener]] table, not in [defaults]",
            ));
        }
        config.check_ranges()?;
        Ok(config)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `[log]` table.
    pub fn log(&self) -> &LogSettings {
        &self.file.log
    }

    /// Where `[metrics]` says to serve metrics, if it is there.
    pub fn metrics(&self) -> Option<&echotool_core::HostPort> {
        self.metrics.as_ref()
    }

    /// The `[defaults]` table, for listeners given on the command line instead of in the file.
    pub fn defaults(&self) -> &Settings {
        &self.file.defaults
    }

    /// The listeners of the file, each with built-in defaults, then `[defaults]` (the keys it
    /// reads), then its own table, then `flags` applied. `proto` is the protocol of addresses
    /// written without a URL scheme. Refuses keys a listener does not read, settings its
    /// transport finds wrong, and listeners that could not bind side by side.
    pub fn listeners(
        &self,
        registry: &Registry,
        proto: &str,
        flags: &Settings,
    ) -> Result<Vec<ListenSpec>, ConfigError> {
        if self.file.listener.is_empty() {
            return Err(ConfigError::file(
                &self.path,
                "no listeners: add a [[listener]] table with listen = \"tcp://127.0.0.1:5555\"",
            ));
        }
        let specs = (0..self.file.listener.len())
            .map(|index| self.listener(index, registry, proto, flags))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(conflict) = find_conflict(&specs) {
            let (a, b) = (&specs[conflict.first], &specs[conflict.second]);
            let line = |index| locate(&self.source, self.listen_at(index)).0.unwrap_or(0);
            return Err(self.error_at(
                self.listen_at(conflict.second),
                &format!(
                    "{} conflicts with {} on line {}: {}; {}",
                    b.url(),
                    a.url(),
                    line(conflict.first),
                    conflict.why,
                    conflict.remedy()
                ),
            ));
        }
        Ok(specs)
    }

    /// The listener with this index, checked.
    fn listener(
        &self,
        index: usize,
        registry: &Registry,
        proto: &str,
        flags: &Settings,
    ) -> Result<ListenSpec, ConfigError> {
        let own = &self.file.listener[index];
        let Some(listen) = &own.listen else {
            return Err(self.error_at(
                self.table_at(index),
                "this [[listener]] has no 'listen' key; expected e.g. listen = \"tcp://127.0.0.1:5555\"",
            ));
        };
        let at = listen.span().start;
        let endpoint =
            Endpoint::parse(listen.get_ref()).map_err(|e| self.error_at(at, &e.to_string()))?;
        let (transport, addr) = registry
            .locate(Some(&endpoint), proto)
            .map_err(|e| self.error_at(at, &e.to_string()))?;
        let reads = transport.reads();
        if let Some(setting) = own.given().into_iter().find(|s| !reads.contains(s)) {
            let message = unread(registry, setting, &*transport, &addr);
            return Err(self.error_about(Table::Listener(index), setting, &message));
        }
        let mut options = ServerOptions::default();
        let layered = self.file.defaults.overlay(own).overlay(flags);
        layered.only(&reads).apply(&mut options);
        transport.check(&options).map_err(|e| {
            // Point at the key that set the value: flags win over the listener's own table,
            // which wins over [defaults]; a value from a flag is not in the file at all.
            match e.concerns() {
                Some(s) if flags.has(s) => {
                    self.error_at(at, &format!("{e} (the value comes from {})", s.flag()))
                }
                Some(s) if own.has(s) => {
                    self.error_about(Table::Listener(index), s, &e.to_string())
                }
                Some(s) => self.error_about(Table::Defaults, s, &e.to_string()),
                None => self.error_at(at, &e.to_string()),
            }
        })?;
        Ok(ListenSpec {
            transport,
            addr,
            options,
            origin: Some(self.error_at(at, "").place()),
        })
    }

    /// Values outside their range, in `[defaults]` and every listener's table.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        for (table, settings) in self.tables() {
            if let Some(setting) = settings.out_of_range() {
                let found = self.written(table, setting).unwrap_or("this");
                let message = format!("found {found}, expected {}", setting.expecting());
                return Err(self.error_about(table, setting, &message));
            }
        }
        Ok(())
    }

    /// Certificate, key and CA files that cannot be read, in any table and whatever the
    /// protocol: a path that is wrong is wrong even where it would not be used.
    fn check_files(&self) -> Result<(), ConfigError> {
        for (table, settings) in self.tables() {
            for (setting, path) in settings.files() {
                if let Err(why) = readable(path) {
                    let what = match setting {
                        Setting::Key => "private key",
                        Setting::ClientCa => "CA certificate",
                        _ => "certificate",
                    };
                    let message = format!(
                        "cannot read the {what} file {}: {why}; check the path (relative paths \
                         start at the config file's directory)",
                        path.display()
                    );
                    return Err(self.error_about(table, setting, &message));
                }
            }
        }
        Ok(())
    }

    /// Every table of settings: `[defaults]`, then the listeners in order.
    fn tables(&self) -> impl Iterator<Item = (Table, &Settings)> {
        std::iter::once((Table::Defaults, &self.file.defaults)).chain(
            self.file
                .listener
                .iter()
                .enumerate()
                .map(|(i, l)| (Table::Listener(i), l)),
        )
    }

    fn places(&self, table: Table) -> Option<&Places> {
        match table {
            Table::Defaults => Some(&self.places.defaults),
            Table::Listener(i) => self.places.listener.get(i).map(Spanned::get_ref),
        }
    }

    /// Where the value of `setting` is written in `table`.
    fn key_at(&self, table: Table, setting: Setting) -> Option<usize> {
        Some(self.places(table)?.get(setting.key())?.span().start)
    }

    /// The value of `setting` in `table` as written.
    fn written(&self, table: Table, setting: Setting) -> Option<&str> {
        let span = self.places(table)?.get(setting.key())?.span();
        self.source.get(span).map(str::trim)
    }

    /// Where listener `index`'s table starts (its `[[listener]]` header).
    fn table_at(&self, index: usize) -> usize {
        self.places
            .listener
            .get(index)
            .map_or(0, |t| t.span().start)
    }

    /// Where listener `index`'s `listen` is written, or its table when it has none.
    fn listen_at(&self, index: usize) -> usize {
        self.file.listener[index]
            .listen
            .as_ref()
            .map_or_else(|| self.table_at(index), |l| l.span().start)
    }

    /// An error about the value of `setting` in `table`, at its line.
    fn error_about(&self, table: Table, setting: Setting, message: &str) -> ConfigError {
        let at = self.key_at(table, setting).unwrap_or(0);
        ConfigError {
            key: Some(setting.key().to_string()),
            ..self.error_at(at, message)
        }
    }

    /// An error at byte offset `at` of the file.
    fn error_at(&self, at: usize, message: &str) -> ConfigError {
        let (line, key) = locate(&self.source, at);
        ConfigError {
            path: self.path.clone(),
            line,
            key,
            message: message.to_string(),
        }
    }
}

/// What to say about a key in a listener's own table that the listener does not read.
fn unread(
    registry: &Registry,
    setting: Setting,
    transport: &dyn Transport,
    addr: &echotool_core::HostPort,
) -> String {
    let instead = match suggestion(registry, setting, transport) {
        Some(other) => format!(
            "use listen = \"{}://{addr}\", or remove the key",
            other.name()
        ),
        None => "remove it".into(),
    };
    format!(
        "this key does nothing for a {} listener (only {} listeners read it): {instead}",
        transport.name(),
        readers(registry, setting)
    )
}

/// Whether a file can be opened for reading, and if not why, in words.
fn readable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| io_reason(&e))?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    // Opening a FIFO would wait for a writer; only regular files are opened to try.
    if meta.is_file() {
        std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    }
    Ok(())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The 1-based line of byte offset `at`, and the key written on that line, if any.
fn locate(source: &str, at: usize) -> (Option<usize>, Option<String>) {
    let at = at.min(source.len());
    let line_no = source[..at].matches('\n').count() + 1;
    let line = source.lines().nth(line_no - 1).unwrap_or("").trim();
    let key = if let Some(header) = line.strip_prefix('[') {
        Some(
            header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        )
    } else {
        line.split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .or_else(|| {
                let word = line.split_whitespace().next()?;
                Some(word.to_string())
            })
    };
    (Some(line_no), key.filter(|k| !k.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(Path::new("echotool.toml"), text.to_string())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn type_errors_name_line_key_found_and_expected() {
        let e = err("[defaults]\n\nmax-conns = \"many\"\n");
        assert_eq!(
            e,
            "echotool.toml, line 3, key 'max-conns': found string \"many\", expected a whole number"
        );
        let e = err("[defaults]\nidle-timeout = \"soon\"\n");
        assert!(e.starts_with("echotool.toml, line 2, key 'idle-timeout': found string \"soon\", expected a duration"), "{e}");
        let e = err("[defaults]\non-limit = \"drop\"\n");
        assert!(
            e.contains("key 'on-limit': found string \"drop\", expected \"wait\" or \"refuse\""),
            "{e}"
        );
        let e = err("[log]\nlevel = \"loud\"\n");
        assert!(
            e.contains("line 2, key 'level': found 'loud', expected one of 'error'"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = err("[[listener]]\nlisten = \"tcp://:0\"\nmaxconns = 5\n");
        assert!(
            e.starts_with(
                "echotool.toml, line 3, key 'maxconns': unknown key 'maxconns', expected one of"
            ),
            "{e}"
        );
        let e = err("[listners]\n");
        assert!(
            e.contains("line 1, key 'listners': unknown key 'listners'"),
            "{e}"
        );
    }

    #[test]
    fn the_metrics_table_names_an_address() {
        let config = Config::parse(
            Path::new("e.toml"),
            "[metrics]\nlisten = \"0.0.0.0:9555\"\n".to_string(),
        )
        .unwrap();
        assert_eq!(config.metrics().unwrap().to_string(), "0.0.0.0:9555");
        let none = Config::parse(Path::new("e.toml"), String::new()).unwrap();
        assert!(none.metrics().is_none());
        let e = err("[log]\nlevel = \"info\"\n[metrics]\nlisten = \"tls://:9555\"\n");
        assert!(
            e.starts_with("echotool.toml, line 4, key 'listen': 'tls://:9555' is not a metrics"),
            "{e}"
        );
        let e = err("[metrics]\nport = 9555\n");
        assert!(e.contains("line 2, key 'port': unknown key 'port'"), "{e}");
        let e = err("[metrics]\n");
        assert!(
            e.contains("line 1, key 'metrics': missing key 'listen'"),
            "{e}"
        );
    }

    #[test]
    fn listen_belongs_to_listeners() {
        let e = err("[defaults]\nlisten = \"tcp://:0\"\n");
        assert!(
            e.contains("line 2, key 'listen': 'listen' belongs in a [[listener]] table"),
            "{e}"
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let config = Config::parse(
            Path::new("/etc/echotool/e.toml"),
            "[defaults]\nmax-conns = 10\nidle-timeout = 0\n[[listener]]\nlisten = \"tcp://:0\"\nmax-conns = 20\ncert = \"c.pem\"\n".into(),
        )
        .unwrap();
        let own = &config.file.listener[0];
        let flags = Settings {
            backlog: Some(7),
            ..Settings::default()
        };
        let mut opts = ServerOptions::default();
        config
            .defaults()
            .overlay(own)
            .overlay(&flags)
            .apply(&mut opts);
        assert_eq!(opts.limits.max_conns, 20);
        assert_eq!(opts.limits.idle_timeout, None);
        assert_eq!(opts.socket.backlog, 7);
        assert_eq!(
            opts.tls.cert.as_deref(),
            Some(Path::new("/etc/echotool/c.pem"))
        );
    }

    /// Transports that read what their names say, bind what they say, and refuse a
    /// `tls-version` of 1.2 the way QUIC does.
    mod fake {
        use echotool_core::{
            Binding, ClientOptions, Connection, Error, HostPort, Result, Server, ServerOptions,
            Setting, TlsVersion, Transport, async_trait,
        };

        pub struct Fake(pub &'static str, pub Binding, pub &'static [Setting]);

        #[async_trait]
        impl Transport for Fake {
            fn name(&self) -> &'static str {
                self.0
            }
            fn summary(&self) -> &'static str {
                "a stand-in"
            }
            fn binds(&self) -> Binding {
                self.1
            }
            fn reads(&self) -> Vec<Setting> {
                self.2.to_vec()
            }
            fn check(&self, opts: &ServerOptions) -> Result<()> {
                match opts.tls.version {
                    Some(TlsVersion::V1_2) => Err(Error::setting(
                        Setting::TlsVersion,
                        Error::Invalid("1.3 only".into()),
                    )),
                    _ => Ok(()),
                }
            }
            async fn bind(&self, _: &HostPort, _: &ServerOptions) -> Result<Box<dyn Server>> {
                Err(Error::Invalid("not here".into()))
            }
            async fn dial(&self, _: &HostPort, _: &ClientOptions) -> Result<Connection> {
                Err(Error::Invalid("not here".into()))
            }
        }
    }

    fn registry() -> Registry {
        use echotool_core::Binding::{Tcp, Udp};
        use echotool_core::Setting::*;
        let mut registry = Registry::new();
        registry
            .register(fake::Fake("plain", Tcp, &[MaxConns, Nodelay]))
            .register(fake::Fake("dgram", Udp, &[Workers]))
            .register(fake::Fake("secure", Udp, &[MaxConns, Cert, TlsVersion]));
        registry
    }

    fn listeners(text: &str) -> Result<Vec<ListenSpec>, String> {
        Config::parse(Path::new("e.toml"), text.to_string())
            .and_then(|c| c.listeners(&registry(), "plain", &Settings::default()))
            .map_err(|e| e.to_string())
    }

    fn refused(text: &str) -> String {
        match listeners(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn values_out_of_range_are_refused_where_written() {
        let e = err("[defaults]\nworkers = 0\n");
        assert_eq!(
            e,
            "echotool.toml, line 2, key 'workers': found 0, expected a whole number from 1 to 1024"
        );
        let e = err("[[listener]]\nlisten = \"x:1\"\nsend-buffer = \"0K\"\n");
        assert!(
            e.contains("line 3, key 'send-buffer': found \"0K\", expected a size from 1 byte"),
            "{e}"
        );
    }

    #[test]
    fn own_keys_must_be_read_and_defaults_are_skipped_where_they_do_not_fit() {
        let e = refused("[[listener]]\nlisten = \"plain://127.0.0.1:1\"\n\nworkers = 2\n");
        assert_eq!(
            e,
            "e.toml, line 4, key 'workers': this key does nothing for a plain listener (only \
             dgram listeners read it): use listen = \"dgram://127.0.0.1:1\", or remove the key"
        );
        let specs = listeners(
            "[defaults]\nworkers = 3\nmax-conns = 7\n[[listener]]\nlisten = \"plain://127.0.0.1:1\"\n\
             [[listener]]\nlisten = \"dgram://127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(specs[0].options.datagram.workers, None, "skipped");
        assert_eq!(specs[0].options.limits.max_conns, 7);
        assert_eq!(specs[1].options.datagram.workers, Some(3));
        assert_eq!(specs[1].options.limits.max_conns, 10_000, "skipped");
        assert_eq!(
            specs[1].origin.as_deref(),
            Some("e.toml, line 7, key 'listen'")
        );
    }

    #[test]
    fn a_transport_error_about_a_setting_points_at_its_key() {
        let own = refused(
            "[defaults]\ntls-version = \"1.3\"\n[[listener]]\nlisten = \"secure://:1\"\n\
             tls-version = \"1.2\"\n",
        );
        assert_eq!(own, "e.toml, line 5, key 'tls-version': 1.3 only");
        let defaults =
            refused("[defaults]\ntls-version = \"1.2\"\n[[listener]]\nlisten = \"secure://:1\"\n");
        assert_eq!(defaults, "e.toml, line 2, key 'tls-version': 1.3 only");
    }

    #[test]
    fn conflicts_name_both_listeners_and_lines() {
        let e = refused(
            "[[listener]]\nlisten = \"dgram://0.0.0.0:9\"\n[[listener]]\nlisten = \"plain://127.0.0.1:9\"\n\
             [[listener]]\nlisten = \"secure://127.0.0.1:9\"\n",
        );
        assert_eq!(
            e,
            "e.toml, line 6, key 'listen': secure://127.0.0.1:9 conflicts with dgram://0.0.0.0:9 \
             on line 2: both need UDP port 9, and 0.0.0.0 includes 127.0.0.1; give one of them \
             another port"
        );
    }

    #[test]
    fn a_listener_without_listen_is_pointed_at_by_its_header() {
        let e = refused("[[listener]]\nlisten = \"plain://:1\"\n\n[[listener]]\nmax-conns = 2\n");
        assert!(
            e.starts_with("e.toml, line 4, key 'listener': this [[listener]] has no"),
            "{e}"
        );
    }
}
