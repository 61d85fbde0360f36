//! Destroy: reverse dependency order; data kept unless forced.

use std::time::Duration;

use nimbus_engine::{Options, reference};
use serde_json::json;

use crate::support::{Call, FakeCloud, Fixture, after, id, position, res};

#[tokio::test(start_paused = true)]
async fn destroy_deletes_dependents_first() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(10));
    let desired = [
        res("net", json!({})),
        after(res("subnet", json!({})), &["net"]),
        after(
            res("fn", json!({"role": reference(&id("role"), "arn")})),
            &["subnet"],
        ),
        res("role", json!({})),
        res("lonely", json!({})),
    ];
    fixture.engine(&cloud).apply(&desired).await.unwrap();
    cloud.clear_calls();
    let report = fixture.engine(&cloud).destroy(false).await.unwrap();
    assert_eq!(report.summary.delete, 5);
    assert!(report.retained.is_empty());
    let calls = cloud.calls();
    let at = |name: &str| position(&calls, &Call::Delete(name.into()));
    assert!(at("fn") < at("subnet") && at("subnet") < at("net"));
    assert!(at("fn") < at("role"));
    assert!(
        cloud.max_in_flight() > 1,
        "independent deletes run in parallel"
    );
    assert!(cloud.objects().is_empty());
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    assert!(state.resources.is_empty() && state.journal.is_empty());
    // Destroying again is a no-op.
    assert_eq!(
        fixture
            .engine(&cloud)
            .destroy(false)
            .await
            .unwrap()
            .calls
            .writes(),
        0
    );
}

#[tokio::test]
async fn resources_holding_data_are_kept_unless_forced() {
    let fixture = Fixture::local();
    let cloud = FakeCloud::new();
    let mut table = after(res("table", json!({})), &["key"]);
    table.retain_data = true;
    let mut empty_bucket = res("bucket", json!({}));
    empty_bucket.retain_data = true;
    let desired = [
        res("key", json!({})),
        table,
        empty_bucket,
        res("fn", json!({"table": reference(&id("table"), "arn")})),
    ];
    fixture.engine(&cloud).apply(&desired).await.unwrap();
    cloud.set_holds_data("table", true);

    let report = fixture.engine(&cloud).destroy(false).await.unwrap();
    let retained: Vec<(&str, &str)> = report
        .retained
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        retained,
        [
            (
                "fake.thing/key",
                "the retained `fake.thing/table` depends on it"
            ),
            (
                "fake.thing/table",
                "it holds data; destroy with force to delete it"
            ),
        ]
    );
    assert_eq!(
        report.summary.delete, 2,
        "the function and the empty bucket"
    );
    assert_eq!(cloud.objects().keys().collect::<Vec<_>>(), ["key", "table"]);
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 2, "what is kept stays recorded");
    assert!(cloud.calls().contains(&Call::HoldsData("bucket".into())));

    let report = fixture.engine(&cloud).destroy(true).await.unwrap();
    assert_eq!(report.summary.delete, 2);
    assert!(report.retained.is_empty());
    assert!(cloud.objects().is_empty());
    let calls = cloud.calls();
    assert!(
        position(&calls, &Call::Delete("table".into()))
            < position(&calls, &Call::Delete("key".into()))
    );
}

#[tokio::test]
async fn apply_refuses_to_delete_or_replace_data_unless_allowed() {
    let fixture = Fixture::local();
    let cloud = FakeCloud::new();
    let table = |key: &str| {
        let mut t = res("table", json!({ "key": key }));
        t.replace_on = vec!["key".into()];
        t.retain_data = true;
        t
    };
    let mut bucket = res("bucket", json!({}));
    bucket.retain_data = true;
    fixture
        .engine(&cloud)
        .apply(&[table("id"), bucket.clone()])
        .await
        .unwrap();
    cloud.set_holds_data("table", true);
    cloud.set_holds_data("bucket", false);
    let writes = cloud.writes();

    // A new key replaces the table: refused, nothing written, the state untouched.
    let before = fixture.raw_state();
    let err = fixture
        .engine(&cloud)
        .apply(&[table("sku"), bucket.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, nimbus_engine::Error::WouldLoseData { resources, .. } if resources == &["fake.thing/table (replace)"]),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("--force"));
    // Dropping the table from the manifest is refused too; an empty bucket may go.
    let err = fixture.engine(&cloud).apply(&[]).await.unwrap_err();
    assert!(
        matches!(&err, nimbus_engine::Error::WouldLoseData { resources, .. } if resources == &["fake.thing/table (delete)"]),
        "{err}"
    );
    assert_eq!(cloud.writes(), writes);
    assert_eq!(fixture.raw_state(), before);
    assert!(fixture.engine(&cloud).lock_info().await.unwrap().is_none());

    // Allowed: the table is replaced and the empty bucket deleted.
    let allow = Options {
        allow_data_loss: true,
        ..crate::support::options()
    };
    let report = fixture
        .engine_with(&cloud, allow)
        .apply(&[table("sku")])
        .await
        .unwrap();
    assert_eq!((report.summary.replace, report.summary.delete), (1, 1));
}
