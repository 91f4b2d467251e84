//! Applying a `ProjectionExpression`: keep only the named paths of an item.
//!
//! Nested paths keep their structure: `a.b` yields `{a: {b: …}}`. List elements are kept in
//! index order and compacted: projecting `l[1], l[3]` of a five-element list yields a
//! two-element list. A path that does not resolve contributes nothing, and a map or list that
//! would end up empty is left out.

use std::collections::BTreeMap;

use crate::item::{AttributeValue, Item};

use super::ast::{PathElement, Projection};

/// What to keep of one value.
#[derive(Debug)]
enum Selection {
    /// The whole value.
    Whole,
    /// Some keys of a map.
    Fields(BTreeMap<String, Selection>),
    /// Some elements of a list.
    Elements(BTreeMap<usize, Selection>),
}

impl Selection {
    /// Adds the path `rest` below this selection. Paths were checked not to overlap or
    /// conflict; if one did anyway, the earlier selection wins.
    fn insert(&mut self, rest: &[PathElement]) {
        let Some((first, deeper)) = rest.split_first() else {
            return;
        };
        let child = match (first, &mut *self) {
            (PathElement::Attribute(name), Selection::Fields(fields)) => fields
                .entry(name.clone())
                .or_insert_with(|| new_selection(deeper)),
            (PathElement::Index(index), Selection::Elements(elements)) => elements
                .entry(*index)
                .or_insert_with(|| new_selection(deeper)),
            _ => return,
        };
        child.insert(deeper);
    }

    fn apply(&self, value: &AttributeValue) -> Option<AttributeValue> {
        match (self, value) {
            (Selection::Whole, value) => Some(value.clone()),
            (Selection::Fields(fields), AttributeValue::M(map)) => {
                let kept: BTreeMap<String, AttributeValue> = fields
                    .iter()
                    .filter_map(|(name, selection)| {
                        let projected = selection.apply(map.get(name)?)?;
                        Some((name.clone(), projected))
                    })
                    .collect();
                (!kept.is_empty()).then_some(AttributeValue::M(kept))
            }
            (Selection::Elements(elements), AttributeValue::L(list)) => {
                let kept: Vec<AttributeValue> = elements
                    .iter()
                    .filter_map(|(index, selection)| selection.apply(list.get(*index)?))
                    .collect();
                (!kept.is_empty()).then_some(AttributeValue::L(kept))
            }
            _ => None,
        }
    }
}

/// The empty selection whose first step is `rest[0]` (or the whole value if `rest` is empty).
fn new_selection(rest: &[PathElement]) -> Selection {
    match rest.first() {
        None => Selection::Whole,
        Some(PathElement::Attribute(_)) => Selection::Fields(BTreeMap::new()),
        Some(PathElement::Index(_)) => Selection::Elements(BTreeMap::new()),
    }
}

impl Projection {
    /// A new item holding only the projected paths of `item`.
    pub fn apply(&self, item: &Item) -> Item {
        let mut top = Selection::Fields(BTreeMap::new());
        for path in &self.paths {
            top.insert(path.elements());
        }
        let Selection::Fields(fields) = top else {
            return Item::new();
        };
        fields
            .iter()
            .filter_map(|(name, selection)| Some((name.clone(), selection.apply(item.get(name)?)?)))
            .collect()
    }
}
