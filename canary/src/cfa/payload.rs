//! The JSON receivers get: our webhook's payload and Alertmanager's v2 alert.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{AlarmView, Event, Notification};

/// Where a notification says it came from.
pub const SOURCE: &str = "ddb-canary";

/// The JSON a webhook receives for one notification:
/// `{"version":"1","event","key","alertname","severity","labels","summary","at","firing_since",
/// "source":"ddb-canary"}`, with `at` and `firing_since` in RFC 3339 (UTC, milliseconds) and
/// `firing_since` null for an alarm that never fired.
#[must_use]
pub fn webhook_payload(notification: &Notification) -> Value {
    let alarm = &notification.alarm;
    json!({
        "version": "1",
        "event": notification.event,
        "key": alarm.key,
        "alertname": alarm.name,
        "severity": alarm.severity,
        "labels": alarm.labels,
        "summary": alarm.summary,
        "at": rfc3339_ms(notification.at_ms),
        "firing_since": alarm.firing_since_ms.map(rfc3339_ms),
        "source": SOURCE,
    })
}

/// One alert in Alertmanager's v2 API format, an element of the array POSTed to
/// `/api/v2/alerts`: `labels` (with `alertname` and `severity`), `annotations.summary`,
/// `startsAt` (when it fired, or became pending if it has not), `endsAt` when `ends_at_ms` is
/// given (a resolved alert; omitted otherwise) and `generatorURL`.
#[must_use]
pub fn alertmanager_alert(
    alarm: &AlarmView,
    ends_at_ms: Option<u64>,
    generator_url: &str,
) -> Value {
    let mut alert = json!({
        "labels": alarm.labels,
        "annotations": { "summary": alarm.summary },
        "startsAt": rfc3339_ms(alarm.firing_since_ms.unwrap_or(alarm.since_ms)),
        "generatorURL": generator_url,
    });
    if let (Some(ends_at_ms), Some(fields)) = (ends_at_ms, alert.as_object_mut()) {
        fields.insert("endsAt".to_owned(), Value::String(rfc3339_ms(ends_at_ms)));
    }
    alert
}

/// The Alertmanager alert for a notification: resolved ones end at the notification's time.
#[must_use]
pub fn alertmanager_alert_for(notification: &Notification, generator_url: &str) -> Value {
    let ends_at_ms = (notification.event == Event::Resolved).then_some(notification.at_ms);
    alertmanager_alert(&notification.alarm, ends_at_ms, generator_url)
}

/// `ms` since the Unix epoch as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-01-02T03:04:05.678Z`; times past chrono's range print as its latest instant.
#[must_use]
pub fn rfc3339_ms(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::super::{AlarmState, Labels, Severity};
    use super::*;

    fn firing_alarm() -> AlarmView {
        let labels: Labels = [
            ("alertname", "page-fast"),
            ("severity", "page"),
            ("az", "a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        AlarmView {
            key: r#"page-fast{az="a"}"#.to_owned(),
            name: "page-fast".to_owned(),
            labels,
            severity: Severity::Page,
            state: AlarmState::Firing,
            since_ms: 1_700_000_000_000,
            firing_since_ms: Some(1_700_000_060_500),
            silenced: false,
            summary: "error ratio 100.0% over 1h".to_owned(),
            long_ratio: Some(1.0),
            short_ratio: Some(1.0),
        }
    }

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_060_500), "2023-11-14T22:14:20.500Z");
        assert!(rfc3339_ms(u64::MAX).starts_with("+262142-12-31T23:59:59.999"));
    }

    #[test]
    fn webhook_payload_has_every_documented_field() {
        let notification = Notification {
            event: Event::Firing,
            alarm: firing_alarm(),
            at_ms: 1_700_000_060_500,
        };
        let payload = webhook_payload(&notification);
        assert_eq!(
            payload,
            json!({
                "version": "1",
                "event": "firing",
                "key": "page-fast{az=\"a\"}",
                "alertname": "page-fast",
                "severity": "page",
                "labels": {"alertname": "page-fast", "severity": "page", "az": "a"},
                "summary": "error ratio 100.0% over 1h",
                "at": "2023-11-14T22:14:20.500Z",
                "firing_since": "2023-11-14T22:14:20.500Z",
                "source": "ddb-canary",
            })
        );
        let mut pending = notification;
        pending.alarm.firing_since_ms = None;
        assert_eq!(webhook_payload(&pending)["firing_since"], Value::Null);
    }

    #[test]
    fn alertmanager_alert_starts_when_it_fired_and_ends_only_when_resolved() {
        let alarm = firing_alarm();
        let firing = alertmanager_alert(&alarm, None, "http://canary:9100/alarms");
        assert_eq!(
            firing,
            json!({
                "labels": {"alertname": "page-fast", "severity": "page", "az": "a"},
                "annotations": {"summary": "error ratio 100.0% over 1h"},
                "startsAt": "2023-11-14T22:14:20.500Z",
                "generatorURL": "http://canary:9100/alarms",
            })
        );
        let resolved = alertmanager_alert_for(
            &Notification {
                event: Event::Resolved,
                alarm: alarm.clone(),
                at_ms: 1_700_000_360_000,
            },
            "",
        );
        assert_eq!(resolved["endsAt"], "2023-11-14T22:19:20.000Z");
        let mut pending = alarm;
        pending.firing_since_ms = None;
        assert_eq!(
            alertmanager_alert(&pending, None, "")["startsAt"],
            "2023-11-14T22:13:20.000Z"
        );
    }
}
