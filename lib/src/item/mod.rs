//! DynamoDB items: attribute values, validation, DynamoDB JSON, canonical and key encodings.
