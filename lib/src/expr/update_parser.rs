//! The `UpdateExpression` and `ProjectionExpression` grammars, on the shared [`Parser`].

use crate::item::AttributeValue;

use super::ast::{Path, Projection, SetAction, SetOperand, SetValue, UpdateExpression};
use super::error::ExprError;
use super::lexer::TokenKind;
use super::parser::Parser;
use super::paths::check_paths_disjoint;

/// The four clauses of an update expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Set,
    Remove,
    Add,
    Delete,
}

impl Clause {
    fn name(self) -> &'static str {
        match self {
            Clause::Set => "SET",
            Clause::Remove => "REMOVE",
            Clause::Add => "ADD",
            Clause::Delete => "DELETE",
        }
    }
}

/// DynamoDB's long type names, as `ADD`/`DELETE` errors spell them.
fn long_type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Null => "NULL",
        AttributeValue::Bool(_) => "BOOLEAN",
    }
}

fn is_set(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    )
}

impl Parser<'_> {
    fn at_clause(&self) -> Option<Clause> {
        [Clause::Set, Clause::Remove, Clause::Add, Clause::Delete]
            .into_iter()
            .find(|clause| self.at_keyword(clause.name()))
    }

    /// Parses a whole update expression, then checks key attributes and path overlaps.
    pub(crate) fn parse_whole_update(
        mut self,
        key_attribute_names: &[&str],
    ) -> Result<UpdateExpression, ExprError> {
        let mut update = UpdateExpression::default();
        let mut seen: Vec<Clause> = Vec::new();
        loop {
            if self.peek() == &TokenKind::End && !seen.is_empty() {
                break;
            }
            let Some(clause) = self.at_clause() else {
                return Err(self.syntax_error());
            };
            if seen.contains(&clause) {
                return Err(ExprError::DuplicateClause {
                    clause: clause.name(),
                });
            }
            seen.push(clause);
            self.advance();
            loop {
                self.parse_action(clause, &mut update)?;
                if self.peek() != &TokenKind::Comma {
                    break;
                }
                self.advance();
            }
        }

        let targets: Vec<&Path> = update
            .set
            .iter()
            .map(|action| &action.path)
            .chain(update.remove.iter())
            .chain(update.add.iter().map(|(path, _)| path))
            .chain(update.delete.iter().map(|(path, _)| path))
            .collect();
        if let Some(key) = targets
            .iter()
            .map(|path| path.top_level_name())
            .find(|name| key_attribute_names.contains(name))
        {
            return Err(ExprError::KeyAttributeUpdated {
                name: key.to_owned(),
            });
        }
        check_paths_disjoint(self.kind, &targets)?;
        Ok(update)
    }

    fn parse_action(
        &mut self,
        clause: Clause,
        update: &mut UpdateExpression,
    ) -> Result<(), ExprError> {
        let path = self.parse_path()?;
        match clause {
            Clause::Set => {
                self.expect(&TokenKind::Equal)?;
                let value = self.parse_set_value()?;
                update.set.push(SetAction { path, value });
            }
            Clause::Remove => update.remove.push(path),
            Clause::Add => {
                let value = self.parse_value()?;
                if !is_set(&value) && !matches!(value, AttributeValue::N(_)) {
                    return Err(ExprError::IncorrectActionOperandType {
                        operator: "ADD",
                        operand_type: long_type_name(&value),
                    });
                }
                update.add.push((path, value));
            }
            Clause::Delete => {
                let value = self.parse_value()?;
                if !is_set(&value) {
                    return Err(ExprError::IncorrectActionOperandType {
                        operator: "DELETE",
                        operand_type: long_type_name(&value),
                    });
                }
                update.delete.push((path, value));
            }
        }
        Ok(())
    }

    fn parse_set_value(&mut self) -> Result<SetValue, ExprError> {
        let first = self.parse_set_operand()?;
        let plus = match self.peek() {
            TokenKind::Plus => true,
            TokenKind::Minus => false,
            _ => return Ok(SetValue::Operand(first)),
        };
        self.advance();
        let second = self.parse_set_operand()?;
        let symbol = if plus { "+" } else { "-" };
        for operand in [&first, &second] {
            if let SetOperand::Value(value) = operand
                && !matches!(value, AttributeValue::N(_))
            {
                return Err(ExprError::IncorrectOperandType {
                    kind: self.kind,
                    function: symbol.to_owned(),
                    operand_type: value.type_key().to_owned(),
                });
            }
        }
        Ok(if plus {
            SetValue::Plus(first, second)
        } else {
            SetValue::Minus(first, second)
        })
    }

    fn parse_set_operand(&mut self) -> Result<SetOperand, ExprError> {
        if let TokenKind::ValuePlaceholder(_) = self.peek() {
            return Ok(SetOperand::Value(self.parse_value()?));
        }
        let Some(function) = self.at_function_call() else {
            return Ok(SetOperand::Path(self.parse_path()?));
        };
        if function != "if_not_exists" && function != "list_append" {
            return Err(self.function_error(&function));
        }
        self.advance();
        self.expect(&TokenKind::LeftParen)?;
        self.enter()?;
        let mut arguments = vec![self.parse_set_operand()?];
        while self.peek() == &TokenKind::Comma {
            self.advance();
            arguments.push(self.parse_set_operand()?);
        }
        self.expect(&TokenKind::RightParen)?;
        self.leave();
        let count = arguments.len();
        let [first, second] =
            <[SetOperand; 2]>::try_from(arguments).map_err(|_| ExprError::WrongOperandCount {
                kind: self.kind,
                function: function.clone(),
                count,
            })?;
        if function == "if_not_exists" {
            let SetOperand::Path(path) = first else {
                return Err(ExprError::RequiresPath {
                    kind: self.kind,
                    function,
                });
            };
            return Ok(SetOperand::IfNotExists(path, Box::new(second)));
        }
        for operand in [&first, &second] {
            if let SetOperand::Value(value) = operand
                && !matches!(value, AttributeValue::L(_))
            {
                return Err(ExprError::IncorrectOperandType {
                    kind: self.kind,
                    function,
                    operand_type: value.type_key().to_owned(),
                });
            }
        }
        Ok(SetOperand::ListAppend(Box::new(first), Box::new(second)))
    }

    /// Parses a whole projection expression: paths separated by commas, none overlapping.
    pub(crate) fn parse_whole_projection(mut self) -> Result<Projection, ExprError> {
        let mut paths = vec![self.parse_path()?];
        while self.peek() == &TokenKind::Comma {
            self.advance();
            paths.push(self.parse_path()?);
        }
        self.expect_end()?;
        let targets: Vec<&Path> = paths.iter().collect();
        check_paths_disjoint(self.kind, &targets)?;
        Ok(Projection { paths })
    }
}
