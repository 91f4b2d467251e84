//! [`Endpoint`]: where a client sends its requests, parsed once.

use super::ClientError;

/// A parsed `http[s]://host[:port]` endpoint: the URL to post to and the `Host` header to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL requests go to, `http[s]://host:port/`.
    pub url: String,
    /// The `Host` header value, `host:port` (or `host` when the port is the scheme's default).
    pub host_header: String,
    /// True for `https://`.
    pub tls: bool,
}

impl Endpoint {
    /// Parses `http://host[:port][/]` or `https://host[:port][/]` (TLS with the webpki root
    /// certificates, as for DynamoDB itself). Paths other than `/` are refused (DynamoDB posts
    /// to `/`).
    pub fn parse(endpoint: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Protocol(format!("endpoint {endpoint:?}: {why}"));
        let (scheme, default_port, rest) = if let Some(rest) = endpoint.strip_prefix("http://") {
            ("http", 80, rest)
        } else if let Some(rest) = endpoint.strip_prefix("https://") {
            ("https", 443, rest)
        } else {
            return Err(bad("expected http://host:port or https://host[:port]"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad(
                "expected only scheme://host:port, without path or user",
            ));
        }
        let host_header = match authority.rsplit_once(':') {
            // A bare IPv6 address like [::1] has colons but no port after the bracket.
            Some((host, port)) if !port.contains(']') => {
                if host.is_empty() {
                    return Err(bad("no host"));
                }
                let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
                if port == default_port {
                    host.to_owned()
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => authority.to_owned(),
        };
        Ok(Endpoint {
            url: format!("{scheme}://{authority}/"),
            host_header,
            tls: scheme == "https",
        })
    }

    /// `host:port` to connect to: the `Host` header, with the scheme's default port when the
    /// endpoint names none.
    #[must_use]
    pub fn connect_to(&self) -> String {
        match self.host_header.rsplit_once(':') {
            Some((_, port)) if !port.contains(']') => self.host_header.clone(),
            _ => format!("{}:{}", self.host_header, if self.tls { 443 } else { 80 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_become_url_and_host_header() {
        let e = Endpoint::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(e.url, "http://127.0.0.1:8000/");
        assert_eq!(e.host_header, "127.0.0.1:8000");
        let e = Endpoint::parse("http://localhost/").unwrap();
        assert_eq!(e.host_header, "localhost");
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!(e.host_header, "[::1]:9000");
        let e = Endpoint::parse("http://[::1]").unwrap();
        assert_eq!(e.host_header, "[::1]");
    }

    #[test]
    fn connect_to_always_names_a_port() {
        let at = |endpoint: &str| Endpoint::parse(endpoint).unwrap().connect_to();
        assert_eq!(at("http://127.0.0.1:8000"), "127.0.0.1:8000");
        assert_eq!(at("http://localhost"), "localhost:80");
        assert_eq!(
            at("https://dynamodb.eu-west-1.amazonaws.com"),
            "dynamodb.eu-west-1.amazonaws.com:443"
        );
        assert_eq!(at("http://[::1]"), "[::1]:80");
        assert_eq!(at("http://[::1]:9000"), "[::1]:9000");
    }

    #[test]
    fn default_http_port_is_left_out_of_host_header() {
        // Signers and servers compare the Host header literally; clients send no :80.
        assert_eq!(
            Endpoint::parse("http://db.local:80").unwrap().host_header,
            "db.local"
        );
    }

    #[test]
    fn https_endpoints_use_tls_and_leave_out_port_443() {
        let e = Endpoint::parse("https://dynamodb.us-east-1.amazonaws.com").unwrap();
        assert_eq!(e.url, "https://dynamodb.us-east-1.amazonaws.com/");
        assert_eq!(e.host_header, "dynamodb.us-east-1.amazonaws.com");
        assert!(e.tls);
        let e = Endpoint::parse("https://db.local:443/").unwrap();
        assert_eq!(e.host_header, "db.local");
        let e = Endpoint::parse("https://db.local:8443").unwrap();
        assert_eq!(e.host_header, "db.local:8443");
        assert!(!Endpoint::parse("http://db.local").unwrap().tls);
    }

    #[test]
    fn malformed_endpoints_are_refused() {
        for bad in [
            "127.0.0.1:8000",
            "http://",
            "http://:8000",
            "http://h:99999",
            "http://h:8000/path",
            "http://user@h",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
