//! DynamoDB expressions: condition, update, projection, key condition and filter expressions.
