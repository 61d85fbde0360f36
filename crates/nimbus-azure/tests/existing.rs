//! Resources that already exist (`existing.azure`) on Azure: never in the template, granted
//! by role assignments scoped to their ids (nested deployments at their subscription and group),
//! named with their own account's or namespace's endpoint in the app settings; deployed through
//! the ARM test double (Microsoft's published models) with Azurite, and removed leaving them
//! and their data as they were but for Nimbus's role assignments.

mod common;

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use nimbus_cloud::{Cloud, Options, Target};
use serde_json::Value;

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const REPORTS: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/finance/providers/Microsoft.Storage/storageAccounts/financedata/blobServices/default/containers/reports";
const JOBS: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/ledger/providers/Microsoft.Storage/storageAccounts/ledgerdata/queueServices/default/queues/jobs";
const EVENTS: &str = "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/bus/providers/Microsoft.ServiceBus/namespaces/acme/topics/events";

fn manifest() -> String {
    format!(
        r#"
version: 1
service: ledger
resources:
  reports: {{ type: bucket, existing: {{ azure: "{REPORTS}" }} }}
  jobs: {{ type: queue, existing: {{ azure: "{JOBS}" }} }}
  events: {{ type: topic, existing: {{ azure: "{EVENTS}" }} }}
functions:
  writer:
    handler: app.py:handler
    uses:
      - {{ resource: reports, access: read }}
      - {{ resource: jobs, access: send }}
      - {{ resource: events, access: publish }}
providers:
  azure: {{ location: westeurope, resource_group: ledger }}
"#
    )
}

fn resources(doc: &Value) -> &Vec<Value> {
    doc["resources"].as_array().unwrap()
}

#[test]
fn existing_resources_are_granted_by_id_and_never_declared() {
    let g = common::graph_str(&manifest());
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    // Nothing of theirs is declared: no data account, container, queue, namespace or topic.
    for r in resources(&doc) {
        let t = r["type"].as_str().unwrap();
        assert!(
            !t.contains("containers")
                || r["name"].to_string().contains("nimbus-state")
                || r["name"].to_string().contains("app-"),
            "{r}"
        );
        assert!(!t.contains("queues") && !t.contains("ServiceBus"), "{r}");
    }
    let accounts = resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Storage/storageAccounts")
        .count();
    assert_eq!(
        accounts, 2,
        "deployment and host accounts only: no data account"
    );

    // One nested deployment per grant, at the resource's subscription and group, scoped to it.
    let nested: Vec<&Value> = resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Resources/deployments")
        .collect();
    let summary: Vec<(String, String, String, String)> = nested
        .iter()
        .map(|d| {
            let a = &d["properties"]["template"]["resources"][0];
            (
                d["name"].as_str().unwrap().to_string(),
                format!("{}/{}", d["subscriptionId"], d["resourceGroup"]),
                a["scope"].as_str().unwrap().to_string(),
                a["properties"]["roleDefinitionId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let role = |id: &str| {
        format!("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{id}')]")
    };
    assert_eq!(
        summary,
        vec![
            (
                "nimbus-writer-uses-events".into(),
                "\"00000000-0000-0000-0000-0000000000bb\"/\"bus\"".into(),
                EVENTS.into(),
                role(nimbus_azure::roles::SERVICE_BUS_SENDER.id)
            ),
            (
                "nimbus-writer-uses-jobs".into(),
                format!("\"{SUB}\"/\"ledger\""),
                JOBS.into(),
                role(nimbus_azure::roles::QUEUE_SENDER.id)
            ),
            (
                "nimbus-writer-uses-reports".into(),
                format!("\"{SUB}\"/\"finance\""),
                REPORTS.into(),
                role(nimbus_azure::roles::BLOB_READER.id)
            ),
        ]
    );

    // The app finds each by its own name and its own account's or namespace's endpoint.
    let site = resources(&doc)
        .iter()
        .find(|r| r["type"] == "Microsoft.Web/sites")
        .unwrap();
    let settings: std::collections::BTreeMap<String, Value> =
        site["properties"]["siteConfig"]["appSettings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["value"].clone()))
            .collect();
    let get = |k: &str| settings.get(k).cloned().unwrap_or(Value::Null);
    assert_eq!(get("NIMBUS_RESOURCE_REPORTS_NAME"), "reports");
    assert_eq!(
        get("NIMBUS_RESOURCE_REPORTS_ENDPOINT"),
        "https://financedata.blob.core.windows.net/"
    );
    assert_eq!(get("NIMBUS_RESOURCE_JOBS_NAME"), "jobs");
    assert_eq!(
        get("NIMBUS_RESOURCE_JOBS_ENDPOINT"),
        "https://ledgerdata.queue.core.windows.net/"
    );
    assert_eq!(get("NIMBUS_RESOURCE_EVENTS_NAME"), "events");
    assert_eq!(
        get("NIMBUS_RESOURCE_EVENTS_ENDPOINT"),
        "acme.servicebus.windows.net"
    );
    // No deployment-wide endpoint: the app uses no resource the template creates.
    assert_eq!(get("NIMBUS_AZURE_BLOB_ENDPOINT"), Value::Null);
    assert_eq!(get("NIMBUS_AZURE_SERVICEBUS_NAMESPACE"), Value::Null);
}

fn environment(azurite: &Azurite, double: &ArmDouble) -> impl Fn(&str) -> Option<String> {
    let env: std::collections::BTreeMap<&str, String> = [
        ("AZURE_SUBSCRIPTION_ID", SUB.to_string()),
        ("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN.to_string()),
        ("NIMBUS_AZURE_ARM_ENDPOINT", double.url()),
        ("NIMBUS_AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint()),
        ("NIMBUS_AZURE_STORAGE_KEY", KEY.to_string()),
        ("NIMBUS_AZURE_LOGS_ENDPOINT", double.url()),
    ]
    .into();
    move |name: &str| env.get(name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_grants_on_existing_resources_and_remove_deletes_only_those_grants() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let lookup = environment(&azurite, &double);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest()).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return {\"ok\": True}\n",
    )
    .unwrap();
    let graph = common::graph_in(&manifest(), Some(dir.path()));
    let mut options = nimbus_package::BuildOptions::conventional(
        dir.path(),
        nimbus_provider::ProviderId::Azure,
        &graph.stage,
    );
    options.cache_dir = common::repo().join("target/nimbus-azure-test-cache");
    let report = nimbus_package::build(&graph, &options, &|_| {}).unwrap();
    let target = Target {
        graph: &graph,
        build: &report.manifest,
        build_dir: &options.out_dir,
    };
    let azure = nimbus_azure::connect_with(&graph, Options::default(), &lookup)
        .await
        .unwrap();
    azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();

    let held = double.resources();
    // The existing resources were never put: only role assignments under their ids.
    for id in [REPORTS, JOBS, EVENTS] {
        let under: Vec<&String> = held
            .iter()
            .filter(|r| r.to_ascii_lowercase().starts_with(&id.to_ascii_lowercase()))
            .collect();
        assert_eq!(under.len(), 1, "{id}: {under:#?}");
        assert!(
            under[0].contains("/providers/Microsoft.Authorization/roleAssignments/"),
            "{under:#?}"
        );
    }
    let identity = held
        .iter()
        .find(|r| r.contains("/userAssignedIdentities/ledger-dev-writer"))
        .unwrap();
    let (_, found) = double.arm(
        "GET",
        &format!("{identity}?api-version=2023-01-31"),
        &Value::Null,
    );
    let principal = found["properties"]["principalId"].as_str().unwrap();
    let expected =
        nimbus_azure::template::outside_assignments(&graph, &graph.functions["writer"], principal);
    assert_eq!(expected.len(), 3);
    for a in &expected {
        assert!(
            held.iter().any(|r| r.eq_ignore_ascii_case(a)),
            "{a}: {held:#?}"
        );
    }
    let puts_on_existing: Vec<(String, String)> = double
        .calls()
        .into_iter()
        .filter(|(m, p)| m != "GET" && [REPORTS, JOBS, EVENTS].iter().any(|id| p.starts_with(id)))
        .collect();
    assert!(puts_on_existing.is_empty(), "{puts_on_existing:#?}");

    azure.remove(&graph, true).await.unwrap();
    let now = double.resources();
    for a in &expected {
        assert!(
            !now.iter().any(|r| r.eq_ignore_ascii_case(a)),
            "{a} left behind"
        );
    }
    // Every call that touched an existing resource's id was one of those three DELETEs.
    let touching: Vec<(String, String)> = double
        .calls()
        .into_iter()
        .filter(|(m, p)| m != "GET" && [REPORTS, JOBS, EVENTS].iter().any(|id| p.starts_with(id)))
        .collect();
    assert_eq!(touching.len(), 3, "{touching:#?}");
    assert!(
        touching.iter().all(|(m, p)| m == "DELETE"
            && p.contains("/providers/Microsoft.Authorization/roleAssignments/"))
    );
}

// ---------------------------------------------------------------- tables and triggers

const USERS: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/shared/providers/Microsoft.DocumentDB/databaseAccounts/acmedocs/sqlDatabases/app/containers/users";
const USERS_ACCOUNT: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/shared/providers/Microsoft.DocumentDB/databaseAccounts/acmedocs";

/// `reader` reads and `audit` writes an existing Cosmos DB container; `audit` is triggered by
/// its change feed and by an existing Service Bus topic.
fn triggers_manifest() -> String {
    format!(
        r#"
version: 1
service: ledger
resources:
  users: {{ type: table, key: {{ id: string }}, existing: {{ azure: "{USERS}" }} }}
  events: {{ type: topic, existing: {{ azure: "{EVENTS}" }} }}
functions:
  reader:
    handler: app.py:handler
    uses: [ {{ resource: users, access: read }} ]
  audit:
    handler: app.py:handler
    triggers: [ {{ table: users }}, {{ topic: events }} ]
    uses: [ {{ resource: users, access: write }} ]
providers:
  azure: {{ location: westeurope, resource_group: ledger }}
"#
    )
}

fn app_settings(doc: &Value, app: &str) -> std::collections::BTreeMap<String, Value> {
    let site = resources(doc)
        .iter()
        .find(|r| r["type"] == "Microsoft.Web/sites" && r["name"].to_string().contains(app))
        .unwrap();
    site["properties"]["siteConfig"]["appSettings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["value"].clone()))
        .collect()
}

#[test]
fn existing_tables_get_sql_role_assignments_and_triggers_their_own_leases_and_subscription() {
    let g = common::graph_str(&triggers_manifest());
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    // Their container and topic are never declared; no namespace at all. The deployment's own
    // Cosmos DB account holds only the lease container.
    let containers: Vec<String> = resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(
        containers[0].ends_with("/nimbus_leases')]"),
        "{containers:?}"
    );
    assert!(
        !resources(&doc).iter().any(|r| r["type"]
            .as_str()
            .unwrap()
            .starts_with("Microsoft.ServiceBus")),
        "no Service Bus resource at top level"
    );

    let nested: std::collections::BTreeMap<String, &Value> = resources(&doc)
        .iter()
        .filter(|r| r["type"] == "Microsoft.Resources/deployments")
        .map(|d| (d["name"].as_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(
        nested.keys().cloned().collect::<Vec<_>>(),
        [
            "nimbus-audit-trigger-events",
            "nimbus-audit-uses-users",
            "nimbus-reader-uses-users"
        ],
        "the audit trigger's read of users is covered by its write grant"
    );
    // Cosmos DB data-plane grants, in the account's group, scoped to the one container.
    for (deployment, role) in [
        (
            "nimbus-audit-uses-users",
            nimbus_azure::roles::COSMOS_CONTRIBUTOR,
        ),
        (
            "nimbus-reader-uses-users",
            nimbus_azure::roles::COSMOS_READER,
        ),
    ] {
        let d = nested[deployment];
        assert_eq!(d["subscriptionId"], SUB);
        assert_eq!(d["resourceGroup"], "shared");
        let inner = d["properties"]["template"]["resources"].as_array().unwrap();
        assert_eq!(inner.len(), 1);
        let a = &inner[0];
        assert_eq!(
            a["type"],
            "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"
        );
        assert_eq!(
            a["properties"]["roleDefinitionId"],
            format!("{USERS_ACCOUNT}/sqlRoleDefinitions/{}", role.id)
        );
        assert_eq!(
            a["properties"]["scope"],
            format!("{USERS_ACCOUNT}/dbs/app/colls/users")
        );
        assert!(
            a["name"]
                .as_str()
                .unwrap()
                .starts_with("[concat('acmedocs', '/', guid("),
            "{a}"
        );
    }
    // The topic trigger: a subscription of its own in their topic, Data Receiver on it only.
    let d = nested["nimbus-audit-trigger-events"];
    assert_eq!(d["subscriptionId"], "00000000-0000-0000-0000-0000000000bb");
    assert_eq!(d["resourceGroup"], "bus");
    let inner = d["properties"]["template"]["resources"].as_array().unwrap();
    assert_eq!(inner.len(), 2);
    assert_eq!(
        inner[0]["type"],
        "Microsoft.ServiceBus/namespaces/topics/subscriptions"
    );
    assert_eq!(inner[0]["name"], "acme/events/nimbus-ledger-dev-audit");
    let sub_id = format!("{EVENTS}/subscriptions/nimbus-ledger-dev-audit");
    assert_eq!(inner[1]["type"], "Microsoft.Authorization/roleAssignments");
    assert_eq!(inner[1]["scope"], sub_id.as_str());
    assert_eq!(inner[1]["dependsOn"], serde_json::json!([sub_id]));
    assert!(
        inner[1]["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .contains(nimbus_azure::roles::SERVICE_BUS_RECEIVER.id)
    );

    // Settings: the shim's table client and the triggers' connections point at the owners'
    // account and namespace; the leases at the deployment's own account.
    let s = app_settings(&doc, "audit");
    let get = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    assert_eq!(get("NIMBUS_RESOURCE_USERS_NAME"), "users");
    assert_eq!(get("NIMBUS_RESOURCE_USERS_DATABASE"), "app");
    assert_eq!(
        get("NIMBUS_RESOURCE_USERS_ENDPOINT"),
        "https://acmedocs.documents.azure.com:443/"
    );
    assert_eq!(
        get("NIMBUS_COSMOS_USERS__accountEndpoint"),
        "https://acmedocs.documents.azure.com:443/"
    );
    assert_eq!(get("NIMBUS_COSMOS_USERS__credential"), "managedidentity");
    assert_eq!(
        get("NIMBUS_SERVICEBUS_EVENTS__fullyQualifiedNamespace"),
        "acme.servicebus.windows.net"
    );
    assert_eq!(
        get("NIMBUS_SERVICEBUS_EVENTS__credential"),
        "managedidentity"
    );
    assert!(
        get("NIMBUS_COSMOS__accountEndpoint")
            .as_str()
            .unwrap()
            .contains("documentEndpoint"),
        "the lease connection is the deployment's account"
    );
    assert_eq!(
        get("NIMBUS_SERVICEBUS__fullyQualifiedNamespace"),
        Value::Null
    );
    let r = app_settings(&doc, "reader");
    assert_eq!(
        r.get("NIMBUS_RESOURCE_USERS_ENDPOINT").unwrap(),
        "https://acmedocs.documents.azure.com:443/"
    );
    assert!(!r.contains_key("NIMBUS_COSMOS__accountEndpoint"));

    // The entry points bind the owners' container and topic, leases in the own account.
    let apps = nimbus_azure::apps(&g).unwrap();
    let audit = apps.iter().find(|a| a.function == "audit").unwrap();
    let js = nimbus_azure::entry::index_js(&g, audit);
    assert!(
        js.contains("connection: \"NIMBUS_COSMOS_USERS\", databaseName: \"app\", containerName: \"users\",\n  leaseConnection: \"NIMBUS_COSMOS\", leaseDatabaseName: \"ledger\","),
        "{js}"
    );
    assert!(
        js.contains("topicName: \"events\", subscriptionName: \"nimbus-ledger-dev-audit\", connection: \"NIMBUS_SERVICEBUS_EVENTS\""),
        "{js}"
    );
}

/// The owner's container `users` (database `app`, account `acmedocs`, group `shared`),
/// partitioned by `paths`, made in the double by a deployment of the owner's own.
fn seed_owner_container(double: &ArmDouble, paths: &[&str]) {
    let group = format!("/subscriptions/{SUB}/resourcegroups/shared");
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}?api-version=2024-03-01"),
        &serde_json::json!({ "location": "westeurope" }),
    );
    assert!(status < 300, "{status} {body}");
    let template = serde_json::json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{
            "type": "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
            "apiVersion": "2024-11-15",
            "name": "acmedocs/app/users",
            "properties": { "resource": { "id": "users", "partitionKey": { "paths": paths, "kind": "Hash" } } },
        }],
    });
    let (status, body) = double.arm(
        "PUT",
        &format!("{group}/providers/Microsoft.Resources/deployments/owner?api-version=2024-03-01"),
        &serde_json::json!({ "properties": { "mode": "Incremental", "template": template } }),
    );
    assert!(status < 300, "{status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_adds_only_grants_and_a_subscription_to_existing_tables_and_topics_and_remove_takes_them_back()
 {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let lookup = environment(&azurite, &double);
    let dir = tempfile::tempdir().unwrap();
    let manifest = triggers_manifest();
    std::fs::write(dir.path().join("nimbus.yaml"), &manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return {\"ok\": True}\n",
    )
    .unwrap();
    let graph = common::graph_in(&manifest, Some(dir.path()));
    let mut options = nimbus_package::BuildOptions::conventional(
        dir.path(),
        nimbus_provider::ProviderId::Azure,
        &graph.stage,
    );
    options.cache_dir = common::repo().join("target/nimbus-azure-test-cache");
    let report = nimbus_package::build(&graph, &options, &|_| {}).unwrap();
    let target = Target {
        graph: &graph,
        build: &report.manifest,
        build_dir: &options.out_dir,
    };
    let azure = nimbus_azure::connect_with(&graph, Options::default(), &lookup)
        .await
        .unwrap();
    seed_owner_container(&double, &["/pk"]);
    // The double validates each nested resource against Microsoft's models
    // (SqlRoleAssignmentCreateUpdateParameters, SBSubscription, RoleAssignmentCreateParameters).
    azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();

    let held = double.resources();
    let owners = [USERS_ACCOUNT, EVENTS];
    let under = |id: &str| -> Vec<String> {
        held.iter()
            .filter(|r| r.to_ascii_lowercase().starts_with(&id.to_ascii_lowercase()))
            .cloned()
            .collect()
    };
    // In the owner's Cosmos DB account: its container and the two SQL role assignments.
    let in_account = under(USERS_ACCOUNT);
    assert_eq!(in_account.len(), 3, "{in_account:#?}");
    assert_eq!(
        in_account
            .iter()
            .filter(|r| r.contains("/sqlRoleAssignments/"))
            .count(),
        2,
        "{in_account:#?}"
    );
    // In the owner's topic: Nimbus's subscription and the role assignment on it.
    let sub_id = format!("{EVENTS}/subscriptions/nimbus-ledger-dev-audit");
    let mut in_topic = under(EVENTS);
    in_topic.sort();
    assert_eq!(in_topic.len(), 2, "{in_topic:#?}");
    assert!(in_topic[0].eq_ignore_ascii_case(&sub_id), "{in_topic:#?}");
    assert!(in_topic[1].contains("/providers/Microsoft.Authorization/roleAssignments/"));
    let mut expected = Vec::new();
    for f in ["audit", "reader"] {
        let identity = held
            .iter()
            .find(|r| r.contains(&format!("/userAssignedIdentities/ledger-dev-{f}")))
            .unwrap();
        let (_, found) = double.arm(
            "GET",
            &format!("{identity}?api-version=2023-01-31"),
            &Value::Null,
        );
        let principal = found["properties"]["principalId"].as_str().unwrap();
        expected.extend(nimbus_azure::template::outside_assignments(
            &graph,
            &graph.functions[f],
            principal,
        ));
    }
    assert_eq!(expected.len(), 4, "{expected:#?}");
    for a in &expected {
        assert!(
            held.iter().any(|r| r.eq_ignore_ascii_case(a)),
            "{a}: {held:#?}"
        );
    }
    // The SQL role assignment of `reader` reads; its principal is reader's identity.
    // The app as the Python worker indexes it (Microsoft's azure-functions): the owner's
    // container and topic, with the leases in the deployment's own account.
    let apps = nimbus_azure::apps(&graph).unwrap();
    let audit = apps.iter().find(|a| a.function == "audit").unwrap();
    let zip = options
        .out_dir
        .join(&report.manifest.functions["audit"].file);
    let bytes = nimbus_azure::package::assemble(&graph, audit, &zip).unwrap();
    let app_dir = dir.path().join("app-audit");
    zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .unwrap()
        .extract(&app_dir)
        .unwrap();
    let python = nimbus_test_support::required_venv_tool("python");
    let out = std::process::Command::new(python)
        .arg(common::repo().join("crates/nimbus-azure/tests/apps/inspect_app.py"))
        .arg(&app_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let indexed: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let binding = |kind: &str| -> Value {
        indexed["functions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["bindings"].as_array().unwrap().iter())
            .find(|b| b["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}: {indexed}"))
    };
    let feed = binding("cosmosDBTrigger");
    for (k, v) in [
        ("connection", "NIMBUS_COSMOS_USERS"),
        ("databaseName", "app"),
        ("containerName", "users"),
        ("leaseConnection", "NIMBUS_COSMOS"),
        ("leaseDatabaseName", "ledger"),
        ("leaseContainerName", "nimbus_leases"),
    ] {
        assert_eq!(feed[k], v, "{k}: {feed}");
    }
    let bus = binding("serviceBusTrigger");
    for (k, v) in [
        ("connection", "NIMBUS_SERVICEBUS_EVENTS"),
        ("topicName", "events"),
        ("subscriptionName", "nimbus-ledger-dev-audit"),
    ] {
        assert_eq!(bus[k], v, "{k}: {bus}");
    }

    let reader_grant = expected.last().unwrap();
    assert!(
        reader_grant.contains("/sqlRoleAssignments/"),
        "{reader_grant}"
    );
    let (_, grant) = double.arm(
        "GET",
        &format!("{reader_grant}?api-version=2024-11-15"),
        &Value::Null,
    );
    assert_eq!(
        grant["properties"]["scope"]
            .as_str()
            .map(str::to_ascii_lowercase),
        Some(format!("{USERS_ACCOUNT}/dbs/app/colls/users").to_ascii_lowercase()),
        "{grant}"
    );
    let writes: Vec<(String, String)> = double
        .calls()
        .into_iter()
        .filter(|(m, p)| m != "GET" && owners.iter().any(|id| p.starts_with(id)))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    azure.remove(&graph, true).await.unwrap();
    let now = double.resources();
    for a in &expected {
        assert!(
            !now.iter().any(|r| r.eq_ignore_ascii_case(a)),
            "{a} left behind"
        );
    }
    // The owner's container is still there.
    let (status, container) = double.arm(
        "GET",
        &format!("{USERS}?api-version=2024-11-15"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{container}");
    assert_eq!(
        container["properties"]["resource"]["partitionKey"]["paths"],
        serde_json::json!(["/pk"])
    );
    // Every call that touched the owners' account or topic was one of those four DELETEs, the
    // role assignment on the subscription before the subscription.
    let touching: Vec<(String, String)> = double
        .calls()
        .into_iter()
        .filter(|(m, p)| m != "GET" && owners.iter().any(|id| p.starts_with(id)))
        .collect();
    assert_eq!(touching.len(), 4, "{touching:#?}");
    assert!(touching.iter().all(|(m, _)| m == "DELETE"), "{touching:#?}");
    let position = |needle: &str| {
        touching
            .iter()
            .position(|(_, p)| p.split('?').next().unwrap().eq_ignore_ascii_case(needle))
            .unwrap_or_else(|| panic!("{needle}: {touching:#?}"))
    };
    let on_sub = expected
        .iter()
        .find(|a| a.starts_with(&format!("{sub_id}/providers/")))
        .unwrap();
    assert!(position(on_sub) < position(&sub_id));
}

#[test]
fn the_node_app_binds_the_owners_container_and_topic_with_its_own_leases() {
    // The same triggers in a Node.js function, registered through Microsoft's @azure/functions.
    let manifest = triggers_manifest().replace(
        "  audit:\n    handler: app.py:handler",
        "  audit:\n    runtime: nodejs22\n    handler: app.js:handler",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), &manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return None\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.js"),
        "exports.handler = async () => null;\n",
    )
    .unwrap();
    let graph = common::graph_in(&manifest, Some(dir.path()));
    let mut options = nimbus_package::BuildOptions::conventional(
        dir.path(),
        nimbus_provider::ProviderId::Azure,
        &graph.stage,
    );
    options.cache_dir = common::repo().join("target/nimbus-azure-test-cache");
    let report = nimbus_package::build(&graph, &options, &|_| {}).unwrap();
    let apps = nimbus_azure::apps(&graph).unwrap();
    let audit = apps.iter().find(|a| a.function == "audit").unwrap();
    let zip = options
        .out_dir
        .join(&report.manifest.functions["audit"].file);
    let bytes = nimbus_azure::package::assemble(&graph, audit, &zip).unwrap();
    let app_dir = dir.path().join("app-audit");
    zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .unwrap()
        .extract(&app_dir)
        .unwrap();
    let out = std::process::Command::new("node")
        .arg(common::repo().join("crates/nimbus-azure/tests/apps/inspect_app.js"))
        .arg(&app_dir)
        .env("NODE_PATH", common::azurite::node_modules())
        .output()
        .expect("node runs (scripts/lib/tools.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let indexed: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let binding = |kind: &str| -> Value {
        indexed["functions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["bindings"].as_array().unwrap().iter())
            .find(|b| b["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}: {indexed}"))
    };
    let feed = binding("cosmosDBTrigger");
    for (k, v) in [
        ("connection", "NIMBUS_COSMOS_USERS"),
        ("databaseName", "app"),
        ("containerName", "users"),
        ("leaseConnection", "NIMBUS_COSMOS"),
        ("leaseDatabaseName", "ledger"),
        ("leaseContainerName", "nimbus_leases"),
    ] {
        assert_eq!(feed[k], v, "{k}: {feed}");
    }
    let bus = binding("serviceBusTrigger");
    for (k, v) in [
        ("connection", "NIMBUS_SERVICEBUS_EVENTS"),
        ("topicName", "events"),
        ("subscriptionName", "nimbus-ledger-dev-audit"),
    ] {
        assert_eq!(bus[k], v, "{k}: {bus}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_an_existing_container_not_partitioned_by_pk_before_any_change() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let lookup = environment(&azurite, &double);
    let dir = tempfile::tempdir().unwrap();
    let manifest = triggers_manifest();
    std::fs::write(dir.path().join("nimbus.yaml"), &manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return None\n",
    )
    .unwrap();
    let graph = common::graph_in(&manifest, Some(dir.path()));
    let mut options = nimbus_package::BuildOptions::conventional(
        dir.path(),
        nimbus_provider::ProviderId::Azure,
        &graph.stage,
    );
    options.cache_dir = common::repo().join("target/nimbus-azure-test-cache");
    let report = nimbus_package::build(&graph, &options, &|_| {}).unwrap();
    let target = Target {
        graph: &graph,
        build: &report.manifest,
        build_dir: &options.out_dir,
    };
    let azure = nimbus_azure::connect_with(&graph, Options::default(), &lookup)
        .await
        .unwrap();
    // Missing altogether.
    let e = azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Partitioned by another path.
    seed_owner_container(&double, &["/tenant"]);
    let before = double.calls().len();
    let e = azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("table `users`") && text.contains("[\"/tenant\"]"),
        "{text}"
    );
    assert!(text.contains("partition key path `/pk`"), "{text}");
    // Nothing was changed: only reads since.
    let writes: Vec<(String, String)> = double.calls()[before..]
        .iter()
        .filter(|(m, _)| m != "GET")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert!(
        !double
            .resources()
            .iter()
            .any(|r| r.to_ascii_lowercase().contains("/resourcegroups/ledger/")),
        "no resource of the app was made"
    );
}
