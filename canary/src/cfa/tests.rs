//! The engine's behaviour: detection and reset times, the state machine, silences, persistence.

#![allow(clippy::unwrap_used)]

use super::*;

/// A realistic epoch so bucket arithmetic is not helped by starting at zero.
const T0: u64 = 1_700_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn endpoint() -> Labels {
    labels(&[("endpoint", "http://n1:8000"), ("az", "a")])
}

fn scaled_config(scale: f64) -> CfaConfig {
    CfaConfig {
        window_scale: scale,
        ..CfaConfig::default()
    }
}

fn only_rule(mut config: CfaConfig, name: &str) -> CfaConfig {
    config.rules.retain(|rule| rule.name == name);
    config
}

/// One request every 100 ms in `[from_ms, to_ms)`, failed when `bad_at` says so, evaluating every
/// `evaluate_every_ms` right after recording; returns the notifications.
fn drive(
    engine: &mut Engine,
    series: &Labels,
    (from_ms, to_ms): (u64, u64),
    evaluate_every_ms: u64,
    bad_at: impl Fn(u64) -> bool,
) -> Vec<Notification> {
    let mut notifications = Vec::new();
    for at in (from_ms..to_ms).step_by(100) {
        let bad = bad_at(at);
        engine.record(series, at, u64::from(!bad), u64::from(bad));
        if (at - from_ms).is_multiple_of(evaluate_every_ms) {
            notifications.extend(engine.evaluate(at));
        }
    }
    notifications
}

fn first(notifications: &[Notification], event: Event, name: &str) -> Option<u64> {
    notifications
        .iter()
        .find(|n| n.event == event && n.alarm.name == name)
        .map(|n| n.at_ms)
}

fn count(notifications: &[Notification], event: Event, name: &str) -> usize {
    notifications
        .iter()
        .filter(|n| n.event == event && n.alarm.name == name)
        .count()
}

/// A full hour healthy at 10 requests a second, then everything fails: the hour's ratio reaches
/// 14.4 × 0.1% after 0.0144 × 3600 s = 51.84 s, and `page-fast` fires at the first evaluation
/// after that, within one bucket.
#[test]
fn page_fast_fires_52_seconds_into_a_total_outage() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    assert_eq!(engine.bucket_width_ms(), 15_000);
    let series = endpoint();
    let outage_ms = T0 + 3_600_000;
    let healthy = drive(&mut engine, &series, (T0, outage_ms), 1_000, |_| false);
    assert!(healthy.is_empty(), "{healthy:?}");
    let outage = drive(
        &mut engine,
        &series,
        (outage_ms, outage_ms + 120_000),
        1_000,
        |_| true,
    );
    let fired_after_ms = first(&outage, Event::Firing, "page-fast").unwrap() - outage_ms;
    assert!(
        fired_after_ms.abs_diff(51_840) <= engine.bucket_width_ms(),
        "fired {fired_after_ms} ms into the outage"
    );
    assert_eq!(count(&outage, Event::Firing, "page-fast"), 1);
    let alarm = &outage
        .iter()
        .find(|n| n.alarm.name == "page-fast")
        .unwrap()
        .alarm;
    assert_eq!(alarm.key, r#"page-fast{az="a",endpoint="http://n1:8000"}"#);
    assert_eq!(alarm.labels["alertname"], "page-fast");
    assert_eq!(alarm.labels["severity"], "page");
    assert_eq!(alarm.labels["endpoint"], "http://n1:8000");
    assert!(alarm.long_ratio.unwrap() >= 0.0144 && alarm.short_ratio.unwrap() > 0.14);
    assert!(
        alarm
            .summary
            .starts_with("error ratio 1.4% over 1h and 17.")
            && alarm.summary.ends_with("(threshold 14.4x)"),
        "{}",
        alarm.summary
    );
}

/// The same outage with every window scaled by 0.01 is detected in about 0.52 s.
#[test]
fn page_fast_fires_half_a_second_into_an_outage_at_scale_one_hundredth() {
    let mut engine = Engine::new(only_rule(scaled_config(0.01), "page-fast"), None).unwrap();
    assert_eq!(engine.bucket_width_ms(), 150);
    let series = endpoint();
    let outage_ms = T0 + 36_000;
    assert!(drive(&mut engine, &series, (T0, outage_ms), 100, |_| false).is_empty());
    let outage = drive(
        &mut engine,
        &series,
        (outage_ms, outage_ms + 2_000),
        100,
        |_| true,
    );
    let fired_after_ms = first(&outage, Event::Firing, "page-fast").unwrap() - outage_ms;
    assert!(
        fired_after_ms.abs_diff(518) <= engine.bucket_width_ms(),
        "fired {fired_after_ms} ms into the outage"
    );
}

#[test]
fn ten_percent_errors_at_slo_99_fire_page_slow_but_not_page_fast() {
    let config = CfaConfig {
        slo: 0.99,
        ..scaled_config(0.01)
    };
    let mut engine = Engine::new(config, None).unwrap();
    let series = endpoint();
    let mut notifications = Vec::new();
    for at in (T0..T0 + 300_000).step_by(100) {
        engine.record(&series, at, 9, 1);
        if at.is_multiple_of(1_000) {
            notifications.extend(engine.evaluate(at));
        }
    }
    assert_eq!(count(&notifications, Event::Firing, "page-slow"), 1);
    assert_eq!(count(&notifications, Event::Firing, "page-fast"), 0);
    let firing: Vec<_> = engine.alarms(T0 + 300_000);
    assert!(firing.iter().all(|alarm| alarm.name != "page-fast"));
    let page_slow = firing.iter().find(|a| a.name == "page-slow").unwrap();
    assert!((page_slow.long_ratio.unwrap() - 0.1).abs() < 1e-9);
}

#[test]
fn a_healthy_series_fires_nothing() {
    let mut engine = Engine::new(scaled_config(0.01), None).unwrap();
    let notifications = drive(&mut engine, &endpoint(), (T0, T0 + 60_000), 500, |_| false);
    assert!(notifications.is_empty());
    assert!(engine.alarms(T0 + 60_000).is_empty());
    assert!(engine.history(100).is_empty());
}

#[test]
fn windows_with_fewer_than_min_requests_are_not_judged() {
    let mut engine = Engine::new(only_rule(scaled_config(0.01), "page-fast"), None).unwrap();
    let series = endpoint();
    // Every request fails, but the 3 s short window of page-fast never holds 10 of them.
    for at in (T0..T0 + 60_000).step_by(1_000) {
        engine.record(&series, at, 0, 1);
        assert!(engine.evaluate(at).is_empty());
    }
    assert!(engine.window_counts(&series, 3_000, T0 + 59_000).0 < 10);
    // Page-slow's 18 s short window does hold 10, and it fires: the guard is per window.
    let mut engine = Engine::new(scaled_config(0.01), None).unwrap();
    let mut notifications = Vec::new();
    for at in (T0..T0 + 60_000).step_by(1_000) {
        engine.record(&series, at, 0, 1);
        notifications.extend(engine.evaluate(at));
    }
    assert_eq!(count(&notifications, Event::Firing, "page-fast"), 0);
    assert_eq!(count(&notifications, Event::Firing, "page-slow"), 1);
}

/// After a 5 s outage (longer than the 3 s short window) the short window's ratio falls below
/// 1.44% about 3 s × (1 − 0.0144) ≈ 2.96 s after recovery, while the long window is still far
/// above; the alarm resolves `resolve_after` (3 s scaled) later, once.
#[test]
fn an_alarm_resets_when_the_short_window_clears_plus_resolve_after() {
    let mut engine = Engine::new(only_rule(scaled_config(0.01), "page-fast"), None).unwrap();
    let series = endpoint();
    let outage_ms = T0 + 36_000;
    let recovery_ms = outage_ms + 5_000;
    let mut notifications = drive(&mut engine, &series, (T0, recovery_ms + 4_000), 100, |at| {
        (outage_ms..recovery_ms).contains(&at)
    });
    let clearing = engine.alarms(recovery_ms + 4_000);
    assert_eq!(clearing.len(), 1);
    assert_eq!(clearing[0].state, AlarmState::Firing);
    assert!(clearing[0].long_ratio.unwrap() > 0.0144);
    assert!(clearing[0].short_ratio.unwrap() < 0.0144);
    notifications.extend(drive(
        &mut engine,
        &series,
        (recovery_ms + 4_000, recovery_ms + 20_000),
        100,
        |_| false,
    ));
    assert_eq!(count(&notifications, Event::Firing, "page-fast"), 1);
    assert_eq!(count(&notifications, Event::Resolved, "page-fast"), 1);
    let resolved_after_ms =
        first(&notifications, Event::Resolved, "page-fast").unwrap() - recovery_ms;
    // One bucket, one request interval and one evaluation interval of slack.
    assert!(
        resolved_after_ms.abs_diff(2_957 + 3_000) <= 150 + 100 + 100,
        "resolved {resolved_after_ms} ms after recovery"
    );
    assert!(engine.alarms(recovery_ms + 20_000).is_empty());
    let events: Vec<_> = engine.history(10).iter().map(|e| e.event).collect();
    assert_eq!(events, [Event::Pending, Event::Firing, Event::Resolved]);
}

fn archive_lag() -> Labels {
    labels(&[("node", "n2")])
}

#[test]
fn a_condition_pends_for_pending_for_and_a_blip_never_notifies() {
    let config = CfaConfig {
        pending_for_ms: 10_000,
        ..CfaConfig::default()
    };
    let mut engine = Engine::new(config, None).unwrap();
    let instance = archive_lag();
    engine.set_condition(
        "archive-lag",
        &instance,
        true,
        Severity::Ticket,
        "lag 90 s",
        T0,
    );
    assert!(engine.evaluate(T0).is_empty());
    let pending = engine.alarms(T0);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, AlarmState::Pending);
    assert_eq!(pending[0].key, r#"archive-lag{node="n2"}"#);
    assert_eq!(pending[0].labels["severity"], "ticket");
    assert!(engine.evaluate(T0 + 5_000).is_empty());
    engine.set_condition(
        "archive-lag",
        &instance,
        false,
        Severity::Ticket,
        "ok",
        T0 + 6_000,
    );
    assert!(engine.evaluate(T0 + 6_000).is_empty());
    assert!(engine.alarms(T0 + 6_000).is_empty());

    engine.set_condition(
        "archive-lag",
        &instance,
        true,
        Severity::Ticket,
        "lag 95 s",
        T0 + 10_000,
    );
    assert!(engine.evaluate(T0 + 10_000).is_empty());
    assert!(engine.evaluate(T0 + 19_999).is_empty());
    let firing = engine.evaluate(T0 + 20_000);
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].event, Event::Firing);
    assert_eq!(firing[0].alarm.since_ms, T0 + 10_000);
    assert_eq!(firing[0].alarm.firing_since_ms, Some(T0 + 20_000));
    assert_eq!(firing[0].alarm.summary, "lag 95 s");
    let events: Vec<_> = engine.history(10).iter().map(|e| e.event).collect();
    assert_eq!(events, [Event::Pending, Event::Pending, Event::Firing]);
}

#[test]
fn a_flapping_condition_stays_firing_and_notifies_once_each_way() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    let instance = archive_lag();
    let set = |engine: &mut Engine, active: bool, at: u64| {
        engine.set_condition(
            "replica-down",
            &instance,
            active,
            Severity::Page,
            "n2 down",
            at,
        );
        engine.evaluate(at)
    };
    let fired = set(&mut engine, true, T0);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].event, Event::Firing);
    assert!(set(&mut engine, true, T0 + 1_000).is_empty());
    assert!(set(&mut engine, false, T0 + 2_000).is_empty());
    assert!(engine.evaluate(T0 + 100_000).is_empty());
    // True again before resolve_after (5 min): still firing, clear timer reset.
    assert!(set(&mut engine, true, T0 + 200_000).is_empty());
    assert!(set(&mut engine, false, T0 + 250_000).is_empty());
    assert!(engine.evaluate(T0 + 549_999).is_empty());
    assert_eq!(engine.alarms(T0 + 549_999)[0].state, AlarmState::Firing);
    let resolved = engine.evaluate(T0 + 550_000);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].event, Event::Resolved);
    assert_eq!(resolved[0].alarm.firing_since_ms, Some(T0));
    assert!(engine.alarms(T0 + 550_000).is_empty());
    assert!(engine.evaluate(T0 + 600_000).is_empty());
    let events: Vec<_> = engine.history(10).iter().map(|e| e.event).collect();
    assert_eq!(events, [Event::Pending, Event::Firing, Event::Resolved]);
}

#[test]
fn a_condition_named_like_a_rule_is_ignored() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    engine.set_condition("page-fast", &Labels::new(), true, Severity::Page, "", T0);
    assert!(engine.evaluate(T0).is_empty());
    assert!(engine.alarms(T0).is_empty());
}

#[test]
fn a_silence_suppresses_notifications_but_not_history() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    let silence = engine
        .silence(
            labels(&[("alertname", "archive-lag")]),
            T0 + 60_000,
            "known: bucket migration".to_owned(),
            T0,
        )
        .unwrap();
    assert_eq!(engine.silences(T0 + 59_999), std::slice::from_ref(&silence));
    engine.set_condition(
        "archive-lag",
        &archive_lag(),
        true,
        Severity::Ticket,
        "lag",
        T0,
    );
    engine.set_condition(
        "scrub-mismatch",
        &archive_lag(),
        true,
        Severity::Page,
        "diff",
        T0,
    );
    let notifications = engine.evaluate(T0);
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].alarm.name, "scrub-mismatch");
    let views = engine.alarms(T0);
    assert!(views.iter().any(|a| a.name == "archive-lag" && a.silenced));
    assert!(
        views
            .iter()
            .any(|a| a.name == "scrub-mismatch" && !a.silenced)
    );
    let silenced_firing = engine
        .history(10)
        .into_iter()
        .find(|e| e.name == "archive-lag" && e.event == Event::Firing)
        .unwrap();
    assert!(silenced_firing.silenced);

    // Still firing when the silence ends: receivers hear about it then, once.
    assert!(engine.evaluate(T0 + 30_000).is_empty());
    let late = engine.evaluate(T0 + 60_000);
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].event, late[0].alarm.name.as_str()),
        (Event::Firing, "archive-lag")
    );
    assert_eq!(late[0].alarm.firing_since_ms, Some(T0));
    assert!(engine.evaluate(T0 + 61_000).is_empty());
    assert!(engine.silences(T0 + 60_000).is_empty());
}

#[test]
fn a_resolution_under_a_silence_is_not_notified() {
    let config = CfaConfig {
        resolve_after_ms: 0,
        ..CfaConfig::default()
    };
    let mut engine = Engine::new(config, None).unwrap();
    engine.set_condition(
        "replica-down",
        &archive_lag(),
        true,
        Severity::Page,
        "down",
        T0,
    );
    assert_eq!(engine.evaluate(T0).len(), 1);
    engine
        .silence(
            labels(&[("severity", "page")]),
            T0 + 10_000,
            String::new(),
            T0 + 1,
        )
        .unwrap();
    engine.set_condition(
        "replica-down",
        &archive_lag(),
        false,
        Severity::Page,
        "up",
        T0 + 2,
    );
    assert!(engine.evaluate(T0 + 2).is_empty());
    let resolved = engine.history(1).pop().unwrap();
    assert_eq!((resolved.event, resolved.silenced), (Event::Resolved, true));
    assert!(engine.alarms(T0 + 2).is_empty());
}

#[test]
fn silences_need_matchers_and_a_future_end() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    assert!(
        engine
            .silence(Labels::new(), T0 + 1, String::new(), T0)
            .is_err()
    );
    assert!(
        engine
            .silence(labels(&[("az", "a")]), T0, String::new(), T0)
            .is_err()
    );
    let first = engine
        .silence(labels(&[("az", "a")]), T0 + 1, String::new(), T0)
        .unwrap();
    let second = engine
        .silence(labels(&[("az", "b")]), T0 + 1, String::new(), T0)
        .unwrap();
    assert_eq!((first.id, second.id), (1, 2));
}

#[test]
fn history_silences_and_firing_alarms_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let instance = archive_lag();
    let (history, silence) = {
        let mut engine = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
        let silence = engine
            .silence(
                labels(&[("az", "b")]),
                T0 + 3_600_000,
                "drill".to_owned(),
                T0,
            )
            .unwrap();
        engine.set_condition(
            "replica-down",
            &instance,
            true,
            Severity::Page,
            "n2 down",
            T0,
        );
        assert_eq!(engine.evaluate(T0).len(), 1);
        (engine.history(100), silence)
    };
    assert_eq!(history.len(), 2);
    let lines = std::fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap();
    let parsed: Vec<HistoryEntry> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(parsed, history);

    let mut engine = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
    assert_eq!(engine.history(100), history);
    assert_eq!(engine.silences(T0 + 1_000), std::slice::from_ref(&silence));
    let restored = engine.alarms(T0 + 1_000);
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].state, AlarmState::Firing);
    assert_eq!(restored[0].firing_since_ms, Some(T0));
    // Still down after the restart: no second page.
    engine.set_condition(
        "replica-down",
        &instance,
        true,
        Severity::Page,
        "n2 down",
        T0 + 1_000,
    );
    assert!(engine.evaluate(T0 + 1_000).is_empty());
    // Silence ids are not reused.
    let next = engine
        .silence(
            labels(&[("az", "c")]),
            T0 + 2_000,
            String::new(),
            T0 + 1_000,
        )
        .unwrap();
    assert_eq!(next.id, silence.id + 1);
    drop(engine);

    // Restarted again and never told about the condition: it resolves after resolve_after.
    let mut engine = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
    assert_eq!(engine.silences(T0 + 1_500).len(), 2);
    assert!(engine.evaluate(T0 + 2_000).is_empty());
    let resolved = engine.evaluate(T0 + 302_000);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].event, Event::Resolved);
    let reread = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
    assert_eq!(reread.history(1)[0].event, Event::Resolved);
    assert!(reread.alarms(T0 + 302_000).is_empty());
}

#[test]
fn a_torn_history_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut engine = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
        engine.set_condition(
            "replica-down",
            &archive_lag(),
            true,
            Severity::Page,
            "down",
            T0,
        );
        engine.evaluate(T0);
    }
    let path = dir.path().join(HISTORY_FILE);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"at_ms\":17000");
    std::fs::write(&path, text).unwrap();
    let engine = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap();
    assert_eq!(engine.history(100).len(), 2);
}

#[test]
fn a_corrupt_silences_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SILENCES_FILE), "not json").unwrap();
    let error = Engine::new(CfaConfig::default(), Some(dir.path())).unwrap_err();
    assert!(format!("{error:#}").contains(SILENCES_FILE), "{error:#}");
}

#[test]
fn an_invalid_config_is_refused() {
    let config = CfaConfig {
        slo: 1.5,
        ..CfaConfig::default()
    };
    assert!(Engine::new(config, None).is_err());
}

#[test]
fn history_returns_the_newest_entries_newest_last() {
    let mut engine = Engine::new(CfaConfig::default(), None).unwrap();
    for i in 0..5_u64 {
        engine.set_condition(
            &format!("c{i}"),
            &Labels::new(),
            true,
            Severity::Ticket,
            "",
            T0 + i,
        );
        engine.evaluate(T0 + i);
    }
    let newest: Vec<_> = engine
        .history(3)
        .into_iter()
        .map(|e| (e.name, e.event))
        .collect();
    assert_eq!(
        newest,
        [
            ("c3".to_owned(), Event::Firing),
            ("c4".to_owned(), Event::Pending),
            ("c4".to_owned(), Event::Firing)
        ]
    );
    assert_eq!(engine.history(100).len(), 10);
}

#[test]
fn window_counts_take_real_milliseconds_and_series_are_listed() {
    let mut engine = Engine::new(scaled_config(0.01), None).unwrap();
    // Aligned to the 150 ms buckets, so the windows below are exact.
    let base = 150 * 11_333_333_334;
    let a = endpoint();
    let b = labels(&[("endpoint", "http://n2:8000")]);
    let every_tenth = |at: u64| (at - base).is_multiple_of(1_000);
    drive(&mut engine, &a, (base, base + 10_000), 1_000, every_tenth);
    engine.record(&b, base, 3, 1);
    assert_eq!(engine.window_counts(&a, 10_000, base + 9_999), (100, 10));
    // 3 s is 20 buckets, 6.9 s to 9.9 s: 30 requests, 3 failed.
    assert_eq!(engine.window_counts(&a, 3_000, base + 9_899), (30, 3));
    assert_eq!(engine.window_counts(&a, 3_000, base + 9_749), (30, 3));
    // The next bucket starts at 9.9 s: the window moves on by a whole bucket, 6.9 s to 7.05 s.
    assert_eq!(engine.window_counts(&a, 3_000, base + 9_900), (29, 2));
    assert_eq!(engine.window_counts(&b, 1_000, base), (4, 1));
    assert_eq!(engine.window_counts(&labels(&[]), 1_000, base), (0, 0));
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(engine.series(), expected);
}

#[test]
fn buckets_older_than_the_longest_window_are_dropped() {
    let config = only_rule(scaled_config(0.01), "page-fast");
    let mut engine = Engine::new(config, None).unwrap();
    let series = endpoint();
    // 36 s long window; record for 200 s.
    drive(&mut engine, &series, (T0, T0 + 200_000), 10_000, |_| false);
    let now = T0 + 199_900;
    let (retained, _) = engine.window_counts(&series, 200_000, now);
    // The 36 s window holds 360 requests; at most two more buckets (3 requests) are kept.
    assert!(
        (360..=363).contains(&retained),
        "{retained} requests retained"
    );
}
