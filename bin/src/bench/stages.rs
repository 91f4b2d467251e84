//! The node's own account of a run: its `ddb_write_stage_seconds` histograms read from
//! `/metrics` before and after, and the difference reported per stage. Next to the latency the
//! generator saw, this tells time spent inside the node (and in which stage) from time spent
//! outside it (HTTP, the generator, the run queue).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One stage's histogram as the exposition gives it.
#[derive(Clone, Debug, Default, PartialEq)]
struct StageHistogram {
    count: f64,
    sum_seconds: f64,
    /// (upper bound in seconds, cumulative count), in exposition order; `+Inf` is infinity.
    buckets: Vec<(f64, f64)>,
}

/// Every stage's histogram in one `/metrics` text, by stage label (in exposition order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageSnapshot {
    stages: Vec<(String, StageHistogram)>,
}

/// One stage over a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageReport {
    pub stage: String,
    /// Times the stage was recorded during the run.
    pub count: u64,
    /// Mean, p50 and p99 in microseconds; the percentiles are interpolated within histogram
    /// buckets, so they are estimates (a bucket's width bounds their error).
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

const METRIC: &str = "ddb_write_stage_seconds";

impl StageSnapshot {
    /// Reads the stage histograms out of a Prometheus text exposition; other lines are
    /// ignored, so an older node (without them) gives an empty snapshot.
    pub fn parse(text: &str) -> StageSnapshot {
        let mut stages: Vec<(String, StageHistogram)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let Some((series, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let Some((kind, labels)) = series.split_once('{') else {
                continue;
            };
            let labels = parse_labels(labels.trim_end_matches('}'));
            let Some(stage) = labels.get("stage") else {
                continue;
            };
            let index = match stages.iter().position(|(name, _)| name == stage) {
                Some(index) => index,
                None => {
                    stages.push((stage.clone(), StageHistogram::default()));
                    stages.len() - 1
                }
            };
            let histogram = &mut stages[index].1;
            match kind {
                "_count" => histogram.count = value,
                "_sum" => histogram.sum_seconds = value,
                "_bucket" => {
                    let bound = match labels.get("le").map(String::as_str) {
                        Some("+Inf") => f64::INFINITY,
                        Some(le) => match le.parse() {
                            Ok(bound) => bound,
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    histogram.buckets.push((bound, value));
                }
                _ => {}
            }
        }
        StageSnapshot { stages }
    }

    /// What happened between `before` and `self`, per stage recorded at least once.
    pub fn since(&self, before: &StageSnapshot) -> Vec<StageReport> {
        let mut reports = Vec::new();
        for (stage, after) in &self.stages {
            let earlier = before
                .stages
                .iter()
                .find(|(name, _)| name == stage)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            let count = after.count - earlier.count;
            if count < 1.0 {
                continue;
            }
            let buckets: Vec<(f64, f64)> = after
                .buckets
                .iter()
                .map(|(bound, cumulative)| {
                    let before = earlier
                        .buckets
                        .iter()
                        .find(|(b, _)| b == bound)
                        .map_or(0.0, |(_, c)| *c);
                    (*bound, cumulative - before)
                })
                .collect();
            let micros = |seconds: f64| (seconds * 1e6 * 10.0).round() / 10.0;
            reports.push(StageReport {
                stage: stage.clone(),
                count: count as u64,
                mean_us: micros((after.sum_seconds - earlier.sum_seconds) / count),
                p50_us: micros(quantile(&buckets, count, 0.5)),
                p99_us: micros(quantile(&buckets, count, 0.99)),
            });
        }
        reports
    }
}

/// The `q` quantile of `count` observations in cumulative `buckets`, interpolated linearly
/// within the bucket it falls in; past the last finite bound, that bound.
fn quantile(buckets: &[(f64, f64)], count: f64, q: f64) -> f64 {
    let rank = q * count;
    let mut lower = (0.0, 0.0);
    for (bound, cumulative) in buckets {
        if *cumulative >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let in_bucket = cumulative - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return lower.0 + (bound - lower.0) * fraction;
        }
        lower = (*bound, *cumulative);
    }
    lower.0
}

/// `a="x",b="y"` → a map (label values here never hold quotes or commas).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// The node's stage histograms now, or `None` when `/metrics` cannot be read (the run goes on
/// without them).
pub fn fetch(endpoint: &str) -> Option<StageSnapshot> {
    let (code, text) =
        crate::commands::cluster_status::http_get(endpoint, "/metrics", Duration::from_secs(5))
            .ok()?;
    (code == 200).then(|| StageSnapshot::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(lock: [u64; 3], flush: [u64; 3], lock_sum: f64) -> String {
        format!(
            "ddb_requests_total{{table=\"t\",op=\"PutItem\",outcome=\"ok\"}} 5\n\
             # TYPE ddb_write_stage_seconds histogram\n\
             ddb_write_stage_seconds_bucket{{stage=\"lock\",le=\"0.00001\"}} {}\n\
             ddb_write_stage_seconds_bucket{{stage=\"lock\",le=\"0.0001\"}} {}\n\
             ddb_write_stage_seconds_bucket{{stage=\"lock\",le=\"+Inf\"}} {}\n\
             ddb_write_stage_seconds_sum{{stage=\"lock\"}} {lock_sum}\n\
             ddb_write_stage_seconds_count{{stage=\"lock\"}} {}\n\
             ddb_write_stage_seconds_bucket{{stage=\"flush\",le=\"0.00001\"}} {}\n\
             ddb_write_stage_seconds_bucket{{stage=\"flush\",le=\"0.0001\"}} {}\n\
             ddb_write_stage_seconds_bucket{{stage=\"flush\",le=\"+Inf\"}} {}\n\
             ddb_write_stage_seconds_sum{{stage=\"flush\"}} 0\n\
             ddb_write_stage_seconds_count{{stage=\"flush\"}} {}\n",
            lock[0], lock[1], lock[2], lock[2], flush[0], flush[1], flush[2], flush[2]
        )
    }

    #[test]
    fn a_run_is_the_difference_of_two_scrapes() {
        let before = StageSnapshot::parse(&exposition([10, 10, 10], [4, 4, 4], 0.0001));
        // During the run: 100 lock waits, 50 of them ≤ 10 µs, 100 ≤ 100 µs; no flushes.
        let after = StageSnapshot::parse(&exposition([60, 110, 110], [4, 4, 4], 0.0031));
        let reports = after.since(&before);
        assert_eq!(reports.len(), 1, "flush was not recorded during the run");
        let lock = &reports[0];
        assert_eq!(lock.stage, "lock");
        assert_eq!(lock.count, 100);
        assert!((lock.mean_us - 30.0).abs() < 0.01, "{lock:?}");
        // The 50th of 100 is the last of the first bucket: its upper bound.
        assert!((lock.p50_us - 10.0).abs() < 0.01, "{lock:?}");
        // The 99th is 49/50 of the way through the second bucket (10 → 100 µs).
        assert!((lock.p99_us - 98.2).abs() < 0.01, "{lock:?}");
    }

    #[test]
    fn a_tail_past_the_last_bound_reports_that_bound_and_other_text_is_ignored() {
        let after = StageSnapshot::parse(&exposition([0, 0, 10], [0, 0, 0], 30.0));
        let reports = after.since(&StageSnapshot::default());
        assert_eq!(reports[0].p99_us, 100.0);
        assert_eq!(reports[0].mean_us, 3_000_000.0);
        assert!(
            StageSnapshot::parse("ddb_requests_total 3\nnonsense\n")
                .stages
                .is_empty()
        );
    }
}
