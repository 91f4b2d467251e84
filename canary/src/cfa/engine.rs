//! The engine: series buckets in, burn-rate and operational alarms through one state machine,
//! notifications out.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use anyhow::ensure;

use super::alarm::{alarm_key, alarm_labels, burn_summary};
use super::series::SeriesBuckets;
use super::store::{HISTORY_IN_MEMORY, SilencesFile, StateDir};
use super::{
    AlarmState, AlarmView, CfaConfig, Event, HistoryEntry, Labels, Notification, Severity, Silence,
};

/// Buckets per shortest window: the resolution of every window is 1/20 of the shortest one.
const BUCKETS_PER_SHORTEST_WINDOW: u64 = 20;
/// Bucket width when there are no rules to size it from.
const BUCKET_WIDTH_WITHOUT_RULES_MS: u64 = 1_000;
/// A ratio within this relative distance below its threshold counts as reaching it, so that
/// `1 - 0.999` not being exactly 0.001 in binary does not move a detection by a request.
const THRESHOLD_TOLERANCE: f64 = 1e-9;

/// An operational condition as the last `set_condition` call left it.
#[derive(Clone, Debug)]
struct Condition {
    name: String,
    labels: Labels,
    severity: Severity,
    active: bool,
    /// When `active` last changed (the caller's `at_ms`).
    changed_ms: u64,
    summary: String,
}

/// What one evaluation saw for one alarm key.
struct Observation {
    name: String,
    labels: Labels,
    severity: Severity,
    active: bool,
    /// Since when `active` has had its value: the evaluation's time for burn alarms, the last
    /// change for conditions.
    since_ms: u64,
    summary: String,
    long_ratio: Option<f64>,
    short_ratio: Option<f64>,
}

/// An alarm that is pending or firing.
#[derive(Clone, Debug)]
struct Alarm {
    name: String,
    labels: Labels,
    severity: Severity,
    state: AlarmState,
    since_ms: u64,
    firing_since_ms: Option<u64>,
    /// While firing: since when the condition has been continuously false.
    clear_since_ms: Option<u64>,
    /// Whether receivers were told it fires; a silenced firing is told when the silence ends.
    firing_notified: bool,
    summary: String,
    long_ratio: Option<f64>,
    short_ratio: Option<f64>,
}

impl Alarm {
    fn view(&self, key: &str, silenced: bool) -> AlarmView {
        AlarmView {
            key: key.to_owned(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            severity: self.severity,
            state: self.state,
            since_ms: self.since_ms,
            firing_since_ms: self.firing_since_ms,
            silenced,
            summary: self.summary.clone(),
            long_ratio: self.long_ratio,
            short_ratio: self.short_ratio,
        }
    }

    fn history(&self, key: &str, event: Event, at_ms: u64, silenced: bool) -> HistoryEntry {
        HistoryEntry {
            at_ms,
            event,
            key: key.to_owned(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            severity: self.severity,
            summary: self.summary.clone(),
            silenced,
        }
    }
}

/// The customer-facing alarm engine. See the [module documentation](super) for the scheme.
#[derive(Debug)]
pub struct Engine {
    config: CfaConfig,
    bucket_width_ms: u64,
    longest_window_ms: u64,
    series: BTreeMap<Labels, SeriesBuckets>,
    conditions: BTreeMap<String, Condition>,
    alarms: BTreeMap<String, Alarm>,
    history: VecDeque<HistoryEntry>,
    silences: Vec<Silence>,
    next_silence_id: u64,
    state_dir: Option<StateDir>,
}

impl Engine {
    /// An engine for `config` (validated here). `state_dir`: where history
    /// (`alarm-history.jsonl`, append-only, one JSON [`HistoryEntry`] per line) and silences
    /// (`silences.json`) persist; both are loaded here (the newest 10 000 history entries are kept
    /// in memory), and alarms whose last recorded transition is `firing` are restored as firing,
    /// so a restart neither repeats their page nor forgets to resolve them. `None`: in memory
    /// only.
    ///
    /// # Errors
    /// An invalid config, a state directory that cannot be created or read, or an unparsable
    /// `silences.json`.
    pub fn new(config: CfaConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        config.validate()?;
        let shortest = config
            .rules
            .iter()
            .map(|rule| config.scaled(rule.short_window_ms))
            .min();
        let bucket_width_ms = shortest.map_or(BUCKET_WIDTH_WITHOUT_RULES_MS, |ms| {
            (ms / BUCKETS_PER_SHORTEST_WINDOW).max(1)
        });
        let longest_window_ms = config
            .rules
            .iter()
            .map(|rule| config.scaled(rule.long_window_ms))
            .max()
            .unwrap_or(0);
        let state_dir = state_dir.map(StateDir::open).transpose()?;
        let (history, silences) = match &state_dir {
            Some(dir) => (dir.load_history()?, dir.load_silences()?),
            None => (VecDeque::new(), SilencesFile::default()),
        };
        let mut engine = Self {
            config,
            bucket_width_ms,
            longest_window_ms,
            series: BTreeMap::new(),
            conditions: BTreeMap::new(),
            alarms: BTreeMap::new(),
            history,
            next_silence_id: silences.next_id.max(1),
            silences: silences.silences,
            state_dir,
        };
        engine.restore_firing_alarms();
        Ok(engine)
    }

    fn restore_firing_alarms(&mut self) {
        let mut last_by_key: BTreeMap<&str, &HistoryEntry> = BTreeMap::new();
        for entry in &self.history {
            last_by_key.insert(&entry.key, entry);
        }
        for (key, entry) in last_by_key {
            if entry.event == Event::Firing {
                let alarm = Alarm {
                    name: entry.name.clone(),
                    labels: entry.labels.clone(),
                    severity: entry.severity,
                    state: AlarmState::Firing,
                    since_ms: entry.at_ms,
                    firing_since_ms: Some(entry.at_ms),
                    clear_since_ms: None,
                    firing_notified: !entry.silenced,
                    summary: entry.summary.clone(),
                    long_ratio: None,
                    short_ratio: None,
                };
                self.alarms.insert(key.to_owned(), alarm);
            }
        }
    }

    /// The configuration it runs with.
    #[must_use]
    pub fn config(&self) -> &CfaConfig {
        &self.config
    }

    /// The width of a time bucket in ms: 1/20 of the shortest scaled window (at least 1 ms), so
    /// every window is measured to within 5% of the shortest one. With the default rules that is
    /// 15 s (3 s at `window_scale` 0.01), and a series holds at most 3d / 15 s + 2 = 17 282
    /// buckets whatever the scale.
    #[must_use]
    pub fn bucket_width_ms(&self) -> u64 {
        self.bucket_width_ms
    }

    /// Records requests of one series at `at_ms`: `good` counted for availability, `bad` against
    /// it. O(1) for samples in time order (a map lookup and a bucket update); buckets further
    /// behind than the longest scaled window plus one bucket are dropped.
    pub fn record(&mut self, series: &Labels, at_ms: u64, good: u64, bad: u64) {
        let buckets = match self.series.get_mut(series) {
            Some(buckets) => buckets,
            None => self.series.entry(series.clone()).or_insert_with(|| {
                SeriesBuckets::new(self.bucket_width_ms, self.longest_window_ms)
            }),
        };
        buckets.record(at_ms, good + bad, bad);
    }

    /// `(total, bad)` requests of `series` in the `window_ms` (real ms, not scaled) ending at
    /// `now_ms`, to bucket resolution; `(0, 0)` for a series never recorded. Only the longest
    /// scaled window (plus a bucket) is retained.
    #[must_use]
    pub fn window_counts(&self, series: &Labels, window_ms: u64, now_ms: u64) -> (u64, u64) {
        self.series
            .get(series)
            .map_or((0, 0), |buckets| buckets.window_counts(window_ms, now_ms))
    }

    /// Every series key recorded so far, sorted.
    #[must_use]
    pub fn series(&self) -> Vec<Labels> {
        self.series.keys().cloned().collect()
    }

    /// Reports an operational alarm (archive lag, scrub mismatch, replica down, …): `name` is its
    /// alertname, `labels` identify the instance, `active` whether the condition holds at `at_ms`.
    /// It stays as set until the next call; the next `evaluate` puts it through the same states,
    /// hysteresis, silences, history and notifications as the burn-rate alarms, timing
    /// `pending_for_ms` and `resolve_after_ms` from the `at_ms` at which `active` last changed.
    /// A name equal to a rule's name is ignored (with a warning): the keys would collide.
    pub fn set_condition(
        &mut self,
        name: &str,
        labels: &Labels,
        active: bool,
        severity: Severity,
        summary: &str,
        at_ms: u64,
    ) {
        if self.config.rules.iter().any(|rule| rule.name == name) {
            tracing::warn!(
                name,
                "cfa: ignoring a condition named like a burn-rate rule"
            );
            return;
        }
        let labels = alarm_labels(name, labels, severity);
        let key = alarm_key(name, &labels);
        let changed_ms = match self.conditions.get(&key) {
            Some(previous) if previous.active == active => previous.changed_ms,
            _ => at_ms,
        };
        let condition = Condition {
            name: name.to_owned(),
            labels,
            severity,
            active,
            changed_ms,
            summary: summary.to_owned(),
        };
        self.conditions.insert(key, condition);
    }

    /// Evaluates every rule over every series, and every condition, at `now_ms`; returns the
    /// notifications due (transitions to firing and to resolved, and firings whose silence has
    /// just ended), leaving out alarms silenced at `now_ms`. Every transition (pending, firing,
    /// resolved) is appended to the history, with `silenced` telling whether it was suppressed,
    /// and persisted; a write failure is logged and the entries stay in memory.
    pub fn evaluate(&mut self, now_ms: u64) -> Vec<Notification> {
        for buckets in self.series.values_mut() {
            buckets.prune(now_ms);
        }
        let mut observations = self.observe_burn(now_ms);
        for (key, condition) in &self.conditions {
            observations.insert(
                key.clone(),
                Observation {
                    name: condition.name.clone(),
                    labels: condition.labels.clone(),
                    severity: condition.severity,
                    active: condition.active,
                    since_ms: condition.changed_ms.min(now_ms),
                    summary: condition.summary.clone(),
                    long_ratio: None,
                    short_ratio: None,
                },
            );
        }
        // Conditions that are clear and have no alarm need no memory.
        let alarms = &self.alarms;
        self.conditions
            .retain(|key, condition| condition.active || alarms.contains_key(key));

        let mut transitions = Transitions::default();
        let unobserved: Vec<String> = self
            .alarms
            .keys()
            .filter(|key| !observations.contains_key(*key))
            .cloned()
            .collect();
        for (key, observation) in observations {
            self.step(&key, Some(observation), now_ms, &mut transitions);
        }
        for key in unobserved {
            // E.g. restored from history after a restart, and its condition not reported since.
            self.step(&key, None, now_ms, &mut transitions);
        }
        self.append_history(transitions.history);
        transitions.notifications
    }

    /// The burn observations worth acting on: conditions that hold, and any for a key with an
    /// alarm (which may be clearing).
    fn observe_burn(&self, now_ms: u64) -> BTreeMap<String, Observation> {
        let budget = self.config.error_budget();
        let mut observations = BTreeMap::new();
        for rule in &self.config.rules {
            let long_window_ms = self.config.scaled(rule.long_window_ms);
            let short_window_ms = self.config.scaled(rule.short_window_ms);
            let threshold = rule.burn_rate * budget * (1.0 - THRESHOLD_TOLERANCE);
            for (series_labels, buckets) in &self.series {
                let long = buckets.window_counts(long_window_ms, now_ms);
                let short = buckets.window_counts(short_window_ms, now_ms);
                let long_ratio = error_ratio(long);
                let short_ratio = error_ratio(short);
                let judged =
                    long.0 >= self.config.min_requests && short.0 >= self.config.min_requests;
                let active = judged && long_ratio >= threshold && short_ratio >= threshold;
                let labels = alarm_labels(&rule.name, series_labels, rule.severity);
                let key = alarm_key(&rule.name, &labels);
                if !active && !self.alarms.contains_key(&key) {
                    continue;
                }
                let summary = burn_summary(
                    (long_ratio, long_window_ms),
                    (short_ratio, short_window_ms),
                    budget,
                    rule.burn_rate,
                );
                let observation = Observation {
                    name: rule.name.clone(),
                    labels,
                    severity: rule.severity,
                    active,
                    since_ms: now_ms,
                    summary,
                    long_ratio: Some(long_ratio),
                    short_ratio: Some(short_ratio),
                };
                observations.insert(key, observation);
            }
        }
        observations
    }

    /// Moves one alarm through the state machine.
    fn step(
        &mut self,
        key: &str,
        observation: Option<Observation>,
        now_ms: u64,
        transitions: &mut Transitions,
    ) {
        let pending_for_ms = self.config.scaled(self.config.pending_for_ms);
        let resolve_after_ms = self.config.scaled(self.config.resolve_after_ms);
        let active = observation.as_ref().is_some_and(|o| o.active);
        let changed_ms = observation.as_ref().map_or(now_ms, |o| o.since_ms);
        if !self.alarms.contains_key(key) {
            let Some(observation) = observation.filter(|o| o.active) else {
                return;
            };
            let alarm = Alarm {
                name: observation.name,
                labels: observation.labels,
                severity: observation.severity,
                state: AlarmState::Pending,
                since_ms: observation.since_ms,
                firing_since_ms: None,
                clear_since_ms: None,
                firing_notified: false,
                summary: observation.summary,
                long_ratio: observation.long_ratio,
                short_ratio: observation.short_ratio,
            };
            let silenced = self.is_silenced(&alarm.labels, now_ms);
            transitions.record(alarm.history(key, Event::Pending, now_ms, silenced));
            self.alarms.insert(key.to_owned(), alarm);
        } else if let (Some(observation), Some(alarm)) = (observation, self.alarms.get_mut(key)) {
            alarm.labels = observation.labels;
            alarm.severity = observation.severity;
            alarm.summary = observation.summary;
            alarm.long_ratio = observation.long_ratio;
            alarm.short_ratio = observation.short_ratio;
        }
        let Some(alarm) = self.alarms.get(key) else {
            return;
        };
        let silenced = self.is_silenced(&alarm.labels, now_ms);
        let mut alarm = alarm.clone();
        let mut resolved = false;
        match (alarm.state, active) {
            (AlarmState::Pending, true) => {
                // A `pending_for` of 0 scales to 1 ms: "held for 0" is this very evaluation.
                if self.config.pending_for_ms == 0
                    || now_ms.saturating_sub(alarm.since_ms) >= pending_for_ms
                {
                    alarm.state = AlarmState::Firing;
                    alarm.firing_since_ms = Some(now_ms);
                    transitions.record(alarm.history(key, Event::Firing, now_ms, silenced));
                }
            }
            (AlarmState::Pending, false) => {
                self.alarms.remove(key);
                return;
            }
            (AlarmState::Firing, true) => alarm.clear_since_ms = None,
            (AlarmState::Firing, false) => {
                let floor = alarm.firing_since_ms.unwrap_or(alarm.since_ms);
                let clear_since = *alarm.clear_since_ms.get_or_insert(changed_ms.max(floor));
                let resolve_now = self.config.resolve_after_ms == 0
                    || now_ms.saturating_sub(clear_since) >= resolve_after_ms;
                if resolve_now {
                    transitions.record(alarm.history(key, Event::Resolved, now_ms, silenced));
                    if alarm.firing_notified && !silenced {
                        transitions.notify(Event::Resolved, alarm.view(key, false), now_ms);
                    }
                    resolved = true;
                }
            }
        }
        if resolved {
            self.alarms.remove(key);
            return;
        }
        if alarm.state == AlarmState::Firing && !alarm.firing_notified && !silenced {
            transitions.notify(Event::Firing, alarm.view(key, false), now_ms);
            alarm.firing_notified = true;
        }
        self.alarms.insert(key.to_owned(), alarm);
    }

    fn append_history(&mut self, entries: Vec<HistoryEntry>) {
        if let Some(dir) = &self.state_dir
            && let Err(e) = dir.append_history(&entries)
        {
            tracing::warn!(error = %format!("{e:#}"), "cfa: alarm history not persisted");
        }
        for entry in entries {
            if self.history.len() == HISTORY_IN_MEMORY {
                self.history.pop_front();
            }
            self.history.push_back(entry);
        }
    }

    fn is_silenced(&self, labels: &Labels, now_ms: u64) -> bool {
        self.silences
            .iter()
            .any(|silence| silence.in_force(now_ms) && silence.matches(labels))
    }

    /// The alarms pending or firing now, sorted by key, `silenced` as of `now_ms`.
    #[must_use]
    pub fn alarms(&self, now_ms: u64) -> Vec<AlarmView> {
        self.alarms
            .iter()
            .map(|(key, alarm)| alarm.view(key, self.is_silenced(&alarm.labels, now_ms)))
            .collect()
    }

    /// The newest `limit` history entries, newest last.
    #[must_use]
    pub fn history(&self, limit: usize) -> Vec<HistoryEntry> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.iter().skip(skip).cloned().collect()
    }

    /// Silences every alarm whose labels include all of `matchers` (alarm labels include
    /// `alertname` and `severity`) from `now_ms` until `until_ms`, and persists it. Returns it.
    ///
    /// # Errors
    /// No matchers (that would silence everything), `until_ms` not after `now_ms`, or the
    /// silences file could not be written (the silence is then not created).
    pub fn silence(
        &mut self,
        matchers: Labels,
        until_ms: u64,
        comment: String,
        now_ms: u64,
    ) -> anyhow::Result<Silence> {
        ensure!(
            !matchers.is_empty(),
            "cfa: a silence needs at least one matcher"
        );
        ensure!(
            until_ms > now_ms,
            "cfa: a silence must end after it starts ({until_ms} <= {now_ms})"
        );
        let silence = Silence {
            id: self.next_silence_id,
            matchers,
            until_ms,
            comment,
            created_ms: now_ms,
        };
        let mut silences: Vec<Silence> = self
            .silences
            .iter()
            .filter(|s| s.in_force(now_ms))
            .cloned()
            .collect();
        silences.push(silence.clone());
        if let Some(dir) = &self.state_dir {
            dir.save_silences(&SilencesFile {
                next_id: silence.id + 1,
                silences: silences.clone(),
            })?;
        }
        self.silences = silences;
        self.next_silence_id = silence.id + 1;
        Ok(silence)
    }

    /// The silences in force at `now_ms`, oldest first.
    #[must_use]
    pub fn silences(&self, now_ms: u64) -> Vec<Silence> {
        self.silences
            .iter()
            .filter(|s| s.in_force(now_ms))
            .cloned()
            .collect()
    }
}

/// The failed fraction of `(total, bad)`; 0 when there were no requests.
#[allow(
    clippy::cast_precision_loss,
    reason = "request counts are far below 2^52"
)]
fn error_ratio((total, bad): (u64, u64)) -> f64 {
    if total == 0 {
        0.0
    } else {
        bad as f64 / total as f64
    }
}

/// What one evaluation produced.
#[derive(Default)]
struct Transitions {
    history: Vec<HistoryEntry>,
    notifications: Vec<Notification>,
}

impl Transitions {
    fn record(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
    }

    fn notify(&mut self, event: Event, alarm: AlarmView, at_ms: u64) {
        self.notifications.push(Notification {
            event,
            alarm,
            at_ms,
        });
    }
}
