//! A request signed by ddb's signer verifies, and any change to what it signed makes
//! verification fail with the error DynamoDB would return: the body, a signed header, the
//! date, the region, the service, the access key or the signature. Also: errors and `Debug`
//! output never reveal the secret key or the signature the server expected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ddb::sigv4::{
    AuthError, Credential, RequestParts, Signer, SigningKey, SigningKeyCache, Verifier,
    format_amz_date, parse_amz_date,
};

const AKID: &str = "AKIDDDBTAMPER";
const SECRET: &str = "tamper/Secret+Key/0123456789abcdefghijklm";
const OTHER_AKID: &str = "AKIDOTHER";
const OTHER_SECRET: &str = "other/Secret+Key/zyxwvutsrqponmlkjihgfedc";
const BODY: &[u8] = br#"{"TableName":"Music","Item":{"pk":{"S":"a"}}}"#;

fn now() -> i64 {
    parse_amz_date("20261124T101500Z").unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(
        vec![
            Credential::new(AKID, SECRET),
            Credential::new(OTHER_AKID, OTHER_SECRET),
        ],
        "us-east-1",
        "dynamodb",
        Verifier::DEFAULT_MAX_SKEW,
    )
}

fn base_headers() -> Vec<(String, String)> {
    [
        ("Host", "127.0.0.1:8000"),
        ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect()
}

/// The headers of `base_headers()` signed at `signed_at` by `signer`, plus a `User-Agent`
/// added afterwards (which the signer leaves unsigned).
fn signed_headers_with(signer: &Signer, body: &[u8], signed_at: i64) -> Vec<(String, String)> {
    let mut headers = base_headers();
    let refs = as_refs(&headers);
    let request = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body,
    };
    let added = signer.sign(&request, signed_at).unwrap();
    for (name, value) in added.to_pairs() {
        headers.push((name.to_owned(), value.to_owned()));
    }
    headers.push(("User-Agent".to_owned(), "ddb-test/1".to_owned()));
    headers
}

fn signed_headers() -> Vec<(String, String)> {
    let signer = Signer::new(Credential::new(AKID, SECRET), "us-east-1", "dynamodb");
    signed_headers_with(&signer, BODY, now())
}

fn as_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn verify(headers: &[(String, String)], body: &[u8], at: i64) -> Result<String, AuthError> {
    let refs = as_refs(headers);
    let request = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body,
    };
    verifier()
        .verify(&request, at)
        .map(|identity| identity.access_key_id)
}

fn set_header(headers: &mut [(String, String)], name: &str, value: &str) {
    let slot = headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .unwrap();
    slot.1 = value.to_owned();
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .unwrap()
        .1
}

fn replace_in_authorization(headers: &mut [(String, String)], from: &str, to: &str) {
    let changed = header(headers, "authorization").replacen(from, to, 1);
    assert_ne!(
        changed,
        header(headers, "authorization"),
        "{from} not found"
    );
    set_header(headers, "authorization", &changed);
}

#[test]
fn untampered_request_verifies_and_unsigned_headers_may_change() {
    let mut headers = signed_headers();
    assert_eq!(verify(&headers, BODY, now()).unwrap(), AKID);
    set_header(&mut headers, "user-agent", "something else entirely");
    assert_eq!(verify(&headers, BODY, now()).unwrap(), AKID);
    // Case and spacing of header names/values are not part of the signature.
    set_header(&mut headers, "x-amz-target", "  DynamoDB_20120810.PutItem ");
    assert_eq!(verify(&headers, BODY, now()).unwrap(), AKID);
}

#[test]
fn changed_body_byte_fails() {
    let headers = signed_headers();
    for index in [0, BODY.len() / 2, BODY.len() - 1] {
        let mut body = BODY.to_vec();
        body[index] ^= 0x20;
        assert_eq!(
            verify(&headers, &body, now()),
            Err(AuthError::SignatureMismatch)
        );
    }
    assert_eq!(
        verify(&headers, &BODY[..BODY.len() - 1], now()),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn changed_signed_header_fails() {
    for (name, value) in [
        ("x-amz-target", "DynamoDB_20120810.DeleteItem"),
        ("host", "127.0.0.1:8001"),
        ("content-type", "application/json"),
    ] {
        let mut headers = signed_headers();
        set_header(&mut headers, name, value);
        assert_eq!(
            verify(&headers, BODY, now()),
            Err(AuthError::SignatureMismatch),
            "{name}"
        );
    }
    // Removing a signed header fails too.
    let mut headers = signed_headers();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-target"));
    assert_eq!(
        verify(&headers, BODY, now()),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn changed_date_fails() {
    // Same day, a second later: the signature covers the exact timestamp.
    let mut headers = signed_headers();
    set_header(&mut headers, "x-amz-date", &format_amz_date(now() + 1));
    assert_eq!(
        verify(&headers, BODY, now()),
        Err(AuthError::SignatureMismatch)
    );

    // A date whose day differs from the credential scope's.
    let mut headers = signed_headers();
    set_header(&mut headers, "x-amz-date", "20261125T101500Z");
    let error = verify(&headers, BODY, parse_amz_date("20261125T101500Z").unwrap()).unwrap_err();
    assert!(
        matches!(error, AuthError::ScopeDateMismatch { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(
        error.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261124' != '20261125', from '20261125T101500Z'."
    );

    // A malformed date.
    let mut headers = signed_headers();
    set_header(&mut headers, "x-amz-date", "2026-11-24T10:15:00Z");
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error.code(), "IncompleteSignatureException");

    // No date at all.
    let mut headers = signed_headers();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error.code(), "IncompleteSignatureException");
}

#[test]
fn skew_is_fifteen_minutes_either_way() {
    let headers = signed_headers();
    assert!(verify(&headers, BODY, now() + 15 * 60).is_ok());
    assert!(verify(&headers, BODY, now() - 15 * 60).is_ok());

    let error = verify(&headers, BODY, now() + 15 * 60 + 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Signature expired: 20261124T101500Z is now earlier than 20261124T101501Z (20261124T103001Z - 15 min.)"
    );
    assert_eq!(error.code(), "InvalidSignatureException");

    let error = verify(&headers, BODY, now() - 15 * 60 - 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Signature not yet current: 20261124T101500Z is still later than 20261124T101459Z (20261124T095959Z + 15 min.)"
    );
    assert_eq!(error.code(), "InvalidSignatureException");

    // The skew is configurable.
    let strict = Verifier::new(
        vec![Credential::new(AKID, SECRET)],
        "us-east-1",
        "dynamodb",
        Duration::from_secs(60),
    );
    let refs = as_refs(&headers);
    let request = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body: BODY,
    };
    assert!(strict.verify(&request, now() + 60).is_ok());
    assert!(matches!(
        strict.verify(&request, now() + 61),
        Err(AuthError::SignatureExpired {
            max_skew_minutes: 1,
            ..
        })
    ));
}

#[test]
fn changed_region_or_service_fails() {
    let mut headers = signed_headers();
    replace_in_authorization(&mut headers, "/us-east-1/", "/eu-west-1/");
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error, AuthError::WrongRegion("eu-west-1".to_owned()));
    assert_eq!(error.code(), "InvalidSignatureException");

    // Correctly signed, but for another region than this server's.
    let signer = Signer::new(Credential::new(AKID, SECRET), "eu-west-1", "dynamodb");
    let headers = signed_headers_with(&signer, BODY, now());
    assert_eq!(
        verify(&headers, BODY, now()),
        Err(AuthError::WrongRegion("eu-west-1".to_owned()))
    );

    let signer = Signer::new(Credential::new(AKID, SECRET), "us-east-1", "s3");
    let headers = signed_headers_with(&signer, BODY, now());
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Credential should be scoped to correct service: 'dynamodb'."
    );
}

#[test]
fn changed_access_key_fails() {
    let mut headers = signed_headers();
    replace_in_authorization(&mut headers, AKID, "AKIDUNKNOWN");
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error, AuthError::UnrecognizedClient);
    assert_eq!(error.code(), "UnrecognizedClientException");
    assert_eq!(
        error.to_string(),
        "The security token included in the request is invalid."
    );

    // Another key this server knows: the signature does not match under its secret.
    let mut headers = signed_headers();
    replace_in_authorization(&mut headers, AKID, OTHER_AKID);
    assert_eq!(
        verify(&headers, BODY, now()),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn changed_or_malformed_signature_fails() {
    let original = signed_headers();
    let signature = header(&original, "authorization")
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_owned();
    let mut flipped = signature.clone().into_bytes();
    flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for replacement in [
        flipped.as_str(),
        &signature[..62],
        "zz",
        &signature.to_uppercase(),
    ] {
        let mut headers = original.clone();
        let changed = header(&headers, "authorization").replace(&signature, replacement);
        set_header(&mut headers, "authorization", &changed);
        let result = verify(&headers, BODY, now());
        if replacement == signature.to_uppercase() {
            // Hex case does not matter: the bytes are the same.
            assert!(result.is_ok());
        } else {
            assert_eq!(result, Err(AuthError::SignatureMismatch), "{replacement}");
        }
    }
}

#[test]
fn host_must_be_signed() {
    // A client that signs only x-amz-date, correctly: still rejected.
    let headers = base_headers();
    let date = format_amz_date(now());
    let refs: Vec<(&str, &str)> = vec![("X-Amz-Date", date.as_str())];
    let request = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body: BODY,
    };
    let scope = ddb::sigv4::CredentialScope {
        date: date[..8].to_owned(),
        region: "us-east-1".to_owned(),
        service: "dynamodb".to_owned(),
    };
    let signed = vec!["x-amz-date".to_owned()];
    let canonical = ddb::sigv4::canonical_request(&request, &signed, &ddb::sigv4::sha256_hex(BODY));
    let signature = SigningKey::derive(SECRET, &scope)
        .sign_hex(&ddb::sigv4::string_to_sign(&date, &scope, &canonical));
    let mut all = headers;
    all.push(("X-Amz-Date".to_owned(), date.clone()));
    all.push((
        "Authorization".to_owned(),
        format!("AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=x-amz-date, Signature={signature}"),
    ));
    let error = verify(&all, BODY, now()).unwrap_err();
    assert_eq!(error, AuthError::HostNotSigned);
    assert_eq!(error.code(), "InvalidSignatureException");
}

#[test]
fn missing_or_malformed_authorization() {
    let mut headers = signed_headers();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error, AuthError::MissingAuthenticationToken);
    assert_eq!(error.code(), "MissingAuthenticationTokenException");
    assert_eq!(error.to_string(), "Request is missing Authentication Token");
    assert_eq!(
        error.dynamodb_type(),
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );

    let mut headers = signed_headers();
    set_header(
        &mut headers,
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x",
    );
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error.code(), "IncompleteSignatureException");

    let mut headers = signed_headers();
    let duplicate = header(&headers, "authorization").to_owned();
    headers.push(("authorization".to_owned(), duplicate));
    let error = verify(&headers, BODY, now()).unwrap_err();
    assert_eq!(error.code(), "IncompleteSignatureException");
}

#[test]
fn content_sha256_header_is_checked_against_the_body() {
    let signer = Signer::new(Credential::new(AKID, SECRET), "us-east-1", "dynamodb")
        .with_content_sha256_header(true);
    let headers = signed_headers_with(&signer, BODY, now());
    assert!(verify(&headers, BODY, now()).is_ok());
    assert_eq!(
        verify(&headers, b"{}", now()),
        Err(AuthError::PayloadHashMismatch)
    );
    assert_eq!(
        AuthError::PayloadHashMismatch.code(),
        "InvalidSignatureException"
    );
}

#[test]
fn every_auth_error_is_http_400_with_dynamodb_messages() {
    let mismatch = AuthError::SignatureMismatch;
    assert_eq!(
        mismatch.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    for error in [
        AuthError::MissingAuthenticationToken,
        AuthError::IncompleteSignature("x".to_owned()),
        AuthError::UnrecognizedClient,
        AuthError::SignatureMismatch,
        AuthError::HostNotSigned,
        AuthError::PayloadHashMismatch,
        AuthError::WrongRegion("r".to_owned()),
    ] {
        assert_eq!(error.http_status(), 400);
        assert!(error.dynamodb_type().ends_with(error.code()));
    }
}

#[test]
fn no_error_or_debug_output_reveals_the_secret_or_expected_signature() {
    let signer = Signer::new(Credential::new(AKID, SECRET), "us-east-1", "dynamodb")
        .with_session_token("SESSION-TOKEN-VALUE");
    let headers = signed_headers();
    let tampered_body = br#"{"TableName":"Music","Item":{"pk":{"S":"b"}}}"#;
    // What the server computes for the tampered body is the signature of that body.
    let expected_for_tampered = signed_headers_with(
        &Signer::new(Credential::new(AKID, SECRET), "us-east-1", "dynamodb"),
        tampered_body,
        now(),
    );
    let expected_signature = header(&expected_for_tampered, "authorization")
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_owned();

    let mut errors = vec![
        verify(&headers, tampered_body, now()).unwrap_err(),
        verify(&headers, BODY, now() + 3_600).unwrap_err(),
        verify(&headers, BODY, now() - 3_600).unwrap_err(),
    ];
    let mut other = headers.clone();
    replace_in_authorization(&mut other, AKID, OTHER_AKID);
    errors.push(verify(&other, BODY, now()).unwrap_err());
    let mut other = headers.clone();
    replace_in_authorization(&mut other, "/us-east-1/", "/eu-west-1/");
    errors.push(verify(&other, BODY, now()).unwrap_err());

    let scope = ddb::sigv4::CredentialScope {
        date: "20261124".to_owned(),
        region: "us-east-1".to_owned(),
        service: "dynamodb".to_owned(),
    };
    let cache = SigningKeyCache::new(4);
    let _ = cache.get_or_derive(&Credential::new(AKID, SECRET), &scope);
    let signed = signer.sign(
        &RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &[("Host", "h")],
            body: BODY,
        },
        now(),
    );

    let mut outputs: Vec<String> = errors
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .collect();
    outputs.push(format!("{:?}", verifier()));
    outputs.push(format!("{signer:?}"));
    outputs.push(format!("{:?}", Credential::new(AKID, SECRET)));
    outputs.push(format!("{:?}", SigningKey::derive(SECRET, &scope)));
    outputs.push(format!("{cache:?}"));
    outputs.push(format!("{signed:?}"));
    let key_hex: String = SigningKey::derive(SECRET, &scope)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    assert!(outputs.iter().any(|o| o.contains(AKID)), "ids may show");
    for output in &outputs {
        assert!(!output.contains(SECRET), "secret leaked: {output}");
        assert!(!output.contains(OTHER_SECRET), "secret leaked: {output}");
        assert!(!output.contains(&key_hex), "signing key leaked: {output}");
        assert!(
            !output.contains(&expected_signature),
            "expected signature leaked: {output}"
        );
        assert!(
            !output.contains("SESSION-TOKEN-VALUE"),
            "session token leaked: {output}"
        );
    }
}
