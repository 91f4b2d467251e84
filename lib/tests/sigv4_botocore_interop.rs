//! Requests signed by a real client (botocore's `SigV4Auth`, the signer inside boto3 and the
//! AWS CLI) verify in ddb, and ddb's signer produces the same `Authorization` header for them.
//!
//! The fixtures in `tests/fixtures/sigv4/` were captured by `generate.py` in that folder with
//! dummy credentials at a frozen time; this test needs no Python.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ddb::sigv4::{AuthError, Credential, RequestParts, Signer, Verifier};
use serde_json::Value;

struct Fixture {
    name: String,
    access_key_id: String,
    secret_access_key: String,
    region: String,
    service: String,
    now_unix_secs: i64,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Fixture {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(
            vec![Credential::new(
                &self.access_key_id,
                &self.secret_access_key,
            )],
            &self.region,
            &self.service,
            Verifier::DEFAULT_MAX_SKEW,
        )
    }
}

fn load_fixtures() -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let text = |v: &Value, key: &str| v[key].as_str().unwrap().to_owned();
    paths
        .iter()
        .map(|path| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            Fixture {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                access_key_id: text(&v, "access_key_id"),
                secret_access_key: text(&v, "secret_access_key"),
                region: text(&v, "region"),
                service: text(&v, "service"),
                now_unix_secs: v["now_unix_secs"].as_i64().unwrap(),
                method: text(&v, "method"),
                path: text(&v, "path"),
                query: text(&v, "query"),
                headers: v["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| {
                        (
                            pair[0].as_str().unwrap().to_owned(),
                            pair[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
                body: text(&v, "body").into_bytes(),
            }
        })
        .collect()
}

fn header_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn there_are_three_botocore_fixtures() {
    assert_eq!(load_fixtures().len(), 3);
}

#[test]
fn botocore_signed_requests_verify() {
    for fixture in load_fixtures() {
        let headers = header_refs(&fixture.headers);
        let request = RequestParts {
            method: &fixture.method,
            path: &fixture.path,
            query: &fixture.query,
            headers: &headers,
            body: &fixture.body,
        };
        let verifier = fixture.verifier();
        let identity = verifier
            .verify(&request, fixture.now_unix_secs)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.name));
        assert_eq!(identity.access_key_id, fixture.access_key_id);
        assert_eq!(identity.signed_at_unix_secs, fixture.now_unix_secs);

        // The same request a little later is still fine; an hour later it has expired.
        assert!(
            verifier
                .verify(&request, fixture.now_unix_secs + 600)
                .is_ok()
        );
        assert!(matches!(
            verifier.verify(&request, fixture.now_unix_secs + 3_600),
            Err(AuthError::SignatureExpired { .. })
        ));
    }
}

#[test]
fn botocore_signed_requests_with_a_changed_body_byte_fail() {
    for fixture in load_fixtures() {
        let headers = header_refs(&fixture.headers);
        let mut body = fixture.body.clone();
        let last = body.len() - 2;
        body[last] ^= 0x01;
        let request = RequestParts {
            method: &fixture.method,
            path: &fixture.path,
            query: &fixture.query,
            headers: &headers,
            body: &body,
        };
        assert_eq!(
            fixture.verifier().verify(&request, fixture.now_unix_secs),
            Err(AuthError::SignatureMismatch),
            "{}",
            fixture.name
        );
    }
}

#[test]
fn ddb_signer_matches_botocore() {
    for fixture in load_fixtures() {
        // What the client had before signing. Content-Length is added by the HTTP layer after
        // botocore signs, so it was never part of the signature.
        let unsigned: Vec<(String, String)> = fixture
            .headers
            .iter()
            .filter(|(name, _)| {
                ![
                    "authorization",
                    "x-amz-date",
                    "x-amz-security-token",
                    "content-length",
                ]
                .contains(&name.to_ascii_lowercase().as_str())
            })
            .cloned()
            .collect();
        let headers = header_refs(&unsigned);
        let request = RequestParts {
            method: &fixture.method,
            path: &fixture.path,
            query: &fixture.query,
            headers: &headers,
            body: &fixture.body,
        };
        let mut signer = Signer::new(
            Credential::new(&fixture.access_key_id, &fixture.secret_access_key),
            &fixture.region,
            &fixture.service,
        );
        if let Some(token) = fixture.header("x-amz-security-token") {
            signer = signer.with_session_token(token);
        }
        let signed = signer.sign(&request, fixture.now_unix_secs).unwrap();
        assert_eq!(
            Some(signed.authorization.as_str()),
            fixture.header("authorization"),
            "{}",
            fixture.name
        );
        assert_eq!(
            Some(signed.x_amz_date.as_str()),
            fixture.header("x-amz-date")
        );
    }
}

#[test]
fn fixtures_fail_under_another_secret() {
    for fixture in load_fixtures() {
        let headers = header_refs(&fixture.headers);
        let request = RequestParts {
            method: &fixture.method,
            path: &fixture.path,
            query: &fixture.query,
            headers: &headers,
            body: &fixture.body,
        };
        let verifier = Verifier::new(
            vec![Credential::new(&fixture.access_key_id, "not-the-secret")],
            &fixture.region,
            &fixture.service,
            Duration::from_secs(900),
        );
        assert_eq!(
            verifier.verify(&request, fixture.now_unix_secs),
            Err(AuthError::SignatureMismatch)
        );
    }
}
