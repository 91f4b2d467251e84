//! What the engine reports: alarms, their transitions, history entries and silences, and how an
//! alarm's identity and summary are spelled.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Labels, Severity};

/// The label holding an alarm's name.
pub const ALERTNAME_LABEL: &str = "alertname";
/// The label holding an alarm's severity (`page` or `ticket`).
pub const SEVERITY_LABEL: &str = "severity";

/// The state of an alarm that is not inactive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    /// The condition holds but has not held for `pending_for_ms` yet.
    Pending,
    /// The condition held long enough; stays firing until clear for `resolve_after_ms`.
    Firing,
}

/// A snapshot of one alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmView {
    /// Stable identity: the alertname then the labels other than `alertname` and `severity`,
    /// sorted, e.g. `page-fast{az="a",endpoint="http://…"}` (the bare name when there are none).
    pub key: String,
    /// The alertname: the rule's name, or the operational condition's name.
    pub name: String,
    /// The series' (or condition's) labels plus `alertname` and `severity` (`page`|`ticket`).
    pub labels: Labels,
    /// How urgent it is.
    pub severity: Severity,
    /// Pending or firing. In a resolved notification: the state it left (firing).
    pub state: AlarmState,
    /// When it became pending (ms since the Unix epoch).
    pub since_ms: u64,
    /// When it became firing (ms since the Unix epoch), if it did.
    pub firing_since_ms: Option<u64>,
    /// Whether a silence in force matches it at the time of the snapshot.
    pub silenced: bool,
    /// One human sentence: the measured ratios for burn alarms, the caller's text for conditions.
    pub summary: String,
    /// Burn alarms only: the error ratio over the long window at the last evaluation.
    pub long_ratio: Option<f64>,
    /// Burn alarms only: the error ratio over the short window at the last evaluation.
    pub short_ratio: Option<f64>,
}

/// A transition of an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Inactive to pending (recorded in history, never notified).
    Pending,
    /// Pending to firing.
    Firing,
    /// Firing to inactive after `resolve_after_ms` clear.
    Resolved,
}

/// A transition a receiver (webhook, Alertmanager) should hear about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Firing or resolved.
    pub event: Event,
    /// The alarm at the transition.
    pub alarm: AlarmView,
    /// When the transition happened (ms since the Unix epoch): the evaluation's time.
    pub at_ms: u64,
}

/// One line of `alarm-history.jsonl`: a transition, notified or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened (ms since the Unix epoch).
    pub at_ms: u64,
    /// Which transition.
    pub event: Event,
    /// The alarm's key (see [`AlarmView::key`]).
    pub key: String,
    /// The alertname.
    pub name: String,
    /// The alarm's labels, `alertname` and `severity` included.
    pub labels: Labels,
    /// How urgent it is.
    pub severity: Severity,
    /// The alarm's summary at the transition.
    pub summary: String,
    /// Whether a silence suppressed the notification (or would have, for `pending`).
    pub silenced: bool,
}

/// Suppresses the notifications of every alarm whose labels include all its matchers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique among the silences ever created in this state directory.
    pub id: u64,
    /// Label name to exact value; an alarm matches when it has every one of them.
    pub matchers: Labels,
    /// In force until this time (ms since the Unix epoch, exclusive).
    pub until_ms: u64,
    /// Why, and who asked.
    pub comment: String,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

impl Silence {
    /// Whether it is in force at `now_ms`.
    #[must_use]
    pub fn in_force(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    /// Whether an alarm with `labels` matches every matcher.
    #[must_use]
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|(name, value)| labels.get(name) == Some(value))
    }
}

/// The alarm's labels: `labels` with `alertname` and `severity` set (overriding any given).
pub(crate) fn alarm_labels(name: &str, labels: &Labels, severity: Severity) -> Labels {
    let mut all = labels.clone();
    all.insert(ALERTNAME_LABEL.to_owned(), name.to_owned());
    all.insert(SEVERITY_LABEL.to_owned(), severity.as_str().to_owned());
    all
}

/// `name{a="x",b="y"}` over the labels other than `alertname` and `severity`, values escaped
/// the way Prometheus prints them.
pub(crate) fn alarm_key(name: &str, labels: &Labels) -> String {
    let mut key = name.to_owned();
    let mut first = true;
    for (label, value) in labels {
        if label == ALERTNAME_LABEL || label == SEVERITY_LABEL {
            continue;
        }
        key.push(if first { '{' } else { ',' });
        first = false;
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(key, "{label}=\"{escaped}\"");
    }
    if !first {
        key.push('}');
    }
    key
}

/// The summary of a burn-rate alarm, e.g. `error ratio 12.5% over 1h and 40.0% over 5m, burning
/// the 0.1% budget 125x (threshold 14.4x)`. The burn shown is the smaller window's, the rate both
/// windows sustain.
pub(crate) fn burn_summary(
    long: (f64, u64),
    short: (f64, u64),
    budget: f64,
    threshold_burn_rate: f64,
) -> String {
    let burn = long.0.min(short.0) / budget;
    format!(
        "error ratio {:.1}% over {} and {:.1}% over {}, burning the {}% budget {}x (threshold {}x)",
        long.0 * 100.0,
        format_duration_ms(long.1),
        short.0 * 100.0,
        format_duration_ms(short.1),
        trimmed(budget * 100.0, 4),
        trimmed(burn, 1),
        trimmed(threshold_burn_rate, 2),
    )
}

/// `value` with at most `decimals` decimals and no trailing zeros: 0.1000 → `0.1`, 125.0 → `125`.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration the way people write it: `1h`, `5m`, `1d`, `36s`, `1h30m`, `150ms`.
pub(crate) fn format_duration_ms(ms: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut rest = ms;
    let mut text = String::new();
    for (unit_ms, suffix) in UNITS {
        let count = rest / unit_ms;
        if count > 0 {
            let _ = write!(text, "{count}{suffix}");
            rest %= unit_ms;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn key_is_the_name_and_sorted_labels_without_alertname_and_severity() {
        let series = labels(&[("endpoint", "http://n1:8000"), ("az", "a")]);
        let all = alarm_labels("page-fast", &series, Severity::Page);
        assert_eq!(all["alertname"], "page-fast");
        assert_eq!(all["severity"], "page");
        assert_eq!(
            alarm_key("page-fast", &all),
            r#"page-fast{az="a",endpoint="http://n1:8000"}"#
        );
        assert_eq!(alarm_key("replica-down", &Labels::new()), "replica-down");
        assert_eq!(
            alarm_key("x", &labels(&[("q", "say \"hi\"\\")])),
            r#"x{q="say \"hi\"\\"}"#
        );
    }

    #[test]
    fn summary_reads_like_the_workbook() {
        let summary = burn_summary((0.125, 3_600_000), (0.4, 300_000), 0.001, 14.4);
        assert_eq!(
            summary,
            "error ratio 12.5% over 1h and 40.0% over 5m, burning the 0.1% budget 125x (threshold 14.4x)"
        );
    }

    #[test]
    fn durations_use_the_largest_units() {
        assert_eq!(format_duration_ms(3_600_000), "1h");
        assert_eq!(format_duration_ms(259_200_000), "3d");
        assert_eq!(format_duration_ms(36_000), "36s");
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
        assert_eq!(format_duration_ms(150), "150ms");
    }

    #[test]
    fn a_silence_matches_alarms_holding_all_its_matchers() {
        let silence = Silence {
            id: 1,
            matchers: labels(&[("alertname", "page-fast"), ("az", "a")]),
            until_ms: 1_000,
            comment: String::new(),
            created_ms: 0,
        };
        let alarm = labels(&[
            ("alertname", "page-fast"),
            ("az", "a"),
            ("severity", "page"),
        ]);
        assert!(silence.matches(&alarm));
        assert!(!silence.matches(&labels(&[("alertname", "page-fast"), ("az", "b")])));
        assert!(!silence.matches(&labels(&[("alertname", "page-fast")])));
        assert!(silence.in_force(999));
        assert!(!silence.in_force(1_000));
    }
}
