//! Apply: dependency order, bounded parallelism, retries, zero-write redeploys, failures,
//! adoption of lost creates, replace order, progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nimbus_engine::{Action, Error, Event, JournalOp, Options, reference};
use serde_json::json;

use crate::support::{
    Call, FakeCloud, Fixture, after, assert_converged, id, options, position, res,
};

/// A small app: a network, a role, a queue; a function that refers to the role and waits for
/// the network; an alarm on the function.
fn app() -> Vec<nimbus_engine::NativeResource> {
    vec![
        after(
            res(
                "alarm",
                json!({"threshold": 5, "target": reference(&id("fn"), "arn")}),
            ),
            &[],
        ),
        after(
            res(
                "fn",
                json!({"memory": 256, "role": reference(&id("role"), "arn")}),
            ),
            &["net", "queue"],
        ),
        res("net", json!({"cidr": "10.0.0.0/16"})),
        res("queue", json!({"visibility": 30})),
        res("role", json!({"policy": "read"})),
    ]
}

#[tokio::test(start_paused = true)]
async fn resources_are_created_after_what_they_depend_on() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(10));
    let desired = app();
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    assert_eq!(report.summary.create, 5);
    let calls = cloud.calls();
    for r in &desired {
        for dep in r.dependencies() {
            assert!(
                position(&calls, &Call::Create(dep.clone()))
                    < position(&calls, &Call::Create(r.id.clone())),
                "{dep} before {}",
                r.id
            );
        }
    }
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &desired,
    );
    assert_eq!(
        report.outputs[&id("fn")]["arn"],
        json!("fake:fake.thing:fn")
    );
}

#[tokio::test(start_paused = true)]
async fn parallelism_is_used_and_never_exceeds_the_bound() {
    let independent: Vec<_> = (0..20)
        .map(|i| res(&format!("r{i:02}"), json!({"i": i})))
        .collect();
    for (parallelism, expected) in [(4, 4), (8, 8), (1, 1), (50, 20)] {
        let cloud = FakeCloud::new();
        cloud.set_latency(Duration::from_millis(10));
        let engine = Fixture::memory().engine_with(
            &cloud,
            Options {
                parallelism,
                ..options()
            },
        );
        engine.apply(&independent).await.unwrap();
        assert_eq!(cloud.max_in_flight(), expected, "parallelism {parallelism}");
    }
    // A chain cannot run in parallel.
    let chain: Vec<_> = (0..6)
        .map(|i| {
            if i == 0 {
                res("c0", json!({}))
            } else {
                after(res(&format!("c{i}"), json!({})), &[&format!("c{}", i - 1)])
            }
        })
        .collect();
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(10));
    Fixture::memory()
        .engine(&cloud)
        .apply(&chain)
        .await
        .unwrap();
    assert_eq!(cloud.max_in_flight(), 1);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_with_backoff() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.throttle(&id("queue"), 2);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let engine = fixture
        .engine(&cloud)
        .on_progress(move |e| seen.lock().unwrap().push(e.clone()));
    let report = engine.apply(&app()).await.unwrap();
    assert_eq!(report.calls.creates, 5 + 2);
    let retries: Vec<(u32, Duration)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retrying {
                id: i,
                attempt,
                delay,
                message,
                ..
            } if *i == id("queue") => {
                assert_eq!(message, "Throttling: rate exceeded");
                Some((*attempt, *delay))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        [(1, Duration::from_millis(1)), (2, Duration::from_millis(2))]
    );

    // Past the attempt limit, it fails with the cloud's message.
    let cloud = FakeCloud::new();
    cloud.throttle(&id("net"), 10);
    let err = Fixture::memory()
        .engine(&cloud)
        .apply(&app())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`fake.thing/net` (create): Throttling: rate exceeded"),
        "{err}"
    );
    assert_eq!(
        cloud
            .calls()
            .iter()
            .filter(|c| **c == Call::Create(id("net")))
            .count(),
        4
    );
}

#[tokio::test]
async fn an_unchanged_redeploy_makes_zero_write_calls() {
    let fixture = Fixture::local();
    let cloud = FakeCloud::new();
    let first = fixture.engine(&cloud).apply(&app()).await.unwrap();
    let before = fixture.raw_state().unwrap();
    let writes = cloud.writes();
    let again = fixture.engine(&cloud).apply(&app()).await.unwrap();
    assert_eq!(again.calls.writes(), 0);
    assert_eq!(again.calls.reads, 0);
    assert_eq!(again.summary.same, 5);
    assert_eq!(again.summary.changes(), 0);
    assert_eq!(
        again.serial, first.serial,
        "nothing to record, nothing written"
    );
    assert_eq!(fixture.raw_state().unwrap(), before);
    assert_eq!(cloud.writes(), writes);
}

#[tokio::test]
async fn apply_if_changed_writes_nothing_when_nothing_changed() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let desired = app();
    let report = fixture
        .engine(&cloud)
        .apply_if_changed(&desired)
        .await
        .unwrap();
    assert_eq!(report.summary.create, desired.len());
    let (cloud_writes, store_writes) = (cloud.writes(), fixture.store_writes());
    // Unchanged: neither the cloud nor the store (state, lock) is written.
    let report = fixture
        .engine(&cloud)
        .apply_if_changed(&desired)
        .await
        .unwrap();
    assert_eq!(report.summary.same, desired.len());
    assert!(!report.outputs.is_empty());
    assert_eq!(cloud.writes(), cloud_writes);
    assert_eq!(fixture.store_writes(), store_writes);
    // Changed: applied under the lock, as `apply` does.
    let mut changed = desired.clone();
    changed[0].properties["extra"] = json!(1);
    let report = fixture
        .engine(&cloud)
        .apply_if_changed(&changed)
        .await
        .unwrap();
    assert_eq!(report.summary.update, 1);
    assert!(fixture.store_writes() > store_writes);
    // A lock held by someone else is never skipped over: the apply reports it.
    let held = nimbus_engine::LockInfo::new("shop/dev", "apply", &Default::default());
    nimbus_engine::Backend::try_lock(&fixture.backend(), &held)
        .await
        .unwrap();
    let err = fixture
        .engine(&cloud)
        .apply_if_changed(&changed)
        .await
        .unwrap_err();
    assert!(matches!(err, nimbus_engine::Error::Locked { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_half_way_keeps_a_consistent_state_and_a_rerun_converges() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(4));
    let desired: Vec<_> = (0..12)
        .map(|i| match i % 3 {
            0 => res(&format!("r{i:02}"), json!({"i": i})),
            _ => after(
                res(&format!("r{i:02}"), json!({"i": i})),
                &[&format!("r{:02}", i - 1)],
            ),
        })
        .collect();
    cloud.fail_after(Some(5));
    let err = fixture.engine(&cloud).apply(&desired).await.unwrap_err();
    let Error::Failed {
        failures, report, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|f| f.message == "InternalFailure: injected failure")
    );
    assert!(
        err.to_string()
            .starts_with("apply of `shop/dev` on `fake` failed: `fake.thing/"),
        "{err}"
    );
    assert_eq!(report.summary.create, 5);
    assert!(
        fixture.engine(&cloud).lock_info().await.unwrap().is_none(),
        "the lock is released"
    );

    // What was created is recorded; what failed is journaled with the cloud's message.
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 5);
    assert_eq!(cloud.objects().len(), 5);
    for e in &state.resources {
        assert_eq!(cloud.objects()[&e.physical_id].properties, e.properties);
    }
    assert_eq!(state.journal.len(), failures.len());
    assert!(state.journal.iter().all(|j| j.op == JournalOp::Create
        && j.error.as_deref() == Some("InternalFailure: injected failure")));

    cloud.heal();
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    assert_eq!(report.summary.create, 7);
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &desired,
    );
    assert!(
        cloud.creations().values().all(|&n| n == 1),
        "nothing created twice"
    );
}

#[tokio::test]
async fn a_failing_resource_is_named_with_the_clouds_message() {
    let cloud = FakeCloud::new();
    cloud.fail(&id("role"));
    let fixture = Fixture::memory();
    let err = fixture.engine(&cloud).apply(&app()).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "`fake.thing/role` (create): AccessDenied: not allowed to change `fake.thing/role`"
        ),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("run the same command again"));
    // fn and alarm depend on role and never started; the rest was created.
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    let ids: Vec<&str> = state.resources.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["fake.thing/net", "fake.thing/queue"]);
    assert!(!cloud.calls().contains(&Call::Create(id("fn"))));
}

#[tokio::test]
async fn a_lost_create_response_is_adopted_through_the_physical_name() {
    // Retryable: the retry finds the resource and adopts it in the same run.
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.lose_create_response(&id("queue"), true);
    let report = fixture.engine(&cloud).apply(&app()).await.unwrap();
    assert_eq!(report.adopted, [id("queue")]);
    assert_eq!(
        cloud
            .calls()
            .iter()
            .filter(|c| **c == Call::Create(id("queue")))
            .count(),
        1
    );
    assert!(cloud.calls().contains(&Call::Read("queue".into())));
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &app(),
    );

    // Permanent: this run fails; the next one reads the journal, finds it and adopts it, then
    // updates it to what is desired now.
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.lose_create_response(&id("queue"), false);
    let err = fixture.engine(&cloud).apply(&app()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`fake.thing/queue` (create): RequestTimeout"),
        "{err}"
    );
    let plan = fixture.engine(&cloud).plan(&app(), false).await.unwrap();
    assert_eq!(plan.interrupted.len(), 1);
    assert!(
        plan.render()
            .contains("! interrupted create of fake.thing/queue (failed: RequestTimeout"),
        "{}",
        plan.render()
    );
    let mut desired = app();
    desired[3].properties = json!({"visibility": 60});
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    assert_eq!(report.adopted, [id("queue")]);
    assert_eq!(
        report.summary.update, 1,
        "adopted with its live properties, then updated"
    );
    assert_eq!(cloud.creations()["queue"], 1);
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &desired,
    );
}

#[tokio::test]
async fn replace_deletes_then_creates_and_dependents_follow_new_outputs() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let bucket = |region: &str| {
        let mut r = res("bucket", json!({"region": region}));
        r.physical_name = None;
        r.replace_on = vec!["region".into()];
        r
    };
    let func = res("fn", json!({"bucket": reference(&id("bucket"), "arn")}));
    fixture
        .engine(&cloud)
        .apply(&[bucket("eu"), func.clone()])
        .await
        .unwrap();
    cloud.clear_calls();
    let desired = [bucket("us"), func];
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    assert_eq!((report.summary.replace, report.summary.update), (1, 1));
    assert_eq!(
        cloud.calls(),
        [
            Call::Delete("fake-1".into()),
            Call::Create(id("bucket")),
            Call::Update(id("fn"))
        ]
    );
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &desired,
    );
}

#[tokio::test(start_paused = true)]
async fn progress_reports_each_resource_and_a_summary() {
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(10));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let engine = Fixture::memory()
        .engine(&cloud)
        .on_progress(move |e| seen.lock().unwrap().push(e.clone()));
    engine.apply(&app()).await.unwrap();
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 5 * 2 + 1);
    for r in app() {
        let started = events.iter().position(
            |e| matches!(e, Event::Started { id, action: Action::Create } if *id == r.id),
        );
        let done = events.iter().position(|e| matches!(e, Event::Done { id, action: Action::Create, elapsed } if *id == r.id && *elapsed == Duration::from_millis(10)));
        assert!(started.unwrap() < done.unwrap(), "{}", r.id);
    }
    let Event::Finished {
        summary,
        calls,
        failed,
        elapsed,
    } = events.last().unwrap()
    else {
        panic!()
    };
    assert_eq!((summary.create, calls.creates, *failed), (5, 5, 0));
    assert_eq!(*elapsed, Duration::from_millis(30), "three levels of 10 ms");
    let line = serde_json::to_string(events.last().unwrap()).unwrap();
    assert!(
        line.starts_with(r#"{"event":"finished","summary":{"create":5"#),
        "{line}"
    );
}

#[tokio::test]
async fn an_invalid_graph_is_refused_before_anything_happens() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let err = engine
        .apply(&[after(res("a", json!({})), &["ghost"])])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownDependency { id, dependency } if id == "fake.thing/a" && dependency == "fake.thing/ghost")
    );
    let cycle = [
        after(res("a", json!({})), &["b"]),
        res("b", json!({"a": reference(&id("a"), "arn")})),
    ];
    let err = engine.apply(&cycle).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle `fake.thing/a` → `fake.thing/b` → `fake.thing/a` (each depends on the next): remove one of these dependencies"
    );
    assert!(engine.plan(&cycle, false).await.is_err());
    assert!(cloud.calls().is_empty());
    assert!(engine.lock_info().await.unwrap().is_none());
    assert!(engine.state().await.unwrap().is_none());
}

#[test]
fn engine_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let desired = app();
    assert_send(&engine.apply(&desired));
    assert_send(&engine.plan(&desired, true));
    assert_send(&engine.destroy(false));
}
