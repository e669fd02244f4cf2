//! The address guard: webhooks are posted only to public internet addresses.
//!
//! A tenant chooses the URL, so without a guard a webhook could reach the server's own
//! network (a metadata service, a database, an admin port). Every address a host resolves
//! to is checked: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local
//! (169.254/16, fe80::/10), unspecified, CGNAT (100.64/10), broadcast, multicast,
//! documentation and other reserved ranges, and IPv4-mapped (or NAT64) IPv6 forms of
//! those are refused. The check runs when an endpoint is registered or its URL changes,
//! and again at every delivery, inside the HTTP client's resolver ([`GuardedResolver`]):
//! the connection goes to exactly the addresses that were checked, with no second lookup
//! a rebinding DNS server could answer differently.
//!
//! `EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES=true` turns the guard off (development, tests).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address may not be posted to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The host is, or resolves to, an address that is not a public internet address.
    #[error("{host} ({ip}) is not a public internet address")]
    NotAllowed {
        /// The host as written in the URL.
        host: String,
        /// The address refused.
        ip: IpAddr,
    },
    /// The host could not be resolved.
    #[error("{host} could not be resolved: {reason}")]
    Unresolvable {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Whether `ip` is a public internet address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xC0) == 64) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || (a == 198 && (b & 0xFE) == 18) // benchmarking 198.18/15
        || a >= 240; // reserved 240/4
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        let [.., hi, lo] = s;
        return is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    let reserved = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || s[..6].iter().all(|&x| x == 0) // IPv4-compatible ::a.b.c.d (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
        || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0)); // discard 100::/64
    !reserved
}

/// Resolves `host` and checks every address; `allow_private` skips the check.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, AddressError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| AddressError::Unresolvable {
            host: host.to_owned(),
            reason: err.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(AddressError::Unresolvable {
            host: host.to_owned(),
            reason: "no addresses".to_owned(),
        });
    }
    check_all(host, &addrs, allow_private)?;
    Ok(addrs)
}

fn check_all(host: &str, addrs: &[SocketAddr], allow_private: bool) -> Result<(), AddressError> {
    if allow_private {
        return Ok(());
    }
    match addrs.iter().find(|addr| !is_public(addr.ip())) {
        Some(bad) => Err(AddressError::NotAllowed {
            host: host.to_owned(),
            ip: bad.ip(),
        }),
        None => Ok(()),
    }
}

/// Checks the host of `url`: an IP literal directly, a name by resolving it.
pub async fn check_url(url: &Url, allow_private: bool) -> Result<(), AddressError> {
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(Host::Ipv4(ip)) => check_all(
            &ip.to_string(),
            &[SocketAddr::new(IpAddr::V4(ip), port)],
            allow_private,
        ),
        Some(Host::Ipv6(ip)) => check_all(
            &ip.to_string(),
            &[SocketAddr::new(IpAddr::V6(ip), port)],
            allow_private,
        ),
        Some(Host::Domain(name)) => resolve(name, port, allow_private).await.map(|_| ()),
        None => Err(AddressError::Unresolvable {
            host: String::new(),
            reason: "the URL has no host".to_owned(),
        }),
    }
}

/// The HTTP client's resolver: resolves a name and hands back its addresses only when
/// every one is allowed, so the client connects to exactly what was checked.
#[derive(Clone)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver; `allow_private` turns the guard off.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            // Port 0: the client puts the URL's port in.
            let addrs = resolve(&host, 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The guard's refusal inside an HTTP client error, if that is what it was.
pub fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<AddressError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<AddressError>() {
            return Some(found.clone());
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn refuses_every_non_public_range() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.8.8",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "2001:db8::1",
            "3fff::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "41.90.64.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip} must be allowed");
        }
    }

    #[tokio::test]
    async fn ip_literals_are_checked_without_a_lookup_and_can_be_allowed() {
        let local: Url = "http://127.0.0.1:8080/hook".parse().unwrap();
        assert!(matches!(
            check_url(&local, false).await,
            Err(AddressError::NotAllowed { .. })
        ));
        assert_eq!(check_url(&local, true).await, Ok(()));
        let mapped: Url = "http://[::ffff:10.0.0.1]/hook".parse().unwrap();
        assert!(check_url(&mapped, false).await.is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let url: Url = "http://localhost:9/hook".parse().unwrap();
        assert!(matches!(
            check_url(&url, false).await,
            Err(AddressError::NotAllowed { .. })
        ));
    }
}
