//! `ddbctl canary report` and `ddbctl alarms ls|history|silence`: what the canaries saw and
//! the alarms they raised (docs/canary.md).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use ddb::service::now_ms;
use ddb_canary::cfa::{AlarmState, AlarmView, HistoryEntry, Silence};
use ddb_canary::measure::{Cell, Report};

use super::Outcome;
use super::cluster_status::http_get;
use crate::cli::{AlarmsCommand, CanaryCommand, OutputFormat};
use crate::output::{emit, table};

pub fn run_canary(command: CanaryCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
    let CanaryCommand::Report { canaries } = command;
    let mut reports = Vec::new();
    for canary in &canaries.canaries {
        reports.push(get_json::<Report>(canary, "/report")?);
    }
    emit(format, &reports, |reports| vec![report_table(reports)])?;
    Ok(Outcome::Clean)
}

/// One row per endpoint, AZ and operation over every window the canaries kept.
fn report_table(reports: &[Report]) -> comfy_table::Table {
    let mut view = table(&[
        "endpoint",
        "az",
        "op",
        "calls",
        "availability",
        "throttled",
        "p50",
        "p99",
        "per window (oldest first)",
    ]);
    for report in reports {
        // endpoint → op → cells per window.
        let mut rows: BTreeMap<&str, BTreeMap<&str, Vec<Option<&Cell>>>> = BTreeMap::new();
        for (index, window) in report.windows.iter().enumerate() {
            for (endpoint, ops) in &window.cells {
                for (op, cell) in ops {
                    let cells = rows
                        .entry(endpoint.as_str())
                        .or_default()
                        .entry(op.as_str())
                        .or_insert_with(|| vec![None; report.windows.len()]);
                    cells[index] = Some(cell);
                }
            }
        }
        for (endpoint, ops) in rows {
            for (op, cells) in ops {
                let mut all = Cell::default();
                for cell in cells.iter().flatten() {
                    all.merge(cell);
                }
                let spark: String = cells
                    .iter()
                    .map(|cell| sparkline_char(cell.and_then(|cell| cell.availability())))
                    .collect();
                let ms = |q: f64| {
                    all.latency
                        .quantile_ms(q)
                        .map_or_else(|| "-".to_string(), |ms| format!("≤{ms} ms"))
                };
                view.add_row(vec![
                    endpoint.to_string(),
                    report.az.clone(),
                    op.to_string(),
                    (all.good + all.bad).to_string(),
                    all.availability()
                        .map_or_else(|| "-".to_string(), |a| format!("{:.3}%", a * 100.0)),
                    all.throttled.to_string(),
                    ms(0.5),
                    ms(0.99),
                    spark,
                ]);
            }
        }
    }
    view
}

/// One character per window: how available it was.
fn sparkline_char(availability: Option<f64>) -> char {
    match availability {
        None => ' ',
        Some(a) if a >= 1.0 => '█',
        Some(a) if a >= 0.9999 => '▇',
        Some(a) if a >= 0.999 => '▆',
        Some(a) if a >= 0.99 => '▅',
        Some(a) if a >= 0.95 => '▄',
        Some(a) if a >= 0.90 => '▃',
        Some(a) if a >= 0.50 => '▂',
        Some(_) => '▁',
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
struct AlarmsAnswer {
    alarms: Vec<AlarmView>,
    silences: Vec<Silence>,
}

pub fn run_alarms(command: AlarmsCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
    match command {
        AlarmsCommand::Ls { canaries } => {
            let mut alarms: BTreeMap<String, AlarmView> = BTreeMap::new();
            let mut silences = Vec::new();
            for canary in &canaries.canaries {
                let answer: AlarmsAnswer = get_json(canary, "/alarms")?;
                // The same operational alarm may be raised by every canary: show it once.
                for alarm in answer.alarms {
                    alarms.entry(alarm.key.clone()).or_insert(alarm);
                }
                silences.extend(answer.silences);
            }
            let answer = AlarmsAnswer {
                alarms: alarms.into_values().collect(),
                silences,
            };
            let now = now_ms();
            emit(format, &answer, |answer| {
                let mut view = table(&["alarm", "severity", "state", "since", "silenced", "what"]);
                for alarm in &answer.alarms {
                    view.add_row(vec![
                        alarm.key.clone(),
                        format!("{:?}", alarm.severity).to_lowercase(),
                        match alarm.state {
                            AlarmState::Pending => "pending".to_string(),
                            AlarmState::Firing => "FIRING".to_string(),
                        },
                        ago(now, alarm.firing_since_ms.unwrap_or(alarm.since_ms)),
                        if alarm.silenced { "yes" } else { "" }.to_string(),
                        alarm.summary.clone(),
                    ]);
                }
                let mut tables = vec![view];
                if !answer.silences.is_empty() {
                    let mut silenced = table(&["silence", "matches", "until", "comment"]);
                    for silence in &answer.silences {
                        silenced.add_row(vec![
                            silence.id.to_string(),
                            labels_text(&silence.matchers),
                            format!(
                                "in {:.0} min",
                                silence.until_ms.saturating_sub(now) as f64 / 60_000.0
                            ),
                            silence.comment.clone(),
                        ]);
                    }
                    tables.push(silenced);
                }
                tables
            })?;
            let firing = answer
                .alarms
                .iter()
                .any(|alarm| alarm.state == AlarmState::Firing);
            Ok(if firing {
                Outcome::ProblemFound
            } else {
                Outcome::Clean
            })
        }
        AlarmsCommand::History { canaries, limit } => {
            let mut entries: Vec<HistoryEntry> = Vec::new();
            for canary in &canaries.canaries {
                entries.extend(get_json::<Vec<HistoryEntry>>(
                    canary,
                    &format!("/alarms/history?limit={limit}"),
                )?);
            }
            entries.sort_by_key(|entry| entry.at_ms);
            let now = now_ms();
            emit(format, &entries, |entries| {
                let mut view = table(&["when", "event", "alarm", "silenced", "what"]);
                for entry in entries {
                    view.add_row(vec![
                        ago(now, entry.at_ms),
                        format!("{:?}", entry.event).to_lowercase(),
                        entry.key.clone(),
                        if entry.silenced { "yes" } else { "" }.to_string(),
                        entry.summary.clone(),
                    ]);
                }
                vec![view]
            })?;
            Ok(Outcome::Clean)
        }
        AlarmsCommand::Silence {
            canaries,
            matchers,
            duration,
            comment,
        } => {
            let mut labels = BTreeMap::new();
            for matcher in &matchers {
                let Some((name, value)) = matcher.split_once('=') else {
                    bail!("--match {matcher:?}: expected NAME=VALUE");
                };
                labels.insert(name.to_string(), value.to_string());
            }
            let duration = parse_duration(&duration)?;
            let request = ddb_canary::SilenceRequest {
                matchers: labels,
                duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                comment,
            };
            let mut made = Vec::new();
            for canary in &canaries.canaries {
                made.push(post_json::<Silence>(canary, "/silences", &request)?);
            }
            emit(format, &made, |made| {
                let mut view = table(&["canary silence", "matches", "for"]);
                for silence in made {
                    view.add_row(vec![
                        silence.id.to_string(),
                        labels_text(&silence.matchers),
                        format!(
                            "{:.0} min",
                            silence.until_ms.saturating_sub(silence.created_ms) as f64 / 60_000.0
                        ),
                    ]);
                }
                vec![view]
            })?;
            Ok(Outcome::Clean)
        }
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `90s`, `15m`, `2h`, `1d`.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("duration {text:?}: expected a number and s, m, h or d"))?;
    let seconds = match unit {
        "s" => number,
        "m" | "" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        other => bail!("duration {text:?}: unknown unit {other:?} (s, m, h or d)"),
    };
    Ok(Duration::from_secs(seconds))
}

fn ago(now_ms: u64, at_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(at_ms) / 1000;
    match seconds {
        0..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}

fn get_json<T: serde::de::DeserializeOwned>(canary: &str, path: &str) -> anyhow::Result<T> {
    let (code, body) = http_get(canary, path, Duration::from_secs(10))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("asking the canary at {canary}"))?;
    if code != 200 {
        bail!("the canary at {canary} answered HTTP {code}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("reading the canary's {path}"))
}

fn post_json<T: serde::de::DeserializeOwned>(
    canary: &str,
    path: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<T> {
    let base = canary.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let answer = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(serde_json::to_vec(body)?.as_slice())
        .with_context(|| format!("asking the canary at {canary}"))?;
    let code = answer.status().as_u16();
    let text = answer.into_body().read_to_string()?;
    if code != 200 {
        bail!("the canary at {canary} answered HTTP {code}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("reading the canary's answer to {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sparklines() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
        assert_eq!(sparkline_char(None), ' ');
        assert_eq!(sparkline_char(Some(1.0)), '█');
        assert_eq!(sparkline_char(Some(0.9995)), '▆');
        assert_eq!(sparkline_char(Some(0.2)), '▁');
    }
}
