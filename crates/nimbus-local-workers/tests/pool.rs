//! Worker pools with real Python and Node processes: warm reuse, scaling up and down, queueing,
//! timeouts, crashes, load failures, handler errors, memory limits, logs, resource calls,
//! drain and shutdown.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nimbus_local_workers::{
    Invocation, InvokeError, Language, Pool, PoolEvent, StopReason, Stream,
};
use support::{Recorder, alive, body, http, probe_package, spec};

/// Runs `case` for Python and for Node.
macro_rules! both {
    ($case:ident: $python:ident, $node:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $python() {
            $case(Language::Python).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $node() {
            $case(Language::Node).await;
        }
    };
}

fn pool(language: Language, dir: &std::path::Path, hooks: &Arc<Recorder>) -> Pool {
    Pool::new(spec(language, dir), hooks.clone())
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both!(echo: echo_python, echo_node);
async fn echo(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let first = pool.invoke("req-1", http("echo:hello")).await.unwrap();
    assert!(first.cold);
    assert!(first.init.is_some_and(|d| d > Duration::ZERO));
    let b = body(&first.result);
    assert_eq!(b["echo"], "hello");
    assert_eq!(b["request_id"], "req-1");
    assert_eq!(b["pid"], first.worker_pid);
    let second = pool.invoke("req-2", http("echo:again")).await.unwrap();
    assert!(!second.cold);
    assert_eq!(second.init, None);
    assert_eq!(second.worker_pid, first.worker_pid, "the same warm worker");
    assert_eq!(body(&second.result)["echo"], "again");
    let stats = pool.stats();
    assert_eq!((stats.instances, stats.busy, stats.queued), (1, 0, 0));
    assert_eq!(
        (stats.cold_starts, stats.invocations, stats.errors),
        (1, 2, 0)
    );
    assert_eq!(pool.pids(), [first.worker_pid]);
    // (Events may reach the hooks just after the invocation that caused them returned.)
    assert!(
        hooks
            .wait_for_event(|e| matches!(e,
                PoolEvent::WorkerStarted { pid, .. } if *pid == first.worker_pid))
            .await
    );
    assert!(
        hooks
            .events()
            .contains(&PoolEvent::InstancesChanged { instances: 1 })
    );
    pool.drain().await;
    assert!(!alive(first.worker_pid));
}

both!(spawn_env: spawn_env_python, spawn_env_node);
/// Variables from `Hooks::spawn_env` are read at each worker's start: a warm worker keeps what it
/// started with, the next one gets the new value, and an error fails that start.
async fn spawn_env(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let set = |v: Result<&str, &str>| {
        *hooks.spawn_env.lock().unwrap() = Some(match v {
            Ok(v) => Ok([("ROTATED".to_string(), v.to_string())].into()),
            Err(e) => Err(nimbus_local_workers::ErrorInfo::new("SecretMissing", e)),
        });
    };
    set(Ok("one"));
    let pool = pool(language, dir.path(), &hooks);
    let first = pool.invoke("r1", http("env:ROTATED")).await.unwrap();
    assert_eq!(body(&first.result)["value"], "one");
    set(Ok("two"));
    let warm = pool.invoke("r2", http("env:ROTATED")).await.unwrap();
    assert_eq!(warm.worker_pid, first.worker_pid);
    assert_eq!(
        body(&warm.result)["value"],
        "one",
        "a warm worker keeps its start's value"
    );
    let _ = pool.invoke("r3", http("exit:3")).await;
    let next = pool.invoke("r4", http("env:ROTATED")).await.unwrap();
    assert!(next.cold && next.worker_pid != first.worker_pid);
    assert_eq!(body(&next.result)["value"], "two");
    assert_eq!(
        body(
            &pool
                .invoke("r5", http("env:GREETING"))
                .await
                .unwrap()
                .result
        )["value"],
        "hi"
    );
    set(Err("secret `k` has no value"));
    let _ = pool.invoke("r6", http("exit:3")).await;
    match pool.invoke("r7", http("env:ROTATED")).await {
        Err(InvokeError::LoadFailed { error }) => {
            assert_eq!(error.kind, "SecretMissing");
            assert!(error.message.contains("has no value"), "{error:?}");
        }
        other => panic!("expected LoadFailed, got {other:?}"),
    }
    pool.drain().await;
}

both!(scaling: scaling_python, scaling_node);
async fn scaling(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let mut s = spec(language, dir.path());
    s.max_concurrency = 4;
    s.idle_timeout = Duration::from_secs(1);
    let pool = Pool::new(s, hooks.clone());

    // Watch the pool while it works: instances and live worker processes never exceed 4.
    let stop = Arc::new(AtomicBool::new(false));
    let most_instances = Arc::new(AtomicUsize::new(0));
    let most_alive = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let sampler = {
        let (pool, stop, most_instances, most_alive, seen) = (
            pool.clone(),
            stop.clone(),
            most_instances.clone(),
            most_alive.clone(),
            seen.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                most_instances.fetch_max(pool.stats().instances, Ordering::Relaxed);
                let pids = pool.pids();
                seen.lock().unwrap().extend(pids.iter().copied());
                let live = seen.lock().unwrap().iter().filter(|p| alive(**p)).count();
                most_alive.fetch_max(live, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let pool = pool.clone();
        tasks.spawn(async move { pool.invoke(&format!("req-{i}"), http("sleep:300")).await });
    }
    let mut pids = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let invocation = done.unwrap().expect("every invocation succeeds");
        assert_eq!(body(&invocation.result)["slept"], 300);
        pids.insert(invocation.worker_pid);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let stats = pool.stats();
    assert!(pids.len() <= 4, "served by {pids:?}");
    assert!(most_instances.load(Ordering::Relaxed) <= 4);
    assert!(most_alive.load(Ordering::Relaxed) <= 4);
    assert_eq!(stats.invocations, 32);
    assert!(stats.cold_starts <= 4);
    // 32 × 300 ms on 4 workers: 8 rounds, not 32.
    assert!(
        elapsed < Duration::from_millis(300 * 16),
        "took {elapsed:?}"
    );

    // Idle for 1 s: every worker stops, down to zero processes.
    wait_for("the pool to scale to zero", Duration::from_secs(4), || {
        pool.stats().instances == 0
    })
    .await;
    assert!(pool.pids().is_empty());
    for pid in &pids {
        assert!(!alive(*pid), "worker {pid} still alive");
    }
    let idle_stops = hooks
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                PoolEvent::WorkerStopped {
                    reason: StopReason::Idle,
                    ..
                }
            )
        })
        .count();
    assert_eq!(idle_stops as u64, stats.cold_starts);
    assert_eq!(
        hooks.events().last(),
        Some(&PoolEvent::InstancesChanged { instances: 0 })
    );
    // And it scales up again.
    let again = pool.invoke("req-again", http("echo:x")).await.unwrap();
    assert!(again.cold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_beyond_the_queue() {
    let dir = probe_package(Language::Python);
    let hooks = Recorder::new();
    let mut s = spec(Language::Python, dir.path());
    s.max_concurrency = 2;
    s.max_queued = 3;
    let pool = Pool::new(s, hooks);
    // All ten arrive before any worker is ready: 2 start workers, 3 wait, 5 are turned away.
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let pool = pool.clone();
            async move { pool.invoke(&format!("req-{i}"), http("sleep:200")).await }
        })
        .collect();
    let mut set = tokio::task::JoinSet::new();
    for call in calls {
        set.spawn(call);
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (mut ok, mut overloaded) = (0, 0);
    while let Some(done) = set.join_next().await {
        match done.unwrap() {
            Ok(_) => ok += 1,
            Err(InvokeError::Overloaded) => overloaded += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, overloaded), (5, 5));
    let stats = pool.stats();
    assert_eq!((stats.invocations, stats.rejected, stats.errors), (5, 5, 0));
    assert!(stats.instances <= 2);
}

/// What a [`burst`] saw.
struct Burst {
    /// The workers that served it.
    pids: BTreeSet<u32>,
    /// The most worker processes, and the most starting at once, while it ran.
    most_instances: usize,
    most_starting: usize,
}

/// Runs `count` invocations of `mode` at once, sampling the pool's counters while they run.
async fn burst(pool: &Pool, count: usize, mode: &str) -> Burst {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut instances, mut starting) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let stats = pool.stats();
                instances = instances.max(stats.instances);
                starting = starting.max(stats.starting);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (instances, starting)
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (pool, mode) = (pool.clone(), mode.to_owned());
        tasks.spawn(async move { pool.invoke(&format!("req-{i}"), http(&mode)).await });
    }
    let mut pids = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        pids.insert(done.unwrap().expect("every invocation succeeds").worker_pid);
    }
    stop.store(true, Ordering::Relaxed);
    let (most_instances, most_starting) = sampler.await.unwrap();
    Burst {
        pids,
        most_instances,
        most_starting,
    }
}

both!(quick_burst: a_quick_burst_is_served_by_the_warm_worker_python,
      a_quick_burst_is_served_by_the_warm_worker_node);
async fn quick_burst(language: Language) {
    let dir = probe_package(language);
    let mut s = spec(language, dir.path());
    s.max_concurrency = 4;
    // No invocation waits this long: the pool only grows when nothing serves.
    s.scale_up_wait = Duration::from_secs(60);
    let pool = Pool::new(s, Recorder::new());
    // From zero, a burst starts one worker, not one per request...
    let cold = burst(&pool, 10, "echo:x").await;
    assert_eq!(cold.pids.len(), 1, "{:?}", cold.pids);
    assert_eq!(pool.stats().cold_starts, 1);
    // ...and a burst of quick invocations on a warm worker starts none.
    let warm = burst(&pool, 40, "echo:x").await;
    assert_eq!(warm.pids, cold.pids);
    assert_eq!(warm.most_instances, 1);
    let stats = pool.stats();
    assert_eq!((stats.cold_starts, stats.invocations), (1, 50));
    pool.drain().await;
}

both!(waiting_backlog: a_backlog_waiting_on_io_grows_the_pool_to_the_cap_python,
      a_backlog_waiting_on_io_grows_the_pool_to_the_cap_node);
async fn waiting_backlog(language: Language) {
    let dir = probe_package(language);
    let mut s = spec(language, dir.path());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // More workers than the CPUs: the handlers sleep, so each one adds throughput.
    s.max_concurrency = cpus + 3;
    s.scale_up_wait = Duration::from_millis(20);
    let pool = Pool::new(s, Recorder::new());
    let seen = burst(&pool, 4 * (cpus + 3), "sleep:400").await;
    let stats = pool.stats();
    assert_eq!(stats.cold_starts as usize, cpus + 3, "grew to the cap");
    assert_eq!(seen.pids.len(), cpus + 3);
    assert!(seen.most_instances <= cpus + 3);
    assert_eq!(seen.most_starting, 1, "one start at a time");
    pool.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_that_computes_grows_to_one_worker_per_cpu() {
    let dir = probe_package(Language::Python);
    let mut s = spec(Language::Python, dir.path());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    s.max_concurrency = cpus + 3;
    s.scale_up_wait = Duration::from_millis(20);
    let pool = Pool::new(s, Recorder::new());
    // Handlers that compute: more interpreters than the CPUs would only take turns.
    let seen = burst(&pool, 30, "spin:100").await;
    let started = pool.stats().cold_starts as usize;
    assert!(
        started >= cpus.min(2),
        "grew for the waiting requests: {started}"
    );
    assert!(started <= cpus, "{started} workers for {cpus} CPUs");
    assert!(seen.most_instances <= cpus);
    pool.drain().await;
}

/// A pool of one worker that sends the next invocation ahead whatever their durations, warmed up.
async fn ahead_pool(language: Language, dir: &std::path::Path, hooks: &Arc<Recorder>) -> Pool {
    let mut s = spec(language, dir);
    s.max_concurrency = 1;
    s.timeout = Duration::from_secs(2);
    s.send_ahead_below = Duration::from_secs(3600);
    let pool = Pool::new(s, hooks.clone());
    pool.invoke("warm-up", http("echo:")).await.unwrap();
    pool
}

/// Starts `mode` on the pool's worker and waits until it runs.
async fn running(
    pool: &Pool,
    mode: &str,
) -> tokio::task::JoinHandle<Result<Invocation, InvokeError>> {
    let first = {
        let (pool, mode) = (pool.clone(), mode.to_owned());
        tokio::spawn(async move { pool.invoke("first", http(&mode)).await })
    };
    wait_for(
        "the first invocation to run",
        Duration::from_secs(5),
        || pool.stats().busy == 1,
    )
    .await;
    first
}

both!(sent_ahead_output: invocations_sent_ahead_keep_their_output_python,
      invocations_sent_ahead_keep_their_output_node);
async fn sent_ahead_output(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = ahead_pool(language, dir.path(), &hooks).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let pool = pool.clone();
        tasks.spawn(async move { pool.invoke(&format!("req-print-{i}"), http("print")).await });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(body(&done.unwrap().unwrap().result)["printed"], true);
    }
    let stats = pool.stats();
    assert!(stats.sent_ahead >= 6, "sent ahead: {}", stats.sent_ahead);
    assert_eq!((stats.cold_starts, stats.errors), (1, 0));
    // Every line is tagged with the invocation that printed it, though each one started on its
    // worker before the runtime had read the reply of the one before.
    for i in 0..12 {
        let lines = hooks.lines_of(Some(&format!("req-print-{i}")));
        let of = |stream| {
            lines
                .iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, text)| text.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of(Stream::Stdout),
            ["out line 1", "out line 2", "partial"],
            "req-print-{i}"
        );
        assert_eq!(of(Stream::Stderr), ["err line"], "req-print-{i}");
    }
    pool.drain().await;
}

/// Sends two invocations ahead of `mode`, whose worker then fails (`failed` says how): those sent
/// ahead had not started, so a new worker serves them instead of them failing too.
async fn ahead_of_a_failure(language: Language, mode: &str, failed: fn(&InvokeError) -> bool) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = ahead_pool(language, dir.path(), &hooks).await;
    let first = running(&pool, mode).await;
    let next: Vec<_> = (1..=2)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.invoke(&format!("next-{i}"), http(&format!("echo:{i}")))
                    .await
            })
        })
        .collect();
    wait_for("both to be sent ahead", Duration::from_secs(5), || {
        pool.stats().sent_ahead == 2
    })
    .await;
    let first = first.await.unwrap();
    assert!(first.as_ref().is_err_and(failed), "{first:?}");
    let mut new_worker = BTreeSet::new();
    for (i, next) in (1..=2).zip(next) {
        let next = next.await.unwrap().unwrap();
        assert_eq!(body(&next.result)["echo"], i.to_string());
        new_worker.insert(next.worker_pid);
    }
    assert_eq!(
        new_worker.len(),
        1,
        "served by a new worker, one after the other"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.invocations, stats.errors, stats.cold_starts),
        (4, 1, 2)
    );
    pool.drain().await;
}

both!(ahead_of_a_timeout: an_invocation_sent_ahead_of_one_that_times_out_runs_elsewhere_python,
      an_invocation_sent_ahead_of_one_that_times_out_runs_elsewhere_node);
async fn ahead_of_a_timeout(language: Language) {
    ahead_of_a_failure(language, "hang", |e| {
        matches!(e, InvokeError::Timeout { .. })
    })
    .await;
}

both!(ahead_of_a_crash: an_invocation_sent_ahead_of_one_that_crashes_runs_elsewhere_python,
      an_invocation_sent_ahead_of_one_that_crashes_runs_elsewhere_node);
async fn ahead_of_a_crash(language: Language) {
    ahead_of_a_failure(language, "die-after:300", |e| {
        matches!(e, InvokeError::Crashed { .. })
    })
    .await;
}

/// The worker replies (`MemoryError`) and exits: it does not start the invocation sent ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_sent_ahead_of_one_out_of_memory_runs_elsewhere() {
    ahead_of_a_failure(Language::Python, "alloc-after:300", |e| {
        matches!(e, InvokeError::OutOfMemory { .. })
    })
    .await;
}

both!(ahead_of_an_rpc: an_invocation_sent_ahead_during_a_resource_call_waits_its_turn_python,
      an_invocation_sent_ahead_during_a_resource_call_waits_its_turn_node);
async fn ahead_of_an_rpc(language: Language) {
    let dir = probe_package(language);
    let hooks = Arc::new(Recorder {
        rpc_delay: Duration::from_millis(300),
        ..Recorder::default()
    });
    let pool = ahead_pool(language, dir.path(), &hooks).await;
    let first = running(&pool, "rpc:42").await;
    // Sent while the first waits for its resource call: the worker reads it before the call's
    // reply, keeps it, and serves it after the first.
    let next = pool.invoke("next", http("echo:next")).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(
        body(&first.result)["got"],
        serde_json::json!({"id": "42", "total": 12})
    );
    assert_eq!(body(&next.result)["echo"], "next");
    assert_eq!(
        next.worker_pid, first.worker_pid,
        "the same worker, one after the other"
    );
    assert_eq!(pool.stats().sent_ahead, 1);
    pool.drain().await;
}

both!(ahead_deadline: the_deadline_of_an_invocation_sent_ahead_counts_from_its_start_python,
      the_deadline_of_an_invocation_sent_ahead_counts_from_its_start_node);
async fn ahead_deadline(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = ahead_pool(language, dir.path(), &hooks).await;
    let first = running(&pool, "sleep:1500").await;
    let next = pool.invoke("next", http("deadline")).await.unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(pool.stats().sent_ahead, 1);
    // Sent 1.5 s before it started, with a 2 s timeout: its deadline is 2 s after its start.
    let remaining = body(&next.result)["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 1000, "{remaining} ms left");
    pool.drain().await;
}

both!(timeout: timeout_python, timeout_node);
async fn timeout(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let mut s = spec(language, dir.path());
    s.timeout = Duration::from_millis(500);
    let pool = Pool::new(s, hooks.clone());
    let warm = pool.invoke("req-1", http("echo:")).await.unwrap();
    let started = Instant::now();
    let err = pool.invoke("req-2", http("hang")).await.unwrap_err();
    assert_eq!(
        err,
        InvokeError::Timeout {
            after: Duration::from_millis(500)
        }
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(!alive(warm.worker_pid), "the timed-out worker is killed");
    assert!(pool.pids().is_empty());
    let next = pool.invoke("req-3", http("echo:after")).await.unwrap();
    assert!(next.cold);
    assert_ne!(next.worker_pid, warm.worker_pid);
    assert!(hooks.events().contains(&PoolEvent::WorkerStopped {
        pid: warm.worker_pid,
        reason: StopReason::Timeout
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_what_the_handler_started_in_other_sessions() {
    let dir = probe_package(Language::Python);
    let pids = tempfile::tempdir().unwrap();
    let hooks = Recorder::new();
    let mut s = spec(Language::Python, dir.path());
    s.timeout = Duration::from_secs(3);
    let pool = Pool::new(s, hooks.clone());
    let escape = format!("escape:{}", pids.path().display());
    let err = pool.invoke("req-1", http(&escape)).await.unwrap_err();
    assert_eq!(
        err,
        InvokeError::Timeout {
            after: Duration::from_secs(3)
        }
    );
    for name in ["setsid", "daemon"] {
        let pid: u32 = std::fs::read_to_string(pids.path().join(name))
            .unwrap_or_else(|e| panic!("the handler wrote no `{name}` pid: {e}"))
            .trim()
            .parse()
            .unwrap();
        wait_for(
            &format!("the {name} process {pid} to die"),
            Duration::from_secs(5),
            || !alive(pid),
        )
        .await;
    }
}

both!(crash: crash_python, crash_node);
async fn crash(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let err = pool.invoke("req-1", http("exit:3")).await.unwrap_err();
    let InvokeError::Crashed { detail } = err else {
        panic!("expected Crashed, got {err:?}")
    };
    assert!(detail.contains("exit status 3"), "{detail}");
    let next = pool.invoke("req-2", http("echo:fine")).await.unwrap();
    assert!(next.cold);
    assert_eq!(body(&next.result)["echo"], "fine");
    assert_eq!(pool.stats().errors, 1);
}

both!(exit_while_idle: exit_while_idle_python, exit_while_idle_node);
async fn exit_while_idle(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let first = pool.invoke("req-1", http("exit-later")).await.unwrap();
    wait_for("the worker to exit", Duration::from_secs(3), || {
        !alive(first.worker_pid)
    })
    .await;
    // The dead idle worker is noticed and replaced: the invocation does not fail.
    let next = pool.invoke("req-2", http("echo:")).await.unwrap();
    assert!(next.cold);
    assert_ne!(next.worker_pid, first.worker_pid);
    assert!(hooks.events().iter().any(|e| matches!(e,
        PoolEvent::WorkerStopped { pid, reason: StopReason::Crashed { detail } }
            if *pid == first.worker_pid && detail.contains("exit status 5"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_failure_python() {
    let dir = support::package(
        Language::Python,
        "def handler(event, context:\n    return 1\n",
    );
    let hooks = Recorder::new();
    let pool = pool(Language::Python, dir.path(), &hooks);
    for request in ["req-1", "req-2"] {
        let err = pool.invoke(request, http("echo:")).await.unwrap_err();
        let InvokeError::LoadFailed { error } = err else {
            panic!("expected LoadFailed, got {err:?}")
        };
        assert_eq!(error.kind, "HandlerLoadError");
        assert!(error.message.contains("SyntaxError"), "{}", error.message);
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.instances, stats.errors, stats.cold_starts),
        (0, 2, 0)
    );
    assert!(pool.pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_failure_node() {
    let dir = support::package(Language::Node, "exports.handler = async (event => 1;\n");
    let hooks = Recorder::new();
    let pool = pool(Language::Node, dir.path(), &hooks);
    let err = pool.invoke("req-1", http("echo:")).await.unwrap_err();
    let InvokeError::LoadFailed { error } = err else {
        panic!("expected LoadFailed, got {err:?}")
    };
    assert_eq!(error.kind, "HandlerLoadError");
    assert!(error.message.contains("SyntaxError"), "{}", error.message);
    assert!(
        hooks
            .wait_for_event(|e| matches!(e, PoolEvent::WorkerFailed { .. }))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_interpreter_is_a_load_failure() {
    let dir = probe_package(Language::Python);
    let mut s = spec(Language::Python, dir.path());
    s.interpreter = "/nonexistent/python3.99".into();
    let pool = Pool::new(s, Recorder::new());
    let err = pool.invoke("req-1", http("echo:")).await.unwrap_err();
    let InvokeError::LoadFailed { error } = err else {
        panic!("expected LoadFailed, got {err:?}")
    };
    assert_eq!(error.kind, "SpawnError");
    assert!(
        error.message.contains("/nonexistent/python3.99"),
        "{}",
        error.message
    );
    assert_eq!(pool.stats().instances, 0);
}

both!(handler_error: handler_error_python, handler_error_node);
async fn handler_error(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let first = pool.invoke("req-0", http("echo:")).await.unwrap();
    let err = pool.invoke("req-1", http("raise:nope")).await.unwrap_err();
    let InvokeError::Handler { error } = err else {
        panic!("expected Handler, got {err:?}")
    };
    let (kind, file) = match language {
        Language::Python => ("ValueError", "handler.py"),
        Language::Node => ("TypeError", "handler.js"),
    };
    assert_eq!(error.kind, kind);
    assert_eq!(error.message, "bad input: nope");
    let stack = error.stack.expect("a stack trace");
    assert!(stack.contains(file), "{stack}");
    // The worker goes on serving.
    let next = pool.invoke("req-2", http("echo:")).await.unwrap();
    assert_eq!(next.worker_pid, first.worker_pid);
    assert_eq!(pool.stats().errors, 1);
}

both!(memory: memory_python, memory_node);
async fn memory(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let mut s = spec(language, dir.path());
    s.memory_mb = 128;
    let pool = Pool::new(s, hooks.clone());
    // Within the limit is fine.
    let ok = pool.invoke("req-1", http("alloc:48")).await.unwrap();
    assert_eq!(body(&ok.result)["allocated_mb"], 48);
    // Twice the limit is not.
    let err = pool.invoke("req-2", http("alloc:256")).await.unwrap_err();
    assert_eq!(err, InvokeError::OutOfMemory { limit_mb: 128 });
    assert!(!alive(ok.worker_pid), "the worker is replaced");
    assert!(hooks.events().contains(&PoolEvent::WorkerStopped {
        pid: ok.worker_pid,
        reason: StopReason::OutOfMemory
    }));
    // The pool keeps serving.
    let next = pool.invoke("req-3", http("echo:after")).await.unwrap();
    assert!(next.cold);
    assert_eq!(body(&next.result)["echo"], "after");
}

both!(logs: logs_python, logs_node);
async fn logs(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    pool.invoke("req-echo", http("echo:")).await.unwrap();
    for i in 0..20 {
        let id = format!("req-print-{i}");
        pool.invoke(&id, http("print")).await.unwrap();
        // Every line of the invocation has arrived, tagged, when `invoke` returns.
        let lines = hooks.lines_of(Some(&id));
        let of = |stream| {
            lines
                .iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, text)| text.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(of(Stream::Stdout), ["out line 1", "out line 2", "partial"]);
        assert_eq!(of(Stream::Stderr), ["err line"]);
    }
    assert!(hooks.lines_of(Some("req-echo")).is_empty());
    // Output while loading belongs to no invocation.
    assert_eq!(
        hooks.lines_of(None),
        [(Stream::Stdout, "loading handler".to_owned())]
    );
}

both!(many_logs: many_logs_python, many_logs_node);
async fn many_logs(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    // About 1 MB: many times what a pipe holds.
    pool.invoke("req-spam", http("spam:10000")).await.unwrap();
    let lines = hooks.lines_of(Some("req-spam"));
    assert_eq!(lines.len(), 10_000);
    assert!(lines.iter().enumerate().all(|(i, (stream, text))| {
        *stream == Stream::Stdout && text.starts_with(&format!("line {i:06} "))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_during_a_resource_call() {
    let dir = probe_package(Language::Python);
    let hooks = Arc::new(Recorder {
        rpc_delay: Duration::from_secs(30),
        ..Recorder::default()
    });
    let mut s = spec(Language::Python, dir.path());
    s.timeout = Duration::from_millis(300);
    let pool = Pool::new(s, hooks.clone());
    let err = pool.invoke("req-1", http("rpc:1")).await.unwrap_err();
    assert_eq!(
        err,
        InvokeError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert_eq!(hooks.calls.lock().unwrap().len(), 1);
    assert!(pool.invoke("req-2", http("echo:")).await.is_ok());
}

both!(rpc: rpc_python, rpc_node);
async fn rpc(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let got = pool.invoke("req-rpc", http("rpc:42")).await.unwrap();
    assert_eq!(
        body(&got.result)["got"],
        serde_json::json!({"id": "42", "total": 12})
    );
    let calls = hooks.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "probe");
    assert_eq!(calls[0].request_id, "req-rpc");
    assert_eq!(calls[0].call["resource"], "orders");
    assert_eq!(calls[0].call["op"], "get");
    assert_eq!(calls[0].call["args"], serde_json::json!({"id": "42"}));
    assert!(calls[0].call["rpc"].is_u64());

    let failed = pool.invoke("req-fail", http("rpc-fail:7")).await.unwrap();
    let b = body(&failed.result);
    assert_eq!(b["type"], "NotFound");
    assert_eq!(b["message"], "no such order");
    assert_eq!(b["class"], "ResourceError");

    let err = pool
        .invoke("req-uncaught", http("rpc-uncaught:7"))
        .await
        .unwrap_err();
    let InvokeError::Handler { error } = err else {
        panic!("expected Handler, got {err:?}")
    };
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("ResourceError", "no such order")
    );
    // Same worker throughout.
    assert_eq!(pool.stats().cold_starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_calls_run_concurrently_node() {
    let dir = probe_package(Language::Node);
    let hooks = Arc::new(Recorder {
        rpc_delay: Duration::from_millis(200),
        ..Recorder::default()
    });
    let pool = Pool::new(spec(Language::Node, dir.path()), hooks.clone());
    pool.invoke("warm", http("echo:")).await.unwrap();
    let got = pool
        .invoke("req-many", http("rpc-many:a,b,c,d"))
        .await
        .unwrap();
    let ids: Vec<_> = body(&got.result)["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert!(
        got.duration < Duration::from_millis(600),
        "{:?}",
        got.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_outside_an_invocation_is_refused_python() {
    let dir = support::package(
        Language::Python,
        "from _nimbus import local_worker\n\
         try:\n    local_worker.rpc('orders', 'get', {})\n    AT_LOAD = 'allowed'\n\
         except Exception as e:\n    AT_LOAD = type(e).__name__\n\
         def handler(event, context):\n    return {'at_load': AT_LOAD}\n",
    );
    let pool = Pool::new(spec(Language::Python, dir.path()), Recorder::new());
    let got = pool.invoke("req-1", http("")).await.unwrap();
    assert_eq!(body(&got.result)["at_load"], "ResourceUnavailableError");
}

both!(drain: drain_python, drain_node);
async fn drain(language: Language) {
    let dir = probe_package(language);
    let hooks = Recorder::new();
    let pool = pool(language, dir.path(), &hooks);
    let in_flight = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.invoke("req-slow", http("sleep:500")).await })
    };
    wait_for("the invocation to start", Duration::from_secs(5), || {
        pool.stats().busy == 1
    })
    .await;
    let pids = pool.pids();
    let draining = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.drain().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        pool.invoke("req-late", http("echo:")).await.unwrap_err(),
        InvokeError::Draining
    );
    let done = in_flight
        .await
        .unwrap()
        .expect("the in-flight invocation completes");
    assert_eq!(body(&done.result)["slept"], 500);
    draining.await.unwrap();
    assert_eq!(pool.stats().instances, 0);
    for pid in pids {
        assert!(!alive(pid));
    }
    assert!(hooks.events().iter().any(|e| matches!(
        e,
        PoolEvent::WorkerStopped {
            reason: StopReason::Drained,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_what_is_still_running() {
    let dir = probe_package(Language::Python);
    let hooks = Recorder::new();
    let mut s = spec(Language::Python, dir.path());
    s.max_concurrency = 1;
    let pool = Pool::new(s, hooks.clone());
    let hung = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.invoke("req-hang", http("hang")).await })
    };
    wait_for("the invocation to start", Duration::from_secs(5), || {
        pool.stats().busy == 1
    })
    .await;
    let queued = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.invoke("req-queued", http("echo:")).await })
    };
    wait_for("the second to queue", Duration::from_secs(1), || {
        pool.stats().queued == 1
    })
    .await;
    let pid = pool.pids()[0];
    let started = Instant::now();
    pool.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(queued.await.unwrap().unwrap_err(), InvokeError::Draining);
    let err = hung.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, InvokeError::Crashed { detail } if detail.contains("shut down")),
        "{err:?}"
    );
    assert!(!alive(pid));
    assert_eq!(pool.stats().instances, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_wait_leaves_the_queue() {
    let dir = probe_package(Language::Python);
    let mut s = spec(Language::Python, dir.path());
    s.max_concurrency = 1;
    let pool = Pool::new(s, Recorder::new());
    let slow = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.invoke("req-slow", http("sleep:300")).await })
    };
    wait_for("the invocation to start", Duration::from_secs(5), || {
        pool.stats().busy == 1
    })
    .await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        pool.invoke("req-impatient", http("echo:")),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(pool.stats().queued, 0);
    slow.await.unwrap().unwrap();
    let next = pool.invoke("req-next", http("echo:")).await.unwrap();
    assert!(!next.cold);
    let stats = pool.stats();
    assert_eq!((stats.busy, stats.instances, stats.invocations), (0, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_working_directory() {
    let dir = support::package(
        Language::Python,
        "import os\n\
         def handler(event, context):\n    return {k: os.environ.get(k) for k in \
         ('GREETING', 'NIMBUS_PROVIDER', 'NIMBUS_MEMORY_LIMIT_MB', 'PYTHONUNBUFFERED')} | \
         {'cwd': os.getcwd(), 'stdin': os.read(0, 10).decode()}\n",
    );
    let pool = Pool::new(spec(Language::Python, dir.path()), Recorder::new());
    let got = body(&pool.invoke("req-1", http("")).await.unwrap().result);
    assert_eq!(got["GREETING"], "hi");
    assert_eq!(got["NIMBUS_PROVIDER"], "local");
    assert_eq!(got["NIMBUS_MEMORY_LIMIT_MB"], "256");
    assert_eq!(got["PYTHONUNBUFFERED"], "1");
    assert_eq!(got["stdin"], "", "stdin is /dev/null");
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(got["cwd"], cwd.to_str().unwrap());
}
