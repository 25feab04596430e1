//! Which listeners read which settings, and what to say about a setting that would do nothing:
//! the words shared by config file errors and `serve`'s flag errors.

use std::sync::Arc;

use echotool_core::ListenSpec;
use echotool_core::{Error, Registry, Setting, Transport};

use crate::Settings;

/// The registered transports that read `setting`, in words: "tls and quic".
pub fn readers(registry: &Registry, setting: Setting) -> String {
    let names: Vec<&str> = registry
        .iter()
        .filter(|t| t.reads().contains(&setting))
        .map(|t| t.name())
        .collect();
    match names.split_last() {
        None => "no".into(),
        Some((last, [])) => (*last).into(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A transport to use instead of `instead_of` so that `setting` applies: one that reads it
/// and is addressed the same way (a TCP address makes no Unix socket path), on the same kind
/// of socket if there is one.
pub fn suggestion(
    registry: &Registry,
    setting: Setting,
    instead_of: &dyn Transport,
) -> Option<Arc<dyn Transport>> {
    let readers: Vec<&Arc<dyn Transport>> = registry
        .iter()
        .filter(|t| t.reads().contains(&setting) && t.addressing() == instead_of.addressing())
        .collect();
    readers
        .iter()
        .find(|t| t.binds() == instead_of.binds())
        .or(readers.first())
        .map(|t| Arc::clone(t))
}

/// Refuses a flag that none of `specs` reads (`serve --proto tcp --cert c.pem`), with what
/// would have used it. `by_proto` says the listeners' protocol came from `--proto`, so the
/// suggestion is another `--proto` rather than another URL.
pub fn refuse_unread_flags(
    registry: &Registry,
    flags: &Settings,
    specs: &[ListenSpec],
    by_proto: bool,
) -> Result<(), Error> {
    let Some(first) = specs.first() else {
        return Ok(());
    };
    let unread = flags
        .given()
        .into_iter()
        .find(|s| specs.iter().all(|spec| !spec.transport.reads().contains(s)));
    let Some(setting) = unread else {
        return Ok(());
    };
    let urls: Vec<String> = specs.iter().map(ListenSpec::url).collect();
    let hint = match suggestion(registry, setting, &*first.transport) {
        Some(other) if by_proto => format!("did you mean --proto {}?", other.name()),
        Some(other) => format!("did you mean {}://{}?", other.name(), first.addr),
        None => "drop it".into(),
    };
    Err(Error::Invalid(format!(
        "{} does nothing for {} (only {} listeners read it): {hint}",
        setting.flag(),
        urls.join(", "),
        readers(registry, setting),
    )))
}
