//! DynamoDB expressions: condition, update, projection, key condition and filter expressions.
//!
//! A request handler parses every expression of a request through one [`ExpressionScope`],
//! which resolves `#name` and `:value` placeholders from the request's
//! `ExpressionAttributeNames` and `ExpressionAttributeValues` and records which were used:
//!
//! ```
//! use std::collections::BTreeMap;
//! use ddb::expr::{ExpressionKind, ExpressionScope};
//! use ddb::item::{AttributeValue, Item, Number};
//!
//! let names = BTreeMap::from([("#c".to_owned(), "count".to_owned())]);
//! let values = BTreeMap::from([(":one".to_owned(), AttributeValue::N(Number::from(1)))]);
//! let mut scope = ExpressionScope::new(&names, &values);
//! let condition = scope.parse_condition(ExpressionKind::Condition, "attribute_exists(pk)")?;
//! let update = scope.parse_update("SET #c = if_not_exists(#c, :one) + :one", &["pk"])?;
//! scope.check_all_used()?;
//!
//! let item = Item::from([("pk".to_owned(), AttributeValue::S("k".into()))]);
//! assert!(condition.evaluate(Some(&item)));
//! let updated = update.apply(&item)?;
//! assert_eq!(updated["count"], AttributeValue::N(Number::from(2)));
//! # Ok::<(), ddb::expr::ExprError>(())
//! ```
//!
//! The grammar, precedence, semantics and error messages are described in
//! `docs/expressions.md`.

mod arith;
mod ast;
mod condition;
mod error;
mod key_condition;
mod lexer;
mod parser;
mod paths;
mod projection;
mod reserved;
mod scope;
mod update;
mod update_parser;

pub use arith::{add_numbers, negate_number, subtract_numbers};
pub use ast::{
    Comparator, Condition, Operand, Path, PathElement, Projection, SetAction, SetOperand, SetValue,
    TypeCode, UpdateExpression,
};
pub use condition::{value_size, values_equal};
pub use error::{
    ExprError, ExpressionKind, MAX_EXPRESSION_BYTES, MAX_EXPRESSION_NESTING, MAX_IN_OPERANDS,
};
pub use key_condition::{KeyCondition, SortKeyCondition};
pub use paths::resolve_path;
pub use reserved::{RESERVED_WORDS, is_reserved_word};
pub use scope::{ExpressionScope, PlaceholderUsage};
