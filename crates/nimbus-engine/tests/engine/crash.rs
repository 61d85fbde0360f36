//! Crashes: the apply future is dropped at many different points (a timeout around it), then
//! the lock is removed as `nimbus unlock` would, and a re-run must converge with every resource
//! existing exactly once and the state matching the cloud.

use std::time::Duration;

use nimbus_engine::{NativeResource, reference};
use serde_json::json;

use crate::support::{FakeCloud, Fixture, after, assert_converged, id, res};

fn v1() -> Vec<NativeResource> {
    let mut table = res("table", json!({"key": "id"}));
    table.replace_on = vec!["key".into()];
    vec![
        res("role", json!({"policy": "read"})),
        res("queue", json!({"visibility": 30})),
        table,
        res("old", json!({"x": 1})),
        after(
            res(
                "fn",
                json!({"memory": 256, "role": reference(&id("role"), "arn")}),
            ),
            &["queue", "table"],
        ),
        after(
            res("alarm", json!({"on": reference(&id("fn"), "arn")})),
            &["old"],
        ),
        res("topic", json!({"fifo": false})),
    ]
}

const ALL_V1: [&str; 7] = ["role", "queue", "table", "old", "fn", "alarm", "topic"];

/// Every kind of change: update, replace, delete, create, and a dependency that moves.
fn v2() -> Vec<NativeResource> {
    let mut table = res("table", json!({"key": "sk"}));
    table.replace_on = vec!["key".into()];
    vec![
        res("role", json!({"policy": "write"})),
        res("queue", json!({"visibility": 30})),
        table,
        after(
            res(
                "fn",
                json!({"memory": 512, "role": reference(&id("role"), "arn")}),
            ),
            &["queue", "table"],
        ),
        res(
            "alarm",
            json!({"on": reference(&id("fn"), "arn"), "threshold": 3}),
        ),
        after(res("new", json!({"y": 2})), &["topic"]),
        res("topic", json!({"fifo": false})),
    ]
}

/// Drops `apply(desired)` after `cut`, then clears the lock the dead run left. Returns whether
/// the cut landed before the apply finished.
async fn crash(
    fixture: &Fixture,
    cloud: &std::sync::Arc<FakeCloud>,
    desired: &[NativeResource],
    cut: Duration,
) -> bool {
    let engine = fixture.engine(cloud);
    let finished = tokio::time::timeout(cut, engine.apply(desired)).await;
    if let Ok(result) = finished {
        result.unwrap();
        return false;
    }
    if let Some(lock) = engine.lock_info().await.unwrap() {
        assert!(
            engine.apply(desired).await.is_err(),
            "a dead run's lock still holds"
        );
        engine.unlock(&lock.id).await.unwrap();
    }
    true
}

/// Cuts every `step` from 0 until the apply finishes before the cut. `created` names the
/// resources the transition creates (or replaces): each must have been created exactly once
/// more, every other resource not at all.
async fn crash_everywhere(
    fixture: impl Fn() -> Fixture,
    from: Option<&[NativeResource]>,
    to: &[NativeResource],
    created: &[&str],
) {
    let step = Duration::from_micros(500);
    let mut cuts = 0;
    for i in 0.. {
        let fixture = fixture();
        fixture.set_store_latency(Duration::from_micros(700));
        let cloud = FakeCloud::new();
        if let Some(from) = from {
            fixture.engine(&cloud).apply(from).await.unwrap();
        }
        let created_before = cloud.creations();
        cloud.set_latency(Duration::from_millis(4));
        if !crash(&fixture, &cloud, to, step * i).await {
            break;
        }
        cuts += 1;
        let report = fixture
            .engine(&cloud)
            .apply(to)
            .await
            .unwrap_or_else(|e| panic!("re-run after a cut at {:?}: {e}", step * i));
        let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
        assert_converged(&cloud, &state, to);
        for (name, count) in cloud.creations() {
            let before = created_before.get(&name).copied().unwrap_or(0);
            let expected = before + u32::from(created.contains(&name.as_str()));
            assert_eq!(
                count,
                expected,
                "`{name}` created {count} times, expected {expected} (cut at {:?})",
                step * i
            );
        }
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let again = fixture.engine(&cloud).apply(to).await.unwrap();
        assert_eq!(
            again.calls.writes(),
            0,
            "converged: a third run changes nothing"
        );
    }
    assert!(cuts >= 15, "only {cuts} cut points");
    eprintln!("{cuts} cut points");
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_dropped_anywhere_converges_on_rerun_in_memory() {
    crash_everywhere(Fixture::memory, None, &v1(), &ALL_V1).await;
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_dropped_anywhere_converges_on_rerun_local_file() {
    crash_everywhere(Fixture::local, None, &v1(), &ALL_V1).await;
}

#[tokio::test(start_paused = true)]
async fn an_update_dropped_anywhere_converges_on_rerun_in_memory() {
    crash_everywhere(Fixture::memory, Some(&v1()), &v2(), &["table", "new"]).await;
}

#[tokio::test(start_paused = true)]
async fn an_update_dropped_anywhere_converges_on_rerun_local_file() {
    crash_everywhere(Fixture::local, Some(&v1()), &v2(), &["table", "new"]).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_a_create_but_before_its_result_is_saved_is_adopted() {
    // The store is slow and the cloud is fast: cut after the create happened, while its result
    // is still being saved.
    let fixture = Fixture::memory();
    fixture.set_store_latency(Duration::from_millis(10));
    let cloud = FakeCloud::new();
    let desired = [res("only", json!({"a": 1}))];
    // load (get), lock, journal save (get + put) = 40 ms; create is instant; cut in the save
    // of its result.
    assert!(crash(&fixture, &cloud, &desired, Duration::from_millis(45)).await);
    assert_eq!(cloud.objects().len(), 1, "the cloud made it");
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    assert!(state.resources.is_empty());
    assert_eq!(state.journal.len(), 1, "but only the journal knows");
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    assert_eq!(report.adopted, [id("only")]);
    assert_eq!(report.calls.writes(), 0, "adopted, not created again");
    assert_converged(
        &cloud,
        &fixture.engine(&cloud).state().await.unwrap().unwrap(),
        &desired,
    );
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_create_without_a_physical_name_is_reported() {
    let fixture = Fixture::memory();
    fixture.set_store_latency(Duration::from_millis(10));
    let cloud = FakeCloud::new();
    let mut unnamed = res("unnamed", json!({}));
    unnamed.physical_name = None;
    assert!(
        crash(
            &fixture,
            &cloud,
            std::slice::from_ref(&unnamed),
            Duration::from_millis(45)
        )
        .await
    );
    let report = fixture.engine(&cloud).apply(&[unnamed]).await.unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.warnings[0].contains("no physical name"),
        "{}",
        report.warnings[0]
    );
}
