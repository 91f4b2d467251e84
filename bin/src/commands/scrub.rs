//! `ddbctl scrub status|report|run|repair|pause|resume`: what the scrubber proved, and
//! repairs of what it found (docs/scrubber.md).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ddb::scrub::{Check, Outcome as Verdict, Repair, Status};

use super::Outcome;
use super::cluster_status::http_get;
use crate::cli::{OutputFormat, ScrubCommand};
use crate::output::{emit, table};

/// How long `scrub run` waits for its pass.
const RUN_LIMIT: Duration = Duration::from_secs(3600);

pub fn run(command: ScrubCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
    match command {
        ScrubCommand::Status { scrubber } => show(&fetch(&scrubber.scrubber)?, format),
        ScrubCommand::Report { scrubber } => report(&fetch(&scrubber.scrubber)?, format),
        ScrubCommand::Pause { scrubber } => {
            post(&scrubber.scrubber, "/pause")?;
            crate::out!("scrubbing paused (ddbctl scrub resume continues)");
            Ok(Outcome::Clean)
        }
        ScrubCommand::Resume { scrubber } => {
            post(&scrubber.scrubber, "/resume")?;
            crate::out!("scrubbing resumed");
            Ok(Outcome::Clean)
        }
        ScrubCommand::Run {
            scrubber,
            deep,
            partition,
        } => {
            let only = partition.map_or_else(String::new, |id| format!("&partition={id}"));
            let status = run_pass(&scrubber.scrubber, &format!("/run?deep={deep}{only}"), deep)?;
            show(&only_partition(status, partition), format)
        }
        ScrubCommand::Repair {
            scrubber,
            partition,
        } => {
            let only = partition.map_or_else(String::new, |id| format!("?partition={id}"));
            let answer = post(&scrubber.scrubber, &format!("/repair{only}"))?;
            let repairs: Vec<Repair> = serde_json::from_value(answer["repairs"].clone())
                .context("reading the scrubber's repairs")?;
            let failed = repairs.iter().any(|repair| repair.outcome.is_err());
            let status = if repairs.is_empty() {
                only_partition(fetch(&scrubber.scrubber)?, partition)
            } else {
                // The pass that shows whether the repaired copies agree now (a deep one, so
                // check 3 is renewed too).
                let deep = repairs.iter().any(|repair| repair.outcome.is_ok());
                let status = run_pass(&scrubber.scrubber, &format!("/run?deep={deep}"), deep)?;
                only_partition(status, partition)
            };
            let outcome = if matches!(format, OutputFormat::Json) {
                crate::out!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "repairs": repairs, "status": status })
                    )?
                );
                verdict_of(&status)
            } else {
                if repairs.is_empty() {
                    crate::out!("no replica is named odd: nothing to repair");
                } else {
                    show_repairs(&repairs);
                }
                show(&status, format)?
            };
            Ok(if failed {
                Outcome::ProblemFound
            } else {
                outcome
            })
        }
    }
}

/// Asks for a pass with `path` and waits for it, drawing its progress; the status after it.
fn run_pass(scrubber: &str, path: &str, deep: bool) -> anyhow::Result<Status> {
    let before = fetch(scrubber)?;
    if before.paused {
        bail!("scrubbing is paused: ddbctl scrub resume first");
    }
    post(scrubber, path)?;
    let started = Instant::now();
    let bar = crate::output::Progress::bar(0, "partitions");
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let status = fetch(scrubber)?;
        // The pass under way when asked may not have been deep: wait for the next.
        if status.passes > before.passes + u64::from(deep) {
            bar.finish();
            return Ok(status);
        }
        if let Some(progress) = &status.progress {
            bar.update(if progress.deep { "deep pass" } else { "pass" });
            bar.set(progress.done, progress.total);
        }
        if started.elapsed() > RUN_LIMIT {
            bar.finish();
            bail!("the scrubber did not finish a pass within {RUN_LIMIT:?}");
        }
    }
}

/// The status narrowed to one partition, when one was asked for.
fn only_partition(mut status: Status, partition: Option<u64>) -> Status {
    if let Some(id) = partition {
        status.partitions.retain(|p, _| *p == id);
    }
    status
}

fn show_repairs(repairs: &[Repair]) {
    let mut view = table(&["partition", "odd replica", "rebuilt from", "outcome"]);
    for repair in repairs {
        let outcome = match &repair.outcome {
            Ok(report) => format!(
                "repaired: {} items copied at LSN {}, log replayed to {}, {} ms",
                report["items"], report["base_lsn"], report["applied_lsn"], report["elapsed_ms"]
            ),
            Err(reason) => format!("FAILED: {reason}"),
        };
        view.add_row(vec![
            repair.partition_id.to_string(),
            format!("node {}", repair.node_id),
            repair
                .source
                .map_or_else(|| "-".to_string(), |id| format!("node {id}")),
            outcome,
        ]);
    }
    crate::out!("{view}");
}

fn fetch(scrubber: &str) -> anyhow::Result<Status> {
    let (code, body) = http_get(scrubber, "/status", Duration::from_secs(10))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("asking the scrubber at {scrubber}"))?;
    if code != 200 {
        bail!("the scrubber at {scrubber} answered HTTP {code}: {body}");
    }
    serde_json::from_str(&body).context("reading the scrubber's status")
}

/// POSTs `path` to the scrubber; its JSON answer (`null` for a plain-text one).
fn post(scrubber: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let base = scrubber.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    };
    // A repair copies whole replicas: give it time.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let body = agent
        .post(&url)
        .send_empty()
        .with_context(|| format!("asking the scrubber at {scrubber} for {path}"))?
        .into_body()
        .read_to_string()
        .with_context(|| format!("reading the scrubber's answer to {path}"))?;
    Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// Seconds since `at_ms`, for people.
fn ago(now_ms: u64, at_ms: u64) -> String {
    format!("{:.0} s ago", now_ms.saturating_sub(at_ms) as f64 / 1000.0)
}

use ddb::service::now_ms;

fn report(status: &Status, format: OutputFormat) -> anyhow::Result<Outcome> {
    let now = now_ms();
    emit(format, status, |status| {
        let mut tables = Vec::new();
        let mut summary = table(&[
            "passes",
            "deep passes",
            "last pass",
            "next deep pass",
            "nodes not reached",
        ]);
        summary.add_row(vec![
            status.passes.to_string(),
            status.deep_passes.to_string(),
            ago(now, status.last_pass_ms),
            status.next_deep_ms.map_or_else(
                || "-".to_string(),
                |at| format!("in {:.0} s", at.saturating_sub(now) as f64 / 1000.0),
            ),
            status.nodes_down.join(", "),
        ]);
        tables.push(summary);
        for p in status.partitions.values() {
            let mut view = table(&[
                &format!("table {} partition {}", p.table_id, p.partition_id),
                "",
            ]);
            let odd = |check: &Check| {
                if check.odd.is_empty() {
                    String::new()
                } else {
                    format!(" (odd: {})", check.odd.join(", "))
                }
            };
            let rows = [
                (
                    "proven LSN",
                    p.proven_lsn.map_or_else(
                        || "never".to_string(),
                        |lsn| {
                            format!(
                                "{lsn}, {}",
                                p.proven_at_ms.map_or_else(String::new, |at| ago(now, at))
                            )
                        },
                    ),
                ),
                (
                    "peers agree",
                    format!("{}{}", verdict(&p.peers), odd(&p.peers)),
                ),
                (
                    "matches archive",
                    format!("{}{}", verdict(&p.archive), odd(&p.archive)),
                ),
                (
                    "at rest",
                    p.at_rest.as_ref().map_or_else(
                        || "not scanned yet".to_string(),
                        |rest| {
                            format!(
                                "{:?}{}, {} scanned, {}",
                                rest.outcome,
                                if rest.odd.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (odd: {})", rest.odd.join(", "))
                                },
                                crate::output::bytes(rest.bytes),
                                ago(now, rest.at_ms)
                            )
                        },
                    ),
                ),
                ("reference replica LSN", p.reference_lsn.to_string()),
                ("differing keys", p.differing_keys.join(" ")),
                (
                    "archive damage",
                    p.archive_error.clone().unwrap_or_default(),
                ),
                ("checked", ago(now, p.checked_at_ms)),
            ];
            for (name, value) in rows {
                view.add_row(vec![name.to_string(), value]);
            }
            tables.push(view);
        }
        tables
    })?;
    Ok(verdict_of(status))
}

fn verdict(check: &Check) -> String {
    let word = match check.outcome {
        Verdict::Agree => "ok",
        Verdict::Disagree => "MISMATCH",
        Verdict::Pending => "pending",
    };
    match check.lsn {
        Some(lsn) => format!("{word} @{lsn}"),
        None => word.to_string(),
    }
}

fn show(status: &Status, format: OutputFormat) -> anyhow::Result<Outcome> {
    let now = now_ms();
    emit(format, status, |status| {
        let mut view = table(&[
            "table/partition",
            "proven LSN",
            "proven",
            "peers agree",
            "matches archive",
            "at rest",
            "odd copies",
        ]);
        for p in status.partitions.values() {
            let age = p
                .proven_at_ms
                .map_or_else(|| "never".to_string(), |at| ago(now, at));
            let at_rest = p.at_rest.as_ref().map_or_else(
                || "not scanned".to_string(),
                |rest| match rest.outcome {
                    Verdict::Agree => "ok".to_string(),
                    Verdict::Disagree => "MISMATCH".to_string(),
                    Verdict::Pending => "incomplete".to_string(),
                },
            );
            let mut odd: Vec<String> = p.peers.odd.clone();
            odd.extend(p.archive.odd.iter().cloned());
            odd.extend(p.at_rest.iter().flat_map(|rest| rest.odd.iter().cloned()));
            odd.sort();
            odd.dedup();
            if let Some(error) = &p.archive_error {
                odd.push(format!("archive: {error}"));
            }
            if !p.differing_keys.is_empty() {
                odd.push(format!("differing keys: {}", p.differing_keys.join(" ")));
            }
            view.add_row(vec![
                format!("{}/{}", p.table_id, p.partition_id),
                p.proven_lsn
                    .map_or_else(|| "-".to_string(), |lsn| lsn.to_string()),
                age,
                verdict(&p.peers),
                verdict(&p.archive),
                at_rest,
                odd.join(", "),
            ]);
        }
        let mut tables = vec![view];
        if status.paused || status.progress.is_some() {
            let mut state = table(&["scrubbing"]);
            if status.paused {
                state.add_row(vec!["PAUSED (ddbctl scrub resume)".to_string()]);
            }
            if let Some(progress) = &status.progress {
                state.add_row(vec![format!(
                    "{} pass under way: {} of {} partitions{}",
                    if progress.deep { "deep" } else { "a" },
                    progress.done,
                    progress.total,
                    progress.eta_ms.map_or_else(String::new, |eta| format!(
                        ", done in about {:.0} s",
                        eta.saturating_sub(now) as f64 / 1000.0
                    ))
                )]);
            }
            tables.push(state);
        }
        if !status.nodes_down.is_empty() {
            let mut down = table(&["node not reached in the last pass"]);
            for node in &status.nodes_down {
                down.add_row(vec![node.clone()]);
            }
            tables.push(down);
        }
        tables
    })?;
    Ok(verdict_of(status))
}

/// A status's exit outcome: a problem while any check finds copies that differ.
fn verdict_of(status: &Status) -> Outcome {
    if status.has_mismatch() {
        Outcome::ProblemFound
    } else {
        Outcome::Clean
    }
}
