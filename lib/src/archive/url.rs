//! Archive URLs: `file:///abs/path` and `s3://bucket/prefix?endpoint=…&region=…`, and opening
//! the object store one names.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::ArchiveError;
use super::store::Archive;

/// Retries inside one S3 request: few and short. Callers that must ride out an outage (the
/// archiver) retry whole operations with their own backoff, and a caller that reports (`ddbctl`)
/// should say the server is down in seconds, not minutes.
fn s3_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(10),
    }
}

/// Bounds on one S3 request, so a hung connection fails and is retried instead of holding an
/// upload (and the log behind it) forever.
fn s3_client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(5))
        .with_timeout(std::time::Duration::from_secs(120))
}

/// Region used when neither the URL nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where an archive lives, as named by its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveUrl {
    /// A directory on a local (or mounted) file system: `file:///abs/path`.
    File {
        /// Absolute path of the archive's root directory.
        root: PathBuf,
    },
    /// An S3 bucket (AWS or S3-compatible such as MinIO), addressed path-style.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
        prefix: String,
        /// Endpoint URL (`http://host:port` or `https://…`); `None` means AWS.
        endpoint: Option<String>,
        /// Region; `None` means the environment's or [`DEFAULT_REGION`].
        region: Option<String>,
    },
}

/// Why a string is not an archive URL. The message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad archive URL {url:?}: {reason}")]
pub struct ArchiveUrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ArchiveUrl {
    /// Parses `file:///abs/path` or `s3://bucket[/prefix][?endpoint=http(s)://…][&region=…]`.
    /// Values are taken literally (no percent-decoding); anything else is an error.
    pub fn parse(url: &str) -> Result<Self, ArchiveUrlError> {
        let fail = |reason: &str| ArchiveUrlError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(fail(
                    "a file archive needs an absolute path and no host: file:///abs/path",
                ));
            }
            if path.contains(['?', '#']) {
                return Err(fail("a file archive URL takes no query or fragment"));
            }
            if path.split('/').any(|segment| segment == "..") {
                return Err(fail("a file archive path may not contain `..`"));
            }
            return Ok(ArchiveUrl::File {
                root: PathBuf::from(path),
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(fail(
                "expected file:///abs/path or s3://bucket/prefix?endpoint=…&region=…",
            ));
        };
        if rest.contains('#') {
            return Err(fail("an s3 archive URL takes no fragment"));
        }
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if !valid_bucket(bucket) {
            return Err(fail(
                "bucket names are 3 to 63 lowercase letters, digits, `-` and `.`, \
                 starting and ending with a letter or digit",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        let bad_segment = prefix.split('/').any(|segment| segment.is_empty());
        if !prefix.is_empty() && (bad_segment || Path::parse(prefix).is_err()) {
            return Err(fail(
                "the key prefix must be `/`-separated non-empty segments without `.` or `..`",
            ));
        }
        let mut endpoint = None;
        let mut region = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| fail("query parameters are name=value"))?;
            let slot = match name {
                "endpoint" => &mut endpoint,
                "region" => &mut region,
                _ => return Err(fail("unknown query parameter; known: endpoint, region")),
            };
            if value.is_empty() {
                return Err(fail("empty query parameter value"));
            }
            if slot.replace(value.to_owned()).is_some() {
                return Err(fail("query parameter given twice"));
            }
        }
        if let Some(endpoint) = &endpoint {
            let host = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"));
            if host.is_none_or(|host| host.is_empty()) {
                return Err(fail(
                    "endpoint must be http://host[:port] or https://host[:port]",
                ));
            }
        }
        Ok(ArchiveUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint,
            region,
        })
    }

    /// Opens the object store the URL names, plus the key prefix every object name goes under.
    ///
    /// A file archive's directory is created if missing. An S3 archive takes its credentials from
    /// `env` (pass `|name| std::env::var(name).ok()` in production): `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` are required, `AWS_SESSION_TOKEN` optional, and the region falls
    /// back to `AWS_REGION`, `AWS_DEFAULT_REGION`, then [`DEFAULT_REGION`]. Requests are
    /// path-style; plain HTTP is allowed only when the endpoint says `http://`. Nothing is
    /// contacted until the first request.
    pub fn open(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Arc<dyn ObjectStore>, Path), ArchiveError> {
        match self {
            ArchiveUrl::File { root } => {
                std::fs::create_dir_all(root).map_err(|source| ArchiveError::CreateRoot {
                    root: root.clone(),
                    source,
                })?;
                let store = LocalFileSystem::new_with_prefix(root)
                    .map_err(|source| ArchiveError::Open { source })?;
                Ok((Arc::new(store), Path::default()))
            }
            ArchiveUrl::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => {
                let access_key = env("AWS_ACCESS_KEY_ID")
                    .ok_or(ArchiveError::MissingCredential("AWS_ACCESS_KEY_ID"))?;
                let secret_key = env("AWS_SECRET_ACCESS_KEY")
                    .ok_or(ArchiveError::MissingCredential("AWS_SECRET_ACCESS_KEY"))?;
                let region = region
                    .clone()
                    .or_else(|| env("AWS_REGION"))
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| DEFAULT_REGION.to_owned());
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key)
                    .with_secret_access_key(secret_key)
                    .with_virtual_hosted_style_request(false)
                    .with_retry(s3_retries());
                if let Some(token) = env("AWS_SESSION_TOKEN") {
                    builder = builder.with_token(token);
                }
                let mut options = s3_client_options();
                if let Some(endpoint) = endpoint {
                    options = options.with_allow_http(endpoint.starts_with("http://"));
                    builder = builder.with_endpoint(endpoint);
                }
                builder = builder.with_client_options(options);
                let store = builder
                    .build()
                    .map_err(|source| ArchiveError::Open { source })?;
                let prefix = Path::parse(prefix).map_err(|source| ArchiveError::Open {
                    source: source.into(),
                })?;
                Ok((Arc::new(store), prefix))
            }
        }
    }

    /// Opens the archive the URL names; see [`ArchiveUrl::open`].
    pub fn open_archive(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Archive, ArchiveError> {
        let (store, prefix) = self.open(env)?;
        Ok(Archive::new(store, prefix))
    }
}

impl fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveUrl::File { root } => write!(f, "file://{}", root.display()),
            ArchiveUrl::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                let mut separator = '?';
                for (name, value) in [("endpoint", endpoint), ("region", region)] {
                    if let Some(value) = value {
                        write!(f, "{separator}{name}={value}")?;
                        separator = '&';
                    }
                }
                Ok(())
            }
        }
    }
}

fn valid_bucket(bucket: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bucket.len())
        && bucket.bytes().all(allowed)
        && edge(bucket.bytes().next())
        && edge(bucket.bytes().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str, endpoint: Option<&str>, region: Option<&str>) -> ArchiveUrl {
        ArchiveUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: endpoint.map(Into::into),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn documented_forms_parse_and_print_back() {
        let cases = [
            (
                "file:///var/lib/ddb/archive",
                ArchiveUrl::File {
                    root: "/var/lib/ddb/archive".into(),
                },
            ),
            ("s3://ddb-archive", s3("ddb-archive", "", None, None)),
            (
                "s3://ddb-archive/prod/eu",
                s3("ddb-archive", "prod/eu", None, None),
            ),
            (
                "s3://ddb/p?endpoint=http://127.0.0.1:9000&region=us-east-1",
                s3("ddb", "p", Some("http://127.0.0.1:9000"), Some("us-east-1")),
            ),
            (
                "s3://ddb?region=eu-west-1",
                s3("ddb", "", None, Some("eu-west-1")),
            ),
        ];
        for (text, expected) in cases {
            let parsed = ArchiveUrl::parse(text).unwrap();
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            ArchiveUrl::parse("s3://ddb/prefix/?endpoint=https://s3.example.com").unwrap(),
            s3("ddb", "prefix", Some("https://s3.example.com"), None)
        );
    }

    #[test]
    fn other_urls_are_rejected_with_a_reason() {
        for (text, reason) in [
            ("/var/lib/ddb", "expected file:///abs/path or s3://"),
            ("http://bucket/x", "expected file:///abs/path or s3://"),
            ("file://host/path", "absolute path and no host"),
            ("file://relative", "absolute path and no host"),
            ("file:///a/../b", "`..`"),
            ("file:///a?x=1", "no query"),
            ("s3://", "bucket names"),
            ("s3://Bucket/x", "bucket names"),
            ("s3://ab", "bucket names"),
            ("s3://-bucket", "bucket names"),
            ("s3://bucket//x", "key prefix"),
            ("s3://bucket/a/../b", "key prefix"),
            (
                "s3://bucket?endpoint=127.0.0.1:9000",
                "endpoint must be http",
            ),
            ("s3://bucket?endpoint=http://", "endpoint must be http"),
            ("s3://bucket?region=a&region=b", "given twice"),
            ("s3://bucket?secret=x", "unknown query parameter"),
            ("s3://bucket?region", "name=value"),
            ("s3://bucket?region=", "empty"),
            ("s3://bucket#frag", "fragment"),
        ] {
            let error = ArchiveUrl::parse(text).unwrap_err();
            assert!(
                error.to_string().contains(reason),
                "{text}: {error} does not say {reason:?}"
            );
            assert!(error.to_string().contains(text));
        }
    }

    #[test]
    fn s3_needs_credentials_from_the_given_environment() {
        let url = ArchiveUrl::parse("s3://ddb/p?endpoint=http://127.0.0.1:9000").unwrap();
        let missing = url.open(|_| None).unwrap_err();
        assert!(matches!(
            missing,
            ArchiveError::MissingCredential("AWS_ACCESS_KEY_ID")
        ));
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("ddbtest".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("ddbtestsecret".to_owned()),
            _ => None,
        };
        let (store, prefix) = url.open(env).unwrap();
        assert_eq!(prefix.as_ref(), "p");
        assert!(store.to_string().contains("ddb"), "{store}");
    }

    #[test]
    fn a_file_archive_creates_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/archive");
        let url = ArchiveUrl::parse(&format!("file://{}", root.display())).unwrap();
        let (_store, prefix) = url.open(|_| None).unwrap();
        assert!(root.is_dir());
        assert_eq!(prefix.as_ref(), "");
    }
}
