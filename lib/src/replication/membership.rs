//! Who belongs to a replication group and in which role.
//!
//! A membership is carried in the log as an [`Operation::Config`](crate::wal::Operation::Config)
//! entry and takes effect on a replica as soon as the entry is in its log (committed or not), the
//! single-member-change rule: two consecutive memberships differ by one member or one role, so
//! any quorum of the old one intersects any quorum of the new one.

use std::collections::BTreeMap;

/// Identifies a node (a `ddbd` process) within the cluster, and so a replica within a group.
pub type NodeId = u32;

/// What a member of a replication group does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Acceptor, learner and store: votes, persists the log, applies it, may lead.
    Full,
    /// Acceptor only: persists the log and votes, never leads and never applies. Restores the
    /// write quorum in seconds while a full replica is rebuilt.
    Log,
}

impl Role {
    fn tag(self) -> u8 {
        match self {
            Role::Full => 1,
            Role::Log => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Role> {
        match tag {
            1 => Some(Role::Full),
            2 => Some(Role::Log),
            _ => None,
        }
    }
}

/// The members of one replication group and their roles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Membership {
    members: BTreeMap<NodeId, Role>,
}

/// Why bytes could not be decoded as a [`Membership`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipDecodeError {
    /// The encoding version is not one this build knows.
    #[error("unknown membership encoding version {0}")]
    UnknownVersion(u8),
    /// The bytes ended early or had bytes left over.
    #[error("membership encoding has the wrong length")]
    BadLength,
    /// A role tag is not one this build knows.
    #[error("unknown role tag {0}")]
    UnknownRole(u8),
}

/// Why a proposed membership cannot follow the current one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipChangeError {
    /// More than one member or role changes at once.
    #[error("a membership change may add, remove or re-role one member at a time")]
    TooManyChanges,
    /// The change would leave no member that can lead.
    #[error("a membership needs at least one full replica")]
    NoFullReplica,
}

const ENCODING_VERSION: u8 = 1;

impl Membership {
    /// A membership of the given members.
    pub fn new(members: impl IntoIterator<Item = (NodeId, Role)>) -> Membership {
        Membership {
            members: members.into_iter().collect(),
        }
    }

    /// The role of `id`, or `None` when it is not a member.
    pub fn role(&self, id: NodeId) -> Option<Role> {
        self.members.get(&id).copied()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.members.contains_key(&id)
    }

    /// Members and roles in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Role)> + '_ {
        self.members.iter().map(|(id, role)| (*id, *role))
    }

    /// Member ids in order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.keys().copied()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many members (acceptors, log replicas included) make a quorum: a strict majority.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// This membership with `id` added or re-roled.
    #[must_use]
    pub fn with_member(&self, id: NodeId, role: Role) -> Membership {
        let mut next = self.clone();
        next.members.insert(id, role);
        next
    }

    /// This membership without `id`.
    #[must_use]
    pub fn without_member(&self, id: NodeId) -> Membership {
        let mut next = self.clone();
        next.members.remove(&id);
        next
    }

    /// Checks that `next` may follow `self` as one membership change.
    pub fn check_change_to(&self, next: &Membership) -> Result<(), MembershipChangeError> {
        let changed = self
            .members
            .keys()
            .chain(next.members.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|id| self.members.get(id) != next.members.get(id))
            .count();
        if changed > 1 {
            return Err(MembershipChangeError::TooManyChanges);
        }
        if !next.members.values().any(|role| *role == Role::Full) {
            return Err(MembershipChangeError::NoFullReplica);
        }
        Ok(())
    }

    /// The body of a configuration log entry: version byte, member count (u16 LE), then per
    /// member its id (u32 LE) and role tag (1 full, 2 log).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.members.len() * 5);
        out.push(ENCODING_VERSION);
        let count = u16::try_from(self.members.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (id, role) in self.members.iter().take(usize::from(count)) {
            out.extend_from_slice(&id.to_le_bytes());
            out.push(role.tag());
        }
        out
    }

    /// Decodes [`Membership::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Membership, MembershipDecodeError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(MembershipDecodeError::BadLength)?;
        if version != ENCODING_VERSION {
            return Err(MembershipDecodeError::UnknownVersion(version));
        }
        let (count, mut rest) = rest
            .split_first_chunk::<2>()
            .ok_or(MembershipDecodeError::BadLength)?;
        let count = usize::from(u16::from_le_bytes(*count));
        if rest.len() != count * 5 {
            return Err(MembershipDecodeError::BadLength);
        }
        let mut members = BTreeMap::new();
        while let Some((id, tail)) = rest.split_first_chunk::<4>() {
            let (&tag, tail) = tail.split_first().ok_or(MembershipDecodeError::BadLength)?;
            let role = Role::from_tag(tag).ok_or(MembershipDecodeError::UnknownRole(tag))?;
            members.insert(u32::from_le_bytes(*id), role);
            rest = tail;
        }
        Ok(Membership { members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let membership = Membership::new([(1, Role::Full), (2, Role::Full), (7, Role::Log)]);
        assert_eq!(Membership::decode(&membership.encode()), Ok(membership));
    }

    #[test]
    fn decoding_rejects_bad_input() {
        assert_eq!(
            Membership::decode(&[9, 0, 0]),
            Err(MembershipDecodeError::UnknownVersion(9))
        );
        assert_eq!(
            Membership::decode(&[1, 1, 0, 1, 0, 0]),
            Err(MembershipDecodeError::BadLength)
        );
        assert_eq!(
            Membership::decode(&[1, 1, 0, 1, 0, 0, 0, 5]),
            Err(MembershipDecodeError::UnknownRole(5))
        );
    }

    #[test]
    fn quorum_is_a_strict_majority_counting_log_replicas() {
        let three = Membership::new([(1, Role::Full), (2, Role::Full), (3, Role::Full)]);
        assert_eq!(three.quorum(), 2);
        assert_eq!(three.with_member(4, Role::Log).quorum(), 3);
    }

    #[test]
    fn only_single_member_changes_are_allowed() {
        let three = Membership::new([(1, Role::Full), (2, Role::Full), (3, Role::Full)]);
        let four = three.with_member(4, Role::Log);
        assert_eq!(three.check_change_to(&four), Ok(()));
        assert_eq!(four.check_change_to(&four.without_member(3)), Ok(()));
        assert_eq!(
            three.check_change_to(&four.without_member(3)),
            Err(MembershipChangeError::TooManyChanges)
        );
        assert_eq!(
            four.check_change_to(&four.with_member(4, Role::Full)),
            Ok(())
        );
        let lone = Membership::new([(1, Role::Full)]);
        assert_eq!(
            lone.check_change_to(&Membership::new([(1, Role::Log)])),
            Err(MembershipChangeError::NoFullReplica)
        );
    }
}
