//! `deep_schedule`: deep passes run on a cron calendar (here every second) without being
//! asked, `/status` says when the next is due, and a schedule that is not a cron expression
//! is refused at start with a message that shows the expected form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb_scrubber::ScrubberConfig;

fn config(dir: &std::path::Path, schedule: &str) -> ScrubberConfig {
    let secret = dir.join("cluster.secret");
    std::fs::write(&secret, "a test secret").unwrap();
    ScrubberConfig {
        // Nothing listens there: passes find no node, which is all this test needs.
        nodes: vec!["http://127.0.0.1:9".to_string()],
        cluster_secret_file: Some(secret),
        archive: format!("file://{}", dir.join("archive").display()),
        data_dir: dir.join("scrubber"),
        listen: "127.0.0.1:0".parse().unwrap(),
        // No pass on the interval while the test runs: only the calendar wakes the loop.
        interval_ms: 3_600_000,
        deep_schedule: Some(schedule.to_string()),
        ..ScrubberConfig::default()
    }
}

fn status(address: std::net::SocketAddr) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let body = agent
        .get(&format!("http://{address}/status"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_passes_run_on_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, address) = tokio::sync::oneshot::channel();
    let scrubber = tokio::spawn(ddb_scrubber::run(
        config(dir.path(), "* * * * * *"),
        async {
            let _ = stopped.await;
        },
        move |address| {
            let _ = ready.send(address);
        },
    ));
    let address = address.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = tokio::task::spawn_blocking(move || status(address))
            .await
            .unwrap();
        // The first pass at start, then one deep pass per second.
        if seen["deep_passes"].as_u64().unwrap() >= 3 {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "no deep passes on the calendar: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let now = ddb::service::now_ms();
    let next = seen["next_deep_ms"].as_u64().unwrap();
    assert!(
        next + 1_000 >= now && next <= now + 2_000,
        "next deep pass at {next}, now {now}"
    );
    stop.send(()).unwrap();
    scrubber.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_schedule_that_is_not_cron_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for wrong in ["every sunday", "0 3 * * *", "61 * * * * *"] {
        let error = ddb_scrubber::run(config(dir.path(), wrong), async {}, |_| {})
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("deep_schedule") && message.contains("sec min hour"),
            "{wrong}: {message}"
        );
    }
}
