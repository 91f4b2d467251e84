//! Parsed expressions. Placeholders are already resolved: paths hold attribute names and
//! operands hold the values from `ExpressionAttributeValues`.

use std::fmt;

use crate::item::AttributeValue;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A map key (or, first in a path, a top-level attribute name).
    Attribute(String),
    /// A list index.
    Index(usize),
}

/// A document path such as `a.b[2].c`. Invariant: it is non-empty and starts with
/// [`PathElement::Attribute`] (the parser only builds such paths).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    elements: Vec<PathElement>,
}

impl Path {
    /// A path of the given elements; `None` unless it is non-empty and starts with an
    /// attribute name.
    pub fn new(elements: Vec<PathElement>) -> Option<Path> {
        matches!(elements.first(), Some(PathElement::Attribute(_))).then_some(Path { elements })
    }

    /// A path naming one top-level attribute.
    pub fn attribute(name: impl Into<String>) -> Path {
        Path {
            elements: vec![PathElement::Attribute(name.into())],
        }
    }

    /// The steps of the path, first the top-level attribute.
    pub fn elements(&self) -> &[PathElement] {
        &self.elements
    }

    /// The top-level attribute the path starts at.
    pub fn top_level_name(&self) -> &str {
        match self.elements.first() {
            Some(PathElement::Attribute(name)) => name,
            // Unreachable by the invariant; an empty name matches no attribute.
            _ => "",
        }
    }

    /// True if `self` equals `other` or is a prefix of it.
    pub fn is_prefix_of(&self, other: &Path) -> bool {
        other.elements.starts_with(&self.elements)
    }
}

impl fmt::Display for Path {
    /// DynamoDB's form in error messages: `[a, b, [2]]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (position, element) in self.elements.iter().enumerate() {
            if position > 0 {
                f.write_str(", ")?;
            }
            match element {
                PathElement::Attribute(name) => f.write_str(name)?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str("]")
    }
}

/// An operand of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// The value at a document path (absent if the item lacks it).
    Path(Path),
    /// A value from `ExpressionAttributeValues`.
    Value(AttributeValue),
    /// `size(path)`: a number, absent if the path is missing or its type has no size.
    Size(Path),
}

/// A binary comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// `=`
    Equal,
    /// `<>`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl Comparator {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Equal => "=",
            Comparator::NotEqual => "<>",
            Comparator::Less => "<",
            Comparator::LessOrEqual => "<=",
            Comparator::Greater => ">",
            Comparator::GreaterOrEqual => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn mirrored(self) -> Comparator {
        match self {
            Comparator::Less => Comparator::Greater,
            Comparator::LessOrEqual => Comparator::GreaterOrEqual,
            Comparator::Greater => Comparator::Less,
            Comparator::GreaterOrEqual => Comparator::LessOrEqual,
            same => same,
        }
    }
}

/// A condition (`ConditionExpression`, `FilterExpression`, and the raw form of a
/// `KeyConditionExpression`). Evaluate it with [`Condition::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `left <op> right`
    Compare {
        /// The operator.
        comparator: Comparator,
        /// Left operand.
        left: Operand,
        /// Right operand.
        right: Operand,
    },
    /// `operand BETWEEN low AND high` (inclusive).
    Between {
        /// The tested operand.
        operand: Operand,
        /// Lower bound.
        low: Operand,
        /// Upper bound.
        high: Operand,
    },
    /// `operand IN (candidates…)`
    In {
        /// The tested operand.
        operand: Operand,
        /// One to [`MAX_IN_OPERANDS`](super::MAX_IN_OPERANDS) candidates.
        candidates: Vec<Operand>,
    },
    /// `attribute_exists(path)`
    AttributeExists(Path),
    /// `attribute_not_exists(path)`
    AttributeNotExists(Path),
    /// `attribute_type(path, :t)` with a valid type code.
    AttributeType(Path, TypeCode),
    /// `begins_with(operand, prefix)`
    BeginsWith(Operand, Operand),
    /// `contains(operand, element)`
    Contains(Operand, Operand),
    /// `a AND b`
    And(Box<Condition>, Box<Condition>),
    /// `a OR b`
    Or(Box<Condition>, Box<Condition>),
    /// `NOT a`
    Not(Box<Condition>),
}

/// A DynamoDB type code, as `attribute_type` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeCode {
    /// `S`
    S,
    /// `SS`
    Ss,
    /// `N`
    N,
    /// `NS`
    Ns,
    /// `B`
    B,
    /// `BS`
    Bs,
    /// `BOOL`
    Bool,
    /// `NULL`
    Null,
    /// `L`
    L,
    /// `M`
    M,
}

impl TypeCode {
    /// Parses a code exactly as DynamoDB spells it (case-sensitive).
    pub fn parse(code: &str) -> Option<TypeCode> {
        Some(match code {
            "S" => TypeCode::S,
            "SS" => TypeCode::Ss,
            "N" => TypeCode::N,
            "NS" => TypeCode::Ns,
            "B" => TypeCode::B,
            "BS" => TypeCode::Bs,
            "BOOL" => TypeCode::Bool,
            "NULL" => TypeCode::Null,
            "L" => TypeCode::L,
            "M" => TypeCode::M,
            _ => return None,
        })
    }

    /// True if `value` has this type.
    pub fn matches(self, value: &AttributeValue) -> bool {
        let code = match self {
            TypeCode::S => "S",
            TypeCode::Ss => "SS",
            TypeCode::N => "N",
            TypeCode::Ns => "NS",
            TypeCode::B => "B",
            TypeCode::Bs => "BS",
            TypeCode::Bool => "BOOL",
            TypeCode::Null => "NULL",
            TypeCode::L => "L",
            TypeCode::M => "M",
        };
        value.type_key() == code
    }
}

/// A parsed `UpdateExpression`: its actions grouped by clause, each in written order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateExpression {
    /// `SET path = value` actions.
    pub set: Vec<SetAction>,
    /// `REMOVE path` actions.
    pub remove: Vec<Path>,
    /// `ADD path :value` actions (number or set).
    pub add: Vec<(Path, AttributeValue)>,
    /// `DELETE path :set` actions.
    pub delete: Vec<(Path, AttributeValue)>,
}

/// One `SET` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAction {
    /// Where the value goes.
    pub path: Path,
    /// What is stored there.
    pub value: SetValue,
}

/// The right-hand side of a `SET` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    /// A plain operand.
    Operand(SetOperand),
    /// `a + b` on numbers.
    Plus(SetOperand, SetOperand),
    /// `a - b` on numbers.
    Minus(SetOperand, SetOperand),
}

/// An operand of a `SET` action. Paths read the item as it was before the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOperand {
    /// The value at a path (an error if missing).
    Path(Path),
    /// A value from `ExpressionAttributeValues`.
    Value(AttributeValue),
    /// `if_not_exists(path, fallback)`
    IfNotExists(Path, Box<SetOperand>),
    /// `list_append(first, second)`
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

/// A parsed `ProjectionExpression`: the paths to keep, none overlapping another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// The projected paths in written order.
    pub paths: Vec<Path>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_displays_like_dynamodb_error_messages() {
        let path = Path::new(vec![
            PathElement::Attribute("a".into()),
            PathElement::Attribute("b".into()),
            PathElement::Index(3),
        ])
        .unwrap();
        assert_eq!(path.to_string(), "[a, b, [3]]");
        assert!(Path::attribute("a").is_prefix_of(&path));
        assert!(!path.is_prefix_of(&Path::attribute("a")));
        assert!(Path::new(vec![PathElement::Index(0)]).is_none());
    }
}
