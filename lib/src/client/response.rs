//! Reading a DynamoDB JSON 1.0 answer: checksum, error shape, body.

use super::ClientError;

/// Checks the body against the `x-amz-crc32` header (decimal CRC-32 of the body), if the
/// server sent one. A mismatch means the body was damaged in transit.
pub fn verify_crc32(header: Option<&str>, body: &[u8]) -> Result<(), ClientError> {
    let Some(text) = header else {
        return Ok(());
    };
    let expected: u32 = text
        .trim()
        .parse()
        .map_err(|_| ClientError::Protocol(format!("bad x-amz-crc32 header {text:?}")))?;
    let actual = crc32fast::hash(body);
    if actual == expected {
        Ok(())
    } else {
        Err(ClientError::Protocol(format!(
            "response body checksum mismatch: x-amz-crc32 says {expected}, body has {actual}"
        )))
    }
}

/// Turns a non-2xx answer into [`ClientError::Service`] when its body has DynamoDB's error
/// shape (`{"__type": "namespace#Code", "message": "..."}`; `Message` is accepted too, as
/// some services spell it), else into [`ClientError::Protocol`].
pub fn error_from_body(status: u16, body: &[u8]) -> ClientError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let type_name = parsed
        .as_ref()
        .and_then(|v| v.get("__type"))
        .and_then(|v| v.as_str());
    match type_name {
        Some(type_name) => {
            let code = type_name
                .rsplit_once('#')
                .map_or(type_name, |(_, code)| code)
                .to_owned();
            let message = parsed
                .as_ref()
                .and_then(|v| v.get("message").or_else(|| v.get("Message")))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            ClientError::Service {
                code,
                message,
                status,
            }
        }
        None => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(200).collect();
            ClientError::Protocol(format!(
                "HTTP {status} without a DynamoDB error body: {snippet:?}"
            ))
        }
    }
}

/// Parses a successful answer's body as JSON. An empty body counts as `{}`.
pub fn parse_success(body: &[u8]) -> Result<serde_json::Value, ClientError> {
    if body.is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ClientError::Protocol(format!("response body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_header_is_checked_when_present() {
        let body = br#"{"TableNames":[]}"#;
        let good = crc32fast::hash(body).to_string();
        verify_crc32(Some(&good), body).unwrap();
        verify_crc32(None, body).unwrap();
        let bad = (crc32fast::hash(body) ^ 1).to_string();
        assert!(matches!(
            verify_crc32(Some(&bad), body),
            Err(ClientError::Protocol(m)) if m.contains("checksum mismatch")
        ));
        assert!(verify_crc32(Some("abc"), body).is_err());
    }

    #[test]
    fn dynamodb_error_shape_becomes_service_error_with_short_code() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
        let error = error_from_body(400, body);
        assert!(error.is_condition_failed());
        assert_eq!(
            error.to_string(),
            "ConditionalCheckFailedException: The conditional request failed"
        );
        match error {
            ClientError::Service { status, .. } => assert_eq!(status, 400),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_without_namespace_or_message_still_has_a_code() {
        let error = error_from_body(500, br#"{"__type":"InternalServerError"}"#);
        assert_eq!(error.service_code(), Some("InternalServerError"));
        let error = error_from_body(400, br#"{"__type":"x#ValidationException","Message":"m"}"#);
        assert_eq!(error.to_string(), "ValidationException: m");
    }

    #[test]
    fn non_dynamodb_error_body_is_a_protocol_error() {
        let error = error_from_body(502, b"<html>Bad Gateway</html>");
        assert!(matches!(error, ClientError::Protocol(m) if m.contains("HTTP 502")));
    }

    #[test]
    fn success_body_parses_and_empty_is_an_empty_object() {
        assert_eq!(parse_success(b"").unwrap(), serde_json::json!({}));
        assert_eq!(
            parse_success(br#"{"Count":1}"#).unwrap(),
            serde_json::json!({"Count":1})
        );
        assert!(parse_success(b"{").is_err());
    }
}
