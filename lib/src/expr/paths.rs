//! Document paths against items: lookup, and the overlap and conflict rules between the paths
//! of one expression.

use crate::item::{AttributeValue, Item};

use super::ast::{Path, PathElement};
use super::error::{ExprError, ExpressionKind};

/// The value at `path` in `item`, or `None` if any step is missing or has the wrong type (a
/// name step into a non-map, an index step into a non-list or past its end).
pub fn resolve_path<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let mut elements = path.elements().iter();
    let mut current = match elements.next()? {
        PathElement::Attribute(name) => item.get(name)?,
        PathElement::Index(_) => return None,
    };
    for element in elements {
        current = match (element, current) {
            (PathElement::Attribute(name), AttributeValue::M(map)) => map.get(name)?,
            (PathElement::Index(index), AttributeValue::L(list)) => list.get(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Rejects two paths where one is a prefix of (or equal to) the other (`[a]` and `[a, b]`), and
/// two paths that step into the same attribute once by name and once by index (`[a, b]` and
/// `[a, [0]]`). Reported in written order: the earlier path is "path one".
pub(crate) fn check_paths_disjoint(kind: ExpressionKind, paths: &[&Path]) -> Result<(), ExprError> {
    for (position, first) in paths.iter().enumerate() {
        for second in &paths[position + 1..] {
            if first.is_prefix_of(second) || second.is_prefix_of(first) {
                return Err(ExprError::OverlappingPaths {
                    kind,
                    first: first.to_string(),
                    second: second.to_string(),
                });
            }
            let diverge = first
                .elements()
                .iter()
                .zip(second.elements())
                .find(|(a, b)| a != b);
            if let Some((a, b)) = diverge
                && std::mem::discriminant(a) != std::mem::discriminant(b)
            {
                return Err(ExprError::ConflictingPaths {
                    kind,
                    first: first.to_string(),
                    second: second.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Number;

    fn path(elements: &[PathElement]) -> Path {
        Path::new(elements.to_vec()).unwrap()
    }

    fn name(text: &str) -> PathElement {
        PathElement::Attribute(text.into())
    }

    #[test]
    fn resolves_nested_maps_and_list_indexes() {
        let mut inner = Item::new();
        inner.insert(
            "l".into(),
            AttributeValue::L(vec![AttributeValue::N(Number::from(7))]),
        );
        let mut item = Item::new();
        item.insert("m".into(), AttributeValue::M(inner));
        assert_eq!(
            resolve_path(&item, &path(&[name("m"), name("l"), PathElement::Index(0)])),
            Some(&AttributeValue::N(Number::from(7)))
        );
        assert_eq!(
            resolve_path(&item, &path(&[name("m"), name("l"), PathElement::Index(1)])),
            None
        );
        assert_eq!(
            resolve_path(&item, &path(&[name("m"), PathElement::Index(0)])),
            None
        );
        assert_eq!(resolve_path(&item, &path(&[name("x")])), None);
    }

    #[test]
    fn prefix_paths_overlap_and_name_versus_index_conflicts() {
        let a = path(&[name("a")]);
        let ab = path(&[name("a"), name("b")]);
        let a0 = path(&[name("a"), PathElement::Index(0)]);
        let c = path(&[name("c")]);
        let error = check_paths_disjoint(ExpressionKind::Update, &[&a, &c, &ab]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or \
             rewrite one of these paths; path one: [a], path two: [a, b]"
        );
        assert!(matches!(
            check_paths_disjoint(ExpressionKind::Projection, &[&ab, &a0]),
            Err(ExprError::ConflictingPaths { .. })
        ));
        assert!(check_paths_disjoint(ExpressionKind::Update, &[&ab, &c]).is_ok());
    }
}
