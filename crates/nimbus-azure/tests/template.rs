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

/// The shop's template without its secret, whose grant `template_secrets.rs` tests.
fn shop_template_without_secret() -> String {
    let g = common::graph_in(
        &common::shop_without_secret_yaml(),
        Some(&common::repo().join("examples/shop")),
    );
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
    assert_eq!(functions, 7);
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
    assert_eq!(
        count("Microsoft.Storage/storageAccounts/tableServices/tables"),
        0,
        "tables are Cosmos DB containers, not Table storage"
    );
}

/// Tables: one serverless Cosmos DB for NoSQL account without keys, a container per table
/// (partition key `/pk`, TTL on for tombstones) and the triggers' lease container.
#[test]
fn tables_are_cosmos_db_containers() {
    let doc: Value = serde_json::from_str(&shop_template()).unwrap();
    let of =
        |t: &str| -> Vec<&Value> { resources(&doc).iter().filter(|r| r["type"] == t).collect() };
    let accounts = of("Microsoft.DocumentDB/databaseAccounts");
    assert_eq!(accounts.len(), 1);
    let p = &accounts[0]["properties"];
    assert_eq!(
        p["capabilities"],
        serde_json::json!([{ "name": "EnableServerless" }])
    );
    assert_eq!(p["disableLocalAuth"], true);
    assert_eq!(p["disableKeyBasedMetadataWriteAccess"], true);
    assert_eq!(p["minimalTlsVersion"], "Tls12");
    assert_eq!(
        of("Microsoft.DocumentDB/databaseAccounts/sqlDatabases").len(),
        1
    );
    let containers: BTreeMap<String, &Value> =
        of("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
            .into_iter()
            .map(|c| {
                (
                    c["properties"]["resource"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    &c["properties"]["resource"],
                )
            })
            .collect();
    assert_eq!(
        containers.keys().cloned().collect::<Vec<_>>(),
        vec!["inventory", "nimbus_leases", "orders"]
    );
    assert_eq!(
        containers["orders"]["partitionKey"]["paths"],
        serde_json::json!(["/pk"])
    );
    assert_eq!(containers["orders"]["defaultTtl"], -1);
    assert_eq!(
        containers["nimbus_leases"]["partitionKey"]["paths"],
        serde_json::json!(["/id"])
    );
    // No key anywhere: no listKeys of the account, no connection string with a key.
    let text = shop_template();
    assert!(
        !text.contains("listKeys(resourceId('Microsoft.DocumentDB"),
        "{text}"
    );
    assert!(!text.contains("AccountKey"));
    // Apps that use a table get the account's endpoint and the database, and an identity-based
    // connection for the trigger.
    let audit = resources(&doc)
        .iter()
        .find(|r| {
            r["type"] == "Microsoft.Web/sites"
                && r["name"].as_str().unwrap().contains("audit-orders")
        })
        .unwrap();
    let settings: BTreeMap<&str, &Value> = audit["properties"]["siteConfig"]["appSettings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), &s["value"]))
        .collect();
    assert_eq!(settings["NIMBUS_COSMOS__credential"], "managedidentity");
    assert!(
        settings["NIMBUS_COSMOS__accountEndpoint"]
            .as_str()
            .unwrap()
            .contains("documentEndpoint")
    );
    assert!(settings.contains_key("NIMBUS_AZURE_COSMOS_DATABASE"));
    assert!(
        !settings.contains_key("NIMBUS_AZURE_BLOB_ENDPOINT"),
        "audit-orders uses no storage"
    );
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
    let identity_of = |r: &Value| {
        let principal = r["properties"]["principalId"].as_str().unwrap();
        principal
            .split('\'')
            .nth(3)
            .unwrap_or_else(|| panic!("{principal}"))
            .to_string()
    };
    // Cosmos DB SQL role assignments: scope `concat(<account>, '/dbs/', <db>, '/colls/<container>')`.
    for r in resources(doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")
    {
        let def = r["properties"]["roleDefinitionId"].as_str().unwrap();
        let role = match def.rsplit('/').next().unwrap().trim_end_matches("')]") {
            "00000000-0000-0000-0000-000000000001" => "CosmosReader",
            "00000000-0000-0000-0000-000000000002" => "CosmosContributor",
            other => panic!("unknown Cosmos DB role {other}"),
        };
        let scope = r["properties"]["scope"].as_str().unwrap();
        let container = scope
            .rsplit("/colls/")
            .next()
            .unwrap()
            .trim_end_matches("')]");
        assert!(scope.contains("/colls/"), "scoped to a container: {scope}");
        out.entry(identity_of(r))
            .or_default()
            .insert((role.to_string(), format!("colls:{container}")));
    }
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
    let doc: Value = serde_json::from_str(&shop_template_without_secret()).unwrap();
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
                ("CosmosContributor", "colls:orders"),
                ("BusSender", "topics:order-events"),
                ("QueueSender", "queues:payments"),
            ],
            "place-order"
        )
    );
    assert_eq!(
        g["shop-dev-get-order"],
        base(&[("CosmosReader", "colls:orders")], "get-order")
    );
    assert_eq!(
        g["shop-dev-charge-payment"],
        base(
            &[
                ("CosmosContributor", "colls:orders"),
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
                ("CosmosContributor", "colls:inventory"),
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
    assert_eq!(
        g["shop-dev-audit-orders"],
        base(
            &[
                ("CosmosReader", "colls:orders"),
                ("CosmosContributor", "colls:nimbus_leases"),
            ],
            "audit-orders"
        )
    );
    assert_eq!(
        g["shop-dev-nightly-report"],
        base(
            &[
                ("CosmosReader", "colls:orders"),
                ("BlobContributor", "containers:reports"),
            ],
            "nightly-report"
        )
    );
    assert_eq!(g.len(), 7);
}

/// checkov on the shop with a secret (so the Key Vault and its role assignments are checked).
#[test]
fn checkov_fails_only_the_skipped_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azuredeploy.json");
    let g = common::graph_in(
        &common::shop_with_secret_yaml(),
        Some(&common::repo().join("examples/shop")),
    );
    let template =
        nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    assert!(template.contains("Microsoft.KeyVault/vaults"));
    std::fs::write(&path, template).unwrap();
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
    let template: Value = serde_json::from_str(&shop_template_without_secret()).unwrap();
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
    let cases: [(&str, Change, &str); 10] = [
        (
            "Cosmos DB account without locations",
            |t| {
                first_of(t, "Microsoft.DocumentDB/databaseAccounts")["properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("locations");
            },
            "DatabaseAccountCreateUpdateParameters requires `locations`",
        ),
        (
            "Cosmos DB container with a numeric time to live as text",
            |t| {
                first_of(
                    t,
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
                )["properties"]["resource"]["defaultTtl"] = "-1".into();
            },
            "defaultTtl: expected int, got str",
        ),
        (
            "Cosmos DB SQL role assignment scoped outside its account",
            |t| {
                first_of(
                    t,
                    "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
                )["properties"]["scope"] = "/subscriptions/x/resourceGroups/y".into();
            },
            "is not `",
        ),
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

const ESCAPE_HATCHES: &str = r#"
version: 1
service: hatch
providers: { azure: { location: westeurope, resource_group: hatch } }
functions:
  mailer:
    handler: a.py:handler
    concurrency: { max: 4 }
    triggers: [ { http: { method: POST, path: /mail } }, { schedule: "rate(5 minutes)" } ]
    permissions:
      azure:
        - { role: Cognitive Services User, scope: "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/ai" }
        - { role: "4633458b-17de-408a-b874-0445c86b69e6", scope: "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/vault/providers/Microsoft.KeyVault/vaults/mailkeys" }
        - { role: reader, scope: "/subscriptions/00000000-0000-0000-0000-0000000000bb" }
    azure: { always_ready: 2 }
  plain:
    handler: b.py:handler
  aws-only:
    handler: b.py:handler
    only: { providers: [aws] }
"#;

/// Extra role assignments reach the function app's own identity at exactly the named scopes
/// (nested deployments, as ARM needs outside the deployment's group), always-ready instances
/// reach the Flex app, and the ARM test double (Microsoft's published models) takes it all.
#[test]
fn escape_hatches_become_nested_role_assignments_and_always_ready_instances() {
    let g = common::graph_str(ESCAPE_HATCHES);
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(!text.contains("aws-only"));
    let nested: Vec<&Value> = resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Resources/deployments")
        .collect();
    assert_eq!(nested.len(), 3, "one per grant, none for `plain`");
    assert!(nested.iter().all(|d| {
        d["name"]
            .as_str()
            .unwrap()
            .starts_with("nimbus-mailer-permission-")
    }));
    let sub = "00000000-0000-0000-0000-0000000000bb";
    assert_eq!(
        nested
            .iter()
            .map(|d| (
                d["subscriptionId"].as_str().unwrap(),
                d.get("resourceGroup").and_then(Value::as_str)
            ))
            .collect::<Vec<_>>(),
        [(sub, Some("ai")), (sub, Some("vault")), (sub, None)]
    );
    let inner = |d: &Value| d["properties"]["template"]["resources"][0].clone();
    assert!(
        inner(nested[0])["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .contains("a97b65f3-24c7-4388-baec-2e87135dc908"),
        "the built-in role by name"
    );
    assert_eq!(
        inner(nested[1])["scope"],
        "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/vault/providers/Microsoft.KeyVault/vaults/mailkeys"
    );
    assert!(
        inner(nested[0]).get("scope").is_none(),
        "the group itself is the nested deployment's scope"
    );
    assert!(
        inner(nested[2])["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .contains("acdd72a7")
    );
    assert!(
        nested[2]["location"].is_string(),
        "a subscription-level deployment has a location"
    );
    // The app's code waits for its grants.
    let onedeploy = resources(&doc)
        .iter()
        .find(|r| {
            r["type"] == "Microsoft.Web/sites/extensions"
                && r["properties"]["packageUri"]
                    .as_str()
                    .unwrap()
                    .contains("'mailer'")
        })
        .unwrap();
    let depends = onedeploy["dependsOn"].to_string();
    assert!(
        depends.contains("nimbus-mailer-permission-1")
            && depends.contains("nimbus-mailer-permission-3"),
        "{depends}"
    );

    let site = |f: &str| {
        resources(&doc)
            .iter()
            .find(|r| {
                r["type"] == "Microsoft.Web/sites"
                    && r["name"].to_string().contains(&format!("app-{f}"))
            })
            .unwrap()["properties"]["functionAppConfig"]["scaleAndConcurrency"]
            .clone()
    };
    let mailer = site("mailer");
    assert_eq!(mailer["maximumInstanceCount"], 4);
    let ready = mailer["alwaysReady"].as_array().unwrap();
    assert_eq!(ready.len(), 2, "{ready:?}");
    assert_eq!(
        ready[0],
        serde_json::json!({ "name": "function:mailer-schedule-1", "instanceCount": 2 })
    );
    assert_eq!(
        ready[1],
        serde_json::json!({ "name": "http", "instanceCount": 2 })
    );
    assert!(site("plain").get("alwaysReady").is_none());

    // Microsoft's models (through the double) accept the template as a whole.
    let double = common::double::ArmDouble::start_without_storage();
    let group = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/hatch";
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}?api-version=2021-04-01"),
        &serde_json::json!({ "location": "westeurope" }),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}/providers/Microsoft.Resources/deployments/hatch?api-version=2024-03-01"),
        &serde_json::json!({ "properties": { "mode": "Incremental", "template": doc, "parameters": {} } }),
    );
    assert_eq!(status, 201, "{body}");
    let held = double.resources();
    let assignments: Vec<&String> = held
        .iter()
        .filter(|id| id.contains(sub) && id.contains("Microsoft.Authorization/roleAssignments"))
        .collect();
    assert_eq!(assignments.len(), 3, "{held:#?}");
    assert!(assignments.iter().any(|id| id.starts_with(
        "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/vault/providers/Microsoft.KeyVault/vaults/mailkeys/providers/Microsoft.Authorization/roleAssignments/"
    )));
}

const DOMAIN: &str = r#"
version: 1
service: api
providers: { azure: { location: westeurope, resource_group: rg } }
http:
  domain:
    name: api.example.com
    certificate: { azure: "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/certs/providers/Microsoft.KeyVault/vaults/acme-certs/secrets/api-example-com" }
functions:
  web:
    handler: a.py:handler
    triggers: [ { http: { method: ANY, path: "/{path+}" } } ]
  nightly:
    handler: b.py:handler
    triggers: [ { schedule: "rate(1 day)" } ]
"#;

/// `http.domain` with one function serving the routes: that app gets the Key Vault certificate
/// and an SNI host name binding by its thumbprint, and the deployment outputs its domain
/// verification id; the ARM double takes the template (Microsoft's `Certificate` and
/// `HostNameBinding` models) and resolves the thumbprint and the id.
#[test]
fn a_custom_domain_binds_to_the_one_app_that_serves_the_routes() {
    let g = common::graph_str(DOMAIN);
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let of =
        |t: &str| -> Vec<&Value> { resources(&doc).iter().filter(|r| r["type"] == t).collect() };
    let certs = of("Microsoft.Web/certificates");
    assert_eq!(certs.len(), 1);
    let cert = &certs[0]["properties"];
    assert_eq!(
        cert["keyVaultId"],
        "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/certs/providers/Microsoft.KeyVault/vaults/acme-certs"
    );
    assert_eq!(cert["keyVaultSecretName"], "api-example-com");
    assert!(
        cert["serverFarmId"].as_str().unwrap().contains("-web"),
        "{cert}"
    );
    let bindings = of("Microsoft.Web/sites/hostNameBindings");
    assert_eq!(bindings.len(), 1);
    let b = bindings[0];
    assert_eq!(
        b["name"],
        "[concat(variables('app-web'), '/', 'api.example.com')]"
    );
    assert_eq!(b["properties"]["sslState"], "SniEnabled");
    assert_eq!(b["properties"]["hostNameType"], "Verified");
    assert!(
        b["properties"]["thumbprint"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Web/certificates")
    );
    assert!(doc["outputs"]["webDomainVerificationId"].is_object());
    assert!(doc["outputs"].get("nightlyDomainVerificationId").is_none());

    let double = common::double::ArmDouble::start_without_storage();
    let group = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/rg";
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}?api-version=2021-04-01"),
        &serde_json::json!({ "location": "westeurope" }),
    );
    assert_eq!(status, 201, "{body}");
    let path =
        format!("{group}/providers/Microsoft.Resources/deployments/domain?api-version=2024-03-01");
    let put = |template: &Value| {
        double.arm(
            "PUT",
            &path,
            &serde_json::json!({
                "properties": { "mode": "Incremental", "template": template, "parameters": {} }
            }),
        )
    };
    let (status, body) = put(&doc);
    assert_eq!(status, 201, "{body}");
    let (_, deployed) = double.arm("GET", &path, &Value::Null);
    let id = deployed["properties"]["outputs"]["webDomainVerificationId"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{deployed}"));
    assert_eq!(id.len(), 64, "{id}");

    // The double holds the binding to Microsoft's model: a property it does not have is refused.
    let mut bad = doc.clone();
    first_of(&mut bad, "Microsoft.Web/sites/hostNameBindings")["properties"]["certificate"] =
        serde_json::json!("api.example.com");
    let (status, body) = put(&bad);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("certificate"), "{body}");
}

/// `info` of the deployed domain app (the template above, deployed to the ARM double as Nimbus
/// names its deployment): the `CNAME` to the app's host and the `TXT asuid.<host>` with the
/// verification id the deployment output, in the order App Service checks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_prints_the_dns_records_of_the_custom_domain() {
    use nimbus_cloud::Cloud;
    let g = common::graph_str(DOMAIN);
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let double = common::double::ArmDouble::start_without_storage();
    let sub = "00000000-0000-0000-0000-0000000000aa";
    let group = format!("/subscriptions/{sub}/resourcegroups/rg");
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}?api-version=2021-04-01"),
        &serde_json::json!({ "location": "westeurope" }),
    );
    assert_eq!(status, 201, "{body}");
    let name = nimbus_azure::names::deployment(&g.service, &g.stage);
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}/providers/Microsoft.Resources/deployments/{name}?api-version=2024-03-01"),
        &serde_json::json!({
            "properties": { "mode": "Incremental", "template": doc, "parameters": {} }
        }),
    );
    assert_eq!(status, 201, "{body}");
    let env: BTreeMap<&str, String> = [
        ("AZURE_SUBSCRIPTION_ID", sub.to_string()),
        (
            "NIMBUS_AZURE_ACCESS_TOKEN",
            common::double::TOKEN.to_string(),
        ),
        ("NIMBUS_AZURE_ARM_ENDPOINT", double.url()),
    ]
    .into();
    let lookup = move |n: &str| env.get(n).cloned();
    let azure = nimbus_azure::connect_with(&g, nimbus_cloud::Options::default(), &lookup)
        .await
        .unwrap();
    let info = azure.info(&g).await.unwrap();
    assert!(info.deployed);
    let host = &info
        .endpoints
        .iter()
        .find(|e| e.function == "web")
        .unwrap()
        .url;
    let app_host = host
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(app_host.ends_with(".azurewebsites.net"), "{app_host}");
    let records: Vec<(String, String, String)> = info
        .dns_records
        .iter()
        .map(|r| (r.name.clone(), r.kind.clone(), r.value.clone()))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0],
        ("api.example.com".into(), "CNAME".into(), app_host)
    );
    assert_eq!(records[1].0, "asuid.api.example.com");
    assert_eq!(records[1].1, "TXT");
    assert_eq!(records[1].2.len(), 64, "{records:?}");
    // As JSON (`nimbus info --output json`): `dns_records` with `type`.
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["dns_records"][1]["type"], "TXT");
}

/// checkov fails no check on the custom domain's template that the shop's skip list does not
/// justify (the list's other checks are about resources this app does not have).
#[test]
fn checkov_fails_nothing_but_skipped_checks_with_a_custom_domain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azuredeploy.json");
    let g = common::graph_str(DOMAIN);
    let template =
        nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    assert!(template.contains("Microsoft.Web/sites/hostNameBindings"));
    std::fs::write(&path, template).unwrap();
    support::assert_checkov_fails_nothing_but_skipped(
        &support::required_venv_tool("checkov"),
        "arm",
        &path,
        "providers/azure/checkov-skips.txt",
        10,
    );
}
