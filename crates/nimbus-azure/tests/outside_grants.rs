//! Role assignments outside the deployment's resource group (`permissions.azure`), deployed
//! through nested deployments, are deleted by `remove` by their deterministic names, also when
//! the state no longer lists them; nothing else outside the group is touched. Against Azurite
//! and the ARM test double (which evaluates `guid()` as ARM does).

mod common;

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use nimbus_cloud::{Cloud, Options, Target};
use serde_json::Value;

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const MAIL: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/mail/providers/Microsoft.ServiceBus/namespaces/mail";
const WAREHOUSE: &str =
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/warehouse";

fn manifest() -> String {
    format!(
        "version: 1\nservice: hatch\nfunctions:\n  mailer:\n    handler: app.py:handler\n    permissions:\n      azure:\n        - {{ role: \"Azure Service Bus Data Sender\", scope: {MAIL} }}\n        - {{ role: Reader, scope: {WAREHOUSE} }}\nproviders:\n  azure: {{ location: westeurope, resource_group: hatch }}\n"
    )
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

/// The role assignments' ids, as `remove` computes them from the identity's principal id.
fn expected(double: &ArmDouble, graph: &nimbus_graph::AppGraph) -> Vec<String> {
    let identity = double
        .resources()
        .into_iter()
        .find(|r| r.contains("/userAssignedIdentities/hatch-dev-mailer"))
        .expect("the mailer's identity");
    let (status, found) = double.arm(
        "GET",
        &format!("{identity}?api-version=2023-01-31"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{found}");
    let principal = found["properties"]["principalId"].as_str().unwrap();
    nimbus_azure::template::outside_assignments(graph, &graph.functions["mailer"], principal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_the_role_assignments_made_in_other_groups() {
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

    // The nested deployments made them, named as ARM's guid() names them.
    let assignments = expected(&double, &graph);
    assert_eq!(assignments.len(), 2);
    assert!(assignments[0].starts_with(&format!(
        "{MAIL}/providers/Microsoft.Authorization/roleAssignments/"
    )));
    assert!(assignments[1].starts_with(&format!(
        "{WAREHOUSE}/providers/Microsoft.Authorization/roleAssignments/"
    )));
    let held = |id: &str| {
        double
            .resources()
            .iter()
            .any(|r| r.eq_ignore_ascii_case(id))
    };
    for a in &assignments {
        assert!(held(a), "{a} not deployed: {:#?}", double.resources());
    }
    // The state forgets them (as a state written before they were recorded would): remove
    // still finds them by name.
    forget_outside(&azurite, &graph).await;

    azure.remove(&graph, true).await.unwrap();
    for a in &assignments {
        assert!(!held(a), "{a} was left behind");
    }
    let deletes: Vec<String> = double
        .calls()
        .into_iter()
        .filter(|(m, p)| m == "DELETE" && !p.contains("/resourceGroups/hatch"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        deletes.len(),
        2,
        "only Nimbus's two assignments outside the group: {deletes:#?}"
    );
}

/// Drops the role assignments outside the group from the deployment's state in Azurite.
async fn forget_outside(azurite: &Azurite, graph: &nimbus_graph::AppGraph) {
    use nimbus_azure::{names, storage};
    let endpoint = azurite.blob_endpoint();
    let account = endpoint.trim_end_matches('/').rsplit('/').next().unwrap();
    let sas = nimbus_azure::sas::account_sas(account, KEY, "2099-01-01T00:00:00Z").unwrap();
    let store = storage::BlobStore::new(&endpoint, storage::Access::Sas(sas));
    let blob = names::state_blob(&graph.service, &graph.stage);
    let bytes = store
        .get(names::STATE_CONTAINER, &blob)
        .await
        .unwrap()
        .expect("a state");
    let mut state: Value = serde_json::from_slice(&bytes).unwrap();
    let created = state["created"].as_array_mut().unwrap();
    let before = created.len();
    created.retain(|id| id.as_str().unwrap().contains("/resourceGroups/hatch/"));
    assert!(created.len() < before, "the state listed them");
    store
        .put(
            names::STATE_CONTAINER,
            &blob,
            serde_json::to_vec(&state).unwrap(),
            None,
        )
        .await
        .unwrap();
}
