//! The recursive-descent parser: the token cursor, document paths, placeholders and the
//! condition grammar. Update and projection grammars live in `update_parser.rs`.
//!
//! Precedence, loosest first: `OR`, `AND`, `NOT`, then comparisons, `BETWEEN`, `IN` and
//! functions, then parentheses. Recursion is bounded by [`MAX_EXPRESSION_NESTING`].

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::item::AttributeValue;

use super::ast::{Comparator, Condition, Operand, Path, PathElement, TypeCode};
use super::error::{
    ExprError, ExpressionKind, MAX_EXPRESSION_BYTES, MAX_EXPRESSION_NESTING, MAX_IN_OPERANDS,
};
use super::lexer::{Token, TokenKind, tokenize};
use super::reserved::is_reserved_word;
use super::scope::PlaceholderUsage;

/// Words the condition grammar gives a meaning; they are syntax errors where a name is
/// expected (they are reserved words too).
const CONDITION_KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];

/// Functions usable in conditions and in update expressions.
const CONDITION_FUNCTIONS: [&str; 6] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
];
const UPDATE_FUNCTIONS: [&str; 2] = ["if_not_exists", "list_append"];

/// Parser state for one expression string.
pub(crate) struct Parser<'p> {
    pub(crate) source: &'p str,
    pub(crate) tokens: Vec<Token>,
    pub(crate) position: usize,
    pub(crate) kind: ExpressionKind,
    names: &'p BTreeMap<String, String>,
    values: &'p BTreeMap<String, AttributeValue>,
    usage: &'p mut PlaceholderUsage,
    depth: usize,
    /// Token indexes of the `(` and `)` of the last parenthesised condition closed, to detect
    /// redundant parentheses.
    last_group: Option<(usize, usize)>,
}

impl<'p> Parser<'p> {
    /// Checks the length, tokenizes and positions the cursor at the first token.
    pub(crate) fn new(
        source: &'p str,
        kind: ExpressionKind,
        names: &'p BTreeMap<String, String>,
        values: &'p BTreeMap<String, AttributeValue>,
        usage: &'p mut PlaceholderUsage,
    ) -> Result<Parser<'p>, ExprError> {
        if source.len() > MAX_EXPRESSION_BYTES {
            return Err(ExprError::TooLong {
                kind,
                size: source.len(),
            });
        }
        if source.trim().is_empty() {
            return Err(ExprError::Empty { kind });
        }
        Ok(Parser {
            source,
            tokens: tokenize(source, kind)?,
            position: 0,
            kind,
            names,
            values,
            usage,
            depth: 0,
            last_group: None,
        })
    }

    // ---- cursor -------------------------------------------------------------------------

    pub(crate) fn peek(&self) -> &TokenKind {
        self.peek_at(0)
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> &TokenKind {
        // The token list always ends with `End`, so clamping keeps us on it.
        let index = (self.position + ahead).min(self.tokens.len().saturating_sub(1));
        self.tokens
            .get(index)
            .map_or(&TokenKind::End, |token| &token.kind)
    }

    pub(crate) fn advance(&mut self) {
        if self.position + 1 < self.tokens.len() {
            self.position += 1;
        }
    }

    /// True if the current token is the keyword `word` (any case).
    pub(crate) fn at_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// A syntax error at the current token.
    pub(crate) fn syntax_error(&self) -> ExprError {
        let index = self.position.min(self.tokens.len().saturating_sub(1));
        let Some(token) = self.tokens.get(index) else {
            return ExprError::Empty { kind: self.kind };
        };
        let text = if token.kind == TokenKind::End {
            String::from("<EOF>")
        } else {
            self.source[token.start..token.end].to_owned()
        };
        let start = index
            .checked_sub(1)
            .and_then(|previous| self.tokens.get(previous))
            .map_or(token.start, |previous| previous.start);
        let end = self
            .tokens
            .get(index + 1)
            .filter(|next| next.kind != TokenKind::End)
            .map_or(token.end, |next| next.end);
        ExprError::Syntax {
            kind: self.kind,
            token: text,
            near: self.source[start..end].to_owned(),
        }
    }

    pub(crate) fn expect(&mut self, expected: &TokenKind) -> Result<(), ExprError> {
        if self.peek() == expected {
            self.advance();
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    pub(crate) fn expect_end(&self) -> Result<(), ExprError> {
        match self.peek() {
            TokenKind::End => Ok(()),
            _ => Err(self.syntax_error()),
        }
    }

    /// Enters one nesting level; fails past [`MAX_EXPRESSION_NESTING`].
    pub(crate) fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_NESTING {
            return Err(ExprError::TooDeep { kind: self.kind });
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- placeholders and paths ---------------------------------------------------------

    fn resolve_name(&mut self, placeholder: &str) -> Result<String, ExprError> {
        let name = self
            .names
            .get(placeholder)
            .ok_or_else(|| ExprError::UndefinedName {
                kind: self.kind,
                name: placeholder.to_owned(),
            })?;
        self.usage.record_name(placeholder);
        Ok(name.clone())
    }

    fn resolve_value(&mut self, placeholder: &str) -> Result<AttributeValue, ExprError> {
        let value = self
            .values
            .get(placeholder)
            .ok_or_else(|| ExprError::UndefinedValue {
                kind: self.kind,
                name: placeholder.to_owned(),
            })?;
        self.usage.record_value(placeholder);
        Ok(value.clone())
    }

    /// Parses a `:value` placeholder and returns its value.
    pub(crate) fn parse_value(&mut self) -> Result<AttributeValue, ExprError> {
        match self.peek().clone() {
            TokenKind::ValuePlaceholder(placeholder) => {
                let value = self.resolve_value(&placeholder)?;
                self.advance();
                Ok(value)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// One name step of a path: a bare word (not reserved, not a keyword) or `#name`.
    fn parse_name(&mut self) -> Result<String, ExprError> {
        match self.peek().clone() {
            TokenKind::NamePlaceholder(placeholder) => {
                let name = self.resolve_name(&placeholder)?;
                self.advance();
                Ok(name)
            }
            TokenKind::Word(word) => {
                if CONDITION_KEYWORDS
                    .iter()
                    .any(|keyword| word.eq_ignore_ascii_case(keyword))
                {
                    return Err(self.syntax_error());
                }
                if is_reserved_word(&word) {
                    return Err(ExprError::ReservedKeyword {
                        kind: self.kind,
                        keyword: word,
                    });
                }
                self.advance();
                Ok(word)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// Parses a document path: a name, then any of `.name` and `[index]`.
    pub(crate) fn parse_path(&mut self) -> Result<Path, ExprError> {
        let mut elements = vec![PathElement::Attribute(self.parse_name()?)];
        loop {
            match self.peek() {
                TokenKind::Dot => {
                    self.advance();
                    elements.push(PathElement::Attribute(self.parse_name()?));
                }
                TokenKind::LeftBracket => {
                    self.advance();
                    let TokenKind::Digits(digits) = self.peek().clone() else {
                        return Err(self.syntax_error());
                    };
                    let index = digits.parse::<usize>().map_err(|_| self.syntax_error())?;
                    self.advance();
                    self.expect(&TokenKind::RightBracket)?;
                    elements.push(PathElement::Index(index));
                }
                _ => break,
            }
        }
        Path::new(elements).ok_or_else(|| self.syntax_error())
    }

    /// True if the cursor is at `word(`, a function call.
    pub(crate) fn at_function_call(&self) -> Option<String> {
        match (self.peek(), self.peek_at(1)) {
            (TokenKind::Word(word), TokenKind::LeftParen) => Some(word.clone()),
            _ => None,
        }
    }

    /// The error for calling `function` where it is not allowed (or does not exist).
    pub(crate) fn function_error(&self, function: &str) -> ExprError {
        let known = CONDITION_FUNCTIONS.contains(&function) || UPDATE_FUNCTIONS.contains(&function);
        if !known {
            return ExprError::UnknownFunction {
                kind: self.kind,
                function: function.to_owned(),
            };
        }
        let context = match self.kind {
            ExpressionKind::Update => "an update expression",
            ExpressionKind::Projection => "a projection expression",
            ExpressionKind::KeyCondition => "a key condition expression",
            ExpressionKind::Filter => "a filter expression",
            ExpressionKind::Condition => "a condition expression",
        };
        ExprError::FunctionNotAllowed {
            kind: self.kind,
            function: function.to_owned(),
            context,
        }
    }

    // ---- conditions ---------------------------------------------------------------------

    /// Parses a whole condition expression (nothing may follow).
    pub(crate) fn parse_whole_condition(mut self) -> Result<Condition, ExprError> {
        let condition = self.parse_or()?;
        self.expect_end()?;
        Ok(condition)
    }

    fn parse_or(&mut self) -> Result<Condition, ExprError> {
        let mut left = self.parse_and()?;
        while self.at_keyword("OR") {
            self.advance();
            let right = self.parse_and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Condition, ExprError> {
        let mut left = self.parse_not()?;
        while self.at_keyword("AND") {
            self.advance();
            let right = self.parse_not()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Condition, ExprError> {
        if self.at_keyword("NOT") {
            self.advance();
            self.enter()?;
            let inner = self.parse_not()?;
            self.leave();
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Condition, ExprError> {
        if self.peek() == &TokenKind::LeftParen {
            let open = self.position;
            self.advance();
            self.enter()?;
            let inner = self.parse_or()?;
            self.leave();
            let close = self.position;
            self.expect(&TokenKind::RightParen)?;
            if self.last_group == Some((open + 1, close - 1)) {
                return Err(ExprError::RedundantParentheses { kind: self.kind });
            }
            self.last_group = Some((open, close));
            return Ok(inner);
        }
        if let Some(function) = self.at_function_call()
            && function != "size"
        {
            return self.parse_condition_function(&function);
        }
        let operand = self.parse_operand()?;
        self.parse_comparison_tail(operand)
    }

    /// An operand: `:value`, a path, or `size(path)`.
    pub(crate) fn parse_operand(&mut self) -> Result<Operand, ExprError> {
        if let TokenKind::ValuePlaceholder(_) = self.peek() {
            return Ok(Operand::Value(self.parse_value()?));
        }
        if let Some(function) = self.at_function_call() {
            if function != "size" {
                return Err(self.function_error(&function));
            }
            let arguments = self.parse_arguments()?;
            return match <[Operand; 1]>::try_from(arguments) {
                Ok([Operand::Path(path)]) => Ok(Operand::Size(path)),
                Ok(_) => Err(self.requires_path("size")),
                Err(arguments) => Err(self.wrong_count("size", arguments.len())),
            };
        }
        Ok(Operand::Path(self.parse_path()?))
    }

    /// `name( operand, … )` starting at the function name; returns the operands.
    fn parse_arguments(&mut self) -> Result<Vec<Operand>, ExprError> {
        self.advance();
        self.expect(&TokenKind::LeftParen)?;
        self.enter()?;
        let mut arguments = vec![self.parse_operand()?];
        while self.peek() == &TokenKind::Comma {
            self.advance();
            arguments.push(self.parse_operand()?);
        }
        self.expect(&TokenKind::RightParen)?;
        self.leave();
        Ok(arguments)
    }

    fn requires_path(&self, function: &str) -> ExprError {
        ExprError::RequiresPath {
            kind: self.kind,
            function: function.to_owned(),
        }
    }

    fn wrong_count(&self, function: &str, count: usize) -> ExprError {
        ExprError::WrongOperandCount {
            kind: self.kind,
            function: function.to_owned(),
            count,
        }
    }

    fn incorrect_type(&self, function: &str, value: &AttributeValue) -> ExprError {
        ExprError::IncorrectOperandType {
            kind: self.kind,
            function: function.to_owned(),
            operand_type: value.type_key().to_owned(),
        }
    }

    fn check_distinct(
        &self,
        operator: &str,
        first: &Operand,
        others: &[&Operand],
    ) -> Result<(), ExprError> {
        if let Operand::Path(path) = first
            && others
                .iter()
                .any(|other| matches!(other, Operand::Path(p) if p == path))
        {
            return Err(ExprError::OperandsNotDistinct {
                kind: self.kind,
                operator: operator.to_owned(),
                path: path.to_string(),
            });
        }
        Ok(())
    }

    /// Ordering operators only take numbers, strings and binaries.
    fn check_orderable(&self, operator: &str, operands: &[&Operand]) -> Result<(), ExprError> {
        for operand in operands {
            if let Operand::Value(value) = operand
                && !is_orderable(value)
            {
                return Err(self.incorrect_type(operator, value));
            }
        }
        Ok(())
    }

    fn parse_condition_function(&mut self, function: &str) -> Result<Condition, ExprError> {
        if !CONDITION_FUNCTIONS.contains(&function) {
            return Err(self.function_error(function));
        }
        let arguments = self.parse_arguments()?;
        let expected = if function.starts_with("attribute_") && function != "attribute_type" {
            1
        } else {
            2
        };
        if arguments.len() != expected {
            return Err(self.wrong_count(function, arguments.len()));
        }
        let mut arguments = arguments.into_iter();
        let (Some(first), second) = (arguments.next(), arguments.next()) else {
            return Err(self.wrong_count(function, 0));
        };
        match (function, first, second) {
            ("attribute_exists", Operand::Path(path), None) => Ok(Condition::AttributeExists(path)),
            ("attribute_not_exists", Operand::Path(path), None) => {
                Ok(Condition::AttributeNotExists(path))
            }
            ("attribute_type", Operand::Path(path), Some(Operand::Value(code))) => {
                let AttributeValue::S(code_text) = &code else {
                    return Err(self.incorrect_type(function, &code));
                };
                let type_code =
                    TypeCode::parse(code_text).ok_or_else(|| ExprError::InvalidAttributeType {
                        kind: self.kind,
                        type_name: code_text.clone(),
                    })?;
                Ok(Condition::AttributeType(path, type_code))
            }
            ("attribute_type", Operand::Path(_), Some(_)) => Err(self.syntax_error()),
            ("begins_with", first, Some(prefix)) => {
                for operand in [&first, &prefix] {
                    if let Operand::Value(value) = operand
                        && !matches!(value, AttributeValue::S(_) | AttributeValue::B(_))
                    {
                        return Err(self.incorrect_type(function, value));
                    }
                }
                self.check_distinct(function, &first, &[&prefix])?;
                Ok(Condition::BeginsWith(first, prefix))
            }
            ("contains", first, Some(element)) => {
                self.check_distinct(function, &first, &[&element])?;
                Ok(Condition::Contains(first, element))
            }
            _ => Err(self.requires_path(function)),
        }
    }

    /// After a left operand: a comparator, `BETWEEN` or `IN`.
    fn parse_comparison_tail(&mut self, left: Operand) -> Result<Condition, ExprError> {
        let comparator = match self.peek() {
            TokenKind::Equal => Some(Comparator::Equal),
            TokenKind::NotEqual => Some(Comparator::NotEqual),
            TokenKind::Less => Some(Comparator::Less),
            TokenKind::LessOrEqual => Some(Comparator::LessOrEqual),
            TokenKind::Greater => Some(Comparator::Greater),
            TokenKind::GreaterOrEqual => Some(Comparator::GreaterOrEqual),
            _ => None,
        };
        if let Some(comparator) = comparator {
            self.advance();
            let right = self.parse_operand()?;
            if !matches!(comparator, Comparator::Equal | Comparator::NotEqual) {
                self.check_orderable(comparator.symbol(), &[&left, &right])?;
            }
            self.check_distinct(comparator.symbol(), &left, &[&right])?;
            return Ok(Condition::Compare {
                comparator,
                left,
                right,
            });
        }
        if self.at_keyword("BETWEEN") {
            self.advance();
            let low = self.parse_operand()?;
            if !self.at_keyword("AND") {
                return Err(self.syntax_error());
            }
            self.advance();
            let high = self.parse_operand()?;
            self.check_orderable("BETWEEN", &[&left, &low, &high])?;
            self.check_distinct("BETWEEN", &left, &[&low, &high])?;
            if let (Operand::Value(low_value), Operand::Value(high_value)) = (&low, &high)
                && compare_values(low_value, high_value) == Some(Ordering::Greater)
            {
                return Err(ExprError::BetweenBoundsReversed {
                    kind: self.kind,
                    low: describe_value(low_value),
                    high: describe_value(high_value),
                });
            }
            return Ok(Condition::Between {
                operand: left,
                low,
                high,
            });
        }
        if self.at_keyword("IN") {
            self.advance();
            self.expect(&TokenKind::LeftParen)?;
            let mut candidates = vec![self.parse_operand()?];
            while self.peek() == &TokenKind::Comma {
                self.advance();
                candidates.push(self.parse_operand()?);
            }
            self.expect(&TokenKind::RightParen)?;
            if candidates.len() > MAX_IN_OPERANDS {
                return Err(ExprError::TooManyInOperands {
                    kind: self.kind,
                    count: candidates.len(),
                });
            }
            let others: Vec<&Operand> = candidates.iter().collect();
            self.check_distinct("IN", &left, &others)?;
            return Ok(Condition::In {
                operand: left,
                candidates,
            });
        }
        Err(self.syntax_error())
    }
}

/// True for the types `<`, `>` and `BETWEEN` compare: numbers, strings and binaries.
pub(crate) fn is_orderable(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::N(_) | AttributeValue::S(_) | AttributeValue::B(_)
    )
}

/// DynamoDB's order between two values of the same orderable type; `None` otherwise.
pub(crate) fn compare_values(left: &AttributeValue, right: &AttributeValue) -> Option<Ordering> {
    match (left, right) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// `TYPE:value` for scalar values in messages (containers show only their type).
fn describe_value(value: &AttributeValue) -> String {
    match value {
        AttributeValue::N(number) => format!("N:{number}"),
        AttributeValue::S(text) => format!("S:{text}"),
        other => other.type_key().to_owned(),
    }
}
