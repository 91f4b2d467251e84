//! ddb-canary: measures the availability customers see and raises customer-facing alarms.
//!
//! One canary runs per AZ. A thread per endpoint probes it every `interval_ms` with the mix
//! a customer makes ([`probe`]); every call is counted by `{op, az, endpoint, outcome}`
//! ([`measure`]) and fed, as good or bad, to the alarm engine ([`cfa`]) under the series
//! `{source="canary", az, endpoint}`. Every `evaluate_every_ms` the canary also reads the
//! nodes' own request counters (series `{source="node", node}`) and the other daemons'
//! operational conditions ([`ops`]), evaluates every alarm, and sends what changed to the
//! webhook and to Alertmanager. How it works: `docs/canary.md`.

pub mod cfa;
pub mod config;
pub mod measure;
pub mod ops;
pub mod probe;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ddb::client::{Client, ClientConfig};
use ddb::service::now_ms;
use ddb::sigv4::Credential;
use serde::Deserialize;

use cfa::{Engine, Labels, Notification};
pub use config::CanaryConfig;
use measure::Measurements;

struct Shared {
    engine: Mutex<Engine>,
    measurements: Mutex<Measurements>,
    /// Notifications sent and failed, by target (`webhook`, `alertmanager`).
    delivered: Mutex<BTreeMap<(&'static str, bool), u64>>,
    rounds: AtomicU64,
    /// Set once the canary's table takes writes (through any endpoint: one that is down from
    /// the start is measured as down, not left unmeasured).
    table_ready: AtomicBool,
    /// When the canary started and when a probe round last completed (ms since the epoch).
    started_ms: u64,
    last_round_ms: AtomicU64,
    /// Probe interval, ms.
    interval_ms: u64,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The alarm engine's series for what the canary in `az` saw through `endpoint`.
#[must_use]
pub fn canary_series(az: &str, endpoint: &str) -> Labels {
    [("source", "canary"), ("az", az), ("endpoint", endpoint)]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The alarm engine's series for what node `node` answered, by its own counters.
#[must_use]
pub fn node_series(node: &str) -> Labels {
    [("source", "node"), ("node", node)]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Runs the canary until `shutdown` completes; `ready` is called once it serves.
pub async fn run(
    config: CanaryConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let engine = Engine::new(config.cfa.clone(), Some(&config.data_dir))
        .context("loading the alarm history")?;
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        measurements: Mutex::new(Measurements::new(
            &config.az,
            config.window_ms,
            config.windows_kept,
        )),
        delivered: Mutex::new(BTreeMap::new()),
        rounds: AtomicU64::new(0),
        table_ready: AtomicBool::new(false),
        started_ms: now_ms(),
        last_round_ms: AtomicU64::new(0),
        interval_ms: config.interval_ms,
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/report", get(report))
        .route("/alarms", get(alarms))
        .route("/alarms/history", get(history))
        .route("/silences", post(silence))
        .with_state(Arc::clone(&shared));
    let address = ddb::service::serve_http(config.listen, app).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut probes = Vec::new();
    for endpoint in &config.endpoints {
        let client = client(&config, endpoint)?;
        let (shared, stop, config) = (Arc::clone(&shared), Arc::clone(&stop), config.clone());
        probes.push(
            std::thread::Builder::new()
                .name("ddb-canary-probe".to_string())
                .spawn(move || probe_loop(&config, client, &shared, &stop))?,
        );
    }
    tracing::info!(az = %config.az, endpoints = ?config.endpoints, %address, "probing");
    ready(address);
    ddb::service::spawn_watchdog();

    let watched = ops::Watched {
        nodes: config.nodes.clone(),
        archivers: config.archivers.clone(),
        scrubber: config.scrubber.clone(),
        archive_lag_alarm_seconds: config.archive_lag_alarm_seconds,
    };
    let mut tracker = ops::ConditionTracker::new(config.cfa.scaled(config.condition_hold_ms));
    let mut node_totals: BTreeMap<String, ops::NodeTotals> = BTreeMap::new();
    let mut last_resend = 0u64;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(config.evaluate_every_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let scraped = {
            let watched = watched.clone();
            tokio::task::spawn_blocking(move || ops::scrape(&watched))
                .await
                .unwrap_or_default()
        };
        let now = now_ms();
        let notifications = {
            let mut engine = locked(&shared.engine);
            for (node, (ok, failed)) in &scraped.node_totals {
                if let Some((ok_before, failed_before)) = node_totals.get(node) {
                    // A restarted node counts from zero again.
                    let good = ok.checked_sub(*ok_before).unwrap_or(*ok);
                    let bad = failed.checked_sub(*failed_before).unwrap_or(*failed);
                    engine.record(&node_series(node), now, good, bad);
                }
                node_totals.insert(node.clone(), (*ok, *failed));
            }
            for (name, labels, active, severity, summary) in
                tracker.update(&scraped.conditions, now)
            {
                engine.set_condition(&name, &labels, active, severity, &summary, now);
            }
            engine.evaluate(now)
        };
        let resend = config.alertmanager_url.is_some()
            && now.saturating_sub(last_resend) >= config.alertmanager_resend_ms;
        let firing: Vec<cfa::AlarmView> = if resend {
            last_resend = now;
            locked(&shared.engine)
                .alarms(now)
                .into_iter()
                .filter(|alarm| alarm.state == cfa::AlarmState::Firing && !alarm.silenced)
                .collect()
        } else {
            Vec::new()
        };
        if notifications.is_empty() && firing.is_empty() {
            continue;
        }
        for notification in &notifications {
            tracing::warn!(
                event = ?notification.event,
                alarm = %notification.alarm.key,
                summary = %notification.alarm.summary,
                "ALARM {:?}: {}",
                notification.event,
                notification.alarm.name
            );
        }
        let (agent, config, shared) = (agent.clone(), config.clone(), Arc::clone(&shared));
        tokio::task::spawn_blocking(move || {
            deliver(&agent, &config, &shared, &notifications, &firing);
        });
    }
    stop.store(true, Ordering::Relaxed);
    for probe in probes {
        let _ = probe.join();
    }
    Ok(())
}

fn client(config: &CanaryConfig, endpoint: &str) -> anyhow::Result<Client> {
    Client::new(ClientConfig {
        endpoint: endpoint.to_string(),
        credential: Credential::new(
            config.access_key_id.as_deref().unwrap_or_default(),
            config.secret_access_key.as_deref().unwrap_or_default(),
        ),
        session_token: None,
        region: config.region.clone(),
        timeout: Duration::from_millis(config.timeout_ms),
    })
    .with_context(|| format!("endpoint {endpoint}"))
}

/// Probes one endpoint until `stop`: one round every `interval_ms`, the table created first
/// (and again if it disappears).
fn probe_loop(config: &CanaryConfig, client: Client, shared: &Shared, stop: &AtomicBool) {
    let endpoint = client.endpoint().to_string();
    let series = canary_series(&config.az, &endpoint);
    let interval = Duration::from_millis(config.interval_ms);
    let mut probe = probe::Probe::new(client, &config.table, &config.az);
    while !stop.load(Ordering::Relaxed) {
        let started = std::time::Instant::now();
        if !shared.table_ready.load(Ordering::Acquire) {
            // Setting up is not measured: a table still settling is nobody's outage. Any
            // endpoint's probe may do it.
            match probe::ensure_table(
                probe.client(),
                &config.table,
                config.table_capacity_units,
                interval,
            ) {
                Ok(()) => shared.table_ready.store(true, Ordering::Release),
                Err(reason) => {
                    tracing::debug!(%endpoint, %reason, "canary table not ready through this endpoint");
                }
            }
        }
        if shared.table_ready.load(Ordering::Acquire) {
            let calls = probe.round();
            let at = now_ms();
            let (mut good, mut bad) = (0, 0);
            {
                let mut measurements = locked(&shared.measurements);
                for call in &calls {
                    measurements.record(&endpoint, call, at);
                    match call.outcome.against_availability() {
                        Some(true) => bad += 1,
                        Some(false) => good += 1,
                        None => {}
                    }
                    if let Some(detail) = &call.detail {
                        tracing::debug!(%endpoint, op = call.op, outcome = call.outcome.label(), %detail, "probe call failed");
                    }
                }
            }
            locked(&shared.engine).record(&series, at, good, bad);
            shared.rounds.fetch_add(1, Ordering::Relaxed);
            shared.last_round_ms.store(at, Ordering::Relaxed);
            if probe.table_missing {
                probe.table_missing = false;
                shared.table_ready.store(false, Ordering::Release);
            }
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// Sends `notifications` to the webhook (one POST each) and, with the `firing` alarms being
/// renewed, to Alertmanager (one POST of the array).
fn deliver(
    agent: &ureq::Agent,
    config: &CanaryConfig,
    shared: &Shared,
    notifications: &[Notification],
    firing: &[cfa::AlarmView],
) {
    let generator = format!("http://{}/alarms", config.listen);
    let count = |target: &'static str, ok: bool| {
        *locked(&shared.delivered).entry((target, ok)).or_default() += 1;
    };
    if let Some(url) = &config.webhook_url {
        for notification in notifications {
            let ok = post_json(agent, url, &cfa::webhook_payload(notification));
            count("webhook", ok);
        }
    }
    if let Some(base) = &config.alertmanager_url {
        let mut alerts: Vec<serde_json::Value> = firing
            .iter()
            .map(|alarm| cfa::alertmanager_alert(alarm, None, &generator))
            .collect();
        for notification in notifications {
            let already = firing
                .iter()
                .any(|alarm| alarm.key == notification.alarm.key);
            match notification.event {
                cfa::Event::Firing if !already => alerts.push(cfa::alertmanager_alert(
                    &notification.alarm,
                    None,
                    &generator,
                )),
                cfa::Event::Resolved => alerts.push(cfa::alertmanager_alert(
                    &notification.alarm,
                    Some(notification.at_ms),
                    &generator,
                )),
                _ => {}
            }
        }
        if !alerts.is_empty() {
            let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
            let ok = post_json(agent, &url, &serde_json::Value::Array(alerts));
            count("alertmanager", ok);
        }
    }
}

fn post_json(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> bool {
    let sent = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes());
    match sent {
        Ok(answer) if answer.status().is_success() => true,
        Ok(answer) => {
            tracing::warn!(
                url,
                status = answer.status().as_u16(),
                "notification refused"
            );
            false
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "notification not delivered");
            false
        }
    }
}

/// True when the canary measures nothing: no probe round has completed for ten intervals (at
/// least a minute), counting from its start. Every endpoint down still completes rounds (each
/// call fails fast or times out); stalled probes are the canary's own fault.
#[must_use]
pub fn probes_stalled(started_ms: u64, last_round_ms: u64, now_ms: u64, interval_ms: u64) -> bool {
    let allowed = interval_ms.saturating_mul(10).max(60_000);
    now_ms.saturating_sub(last_round_ms.max(started_ms)) > allowed
}

async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let last = shared.last_round_ms.load(Ordering::Relaxed);
    if probes_stalled(shared.started_ms, last, now_ms(), shared.interval_ms) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no probe round completed recently\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_stall_after_ten_intervals_or_a_minute_without_a_round() {
        // Just started: a minute of grace before the first round.
        assert!(!probes_stalled(1_000_000, 0, 1_059_000, 1_000));
        assert!(probes_stalled(1_000_000, 0, 1_061_000, 1_000));
        // Rounds complete: healthy; then they stop.
        assert!(!probes_stalled(1_000_000, 1_500_000, 1_550_000, 1_000));
        assert!(probes_stalled(1_000_000, 1_500_000, 1_561_000, 1_000));
        // A slow probe interval allows ten of them.
        assert!(!probes_stalled(0, 1_000_000, 1_099_000, 10_000));
        assert!(probes_stalled(0, 1_000_000, 1_101_000, 10_000));
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    use std::fmt::Write as _;
    let mut text = locked(&shared.measurements).render();
    let now = now_ms();
    let alarms = locked(&shared.engine).alarms(now);
    let _ = write!(
        text,
        "# HELP ddb_canary_alarm 1 for every alarm pending or firing.\n# TYPE ddb_canary_alarm gauge\n"
    );
    for alarm in &alarms {
        let labels: Vec<String> = alarm
            .labels
            .iter()
            .filter(|(name, _)| name.as_str() != "alertname")
            .map(|(name, value)| format!("{name}=\"{}\"", value.replace('"', "\\\"")))
            .collect();
        let _ = writeln!(
            text,
            "ddb_canary_alarm{{alertname=\"{}\",state=\"{}\",{}}} 1",
            alarm.name,
            match alarm.state {
                cfa::AlarmState::Pending => "pending",
                cfa::AlarmState::Firing => "firing",
            },
            labels.join(",")
        );
    }
    let _ = write!(
        text,
        "# HELP ddb_canary_notifications_total Notifications sent, by target and result.\n# TYPE ddb_canary_notifications_total counter\n"
    );
    for ((target, ok), n) in locked(&shared.delivered).iter() {
        let result = if *ok { "sent" } else { "failed" };
        let _ = writeln!(
            text,
            "ddb_canary_notifications_total{{target=\"{target}\",result=\"{result}\"}} {n}"
        );
    }
    let _ = write!(
        text,
        "# HELP ddb_canary_rounds_total Probe rounds completed.\n# TYPE ddb_canary_rounds_total counter\nddb_canary_rounds_total {}\n",
        shared.rounds.load(Ordering::Relaxed)
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

fn json(value: &impl serde::Serialize) -> axum::response::Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

async fn report(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let report = locked(&shared.measurements).report();
    json(&report)
}

async fn alarms(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let now = now_ms();
    let engine = locked(&shared.engine);
    json(&serde_json::json!({
        "alarms": engine.alarms(now),
        "silences": engine.silences(now),
    }))
}

async fn history(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> impl IntoResponse {
    let limit = uri
        .query()
        .and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("limit="))
        })
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(100);
    let entries = locked(&shared.engine).history(limit);
    json(&entries)
}

/// A silence asked for over HTTP (`ddbctl alarms silence`).
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct SilenceRequest {
    /// Labels an alarm must carry, all of them (`alertname`, `endpoint`, `severity`, …).
    pub matchers: Labels,
    /// How long, ms.
    pub duration_ms: u64,
    /// Why, for the history.
    pub comment: String,
}

async fn silence(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let request: SilenceRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("not a silence: {e}\n")).into_response();
        }
    };
    if request.matchers.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "a silence needs at least one matcher\n",
        )
            .into_response();
    }
    let now = now_ms();
    let silenced = locked(&shared.engine).silence(
        request.matchers,
        now + request.duration_ms,
        request.comment,
        now,
    );
    match silenced {
        Ok(silence) => json(&silence),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
    }
}
