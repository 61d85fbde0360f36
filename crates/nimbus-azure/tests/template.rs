//! The ARM template of the shop: golden snapshot, determinism, least-privilege roles, and what
//! the validators say (`checkov --framework arm`, with the skips in
//! `providers/azure/checkov-skips.txt`).

mod common;

use nimbus_test_support as support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

fn shop_template() -> String {
    let g = common::shop();
    nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap()
}

fn resources(doc: &Value) -> &Vec<Value> {
    doc["resources"].as_array().unwrap()
}

#[test]
fn shop_template_matches_the_snapshot() {
    let path = common::repo().join("crates/nimbus-azure/tests/snapshots/shop.azuredeploy.json");
    support::assert_snapshot(&path, &shop_template(), "the shop's template");
}

#[test]
fn the_template_is_byte_identical_for_the_same_input() {
    assert_eq!(shop_template(), shop_template());
}

#[test]
fn one_app_identity_and_plan_per_function() {
    let doc: Value = serde_json::from_str(&shop_template()).unwrap();
    let count = |t: &str| resources(&doc).iter().filter(|r| r["type"] == t).count();
    let functions = common::shop().functions.len();
    assert_eq!(functions, 6);
    for t in [
        "Microsoft.Web/sites",
        "Microsoft.Web/serverfarms",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Web/sites/extensions",
    ] {
        assert_eq!(count(t), functions, "{t}");
    }
    for site in resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Web/sites")
    {
        let p = &site["properties"];
        assert_eq!(site["kind"], "functionapp,linux");
        assert_eq!(p["httpsOnly"], true);
        assert_eq!(p["siteConfig"]["minTlsVersion"], "1.2");
        let settings: BTreeSet<&str> = p["siteConfig"]["appSettings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(settings.contains("AzureWebJobsStorage__accountName"));
        assert!(
            !settings.contains("FUNCTIONS_WORKER_RUNTIME"),
            "Flex rejects it"
        );
    }
    for account in resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Storage/storageAccounts")
    {
        let p = &account["properties"];
        assert_eq!(p["minimumTlsVersion"], "TLS1_2");
        assert_eq!(p["allowBlobPublicAccess"], false);
        assert_eq!(p["supportsHttpsTrafficOnly"], true);
    }
    assert_eq!(count("Microsoft.Storage/storageAccounts"), 3);
}

/// Every role assignment's `(app identity, role, scope)`, by identity name.
fn grants(doc: &Value) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let roles = [
        ("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "BlobReader"),
        ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "BlobContributor"),
        ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "BlobOwner"),
        ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "QueueContributor"),
        ("19e7f393-937e-4f77-808e-94535e297925", "QueueReader"),
        ("8a0f0c08-91a1-4084-bc3d-661d67233fed", "QueueProcessor"),
        ("c6a89b2d-59bc-44d0-9896-0f6e12d7b80a", "QueueSender"),
        ("76199698-9eea-4c19-bc75-cec21354c6b6", "TableReader"),
        ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "TableContributor"),
        ("69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", "BusSender"),
        ("4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "BusReceiver"),
        ("3913510d-42f4-4e42-8a64-420c390055eb", "MetricsPublisher"),
    ];
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for r in resources(doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
    {
        let def = r["properties"]["roleDefinitionId"].as_str().unwrap();
        let role = roles
            .iter()
            .find(|(id, _)| def.contains(id))
            .unwrap_or_else(|| panic!("unknown role {def}"))
            .1;
        let principal = r["properties"]["principalId"].as_str().unwrap();
        let identity = principal
            .split('\'')
            .nth(3)
            .unwrap_or_else(|| panic!("{principal}"))
            .to_string();
        let scope = r["scope"].as_str().unwrap();
        // `[resourceId('Microsoft.Storage/…/containers', variables('dataAccount'), 'default', 'images')]`
        // → `containers:images`
        let kind = scope
            .split('\'')
            .nth(1)
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let last = scope.trim_end_matches(")]").rsplit(", ").next().unwrap();
        out.entry(identity).or_default().insert((
            role.to_string(),
            format!("{kind}:{}", last.trim_matches('\'')),
        ));
    }
    out
}

#[test]
fn roles_are_scoped_to_exactly_what_each_function_uses() {
    let doc: Value = serde_json::from_str(&shop_template()).unwrap();
    let g = grants(&doc);
    let base = |extra: &[(&str, &str)], app: &str| {
        let mut s: BTreeSet<(String, String)> = [
            ("BlobOwner", "storageAccounts:variables('hostAccount')"),
            (
                "QueueContributor",
                "storageAccounts:variables('hostAccount')",
            ),
            (
                "TableContributor",
                "storageAccounts:variables('hostAccount')",
            ),
            ("MetricsPublisher", "components:variables('monitoring')"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        s.insert(("BlobContributor".into(), format!("containers:app-{app}")));
        s.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        s
    };
    assert_eq!(
        g["shop-dev-place-order"],
        base(
            &[
                ("TableContributor", "tables:orders"),
                ("BusSender", "topics:order-events"),
                ("QueueSender", "queues:payments"),
            ],
            "place-order"
        )
    );
    assert_eq!(
        g["shop-dev-get-order"],
        base(&[("TableReader", "tables:orders")], "get-order")
    );
    assert_eq!(
        g["shop-dev-charge-payment"],
        base(
            &[
                ("TableContributor", "tables:orders"),
                ("QueueReader", "queues:payments"),
                ("QueueProcessor", "queues:payments"),
                ("QueueSender", "queues:payments-poison"),
            ],
            "charge-payment"
        )
    );
    assert_eq!(
        g["shop-dev-reserve-stock"],
        base(
            &[
                ("TableContributor", "tables:inventory"),
                ("BusReceiver", "subscriptions:reserve-stock"),
            ],
            "reserve-stock"
        )
    );
    assert_eq!(
        g["shop-dev-make-thumbnail"],
        base(
            &[
                ("BlobContributor", "containers:images"),
                ("BlobReader", "containers:images"),
            ],
            "make-thumbnail"
        )
    );
    assert_eq!(g.len(), 6);
}

#[test]
fn checkov_fails_only_the_skipped_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azuredeploy.json");
    std::fs::write(&path, shop_template()).unwrap();
    support::assert_checkov_fails_only_skipped(
        &support::required_venv_tool("checkov"),
        "arm",
        &path,
        "providers/azure/checkov-skips.txt",
        21,
    );
}

/// The first resource of `doc` of type `t`, to change.
fn first_of<'a>(doc: &'a mut Value, t: &str) -> &'a mut Value {
    doc["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["type"] == t)
        .unwrap_or_else(|| panic!("the shop's template has a {t}"))
}

/// The ARM test double takes the shop's template and refuses bodies that break Microsoft's
/// published models of each resource type: each change below is refused with ARM's
/// `InvalidRequestContent`, naming what is wrong.
#[test]
fn the_arm_double_refuses_bodies_its_models_reject() {
    let double = common::double::ArmDouble::start_without_storage();
    let group = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/rg";
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}?api-version=2021-04-01"),
        &serde_json::json!({ "location": "westeurope" }),
    );
    assert_eq!(status, 201, "{body}");
    let template: Value = serde_json::from_str(&shop_template()).unwrap();
    let deploy = |name: &str, template: &Value| {
        double.arm(
            "PUT",
            &format!(
                "{group}/providers/Microsoft.Resources/deployments/{name}?api-version=2024-03-01"
            ),
            &serde_json::json!({
                "properties": { "mode": "Incremental", "template": template, "parameters": {} }
            }),
        )
    };
    let (status, body) = deploy("valid", &template);
    assert_eq!(status, 201, "the shop's template as generated: {body}");

    type Change = fn(&mut Value);
    let cases: [(&str, Change, &str); 7] = [
        (
            "role assignment without principalId",
            |t| {
                let p = &mut first_of(t, "Microsoft.Authorization/roleAssignments")["properties"];
                p.as_object_mut().unwrap().remove("principalId");
            },
            "RoleAssignmentCreateParameters requires `principalId`",
        ),
        (
            "role assignment with an unknown property",
            |t| {
                first_of(t, "Microsoft.Authorization/roleAssignments")["properties"]["role"] =
                    "Reader".into();
            },
            "`role` is not a property of RoleAssignmentCreateParameters",
        ),
        (
            "identity with a property it does not have",
            |t| {
                first_of(t, "Microsoft.ManagedIdentity/userAssignedIdentities")["properties"] =
                    serde_json::json!({ "clientId": 7 });
            },
            "properties.clientId: expected str, got int",
        ),
        (
            "Service Bus subscription with a lock duration that is not ISO 8601",
            |t| {
                first_of(t, "Microsoft.ServiceBus/namespaces/topics/subscriptions")["properties"]
                    ["lockDuration"] = "5 minutes".into();
            },
            "`5 minutes` is not an ISO 8601 duration",
        ),
        (
            "event subscription to an unknown kind of endpoint",
            |t| {
                first_of(t, "Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"]
                    ["destination"]["endpointType"] = "Webhook".into();
            },
            "`Webhook` is not one of",
        ),
        (
            "Application Insights component without kind",
            |t| {
                first_of(t, "Microsoft.Insights/components")
                    .as_object_mut()
                    .unwrap()
                    .remove("kind");
            },
            "ApplicationInsightsComponent requires `kind`",
        ),
        (
            "Log Analytics workspace with a string retention",
            |t| {
                first_of(t, "Microsoft.OperationalInsights/workspaces")["properties"]["retentionInDays"] =
                    "30".into();
            },
            "properties.retentionInDays: expected int, got str",
        ),
    ];
    for (i, (what, change, message)) in cases.into_iter().enumerate() {
        let mut t = template.clone();
        change(&mut t);
        let (status, body) = deploy(&format!("invalid-{i}"), &t);
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(
            body["error"]["code"], "InvalidRequestContent",
            "{what}: {body}"
        );
        let got = body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{what}: `{got}` lacks `{message}`");
    }
}
