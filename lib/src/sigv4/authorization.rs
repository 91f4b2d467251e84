//! Parsing the `Authorization` header:
//! `AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/dynamodb/aws4_request,
//! SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
//!
//! SDKs differ in spacing (`, ` or `,` between parameters, sometimes runs of spaces), so
//! whitespace around separators is ignored; parameter order does not matter.

use super::canonical::ALGORITHM;
use super::error::AuthError;
use super::scope::{CredentialScope, SCOPE_TERMINATOR};

/// The parts of a well-formed `Authorization` header. Checks against configuration (region,
/// service, known keys) are the verifier's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedAuthorization<'a> {
    pub access_key_id: &'a str,
    pub scope: CredentialScope,
    /// Lowercase, sorted, without duplicates.
    pub signed_headers: Vec<String>,
    /// As sent; not yet checked to be hex.
    pub signature: &'a str,
}

pub(crate) fn parse_authorization<'a>(
    header: &'a str,
) -> Result<ParsedAuthorization<'a>, AuthError> {
    let header = header.trim();
    let (algorithm, parameters) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            truncate(algorithm)
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for parameter in parameters.split(',').map(str::trim) {
        if parameter.is_empty() {
            continue;
        }
        let Some((name, value)) = parameter.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header parameter '{}' is not of the form name=value.",
                truncate(parameter)
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            // Unknown parameters are ignored, as AWS does.
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header has more than one '{}' parameter.",
                name.trim()
            )));
        }
    }

    let present = |value: Option<&'a str>| value.filter(|v| !v.is_empty());
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        present(credential),
        present(signed_headers),
        present(signature),
    ) else {
        let missing: Vec<String> = [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ]
        .into_iter()
        .filter(|(_, value)| present(*value).is_none())
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
        .collect();
        return Err(incomplete(missing.join(" ")));
    };

    let (access_key_id, scope) = parse_credential(credential)?;
    let mut signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(incomplete(format!(
            "SignedHeaders '{}' has an empty header name.",
            truncate(&signed_headers.join(";"))
        )));
    }
    signed_headers.sort_unstable();
    signed_headers.dedup();
    Ok(ParsedAuthorization {
        access_key_id,
        scope,
        signed_headers,
        signature,
    })
}

/// `AKID/date/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<(&str, CredentialScope), AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            truncate(credential)
        )));
    };
    if access_key_id.is_empty() || date.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete(format!(
            "Credential has an empty element: '{}'",
            truncate(credential)
        )));
    }
    if *terminator != SCOPE_TERMINATOR {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{}'.",
            truncate(terminator)
        )));
    }
    Ok((
        access_key_id,
        CredentialScope {
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        },
    ))
}

fn incomplete(message: String) -> AuthError {
    AuthError::IncompleteSignature(message)
}

/// Client text echoed in an error, cut so a hostile header cannot make a huge response.
fn truncate(text: &str) -> &str {
    const MAX_ECHO_CHARS: usize = 128;
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn accepts_the_spacing_variants_sdks_send() {
        for header in [
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request,SignedHeaders=content-type;host;x-amz-date,Signature={SIG}"
            ),
            format!(
                "  AWS4-HMAC-SHA256   Credential = AKID/20150830/us-east-1/iam/aws4_request ,  SignedHeaders=Host;Content-Type;x-amz-date ,Signature={SIG}  "
            ),
            format!(
                "AWS4-HMAC-SHA256 Signature={SIG}, SignedHeaders=x-amz-date;host;content-type, Credential=AKID/20150830/us-east-1/iam/aws4_request"
            ),
        ] {
            let parsed = parse_authorization(&header).unwrap();
            assert_eq!(parsed.access_key_id, "AKID", "{header}");
            assert_eq!(
                parsed.scope.to_string(),
                "20150830/us-east-1/iam/aws4_request"
            );
            assert_eq!(
                parsed.signed_headers,
                ["content-type", "host", "x-amz-date"]
            );
            assert_eq!(parsed.signature, SIG);
        }
    }

    #[test]
    fn malformed_headers_are_incomplete_signatures() {
        for header in [
            "",
            "AWS4-HMAC-SHA256",
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws5_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;;x, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00",
        ] {
            let error = parse_authorization(header).unwrap_err();
            assert_eq!(
                error.code(),
                "IncompleteSignatureException",
                "{header}: {error}"
            );
        }
    }
}
