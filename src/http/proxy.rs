//! Requests that come through a reverse proxy (docs/reference.md, "Behind a proxy, request
//! ids and logs"): which peers are trusted (`[server] trusted_proxies`), and, when the peer
//! is one, the client, scheme and host its forwarding headers name.
//!
//! The client is found from the right of the chain: each address a trusted hop added is
//! skipped, and the first one that is not trusted is the client. Anything left of it was
//! written by the client itself and may be forged, so it is never read.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

/// One entry of `trusted_proxies`: an address and how many of its leading bits must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `"10.0.0.0/8"`, `"fd00::/8"` or a single address (all its bits).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || {
            format!("'{text}' is not an address or a range such as \"10.0.0.0/8\" or \"fd00::/8\"")
        };
        let (address, bits) = match text.trim().split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => match bits.parse::<u8>() {
                Ok(bits) if bits <= max => bits,
                _ => return Err(format!("'{text}': the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { network, bits })
    }

    /// Whether `ip` (canonical: an IPv4-mapped IPv6 address is its IPv4 one) is in the range.
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(u32::from(net).into(), u32::from(ip).into(), self.bits, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), self.bits, 128)
            }
            _ => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, bits: u8, width: u32) -> bool {
    let shift = width - u32::from(bits);
    // A shift by the whole width (a /0) would overflow: everything matches.
    shift >= width || (net >> shift) == (ip >> shift)
}

/// The proxies whose forwarding headers are believed; empty by default (none is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// The entries of `trusted_proxies`; the error names the first bad one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| Cidr::parse(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|cidr| cidr.contains(ip))
    }
}

/// Who sent a request, as far as can be believed: the client's address, and, when a trusted
/// proxy said so, the scheme and host it asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    /// Boxed: rare, and the request's context is moved from stage to stage.
    pub forwarded: Option<Box<Forwarded>>,
}

/// What a trusted proxy said of how the client asked (`None`: the connection's own).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub proto: Option<&'static str>,
    pub host: Option<String>,
}

impl Origin {
    fn new(ip: Option<IpAddr>, proto: Option<&'static str>, host: Option<String>) -> Origin {
        let forwarded =
            (proto.is_some() || host.is_some()).then(|| Box::new(Forwarded { proto, host }));
        Origin { ip, forwarded }
    }

    #[cfg(test)]
    fn proto(&self) -> Option<&'static str> {
        self.forwarded.as_ref().and_then(|f| f.proto)
    }

    #[cfg(test)]
    fn host(&self) -> Option<&str> {
        self.forwarded.as_ref().and_then(|f| f.host.as_deref())
    }
}

/// The origin of a request from `peer`: the peer itself, unless it is trusted and its
/// headers name a client behind it (`X-Forwarded-For`, else `Forwarded`).
pub fn origin(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Origin {
    match peer {
        Some(ip) if !trusted.is_empty() && trusted.trusts(ip) => {
            forwarded_origin(ip, headers, trusted)
        }
        _ => Origin {
            ip: peer,
            forwarded: None,
        },
    }
}

fn forwarded_origin(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> Origin {
    let forwarded_proto = || last_value(headers, "x-forwarded-proto").and_then(|p| scheme(&p));
    let forwarded_host = || last_value(headers, "x-forwarded-host").filter(|h| valid_host(h));
    if let Some(xff) = joined(headers, "x-forwarded-for") {
        let hops: Vec<Option<IpAddr>> = xff.split(',').map(parse_address).collect();
        let at = client_at(&hops, trusted);
        let ip = at.and_then(|i| hops[i]).unwrap_or(peer);
        return Origin::new(Some(ip), forwarded_proto(), forwarded_host());
    }
    let Some(forwarded) = joined(headers, "forwarded") else {
        // No chain, but the proxy may still say how the client asked.
        return Origin::new(Some(peer), forwarded_proto(), forwarded_host());
    };
    let elements: Vec<Vec<(String, String)>> = forwarded.split(',').map(pairs).collect();
    let value = |element: &[(String, String)], key: &str| {
        element
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, v)| v.clone())
    };
    let hops: Vec<Option<IpAddr>> = elements
        .iter()
        .map(|element| value(element, "for").and_then(|v| parse_address(&v)))
        .collect();
    let Some(at) = client_at(&hops, trusted) else {
        return Origin::new(Some(peer), None, None);
    };
    // The element the client was found in was written by the proxy that saw it: its
    // proto and host are what the client asked for.
    let element = &elements[at];
    Origin::new(
        hops[at],
        value(element, "proto").and_then(|p| scheme(&p)),
        value(element, "host").filter(|h| valid_host(h)),
    )
}

/// Where the client is in `hops` (left to right, as the header lists them), walking from
/// the right: trusted hops are skipped, the first untrusted one is the client; every hop
/// trusted: the leftmost. A hop that is not an address (`unknown`, garbage) ends the walk
/// at the hop to its right (`None`: the peer), the last one a trusted proxy vouched for.
fn client_at(hops: &[Option<IpAddr>], trusted: &TrustedProxies) -> Option<usize> {
    let mut at = None;
    for (i, hop) in hops.iter().enumerate().rev() {
        let Some(ip) = hop else { return at };
        at = Some(i);
        if !trusted.trusts(*ip) {
            break;
        }
    }
    at
}

/// Every line of header `name`, joined with `,` (a list may be split over several lines).
/// A line that is not text stays in, as garbage: an entry that is no address ends the
/// walk at the one to its right, so bytes a client put there cannot hide the header.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut text: Option<String> = None;
    for value in headers.get_all(name) {
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = value.as_ref();
        match &mut text {
            Some(text) => {
                text.push(',');
                text.push_str(value);
            }
            None => text = Some(value.to_string()),
        }
    }
    text
}

/// The rightmost item of a list header: the one the nearest (trusted) proxy wrote.
fn last_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let text = joined(headers, name)?;
    let last = text.rsplit(',').next()?.trim();
    (!last.is_empty()).then(|| last.to_string())
}

fn scheme(text: &str) -> Option<&'static str> {
    if text.eq_ignore_ascii_case("https") {
        Some("https")
    } else if text.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// A host as a client may name one: a name or address and a port, nothing else.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The `name=value` pairs of one `Forwarded` element, names lowercase, quotes removed.
fn pairs(element: &str) -> Vec<(String, String)> {
    element
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.trim().to_ascii_lowercase(), value.to_string()))
        })
        .collect()
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse().ok();
    }
    let (address, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn ranges() {
        let list = trusted(&["10.0.0.0/8", "127.0.0.1", "fd00::/8", "0.0.0.0/32"]);
        assert!(list.trusts("10.1.2.3".parse().unwrap()));
        assert!(list.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!list.trusts("11.0.0.1".parse().unwrap()));
        assert!(list.trusts("127.0.0.1".parse().unwrap()));
        assert!(!list.trusts("127.0.0.2".parse().unwrap()));
        assert!(list.trusts("fd12::1".parse().unwrap()));
        assert!(!list.trusts("fe00::1".parse().unwrap()));
        assert!(trusted(&["0.0.0.0/0"]).trusts("8.8.8.8".parse().unwrap()));
        assert!(trusted(&["::/0"]).trusts("2001:db8::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0", "x", "", "10.0.0.0/"] {
            let err = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn chains_are_read_from_the_right() {
        let list = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = ip("127.0.0.1");
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(origin(peer, &chain, &list).ip, ip("203.0.113.9"));
        // Untrusted peer: its headers are not read.
        assert_eq!(origin(ip("192.0.2.1"), &chain, &list).ip, ip("192.0.2.1"));
        // Every hop trusted: the leftmost.
        let all = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.2")]);
        assert_eq!(origin(peer, &all, &list).ip, ip("10.0.0.5"));
        // Garbage stops the walk at the last trusted hop's word.
        let junk = headers(&[("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.2")]);
        assert_eq!(origin(peer, &junk, &list).ip, ip("10.0.0.2"));
        let ports = headers(&[("x-forwarded-for", "[2001:db8::1]:80, 198.51.100.1:443")]);
        assert_eq!(origin(peer, &ports, &list).ip, ip("198.51.100.1"));
    }

    #[test]
    fn forwarded_header() {
        let list = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6;proto=http, for=\"[2001:db8::5]:4711\";proto=https;host=shop.example, For=10.0.0.3;proto=http",
        )]);
        let got = origin(peer, &h, &list);
        assert_eq!(got.ip, ip("2001:db8::5"));
        assert_eq!(got.proto(), Some("https"));
        assert_eq!(got.host(), Some("shop.example"));
    }

    #[test]
    fn proto_and_host_from_the_nearest_proxy() {
        let list = trusted(&["127.0.0.1"]);
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "http, HTTPS"),
            ("x-forwarded-host", "api.example:8443"),
        ]);
        let got = origin(ip("127.0.0.1"), &h, &list);
        assert_eq!(got.proto(), Some("https"));
        assert_eq!(got.host(), Some("api.example:8443"));
        let bad = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "a b"),
        ]);
        let got = origin(ip("127.0.0.1"), &bad, &list);
        assert_eq!(got.forwarded, None);
    }
}
