//! The customer-facing alarm (CFA) engine: turns the canary's request outcomes into alarms about
//! the availability customers see, and puts operational alarms from the other daemons through the
//! same machinery. Pure: no network, no clock (every time is an `*_ms` argument, milliseconds
//! since the Unix epoch), so it is deterministic under test.
//!
//! # The scheme
//!
//! The SLO (`slo`, e.g. 0.999) leaves an error budget of `1 - slo` of requests. A burn rate is how
//! many times faster than sustainable that budget is being spent: an error ratio of
//! `burn_rate * (1 - slo)`. Each [`BurnRule`] watches two windows of one series (one set of
//! labels passed to [`Engine::record`]) and its condition holds when the error ratio over BOTH
//! reaches the rule's threshold, and each window holds at least `min_requests` requests (a window
//! with fewer is not judged). The long window makes the alarm significant (a short spike does not
//! move it); the short window makes it reset soon after the errors stop. The defaults are the SRE
//! workbook's four rules: `page-fast` (1 h and 5 m at 14.4×: 2% of a 30-day budget in an hour),
//! `page-slow` (6 h and 30 m at 6×), `ticket-fast` (1 d and 2 h at 3×) and `ticket-slow` (3 d and
//! 6 h at 1×). `window_scale` multiplies every window and timer, so tests run the real scheme in
//! seconds.
//!
//! Requests are counted in time buckets of 1/20 of the shortest scaled window (15 s with the
//! defaults; see [`Engine::bucket_width_ms`]), holding running totals so that any window costs two
//! binary searches. A window ending at `now` covers the buckets after the one holding
//! `now - window` up to the one holding `now`: windows are exact to one bucket. Buckets older than
//! the longest window plus one bucket are dropped.
//!
//! # The state machine
//!
//! Every alarm has a key: its alertname plus its other labels, sorted (`page-fast{az="a"}`).
//! Inactive → pending when an evaluation sees the condition hold (history `pending`, no
//! notification). Pending → firing once it has held for `pending_for_ms` (0: in that same
//! evaluation; history `firing` and a notification); pending → inactive, silently, if it stops
//! holding first. A firing alarm stays firing, without notifying again, until its condition has
//! been false continuously for `resolve_after_ms` (history `resolved` and a notification); a
//! condition that holds again before that resets the clear timer, so a flapping series neither
//! re-pages nor resolves. Operational conditions ([`Engine::set_condition`]) follow the same
//! states. A silence suppresses the notifications of the alarms it matches while in force; their
//! transitions still reach the history, marked `silenced`. An alarm that fired under a silence is
//! notified as firing when the silence ends if it is still firing, and its resolution is notified
//! only if its firing was. History and silences persist in the state directory; an alarm whose last
//! recorded transition is `firing` is restored as firing at start.
//!
//! # Detection and reset time
//!
//! After a healthy stretch at least as long as the long window, an outage failing a fraction `e`
//! of requests raises the long window's ratio linearly: after `t` it is `e * t / L`. A rule with
//! burn rate `B` detects it when both windows reach `B * (1 - slo)`, that is after
//! `t = B * (1 - slo) * L / e` for the long window and `B * (1 - slo) * S / e` for the short one;
//! the long window decides. For a total outage (`e = 1`) at slo 0.999, `page-fast` fires after
//! `14.4 * 0.001 * 1 h ≈ 52 s` (0.52 s at scale 0.01), `page-slow` after 130 s. An error ratio
//! below `B * (1 - slo)` never fires that rule: 10% errors at slo 0.99 burn 10×, firing
//! `page-slow` (6×) but not `page-fast` (14.4×). Add up to one bucket and one evaluation interval.
//!
//! When the errors stop, the long window stays high for up to `L`, but the short one falls: after
//! an outage at least `S` long, its ratio after `t` of health is `e * (S - t) / S`, below
//! threshold once `t > S * (1 - B * (1 - slo) / e)`. A total outage ends `page-fast`'s condition
//! `300 s * (1 - 0.0144) ≈ 296 s` after recovery, and the alarm resolves `resolve_after_ms` later
//! (5 m by default): about ten minutes after recovery instead of the hour the long window alone
//! would take.

mod alarm;
mod config;
mod engine;
mod payload;
mod series;
mod store;
#[cfg(test)]
mod tests;

pub use alarm::{
    ALERTNAME_LABEL, AlarmState, AlarmView, Event, HistoryEntry, Notification, SEVERITY_LABEL,
    Silence,
};
pub use config::{BurnRule, CfaConfig, Severity};
pub use engine::Engine;
pub use payload::{
    SOURCE, alertmanager_alert, alertmanager_alert_for, rfc3339_ms, webhook_payload,
};
pub use store::{HISTORY_FILE, HISTORY_IN_MEMORY, SILENCES_FILE};

/// The labels of a series or an alarm: label name to value, sorted by name.
pub type Labels = std::collections::BTreeMap<String, String>;
