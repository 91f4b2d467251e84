//! What every ddb daemon does the same way as a service: logging, telling systemd it is ready
//! (`Type=notify`) and waiting for the signal to stop.

/// Wall-clock time in milliseconds since the Unix epoch (0 before it), as ddb stamps log entries,
/// snapshots and reports.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Sends the process's `tracing` logs to standard error, filtered by `DDB_LOG` (an
/// `EnvFilter` directive such as `info` or `ddb=debug`; `default_filter` without it), as
/// human-readable lines or, with `DDB_LOG_FORMAT=json`, one JSON object per line for log
/// pipelines.
#[cfg(feature = "network")]
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DDB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("DDB_LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

/// Sends `state` (e.g. `READY=1`, `WATCHDOG=1`, `STOPPING=1`) to systemd if the process runs
/// under it (`NOTIFY_SOCKET` set); does nothing otherwise. Failures are logged, never fatal.
pub fn notify_systemd(state: &str) {
    #[cfg(unix)]
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        let sent = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|socket| socket.send_to(state.as_bytes(), &path));
        if let Err(e) = sent {
            tracing::warn!(error = %e, state, "cannot notify systemd");
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`), the period at which a
/// daemon should send `WATCHDOG=1`; `None` without a watchdog.
#[must_use]
pub fn watchdog_period() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| std::time::Duration::from_micros(usec / 2))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Binds `listen` and serves `app` in the background (for a daemon's `/metrics`, `/healthz`
/// and the like); the address it listens on.
#[cfg(feature = "network")]
pub async fn serve_http(
    listen: std::net::SocketAddr,
    app: axum::Router,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("listening on {listen}: {e}")))?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(address)
}

/// Pings systemd's watchdog from a background task, if systemd asked for one. A daemon whose
/// main loop may be busy for long (a deep scrub, a probe that times out) uses this; whether its
/// work completes shows in its metrics instead.
pub fn spawn_watchdog() {
    if let Some(period) = watchdog_period() {
        tokio::spawn(async move {
            loop {
                notify_systemd("WATCHDOG=1");
                tokio::time::sleep(period).await;
            }
        });
    }
}

/// A daemon's `main` after its configuration is loaded: runs `run` on a new runtime until
/// SIGINT or SIGTERM; once it serves, prints `<name> serving <what> on http://<address>` (the
/// line tests and `ddbctl local up` read) and tells systemd it is ready.
pub fn run_daemon<F, E>(
    name: &'static str,
    what: &'static str,
    run: impl FnOnce(
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        Box<dyn FnOnce(std::net::SocketAddr) + Send>,
    ) -> F,
) -> Result<(), E>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: From<std::io::Error>,
{
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(
        Box::pin(async {
            shutdown_signal().await;
            tracing::info!("stop signal received");
        }),
        Box::new(move |address| {
            println!("{name} serving {what} on http://{address}");
            notify_systemd("READY=1");
        }),
    ))
}
