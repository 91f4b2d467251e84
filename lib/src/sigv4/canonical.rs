//! The canonical request and the string to sign, exactly as AWS defines them for services
//! other than S3.
//!
//! ```text
//! CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n
//!                    CanonicalHeaders \n SignedHeaders \n HashedPayload
//! StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n CredentialScope \n hex(SHA256(CanonicalRequest))
//! ```

use sha2::{Digest, Sha256};

use super::hex;
use super::request::RequestParts;
use super::scope::CredentialScope;

/// The only signing algorithm SigV4 defines for requests.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The `x-amz-content-sha256` value that opts out of hashing the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Lowercase hex SHA-256 of `bytes`: the canonical request's payload hash and the value of
/// `x-amz-content-sha256`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes))
}

/// The canonical request for `request`, covering the headers named in `signed_headers`
/// (lowercase, sorted, as [`signed_headers_line`] expects) and a body whose hash is
/// `payload_hash`.
#[must_use]
pub fn canonical_request(
    request: &RequestParts<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256 + request.path.len() + request.query.len());
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query_string(request.query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for value in request.header_values(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_header_value(value, &mut out);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers_line(signed_headers));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The string to sign for a canonical request signed at `amz_date` within `scope`.
#[must_use]
pub fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The `SignedHeaders` value: the names joined by `;`.
#[must_use]
pub fn signed_headers_line(signed_headers: &[String]) -> String {
    signed_headers.join(";")
}

/// The canonical URI of a raw (already percent-encoded) path: dot segments and empty segments
/// removed, then every segment URI-encoded once more, which makes the decoded path encoded
/// twice as AWS requires outside S3. An empty path is `/`.
#[must_use]
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(raw_path.len() + 8);
    out.push('/');
    for (index, segment) in segments.iter().enumerate() {
        if index > 0 {
            out.push('/');
        }
        uri_encode(segment.as_bytes(), &mut out);
    }
    if !segments.is_empty() && raw_path.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string of a raw query: each `name=value` pair percent-decoded, then
/// URI-encoded in AWS's strict form, sorted by name and then value; a name without `=` gets
/// an empty value.
#[must_use]
pub fn canonical_query_string(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut encoded_name = String::new();
            let mut encoded_value = String::new();
            uri_encode(&percent_decode(name), &mut encoded_name);
            uri_encode(&percent_decode(value), &mut encoded_value);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Appends `value` trimmed, with each run of whitespace inside collapsed to one space.
fn push_header_value(value: &str, out: &mut String) {
    for (index, word) in value.split_whitespace().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Appends `bytes` URI-encoded as SigV4 requires: unreserved characters (`A-Z a-z 0-9 - . _ ~`)
/// as they are, every other byte as `%XX` with uppercase hex.
fn uri_encode(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is. `+` stays `+`:
/// SigV4 does not treat it as a space.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16).ok()
            });
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_normalised_and_encoded_twice() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/../.."), "/");
        assert_eq!(
            canonical_uri("/documents%20and%20settings/"),
            "/documents%2520and%2520settings/"
        );
        assert_eq!(canonical_uri("/ü"), "/%C3%BC");
        assert_eq!(canonical_uri("/a~b-c_d.e"), "/a~b-c_d.e");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query_string(""), "");
        assert_eq!(
            canonical_query_string("Version=2010-05-08&Action=ListUsers"),
            "Action=ListUsers&Version=2010-05-08"
        );
        assert_eq!(canonical_query_string("b=2&a&b=1"), "a=&b=1&b=2");
        assert_eq!(canonical_query_string("k=a%2fb/c"), "k=a%2Fb%2Fc");
        assert_eq!(canonical_query_string("k=a+b%20c"), "k=a%2Bb%20c");
        assert_eq!(canonical_query_string("k=100%"), "k=100%25");
        assert_eq!(canonical_query_string("&&k=v&"), "k=v");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let headers = [
            ("My-Header", "  a   b  "),
            ("my-header", "c"),
            ("Host", "h"),
        ];
        let request = RequestParts {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let canonical = canonical_request(
            &request,
            &["host".to_owned(), "my-header".to_owned()],
            "HASH",
        );
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:h\nmy-header:a b,c\n\nhost;my-header\nHASH"
        );
    }
}
