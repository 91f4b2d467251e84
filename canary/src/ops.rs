//! What the canary reads from the other daemons: the nodes' own request counters (a second
//! view of availability, from the server side) and the operational conditions that raise
//! alarms through the same engine — a node down, writes throttled for want of archiving, a
//! group running on a log replica, archive lag, a split brain in the archive, a scrub
//! mismatch, a daemon that does not answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cfa::{Labels, Severity};

/// One sample of a Prometheus text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments and malformed lines skipped).
#[must_use]
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        None => (series, Labels::new()),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break index,
                other => value.push(other),
            }
        };
        labels.insert(name.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// An operational condition holding now.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The alertname.
    pub name: &'static str,
    /// Which instance.
    pub labels: Labels,
    /// Page or ticket.
    pub severity: Severity,
    /// What is wrong, for people.
    pub summary: String,
}

/// Requests one node answered, as counted for availability: (ok, server errors).
pub type NodeTotals = (u64, u64);

/// One scrape of every daemon the canary watches.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Conditions holding now.
    pub conditions: Vec<Condition>,
    /// By node address: its request totals, when its metrics answered.
    pub node_totals: BTreeMap<String, NodeTotals>,
}

/// The daemons to watch.
#[derive(Clone, Debug)]
pub struct Watched {
    /// Node addresses.
    pub nodes: Vec<String>,
    /// Archiver metrics addresses.
    pub archivers: Vec<String>,
    /// The scrubber's address.
    pub scrubber: Option<String>,
    /// Archive lag that raises `archive-lag`, seconds.
    pub archive_lag_alarm_seconds: f64,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect()
}

fn get(agent: &ureq::Agent, base: &str, path: &str) -> Result<String, String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let answer = agent.get(&url).call().map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = answer
        .into_body()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Scrapes every watched daemon (blocking; a few seconds at most per daemon).
#[must_use]
pub fn scrape(watched: &Watched) -> Scrape {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .into();
    let mut scrape = Scrape::default();
    for node in &watched.nodes {
        let samples = match get(&agent, node, "/metrics") {
            Ok(text) => parse_metrics(&text),
            Err(reason) => {
                scrape.conditions.push(Condition {
                    name: "node-down",
                    labels: labels(&[("node", node)]),
                    severity: Severity::Page,
                    summary: format!("node {node} does not answer: {reason}"),
                });
                continue;
            }
        };
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut with_log_replica = 0.0;
        for sample in &samples {
            match sample.name.as_str() {
                "ddb_requests_total" => match sample.labels.get("outcome").map(String::as_str) {
                    Some("ok") => ok += sample.value as u64,
                    Some("server_error") => failed += sample.value as u64,
                    _ => {}
                },
                "ddb_archive_over_bound" if sample.value >= 1.0 => {
                    let partition = sample.labels.get("partition").cloned().unwrap_or_default();
                    scrape.conditions.push(Condition {
                        name: "archive-over-bound",
                        labels: labels(&[("node", node), ("partition", &partition)]),
                        severity: Severity::Page,
                        summary: format!(
                            "node {node} throttles writes to partition {partition}: its unarchived log passed the bound"
                        ),
                    });
                }
                "ddb_groups_with_log_replica" => with_log_replica = sample.value,
                _ => {}
            }
        }
        if with_log_replica >= 1.0 {
            scrape.conditions.push(Condition {
                name: "log-replica-in-use",
                labels: labels(&[("node", node)]),
                severity: Severity::Ticket,
                summary: format!(
                    "{with_log_replica} groups led by {node} run on a log replica (one full copy fewer until it is rebuilt)"
                ),
            });
        }
        scrape.node_totals.insert(node.clone(), (ok, failed));
    }
    for archiver in &watched.archivers {
        let samples = match get(&agent, archiver, "/metrics") {
            Ok(text) => parse_metrics(&text),
            Err(reason) => {
                scrape.conditions.push(Condition {
                    name: "archiver-down",
                    labels: labels(&[("archiver", archiver)]),
                    severity: Severity::Ticket,
                    summary: format!("archiver {archiver} does not answer: {reason}"),
                });
                continue;
            }
        };
        for sample in samples {
            let partition = sample.labels.get("partition").cloned().unwrap_or_default();
            match sample.name.as_str() {
                "ddb_archiver_lag_seconds" if sample.value > watched.archive_lag_alarm_seconds => {
                    scrape.conditions.push(Condition {
                        name: "archive-lag",
                        labels: labels(&[("archiver", archiver), ("partition", &partition)]),
                        severity: Severity::Ticket,
                        summary: format!(
                            "partition {partition} is {:.0} s behind in the archive (alarm past {:.0} s)",
                            sample.value, watched.archive_lag_alarm_seconds
                        ),
                    });
                }
                "ddb_archiver_split_brain" if sample.value >= 1.0 => {
                    scrape.conditions.push(Condition {
                        name: "archive-split-brain",
                        labels: labels(&[("archiver", archiver), ("partition", &partition)]),
                        severity: Severity::Page,
                        summary: format!(
                            "partition {partition}: the archive holds a different chunk for the same LSNs; archiving stopped"
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    if let Some(scrubber) = &watched.scrubber {
        match get(&agent, scrubber, "/metrics") {
            Ok(text) => {
                for sample in parse_metrics(&text) {
                    if sample.name == "ddb_scrub_mismatch" && sample.value >= 1.0 {
                        let partition = sample.labels.get("partition").cloned().unwrap_or_default();
                        let check = sample.labels.get("check").cloned().unwrap_or_default();
                        scrape.conditions.push(Condition {
                            name: "scrub-mismatch",
                            labels: labels(&[("partition", &partition), ("check", &check)]),
                            severity: Severity::Page,
                            summary: format!(
                                "scrub check {check} of partition {partition} finds copies that differ (ddbctl scrub report)"
                            ),
                        });
                    }
                }
            }
            Err(reason) => scrape.conditions.push(Condition {
                name: "scrubber-down",
                labels: labels(&[("scrubber", scrubber)]),
                severity: Severity::Ticket,
                summary: format!("the scrubber at {scrubber} does not answer: {reason}"),
            }),
        }
    }
    scrape
}

/// Conditions as the engine knows them: one is reported only once it has held for the hold
/// time without a break (one failed scrape, or a daemon still starting, is not an alarm), and
/// one that stops holding is cleared.
pub struct ConditionTracker {
    hold_ms: u64,
    /// Conditions holding now, with when they started to.
    holding: BTreeMap<(String, Labels), u64>,
    /// Conditions reported active to the engine.
    reported: BTreeSet<(String, Labels)>,
    severity: BTreeMap<(String, Labels), Severity>,
}

impl ConditionTracker {
    /// A tracker that reports a condition after it has held `hold_ms`.
    #[must_use]
    pub fn new(hold_ms: u64) -> Self {
        ConditionTracker {
            hold_ms,
            holding: BTreeMap::new(),
            reported: BTreeSet::new(),
            severity: BTreeMap::new(),
        }
    }

    /// Every condition to set, given the ones holding at `now_ms`: those that have held long
    /// enough (active), and those reported before that no longer hold (cleared).
    pub fn update(
        &mut self,
        now: &[Condition],
        now_ms: u64,
    ) -> Vec<(String, Labels, bool, Severity, String)> {
        let mut out = Vec::new();
        let mut holding = BTreeMap::new();
        for condition in now {
            let key = (condition.name.to_string(), condition.labels.clone());
            let since = self.holding.get(&key).copied().unwrap_or(now_ms);
            holding.insert(key.clone(), since);
            self.severity.insert(key.clone(), condition.severity);
            if now_ms.saturating_sub(since) >= self.hold_ms {
                self.reported.insert(key);
                out.push((
                    condition.name.to_string(),
                    condition.labels.clone(),
                    true,
                    condition.severity,
                    condition.summary.clone(),
                ));
            }
        }
        let cleared: Vec<(String, Labels)> = self
            .reported
            .iter()
            .filter(|key| !holding.contains_key(*key))
            .cloned()
            .collect();
        for key in cleared {
            self.reported.remove(&key);
            let severity = self.severity.get(&key).copied().unwrap_or(Severity::Ticket);
            out.push((key.0, key.1, false, severity, String::new()));
        }
        self.holding = holding;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expositions_parse_with_escapes() {
        let text = "# HELP x y\n# TYPE x counter\nddb_requests_total{table=\"a\\\"b\",op=\"PutItem\",outcome=\"ok\"} 12\nup 1\nbroken{ 3\n";
        let samples = parse_metrics(text);
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert_eq!(samples[0].name, "ddb_requests_total");
        assert_eq!(samples[0].labels["table"], "a\"b");
        assert_eq!(samples[0].labels["outcome"], "ok");
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[1].name, "up");
        assert!(samples[1].labels.is_empty());
    }

    /// Serves `body` at every path, over real HTTP, until the test ends.
    fn serve(body: &'static str) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        address
    }

    #[test]
    fn every_operational_condition_is_read_from_the_daemons_metrics() {
        let node = serve(
            "ddb_requests_total{table=\"t\",op=\"PutItem\",outcome=\"ok\"} 90\n\
             ddb_requests_total{table=\"t\",op=\"GetItem\",outcome=\"ok\"} 10\n\
             ddb_requests_total{table=\"t\",op=\"PutItem\",outcome=\"server_error\"} 4\n\
             ddb_requests_total{table=\"-\",op=\"PutItem\",outcome=\"client_error\"} 7\n\
             ddb_groups_with_log_replica 1\n\
             ddb_archive_over_bound{table_id=\"1\",partition=\"3\"} 1\n\
             ddb_archive_over_bound{table_id=\"1\",partition=\"4\"} 0\n",
        );
        let archiver = serve(
            "ddb_archiver_lag_seconds{table_id=\"1\",partition=\"3\"} 120\n\
             ddb_archiver_lag_seconds{table_id=\"1\",partition=\"4\"} 0.4\n\
             ddb_archiver_split_brain{table_id=\"1\",partition=\"5\"} 1\n",
        );
        let scrubber = serve(
            "ddb_scrub_mismatch{table_id=\"1\",partition=\"6\",check=\"peers\"} 1\n\
             ddb_scrub_mismatch{table_id=\"1\",partition=\"6\",check=\"archive\"} 0\n",
        );
        // Nothing listens on port 9 of loopback.
        let down = "http://127.0.0.1:9".to_string();
        let scrape = scrape(&Watched {
            nodes: vec![node.clone(), down.clone()],
            archivers: vec![archiver.clone(), down.clone()],
            scrubber: Some(scrubber),
            archive_lag_alarm_seconds: 60.0,
        });
        assert_eq!(scrape.node_totals[&node], (100, 4));
        let mut found: Vec<(&str, Severity, Labels)> = scrape
            .conditions
            .iter()
            .map(|c| (c.name, c.severity, c.labels.clone()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0).then(a.2.cmp(&b.2)));
        let expected = vec![
            (
                "archive-lag",
                Severity::Ticket,
                labels(&[("archiver", &archiver), ("partition", "3")]),
            ),
            (
                "archive-over-bound",
                Severity::Page,
                labels(&[("node", &node), ("partition", "3")]),
            ),
            (
                "archive-split-brain",
                Severity::Page,
                labels(&[("archiver", &archiver), ("partition", "5")]),
            ),
            (
                "archiver-down",
                Severity::Ticket,
                labels(&[("archiver", &down)]),
            ),
            (
                "log-replica-in-use",
                Severity::Ticket,
                labels(&[("node", &node)]),
            ),
            ("node-down", Severity::Page, labels(&[("node", &down)])),
            (
                "scrub-mismatch",
                Severity::Page,
                labels(&[("check", "peers"), ("partition", "6")]),
            ),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn a_condition_is_reported_once_it_holds_and_cleared_once_it_stops() {
        let mut tracker = ConditionTracker::new(1_000);
        let down = Condition {
            name: "node-down",
            labels: labels(&[("node", "n1")]),
            severity: Severity::Page,
            summary: "down".to_string(),
        };
        // A blip shorter than the hold is never reported, nor cleared.
        assert!(tracker.update(std::slice::from_ref(&down), 0).is_empty());
        assert!(tracker.update(&[], 500).is_empty());
        assert!(tracker.update(std::slice::from_ref(&down), 600).is_empty());
        assert!(
            tracker
                .update(std::slice::from_ref(&down), 1_500)
                .is_empty()
        );
        let set = tracker.update(std::slice::from_ref(&down), 1_600);
        assert_eq!(set.len(), 1);
        assert!(set[0].2);
        let set = tracker.update(&[], 2_000);
        assert_eq!(set.len(), 1);
        assert!(!set[0].2);
        assert_eq!(set[0].3, Severity::Page);
        assert!(tracker.update(&[], 3_000).is_empty());
    }
}
