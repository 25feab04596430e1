//! Config errors that point at the file, line and key.

use std::path::PathBuf;

/// A config file problem: where it is, and what was found versus expected.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", self.place())]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The key on that line, when there is one.
    pub key: Option<String>,
    /// What was found and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            line: None,
            key: None,
            message: message.into(),
        }
    }

    /// Where the problem is, as errors show it: `echotool.toml, line 12, key 'listen'`.
    pub fn place(&self) -> String {
        let mut place = self.path.display().to_string();
        if let Some(line) = self.line {
            place.push_str(&format!(", line {line}"));
        }
        if let Some(key) = &self.key {
            place.push_str(&format!(", key '{key}'"));
        }
        place
    }
}

/// Rephrases serde's wording ("invalid type: string \"x\", expected usize") for people.
pub(crate) fn humane(message: &str) -> String {
    let mut text = message.trim().to_string();
    for (from, to) in [("invalid type: ", "found "), ("invalid value: ", "found ")] {
        if let Some(rest) = text.strip_prefix(from) {
            text = format!("{to}{rest}");
        }
    }
    if let Some(rest) = text.strip_prefix("unknown field ") {
        text = format!("unknown key {rest}");
    }
    if let Some(rest) = text.strip_prefix("missing field ") {
        text = format!("missing key {rest}");
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        text = format!("found {rest}");
    }
    for (rust, words) in [
        ("usize", "a whole number"),
        ("u64", "a whole number"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("a sequence", "a list"),
        ("a map", "a table"),
    ] {
        text = text.replace(&format!("expected {rust}"), &format!("expected {words}"));
    }
    text.replace('`', "'")
}
