//! Any request ddb's signer signs verifies, whatever its method, path, query, headers and body;
//! and changing any byte of the body or any signed header value afterwards makes it fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ddb::sigv4::{AuthError, Credential, RequestParts, Signer, Verifier, parse_amz_date};
use proptest::prelude::*;

const AKID: &str = "AKIDPROPTEST";
const SECRET: &str = "prop/Test+Secret/Key/abcdefghijklmnopqrstu";

#[derive(Debug, Clone)]
struct Case {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    session_token: Option<String>,
    content_sha256_header: bool,
    signed_at: i64,
    /// Seconds between signing and verifying, within the allowed skew.
    delay: i64,
}

/// Header names a caller may set; the signer's own headers and `host` are excluded (host is
/// always added), as are names the signer leaves unsigned.
fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,12}".prop_filter("reserved", |name| {
        ![
            "host",
            "authorization",
            "x-amz-date",
            "x-amz-content-sha256",
            "x-amz-security-token",
            "user-agent",
            "expect",
            "x-amzn-trace-id",
        ]
        .contains(&name.to_ascii_lowercase().as_str())
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
        prop::collection::vec("[A-Za-z0-9._~%!$&'()*+,;=:@ -]{0,8}", 0..5),
        prop::collection::vec(
            ("[A-Za-z0-9._~%+/ -]{0,6}", "[A-Za-z0-9._~%+/= -]{0,6}"),
            0..4,
        ),
        prop::collection::vec((header_name(), "[ -~]{0,20}"), 0..6),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::of("[A-Za-z0-9+/=]{8,40}"),
        any::<bool>(),
        // 2001..2099, any second.
        978_307_200i64..4_102_444_800,
        -900i64..=900,
    )
        .prop_map(
            |(method, segments, query, headers, body, session_token, sha, signed_at, delay)| {
                let path = format!("/{}", segments.join("/"));
                let query = query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&");
                let mut all = vec![("Host".to_owned(), "127.0.0.1:8000".to_owned())];
                all.extend(headers);
                Case {
                    method: method.to_owned(),
                    path,
                    query,
                    headers: all,
                    body,
                    session_token,
                    content_sha256_header: sha,
                    signed_at,
                    delay,
                }
            },
        )
}

/// The case's headers plus the signer's.
fn sign(case: &Case) -> Vec<(String, String)> {
    let refs: Vec<(&str, &str)> = case
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = RequestParts {
        method: &case.method,
        path: &case.path,
        query: &case.query,
        headers: &refs,
        body: &case.body,
    };
    let mut signer = Signer::new(Credential::new(AKID, SECRET), "us-east-1", "dynamodb")
        .with_content_sha256_header(case.content_sha256_header);
    if let Some(token) = &case.session_token {
        signer = signer.with_session_token(token);
    }
    let added = signer.sign(&request, case.signed_at).unwrap();
    let mut headers = case.headers.clone();
    headers.extend(
        added
            .to_pairs()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    headers
}

fn verify(
    case: &Case,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<ddb::sigv4::VerifiedIdentity, AuthError> {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = RequestParts {
        method: &case.method,
        path: &case.path,
        query: &case.query,
        headers: &refs,
        body,
    };
    let verifier = Verifier::new(
        vec![Credential::new(AKID, SECRET)],
        "us-east-1",
        "dynamodb",
        Verifier::DEFAULT_MAX_SKEW,
    );
    verifier.verify(&request, case.signed_at + case.delay)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn signed_requests_verify(case in case()) {
        let headers = sign(&case);
        let identity = verify(&case, &headers, &case.body).unwrap();
        prop_assert_eq!(identity.access_key_id, AKID);
        prop_assert_eq!(identity.signed_at_unix_secs, case.signed_at);
        let date = headers.iter().find(|(n, _)| n == "X-Amz-Date").unwrap();
        prop_assert_eq!(parse_amz_date(&date.1), Some(case.signed_at));
    }

    #[test]
    fn any_changed_body_byte_fails(case in case(), index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        prop_assume!(!case.body.is_empty());
        let headers = sign(&case);
        let mut body = case.body.clone();
        let at = index.index(body.len());
        body[at] ^= flip;
        let expected = if case.content_sha256_header {
            AuthError::PayloadHashMismatch
        } else {
            AuthError::SignatureMismatch
        };
        prop_assert_eq!(verify(&case, &headers, &body), Err(expected));
    }

    #[test]
    fn any_changed_signed_header_value_fails(case in case(), index in any::<prop::sample::Index>()) {
        let mut headers = sign(&case);
        // Every header but Authorization is signed; x-amz-content-sha256 has its own check.
        let candidates: Vec<usize> = (0..headers.len())
            .filter(|&i| {
                let name = headers[i].0.to_ascii_lowercase();
                name != "authorization" && name != "x-amz-content-sha256"
            })
            .collect();
        let at = candidates[index.index(candidates.len())];
        // A visible character, so trimming and space-collapsing cannot undo the change.
        headers[at].1.push('x');
        let result = verify(&case, &headers, &case.body);
        prop_assert!(result.is_err(), "changing {} still verified", headers[at].0);
    }
}
