//! Drawing a [`ClusterView`] for people: a node table and a replica table, printed once
//! (`cluster status`) or kept up to date on the terminal (`local up`).

use super::cluster_status::{ClusterView, NodeReport};
use crate::output::{print_line, table};

/// The node table, then the replica table (or a line saying no group reported yet).
pub fn render(view: &ClusterView) -> String {
    let mut nodes = table(&["node", "az", "api", "state"]);
    for node in &view.nodes {
        let state = match &node.report {
            NodeReport::Reporting(_) => "up".to_string(),
            NodeReport::NoStatus(why) => format!("up, no status ({why})"),
            NodeReport::Down(why) => format!("DOWN ({why})"),
        };
        nodes.add_row(vec![
            node.id.to_string(),
            node.az.clone(),
            node.api.clone(),
            state,
        ]);
    }
    let rows = view.replicas();
    if rows.is_empty() {
        return format!("{nodes}\nno replication group reported yet");
    }
    let mut replicas = table(&[
        "group", "node", "az", "role", "state", "leader", "commit", "applied", "lag",
    ]);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    for row in rows {
        replicas.add_row(vec![
            row.group,
            row.node.to_string(),
            row.az,
            or_dash(row.role),
            row.state,
            or_dash(row.leader.map(|l| l.to_string())),
            or_dash(row.commit_lsn.map(|l| l.to_string())),
            or_dash(row.applied_lsn.map(|l| l.to_string())),
            or_dash(row.lag.map(|l| l.to_string())),
        ]);
    }
    format!("{nodes}\n{replicas}")
}

/// A block of text kept current on standard output. On a terminal each [`LiveTable::show`]
/// redraws the block in place; otherwise (a pipe, a file) it prints the block only when it
/// changed, so logs stay short.
pub struct LiveTable {
    terminal: bool,
    drawn_lines: usize,
    last: String,
}

impl LiveTable {
    /// A live table on this process's standard output.
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        LiveTable {
            terminal: std::io::stdout().is_terminal(),
            drawn_lines: 0,
            last: String::new(),
        }
    }

    /// Shows `text` in place of the previous block.
    pub fn show(&mut self, text: &str) {
        if self.terminal {
            print_line(&format!("{}{text}", self.erase()));
            self.drawn_lines = text.lines().count();
        } else if text != self.last {
            print_line(text);
        }
        text.clone_into(&mut self.last);
    }

    /// Prints `line` above the block, which stays below it.
    pub fn note(&mut self, line: &str) {
        if self.terminal && self.drawn_lines > 0 {
            let last = std::mem::take(&mut self.last);
            print_line(&format!("{}{line}", self.erase()));
            self.drawn_lines = 0;
            self.show(&last);
        } else {
            print_line(line);
        }
    }

    /// The escape sequence that moves the cursor to the block's first line and clears from
    /// there down.
    fn erase(&self) -> String {
        if self.drawn_lines == 0 {
            String::new()
        } else {
            format!("\x1b[{}F\x1b[J", self.drawn_lines)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cluster_status::{NodeView, tests::sample};
    use super::*;

    #[test]
    fn the_drawing_has_a_row_per_replica_and_marks_down_nodes() {
        let view = ClusterView {
            nodes: vec![
                NodeView {
                    id: 1,
                    az: "a".into(),
                    api: "127.0.0.1:8000".into(),
                    report: NodeReport::Reporting(
                        serde_json::from_str(&sample(1, "leader", 40)).unwrap(),
                    ),
                },
                NodeView {
                    id: 2,
                    az: "b".into(),
                    api: "127.0.0.1:8001".into(),
                    report: NodeReport::Down("exited: signal 9".into()),
                },
            ],
        };
        let text = render(&view);
        assert!(text.contains("DOWN (exited: signal 9)"), "{text}");
        assert!(text.contains("orders/1"), "{text}");
        // Per group: node 1 (leader), node 2 (down), node 3 (listed as a member only).
        let rows_saying = |what: &str| text.lines().filter(|l| l.contains(what)).count();
        assert_eq!(rows_saying("┆ full ┆ leader "), 2, "{text}");
        assert_eq!(rows_saying("┆ down "), 2, "{text}");
        assert_eq!(rows_saying("┆ unknown node "), 2, "{text}");
        let only_nodes = render(&ClusterView {
            nodes: vec![view.nodes[1].clone()],
        });
        assert!(only_nodes.ends_with("no replication group reported yet"));
    }
}
