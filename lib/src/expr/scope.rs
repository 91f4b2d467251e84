//! `ExpressionAttributeNames` and `ExpressionAttributeValues` of one request, shared by all
//! its expressions, and the record of which placeholders those expressions used.

use std::collections::{BTreeMap, BTreeSet};

use crate::item::AttributeValue;

use super::ast::{Condition, Projection, UpdateExpression};
use super::error::{ExprError, ExpressionKind};
use super::key_condition::{KeyCondition, key_condition_from};
use super::parser::Parser;

/// The placeholders (`#name`, `:value`) that parsed expressions referred to.
///
/// DynamoDB rejects a request whose `ExpressionAttributeNames` or `ExpressionAttributeValues`
/// hold an entry that none of its expressions uses; collect the usage of every expression of
/// the request (with [`ExpressionScope`] this happens automatically) and call
/// [`PlaceholderUsage::check_all_used`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceholderUsage {
    names: BTreeSet<String>,
    values: BTreeSet<String>,
}

impl PlaceholderUsage {
    /// The `#name` placeholders used, sorted.
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// The `:value` placeholders used, sorted.
    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    /// Adds everything `other` used.
    pub fn merge(&mut self, other: &PlaceholderUsage) {
        self.names.extend(other.names.iter().cloned());
        self.values.extend(other.values.iter().cloned());
    }

    pub(crate) fn record_name(&mut self, placeholder: &str) {
        if !self.names.contains(placeholder) {
            self.names.insert(placeholder.to_owned());
        }
    }

    pub(crate) fn record_value(&mut self, placeholder: &str) {
        if !self.values.contains(placeholder) {
            self.values.insert(placeholder.to_owned());
        }
    }

    /// Fails with DynamoDB's "unused" error if `values` or `names` hold a placeholder this
    /// usage does not include. Values are checked first; keys are listed sorted.
    pub fn check_all_used(
        &self,
        names: &BTreeMap<String, String>,
        values: &BTreeMap<String, AttributeValue>,
    ) -> Result<(), ExprError> {
        let unused_values: Vec<String> = values
            .keys()
            .filter(|key| !self.values.contains(*key))
            .cloned()
            .collect();
        if !unused_values.is_empty() {
            return Err(ExprError::UnusedValues {
                keys: unused_values,
            });
        }
        let unused_names: Vec<String> = names
            .keys()
            .filter(|key| !self.names.contains(*key))
            .cloned()
            .collect();
        if !unused_names.is_empty() {
            return Err(ExprError::UnusedNames { keys: unused_names });
        }
        Ok(())
    }
}

/// The expression context of one request: its placeholder maps and the usage accumulated by
/// every expression parsed through it.
///
/// A request handler creates one per request, parses each expression parameter present
/// (condition, update, projection, filter, key condition) and finally calls
/// [`ExpressionScope::check_all_used`].
#[derive(Debug)]
pub struct ExpressionScope<'a> {
    names: &'a BTreeMap<String, String>,
    values: &'a BTreeMap<String, AttributeValue>,
    usage: PlaceholderUsage,
}

impl<'a> ExpressionScope<'a> {
    /// A scope over the request's `ExpressionAttributeNames` and `ExpressionAttributeValues`
    /// (pass empty maps for absent parameters).
    pub fn new(
        names: &'a BTreeMap<String, String>,
        values: &'a BTreeMap<String, AttributeValue>,
    ) -> ExpressionScope<'a> {
        ExpressionScope {
            names,
            values,
            usage: PlaceholderUsage::default(),
        }
    }

    fn parser<'s>(
        &'s mut self,
        kind: ExpressionKind,
        text: &'s str,
    ) -> Result<Parser<'s>, ExprError> {
        Parser::new(text, kind, self.names, self.values, &mut self.usage)
    }

    /// Parses a `ConditionExpression` (`kind` = [`ExpressionKind::Condition`]) or
    /// `FilterExpression` ([`ExpressionKind::Filter`]); `kind` only names the parameter in
    /// errors.
    pub fn parse_condition(
        &mut self,
        kind: ExpressionKind,
        text: &str,
    ) -> Result<Condition, ExprError> {
        self.parser(kind, text)?.parse_whole_condition()
    }

    /// Parses an `UpdateExpression`, rejecting actions on any of `key_attribute_names` and
    /// overlapping target paths.
    pub fn parse_update(
        &mut self,
        text: &str,
        key_attribute_names: &[&str],
    ) -> Result<UpdateExpression, ExprError> {
        self.parser(ExpressionKind::Update, text)?
            .parse_whole_update(key_attribute_names)
    }

    /// Parses a `ProjectionExpression`, rejecting overlapping paths.
    pub fn parse_projection(&mut self, text: &str) -> Result<Projection, ExprError> {
        self.parser(ExpressionKind::Projection, text)?
            .parse_whole_projection()
    }

    /// Parses a `KeyConditionExpression` for a table (or index) whose partition key is
    /// `partition_key` and whose sort key, if any, is `sort_key`.
    pub fn parse_key_condition(
        &mut self,
        text: &str,
        partition_key: &str,
        sort_key: Option<&str>,
    ) -> Result<KeyCondition, ExprError> {
        let condition = self
            .parser(ExpressionKind::KeyCondition, text)?
            .parse_whole_condition()?;
        key_condition_from(&condition, partition_key, sort_key)
    }

    /// The placeholders used by the expressions parsed so far.
    pub fn usage(&self) -> &PlaceholderUsage {
        &self.usage
    }

    /// DynamoDB's check that every placeholder of the request was used by some expression;
    /// call it after parsing all of the request's expressions.
    pub fn check_all_used(&self) -> Result<(), ExprError> {
        self.usage.check_all_used(self.names, self.values)
    }
}
