//! Parsing the small value languages of the format: durations (`1.5ms`), loss rates (`2%`),
//! IPv4 addresses and prefixes, and HTTP URLs. Each error says what was expected.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

/// `0.5ms`, `20ms`, `1s`, `150us`, `10ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: write `{text}ms` or `{text}s`"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let nanos_per_unit = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => return Err(format!("unknown unit `{other}`: use ns, us, ms or s")),
    };
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos > 3600e9 {
        return Err("a duration must be at most one hour".into());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// `0%` to `100%`; returns a probability from 0 to 1.
pub fn parse_loss(text: &str) -> Result<f64, String> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("write the loss as a percentage, like `{}%`", text.trim()))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err("loss must be from 0% to 100%".into());
    }
    Ok(value / 100.0)
}

/// An IPv4 address, refusing the forms `inet_aton` accepts but people do not mean (`10.1`, `010.0.0.1`).
pub fn parse_addr(text: &str) -> Result<Ipv4Addr, String> {
    text.trim().parse::<Ipv4Addr>().map_err(|_| {
        format!("`{text}` is not an IPv4 address (four numbers 0-255 separated by dots)")
    })
}

/// An interface address with its prefix length: `192.168.1.10/24`.
pub fn parse_interface_addr(text: &str) -> Result<Ipv4Net, String> {
    let text = text.trim();
    let Some((addr, len)) = text.split_once('/') else {
        return match parse_addr(text) {
            Ok(_) => Err(format!(
                "`{text}` has no prefix length: write it like `{text}/24`"
            )),
            Err(e) => Err(e),
        };
    };
    let addr = parse_addr(addr)?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("`/{len}` is not a prefix length (0 to 32)"))?;
    Ipv4Net::new(addr, len).map_err(|_| format!("`/{len}` is not a prefix length (0 to 32)"))
}

/// A route destination: `default`, `10.0.0.0/8`, or one address (`/32`). Host bits must be clear.
pub fn parse_destination(text: &str) -> Result<Ipv4Net, DestinationError> {
    let text = text.trim();
    if text == "default" {
        return Ok(Ipv4Net::default());
    }
    let net = if text.contains('/') {
        parse_interface_addr(text).map_err(DestinationError::Syntax)?
    } else {
        Ipv4Net::from(parse_addr(text).map_err(DestinationError::Syntax)?)
    };
    if net.addr() != net.network() {
        return Err(DestinationError::HostBitsSet(net.trunc()));
    }
    Ok(net)
}

/// Why a route destination is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationError {
    Syntax(String),
    /// `ip route add 10.0.0.1/8` fails with "Invalid prefix for given prefix length"; the
    /// prefix meant is carried.
    HostBitsSet(Ipv4Net),
}

/// A URL `curl` would take, restricted to what reachlab can answer: `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_http_url(text: &str) -> Result<HttpUrl, String> {
    let text = text.trim();
    let rest = if let Some(rest) = text.strip_prefix("http://") {
        rest
    } else if text.starts_with("https://") {
        return Err("https needs TLS, which reachlab does not model: use an http:// URL".into());
    } else if text.contains("://") {
        return Err("only http:// URLs can be probed".into());
    } else {
        // curl assumes http:// when the scheme is missing.
        text
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{port}` is not a port (1 to 65535)"))?;
            (host, port)
        }
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(HttpUrl {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("150us"), Ok(Duration::from_micros(150)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10 min").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn losses() {
        assert_eq!(parse_loss("2%"), Ok(0.02));
        assert_eq!(parse_loss("0 %"), Ok(0.0));
        assert!(parse_loss("0.5").is_err());
        assert!(parse_loss("101%").is_err());
    }

    #[test]
    fn interface_addresses() {
        let net = parse_interface_addr("192.168.1.10/24").unwrap();
        assert_eq!(net.addr(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(net.prefix_len(), 24);
        assert!(
            parse_interface_addr("192.168.1.10")
                .unwrap_err()
                .contains("/24")
        );
        assert!(parse_interface_addr("192.168.1.300/24").is_err());
        assert!(parse_interface_addr("10.1/8").is_err());
        assert!(parse_interface_addr("10.0.0.1/33").is_err());
    }

    #[test]
    fn destinations() {
        assert_eq!(parse_destination("default"), Ok(Ipv4Net::default()));
        assert_eq!(
            parse_destination("10.0.0.1"),
            Ok("10.0.0.1/32".parse().unwrap())
        );
        assert_eq!(
            parse_destination("10.0.0.1/8"),
            Err(DestinationError::HostBitsSet("10.0.0.0/8".parse().unwrap()))
        );
    }

    #[test]
    fn urls() {
        let url = parse_http_url("http://web.lab:8080/api?x=1").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("web.lab", 8080, "/api?x=1")
        );
        let url = parse_http_url("10.0.0.1").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert!(parse_http_url("https://x/").is_err());
        assert!(parse_http_url("http://x:0/").is_err());
    }
}
