//! A cluster's replication state as ddbctl sees it: each node's `GET /cluster/status` answer
//! (or why there is none), merged into one row per (group, replica).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A node's answer to `GET /cluster/status`. Unknown fields are ignored so that newer nodes
/// can add some.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The answering node's id.
    pub node_id: u32,
    /// Its AZ.
    pub az: String,
    /// Every node of the cluster as this node is configured with them.
    pub nodes: Vec<PeerAddress>,
    /// Every group this node holds a replica of.
    pub groups: Vec<GroupStatus>,
}

/// A node as listed in another node's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddress {
    pub id: u32,
    pub az: String,
    /// `host:port` of its DynamoDB API.
    pub api: String,
}

/// One replica's view of its replication group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// `meta` or `<table>/<partition_id>`.
    pub group: String,
    pub table: Option<String>,
    pub partition_id: u64,
    /// `leader`, `follower` or `candidate`.
    pub state: String,
    /// `full`, `log`, or null.
    pub role: Option<String>,
    /// The leader this replica knows of, if any.
    pub leader: Option<u32>,
    pub ballot: Option<String>,
    pub commit_lsn: u64,
    pub applied_lsn: u64,
    pub durable_lsn: u64,
    pub last_lsn: u64,
    /// The LSN at which `digest` was taken (the replica's applied LSN); absent from older
    /// nodes.
    #[serde(default)]
    pub digest_lsn: Option<u64>,
    /// A fingerprint of the replica's state digest at `digest_lsn`: equal at equal LSNs iff
    /// the replicas hold the same items.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub members: Vec<MemberStatus>,
}

/// A group member as a replica lists it (`match_lsn` only on the leader).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: u32,
    pub role: Option<String>,
    pub match_lsn: Option<u64>,
}

/// What asking a node for its status gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeReport {
    /// The node answered with its status.
    Reporting(NodeStatus),
    /// The node answers HTTP but gives no usable status (an older ddbd answers 404).
    NoStatus(String),
    /// The node does not answer (or its process has exited).
    Down(String),
}

/// Asks `api` (`host:port` or `http://host:port`) for `/cluster/status`, giving up after
/// `timeout`.
pub fn fetch_status(api: &str, timeout: Duration) -> NodeReport {
    match http_get(api, "/cluster/status", timeout) {
        Err(why) => NodeReport::Down(why),
        Ok((200, body)) => match serde_json::from_str(&body) {
            Ok(status) => NodeReport::Reporting(status),
            Err(e) => NodeReport::NoStatus(format!("unreadable /cluster/status answer: {e}")),
        },
        Ok((code, _)) => NodeReport::NoStatus(format!("/cluster/status answers HTTP {code}")),
    }
}

/// True if `GET /healthz` on `api` answers 200 within `timeout`.
pub fn healthy(api: &str, timeout: Duration) -> bool {
    matches!(http_get(api, "/healthz", timeout), Ok((200, _)))
}

/// `GET path` on `api`: the status code and body, or why no answer came.
pub(crate) fn http_get(api: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let base = api.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .into();
    let answer = agent.get(&url).call().map_err(|e| e.to_string())?;
    let code = answer.status().as_u16();
    let body = answer
        .into_body()
        .into_with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((code, body))
}

/// Where a node is: its id, AZ and API address (`host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    pub id: u32,
    pub az: String,
    pub api: String,
}

/// Asks every node in `nodes` for its status at once (each within `timeout`), except those
/// for which `known` already has a report (a node whose process has exited, or the node
/// asked first).
pub fn ask_nodes(
    nodes: Vec<NodeAddress>,
    timeout: Duration,
    known: impl Fn(u32) -> Option<NodeReport> + Sync,
) -> ClusterView {
    let known = &known;
    let reports: Vec<NodeReport> = std::thread::scope(|scope| {
        let asks: Vec<_> = nodes
            .iter()
            .map(|node| {
                scope.spawn(move || {
                    known(node.id).unwrap_or_else(|| fetch_status(&node.api, timeout))
                })
            })
            .collect();
        asks.into_iter()
            .map(|ask| {
                ask.join()
                    .unwrap_or_else(|_| NodeReport::Down("asking it failed".into()))
            })
            .collect()
    });
    ClusterView {
        nodes: nodes
            .into_iter()
            .zip(reports)
            .map(|(node, report)| NodeView {
                id: node.id,
                az: node.az,
                api: node.api,
                report,
            })
            .collect(),
    }
}

/// One node of the cluster and what it reported.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub id: u32,
    pub az: String,
    pub api: String,
    pub report: NodeReport,
}

/// One replica of one group: a row of the status table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaRow {
    pub group: String,
    pub node: u32,
    pub az: String,
    pub role: Option<String>,
    /// The replica's state, or `down` / `no status` when its node gave none.
    pub state: String,
    pub leader: Option<u32>,
    pub commit_lsn: Option<u64>,
    pub applied_lsn: Option<u64>,
    /// The group leader's commit LSN minus this replica's applied LSN.
    pub lag: Option<u64>,
}

/// Every node's report, in node id order.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
}

impl ClusterView {
    /// One row per (group, replica), groups in order (`meta` first), replicas by node id.
    /// A replica is any node that reports the group or that a report lists as a member; one
    /// whose node gave no status gets a row saying so.
    pub fn replicas(&self) -> Vec<ReplicaRow> {
        // group -> node id -> that node's own view of the group, if it reported one
        let mut groups: BTreeMap<GroupKey, BTreeMap<u32, Option<&GroupStatus>>> = BTreeMap::new();
        for node in &self.nodes {
            let NodeReport::Reporting(status) = &node.report else {
                continue;
            };
            for group in &status.groups {
                let replicas = groups.entry(GroupKey::of(group)).or_default();
                replicas.insert(node.id, Some(group));
                for member in &group.members {
                    replicas.entry(member.id).or_insert(None);
                }
            }
        }
        let mut rows = Vec::new();
        for (key, replicas) in groups {
            let leader_commit = replicas
                .values()
                .flatten()
                .filter(|g| g.state == "leader")
                .map(|g| g.commit_lsn)
                .max();
            for (node_id, own) in replicas {
                let node = self.nodes.iter().find(|n| n.id == node_id);
                let az = node.map(|n| n.az.clone()).unwrap_or_default();
                rows.push(match own {
                    Some(g) => ReplicaRow {
                        group: key.name.clone(),
                        node: node_id,
                        az,
                        role: g.role.clone(),
                        state: g.state.clone(),
                        leader: g.leader,
                        commit_lsn: Some(g.commit_lsn),
                        applied_lsn: Some(g.applied_lsn),
                        lag: leader_commit.map(|c| c.saturating_sub(g.applied_lsn)),
                    },
                    None => ReplicaRow {
                        group: key.name.clone(),
                        node: node_id,
                        az,
                        role: None,
                        state: match node.map(|n| &n.report) {
                            Some(NodeReport::Down(_)) => "down",
                            Some(NodeReport::NoStatus(_)) => "no status",
                            // The node reports, but not this group: it has no replica (yet).
                            Some(NodeReport::Reporting(_)) => "missing",
                            None => "unknown node",
                        }
                        .to_string(),
                        leader: None,
                        commit_lsn: None,
                        applied_lsn: None,
                        lag: None,
                    },
                });
            }
        }
        rows
    }

    /// What is wrong, one sentence each: nodes without status, groups without a leader.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|node| match &node.report {
                NodeReport::Reporting(_) => None,
                NodeReport::Down(why) => Some(format!("node {} is down: {why}", node.id)),
                NodeReport::NoStatus(why) => {
                    Some(format!("node {} reports no status: {why}", node.id))
                }
            })
            .collect();
        let rows = self.replicas();
        let mut groups: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
        groups.dedup();
        for group in groups {
            if !rows.iter().any(|r| r.group == group && r.state == "leader") {
                problems.push(format!("group {group} has no leader"));
            }
        }
        problems
    }
}

/// Orders groups: `meta` first, then by table and partition number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    table: Option<String>,
    partition_id: u64,
    name: String,
}

impl GroupKey {
    fn of(group: &GroupStatus) -> Self {
        GroupKey {
            table: group.table.clone(),
            partition_id: group.partition_id,
            name: group.group.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A node's answer in the documented shape, with the LSNs and states given.
    pub(crate) fn sample(node_id: u32, state: &str, applied: u64) -> String {
        let az = ["a", "b", "c"][node_id as usize - 1];
        let leader_only = |v: u64| {
            if state == "leader" {
                v.to_string()
            } else {
                "null".to_string()
            }
        };
        format!(
            r#"{{"node_id": {node_id}, "az": "{az}",
             "nodes": [{{"id": 1, "az": "a", "api": "127.0.0.1:8000"}},
                       {{"id": 2, "az": "b", "api": "127.0.0.1:8001"}},
                       {{"id": 3, "az": "c", "api": "127.0.0.1:8002"}}],
             "groups": [
               {{"group": "orders/1", "table": "orders", "partition_id": 1,
                "state": "{state}", "role": "full", "leader": 1, "ballot": "2.1",
                "commit_lsn": 40, "applied_lsn": {applied}, "durable_lsn": 40, "last_lsn": 40,
                "members": [{{"id": 1, "role": "full", "match_lsn": {m1}}},
                            {{"id": 2, "role": "full", "match_lsn": {m2}}},
                            {{"id": 3, "role": "log", "match_lsn": null}}]}},
               {{"group": "meta", "table": null, "partition_id": 0,
                "state": "{state}", "role": "full", "leader": 1, "ballot": "3.1",
                "commit_lsn": 10, "applied_lsn": 10, "durable_lsn": 10, "last_lsn": 10,
                "members": [{{"id": 1, "role": "full", "match_lsn": {m1}}},
                            {{"id": 2, "role": "full", "match_lsn": null}},
                            {{"id": 3, "role": null, "match_lsn": null}}]}}
             ]}}"#,
            m1 = leader_only(40),
            m2 = leader_only(38),
        )
    }

    fn view(reports: Vec<NodeReport>) -> ClusterView {
        ClusterView {
            nodes: reports
                .into_iter()
                .zip(1u32..)
                .map(|(report, id)| NodeView {
                    id,
                    az: ["a", "b", "c"][id as usize - 1].to_string(),
                    api: format!("127.0.0.1:{}", 7999 + id),
                    report,
                })
                .collect(),
        }
    }

    fn parsed(text: &str) -> NodeReport {
        NodeReport::Reporting(serde_json::from_str(text).unwrap())
    }

    /// Serves one HTTP request on a free loopback port with `status_line` and `body`.
    fn answer_once(status_line: &'static str, body: String) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        address
    }

    #[test]
    fn fetching_tells_a_status_a_404_and_a_dead_node_apart() {
        let timeout = Duration::from_secs(5);
        let up = answer_once("200 OK", sample(1, "leader", 40));
        assert!(matches!(fetch_status(&up, timeout), NodeReport::Reporting(s) if s.node_id == 1));
        let old = answer_once("404 Not Found", String::new());
        assert_eq!(
            fetch_status(&format!("http://{old}"), timeout),
            NodeReport::NoStatus("/cluster/status answers HTTP 404".into())
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        assert!(matches!(
            fetch_status(&address, timeout),
            NodeReport::Down(_)
        ));
    }

    #[test]
    fn the_documented_shape_parses() {
        let status: NodeStatus = serde_json::from_str(&sample(1, "leader", 40)).unwrap();
        assert_eq!(status.node_id, 1);
        assert_eq!(status.nodes[2].api, "127.0.0.1:8002");
        let meta = &status.groups[1];
        assert_eq!((meta.group.as_str(), meta.table.as_deref()), ("meta", None));
        assert_eq!(meta.ballot.as_deref(), Some("3.1"));
        assert_eq!(meta.members[0].match_lsn, Some(40));
        assert_eq!(meta.members[2].role, None);
        let follower: NodeStatus = serde_json::from_str(&sample(2, "follower", 38)).unwrap();
        assert_eq!(follower.groups[0].members[1].match_lsn, None);
        // Fields a newer node adds are ignored; a missing required one is an error.
        assert!(
            serde_json::from_str::<NodeStatus>(
                r#"{"node_id":1,"az":"a","nodes":[],"groups":[],"uptime_s":3}"#
            )
            .is_ok()
        );
        assert!(
            serde_json::from_str::<NodeStatus>(r#"{"node_id":1,"nodes":[],"groups":[]}"#).is_err()
        );
    }

    #[test]
    fn rows_show_each_replica_with_its_lag_behind_the_leaders_commit() {
        let cluster = view(vec![
            parsed(&sample(1, "leader", 40)),
            parsed(&sample(2, "follower", 38)),
            parsed(&sample(3, "follower", 31)),
        ]);
        let rows = cluster.replicas();
        let summary: Vec<(&str, u32, &str, Option<u64>)> = rows
            .iter()
            .map(|r| (r.group.as_str(), r.node, r.state.as_str(), r.lag))
            .collect();
        assert_eq!(
            summary,
            [
                ("meta", 1, "leader", Some(0)),
                ("meta", 2, "follower", Some(0)),
                ("meta", 3, "follower", Some(0)),
                ("orders/1", 1, "leader", Some(0)),
                ("orders/1", 2, "follower", Some(2)),
                ("orders/1", 3, "follower", Some(9)),
            ]
        );
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
    }

    #[test]
    fn a_down_leader_leaves_groups_leaderless_and_its_replicas_down() {
        let cluster = view(vec![
            NodeReport::Down("connection refused".into()),
            parsed(&sample(2, "follower", 38)),
            NodeReport::NoStatus("/cluster/status answers HTTP 404".into()),
        ]);
        let rows = cluster.replicas();
        let node1: Vec<&str> = rows
            .iter()
            .filter(|r| r.node == 1)
            .map(|r| r.state.as_str())
            .collect();
        assert_eq!(node1, ["down", "down"]);
        assert!(
            rows.iter()
                .filter(|r| r.node == 3)
                .all(|r| r.state == "no status")
        );
        assert!(rows.iter().all(|r| r.lag.is_none()), "no leader, no lag");
        let problems = cluster.problems();
        assert_eq!(
            problems,
            [
                "node 1 is down: connection refused",
                "node 3 reports no status: /cluster/status answers HTTP 404",
                "group meta has no leader",
                "group orders/1 has no leader",
            ]
        );
    }
}
