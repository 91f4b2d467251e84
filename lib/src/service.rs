//! What every ddb daemon does the same way as a service: telling systemd it is ready
//! (`Type=notify`) and waiting for the signal to stop.

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
