//! `ddbctl cluster status`: every node's replication state, merged.

use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use super::Outcome;
use super::cluster_status::{
    ClusterView, NodeAddress, NodeReport, NodeStatus, NodeView, ReplicaRow, ask_nodes, fetch_status,
};
use super::status_view::render;
use crate::cli::{ClusterCommand, ConnectionArgs, OutputFormat};
use crate::out;
use crate::output::print_line;

pub fn run(
    connection: &ConnectionArgs,
    command: ClusterCommand,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    match command {
        ClusterCommand::Status => status(connection, format),
    }
}

/// `--output json`: every node with its raw status, the merged rows and the problems found.
#[derive(Serialize)]
struct MergedStatus<'a> {
    nodes: Vec<NodeEntry<'a>>,
    replicas: Vec<ReplicaRow>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct NodeEntry<'a> {
    id: u32,
    az: &'a str,
    api: &'a str,
    /// `up`, `no_status` or `down`.
    state: &'static str,
    error: Option<&'a str>,
    status: Option<&'a NodeStatus>,
}

fn status(connection: &ConnectionArgs, format: OutputFormat) -> anyhow::Result<Outcome> {
    let view = gather(&connection.endpoint, super::connect::timeout(connection)?)?;
    let problems = view.problems();
    match format {
        OutputFormat::Json => {
            let merged = MergedStatus {
                nodes: view.nodes.iter().map(node_entry).collect(),
                replicas: view.replicas(),
                problems: problems.clone(),
            };
            print_line(&serde_json::to_string_pretty(&merged)?);
        }
        OutputFormat::Table => {
            print_line(&render(&view));
            for problem in &problems {
                out!("problem: {problem}");
            }
        }
    }
    Ok(if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}

/// Asks `endpoint` for its status, then every node it lists (in parallel). Fails only when
/// `endpoint` itself gives no status.
fn gather(endpoint: &str, timeout: Duration) -> anyhow::Result<ClusterView> {
    let first = match fetch_status(endpoint, timeout) {
        NodeReport::Reporting(status) => status,
        NodeReport::NoStatus(why) => bail!("{endpoint} gives no cluster status: {why}"),
        NodeReport::Down(why) => bail!("cannot reach {endpoint}: {why}"),
    };
    let mut addresses: Vec<NodeAddress> = first
        .nodes
        .iter()
        .map(|n| NodeAddress {
            id: n.id,
            az: n.az.clone(),
            api: n.api.clone(),
        })
        .collect();
    if !addresses.iter().any(|n| n.id == first.node_id) {
        // A node that does not list itself (a misconfiguration) still shows up.
        addresses.push(NodeAddress {
            id: first.node_id,
            az: first.az.clone(),
            api: endpoint.to_string(),
        });
    }
    addresses.sort_unstable_by_key(|n| n.id);
    Ok(ask_nodes(addresses, timeout, |id| {
        (id == first.node_id).then(|| NodeReport::Reporting(first.clone()))
    }))
}

fn node_entry(node: &NodeView) -> NodeEntry<'_> {
    let (state, error, status) = match &node.report {
        NodeReport::Reporting(status) => ("up", None, Some(status)),
        NodeReport::NoStatus(why) => ("no_status", Some(why.as_str()), None),
        NodeReport::Down(why) => ("down", Some(why.as_str()), None),
    };
    NodeEntry {
        id: node.id,
        az: &node.az,
        api: &node.api,
        state,
        error,
        status,
    }
}
