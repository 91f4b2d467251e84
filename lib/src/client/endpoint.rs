//! [`Endpoint`]: where a client sends its requests, parsed once.

use super::ClientError;

/// A parsed `http://host[:port]` endpoint: the URL to post to and the `Host` header to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL requests go to, `http://host:port/`.
    pub url: String,
    /// The `Host` header value, `host:port` (or `host` when the port is 80).
    pub host_header: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/]`. `https` is refused: this client is built without TLS to
    /// keep the build lean, so put a TLS-terminating proxy elsewhere or use plain HTTP on a
    /// trusted network. Paths other than `/` are refused too (DynamoDB posts to `/`).
    pub fn parse(endpoint: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Protocol(format!("endpoint {endpoint:?}: {why}"));
        let rest = if let Some(rest) = endpoint.strip_prefix("http://") {
            rest
        } else if endpoint.starts_with("https://") {
            return Err(bad(
                "https is not supported yet (ddb's client is built without TLS); use http://",
            ));
        } else {
            return Err(bad("expected http://host:port"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad("expected only http://host:port, without path or user"));
        }
        let host_header = match authority.rsplit_once(':') {
            // A bare IPv6 address like [::1] has colons but no port after the bracket.
            Some((host, port)) if !port.contains(']') => {
                if host.is_empty() {
                    return Err(bad("no host"));
                }
                let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
                if port == 80 {
                    host.to_owned()
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => authority.to_owned(),
        };
        Ok(Endpoint {
            url: format!("http://{authority}/"),
            host_header,
        })
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
    fn default_http_port_is_left_out_of_host_header() {
        // Signers and servers compare the Host header literally; clients send no :80.
        assert_eq!(
            Endpoint::parse("http://db.local:80").unwrap().host_header,
            "db.local"
        );
    }

    #[test]
    fn https_is_refused_with_an_explanation() {
        let error = Endpoint::parse("https://dynamodb.us-east-1.amazonaws.com").unwrap_err();
        assert!(
            error.to_string().contains("https is not supported"),
            "{error}"
        );
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
