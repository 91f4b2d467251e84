//! The errors of parsing, validating and applying expressions, with DynamoDB's message texts.
//!
//! Every variant is a `ValidationException` on the API; the `Display` text is the message the
//! request handler returns (DynamoDB's own wording, so SDK users see familiar errors).

use std::fmt;

use crate::item::NumberError;

/// Which request parameter an expression came from; names the parameter in error messages
/// (`Invalid ConditionExpression: …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpressionKind {
    /// `ConditionExpression` of PutItem, UpdateItem, DeleteItem and transactions.
    Condition,
    /// `FilterExpression` of Query and Scan.
    Filter,
    /// `KeyConditionExpression` of Query.
    KeyCondition,
    /// `UpdateExpression` of UpdateItem.
    Update,
    /// `ProjectionExpression` of reads.
    Projection,
}

impl ExpressionKind {
    /// The request parameter's name, e.g. `"ConditionExpression"`.
    pub fn parameter_name(self) -> &'static str {
        match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Update => "UpdateExpression",
            ExpressionKind::Projection => "ProjectionExpression",
        }
    }
}

impl fmt::Display for ExpressionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.parameter_name())
    }
}

/// Longest expression string DynamoDB accepts, in bytes (4 KB).
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// Deepest nesting of parentheses, `NOT`s and functions the parser accepts. DynamoDB documents
/// no limit; this one keeps recursion bounded far below any thread's stack size.
pub const MAX_EXPRESSION_NESTING: usize = 64;
/// Most operands on the right of `IN`.
pub const MAX_IN_OPERANDS: usize = 100;

/// Why an expression was rejected or could not be applied. All are `ValidationException`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression string is empty or only whitespace.
    #[error("Invalid {kind}: The expression can not be empty;")]
    Empty {
        /// The parameter holding the expression.
        kind: ExpressionKind,
    },
    /// The expression string is longer than [`MAX_EXPRESSION_BYTES`].
    #[error(
        "Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {size}"
    )]
    TooLong {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// Its length in bytes.
        size: usize,
    },
    /// The expression nests deeper than [`MAX_EXPRESSION_NESTING`].
    #[error(
        "Invalid {kind}: The expression is nested too deeply; maximum nesting: {max}",
        max = MAX_EXPRESSION_NESTING
    )]
    TooDeep {
        /// The parameter holding the expression.
        kind: ExpressionKind,
    },
    /// The grammar does not allow `token` here. `near` is the text from the token before it to
    /// the token after it.
    #[error("Invalid {kind}: Syntax error; token: \"{token}\", near: \"{near}\"")]
    Syntax {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The offending token (`<EOF>` at the end).
        token: String,
        /// Its surroundings in the expression text.
        near: String,
    },
    /// A bare attribute name is one of DynamoDB's reserved words.
    #[error("Invalid {kind}: Attribute name is a reserved keyword; reserved keyword: {keyword}")]
    ReservedKeyword {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The word as written.
        keyword: String,
    },
    /// `#name` is not in `ExpressionAttributeNames`.
    #[error(
        "Invalid {kind}: An expression attribute name used in the document path is not defined; attribute name: {name}"
    )]
    UndefinedName {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The placeholder, with its `#`.
        name: String,
    },
    /// `:value` is not in `ExpressionAttributeValues`.
    #[error(
        "Invalid {kind}: An expression attribute value used in expression is not defined; attribute value: {name}"
    )]
    UndefinedValue {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The placeholder, with its `:`.
        name: String,
    },
    /// Entries of `ExpressionAttributeValues` that no expression of the request used.
    #[error("Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}", keys.join(", "))]
    UnusedValues {
        /// The unused placeholders, sorted.
        keys: Vec<String>,
    },
    /// Entries of `ExpressionAttributeNames` that no expression of the request used.
    #[error("Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}", keys.join(", "))]
    UnusedNames {
        /// The unused placeholders, sorted.
        keys: Vec<String>,
    },
    /// A function name DynamoDB does not know.
    #[error("Invalid {kind}: Invalid function name; function: {function}")]
    UnknownFunction {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The name as written.
        function: String,
    },
    /// A known function used where this kind of expression does not allow it.
    #[error("Invalid {kind}: The function is not allowed in {context}; function: {function}")]
    FunctionNotAllowed {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The function's name.
        function: String,
        /// Where it was used, e.g. `an update expression`.
        context: &'static str,
    },
    /// A function called with the wrong number of arguments.
    #[error(
        "Invalid {kind}: Incorrect number of operands for operator or function; operator or function: {function}, number of operands: {count}"
    )]
    WrongOperandCount {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The function's name.
        function: String,
        /// How many arguments it got.
        count: usize,
    },
    /// An operator or function needs a document path where a value was given.
    #[error(
        "Invalid {kind}: Operator or function requires a document path; operator or function: {function}"
    )]
    RequiresPath {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The operator or function.
        function: String,
    },
    /// A literal operand has a type the operator or function never accepts.
    #[error(
        "Invalid {kind}: Incorrect operand type for operator or function; operator or function: {function}, operand type: {operand_type}"
    )]
    IncorrectOperandType {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The operator or function.
        function: String,
        /// The operand's type code (`N`, `SS`, …).
        operand_type: String,
    },
    /// `ADD` or `DELETE` with a value of a type it cannot take.
    #[error(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {operator}, operand type: {operand_type}, typeSet: ALLOWED_FOR_{operator}_OPERAND"
    )]
    IncorrectActionOperandType {
        /// `ADD` or `DELETE`.
        operator: &'static str,
        /// The value's type in DynamoDB's long form (`STRING`, `NUMBER`, …).
        operand_type: &'static str,
    },
    /// `attribute_type` with a type code that is not one of DynamoDB's ten.
    #[error(
        "Invalid {kind}: Invalid attribute type name found; type: {type_name}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
    )]
    InvalidAttributeType {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The code given.
        type_name: String,
    },
    /// `IN` with more than [`MAX_IN_OPERANDS`] operands.
    #[error(
        "Invalid {kind}: The IN operator is provided with too many operands; number of operands: {count}"
    )]
    TooManyInOperands {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// How many it got.
        count: usize,
    },
    /// Parentheses directly around another pair of parentheses.
    #[error("Invalid {kind}: The expression has redundant parentheses;")]
    RedundantParentheses {
        /// The parameter holding the expression.
        kind: ExpressionKind,
    },
    /// The same document path on both sides of a comparison or function.
    #[error(
        "Invalid {kind}: The first operand must be distinct from the remaining operands for this operator or function; operator: {operator}, first operand: {path}"
    )]
    OperandsNotDistinct {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The operator or function.
        operator: String,
        /// The repeated path, as `[a, b, [0]]`.
        path: String,
    },
    /// `BETWEEN` with literal bounds in the wrong order.
    #[error(
        "Invalid {kind}: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {{{low}}}, upper operand: AttributeValue: {{{high}}}"
    )]
    BetweenBoundsReversed {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The lower bound as `TYPE:value`.
        low: String,
        /// The upper bound as `TYPE:value`.
        high: String,
    },
    /// An update expression names the same clause twice.
    #[error(
        "Invalid UpdateExpression: The \"{clause}\" section can only be used once in an update expression;"
    )]
    DuplicateClause {
        /// `SET`, `REMOVE`, `ADD` or `DELETE`.
        clause: &'static str,
    },
    /// Two paths of one expression where one is a prefix of the other (or they are equal).
    #[error(
        "Invalid {kind}: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {first}, path two: {second}"
    )]
    OverlappingPaths {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The earlier path, as `[a, b]`.
        first: String,
        /// The later path.
        second: String,
    },
    /// Two paths that treat the same attribute as a map in one and as a list in the other.
    #[error(
        "Invalid {kind}: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {first}, path two: {second}"
    )]
    ConflictingPaths {
        /// The parameter holding the expression.
        kind: ExpressionKind,
        /// The earlier path, as `[a, b]`.
        first: String,
        /// The later path.
        second: String,
    },
    /// An update action targets a key attribute.
    #[error(
        "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
    )]
    KeyAttributeUpdated {
        /// The key attribute's name.
        name: String,
    },
    /// An update operand's value has the wrong type for its operator or function.
    #[error("An operand in the update expression has an incorrect data type")]
    IncorrectUpdateOperandType,
    /// An update action's path cannot be reached in the item (missing parent, wrong parent
    /// type).
    #[error("The document path provided in the update expression is invalid for update")]
    InvalidUpdatePath,
    /// A `SET` operand names an attribute the item does not have.
    #[error("The provided expression refers to an attribute that does not exist in the item")]
    MissingOperandAttribute,
    /// Arithmetic produced a number DynamoDB cannot store.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// A key condition uses an operator Query does not support.
    #[error("Invalid operator used in KeyConditionExpression: {operator}")]
    InvalidKeyConditionOperator {
        /// The operator or function.
        operator: String,
    },
    /// A key condition does not constrain the partition key.
    #[error("Query condition missed key schema element: {name}")]
    MissingKeySchemaElement {
        /// The missing key attribute.
        name: String,
    },
    /// A key condition of a shape Query does not support.
    #[error("Query key condition not supported")]
    KeyConditionNotSupported,
    /// A key condition constrains one key attribute twice.
    #[error("KeyConditionExpressions must only contain one condition per key")]
    KeyConditionRepeated,
}
