//! Refresh: changes made in the cloud behind the engine's back are reported as drift, exactly,
//! and corrected by an apply with refresh.

use nimbus_engine::{Action, Drift, Options, PropertyChange};
use serde_json::json;

use crate::support::{Call, FakeCloud, Fixture, assert_converged, id, options, res};

fn desired() -> Vec<nimbus_engine::NativeResource> {
    vec![
        res(
            "fn",
            json!({"memory": 256, "timeout": 10, "env": {"A": "1"}}),
        ),
        res("queue", json!({"visibility": 30})),
        res("topic", json!({})),
    ]
}

#[tokio::test]
async fn a_change_behind_the_engines_back_is_reported_as_drift() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    engine.apply(&desired()).await.unwrap();
    cloud.tamper("fn", "memory", json!(1024));

    let blind = engine.plan(&desired(), false).await.unwrap();
    assert!(
        !blind.has_changes(),
        "without refresh the state is believed"
    );

    cloud.clear_calls();
    let plan = engine.plan(&desired(), true).await.unwrap();
    assert!(plan.refreshed);
    assert_eq!(
        cloud
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Read(_)))
            .count(),
        3
    );
    assert_eq!(cloud.calls().len(), 3, "a refresh only reads");
    let rows: Vec<_> = plan
        .resources
        .iter()
        .filter(|r| !r.drift.is_empty())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, id("fn"));
    assert_eq!(
        rows[0].drift,
        [Drift {
            path: "memory".into(),
            state: Some(json!(256)),
            live: Some(json!(1024))
        }]
    );
    assert_eq!(rows[0].action, Action::Update);
    assert_eq!(
        rows[0].changes,
        [PropertyChange {
            path: "memory".into(),
            before: Some(json!(1024)),
            after: Some(json!(256)),
            known_after_apply: false,
            forces_replacement: false
        }]
    );
    assert_eq!(plan.summary.update, 1);
    assert_eq!(plan.summary.same, 2);
    let text = plan.render();
    assert!(text.contains("  ~ update  fake.thing/fn (memory: 1024 → 256)\n      drift: memory: state 256, live 1024\n"), "{text}");
    assert!(text.starts_with("Plan for `shop/dev` on `fake` (refreshed):"));
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(
        json["resources"][0]["drift"],
        json!([{"path": "memory", "state": 256, "live": 1024}])
    );

    let engine = fixture.engine_with(
        &cloud,
        Options {
            refresh: true,
            ..options()
        },
    );
    let report = engine.apply(&desired()).await.unwrap();
    assert_eq!((report.summary.update, report.calls.writes()), (1, 1));
    assert_eq!(cloud.objects()["fn"].properties["memory"], json!(256));
    assert_converged(&cloud, &engine.state().await.unwrap().unwrap(), &desired());
    assert!(!engine.plan(&desired(), true).await.unwrap().has_changes());
}

#[tokio::test]
async fn a_resource_deleted_behind_the_engines_back_is_created_again() {
    let fixture = Fixture::local();
    let cloud = FakeCloud::new();
    fixture.engine(&cloud).apply(&desired()).await.unwrap();
    cloud.delete_behind("queue");
    let plan = fixture.engine(&cloud).plan(&desired(), true).await.unwrap();
    let row = plan.resources.iter().find(|r| r.id == id("queue")).unwrap();
    assert!(row.missing_in_cloud);
    assert_eq!(row.action, Action::Create);
    assert!(
        plan.render()
            .contains("  + create  fake.thing/queue\n      drift: deleted outside nimbus\n"),
        "{}",
        plan.render()
    );

    // Without refresh, apply trusts the state; with it, the queue comes back.
    assert_eq!(
        fixture
            .engine(&cloud)
            .apply(&desired())
            .await
            .unwrap()
            .calls
            .writes(),
        0
    );
    let engine = fixture.engine_with(
        &cloud,
        Options {
            refresh: true,
            ..options()
        },
    );
    let report = engine.apply(&desired()).await.unwrap();
    assert_eq!(report.summary.create, 1);
    assert_converged(&cloud, &engine.state().await.unwrap().unwrap(), &desired());

    // Gone from the cloud and no longer desired: the refresh forgets it, with no delete call.
    cloud.delete_behind("topic");
    let report = engine.apply(&desired()[..2]).await.unwrap();
    assert_eq!((report.summary.delete, report.calls.deletes), (1, 0));
    assert_converged(
        &cloud,
        &engine.state().await.unwrap().unwrap(),
        &desired()[..2],
    );
}
