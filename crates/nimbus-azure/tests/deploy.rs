//! `Cloud` for Azure, end to end against Azurite (the deployment storage: packages, lock, state)
//! and the ARM test double (`tests/arm_double.py`, which validates every request against
//! Microsoft's published models and answers with the documented async polling).
//!
//! One test walks the life of the shop: plan before anything exists, deploy, an unchanged
//! redeploy (no PUT), what-if, a change, a refused and a forced data loss, a failed deployment,
//! a held lock, info, unlock and remove. The environment variables are the documented ones.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::azurite::{ACCOUNT, Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use nimbus_azure::{AzureError, names};
use nimbus_cloud::{Cloud, Options, Progress, Target};
use nimbus_engine::Action;
use serde_json::Value;

const FORCE: nimbus_cloud::DeployOptions = nimbus_cloud::DeployOptions {
    force: true,
    refresh: false,
};
const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

fn deployment_puts(double: &ArmDouble) -> usize {
    double
        .calls()
        .iter()
        .filter(|(m, p)| m == "PUT" && p.contains("/deployments/"))
        .count()
}

fn options(events: &Arc<Mutex<Vec<Progress>>>, lock_timeout: Duration) -> Options {
    let sink = events.clone();
    Options {
        lock_timeout,
        progress: Some(Arc::new(move |p: &Progress| {
            sink.lock().unwrap().push(p.clone())
        })),
        ..Options::default()
    }
}

/// The documented environment variables, pointing at `azurite` and `double`.
fn environment(azurite: &Azurite, double: &ArmDouble) -> impl Fn(&str) -> Option<String> {
    let env: std::collections::BTreeMap<&str, String> = [
        ("AZURE_SUBSCRIPTION_ID", SUB.to_string()),
        ("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN.to_string()),
        ("NIMBUS_AZURE_ARM_ENDPOINT", double.url()),
        ("NIMBUS_AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint()),
        ("NIMBUS_AZURE_STORAGE_KEY", KEY.to_string()),
        ("NIMBUS_AZURE_LOGS_ENDPOINT", double.url()),
        (
            "NIMBUS_AZURE_KEYVAULT_ENDPOINT",
            format!("{}/_keyvault/{{vault}}", double.url()),
        ),
        (
            "NIMBUS_AZURE_APP_ENDPOINT",
            format!("{}/_apps/{{app}}", double.url()),
        ),
    ]
    .into();
    move |name: &str| env.get(name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_deploys_redeploys_plans_and_is_removed() {
    let azurite = Azurite::start();
    let cosmos = common::cosmos::Cosmos::start();
    let double = ArmDouble::start_with_cosmos(&azurite, &cosmos);
    let lookup = environment(&azurite, &double);
    assert_eq!(azurite.blob_endpoint().rsplit('/').next(), Some(ACCOUNT));
    let shop = common::build_shop();
    let target = Target {
        graph: &shop.graph,
        build: &shop.build,
        build_dir: &shop.out,
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let azure = nimbus_azure::connect_with(&shop.graph, options(&events, Duration::ZERO), &lookup)
        .await
        .unwrap();

    // The shop's charge-payment reads `payment-key`: `secret set` puts its value in the stage's
    // Key Vault (creating the vault) before the first plan and deploy, as a user does.
    azure
        .set_secret("payment-key", "pk_test_shop")
        .await
        .unwrap();
    let calls_before_plan = double.calls().len();

    // Nothing was deployed: every resource of the template would be created but the vault,
    // which `secret set` made and the refreshed plan finds as it should be.
    let plan = azure.plan(&target, false).await.unwrap();
    assert!(
        plan.resources
            .iter()
            .all(|r| r.action == Action::Create || r.id.contains("Microsoft.KeyVault/vaults")),
        "{}",
        plan.render()
    );
    let total = plan.resources.len();
    assert!(total > 80, "{total}");
    assert!(
        double.calls()[calls_before_plan..]
            .iter()
            .all(|(m, _)| m != "PUT"),
        "plan is read-only"
    );

    // Deploy: resource group, deployment account, packages, the template (the plan compares
    // with the deployment's own state, which has no vault yet).
    let deployed = azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();
    assert_eq!(
        deployed.report.summary.create, total,
        "{:?}",
        deployed.report.summary
    );
    assert_eq!(deployed.uploads.len(), 7);
    assert!(deployed.uploads.iter().all(|u| !u.skipped && u.bytes > 0));
    for u in &deployed.uploads {
        let container = names::app_container(&u.function);
        let blob = u.location.rsplit('/').next().unwrap();
        assert_eq!(
            azurite.blob_names(&container),
            vec![blob.to_string()],
            "{u:?}"
        );
    }
    assert_eq!(
        azurite.blob_names(names::STATE_CONTAINER),
        vec![
            "shop/dev/azure/state.json".to_string(),
            "shop/dev/lock".to_string()
        ]
    );
    assert_eq!(deployment_puts(&double), 1);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Waiting { status, .. } if status == "Running")),
        "the deployment is polled with progress"
    );
    let info = &deployed.info;
    assert!(info.deployed);
    let get = info
        .endpoints
        .iter()
        .find(|e| e.function == "get-order")
        .unwrap();
    // The app's base URL is NIMBUS_AZURE_APP_ENDPOINT here (the double's host stand-in);
    // without it, `https://<app>.azurewebsites.net`.
    assert!(
        get.url
            .starts_with(&format!("{}/_apps/shop-dev-get-order-", double.url()))
            && get.url.ends_with("/orders/{id}"),
        "{get:?}"
    );
    let thumb = info
        .functions
        .iter()
        .find(|f| f.name == "make-thumbnail")
        .unwrap();
    assert_eq!((thumb.memory_mb, thumb.timeout_s), (512, 30));
    // Each function's package SHA-256 names the blob it was deployed from.
    assert_eq!(info.functions.len(), 7);
    for f in &info.functions {
        let upload = deployed
            .uploads
            .iter()
            .find(|u| u.function == f.name)
            .unwrap();
        assert_eq!(f.package_sha256.len(), 64, "{f:?}");
        assert!(
            upload
                .location
                .ends_with(&format!("/{}.zip", f.package_sha256)),
            "{f:?} {upload:?}"
        );
    }
    let created = double.resources();
    assert!(
        created
            .iter()
            .any(|r| r.contains("/Microsoft.Web/sites/shop-dev-place-order-"))
    );

    // Logs: Application Insights rows of the apps, by neutral function, oldest first.
    let app = |f: &str| {
        info.functions
            .iter()
            .find(|x| x.name == f)
            .unwrap()
            .native
            .clone()
    };
    let now = chrono::Utc::now();
    let at = |s: i64| {
        (now - chrono::Duration::seconds(s))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    double.add_traces(&serde_json::json!([
        { "timestamp": at(30), "cloud_RoleName": app("get-order"), "message": "order 42 read\n" },
        { "timestamp": at(20), "cloud_RoleName": app("place-order"), "message": "order placed" },
        { "timestamp": at(7200), "cloud_RoleName": app("get-order"), "message": "too old" },
        { "timestamp": at(10), "cloud_RoleName": "someone-else", "message": "not ours" },
    ]));
    let lines = Mutex::new(Vec::new());
    let sink = |l: nimbus_cloud::LogLine| {
        lines.lock().unwrap().push((l.function, l.message));
        true
    };
    azure
        .logs(&shop.graph, &nimbus_cloud::LogQuery::default(), &sink)
        .await
        .unwrap();
    assert_eq!(
        *lines.lock().unwrap(),
        vec![
            ("get-order".to_string(), "order 42 read".to_string()),
            ("place-order".to_string(), "order placed".to_string())
        ]
    );
    let only = nimbus_cloud::LogQuery {
        function: Some("place-order".into()),
        ..Default::default()
    };
    lines.lock().unwrap().clear();
    azure.logs(&shop.graph, &only, &sink).await.unwrap();
    assert_eq!(lines.lock().unwrap().len(), 1);

    // Invoke, through the double's Functions host stand-in running the deployed packages with
    // azure-functions against Azurite and the Cosmos DB server: get-order over HTTP (its table is a
    // Cosmos DB container, seeded here in the shim's layout), nightly-report through the admin API.
    let seeded = Command::new(nimbus_test_support::required_venv_tool("python"))
        .arg("-c")
        .arg(
            "import sys\nfrom azure.cosmos import CosmosClient, PartitionKey\nfrom azure.storage.blob import BlobServiceClient\n\
             db = CosmosClient.from_connection_string(sys.argv[2]).create_database_if_not_exists('shop')\n\
             c = db.create_container_if_not_exists('orders', PartitionKey(path='/pk'), default_ttl=-1)\n\
             c.upsert_item({'id': '42', 'pk': '42', 'key': {'id': '42'}, 'item': {'id': '42', 'status': 'paid', 'amount': 9.5}, 'old': None, 'op': 'insert'})\n\
             BlobServiceClient.from_connection_string(sys.argv[1]).create_container('reports')\n",
        )
        .arg(azurite.connection_string())
        .arg(cosmos.connection_string())
        .status()
        .unwrap();
    assert!(seeded.success());
    let got = azure
        .invoke(
            &shop.graph,
            "get-order",
            &serde_json::json!({"type": "http", "method": "GET", "path": "/orders/42"}),
        )
        .await
        .unwrap();
    assert!(!got.failed, "{got:?}");
    assert_eq!(got.result["status"], 200, "{got:?}");
    assert_eq!(
        serde_json::from_str::<Value>(got.result["body"].as_str().unwrap()).unwrap(),
        serde_json::json!({"id": "42", "status": "paid", "amount": 9.5})
    );
    let missing = azure
        .invoke(
            &shop.graph,
            "get-order",
            &serde_json::json!({"type": "http", "method": "GET", "path": "/orders/7"}),
        )
        .await
        .unwrap();
    assert_eq!(missing.result["status"], 404, "{missing:?}");
    let ran = azure
        .invoke(
            &shop.graph,
            "nightly-report",
            &serde_json::json!({"type": "schedule"}),
        )
        .await
        .unwrap();
    assert_eq!(ran.result["accepted"], true, "{ran:?}");
    assert_eq!(
        double.invocations()[0]["ok"],
        true,
        "{}",
        double.invocations()
    );
    let reports = azurite.blob_names("reports");
    assert!(
        reports.len() == 1 && reports[0].starts_with("nightly/"),
        "{reports:?}"
    );
    let err = azure
        .invoke(&shop.graph, "nope", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, AzureError::UnknownFunction { .. }), "{err}");

    // An unchanged redeploy: no PUT, nothing uploaded, everything the same.
    let again = azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();
    assert_eq!(
        deployment_puts(&double),
        1,
        "an unchanged redeploy makes no PUT"
    );
    assert!(again.uploads.iter().all(|u| u.skipped));
    assert_eq!(
        again.report.summary.changes(),
        0,
        "{:?}",
        again.report.summary
    );
    assert_eq!(again.report.summary.same, total);
    assert_eq!(again.report.calls.creates, 0);

    // What-if agrees.
    let plan = azure.plan(&target, false).await.unwrap();
    assert!(!plan.has_changes(), "{}", plan.render());
    assert_eq!(plan.summary.same, total);

    // A change: get-order gets a bigger instance.
    let yaml = common::shop_yaml().replace(
        "  get-order:\n    handler: orders/get.py:handler\n",
        "  get-order:\n    handler: orders/get.py:handler\n    memory: 2048\n",
    );
    std::fs::write(shop.dir.path().join("nimbus.yaml"), &yaml).unwrap();
    let bigger = common::graph_in(&yaml, Some(shop.dir.path()));
    let target2 = Target {
        graph: &bigger,
        ..target
    };
    let plan = azure.plan(&target2, false).await.unwrap();
    let site = plan
        .resources
        .iter()
        .find(|r| r.id.starts_with("Microsoft.Web/sites/shop-dev-get-order-"))
        .unwrap();
    assert_eq!(site.action, Action::Update, "{}", plan.render());
    assert!(
        site.changes
            .iter()
            .any(|c| c.path.ends_with("instanceMemoryMB")),
        "{site:?}"
    );
    let changed = azure
        .deploy(&target2, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();
    assert!(
        changed.report.summary.update >= 1,
        "{:?}",
        changed.report.summary
    );
    assert_eq!(deployment_puts(&double), 2);

    // Dropping a bucket would delete data: refused without force, before anything changes.
    let fewer = yaml
        .replace(
            "  reports:\n    type: bucket\n    existing: { aws: \"arn:aws:s3:::acme-shop-reports\", gcp: \"projects/_/buckets/acme-shop-reports\" }\n",
            "",
        )
        .replace("      - { resource: reports, access: write }\n", "");
    let fewer = common::graph_in(&fewer, Some(shop.dir.path()));
    let target3 = Target {
        graph: &fewer,
        ..target
    };
    let err = azure
        .deploy(&target3, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AzureError::Engine(nimbus_engine::Error::WouldLoseData { resources, .. }) if resources.iter().any(|r| r.contains("/default/reports"))),
        "{err}"
    );
    assert_eq!(deployment_puts(&double), 2);
    let forced = azure.deploy(&target3, FORCE).await.unwrap();
    // The container, and nightly-report's role assignment on it.
    assert_eq!(
        forced.report.summary.delete, 2,
        "{:?}",
        forced.report.summary
    );
    assert!(
        !double
            .resources()
            .iter()
            .any(|r| r.ends_with("/containers/reports"))
    );

    // A failed deployment reports ARM's error.
    let target4 = Target {
        graph: &bigger,
        ..target
    };
    double.fail_next_deployment("the plan's quota is exhausted");
    let err = azure.deploy(&target4, FORCE).await.unwrap_err();
    assert!(
        err.to_string().contains("the plan's quota is exhausted"),
        "{err}"
    );

    // A lock held by another run.
    let store = nimbus_azure::storage::BlobStore::new(
        &azurite.blob_endpoint(),
        nimbus_azure::storage::Access::Sas(
            nimbus_azure::sas::account_sas(ACCOUNT, KEY, "2099-01-01T00:00:00Z").unwrap(),
        ),
    );
    let held = nimbus_azure::storage::lock(
        &store,
        names::STATE_CONTAINER,
        &names::lock_blob("shop", "dev"),
        "shop/dev",
        "apply",
        &nimbus_engine::LockOptions::default(),
    )
    .await
    .unwrap();
    let err = azure.deploy(&target4, FORCE).await.unwrap_err();
    assert!(
        matches!(err, AzureError::Engine(nimbus_engine::Error::Locked { .. })),
        "{err}"
    );
    azure.unlock(&bigger, &held.info.id).await.unwrap();
    let recovered = azure.deploy(&target4, FORCE).await.unwrap();
    assert!(recovered.info.deployed);

    // Remove: everything but the data (and the state it needs) without force.
    let report = azure.remove(&bigger, false).await.unwrap();
    assert!(report.summary.delete > 50, "{:?}", report.summary);
    assert!(!report.retained.is_empty());
    let left = double.resources();
    // Kept: the storage accounts and the Cosmos DB account with the tables' containers (data),
    // not the SQL role assignments on them, and the Key Vault holding the shop's secret.
    assert!(
        left.iter().all(|r| r.contains("/storageAccounts/")
            || r.contains("/databaseAccounts/")
            || r.contains("/Microsoft.KeyVault/vaults/")),
        "{left:?}"
    );
    assert!(
        left.iter().any(|r| r.ends_with("/containers/orders"))
            && !left.iter().any(|r| r.contains("/sqlRoleAssignments/")),
        "{left:?}"
    );
    assert!(!left.iter().any(|r| r.contains("/Microsoft.Web/")));
    let report = azure.remove(&bigger, true).await.unwrap();
    assert!(report.retained.is_empty(), "{:?}", report.retained);
    assert!(double.resources().is_empty(), "{:?}", double.resources());
    let info = azure.info(&bigger).await.unwrap();
    assert!(!info.deployed);
    assert!(info.functions.iter().all(|f| f.package_sha256.is_empty()));
    let _ = Value::Null;
}

/// A change made outside nimbus (a deleted queue, an edited app setting) is left alone by a plain
/// deploy of an unchanged template (no PUT), shown as drift by `plan --refresh`, and put back by
/// `deploy --refresh` (what-if, then a deployment); with nothing left to repair, `--refresh`
/// makes no PUT either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_when_asked() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let lookup = environment(&azurite, &double);
    let shop = common::build_shop();
    let target = Target {
        graph: &shop.graph,
        build: &shop.build,
        build_dir: &shop.out,
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let azure = nimbus_azure::connect_with(&shop.graph, options(&events, Duration::ZERO), &lookup)
        .await
        .unwrap();
    // The shop's charge-payment reads `payment-key`: its value is in the Key Vault first.
    azure
        .set_secret("payment-key", "pk_test_shop")
        .await
        .unwrap();
    let refresh = nimbus_cloud::DeployOptions {
        force: false,
        refresh: true,
    };
    azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();
    assert_eq!(deployment_puts(&double), 1);
    let deployed = double.resources();

    // Outside nimbus, through ARM: the payments queue is deleted, and get-order's app setting
    // naming its table is edited.
    let queue = deployed
        .iter()
        .find(|r| r.ends_with("/queues/payments"))
        .unwrap()
        .clone();
    let (status, _) = double.arm(
        "DELETE",
        &format!("{queue}?api-version=2023-05-01"),
        &Value::Null,
    );
    assert!(status == 200 || status == 202, "{status}");
    let site = deployed
        .iter()
        .find(|r| {
            r.contains("/Microsoft.Web/sites/shop-dev-get-order-") && !r.contains("/extensions/")
        })
        .unwrap()
        .clone();
    let settings = format!("{site}/config/appsettings");
    let (status, listed) = double.arm(
        "POST",
        &format!("{settings}/list?api-version=2024-04-01"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{listed}");
    let mut edited = listed["properties"].clone();
    assert_eq!(edited["NIMBUS_RESOURCE_ORDERS_NAME"], "orders", "{listed}");
    edited["NIMBUS_RESOURCE_ORDERS_NAME"] = "elsewhere".into();
    let (status, answer) = double.arm(
        "PUT",
        &format!("{settings}?api-version=2024-04-01"),
        &serde_json::json!({ "properties": edited }),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(!double.resources().contains(&queue));

    // A plain deploy of the unchanged template skips ARM: nothing is put back.
    let plain = azure
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap();
    assert_eq!(deployment_puts(&double), 1);
    assert_eq!(plain.report.summary.changes(), 0);
    assert!(!double.resources().contains(&queue));
    let plan = azure.plan(&target, false).await.unwrap();
    assert!(!plan.has_changes() && !plan.refreshed, "{}", plan.render());

    // plan --refresh shows both as drift.
    let plan = azure.plan(&target, true).await.unwrap();
    assert!(plan.refreshed);
    let payments = plan
        .resources
        .iter()
        .find(|r| r.id.ends_with("/queues/payments") || r.id.ends_with("/default/payments"))
        .unwrap_or_else(|| panic!("{}", plan.render()));
    assert_eq!(payments.action, Action::Create, "{}", plan.render());
    assert!(payments.missing_in_cloud, "{payments:?}");
    let get_order = plan
        .resources
        .iter()
        .find(|r| r.id.starts_with("Microsoft.Web/sites/shop-dev-get-order-"))
        .unwrap();
    assert_eq!(get_order.action, Action::Update, "{}", plan.render());
    assert!(
        get_order
            .drift
            .iter()
            .any(|d| d.path.contains("appSettings")
                && d.live
                    .as_ref()
                    .is_some_and(|v| v.to_string().contains("\"elsewhere\""))
                && d.state
                    .as_ref()
                    .is_some_and(|v| !v.to_string().contains("\"elsewhere\""))),
        "{get_order:?}"
    );
    let text = plan.render();
    assert!(text.contains("drift: deleted outside nimbus"), "{text}");
    assert!(text.contains("(refreshed)"), "{text}");
    // Only what changed outside nimbus (the queue, the role assignments on it, the site).
    assert!(
        plan.resources
            .iter()
            .filter(|r| r.action != Action::Same)
            .all(|r| r.missing_in_cloud || !r.drift.is_empty()),
        "{text}"
    );

    // deploy --refresh puts them back with one deployment.
    let repaired = azure.deploy(&target, refresh).await.unwrap();
    assert_eq!(deployment_puts(&double), 2);
    assert_eq!(double.resources(), deployed, "everything is back");
    let (_, now) = double.arm(
        "POST",
        &format!("{settings}/list?api-version=2024-04-01"),
        &Value::Null,
    );
    assert_eq!(now["properties"], listed["properties"]);
    let s = repaired.report.summary;
    assert!(s.create >= 1 && s.update == 1 && s.delete == 0, "{s:?}");
    assert_eq!(s.create + s.update, plan.summary.changes(), "{s:?}");

    // Nothing left to repair: what-if, no PUT.
    let again = azure.deploy(&target, refresh).await.unwrap();
    assert_eq!(deployment_puts(&double), 2);
    assert_eq!(again.report.summary.changes(), 0);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Note { message } if message.contains("no drift"))),
        "a note says why nothing was deployed"
    );
}
