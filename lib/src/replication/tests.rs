//! Scenario tests and a seeded simulation of whole groups, driven through [`SimReplica`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::wal::{Lsn, Operation};

use super::core::{CampaignError, ReadError, Timing};
use super::membership::{Membership, NodeId, Role};
use super::message::Message;
use super::sim::SimReplica;

const STEP_MS: u64 = 10;

fn timing() -> Timing {
    Timing {
        election_timeout_ms: 300,
        election_jitter_ms: 200,
        heartbeat_ms: 50,
        lease_ms: 200,
        clock_drift_ms: 0,
        max_batch_entries: 8,
    }
}

fn put(value: u64) -> Operation {
    Operation::Put {
        key: b"k".to_vec(),
        item: value.to_le_bytes().to_vec(),
    }
}

/// Decides which messages the simulated network loses: `(from, to, message)`.
type LossRule = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// A group on a simulated network that delivers in order unless told otherwise.
struct Cluster {
    now_ms: u64,
    replicas: BTreeMap<NodeId, SimReplica>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    isolated: BTreeSet<NodeId>,
    /// Replicas that sync appends as soon as they are written.
    eager_sync: bool,
    /// Messages for which this returns true are lost.
    lose: LossRule,
}

impl Cluster {
    fn new(members: &[(NodeId, Role)]) -> Cluster {
        Cluster::with_timing(members, timing())
    }

    fn with_timing(members: &[(NodeId, Role)], timing: Timing) -> Cluster {
        let membership = Membership::new(members.iter().copied());
        let replicas = members
            .iter()
            .map(|(id, _)| (*id, SimReplica::new(*id, timing, membership.clone(), 0)))
            .collect();
        Cluster {
            now_ms: 0,
            replicas,
            network: VecDeque::new(),
            isolated: BTreeSet::new(),
            eager_sync: true,
            lose: Box::new(|_, _, _| false),
        }
    }

    fn three() -> Cluster {
        Cluster::new(&[(1, Role::Full), (2, Role::Full), (3, Role::Full)])
    }

    fn add_replica(&mut self, id: NodeId) {
        let membership = self.replicas.values().next().unwrap().core().map_or_else(
            || unreachable!("first replica is up"),
            |core| core.membership().clone(),
        );
        self.replicas
            .insert(id, SimReplica::new(id, timing(), membership, self.now_ms));
    }

    fn send_all(&mut self, from: NodeId, outgoing: Vec<(NodeId, Message)>) {
        for (to, message) in outgoing {
            self.network.push_back((from, to, message));
        }
    }

    fn settle(&mut self) {
        loop {
            if self.eager_sync {
                let ids: Vec<NodeId> = self.replicas.keys().copied().collect();
                for id in ids {
                    let now = self.now_ms;
                    let outgoing = self.replicas.get_mut(&id).unwrap().sync_all(now);
                    self.send_all(id, outgoing);
                }
            }
            let Some((from, to, message)) = self.network.pop_front() else {
                return;
            };
            if self.isolated.contains(&from)
                || self.isolated.contains(&to)
                || (self.lose)(from, to, &message)
            {
                continue;
            }
            let now = self.now_ms;
            if let Some(replica) = self.replicas.get_mut(&to) {
                let outgoing = replica.deliver(now, from, message);
                self.send_all(to, outgoing);
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.now_ms += STEP_MS;
            let ids: Vec<NodeId> = self.replicas.keys().copied().collect();
            for id in ids {
                let now = self.now_ms;
                let outgoing = self.replicas.get_mut(&id).unwrap().tick(now);
                self.send_all(id, outgoing);
            }
            self.settle();
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.replicas
            .values()
            .filter(|replica| replica.core().is_some_and(|core| core.is_leader()))
            .map(SimReplica::id)
            .collect()
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..200 {
            let leaders = self.leaders();
            if let [leader] = leaders[..] {
                return leader;
            }
            self.advance(STEP_MS);
        }
        panic!("no single leader after 2 s: {:?}", self.leaders());
    }

    fn propose(&mut self, id: NodeId, op: Operation) -> Lsn {
        let now = self.now_ms;
        let (lsn, outgoing) = self
            .replicas
            .get_mut(&id)
            .unwrap()
            .propose(now, vec![op])
            .unwrap();
        self.send_all(id, outgoing);
        self.settle();
        lsn
    }

    fn applied_values(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.replicas[&id]
            .applied()
            .iter()
            .filter_map(|entry| match &entry.op {
                Operation::Put { item, .. } => Some(item.clone()),
                _ => None,
            })
            .collect()
    }

    fn change_membership(&mut self, leader: NodeId, membership: &Membership) {
        self.propose(leader, Operation::Config(membership.encode()));
        self.advance(100);
    }
}

#[test]
fn a_leader_is_elected_and_replicates_every_write_to_every_replica() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    for value in 0..20 {
        cluster.propose(leader, put(value));
    }
    cluster.advance(100);
    let expected: Vec<Vec<u8>> = (0..20u64).map(|v| v.to_le_bytes().to_vec()).collect();
    for id in 1..=3 {
        assert_eq!(cluster.applied_values(id), expected, "replica {id}");
    }
}

#[test]
fn writes_commit_with_one_replica_cut_off_and_not_with_two() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    let followers: Vec<NodeId> = (1..=3).filter(|id| *id != leader).collect();
    cluster.isolated.insert(followers[0]);
    cluster.propose(leader, put(1));
    assert_eq!(cluster.applied_values(leader).len(), 1, "2 of 3 commit");
    cluster.isolated.insert(followers[1]);
    cluster.propose(leader, put(2));
    cluster.advance(40);
    assert_eq!(
        cluster.applied_values(leader).len(),
        1,
        "1 of 3 must not commit"
    );
    cluster.isolated.clear();
    cluster.advance(200);
    assert_eq!(
        cluster.applied_values(followers[0]).len(),
        2,
        "healed replica catches up"
    );
}

#[test]
fn an_entry_commits_only_once_it_is_durable_on_a_quorum() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    cluster.eager_sync = false;
    cluster.propose(leader, put(7));
    assert!(cluster.applied_values(leader).is_empty());
    // The leader alone syncing is not enough.
    let now = cluster.now_ms;
    let outgoing = cluster.replicas.get_mut(&leader).unwrap().sync_all(now);
    cluster.send_all(leader, outgoing);
    cluster.settle();
    assert!(cluster.applied_values(leader).is_empty());
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let outgoing = cluster.replicas.get_mut(&follower).unwrap().sync_all(now);
    cluster.send_all(follower, outgoing);
    cluster.settle();
    assert_eq!(cluster.applied_values(leader).len(), 1);
}

#[test]
fn after_the_leader_dies_a_new_one_keeps_every_committed_write() {
    let mut cluster = Cluster::three();
    let old = cluster.elect();
    for value in 0..5 {
        cluster.propose(old, put(value));
    }
    cluster.replicas.get_mut(&old).unwrap().crash();
    let new = cluster.elect();
    assert_ne!(new, old);
    assert_eq!(cluster.applied_values(new).len(), 5);
    cluster.propose(new, put(5));
    let now = cluster.now_ms;
    cluster.replicas.get_mut(&old).unwrap().restart(now);
    cluster.advance(500);
    assert_eq!(
        cluster.applied_values(old).len(),
        6,
        "restarted replica caught up"
    );
}

#[test]
fn a_new_leader_waits_out_the_old_leases_and_the_old_leader_stops_reading() {
    let mut cluster = Cluster::three();
    let old = cluster.elect();
    cluster.propose(old, put(1));
    cluster.advance(50);
    let now = cluster.now_ms;
    assert!(
        cluster.replicas[&old]
            .core()
            .unwrap()
            .read_index(now)
            .is_ok()
    );
    cluster.isolated.insert(old);
    let follower = (1..=3).find(|id| *id != old).unwrap();
    let (started, _) = cluster.replicas.get_mut(&follower).unwrap().campaign(now);
    assert!(
        !started,
        "a follower that just heard the leader must not campaign"
    );
    assert_eq!(
        cluster.replicas[&follower]
            .core()
            .unwrap()
            .clone()
            .campaign(now),
        Err(CampaignError::LeaseHeld)
    );
    // Until the lease runs out nobody else leads, and after it the old leader cannot read.
    let lease_end = now + timing().lease_ms;
    while cluster.now_ms < lease_end {
        cluster.advance(STEP_MS);
        assert_eq!(cluster.leaders(), vec![old], "at {} ms", cluster.now_ms);
    }
    let now = cluster.now_ms;
    assert_eq!(
        cluster.replicas[&old].core().unwrap().read_index(now),
        Err(ReadError::LeaseNotHeld)
    );
    cluster.advance(1_000);
    let leaders = cluster.leaders();
    assert!(
        leaders.len() == 1 && leaders[0] != old,
        "leaders: {leaders:?}"
    );
}

#[test]
fn a_log_replica_restores_the_quorum_and_never_applies_or_leads() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    cluster.propose(leader, put(1));
    let down = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != down).unwrap();
    cluster.replicas.get_mut(&down).unwrap().crash();
    cluster.add_replica(4);
    let with_log = cluster.replicas[&leader]
        .core()
        .unwrap()
        .membership()
        .with_member(4, Role::Log);
    cluster.change_membership(leader, &with_log);
    cluster.change_membership(leader, &with_log.without_member(down));
    // Leader, the other full replica and the log replica: losing any one still commits.
    cluster.replicas.get_mut(&other).unwrap().crash();
    cluster.propose(leader, put(2));
    assert_eq!(cluster.applied_values(leader).len(), 2);
    let log_replica = &cluster.replicas[&4];
    assert!(
        log_replica.applied().is_empty(),
        "a log replica never applies"
    );
    assert!(
        log_replica.disk().entries.len() >= 4,
        "but it persists the log"
    );
    cluster.replicas.get_mut(&leader).unwrap().crash();
    cluster.advance(2_000);
    assert!(cluster.leaders().is_empty(), "a log replica never leads");
}

#[test]
fn phase_one_recovers_committed_entries_from_a_log_replica() {
    let mut cluster = Cluster::new(&[(1, Role::Full), (2, Role::Full), (3, Role::Log)]);
    let now = cluster.now_ms + timing().lease_ms;
    cluster.advance(timing().lease_ms);
    let (started, outgoing) = cluster.replicas.get_mut(&1).unwrap().campaign(now);
    assert!(started);
    cluster.send_all(1, outgoing);
    cluster.settle();
    assert_eq!(cluster.leaders(), vec![1]);
    cluster.isolated.insert(2);
    for value in 0..3 {
        cluster.propose(1, put(value));
    }
    assert_eq!(
        cluster.applied_values(1).len(),
        3,
        "committed on 1 and the log replica"
    );
    assert!(cluster.applied_values(2).is_empty());
    cluster.replicas.get_mut(&1).unwrap().crash();
    cluster.isolated.clear();
    cluster.advance(2_000);
    assert_eq!(cluster.leaders(), vec![2]);
    assert_eq!(
        cluster.applied_values(2).len(),
        3,
        "2 adopted the log replica's log"
    );
}

/// The classic trap: a new leader must not count replicas of an entry from an older ballot as
/// committing it. Here leader 1 (ballot 3) gets its old entry X (ballot 1) onto replica 3, but
/// not its own no-op; counting X as committed would be wrong, because replica 2 holds a
/// different entry at that LSN under ballot 2 and can still win an election with replica 3 and
/// replace X.
#[test]
fn entries_of_older_ballots_commit_only_under_an_entry_of_the_leaders_own() {
    let one_entry_per_message = Timing {
        max_batch_entries: 1,
        ..timing()
    };
    let mut cluster = Cluster::with_timing(
        &[(1, Role::Full), (2, Role::Full), (3, Role::Full)],
        one_entry_per_message,
    );
    let lease = timing().lease_ms;
    cluster.advance(lease);
    let now = cluster.now_ms;
    let (_, outgoing) = cluster.replicas.get_mut(&1).unwrap().campaign(now);
    cluster.send_all(1, outgoing);
    cluster.settle();
    assert_eq!(cluster.leaders(), vec![1]);
    // 1 writes X at LSN 2, which reaches nobody.
    cluster.isolated.insert(1);
    let x = cluster.propose(1, put(100));
    assert_eq!(x, Lsn(2));
    // 2 leads with 3 and writes its no-op at LSN 2, which reaches nobody either.
    cluster.isolated = BTreeSet::from([1]);
    cluster.lose = Box::new(|from, to, message| {
        from == 2
            && to == 3
            && matches!(message, Message::Accept { entries, .. } if !entries.is_empty())
    });
    cluster.now_ms += lease;
    let now = cluster.now_ms;
    let (started, outgoing) = cluster.replicas.get_mut(&2).unwrap().campaign(now);
    assert!(started);
    cluster.send_all(2, outgoing);
    cluster.settle();
    assert_eq!(cluster.leaders(), vec![1, 2]);
    // 1 leads again with 3; X reaches 3 but 1's own no-op at LSN 3 does not.
    cluster.isolated = BTreeSet::from([2]);
    cluster.lose = Box::new(|from, to, message| {
        from == 1
            && to == 3
            && matches!(message, Message::Accept { entries, .. }
                if entries.iter().any(|entry| entry.lsn == Lsn(3)))
    });
    cluster.now_ms += lease;
    let now = cluster.now_ms;
    cluster.replicas.get_mut(&1).unwrap().crash();
    cluster.replicas.get_mut(&1).unwrap().restart(now);
    cluster.now_ms += lease;
    // The restarted replica's first ballot may be too low; it learns from the rejection.
    for _ in 0..2 {
        let now = cluster.now_ms;
        let (started, outgoing) = cluster.replicas.get_mut(&1).unwrap().campaign(now);
        assert!(started);
        cluster.send_all(1, outgoing);
        cluster.settle();
    }
    cluster.advance(100);
    let core = cluster.replicas[&1].core().unwrap();
    assert!(core.is_leader());
    assert_eq!(core.status().peer_match.get(&3), Some(&Lsn(2)), "X is on 3");
    assert!(
        core.commit_lsn() < Lsn(2),
        "X must not commit before an entry of the leader's own ballot does"
    );
    // Once the no-op gets through, both commit.
    cluster.lose = Box::new(|_, _, _| false);
    cluster.advance(100);
    assert_eq!(cluster.replicas[&1].core().unwrap().commit_lsn(), Lsn(3));
    assert_eq!(
        cluster.applied_values(1),
        vec![100u64.to_le_bytes().to_vec()]
    );
}

#[test]
fn a_new_leader_catches_a_lagging_replica_up_from_its_stored_log() {
    let mut cluster = Cluster::three();
    let old = cluster.elect();
    let others: Vec<NodeId> = (1..=3).filter(|id| *id != old).collect();
    let (next, lagging) = (others[0], others[1]);
    cluster.isolated.insert(lagging);
    for value in 0..30 {
        cluster.propose(old, put(value));
    }
    cluster.advance(100);
    // The future leader forgets most of the log from memory, as ddbd does.
    let base = cluster
        .replicas
        .get_mut(&next)
        .unwrap()
        .trim_through(Lsn(25));
    assert_eq!(base, Lsn(25));
    cluster.replicas.get_mut(&old).unwrap().crash();
    cluster.isolated.clear();
    cluster.advance(3_000);
    assert_eq!(cluster.leaders(), vec![next]);
    assert_eq!(
        cluster.applied_values(lagging).len(),
        30,
        "the lagging replica got entries from below the leader's in-memory base"
    );
}

/// The healing sequence ddbd runs: a learner catches up, joins as a log replica, is promoted
/// to a full replica once its store is rebuilt, and the silent member is removed; writes go on
/// throughout and every live replica ends with the whole log durable.
#[test]
fn a_spare_learns_joins_is_promoted_and_the_dead_member_leaves() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    for value in 0..10 {
        cluster.propose(leader, put(value));
    }
    let dead = (1..=3).find(|id| *id != leader).unwrap();
    cluster.replicas.get_mut(&dead).unwrap().crash();
    cluster.add_replica(4);
    let now = cluster.now_ms;
    let outgoing = cluster
        .replicas
        .get_mut(&leader)
        .unwrap()
        .act(now, |core| assert!(core.add_learner(4)));
    cluster.send_all(leader, outgoing);
    cluster.advance(200);
    let core = cluster.replicas[&leader].core().unwrap();
    assert!(
        core.peer_match(4) >= Some(core.commit_lsn()),
        "the learner caught up"
    );
    let with_log = core.membership().with_member(4, Role::Log);
    cluster.change_membership(leader, &with_log);
    cluster.propose(leader, put(10));
    // The spare rebuilt its store (here: nothing to copy) and is promoted.
    let now = cluster.now_ms;
    let commit = cluster.replicas[&4].core().unwrap().commit_lsn();
    let outgoing = cluster
        .replicas
        .get_mut(&4)
        .unwrap()
        .act(now, |core| core.set_applied(commit));
    cluster.send_all(4, outgoing);
    cluster.change_membership(leader, &with_log.with_member(4, Role::Full));
    let full = cluster.replicas[&leader]
        .core()
        .unwrap()
        .membership()
        .clone();
    cluster.change_membership(leader, &full.without_member(dead));
    for value in 11..20 {
        cluster.propose(leader, put(value));
    }
    cluster.advance(300);
    let leader_core = cluster.replicas[&leader].core().unwrap();
    assert_eq!(leader_core.membership().len(), 3);
    assert_eq!(leader_core.membership().role(4), Some(Role::Full));
    for id in leader_core.membership().ids() {
        let status = cluster.replicas[&id].core().unwrap().status();
        assert_eq!(
            status.durable_lsn, status.last_lsn,
            "replica {id}: {status:?}"
        );
        assert_eq!(status.commit_lsn, leader_core.commit_lsn(), "replica {id}");
    }
}

#[test]
fn membership_changes_go_one_at_a_time() {
    let mut cluster = Cluster::three();
    let leader = cluster.elect();
    cluster.eager_sync = false;
    let membership = cluster.replicas[&leader]
        .core()
        .unwrap()
        .membership()
        .clone();
    let now = cluster.now_ms;
    let replica = cluster.replicas.get_mut(&leader).unwrap();
    let with_four = membership.with_member(4, Role::Log);
    assert!(
        replica
            .propose(now, vec![Operation::Config(with_four.encode())])
            .is_ok()
    );
    let with_five = with_four.with_member(5, Role::Log);
    assert!(
        replica
            .propose(now, vec![Operation::Config(with_five.encode())])
            .is_err(),
        "a second change waits for the first to commit"
    );
    let two_at_once = membership
        .with_member(4, Role::Log)
        .with_member(5, Role::Log);
    assert!(two_at_once.check_change_to(&membership).is_err());
}

/// A pseudo-random generator for the simulation (no dependency, reproducible by seed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Drives a group through a random schedule of writes, message loss, duplication and
/// reordering, unsynced appends and crashes; checks that applied histories never diverge and
/// that every write a leader saw committed survives; then heals and checks convergence.
fn simulate(seed: u64) {
    let mut rng = SplitMix(seed);
    let mut cluster = Cluster::three();
    cluster.eager_sync = false;
    let mut acknowledged: Vec<(Lsn, Vec<u8>)> = Vec::new();
    let mut proposed: Vec<(NodeId, Lsn, crate::wal::Ballot, Vec<u8>)> = Vec::new();
    let mut value = 0u64;
    for _ in 0..600 {
        cluster.now_ms += STEP_MS;
        let now = cluster.now_ms;
        let ids: Vec<NodeId> = cluster.replicas.keys().copied().collect();
        for id in &ids {
            let outgoing = cluster.replicas.get_mut(id).unwrap().tick(now);
            cluster.send_all(*id, outgoing);
            if rng.chance(60) {
                let outgoing = cluster.replicas.get_mut(id).unwrap().sync_one(now);
                cluster.send_all(*id, outgoing);
            }
        }
        if rng.chance(30) {
            for id in cluster.leaders() {
                value += 1;
                let item = value.to_le_bytes().to_vec();
                let replica = cluster.replicas.get_mut(&id).unwrap();
                let ballot = replica.core().unwrap().status().promised;
                if let Ok((lsn, outgoing)) = replica.propose(now, vec![put(value)]) {
                    proposed.push((id, lsn, ballot, item));
                    cluster.send_all(id, outgoing);
                }
            }
        }
        if rng.chance(2) {
            let victim = ids[usize::try_from(rng.next() % 3).unwrap()];
            let replica = cluster.replicas.get_mut(&victim).unwrap();
            if replica.core().is_some() {
                replica.crash();
            } else {
                replica.restart(now);
            }
        }
        // Deliver a random part of the network in random order, dropping and duplicating some.
        let mut in_flight: Vec<_> = cluster.network.drain(..).collect();
        let mut later = VecDeque::new();
        while !in_flight.is_empty() {
            let index = usize::try_from(rng.next() % in_flight.len() as u64).unwrap();
            let (from, to, message) = in_flight.swap_remove(index);
            if rng.chance(5) {
                continue;
            }
            if rng.chance(20) {
                later.push_back((from, to, message));
                continue;
            }
            if rng.chance(5) {
                later.push_back((from, to, message.clone()));
            }
            let outgoing = cluster
                .replicas
                .get_mut(&to)
                .unwrap()
                .deliver(now, from, message);
            cluster.send_all(to, outgoing);
        }
        cluster.network.extend(later);
        // A proposal is acknowledged once its proposer applied its own entry at that LSN.
        proposed.retain(|(id, lsn, ballot, item)| {
            let applied = cluster.replicas[id].applied();
            match applied.get(usize::try_from(lsn.0 - 1).unwrap()) {
                Some(entry) if entry.ballot == *ballot => {
                    acknowledged.push((*lsn, item.clone()));
                    false
                }
                Some(_) => false,
                None => cluster.replicas[id].core().is_some(),
            }
        });
        check_prefix_agreement(&cluster, seed);
    }
    // Heal: restart everyone, deliver everything, sync everything.
    let now = cluster.now_ms;
    for replica in cluster.replicas.values_mut() {
        if replica.core().is_none() {
            replica.restart(now);
        }
    }
    cluster.eager_sync = true;
    cluster.advance(3_000);
    check_prefix_agreement(&cluster, seed);
    let longest = cluster
        .replicas
        .values()
        .map(|replica| replica.applied().to_vec())
        .max_by_key(Vec::len)
        .unwrap();
    if std::env::var("DDB_SIM_VERBOSE").is_ok() {
        eprintln!(
            "seed {seed}: {} acknowledged, {} applied, ballot {:?}",
            acknowledged.len(),
            longest.len(),
            cluster.replicas[&1].core().unwrap().status().promised
        );
    }
    for (lsn, item) in &acknowledged {
        let entry = &longest[usize::try_from(lsn.0 - 1).unwrap()];
        assert_eq!(
            entry.op,
            put(u64::from_le_bytes(item.as_slice().try_into().unwrap())),
            "seed {seed}: acknowledged write at {lsn} lost"
        );
    }
    for replica in cluster.replicas.values() {
        assert_eq!(
            replica.applied(),
            longest.as_slice(),
            "seed {seed}: replicas did not converge"
        );
    }
}

fn check_prefix_agreement(cluster: &Cluster, seed: u64) {
    for replica in cluster.replicas.values() {
        let applied = replica.applied();
        let disk = &replica.disk().entries;
        assert!(
            applied.len() <= disk.len() && applied == &disk[..applied.len()],
            "seed {seed}: replica {} applied entries its own log does not hold",
            replica.id()
        );
    }
    let histories: Vec<&[crate::wal::Entry]> =
        cluster.replicas.values().map(SimReplica::applied).collect();
    for a in &histories {
        for b in &histories {
            let common = a.len().min(b.len());
            assert_eq!(
                a[..common],
                b[..common],
                "seed {seed}: two replicas applied different entries"
            );
        }
    }
}

#[test]
fn seeded_simulations_never_lose_or_diverge() {
    let seeds: u64 = std::env::var("DDB_SIM_SEEDS")
        .ok()
        .and_then(|seeds| seeds.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        simulate(seed);
    }
}
