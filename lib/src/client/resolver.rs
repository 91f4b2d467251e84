//! Name resolution for the client, once per endpoint rather than once per call.
//!
//! The HTTP library resolves the endpoint's host on every call, before it looks for a pooled
//! connection, and with a timeout configured it does so on a freshly spawned thread: a thread
//! created and joined per request, which cost a load generator on two cores more CPU than
//! signing the request. A client talks to one endpoint, so this resolver answers an IP literal
//! without any lookup and caches a host name's addresses for [`RESOLVED_FOR`], after which the
//! next call looks it up again (so a long-running canary still follows DNS changes).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up host's addresses are used before it is looked up again.
pub(super) const RESOLVED_FOR: Duration = Duration::from_secs(30);

/// A resolver that looks a host up at most once per [`RESOLVED_FOR`].
#[derive(Debug, Default)]
pub(super) struct CachingResolver {
    lookup: DefaultResolver,
    /// The last lookup: `host:port`, when, and the addresses.
    cached: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let port = uri.port_u16().or_else(|| match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        let (Some(host), Some(port)) = (host, port) else {
            // Not a URL this client builds; let the library say what is wrong with it.
            return self.lookup.resolve(uri, config, timeout);
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addresses = self.lookup.empty();
            addresses.push(SocketAddr::new(ip, port));
            return Ok(addresses);
        }
        let key = format!("{host}:{port}");
        {
            let cached = self
                .cached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((cached_key, at, addresses)) = cached.as_ref()
                && *cached_key == key
                && at.elapsed() < RESOLVED_FOR
            {
                return Ok(addresses.clone());
            }
        }
        let addresses = self.lookup.resolve(uri, config, timeout)?;
        *self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((key, Instant::now(), addresses.clone()));
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(resolver: &CachingResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let config = ureq::Agent::config_builder().build();
        resolver
            .resolve(
                &uri,
                &config,
                NextTimeout {
                    after: ureq::unversioned::transport::time::Duration::NotHappening,
                    reason: ureq::Timeout::Resolve,
                    per_read: None,
                    per_write: None,
                },
            )
            .unwrap()
            .to_vec()
    }

    #[test]
    fn ip_literals_need_no_lookup_and_names_are_looked_up_once() {
        let resolver = CachingResolver::default();
        assert_eq!(
            resolve(&resolver, "http://127.0.0.1:8000/"),
            vec!["127.0.0.1:8000".parse().unwrap()]
        );
        assert_eq!(
            resolve(&resolver, "http://[::1]:8001/"),
            vec!["[::1]:8001".parse().unwrap()]
        );
        assert_eq!(
            resolve(&resolver, "https://10.1.2.3/"),
            vec!["10.1.2.3:443".parse().unwrap()]
        );
        assert!(
            resolver.cached.lock().unwrap().is_none(),
            "no lookup for literals"
        );

        let first = resolve(&resolver, "http://localhost:8002/");
        assert!(
            first
                .iter()
                .all(|a| a.port() == 8002 && a.ip().is_loopback()),
            "{first:?}"
        );
        let at = resolver.cached.lock().unwrap().as_ref().unwrap().1;
        assert_eq!(resolve(&resolver, "http://localhost:8002/"), first);
        assert_eq!(
            resolver.cached.lock().unwrap().as_ref().unwrap().1,
            at,
            "answered from the cache"
        );
        // Another port is another key: looked up, and it replaces the cached one.
        let other = resolve(&resolver, "http://localhost:8003/");
        assert!(other.iter().all(|a| a.port() == 8003), "{other:?}");
    }
}
