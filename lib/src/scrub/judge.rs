//! The verdicts of one scrub pass over one partition, from the digests its replicas and its
//! reference replica (rebuilt from the archive) report: pure logic, no I/O.
//!
//! Replicas report their digest at their applied LSN and at their persisted checkpoints (every
//! 1024 LSNs, the same LSNs on every copy), so copies that stand at different LSNs still share
//! LSNs to compare at. Check 1 (peers agree) compares the full replicas at the newest LSN they
//! all have a digest for; check 2 (live matches archive) adds the reference replica; when the
//! copies disagree, the digest most copies share wins and the others are named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One copy of a partition and the digests it knows, by LSN (digest identities).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// `node 3` or `archive`.
    pub name: String,
    /// Digest identity by LSN.
    pub digests: BTreeMap<u64, String>,
}

impl Copy {
    /// A copy from its applied LSN and digest and its checkpoints.
    #[must_use]
    pub fn new(name: String, applied: (u64, String), checkpoints: &[(u64, String)]) -> Self {
        let mut digests: BTreeMap<u64, String> = checkpoints.iter().cloned().collect();
        digests.insert(applied.0, applied.1);
        Copy { name, digests }
    }
}

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every copy compared holds the same digest.
    Agree,
    /// Some copy differs (an alarm).
    Disagree,
    /// Nothing to compare yet: no LSN all copies know a digest at.
    Pending,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The outcome.
    pub outcome: Outcome,
    /// The LSN compared at.
    pub lsn: Option<u64>,
    /// The copies that differ from the digest most copies hold (empty when they agree, or when
    /// no digest has a majority).
    pub odd: Vec<String>,
}

/// Compares `copies` at the newest LSN all of them have a digest for.
#[must_use]
pub fn compare(copies: &[&Copy]) -> Check {
    let Some(first) = copies.first() else {
        return Check {
            outcome: Outcome::Pending,
            lsn: None,
            odd: Vec::new(),
        };
    };
    let common = first
        .digests
        .keys()
        .rev()
        .find(|lsn| copies.iter().all(|copy| copy.digests.contains_key(lsn)));
    let Some(&lsn) = common else {
        return Check {
            outcome: Outcome::Pending,
            lsn: None,
            odd: Vec::new(),
        };
    };
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for copy in copies {
        *votes.entry(copy.digests[&lsn].as_str()).or_default() += 1;
    }
    if votes.len() == 1 {
        return Check {
            outcome: Outcome::Agree,
            lsn: Some(lsn),
            odd: Vec::new(),
        };
    }
    let majority = votes
        .iter()
        .find(|(_, count)| **count * 2 > copies.len())
        .map(|(digest, _)| *digest);
    let odd = majority.map_or_else(Vec::new, |majority| {
        copies
            .iter()
            .filter(|copy| copy.digests[&lsn] != majority)
            .map(|copy| copy.name.clone())
            .collect()
    });
    Check {
        outcome: Outcome::Disagree,
        lsn: Some(lsn),
        odd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(name: &str, applied: u64, digest: &str, checkpoints: &[(u64, &str)]) -> Copy {
        let checkpoints: Vec<(u64, String)> = checkpoints
            .iter()
            .map(|(lsn, digest)| (*lsn, (*digest).to_string()))
            .collect();
        Copy::new(name.into(), (applied, digest.into()), &checkpoints)
    }

    #[test]
    fn copies_at_the_same_lsn_agree_or_the_odd_one_is_named() {
        let a = copy("node 1", 50, "x", &[]);
        let b = copy("node 2", 50, "x", &[]);
        let c = copy("node 3", 50, "y", &[]);
        let reference = copy("archive", 50, "x", &[]);
        assert_eq!(compare(&[&a, &b]).outcome, Outcome::Agree);
        let check = compare(&[&a, &b, &c, &reference]);
        assert_eq!(check.outcome, Outcome::Disagree);
        assert_eq!(check.lsn, Some(50));
        assert_eq!(check.odd, vec!["node 3".to_string()]);
        // Two against two names nobody.
        let d = copy("archive", 50, "y", &[]);
        assert!(compare(&[&a, &b, &c, &d]).odd.is_empty());
    }

    #[test]
    fn copies_at_different_lsns_meet_at_a_shared_checkpoint() {
        let a = copy("node 1", 2100, "a2100", &[(1024, "c1"), (2048, "c2")]);
        let b = copy("node 2", 2090, "b2090", &[(1024, "c1"), (2048, "c2")]);
        let reference = copy("archive", 1500, "r1500", &[(1024, "c1")]);
        let peers = compare(&[&a, &b]);
        assert_eq!((peers.outcome, peers.lsn), (Outcome::Agree, Some(2048)));
        let all = compare(&[&a, &b, &reference]);
        assert_eq!((all.outcome, all.lsn), (Outcome::Agree, Some(1024)));
        let lagging = copy("archive", 900, "r900", &[]);
        assert_eq!(compare(&[&a, &lagging]).outcome, Outcome::Pending);
    }
}
