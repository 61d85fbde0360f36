//! Prometheus metrics of the local runtime: invocations, errors, timeouts, retries,
//! dead-lettered messages, durations (histogram), cold starts and instances per function; queue
//! depths and dead-letter totals per queue are read from the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Upper bounds of the duration histogram, in milliseconds.
const BUCKETS_MS: [f64; 12] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// Counters of one function.
#[derive(Default)]
pub struct FunctionMetrics {
    invocations: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    retries: AtomicU64,
    dead_lettered: AtomicU64,
    cold_starts: AtomicU64,
    instances: AtomicU64,
    /// Invocations per duration bucket, each counted in the first bucket it fits (made
    /// cumulative when rendered); those over the last bound are in none.
    duration_buckets: [AtomicU64; 12],
    duration_sum_us: AtomicU64,
}

impl FunctionMetrics {
    /// Records a finished invocation; `outcome` is its log word (`ok`, `error`, `timeout` …):
    /// anything but `ok` is an error.
    pub fn invocation(&self, duration_ms: f64, outcome: &str, cold: bool) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        if outcome != "ok" {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if outcome == "timeout" {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        if cold {
            self.cold_starts.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(i) = BUCKETS_MS.iter().position(|bound| duration_ms <= *bound) {
            self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.duration_sum_us
            .fetch_add((duration_ms * 1000.0) as u64, Ordering::Relaxed);
    }

    /// A failed message will be delivered again.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed message used its last receive and moves to the dead-letter queue.
    pub fn dead_letter(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters, for `nimbus info`.
    pub fn snapshot(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "invocations": get(&self.invocations),
            "errors": get(&self.errors),
            "timeouts": get(&self.timeouts),
            "retries": get(&self.retries),
            "dead_lettered": get(&self.dead_lettered),
            "cold_starts": get(&self.cold_starts),
        })
    }

    /// Sets the number of live worker processes.
    pub fn set_instances(&self, n: u64) {
        self.instances.store(n, Ordering::Relaxed);
    }
}

/// Every function's metrics.
#[derive(Default, Clone)]
pub struct Metrics {
    functions: Arc<RwLock<BTreeMap<String, Arc<FunctionMetrics>>>>,
}

impl Metrics {
    /// The metrics of `function`, created on first use.
    pub fn function(&self, function: &str) -> Arc<FunctionMetrics> {
        if let Some(m) = self
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
        {
            return m.clone();
        }
        self.functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(function.to_string())
            .or_default()
            .clone()
    }

    /// The Prometheus text exposition; `queues` are (queue, visible, in flight, dead-lettered
    /// since created).
    pub fn render(&self, queues: &[(String, u64, u64, u64)]) -> String {
        let functions = self.functions.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let counter = |out: &mut String,
                       name: &str,
                       help: &str,
                       kind: &str,
                       get: &dyn Fn(&FunctionMetrics) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (f, m) in functions.iter() {
                let _ = writeln!(out, "{name}{{function=\"{f}\"}} {}", get(m));
            }
        };
        counter(
            &mut out,
            "nimbus_invocations_total",
            "Invocations finished.",
            "counter",
            &|m| m.invocations.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_errors_total",
            "Invocations that failed.",
            "counter",
            &|m| m.errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_timeouts_total",
            "Invocations that ran out of time.",
            "counter",
            &|m| m.timeouts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_retries_total",
            "Failed messages delivered again.",
            "counter",
            &|m| m.retries.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_dead_lettered_total",
            "Failed messages moved to a dead-letter queue after their last receive.",
            "counter",
            &|m| m.dead_lettered.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_cold_starts_total",
            "Invocations that started a worker.",
            "counter",
            &|m| m.cold_starts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "nimbus_instances",
            "Live worker processes.",
            "gauge",
            &|m| m.instances.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP nimbus_duration_ms Invocation duration in milliseconds.\n# TYPE nimbus_duration_ms histogram"
        );
        for (f, m) in functions.iter() {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS_MS.iter().enumerate() {
                cumulative += m.duration_buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "nimbus_duration_ms_bucket{{function=\"{f}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = m.invocations.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "nimbus_duration_ms_bucket{{function=\"{f}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "nimbus_duration_ms_sum{{function=\"{f}\"}} {}",
                m.duration_sum_us.load(Ordering::Relaxed) as f64 / 1000.0
            );
            let _ = writeln!(out, "nimbus_duration_ms_count{{function=\"{f}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP nimbus_queue_depth Messages waiting (visible) and being processed (in_flight).\n# TYPE nimbus_queue_depth gauge"
        );
        for (q, visible, in_flight, _) in queues {
            let _ = writeln!(
                out,
                "nimbus_queue_depth{{queue=\"{q}\",state=\"visible\"}} {visible}"
            );
            let _ = writeln!(
                out,
                "nimbus_queue_depth{{queue=\"{q}\",state=\"in_flight\"}} {in_flight}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP nimbus_queue_dead_lettered_total Messages a queue moved to its dead-letter queue.\n# TYPE nimbus_queue_dead_lettered_total counter"
        );
        for (q, _, _, dead) in queues {
            let _ = writeln!(
                out,
                "nimbus_queue_dead_lettered_total{{queue=\"{q}\"}} {dead}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        let f = m.function("hello");
        f.invocation(3.0, "ok", true);
        f.invocation(40.0, "error", false);
        f.invocation(20_000.0, "timeout", false);
        f.retry();
        f.dead_letter();
        f.set_instances(2);
        let text = m.render(&[("payments".into(), 4, 1, 7)]);
        assert!(text.contains("nimbus_invocations_total{function=\"hello\"} 3"));
        assert!(text.contains("nimbus_errors_total{function=\"hello\"} 2"));
        assert!(text.contains("nimbus_timeouts_total{function=\"hello\"} 1"));
        assert!(text.contains("nimbus_retries_total{function=\"hello\"} 1"));
        assert!(text.contains("nimbus_dead_lettered_total{function=\"hello\"} 1"));
        assert!(text.contains("nimbus_queue_dead_lettered_total{queue=\"payments\"} 7"));
        assert_eq!(f.snapshot()["errors"], 2);
        assert!(text.contains("nimbus_cold_starts_total{function=\"hello\"} 1"));
        assert!(text.contains("nimbus_instances{function=\"hello\"} 2"));
        assert!(text.contains("nimbus_duration_ms_bucket{function=\"hello\",le=\"5\"} 1"));
        assert!(text.contains("nimbus_duration_ms_bucket{function=\"hello\",le=\"50\"} 2"));
        assert!(text.contains("nimbus_duration_ms_bucket{function=\"hello\",le=\"10000\"} 2"));
        assert!(text.contains("nimbus_duration_ms_bucket{function=\"hello\",le=\"+Inf\"} 3"));
        assert!(text.contains("nimbus_duration_ms_sum{function=\"hello\"} 20043\n"));
        assert!(text.contains("nimbus_queue_depth{queue=\"payments\",state=\"visible\"} 4"));
    }
}
