//! Plans: actions with changed paths, references known after apply, deterministic JSON, text.

use nimbus_engine::{Action, KNOWN_AFTER_APPLY, PropertyChange, reference};
use serde_json::json;

use crate::support::{FakeCloud, Fixture, after, id, res};

fn change(path: &str, before: serde_json::Value, after: serde_json::Value) -> PropertyChange {
    PropertyChange {
        path: path.into(),
        before: Some(before),
        after: Some(after),
        known_after_apply: false,
        forces_replacement: false,
    }
}

#[tokio::test]
async fn each_action_is_planned_with_its_changed_paths() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let mut table = res("table", json!({"key": "id", "billing": "on-demand"}));
    table.replace_on = vec!["key".into()];
    let v1 = vec![
        res("fn", json!({"memory": 256, "env": {"LOG": "info"}})),
        table.clone(),
        res("queue", json!({"visibility": 30})),
        res("old", json!({"y": 1})),
    ];
    engine.apply(&v1).await.unwrap();
    let serial = engine.state().await.unwrap().unwrap().serial;
    let writes = cloud.writes();

    table.properties = json!({"key": "sk", "billing": "provisioned"});
    let v2 = vec![
        res("fn", json!({"memory": 512, "env": {"LOG": "debug"}})),
        table,
        res("queue", json!({"visibility": 30})),
        res("new", json!({"z": 1})),
    ];
    let plan = engine.plan(&v2, false).await.unwrap();
    let actions: Vec<(&str, Action)> = plan
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("fake.thing/fn", Action::Update),
            ("fake.thing/new", Action::Create),
            ("fake.thing/old", Action::Delete),
            ("fake.thing/queue", Action::Same),
            ("fake.thing/table", Action::Replace),
        ]
    );
    let row = |name: &str| plan.resources.iter().find(|r| r.id == id(name)).unwrap();
    assert_eq!(
        row("fn").changes,
        [
            change("env.LOG", json!("info"), json!("debug")),
            change("memory", json!(256), json!(512))
        ]
    );
    assert_eq!(
        row("table").changes,
        [
            change("billing", json!("on-demand"), json!("provisioned")),
            PropertyChange {
                forces_replacement: true,
                ..change("key", json!("id"), json!("sk"))
            },
        ]
    );
    assert_eq!(
        row("new").changes,
        [PropertyChange {
            before: None,
            ..change("z", json!(null), json!(1))
        }]
    );
    assert!(row("old").changes.is_empty() && row("queue").changes.is_empty());
    let s = plan.summary;
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.same),
        (1, 1, 1, 1, 1)
    );
    assert!(plan.has_changes());
    assert_eq!(
        engine.state().await.unwrap().unwrap().serial,
        serial,
        "plan writes no state"
    );
    assert_eq!(cloud.writes(), writes, "plan writes nothing to the cloud");
    assert!(engine.lock_info().await.unwrap().is_none());

    let applied = engine.apply(&v2).await.unwrap();
    assert_eq!(
        applied.summary, plan.summary,
        "apply does what the plan said"
    );
    assert!(!engine.plan(&v2, false).await.unwrap().has_changes());
}

#[tokio::test]
async fn references_are_known_after_apply_only_when_their_target_is_created_or_replaced() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let role = |policy: &str, trust: &str| {
        let mut r = res("role", json!({"policy": policy, "trust": trust}));
        r.physical_name = None;
        r.replace_on = vec!["trust".into()];
        r
    };
    let func = res(
        "fn",
        json!({"memory": 128, "role": reference(&id("role"), "arn")}),
    );

    // Nothing exists: the reference is unknown.
    let desired = vec![role("read", "lambda"), func.clone()];
    let plan = engine.plan(&desired, false).await.unwrap();
    let fn_row = plan.resources.iter().find(|r| r.id == id("fn")).unwrap();
    assert_eq!(fn_row.action, Action::Create);
    let role_change = fn_row.changes.iter().find(|c| c.path == "role").unwrap();
    assert!(role_change.known_after_apply);
    assert_eq!(role_change.after, Some(json!(KNOWN_AFTER_APPLY)));
    engine.apply(&desired).await.unwrap();

    // The role changes in place: its outputs stay, the function is unchanged.
    let desired = vec![role("write", "lambda"), func.clone()];
    let plan = engine.plan(&desired, false).await.unwrap();
    let actions: Vec<Action> = plan.resources.iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Same, Action::Update]);
    engine.apply(&desired).await.unwrap();

    // The role is replaced: the function's role is known after apply, and changes.
    let desired = vec![role("write", "edge"), func];
    let plan = engine.plan(&desired, false).await.unwrap();
    let fn_row = plan.resources.iter().find(|r| r.id == id("fn")).unwrap();
    assert_eq!(fn_row.action, Action::Update);
    assert_eq!(fn_row.changes.len(), 1);
    assert_eq!(fn_row.changes[0].path, "role");
    assert!(fn_row.changes[0].known_after_apply);
    assert!(
        plan.render()
            .contains("role: \"fake:fake.thing:fake-1\" → (known after apply)"),
        "{}",
        plan.render()
    );
    let report = engine.apply(&desired).await.unwrap();
    assert_eq!((report.summary.replace, report.summary.update), (1, 1));
    let state = engine.state().await.unwrap().unwrap();
    assert_eq!(
        state.get(&id("fn")).unwrap().properties["role"],
        json!("fake:fake.thing:fake-2")
    );
}

#[tokio::test]
async fn plan_json_is_deterministic_and_has_a_stable_shape() {
    let cloud = FakeCloud::new();
    let a = after(
        res(
            "a",
            serde_json::from_str(r#"{"x": 1, "b": [1, 2]}"#).unwrap(),
        ),
        &["b"],
    );
    let b = res("b", json!({"k": "v"}));
    let mut a2 = a.clone();
    a2.properties = serde_json::from_str(r#"{"b": [1, 2], "x": 1}"#).unwrap();
    let one = Fixture::memory()
        .engine(&cloud)
        .plan(&[a, b.clone()], false)
        .await
        .unwrap();
    let two = Fixture::memory()
        .engine(&cloud)
        .plan(&[b, a2], false)
        .await
        .unwrap();
    assert_eq!(one.to_json(), two.to_json());
    let shape: serde_json::Value = serde_json::from_str(&one.to_json()).unwrap();
    assert_eq!(
        shape,
        json!({
            "format_version": 1, "service": "shop", "stage": "dev", "provider": "fake", "refreshed": false,
            "summary": { "create": 2, "update": 0, "replace": 0, "delete": 0, "same": 0 },
            "resources": [
                { "id": "fake.thing/a", "kind": "fake.thing", "action": "create",
                  "changes": [
                      { "path": "b", "before": null, "after": [1, 2], "known_after_apply": false, "forces_replacement": false },
                      { "path": "x", "before": null, "after": 1, "known_after_apply": false, "forces_replacement": false }
                  ],
                  "drift": [], "missing_in_cloud": false },
                { "id": "fake.thing/b", "kind": "fake.thing", "action": "create",
                  "changes": [
                      { "path": "k", "before": null, "after": "v", "known_after_apply": false, "forces_replacement": false }
                  ],
                  "drift": [], "missing_in_cloud": false }
            ],
            "interrupted": []
        })
    );
    let text = one.to_json();
    assert!(
        text.find("\"format_version\"") < text.find("\"summary\""),
        "keys keep their declared order"
    );
}

#[tokio::test]
async fn the_human_rendering_shows_one_line_per_change() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let mut table = res("table", json!({"key": "id"}));
    table.replace_on = vec!["key".into()];
    let v1 = [
        res("fn", json!({"memory": 256})),
        table.clone(),
        res("old", json!({})),
        res("same", json!({})),
    ];
    engine.apply(&v1).await.unwrap();
    table.properties = json!({"key": "sk"});
    let plan = engine
        .plan(
            &[
                res("fn", json!({"memory": 512})),
                table,
                res("new", json!({"a": 1})),
                res("same", json!({})),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        plan.render(),
        "Plan for `shop/dev` on `fake`:\n  \
         ~ update  fake.thing/fn (memory: 256 → 512)\n  \
         + create  fake.thing/new\n  \
         - delete  fake.thing/old\n\
         -/+ replace fake.thing/table (key: \"id\" → \"sk\", forces replacement)\n\
         Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 unchanged.\n"
    );
    let unchanged = engine.plan(&v1, false).await.unwrap();
    assert_eq!(
        unchanged.render(),
        "Plan for `shop/dev` on `fake`:\nNo changes: 4 resources unchanged.\n"
    );
}

#[tokio::test]
async fn resources_the_deployment_does_not_own_render_as_existing() {
    let fixture = Fixture::memory();
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let mut users = res("users", json!({"Arn": "arn:users"}));
    users.kind = "fake.existing".into();
    users.id = "fake.existing/users".into();
    users.physical_name = None;
    assert!(nimbus_engine::resource::is_external(&users.kind));
    assert!(!nimbus_engine::resource::is_external("fake.thing"));
    let desired = [users.clone(), res("fn", json!({}))];
    let plan = engine.plan(&desired, false).await.unwrap();
    assert_eq!(
        plan.render(),
        "Plan for `shop/dev` on `fake`:\n  \
         = existing fake.existing/users (not managed)\n  \
         + create  fake.thing/fn\n\
         Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged. (1 existing, not managed)\n"
    );
    engine.apply(&desired).await.unwrap();
    let plan = engine.plan(&[res("fn", json!({}))], false).await.unwrap();
    assert_eq!(
        plan.render(),
        "Plan for `shop/dev` on `fake`:\n  \
         = existing fake.existing/users (no longer used; left as it is)\n\
         Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 unchanged. (1 existing, not managed)\n"
    );
}
