//! The DynamoDB JSON 1.0 protocol: operations, request parameters and error shapes.

mod error;
mod request;

pub use error::{ApiError, ErrorCode};
pub use request::{Params, missing, parse_item, validate_table_name};

/// The `X-Amz-Target` prefix of every DynamoDB operation.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// The content type of DynamoDB JSON 1.0 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Every operation a node answers (the part of `X-Amz-Target` after the dot).
pub const OPERATIONS: [&str; 15] = [
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "UpdateTable",
    "DeleteTable",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    // ddb's own: an operator forces a group to replace a member (`ddbctl partition heal`).
    "DdbHealGroup",
    // ddb's own: an operator splits a hot partition (`ddbctl partition split`).
    "DdbSplitPartition",
];
