//! Applying a parsed `UpdateExpression` to an item.
//!
//! Semantics:
//! - Every `SET` operand reads the item as it was before the update, so
//!   `SET a = b, b = a` swaps two attributes.
//! - Actions then apply in clause order `SET`, `REMOVE`, `ADD`, `DELETE`. Their target paths
//!   never overlap (checked at parse time), so the order only matters for list indexes:
//!   `REMOVE` takes indexes as they were before it (`REMOVE l[0], l[1]` removes the first two
//!   elements), and removing an element shifts the later ones down.
//! - `SET l[i]` past the end of a list appends.
//! - The update is all-or-nothing: it works on a copy and returns it only if every action
//!   succeeded.

use crate::item::{AttributeValue, Item};

use super::arith::{add_numbers, subtract_numbers};
use super::ast::{Path, PathElement, SetOperand, SetValue, UpdateExpression};
use super::error::ExprError;
use super::paths::resolve_path;

fn evaluate_operand(operand: &SetOperand, item: &Item) -> Result<AttributeValue, ExprError> {
    match operand {
        SetOperand::Value(value) => Ok(value.clone()),
        SetOperand::Path(path) => resolve_path(item, path)
            .cloned()
            .ok_or(ExprError::MissingOperandAttribute),
        SetOperand::IfNotExists(path, fallback) => match resolve_path(item, path) {
            Some(value) => Ok(value.clone()),
            None => evaluate_operand(fallback, item),
        },
        SetOperand::ListAppend(first, second) => {
            match (
                evaluate_operand(first, item)?,
                evaluate_operand(second, item)?,
            ) {
                (AttributeValue::L(mut first), AttributeValue::L(second)) => {
                    first.extend(second);
                    Ok(AttributeValue::L(first))
                }
                _ => Err(ExprError::IncorrectUpdateOperandType),
            }
        }
    }
}

fn evaluate_set_value(value: &SetValue, item: &Item) -> Result<AttributeValue, ExprError> {
    let (first, second, plus) = match value {
        SetValue::Operand(operand) => return evaluate_operand(operand, item),
        SetValue::Plus(first, second) => (first, second, true),
        SetValue::Minus(first, second) => (first, second, false),
    };
    match (
        evaluate_operand(first, item)?,
        evaluate_operand(second, item)?,
    ) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Ok(AttributeValue::N(if plus {
            add_numbers(&a, &b)?
        } else {
            subtract_numbers(&a, &b)?
        })),
        _ => Err(ExprError::IncorrectUpdateOperandType),
    }
}

/// The container holding the last element of `path`, mutably; an error if a step before it is
/// missing or of the wrong type.
fn parent_mut<'i>(item: &'i mut Item, path: &Path) -> Result<&'i mut AttributeValue, ExprError> {
    let elements = path.elements();
    let (Some(PathElement::Attribute(first)), Some(middle)) = (
        elements.first(),
        elements.get(1..elements.len().saturating_sub(1)),
    ) else {
        return Err(ExprError::InvalidUpdatePath);
    };
    let mut current = item.get_mut(first).ok_or(ExprError::InvalidUpdatePath)?;
    for element in middle {
        current = match (element, current) {
            (PathElement::Attribute(name), AttributeValue::M(map)) => map.get_mut(name),
            (PathElement::Index(index), AttributeValue::L(list)) => list.get_mut(*index),
            _ => None,
        }
        .ok_or(ExprError::InvalidUpdatePath)?;
    }
    Ok(current)
}

fn set_at(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), ExprError> {
    let elements = path.elements();
    if let [PathElement::Attribute(name)] = elements {
        item.insert(name.clone(), value);
        return Ok(());
    }
    let parent = parent_mut(item, path)?;
    match (elements.last(), parent) {
        (Some(PathElement::Attribute(name)), AttributeValue::M(map)) => {
            map.insert(name.clone(), value);
        }
        (Some(PathElement::Index(index)), AttributeValue::L(list)) => match list.get_mut(*index) {
            Some(slot) => *slot = value,
            None => list.push(value),
        },
        _ => return Err(ExprError::InvalidUpdatePath),
    }
    Ok(())
}

fn remove_at(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    let elements = path.elements();
    if let [PathElement::Attribute(name)] = elements {
        item.remove(name);
        return Ok(());
    }
    let parent = parent_mut(item, path)?;
    match (elements.last(), parent) {
        (Some(PathElement::Attribute(name)), AttributeValue::M(map)) => {
            map.remove(name);
        }
        (Some(PathElement::Index(index)), AttributeValue::L(list)) => {
            if *index < list.len() {
                list.remove(*index);
            }
        }
        _ => return Err(ExprError::InvalidUpdatePath),
    }
    Ok(())
}

/// Appends to `set` the elements of `more` it does not hold yet.
fn union<T: PartialEq>(mut set: Vec<T>, more: Vec<T>) -> Vec<T> {
    for element in more {
        if !set.contains(&element) {
            set.push(element);
        }
    }
    set
}

fn difference<T: PartialEq>(set: Vec<T>, less: &[T]) -> Vec<T> {
    set.into_iter()
        .filter(|element| !less.contains(element))
        .collect()
}

fn add_value(
    existing: Option<AttributeValue>,
    value: AttributeValue,
) -> Result<AttributeValue, ExprError> {
    Ok(match (existing, value) {
        (None, value) => value,
        (Some(AttributeValue::N(a)), AttributeValue::N(b)) => {
            AttributeValue::N(add_numbers(&a, &b)?)
        }
        (Some(AttributeValue::Ss(a)), AttributeValue::Ss(b)) => AttributeValue::Ss(union(a, b)),
        (Some(AttributeValue::Ns(a)), AttributeValue::Ns(b)) => AttributeValue::Ns(union(a, b)),
        (Some(AttributeValue::Bs(a)), AttributeValue::Bs(b)) => AttributeValue::Bs(union(a, b)),
        _ => return Err(ExprError::IncorrectUpdateOperandType),
    })
}

/// The set left after removing `value`'s elements; `None` if it is empty.
fn delete_value(
    existing: AttributeValue,
    value: &AttributeValue,
) -> Result<Option<AttributeValue>, ExprError> {
    let remaining = match (existing, value) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => AttributeValue::Ss(difference(a, b)),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => AttributeValue::Ns(difference(a, b)),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => AttributeValue::Bs(difference(a, b)),
        _ => return Err(ExprError::IncorrectUpdateOperandType),
    };
    let empty = match &remaining {
        AttributeValue::Ss(set) => set.is_empty(),
        AttributeValue::Ns(set) => set.is_empty(),
        AttributeValue::Bs(set) => set.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(remaining))
}

impl UpdateExpression {
    /// Applies the update to `item` (an empty item if it does not exist yet) and returns the
    /// new item; `item` itself is never modified, so a failed update leaves nothing
    /// half-applied. The caller still checks the result against the item size and nesting
    /// limits.
    pub fn apply(&self, item: &Item) -> Result<Item, ExprError> {
        let assignments = self
            .set
            .iter()
            .map(|action| Ok((&action.path, evaluate_set_value(&action.value, item)?)))
            .collect::<Result<Vec<_>, ExprError>>()?;
        let mut updated = item.clone();
        for (path, value) in assignments {
            set_at(&mut updated, path, value)?;
        }

        let mut removals: Vec<&Path> = self.remove.iter().collect();
        // Descending order removes higher list indexes first, so every index refers to the
        // list as it was before REMOVE.
        removals.sort_by(|a, b| b.elements().cmp(a.elements()));
        for path in removals {
            remove_at(&mut updated, path)?;
        }

        for (path, value) in &self.add {
            let existing = resolve_path(&updated, path).cloned();
            let new_value = add_value(existing, value.clone())?;
            set_at(&mut updated, path, new_value)?;
        }

        for (path, value) in &self.delete {
            let Some(existing) = resolve_path(&updated, path).cloned() else {
                continue;
            };
            match delete_value(existing, value)? {
                Some(remaining) => set_at(&mut updated, path, remaining)?,
                None => remove_at(&mut updated, path)?,
            }
        }
        Ok(updated)
    }
}
