//! The alarm engine's configuration: the SLO, the burn-rate rules and the hysteresis timers.

use std::collections::BTreeSet;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

/// How urgent an alarm is: `page` wakes someone up, `ticket` waits for working hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Needs a human now.
    Page,
    /// Needs a human soon.
    Ticket,
}

impl Severity {
    /// The label value: `page` or `ticket` (the same spelling as the serde form).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One multiwindow burn-rate rule: fires when the error ratio over BOTH windows is at least
/// `burn_rate * (1 - slo)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRule {
    /// The alertname of the alarms this rule raises; unique among the rules.
    pub name: String,
    /// Severity of those alarms.
    pub severity: Severity,
    /// The long window in ms (before `window_scale`): proves the burn is significant.
    pub long_window_ms: u64,
    /// The short window in ms (before `window_scale`): proves the burn is still going on, so the
    /// alarm resets soon after the errors stop.
    pub short_window_ms: u64,
    /// How many times faster than sustainable the error budget must burn.
    pub burn_rate: f64,
}

impl BurnRule {
    fn new(
        name: &str,
        severity: Severity,
        long_window_ms: u64,
        short_window_ms: u64,
        burn_rate: f64,
    ) -> Self {
        Self {
            name: name.to_owned(),
            severity,
            long_window_ms,
            short_window_ms,
            burn_rate,
        }
    }
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The alarm engine's configuration. Every field has a default, so `{}` is a valid config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CfaConfig {
    /// The availability objective, strictly between 0 and 1 (default 0.999); the error budget is
    /// `1 - slo`.
    pub slo: f64,
    /// Multiplies every window, `pending_for_ms` and `resolve_after_ms` (default 1.0); tests and
    /// demos shrink time with e.g. 0.01.
    pub window_scale: f64,
    /// How long (ms, before scaling) a condition must hold before pending becomes firing
    /// (default 0: fire on the first evaluation that sees it).
    pub pending_for_ms: u64,
    /// How long (ms, before scaling) a firing alarm's condition must stay clear before it
    /// resolves (default 300 000: five minutes of hysteresis).
    pub resolve_after_ms: u64,
    /// A window holding fewer requests than this is not judged: its condition is false
    /// (default 10).
    pub min_requests: u64,
    /// The burn-rate rules (default: the SRE workbook's four multiwindow rules).
    pub rules: Vec<BurnRule>,
}

impl Default for CfaConfig {
    fn default() -> Self {
        Self {
            slo: 0.999,
            window_scale: 1.0,
            pending_for_ms: 0,
            resolve_after_ms: 5 * MINUTE_MS,
            min_requests: 10,
            rules: default_rules(),
        }
    }
}

/// The SRE workbook's multiwindow, multi-burn-rate scheme: 2% of a 30-day budget in an hour
/// pages, 5% in six hours pages, 10% in a day and 10% in three days open tickets.
fn default_rules() -> Vec<BurnRule> {
    vec![
        BurnRule::new("page-fast", Severity::Page, HOUR_MS, 5 * MINUTE_MS, 14.4),
        BurnRule::new(
            "page-slow",
            Severity::Page,
            6 * HOUR_MS,
            30 * MINUTE_MS,
            6.0,
        ),
        BurnRule::new("ticket-fast", Severity::Ticket, DAY_MS, 2 * HOUR_MS, 3.0),
        BurnRule::new(
            "ticket-slow",
            Severity::Ticket,
            3 * DAY_MS,
            6 * HOUR_MS,
            1.0,
        ),
    ]
}

impl CfaConfig {
    /// Checks the config makes sense: `slo` strictly between 0 and 1, `window_scale` positive and
    /// finite, and each rule with a non-empty unique name, windows `0 < short < long` and a
    /// positive finite burn rate.
    ///
    /// # Errors
    /// A one-line message naming the first field that is wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.slo > 0.0 && self.slo < 1.0,
            "cfa: slo must be strictly between 0 and 1, got {}",
            self.slo
        );
        ensure!(
            self.window_scale.is_finite() && self.window_scale > 0.0,
            "cfa: window_scale must be positive, got {}",
            self.window_scale
        );
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            ensure!(!rule.name.is_empty(), "cfa: a rule has an empty name");
            if !names.insert(rule.name.as_str()) {
                bail!("cfa: rule name {:?} is used twice", rule.name);
            }
            ensure!(
                rule.short_window_ms > 0 && rule.long_window_ms > 0,
                "cfa: rule {:?}: windows must be positive",
                rule.name
            );
            ensure!(
                rule.short_window_ms < rule.long_window_ms,
                "cfa: rule {:?}: short_window_ms ({}) must be less than long_window_ms ({})",
                rule.name,
                rule.short_window_ms,
                rule.long_window_ms
            );
            ensure!(
                rule.burn_rate.is_finite() && rule.burn_rate > 0.0,
                "cfa: rule {:?}: burn_rate must be positive, got {}",
                rule.name,
                rule.burn_rate
            );
        }
        Ok(())
    }

    /// `ms` multiplied by `window_scale`, rounded to the nearest ms and at least 1.
    #[must_use]
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "durations are far below 2^52 ms; the float-to-int cast saturates"
    )]
    pub fn scaled(&self, ms: u64) -> u64 {
        ((ms as f64 * self.window_scale).round() as u64).max(1)
    }

    /// The error budget: the fraction of requests allowed to fail, `1 - slo`.
    #[must_use]
    pub fn error_budget(&self) -> f64 {
        1.0 - self.slo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_workbook_rules_and_valid() {
        let config = CfaConfig::default();
        config.validate().unwrap();
        let names: Vec<_> = config.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["page-fast", "page-slow", "ticket-fast", "ticket-slow"]
        );
        assert_eq!(config.rules[0].long_window_ms, 3_600_000);
        assert_eq!(config.rules[0].short_window_ms, 300_000);
        assert!((config.rules[0].burn_rate - 14.4).abs() < 1e-12);
        assert_eq!(config.rules[3].long_window_ms, 3 * 86_400_000);
    }

    #[test]
    fn an_empty_json_object_is_the_default_config() {
        let config: CfaConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, CfaConfig::default());
        let partial: CfaConfig =
            serde_json::from_str(r#"{"slo":0.99,"window_scale":0.01}"#).unwrap();
        assert_eq!(partial.rules, CfaConfig::default().rules);
        assert!(serde_json::from_str::<CfaConfig>(r#"{"slos":0.99}"#).is_err());
    }

    #[test]
    fn validate_rejects_each_bad_field() {
        let bad = |edit: fn(&mut CfaConfig)| {
            let mut config = CfaConfig::default();
            edit(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.slo = 1.0).contains("slo"));
        assert!(bad(|c| c.slo = 0.0).contains("slo"));
        assert!(bad(|c| c.window_scale = 0.0).contains("window_scale"));
        assert!(bad(|c| c.window_scale = f64::NAN).contains("window_scale"));
        assert!(bad(|c| c.rules[1].name.clear()).contains("empty name"));
        assert!(bad(|c| c.rules[1].name = "page-fast".into()).contains("twice"));
        assert!(
            bad(|c| c.rules[0].short_window_ms = c.rules[0].long_window_ms).contains("less than")
        );
        assert!(bad(|c| c.rules[0].short_window_ms = 0).contains("positive"));
        assert!(bad(|c| c.rules[0].burn_rate = 0.0).contains("burn_rate"));
    }

    #[test]
    fn scaled_multiplies_and_never_reaches_zero() {
        let config = CfaConfig {
            window_scale: 0.01,
            ..CfaConfig::default()
        };
        assert_eq!(config.scaled(3_600_000), 36_000);
        assert_eq!(config.scaled(300_000), 3_000);
        assert_eq!(config.scaled(10), 1);
        assert_eq!(config.scaled(0), 1);
        assert_eq!(CfaConfig::default().scaled(1234), 1234);
    }
}
