//! The GCP provider end to end: the shop example built for real and deployed through the
//! discovery-validated control-plane double (Cloud Functions, Eventarc, Cloud Scheduler, API
//! Gateway, IAM, Resource Manager, Cloud Run IAM, Cloud Logging), which fronts fake-gcs-server and
//! Google's Pub/Sub and Firestore emulators (see `common::cloud`). Every scenario deploys to a
//! project of its own and reads only its own requests from the double's log; every scenario
//! checks that the double saw no request the published API reference does not allow.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;

use common::cloud::{self, CloudEnv};
use nimbus_cloud::{Cloud, DeployOptions, Options, Target};
use nimbus_engine::Action;
use nimbus_gcp::api::Credentials;
use serde_json::{Value, json};

/// One test, so that one environment serves every scenario (cargo nextest runs each test in a
/// process of its own, and the emulators take seconds to start): the scenarios run concurrently,
/// each in a project of its own, and every failing one is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcp_through_the_control_plane_double_and_the_emulators() {
    let env = cloud::env();
    let scenarios = [
        (
            "deploy_update_redeploy_and_remove_send_exactly_the_documented_requests",
            tokio::spawn(
                deploy_update_redeploy_and_remove_send_exactly_the_documented_requests(env),
            ),
        ),
        (
            "refresh_finds_no_drift_after_a_deploy_and_exactly_a_change_made_outside",
            tokio::spawn(
                refresh_finds_no_drift_after_a_deploy_and_exactly_a_change_made_outside(env),
            ),
        ),
        (
            "a_deploy_that_fails_half_way_converges_when_run_again_without_duplicates",
            tokio::spawn(
                a_deploy_that_fails_half_way_converges_when_run_again_without_duplicates(env),
            ),
        ),
        (
            "the_double_refuses_what_the_published_reference_does_not_allow",
            tokio::spawn(the_double_refuses_what_the_published_reference_does_not_allow(env)),
        ),
        (
            "logs_and_invoke_through_cloud_logging_and_the_functions_urls",
            tokio::spawn(logs_and_invoke_through_cloud_logging_and_the_functions_urls(env)),
        ),
        (
            "a_functions_gcp_settings_reach_cloud_functions_as_the_reference_allows",
            tokio::spawn(
                a_functions_gcp_settings_reach_cloud_functions_as_the_reference_allows(env),
            ),
        ),
        (
            "a_secret_is_a_secret_manager_secret_its_function_alone_may_read_natively",
            tokio::spawn(
                a_secret_is_a_secret_manager_secret_its_function_alone_may_read_natively(env),
            ),
        ),
    ];
    let mut failed = Vec::new();
    for (name, task) in scenarios {
        if task.await.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "failed scenarios (their panics are above): {failed:?}"
    );
}

async fn connect(env: &CloudEnv, graph: &nimbus_graph::AppGraph) -> nimbus_gcp::Gcp {
    nimbus_gcp::Gcp::new(
        graph,
        Options::default(),
        env.endpoints(),
        Credentials::Anonymous,
        None,
    )
    .await
    .unwrap()
    .with_timing(cloud::fast())
}

/// Sets the shop's secret `payment-key` (read by charge-payment) in `project`, as `nimbus secret
/// set -p gcp` does before a first deploy (deploy refuses a secret with no value).
async fn set_payment_key(env: &CloudEnv, project: &str) {
    let client = nimbus_gcp::api::Client::new(env.endpoints(), Credentials::Anonymous).unwrap();
    nimbus_gcp::secrets::SecretValues::new(&client, project, "shop", "dev")
        .set("payment-key", b"sk_test_shop_gcp_value")
        .await
        .unwrap();
}

/// A built copy of the shop for `project`.
struct Shop {
    dir: tempfile::TempDir,
    graph: nimbus_graph::AppGraph,
    build: nimbus_package::BuildReport,
    out: std::path::PathBuf,
}

impl Shop {
    fn new(project: &str) -> Shop {
        // The shop's `reports` bucket exists already (its owner made it, with data).
        cloud::env().make_shop_reports(project);
        let dir = cloud::shop_copy(project);
        let (graph, build, out) = cloud::build(dir.path());
        Shop {
            dir,
            graph,
            build,
            out,
        }
    }

    fn rebuild(&mut self) {
        let (graph, build, out) = cloud::build(self.dir.path());
        (self.graph, self.build, self.out) = (graph, build, out);
    }

    fn target(&self) -> Target<'_> {
        Target {
            graph: &self.graph,
            build: &self.build.manifest,
            build_dir: &self.out,
        }
    }
}

/// The writes since `mark`, split: control-plane and resource writes (project id as `P`, sorted),
/// and the deployment bucket's objects written or deleted (`package`, `state`, `lock`).
fn writes_since(
    env: &CloudEnv,
    project: &str,
    mark: usize,
) -> (Vec<String>, BTreeMap<&'static str, usize>) {
    let mut control = Vec::new();
    let mut objects = BTreeMap::new();
    for r in env.requests_since(project, mark) {
        if r["write"] != true {
            continue;
        }
        let line = cloud::line(&r).replace(project, "P");
        if line.contains("/b/nimbus-deploy-P/o") {
            let name = r["body"]["metadata"]["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| line.clone());
            let kind = if name.contains("packages/") || name.contains("packages%2F") {
                "package"
            } else if name.contains("lock.json") {
                "lock"
            } else if name.contains("state.json") {
                "state"
            } else {
                panic!("an unexpected object write: {line} {name}")
            };
            *objects.entry(kind).or_default() += 1;
        } else {
            control.push(line);
        }
    }
    control.sort();
    (control, objects)
}

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// What deploying the shop sends, besides the deployment bucket's objects. The payment key's
/// secret exists already (`nimbus secret set` made it, with its value): its create is refused as
/// existing, and it is adopted (labelled) instead. The `reports` bucket exists already (its
/// owner's): it is not created, and only its IAM policy gets nightly-report's member.
const CREATE: &str = "
PATCH /secretmanager/v1/projects/P/secrets/shop-dev-payment-key?updateMask=labels
POST /secretmanager/v1/projects/P/secrets/shop-dev-payment-key:setIamPolicy
POST /secretmanager/v1/projects/P/secrets?secretId=shop-dev-payment-key
POST /apigateway/v1/projects/P/locations/europe-west1/gateways?gatewayId=shop-dev
POST /apigateway/v1/projects/P/locations/global/apis/shop-dev/configs?apiConfigId=CONFIG
POST /apigateway/v1/projects/P/locations/global/apis?apiId=shop-dev
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-audit-orders
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-charge-payment
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-get-order
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-make-thumbnail
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-nightly-report
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-place-order
POST /cloudfunctions/v2/projects/P/locations/europe-west1/functions?functionId=shop-dev-reserve-stock
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudscheduler/v1/projects/P/locations/europe-west1/jobs
POST /eventarc/v1/projects/P/locations/europe-west1/triggers?triggerId=shop-dev-audit-orders-table-0
POST /eventarc/v1/projects/P/locations/europe-west1/triggers?triggerId=shop-dev-make-thumbnail-bucket-0-created
POST /eventarc/v1/projects/P/locations/europe-west1/triggers?triggerId=shop-dev-reserve-stock-topic-0
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /iam/v1/projects/P/serviceAccounts
POST /pubsub/v1/projects/P/subscriptions/shop-dev-payments:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-order-events:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-payments-dlq:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-payments:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-audit-orders:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-charge-payment:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-get-order:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-make-thumbnail:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-nightly-report:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-place-order:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-reserve-stock:setIamPolicy
POST /storage/storage/v1/b?project=P
POST /storage/storage/v1/b?project=P
PUT /pubsub/v1/projects/P/subscriptions/shop-dev-payments
PUT /pubsub/v1/projects/P/subscriptions/shop-dev-payments-dlq
PUT /pubsub/v1/projects/P/topics/shop-dev-order-events
PUT /pubsub/v1/projects/P/topics/shop-dev-payments
PUT /pubsub/v1/projects/P/topics/shop-dev-payments-dlq
PUT /storage/storage/v1/b/P-reports/iam
PUT /storage/storage/v1/b/shop-dev-images-P/iam
";

/// What removing the shop sends, besides the deployment bucket's objects (the existing `reports`
/// bucket loses nightly-report's member, nothing else).
const REMOVE: &str = "
DELETE /secretmanager/v1/projects/P/secrets/shop-dev-payment-key
POST /secretmanager/v1/projects/P/secrets/shop-dev-payment-key:setIamPolicy
DELETE /apigateway/v1/projects/P/locations/europe-west1/gateways/shop-dev
DELETE /apigateway/v1/projects/P/locations/global/apis/shop-dev
DELETE /apigateway/v1/projects/P/locations/global/apis/shop-dev/configs/CONFIG
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-audit-orders
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-charge-payment
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-get-order
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-make-thumbnail
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-nightly-report
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-place-order
DELETE /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-reserve-stock
DELETE /cloudscheduler/v1/projects/P/locations/europe-west1/jobs/shop-dev-nightly-report-schedule-0
DELETE /eventarc/v1/projects/P/locations/europe-west1/triggers/shop-dev-audit-orders-table-0
DELETE /eventarc/v1/projects/P/locations/europe-west1/triggers/shop-dev-make-thumbnail-bucket-0-created
DELETE /eventarc/v1/projects/P/locations/europe-west1/triggers/shop-dev-reserve-stock-topic-0
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-audit-orders@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-charge-payment@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-get-order@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-invoker@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-make-thumbnail@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-nightly-report@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-place-order@P.iam.gserviceaccount.com
DELETE /iam/v1/projects/-/serviceAccounts/shop-dev-reserve-stock@P.iam.gserviceaccount.com
DELETE /pubsub/v1/projects/P/subscriptions/shop-dev-payments
DELETE /pubsub/v1/projects/P/subscriptions/shop-dev-payments-dlq
DELETE /pubsub/v1/projects/P/topics/shop-dev-order-events
DELETE /pubsub/v1/projects/P/topics/shop-dev-payments
DELETE /pubsub/v1/projects/P/topics/shop-dev-payments-dlq
DELETE /storage/storage/v1/b/shop-dev-images-P
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /cloudresourcemanager/v1/projects/P:setIamPolicy
POST /pubsub/v1/projects/P/subscriptions/shop-dev-payments:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-order-events:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-payments-dlq:setIamPolicy
POST /pubsub/v1/projects/P/topics/shop-dev-payments:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-audit-orders:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-charge-payment:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-get-order:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-make-thumbnail:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-nightly-report:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-place-order:setIamPolicy
POST /run/v2/projects/P/locations/europe-west1/services/shop-dev-reserve-stock:setIamPolicy
PUT /storage/storage/v1/b/P-reports/iam
PUT /storage/storage/v1/b/shop-dev-images-P/iam
";

/// `CONFIG` in place of the API config's id (it ends with a hash of the routes).
fn config_id(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| match l.find("shop-dev-") {
            Some(_) if l.contains("apiConfigId=") => {
                format!("{}CONFIG", &l[..l.find("apiConfigId=").unwrap() + 12])
            }
            Some(_) if l.contains("/configs/") => {
                format!("{}CONFIG", &l[..l.find("/configs/").unwrap() + 9])
            }
            _ => l,
        })
        .collect()
}

async fn deploy_update_redeploy_and_remove_send_exactly_the_documented_requests(
    env: &'static CloudEnv,
) {
    let project = "nimbus-cp-life";
    let mut shop = Shop::new(project);
    set_payment_key(env, project).await;
    let gcp = connect(env, &shop.graph).await;
    let lowered = nimbus_gcp::lower(&shop.graph, &shop.build.manifest, gcp.settings())
        .unwrap()
        .len();

    // Create: every object once, nothing else.
    let mark = env.mark();
    let deployed = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(deployed.report.summary.create, lowered);
    assert_eq!(
        deployed.report.calls.creates as usize, lowered,
        "no retries"
    );
    let (control, objects) = writes_since(env, project, mark);
    assert_eq!(config_id(control), lines(CREATE));
    assert_eq!(objects["package"], 7, "one upload per function");
    assert_eq!(objects["lock"], 2, "the lock is taken and released");
    assert!(objects["state"] >= 2 * lowered, "{objects:?}");
    // What the functions run, as Cloud Functions has it.
    let resources = env.resources();
    let f = &resources["functions"]
        [format!("projects/{project}/locations/europe-west1/functions/shop-dev-place-order")];
    assert_eq!(f["state"], "ACTIVE");
    assert_eq!(f["buildConfig"]["runtime"], "python312");
    assert_eq!(f["buildConfig"]["entryPoint"], "nimbus_entry");
    assert_eq!(
        f["serviceConfig"]["serviceAccountEmail"],
        format!("shop-dev-place-order@{project}.iam.gserviceaccount.com")
    );
    assert_eq!(
        f["serviceConfig"]["environmentVariables"]["NIMBUS_RESOURCE_ORDERS_COLLECTION"],
        "shop-dev-orders"
    );
    let place = deployed
        .info
        .endpoints
        .iter()
        .find(|e| e.function == "place-order")
        .unwrap();
    assert_eq!(
        place.url,
        format!(
            "https://{}/orders",
            resources["gateways"][format!("projects/{project}/locations/europe-west1/gateways/shop-dev")]
                ["defaultHostname"]
                .as_str()
                .unwrap()
        )
    );

    // One handler changes: only its package is uploaded and only its function is patched, with
    // the update mask naming the source.
    let handler = shop.dir.path().join("inventory/reserve.py");
    let mut text = std::fs::read_to_string(&handler).unwrap();
    text.push_str("\n# changed\n");
    std::fs::write(&handler, text).unwrap();
    shop.rebuild();
    assert_eq!(shop.build.built, ["reserve-stock"]);
    let mark = env.mark();
    let report = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap()
        .report;
    assert_eq!((report.summary.update, report.summary.changes()), (1, 1));
    let (control, objects) = writes_since(env, project, mark);
    assert_eq!(
        control,
        [
            "PATCH /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-reserve-stock?updateMask=buildConfig.source"
        ]
    );
    assert_eq!(objects["package"], 1);

    // Unchanged: not one write anywhere (the double and the emulators behind it saw none).
    let mark = env.mark();
    let report = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap()
        .report;
    assert_eq!(report.summary.changes(), 0);
    assert_eq!(report.calls.writes(), 0);
    let (control, objects) = writes_since(env, project, mark);
    assert_eq!(
        (control.len(), objects.len()),
        (0, 0),
        "{control:?} {objects:?}"
    );
    assert!(
        env.requests_since(project, mark)
            .iter()
            .all(|r| r["http"] == "GET")
    );

    // Remove: every object deleted, every grant taken back; the packages and the state go.
    let mark = env.mark();
    let report = gcp.remove(&shop.graph, false).await.unwrap();
    assert_eq!(report.summary.delete, lowered);
    let (control, objects) = writes_since(env, project, mark);
    assert_eq!(config_id(control), lines(REMOVE));
    assert!(objects["package"] >= 7, "{objects:?}");
    env.assert_nothing_left(project);
    // The existing `reports` bucket is left as it was, its owner's object in it.
    assert!(env.shop_reports_intact(project));
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

async fn refresh_finds_no_drift_after_a_deploy_and_exactly_a_change_made_outside(
    env: &'static CloudEnv,
) {
    let project = "nimbus-cp-drift";
    let shop = Shop::new(project);
    set_payment_key(env, project).await;
    let gcp = connect(env, &shop.graph).await;
    gcp.deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));

    // Read back right after a deploy, every kind has the shape lowering wrote.
    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    let drifted: Vec<(&str, &Vec<nimbus_engine::Drift>)> = plan
        .resources
        .iter()
        .filter(|r| !r.drift.is_empty() || r.missing_in_cloud)
        .map(|r| (r.id.as_str(), &r.drift))
        .collect();
    assert!(drifted.is_empty(), "{drifted:#?}");
    assert_eq!(plan.summary.changes(), 0);

    // Someone changes a function's memory and a job's schedule outside Nimbus.
    let function =
        format!("projects/{project}/locations/europe-west1/functions/shop-dev-place-order");
    env.mutate(&function, json!({ "serviceConfig.availableMemory": "1Gi" }));
    let job = format!(
        "projects/{project}/locations/europe-west1/jobs/shop-dev-nightly-report-schedule-0"
    );
    env.mutate(&job, json!({ "schedule": "0 4 * * *" }));
    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    let drift: Vec<(String, String, Value, Value)> = plan
        .resources
        .iter()
        .flat_map(|r| {
            r.drift.iter().map(|d| {
                (
                    r.id.clone(),
                    d.path.clone(),
                    d.state.clone().unwrap_or(Value::Null),
                    d.live.clone().unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    assert_eq!(
        drift,
        [
            (
                "gcp.functions.function/place-order".to_string(),
                "serviceConfig.availableMemory".to_string(),
                json!("256Mi"),
                json!("1Gi")
            ),
            (
                "gcp.scheduler.job/nightly-report/schedule/0".to_string(),
                "schedule".to_string(),
                json!("0 3 * * *"),
                json!("0 4 * * *")
            ),
        ]
    );
    let changed: Vec<(&str, Action)> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::Same)
        .map(|r| (r.id.as_str(), r.action))
        .collect();
    assert_eq!(
        changed,
        [
            ("gcp.functions.function/place-order", Action::Update),
            (
                "gcp.scheduler.job/nightly-report/schedule/0",
                Action::Update
            )
        ]
    );

    // A deploy with refresh puts both back, each with its own update mask.
    let mark = env.mark();
    gcp.deploy(
        &shop.target(),
        DeployOptions {
            refresh: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (control, _) = writes_since(env, project, mark);
    assert_eq!(
        control,
        [
            "PATCH /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-place-order?updateMask=serviceConfig.availableMemory",
            "PATCH /cloudscheduler/v1/projects/P/locations/europe-west1/jobs/shop-dev-nightly-report-schedule-0?updateMask=schedule",
        ]
    );
    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    assert!(plan.resources.iter().all(|r| r.drift.is_empty()));
    assert_eq!(plan.summary.changes(), 0);
    gcp.remove(&shop.graph, false).await.unwrap();
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

async fn a_deploy_that_fails_half_way_converges_when_run_again_without_duplicates(
    env: &'static CloudEnv,
) {
    let project = "nimbus-cp-fault";
    let shop = Shop::new(project);
    set_payment_key(env, project).await;
    let gcp = connect(env, &shop.graph).await;
    // The thumbnail function's build fails (its operation ends in `error`, the function is left
    // FAILED, as Cloud Functions leaves it); the answers to one service account's create and to
    // one function's create are lost after Google acted (a 500 after the write: the account
    // exists, the function's operation goes on without anyone polling it).
    env.fault(
        "cloudfunctions.projects.locations.functions.create",
        "operation_error",
        &[project, "functionId=shop-dev-make-thumbnail"],
    );
    env.fault(
        "iam.projects.serviceAccounts.create",
        "http_500_after_write",
        &[project, "\"accountId\": \"shop-dev-nightly-report\""],
    );
    env.fault(
        "cloudfunctions.projects.locations.functions.create",
        "http_500_after_write",
        &[project, "functionId=shop-dev-get-order"],
    );
    let err = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("make-thumbnail") && text.contains("Build failed"),
        "{text}"
    );
    let engine = nimbus_gcp::Gcp::engine_error(&err).expect("an engine failure");
    let mut adopted = match engine {
        nimbus_engine::Error::Failed { report, .. } => report.adopted.clone(),
        other => panic!("{other:?}"),
    };
    let thumbnail =
        format!("projects/{project}/locations/europe-west1/functions/shop-dev-make-thumbnail");
    assert_eq!(env.resources()["functions"][&thumbnail]["state"], "FAILED");

    // Run again: it converges.
    let mark = env.mark();
    let deployed = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert!(deployed.report.summary.create > 0);
    // What was made although its answer was lost is found by its name, not made twice (in the
    // run that made it, or in the next).
    adopted.extend(deployed.report.adopted.iter().cloned());
    for id in [
        "gcp.iam.service_account/nightly-report",
        "gcp.functions.function/get-order",
    ] {
        assert!(
            adopted.iter().any(|a| a == id),
            "{id} not adopted: {adopted:?}"
        );
    }
    let (control, _) = writes_since(env, project, mark);
    // The failed function is redeployed in place (its name is taken), nothing is made twice.
    assert!(control.contains(&format!(
        "PATCH /cloudfunctions/v2/projects/P/locations/europe-west1/functions/shop-dev-make-thumbnail?updateMask={}",
        nimbus_gcp::api::urlencode("buildConfig,description,labels,serviceConfig")
    )));
    assert_eq!(env.resources()["functions"][&thumbnail]["state"], "ACTIVE");
    let all = env.requests_since(project, 0);
    let created = |method: &str| {
        all.iter()
            .filter(|r| r["method"] == method && r["status"] == 200)
            .count()
    };
    let accounts: Vec<&Value> = all
        .iter()
        .filter(|r| r["method"] == "iam.projects.serviceAccounts.create")
        .collect();
    assert_eq!(
        accounts.len(),
        8,
        "one create per account, the lost one included"
    );
    assert_eq!(
        accounts.iter().filter(|r| r["status"] == 500).count(),
        1,
        "the lost answer"
    );
    let mut statuses: Vec<u64> = all
        .iter()
        .filter(|r| r["method"] == "cloudfunctions.projects.locations.functions.create")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    statuses.sort();
    // One create per function (get-order's answer lost), and the name of the FAILED thumbnail
    // found taken (409) in the second run, which then redeploys it in place.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 409, 500]);
    assert_eq!(
        created("eventarc.projects.locations.triggers.create"),
        3,
        "one per trigger"
    );
    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    assert_eq!(plan.summary.changes(), 0, "{}", plan.render());
    assert!(plan.resources.iter().all(|r| r.drift.is_empty()));
    gcp.remove(&shop.graph, false).await.unwrap();
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

async fn the_double_refuses_what_the_published_reference_does_not_allow(env: &'static CloudEnv) {
    let project = "nimbus-cp-refuse";
    // nimbus's client (it installs the TLS crypto provider reqwest needs), used raw.
    let client = nimbus_gcp::api::Client::new(env.endpoints(), Credentials::Anonymous)
        .unwrap()
        .raw()
        .clone();
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = client.request(method, format!("{}{path}", env.double));
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let res = r.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let p = format!("/cloudfunctions/v2/projects/{project}/locations/europe-west1/functions");
    let cases = [
        // An unknown field.
        (
            reqwest::Method::POST,
            format!("{p}?functionId=f1"),
            Some(json!({ "serviceConfig": { "memoryMb": 256 } })),
            "Unknown name \"memoryMb\"",
        ),
        // A value outside its enum.
        (
            reqwest::Method::POST,
            format!("{p}?functionId=f1"),
            Some(json!({ "environment": "GEN_3" })),
            "TYPE_ENUM",
        ),
        // A query parameter the method does not take.
        (
            reqwest::Method::POST,
            format!("{p}?id=f1"),
            Some(json!({})),
            "unknown query parameter `id`",
        ),
        // The wrong HTTP method (Pub/Sub reads IAM policies with GET).
        (
            reqwest::Method::POST,
            format!("/pubsub/v1/projects/{project}/topics/t1:getIamPolicy"),
            Some(json!({})),
            "takes GET, not POST",
        ),
        // An update mask naming no field.
        (
            reqwest::Method::PATCH,
            format!("{p}/f1?updateMask=serviceConfig.memory"),
            Some(json!({})),
            "names no field",
        ),
        // A required field missing (Eventarc's destination).
        (
            reqwest::Method::POST,
            format!("/eventarc/v1/projects/{project}/locations/europe-west1/triggers?triggerId=t1"),
            Some(
                json!({ "name": format!("projects/{project}/locations/europe-west1/triggers/t1"), "eventFilters": [] }),
            ),
            "required field `destination`",
        ),
        // A duration in the wrong format.
        (
            reqwest::Method::POST,
            format!("/cloudscheduler/v1/projects/{project}/locations/europe-west1/jobs"),
            Some(json!({ "name": "x", "schedule": "* * * * *", "attemptDeadline": "60" })),
            "google.protobuf.Duration",
        ),
    ];
    for (method, path, body, expected) in cases {
        let (status, answer) = send(method, &path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{path}: {message}");
    }
    assert_eq!(env.violations(project).len(), 7);
}

/// A service account key whose token URI is the double's (a fresh RSA key from `openssl`).
fn service_account_key(env: &CloudEnv, project: &str) -> Credentials {
    let out = match std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
    {
        Ok(out) if out.status.success() => out,
        _ => panic!("`openssl genpkey` failed or openssl is missing: `apt-get install openssl`"),
    };
    let key = json!({
        "type": "service_account",
        "client_email": format!("deployer@{project}.iam.gserviceaccount.com"),
        "private_key": String::from_utf8(out.stdout).unwrap(),
        "token_uri": format!("{}/_double/oauth2/token", env.double),
    });
    Credentials::from_json(&key.to_string()).unwrap()
}

async fn logs_and_invoke_through_cloud_logging_and_the_functions_urls(env: &'static CloudEnv) {
    let project = "nimbus-cp-ops";
    let shop = Shop::new(project);
    set_payment_key(env, project).await; // as a user would, with their own credentials
    let since = env.mark();
    let credentials = service_account_key(env, project);
    let gcp = nimbus_gcp::Gcp::new(
        &shop.graph,
        Options::default(),
        env.endpoints(),
        credentials,
        None,
    )
    .await
    .unwrap()
    .with_timing(cloud::fast());

    // Not deployed yet: invoke says so.
    let err = gcp
        .invoke(&shop.graph, "place-order", &json!({ "type": "http" }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not deployed"), "{err}");
    let err = gcp
        .invoke(&shop.graph, "nope", &json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`get-order`"), "{err}");

    gcp.deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    // Every API call carried the service account's access token.
    let calls = env.requests_since(project, since);
    assert!(
        calls
            .iter()
            .filter(|r| r["api"] != "oauth2")
            .all(|r| r["authorization"]
                .as_str()
                .is_some_and(|a| a.starts_with("Bearer double-access-"))),
        "unauthenticated calls"
    );

    // Logs: Cloud Logging entries of the functions' services, in the window, oldest first.
    let at = |mins_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(mins_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    };
    let entry = |id: &str, service: &str, time: String, payload: Value| {
        let mut e = json!({
            "insertId": id,
            "logName": format!("projects/{project}/logs/run.googleapis.com%2Fstdout"),
            "resource": { "type": "cloud_run_revision", "labels": { "service_name": service } },
            "timestamp": time,
        });
        e.as_object_mut()
            .unwrap()
            .extend(payload.as_object().unwrap().clone());
        e
    };
    env.add_logs(json!([
        entry(
            "a1",
            "shop-dev-place-order",
            at(3),
            json!({ "textPayload": "placed order 1\n" })
        ),
        entry(
            "a2",
            "shop-dev-get-order",
            at(2),
            json!({ "jsonPayload": { "message": "read order 1", "severity": "INFO" } })
        ),
        entry(
            "a3",
            "shop-dev-place-order",
            at(1),
            json!({ "jsonPayload": { "order": 2 } })
        ),
        entry(
            "old",
            "shop-dev-place-order",
            at(90),
            json!({ "textPayload": "too old" })
        ),
        entry(
            "req",
            "shop-dev-place-order",
            at(1),
            json!({ "httpRequest": { "status": 201 } })
        ),
        entry(
            "other",
            "another-service",
            at(1),
            json!({ "textPayload": "not ours" })
        ),
    ]));
    let collect = |query: nimbus_cloud::LogQuery| {
        let gcp = &gcp;
        let graph = &shop.graph;
        async move {
            let lines = std::sync::Mutex::new(Vec::new());
            let sink = |l: nimbus_cloud::LogLine| {
                lines.lock().unwrap().push((l.function, l.message));
                true
            };
            gcp.logs(graph, &query, &sink).await.unwrap();
            lines.into_inner().unwrap()
        }
    };
    let all = collect(nimbus_cloud::LogQuery::default()).await;
    let pair = |f: &str, m: &str| (f.to_string(), m.to_string());
    assert_eq!(
        all,
        [
            pair("place-order", "placed order 1"),
            pair("get-order", "read order 1"),
            pair("place-order", "{\"order\":2}"),
        ]
    );
    let one = collect(nimbus_cloud::LogQuery {
        function: Some("get-order".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(one, [pair("get-order", "read order 1")]);
    let since = collect(nimbus_cloud::LogQuery {
        since: Some(std::time::Duration::from_secs(150)),
        ..Default::default()
    })
    .await;
    assert_eq!(since.len(), 2, "{since:?}");
    // --follow: a line written while following arrives; the sink stops it.
    let lines = std::sync::Mutex::new(Vec::new());
    let sink = |l: nimbus_cloud::LogLine| {
        let mut lines = lines.lock().unwrap();
        lines.push(l.message);
        if lines.len() == 3 {
            env.add_logs(json!([entry(
                "late",
                "shop-dev-place-order",
                at(0),
                json!({ "textPayload": "a late line" })
            )]));
        }
        lines.len() < 4
    };
    let follow = nimbus_cloud::LogQuery {
        follow: true,
        ..Default::default()
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        gcp.logs(&shop.graph, &follow, &sink),
    )
    .await
    .expect("follow ends when the sink says so")
    .unwrap();
    assert_eq!(lines.into_inner().unwrap()[3], "a late line");
    let logging: Vec<Value> = env
        .requests_since(project, 0)
        .into_iter()
        .filter(|r| r["method"] == "logging.entries.list")
        .collect();
    assert!(logging.len() >= 5 && logging.iter().all(|r| r["status"] == 200));

    // Invoke: each event as Google delivers it, to the function's URL, with an ID token for it.
    let invocations = |service: &str| -> Vec<Value> {
        env.invocations()
            .into_iter()
            .filter(|i| i["service"] == service)
            .collect()
    };
    let http = json!({ "type": "http", "method": "POST", "path": "/orders", "query": { "dry": "1" },
                       "headers": { "content-type": "application/json" }, "body": "{\"amount\":1}" });
    let out = gcp.invoke(&shop.graph, "place-order", &http).await.unwrap();
    assert!(!out.failed);
    assert_eq!(out.result["status"], 200);
    let echo: Value = serde_json::from_str(out.result["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["received"]["path"], "/orders");
    let got = invocations("shop-dev-place-order").pop().unwrap();
    assert_eq!(
        (got["method"].as_str(), got["query"].as_str()),
        (Some("POST"), Some("dry=1"))
    );
    assert_eq!(got["body"], "{\"amount\":1}");
    let token = got["headers"]["authorization"].as_str().unwrap();
    let claims = token
        .trim_start_matches("Bearer double.")
        .split('.')
        .next()
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["aud"],
        format!("{}/_fn/shop-dev-place-order", env.double),
        "the ID token's audience is the function's URL"
    );

    let topic = json!({ "type": "topic", "source": "order-events", "messages": [{ "id": "m-1", "body": "{\"type\":\"order.placed\"}", "attributes": {} }] });
    gcp.invoke(&shop.graph, "reserve-stock", &topic)
        .await
        .unwrap();
    let got = invocations("shop-dev-reserve-stock").pop().unwrap();
    assert_eq!(
        got["headers"]["ce-type"],
        "google.cloud.pubsub.topic.v1.messagePublished"
    );
    assert_eq!(
        got["headers"]["ce-source"],
        format!("//pubsub.googleapis.com/projects/{project}/topics/shop-dev-order-events")
    );
    let data: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(data["message"]["messageId"], "m-1");

    let queue = json!({ "type": "queue", "source": "payments", "messages": [{ "id": "p-1", "body": "{}", "attributes": {}, "receive_count": 2 }] });
    gcp.invoke(&shop.graph, "charge-payment", &queue)
        .await
        .unwrap();
    let got = invocations("shop-dev-charge-payment").pop().unwrap();
    let push: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        push["subscription"],
        format!("projects/{project}/subscriptions/shop-dev-payments")
    );
    assert_eq!(push["deliveryAttempt"], 2);

    let table = json!({ "type": "table", "table": "orders", "action": "insert", "key": { "id": "o-1" }, "old": null, "new": { "id": "o-1", "total": 3 } });
    gcp.invoke(&shop.graph, "audit-orders", &table)
        .await
        .unwrap();
    let got = invocations("shop-dev-audit-orders").pop().unwrap();
    assert_eq!(
        got["headers"]["ce-subject"],
        "documents/shop-dev-orders/o-1"
    );

    let schedule = json!({ "type": "schedule", "name": "manual", "time": "2026-01-01T03:00:00Z" });
    gcp.invoke(&shop.graph, "nightly-report", &schedule)
        .await
        .unwrap();
    let got = invocations("shop-dev-nightly-report").pop().unwrap();
    assert_eq!(
        got["headers"]["x-cloudscheduler-jobname"],
        format!(
            "projects/{project}/locations/europe-west1/jobs/shop-dev-nightly-report-schedule-0"
        )
    );

    gcp.remove(&shop.graph, false).await.unwrap();
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

/// The shop's secret `payment-key`, read by `charge-payment` as `PAYMENT_API_KEY`: deploy creates
/// the secret (no version: values come from `nimbus secret set`), the accessor binding for
/// charge-payment's own account alone, and the function's native `secretEnvironmentVariables`
/// (which the double accepts only when the secret exists and that account may access it);
/// refresh reads it all back without drift, and remove deletes the secret.
async fn a_secret_is_a_secret_manager_secret_its_function_alone_may_read_natively(
    env: &'static CloudEnv,
) {
    let project = "nimbus-cp-secret";
    let shop = Shop::new(project);
    assert_eq!(
        shop.graph.functions["charge-payment"].secrets["PAYMENT_API_KEY"],
        "payment-key"
    );
    // `nimbus secret set -p gcp` before the first deploy: creates the secret, adds a version.
    let client = nimbus_gcp::api::Client::new(env.endpoints(), Credentials::Anonymous).unwrap();
    let values = nimbus_gcp::secrets::SecretValues::new(&client, project, "shop", "dev");
    assert_eq!(values.state("payment-key").await.unwrap(), None);

    // Without a value, plan and deploy stop before changing anything and say how to set it.
    let gcp = connect(env, &shop.graph).await;
    let mark = env.mark();
    for e in [
        gcp.plan(&shop.target(), false)
            .await
            .map(|_| ())
            .unwrap_err(),
        gcp.deploy(&shop.target(), DeployOptions::default())
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(
            matches!(&e, nimbus_gcp::GcpError::MissingSecrets { missing, .. } if missing == &["payment-key"]),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("printf %s \"$VALUE\" | nimbus secret set payment-key -p gcp -s dev"),
            "{e}"
        );
    }
    let writes: Vec<Value> = env
        .requests_since(project, mark)
        .into_iter()
        .filter(|r| r["write"] == true)
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    let value = "sk_test_7f3a9c-distinctive";
    values.set("payment-key", value.as_bytes()).await.unwrap();
    let mark = env.mark();
    let too_big = vec![b'x'; nimbus_gcp::secrets::MAX_VALUE_BYTES + 1];
    let e = values.set("payment-key", &too_big).await.unwrap_err();
    assert!(e.message.contains("65536"), "{e}");
    assert!(
        env.requests_since(project, mark).is_empty(),
        "a call was made for a refused value"
    );
    let state = values.state("payment-key").await.unwrap().unwrap();
    assert!(state.set_at.is_some(), "{state:?}");

    gcp.deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));

    let secret = format!("projects/{project}/secrets/shop-dev-payment-key");
    // The platform's view: version latest is the value set; the deployment only names it.
    let access = client
        .json(
            reqwest::Method::GET,
            &client.url(
                "secretmanager",
                &format!("/v1/{secret}/versions/latest:access"),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        access["payload"]["data"],
        json!(base64::engine::general_purpose::STANDARD.encode(value))
    );
    assert!(!env.resources().to_string().contains(value));
    let resources = env.resources();
    assert_eq!(
        resources["secrets"][&secret]["replication"],
        json!({ "automatic": {} })
    );
    let account =
        format!("serviceAccount:shop-dev-charge-payment@{project}.iam.gserviceaccount.com");
    assert_eq!(
        resources["policies"][format!("secret:{secret}")]["bindings"],
        json!([{ "role": "roles/secretmanager.secretAccessor", "members": [account] }])
    );
    let functions = resources["functions"].as_object().unwrap();
    for (name, f) in functions.iter().filter(|(n, _)| n.contains(project)) {
        let vars = &f["serviceConfig"]["secretEnvironmentVariables"];
        if name.ends_with("/shop-dev-charge-payment") {
            assert_eq!(
                vars,
                &json!([{ "key": "PAYMENT_API_KEY", "projectId": project,
                          "secret": "shop-dev-payment-key", "version": "latest" }])
            );
            assert!(
                f["serviceConfig"]["environmentVariables"]
                    .get("PAYMENT_API_KEY")
                    .is_none()
            );
        } else {
            assert!(vars.is_null(), "{name} reads a secret: {vars}");
        }
    }

    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    let drifted: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| !r.drift.is_empty() || r.missing_in_cloud)
        .map(|r| r.id.as_str())
        .collect();
    assert!(drifted.is_empty(), "{drifted:?}");

    gcp.remove(&shop.graph, false).await.unwrap();
    assert!(env.resources()["secrets"].get(&secret).is_none());
    assert_eq!(values.state("payment-key").await.unwrap(), None);
    assert!(!values.remove("payment-key").await.unwrap());
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

/// A function's `gcp:` block (VPC connector and egress, minimum instances) goes to Cloud
/// Functions as the published reference spells it (the double refuses anything else), is read
/// back without drift, and a change updates the function in place.
async fn a_functions_gcp_settings_reach_cloud_functions_as_the_reference_allows(
    env: &'static CloudEnv,
) {
    let project = "nimbus-cp-settings";
    let mut shop = Shop::new(project);
    let connector = format!("projects/{project}/locations/europe-west1/connectors/shop");
    let manifest = shop.dir.path().join("nimbus.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let block = |egress: &str, min: u32| {
        format!(
            "  place-order:\n    gcp: {{ vpc_connector: {connector}, egress: {egress}, min_instances: {min} }}\n"
        )
    };
    std::fs::write(
        &manifest,
        text.replacen("  place-order:\n", &block("all", 2), 1),
    )
    .unwrap();
    shop.rebuild();
    set_payment_key(env, project).await;
    let gcp = connect(env, &shop.graph).await;
    gcp.deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    let name = format!("projects/{project}/locations/europe-west1/functions/shop-dev-place-order");
    let service = env.resources()["functions"][&name]["serviceConfig"].clone();
    assert_eq!(service["vpcConnector"], connector.as_str(), "{service}");
    assert_eq!(service["vpcConnectorEgressSettings"], "ALL_TRAFFIC");
    assert_eq!(service["minInstanceCount"], 2);
    // Another function, without a block, has none of them.
    let other = format!("projects/{project}/locations/europe-west1/functions/shop-dev-get-order");
    let plain = env.resources()["functions"][&other]["serviceConfig"].clone();
    assert!(plain.get("vpcConnector").is_none(), "{plain}");
    assert!(plain.get("minInstanceCount").is_none(), "{plain}");

    // Read back: no drift.
    let plan = gcp.plan(&shop.target(), true).await.unwrap();
    let drifted: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| !r.drift.is_empty() || r.missing_in_cloud)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(drifted, Vec::<&str>::new());

    // Private ranges only, no warm instance: the function is patched, nothing else.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen(&block("all", 2), &block("private-ranges-only", 0), 1),
    )
    .unwrap();
    shop.rebuild();
    let gcp = connect(env, &shop.graph).await;
    let deployed = gcp
        .deploy(&shop.target(), DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    let summary = &deployed.report.summary;
    assert_eq!((summary.update, summary.changes()), (1, 1));
    let service = env.resources()["functions"][&name]["serviceConfig"].clone();
    assert_eq!(
        service["vpcConnectorEgressSettings"], "PRIVATE_RANGES_ONLY",
        "{service}"
    );
    assert!(
        service.get("minInstanceCount").is_none_or(|m| m == 0),
        "{service}"
    );
    assert_eq!(env.violations(project), Vec::<Value>::new());
}
