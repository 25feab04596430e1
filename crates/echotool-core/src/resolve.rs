//! Name resolution with errors that say which name failed and why.

use std::net::SocketAddr;

use crate::{Error, HostPort, Result};

/// Which IP versions an address may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 or IPv6, whichever the name resolves to first.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// Whether `addr` belongs to this family.
    pub fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }

    /// A loopback host of this family, the default for servers and clients.
    pub fn loopback(self) -> &'static str {
        match self {
            Family::Any | Family::V4 => "127.0.0.1",
            Family::V6 => "::1",
        }
    }
}

/// Resolves `target` to the socket addresses of `family`, in resolver order.
///
/// IP literals never touch the resolver. Fails with [`Error::Resolve`] when the name does not
/// resolve or has no address of the wanted family.
pub async fn resolve(target: &HostPort, family: Family) -> Result<Vec<SocketAddr>> {
    let all: Vec<SocketAddr> = match target.socket_addr() {
        Some(addr) => vec![addr],
        None if target.ip().is_some() => {
            return Err(Error::Resolve {
                host: target.host.clone(),
                reason: "no interface has that name (see `ip link`); the part after % names \
                         the interface of a link-local address"
                    .into(),
            });
        }
        None => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| Error::Resolve {
                host: target.host.clone(),
                reason: resolver_reason(&e),
            })?
            .collect(),
    };
    let wanted: Vec<SocketAddr> = all.iter().copied().filter(|a| family.admits(a)).collect();
    if wanted.is_empty() {
        let reason = match (all.is_empty(), family) {
            (true, _) => "it has no addresses".to_string(),
            (false, Family::V4) => "it has no IPv4 address (use tcp6 or an IPv6 address)".into(),
            (false, _) => "it has no IPv6 address (use tcp4 or an IPv4 address)".into(),
        };
        return Err(Error::Resolve {
            host: target.host.clone(),
            reason,
        });
    }
    Ok(wanted)
}

fn resolver_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    // getaddrinfo's messages arrive as "failed to lookup address information: Name or service
    // not known"; the prefix adds nothing to "could not resolve".
    text.strip_prefix("failed to lookup address information: ")
        .map(str::to_string)
        .unwrap_or(text)
}
