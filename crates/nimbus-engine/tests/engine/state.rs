//! State, over both backends: corrupt, newer-version, foreign-lineage and stale states are
//! refused and left untouched; serials count writes; local writes are atomic.

use nimbus_engine::{Backend, Deployment, Error, LocalBackend, State};
use serde_json::json;

use crate::both_backends;
use crate::support::{AnyBackend, FakeCloud, Fixture, res};

both_backends!(
    a_corrupt_state_is_refused_and_left_untouched,
    a_newer_state_version_is_refused_and_left_untouched,
    another_lineage_is_never_overwritten,
    a_stale_serial_is_refused,
    another_deployments_state_is_refused,
    the_state_records_what_was_applied_and_counts_writes,
);

async fn assert_refused(fixture: &Fixture, bytes: &[u8], expect: impl Fn(&Error) -> bool) {
    fixture.write_raw_state(bytes);
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let desired = [res("a", json!({}))];
    for err in [
        engine.apply(&desired).await.unwrap_err(),
        engine.plan(&desired, false).await.unwrap_err(),
        engine.destroy(true).await.unwrap_err(),
    ] {
        assert!(expect(&err), "{err:?}");
    }
    assert_eq!(fixture.raw_state().unwrap(), bytes, "left untouched");
    assert!(cloud.calls().is_empty());
    assert!(
        engine.lock_info().await.unwrap().is_none(),
        "the lock is released"
    );
}

async fn a_corrupt_state_is_refused_and_left_untouched(fixture: Fixture) {
    let bytes = b"{\"version\": 1, \"lineage\": \"abc\", \"serial\": 3, \"resour";
    assert_refused(&fixture, bytes, |e| matches!(e, Error::CorruptState { .. })).await;
    let message = fixture
        .engine(&FakeCloud::new())
        .state()
        .await
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("state at ") && message.ends_with("is corrupt, so it was left untouched: restore it from a backup or repair it by hand"), "{message}");
}

async fn a_newer_state_version_is_refused_and_left_untouched(fixture: Fixture) {
    let bytes = br#"{"version": 99, "lineage": "abc", "serial": 3, "from": "the future"}"#;
    assert_refused(&fixture, bytes, |e| {
        matches!(
            e,
            Error::NewerState {
                found: 99,
                supported: 1,
                ..
            }
        )
    })
    .await;
}

async fn another_lineage_is_never_overwritten(fixture: Fixture) {
    let cloud = FakeCloud::new();
    fixture
        .engine(&cloud)
        .apply(&[res("a", json!({}))])
        .await
        .unwrap();
    let ours = fixture.engine(&cloud).state().await.unwrap().unwrap();
    // Someone puts another deployment's state (same names, new lineage) in its place.
    let mut theirs = State::new(&crate::support::deployment());
    theirs.serial = 1;
    let theirs_bytes = theirs.to_bytes();
    fixture.write_raw_state(&theirs_bytes);
    let mut next = ours.clone();
    next.serial += 1;
    let err = fixture.backend().save(&next).await.unwrap_err();
    assert!(
        matches!(&err, Error::LineageMismatch { found, expected, .. } if *found == theirs.lineage && *expected == ours.lineage),
        "{err}"
    );
    assert!(err.to_string().contains("so it was not overwritten"));
    assert_eq!(fixture.raw_state().unwrap(), theirs_bytes);
}

async fn a_stale_serial_is_refused(fixture: Fixture) {
    let cloud = FakeCloud::new();
    fixture
        .engine(&cloud)
        .apply(&[res("a", json!({}))])
        .await
        .unwrap();
    let stored = fixture.raw_state().unwrap();
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    let err = fixture.backend().save(&state).await.unwrap_err();
    assert!(
        matches!(err, Error::StateConflict { found, writing, .. } if found == state.serial && writing == state.serial)
    );
    assert_eq!(fixture.raw_state().unwrap(), stored);
}

async fn another_deployments_state_is_refused(fixture: Fixture) {
    let other = State::new(&Deployment::new("shop", "prod", "fake").unwrap());
    assert_refused(
        &fixture,
        &other.to_bytes(),
        |e| matches!(e, Error::WrongDeployment { found, .. } if found == "`shop/prod` on `fake`"),
    )
    .await;
}

async fn the_state_records_what_was_applied_and_counts_writes(fixture: Fixture) {
    let cloud = FakeCloud::new();
    let mut table = res("table", json!({"key": "id"}));
    table.retain_data = true;
    let desired = [
        res("a", json!({"x": 1})),
        crate::support::after(res("b", json!({})), &["a"]),
        table,
    ];
    let report = fixture.engine(&cloud).apply(&desired).await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(&fixture.raw_state().unwrap()).unwrap();
    assert_eq!(state["version"], 1);
    assert_eq!(state["service"], "shop");
    assert_eq!(state["stage"], "dev");
    assert_eq!(state["provider"], "fake");
    assert_eq!(state["lineage"].as_str().unwrap().len(), 32);
    // Two writes per operation: the journal entry, then the result.
    assert_eq!(state["serial"], 6);
    assert_eq!(report.serial, 6);
    assert_eq!(state["journal"], json!([]));
    assert_eq!(
        state["resources"][1],
        json!({
            "id": "fake.thing/b", "kind": "fake.thing", "physical_id": "b", "physical_name": "b",
            "properties": {}, "outputs": {"arn": "fake:fake.thing:b"},
            "depends_on": ["fake.thing/a"], "retain_data": false
        })
    );
    assert_eq!(state["resources"][2]["retain_data"], true);
    let lineage = state["lineage"].clone();
    let mut changed = desired.to_vec();
    changed[0].properties = json!({"x": 2});
    let report = fixture.engine(&cloud).apply(&changed).await.unwrap();
    assert_eq!(report.serial, 8);
    let state: serde_json::Value = serde_json::from_slice(&fixture.raw_state().unwrap()).unwrap();
    assert_eq!(state["lineage"], lineage, "the lineage never changes");
}

#[tokio::test]
async fn local_state_is_written_atomically() {
    let fixture = Fixture::local();
    let cloud = FakeCloud::new();
    let Fixture::Local(dir) = &fixture else {
        unreachable!()
    };
    let AnyBackend::Local(backend) = fixture.backend() else {
        unreachable!()
    };
    let desired: Vec<_> = (0..5)
        .map(|i| res(&format!("r{i}"), json!({"i": i})))
        .collect();
    fixture.engine(&cloud).apply(&desired).await.unwrap();
    let state_dir = backend.state_path().parent().unwrap();
    let files: Vec<String> = std::fs::read_dir(state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, ["state.json"], "no temp files left behind");
    assert_eq!(
        backend.state_path(),
        dir.path().join("shop/dev/fake/state.json")
    );
    assert_eq!(backend.lock_path(), dir.path().join("shop/dev/lock.json"));

    // A temp file left by a write that crashed before its rename changes nothing.
    std::fs::write(state_dir.join(".state.json.0123.tmp"), b"{ half").unwrap();
    let state = fixture.engine(&cloud).state().await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 5);
    let report = fixture.engine(&cloud).apply(&desired[..4]).await.unwrap();
    assert_eq!(report.summary.delete, 1);

    // A write that is refused leaves the file as it was, byte for byte.
    let before = std::fs::read(backend.state_path()).unwrap();
    let stale = State { serial: 1, ..state };
    assert!(
        LocalBackend::new(dir.path(), &crate::support::deployment())
            .save(&stale)
            .await
            .is_err()
    );
    assert_eq!(std::fs::read(backend.state_path()).unwrap(), before);
}
