//! The bench report: throughput, errors by code, latency percentiles.

use std::collections::BTreeMap;

use serde::Serialize;

use super::histogram::LatencyHistogram;
use super::stages::StageReport;
use super::sync_baseline::SyncBaseline;
use crate::cli::OutputFormat;
use crate::output::{emit, table};

/// What a bench run measured. Latencies are of successful requests, in microseconds.
#[derive(Serialize)]
pub struct BenchReport {
    pub workload: &'static str,
    pub table: String,
    pub concurrency: u32,
    pub items: u64,
    pub item_bytes: u64,
    pub duration_s: u64,
    pub elapsed_s: f64,
    /// Successful requests.
    pub ops: u64,
    pub ops_per_sec: f64,
    /// Failed requests.
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub latency_us: Latency,
    /// Where the node at `--endpoint` spent writes' time during the run, by stage (from its
    /// `/metrics`; empty when it could not be read or nothing was written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_stages: Vec<StageReport>,
    /// The disk's raw sync rate before and after the run (`--sync-baseline`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_sync_baseline: Option<SyncBaseline>,
}

/// Latency percentiles in microseconds.
#[derive(Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds.
    pub fn from_nanos(histogram: &LatencyHistogram) -> Self {
        let us = |nanos: u64| (nanos as f64 / 1000.0 * 10.0).round() / 10.0;
        Latency {
            p50: us(histogram.value_at_quantile(0.5)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: us(histogram.mean()),
        }
    }
}

impl BenchReport {
    /// One line for a log: what ran, how fast, how slow at the tail, how many failed.
    pub fn summary(&self) -> String {
        let ms = |us: f64| us / 1000.0;
        format!(
            "bench {}: {} ops in {:.1} s = {:.0} ops/s with {} clients; p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {} errors",
            self.workload,
            self.ops,
            self.elapsed_s,
            self.ops_per_sec,
            self.concurrency,
            ms(self.latency_us.p50),
            ms(self.latency_us.p99),
            ms(self.latency_us.p999),
            ms(self.latency_us.max),
            self.errors
        ) + &self
            .disk_sync_baseline
            .as_ref()
            .map(|b| {
                format!(
                    "; {:.2}x the disk's raw sync rate ({:.0}/s before, {:.0}/s after)",
                    b.ops_per_raw_sync, b.before.per_sec, b.after.per_sec
                )
            })
            .unwrap_or_default()
    }

    /// Prints the report (table or JSON on standard output), then the summary line: on
    /// standard output under the table, on standard error with JSON so the JSON stays clean.
    pub fn print(&self, format: OutputFormat) -> anyhow::Result<()> {
        emit(format, self, |r| {
            let ms = |us: f64| format!("{:.2}", us / 1000.0);
            let mut t = table(&[
                "workload", "clients", "seconds", "ops", "ops/s", "errors", "p50 ms", "p99 ms",
                "p99.9 ms", "max ms",
            ]);
            t.add_row(vec![
                r.workload.to_owned(),
                r.concurrency.to_string(),
                format!("{:.1}", r.elapsed_s),
                r.ops.to_string(),
                format!("{:.0}", r.ops_per_sec),
                r.errors.to_string(),
                ms(r.latency_us.p50),
                ms(r.latency_us.p99),
                ms(r.latency_us.p999),
                ms(r.latency_us.max),
            ]);
            let mut tables = vec![t];
            if !r.errors_by_code.is_empty() {
                let mut errors = table(&["error", "count"]);
                for (code, count) in &r.errors_by_code {
                    errors.add_row(vec![code.clone(), count.to_string()]);
                }
                tables.push(errors);
            }
            if !r.node_stages.is_empty() {
                let mut stages = table(&["node stage", "count", "mean ms", "p50 ms", "p99 ms"]);
                for stage in &r.node_stages {
                    stages.add_row(vec![
                        stage.stage.clone(),
                        stage.count.to_string(),
                        format!("{:.3}", stage.mean_us / 1000.0),
                        format!("{:.3}", stage.p50_us / 1000.0),
                        format!("{:.3}", stage.p99_us / 1000.0),
                    ]);
                }
                tables.push(stages);
            }
            if let Some(baseline) = &r.disk_sync_baseline {
                let mut syncs = table(&["raw syncs/s before", "after", "ops per raw sync"]);
                syncs.add_row(vec![
                    format!("{:.0}", baseline.before.per_sec),
                    format!("{:.0}", baseline.after.per_sec),
                    format!("{:.2}", baseline.ops_per_raw_sync),
                ]);
                tables.push(syncs);
            }
            tables
        })?;
        match format {
            OutputFormat::Table => crate::out!("{}", self.summary()),
            OutputFormat::Json => eprintln!("{}", self.summary()),
        }
        Ok(())
    }
}
