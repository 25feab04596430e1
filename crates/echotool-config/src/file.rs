//! Reading a config file and turning its listeners into [`ListenSpec`]s.

use std::path::{Path, PathBuf};

use echotool_core::server::ListenSpec;
use echotool_core::{Endpoint, Registry, ServerOptions};
use serde::Deserialize;

use crate::error::humane;
use crate::{ConfigError, Settings};

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

/// Log line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
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
}

/// A parsed config file.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    source: String,
    file: ConfigFile,
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            ConfigError::file(path, format!("cannot read the config file: {why}"))
        })?;
        Config::parse(path, source)
    }

    /// Parses `source` as the contents of `path`.
    pub fn parse(path: &Path, source: String) -> Result<Config, ConfigError> {
        let mut file: ConfigFile = toml::from_str(&source).map_err(|e| {
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
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        file.defaults.rebase(dir);
        for listener in &mut file.listener {
            listener.rebase(dir);
        }
        let config = Config {
            path: path.to_path_buf(),
            source,
            file,
        };
        if let Some(listen) = &config.file.defaults.listen {
            return Err(config.error_at(
                listen.span().start,
                "'listen' belongs in a [[listener]] table, not in [defaults]",
            ));
        }
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

    /// The `[defaults]` table, for listeners given on the command line instead of in the file.
    pub fn defaults(&self) -> &Settings {
        &self.file.defaults
    }

    /// The listeners of the file, each with built-in defaults, then `[defaults]`, then its own
    /// table, then `flags` applied. `proto` is the protocol of addresses written without a URL
    /// scheme.
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
        self.file
            .listener
            .iter()
            .map(|own| {
                let Some(listen) = &own.listen else {
                    return Err(self.error_at(
                        self.listener_start(own),
                        "this [[listener]] has no 'listen' key; expected e.g. listen = \"tcp://127.0.0.1:5555\"",
                    ));
                };
                let at = listen.span().start;
                let endpoint =
                    Endpoint::parse(listen.get_ref()).map_err(|e| self.error_at(at, &e.to_string()))?;
                let (transport, addr) = registry
                    .locate(Some(&endpoint), proto)
                    .map_err(|e| self.error_at(at, &e.to_string()))?;
                let mut options = ServerOptions::default();
                self.file.defaults.overlay(own).overlay(flags).apply(&mut options);
                transport.check(&options).map_err(|e| {
                    let message = e.to_string();
                    let at = self.file_key_mentioned(own, &message).unwrap_or(at);
                    self.error_at(at, &message)
                })?;
                Ok(ListenSpec {
                    transport,
                    addr,
                    options,
                })
            })
            .collect()
    }

    /// Where a file-valued key (cert, key, client-ca) whose path `message` mentions is written:
    /// the listener's own table first, then `[defaults]`.
    fn file_key_mentioned(&self, own: &Settings, message: &str) -> Option<usize> {
        let start = self.listener_start(own);
        let own_end = self.source[start + 1..]
            .find("\n[")
            .map_or(self.source.len(), |e| start + 1 + e);
        let mut tables = vec![(own, start, own_end)];
        if let Some(defaults) = self.source.find("[defaults]") {
            let end = self.source[defaults + 1..]
                .find("\n[")
                .map_or(self.source.len(), |e| defaults + 1 + e);
            tables.push((&self.file.defaults, defaults, end));
        }
        for (settings, from, to) in tables {
            for (key, value) in [
                ("cert", &settings.cert),
                ("key", &settings.key),
                ("client-ca", &settings.client_ca),
            ] {
                let Some(path) = value else { continue };
                if !message.contains(&path.display().to_string()) {
                    continue;
                }
                let region = &self.source[from..to];
                let mut offset = 0;
                for line in region.split_inclusive('\n') {
                    let written = line.split_once('=').map(|(k, _)| k.trim());
                    if written == Some(key) {
                        return Some(from + offset);
                    }
                    offset += line.len();
                }
            }
        }
        None
    }

    fn listener_start(&self, own: &Settings) -> usize {
        // A listener without `listen` has no span of its own; point at its table header.
        let index = self
            .file
            .listener
            .iter()
            .position(|l| std::ptr::eq(l, own))
            .unwrap_or(0);
        self.source
            .match_indices("[[listener]]")
            .nth(index)
            .map(|(at, _)| at)
            .unwrap_or(0)
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
}
