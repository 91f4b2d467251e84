//! Deep passes on a calendar (`deep_schedule`): a cron job, with tokio-cron-scheduler, that
//! asks the pass loop for a deep pass the way `POST /run?deep=true` does.

use anyhow::anyhow;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Checks that `expression` is a schedule the scrubber can keep.
pub fn check(expression: &str) -> anyhow::Result<()> {
    job(expression, || {}).map(drop)
}

fn job(expression: &str, fire: impl Fn() + Send + Sync + 'static) -> anyhow::Result<Job> {
    let fire = std::sync::Arc::new(fire);
    Job::new_async(expression, move |_, _| {
        let fire = std::sync::Arc::clone(&fire);
        Box::pin(async move { fire() })
    })
    .map_err(|e| {
        anyhow!(
            "deep_schedule {expression:?} is not a cron expression with seconds, in UTC \
             (sec min hour day-of-month month day-of-week, e.g. \"0 0 3 * * Sun\"): {e}"
        )
    })
}

/// A running calendar of deep passes; dropped with the scrubber.
pub struct DeepSchedule {
    scheduler: JobScheduler,
    job: uuid::Uuid,
}

impl DeepSchedule {
    /// Starts calling `fire` on every occurrence of `expression`.
    pub async fn start(
        expression: &str,
        fire: impl Fn() + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let scheduler = JobScheduler::new()
            .await
            .map_err(|e| anyhow!("starting the deep-pass schedule: {e}"))?;
        let job = scheduler
            .add(job(expression, fire)?)
            .await
            .map_err(|e| anyhow!("scheduling deep passes: {e}"))?;
        scheduler
            .start()
            .await
            .map_err(|e| anyhow!("starting the deep-pass schedule: {e}"))?;
        Ok(DeepSchedule { scheduler, job })
    }

    /// When the next deep pass is due (ms since the epoch).
    pub async fn next_ms(&mut self) -> Option<u64> {
        let next = self.scheduler.next_tick_for_job(self.job).await.ok()??;
        u64::try_from(next.timestamp_millis()).ok()
    }

    /// Stops the calendar.
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "stopping the deep-pass schedule");
        }
    }
}
