//! Name resolution with errors that say which name failed and why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    admitted(target, &lookup(target).await?, family)
}

/// Every address `target` resolves to, of either family, in resolver order.
async fn lookup(target: &HostPort) -> Result<Vec<SocketAddr>> {
    match target.socket_addr() {
        Some(addr) => Ok(vec![addr]),
        None if target.ip().is_some() => Err(Error::Resolve {
            host: target.host.clone(),
            reason: "no interface has that name (see `ip link`); the part after % names \
                     the interface of a link-local address"
                .into(),
        }),
        None => Ok(tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| Error::Resolve {
                host: target.host.clone(),
                reason: resolver_reason(&e),
            })?
            .collect()),
    }
}

/// The addresses among `all` (what `target` resolved to) that `family` admits.
fn admitted(target: &HostPort, all: &[SocketAddr], family: Family) -> Result<Vec<SocketAddr>> {
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

/// A target's name resolved once, ahead of many dials, as load generators (wrk, h2load,
/// iperf3) resolve theirs: so that a benchmark's set-up times measure connecting, not the
/// resolver, and every dial goes to the same addresses. Dials that carry it in
/// [`crate::ClientOptions::resolved`] skip the resolver for this target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The name and port that were resolved.
    pub target: HostPort,
    /// Every address it resolved to, of either family, in resolver order.
    pub addrs: Arc<[SocketAddr]>,
    /// How long resolving took.
    pub took: Duration,
}

impl Resolved {
    /// Resolves `target` now, keeping every address of either family.
    pub async fn ahead(target: &HostPort) -> Result<Resolved> {
        let start = Instant::now();
        let addrs = lookup(target).await?;
        Ok(Resolved {
            target: target.clone(),
            addrs: addrs.into(),
            took: start.elapsed(),
        })
    }
}

/// The addresses of `family` a client dials for `target`: those of `ahead` when it holds this
/// very target, else resolved now (see [`resolve`]).
pub async fn resolve_dial(
    target: &HostPort,
    family: Family,
    ahead: Option<&Resolved>,
) -> Result<Vec<SocketAddr>> {
    match ahead {
        Some(ahead) if ahead.target == *target => admitted(target, &ahead.addrs, family),
        _ => resolve(target, family).await,
    }
}

fn resolver_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    // getaddrinfo's messages arrive as "failed to lookup address information: Name or service
    // not known"; the prefix adds nothing to "could not resolve".
    text.strip_prefix("failed to lookup address information: ")
        .map(str::to_string)
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ahead_of(host: &str, addrs: &[&str]) -> Resolved {
        Resolved {
            target: HostPort::new(host, 7),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            took: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn a_name_resolved_ahead_is_not_resolved_again() {
        // `.invalid` never resolves (RFC 6761): an answer can only come from `ahead`.
        let ahead = ahead_of("echo.invalid", &["127.0.0.2:7", "[::1]:7"]);
        let target = HostPort::new("echo.invalid", 7);
        let any = resolve_dial(&target, Family::Any, Some(&ahead))
            .await
            .unwrap();
        assert_eq!(any, &ahead.addrs[..]);
        let v6 = resolve_dial(&target, Family::V6, Some(&ahead))
            .await
            .unwrap();
        assert_eq!(v6, vec!["[::1]:7".parse().unwrap()]);
    }

    #[tokio::test]
    async fn addresses_resolved_ahead_still_answer_to_the_family() {
        let ahead = ahead_of("echo.invalid", &["[::1]:7"]);
        let err = resolve_dial(&HostPort::new("echo.invalid", 7), Family::V4, Some(&ahead))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("echo.invalid") && err.contains("no IPv4 address"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn another_target_is_resolved_at_the_dial() {
        let ahead = ahead_of("echo.invalid", &["127.0.0.2:7"]);
        let other_port = resolve_dial(&HostPort::new("127.0.0.1", 9), Family::Any, Some(&ahead))
            .await
            .unwrap();
        assert_eq!(other_port, vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[tokio::test]
    async fn resolving_ahead_keeps_every_family_and_the_time_it_took() {
        let resolved = Resolved::ahead(&HostPort::new("::1", 7)).await.unwrap();
        assert_eq!(&resolved.addrs[..], &["[::1]:7".parse().unwrap()]);
        assert_eq!(resolved.target, HostPort::new("::1", 7));
    }
}
