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
