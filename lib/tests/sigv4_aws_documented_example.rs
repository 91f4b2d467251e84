//! ddb reproduces AWS's published SigV4 example exactly: the IAM `ListUsers` request signed on
//! 2015-08-30 with the documentation's example secret. Its canonical request hash, signing key
//! and signature come from AWS's "Create a signed AWS API request" walkthrough.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ddb::sigv4::{
    Credential, CredentialScope, RequestParts, Signer, SigningKey, Verifier, canonical_request,
    parse_amz_date, sha256_hex, string_to_sign,
};

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";
const CANONICAL_REQUEST_SHA256: &str =
    "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
const SIGNING_KEY_HEX: &str = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

const HOST: (&str, &str) = ("Host", "iam.amazonaws.com");
const CONTENT_TYPE: (&str, &str) = (
    "Content-Type",
    "application/x-www-form-urlencoded; charset=utf-8",
);

fn scope() -> CredentialScope {
    CredentialScope {
        date: "20150830".to_owned(),
        region: "us-east-1".to_owned(),
        service: "iam".to_owned(),
    }
}

fn now() -> i64 {
    parse_amz_date(AMZ_DATE).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn canonical_request_string_to_sign_and_signature_match_the_documentation() {
    let headers = [CONTENT_TYPE, HOST, ("X-Amz-Date", AMZ_DATE)];
    let request = RequestParts {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
        .map(str::to_owned)
        .to_vec();
    let canonical = canonical_request(&request, &signed, &sha256_hex(b""));
    assert_eq!(
        canonical,
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\n\
         host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(sha256_hex(canonical.as_bytes()), CANONICAL_REQUEST_SHA256);

    let to_sign = string_to_sign(AMZ_DATE, &scope(), &canonical);
    assert_eq!(
        to_sign,
        format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{CANONICAL_REQUEST_SHA256}"
        )
    );

    let key = SigningKey::derive(SECRET, &scope());
    assert_eq!(hex(key.as_bytes()), SIGNING_KEY_HEX);
    assert_eq!(key.sign_hex(&to_sign), SIGNATURE);
}

#[test]
fn signer_produces_the_documented_authorization_header() {
    let headers = [CONTENT_TYPE, HOST];
    let request = RequestParts {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let signer = Signer::new(Credential::new(ACCESS_KEY_ID, SECRET), "us-east-1", "iam");
    let signed = signer.sign(&request, now()).unwrap();
    assert_eq!(signed.x_amz_date, AMZ_DATE);
    assert_eq!(
        signed.authorization,
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}"
        )
    );
}

#[test]
fn verifier_accepts_the_documented_request() {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}"
    );
    let headers = [
        HOST,
        CONTENT_TYPE,
        ("X-Amz-Date", AMZ_DATE),
        ("Authorization", authorization.as_str()),
    ];
    let request = RequestParts {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let verifier = Verifier::new(
        vec![Credential::new(ACCESS_KEY_ID, SECRET)],
        "us-east-1",
        "iam",
        Duration::from_secs(15 * 60),
    );
    let identity = verifier.verify(&request, now() + 60).unwrap();
    assert_eq!(identity.access_key_id, ACCESS_KEY_ID);
    assert_eq!(identity.signed_at_unix_secs, now());
}
