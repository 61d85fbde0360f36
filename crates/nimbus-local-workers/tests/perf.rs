//! Performance of warm and cold invocations, with real Python and Node workers. Prints the
//! numbers and asserts only correctness. Run on a release build:
//! `cargo test --release -p nimbus-local-workers -- --nocapture perf_`

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nimbus_local_workers::{Language, Pool};
use support::{Recorder, body, http, percentile, probe_package, spec};

/// Sequential warm invocations per language (fewer on debug builds, which only check it works).
const WARM: usize = if cfg!(debug_assertions) { 500 } else { 5000 };
/// Cold starts (and bare interpreter spawns) measured per language.
const COLD: usize = if cfg!(debug_assertions) { 3 } else { 15 };

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 50.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_warm_and_cold() {
    for language in [Language::Python, Language::Node] {
        let dir = probe_package(language);
        let mut s = spec(language, dir.path());
        s.max_concurrency = 2;
        let interpreter = s.interpreter.clone();

        // Warm: one worker already started, then WARM invocations one after the other.
        let pool = Pool::new(s.clone(), Recorder::new());
        pool.invoke("warm-up", http("echo:x")).await.unwrap();
        let mut latencies = Vec::with_capacity(WARM);
        let mut round_trips = Vec::with_capacity(WARM);
        let started = Instant::now();
        for i in 0..WARM {
            let t = Instant::now();
            let invocation = pool
                .invoke(&format!("req-{i}"), http("echo:x"))
                .await
                .unwrap();
            latencies.push(t.elapsed());
            round_trips.push(invocation.duration);
            assert!(!invocation.cold);
            assert_eq!(body(&invocation.result)["echo"], "x");
        }
        let total = started.elapsed();
        latencies.sort();
        let stats = pool.stats();
        assert_eq!(stats.invocations, WARM as u64 + 1);
        assert_eq!(stats.cold_starts, 1);
        pool.drain().await;

        // Cold: a fresh pool per sample; `init` is spawn to ready, `first` the whole first call.
        // Against the floor: the bare interpreter, started by its real path, doing nothing.
        // The two alternate, so that a busy machine weighs on both alike.
        let bare_args: &[&str] = match language {
            Language::Python => &["-c", "pass"],
            Language::Node => &["-e", "0"],
        };
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut bare = Vec::new();
        for i in 0..COLD {
            let pool = Pool::new(s.clone(), Recorder::new());
            let t = Instant::now();
            let invocation = pool
                .invoke(&format!("cold-{i}"), http("echo:x"))
                .await
                .unwrap();
            firsts.push(t.elapsed());
            assert!(invocation.cold);
            inits.push(invocation.init.unwrap());
            pool.shutdown().await;

            let t = Instant::now();
            let status = Command::new(&interpreter)
                .args(bare_args)
                .stdin(Stdio::null())
                .status()
                .unwrap();
            bare.push(t.elapsed());
            assert!(status.success());
        }

        round_trips.sort();
        println!(
            "{language:?} warm: {WARM} sequential invocations in {:.2} s = {:.0} invocations/s; \
             latency p50 {} p99 {} max {} (of which worker round trip p50 {})",
            total.as_secs_f64(),
            WARM as f64 / total.as_secs_f64(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().unwrap()),
            ms(percentile(&round_trips, 50.0)),
        );
        println!(
            "{language:?} cold (median of {COLD}): spawn to ready {}, first invocation {}; \
             bare `{} {}` {}",
            ms(median(inits)),
            ms(median(firsts)),
            interpreter.display(),
            bare_args.join(" "),
            ms(median(bare)),
        );
    }
}
