//! Where a group's replicas live: one per availability zone.

use std::collections::BTreeMap;

use crate::replication::{Membership, NodeId, Role};

/// Replicas per group.
pub const REPLICAS: usize = 3;

/// One node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementNode {
    /// The node's id.
    pub id: NodeId,
    /// Its availability zone.
    pub az: String,
    /// Where its DynamoDB API listens, when known (for status displays).
    pub api: Option<std::net::SocketAddr>,
}

/// The members of group `group_id`: one node in each of up to three AZs (chosen by a hash of
/// the group id, so groups spread over the nodes of an AZ), topped up from other nodes when
/// there are fewer AZs than replicas. Deterministic: every node computes the same answer.
#[must_use]
pub fn place_group(group_id: u64, nodes: &[PlacementNode]) -> Membership {
    let mut by_az: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for node in nodes {
        by_az.entry(node.az.as_str()).or_default().push(node.id);
    }
    let spread = group_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let mut chosen: Vec<NodeId> = Vec::new();
    for ids in by_az.values_mut() {
        ids.sort_unstable();
        let index = usize::try_from(spread % ids.len() as u64).unwrap_or(0);
        chosen.push(ids[index]);
        if chosen.len() == REPLICAS {
            break;
        }
    }
    let mut rest: Vec<NodeId> = nodes
        .iter()
        .map(|node| node.id)
        .filter(|id| !chosen.contains(id))
        .collect();
    rest.sort_unstable();
    for id in rest {
        if chosen.len() == REPLICAS {
            break;
        }
        chosen.push(id);
    }
    Membership::new(chosen.into_iter().map(|id| (id, Role::Full)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, az: &str) -> PlacementNode {
        PlacementNode {
            id,
            az: az.to_string(),
            api: None,
        }
    }

    #[test]
    fn three_replicas_land_in_three_azs() {
        let nodes = [
            node(1, "a"),
            node(2, "a"),
            node(3, "b"),
            node(4, "b"),
            node(5, "c"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for group in 0..64 {
            let membership = place_group(group, &nodes);
            let azs: std::collections::BTreeSet<&str> = membership
                .ids()
                .map(|id| nodes.iter().find(|n| n.id == id).unwrap().az.as_str())
                .collect();
            assert_eq!(azs.len(), 3, "group {group}: {membership:?}");
            seen.extend(membership.ids());
        }
        assert_eq!(seen.len(), 5, "groups spread over every node");
    }

    #[test]
    fn small_clusters_use_every_node() {
        assert_eq!(place_group(9, &[node(1, "a")]).len(), 1);
        let two_azs = place_group(9, &[node(1, "a"), node(2, "a"), node(3, "b")]);
        assert_eq!(two_azs.len(), 3);
    }
}
