//! The GCP driver against real emulators, reached directly (not through the control-plane double):
//! fake-gcs-server for the deployment bucket, packages, state and lock; Google's Pub/Sub emulator
//! for topics and subscriptions, checked with the emulator's own REST API. They are started by
//! `tests/support/gcp_env.py` (see `common::cloud`) and stopped when the test process ends. One
//! test function runs the steps in order. A missing emulator fails the test when `CI` is set, and
//! skips it with a message otherwise.

mod common;

use std::process::Command;
use std::time::Duration;

use nimbus_cloud::{Cloud, Options, Target};
use nimbus_engine::{Backend, Deployment, LockInfo, LockOptions, ObjectStoreBackend, TryLock};
use nimbus_gcp::api::{Credentials, Endpoints};
use nimbus_test_support as support;
use serde_json::Value;

fn curl_json(url: &str) -> Value {
    let out = Command::new("curl").args(["-s", url]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

const APP: &str = "version: 1\nservice: shop\nfunctions:\n  f: { handler: f.py:handler }\nresources:\n  order-events: { type: topic }\n  payments: { type: queue, visibility_timeout: 45s, dead_letter: { max_receives: 7 } }\nproviders:\n  gcp: { project: test-project, region: europe-west1 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_lock_packages_and_pubsub_against_the_emulators() {
    let env = common::cloud::env();
    let (gcs_url, ps_url) = (env.storage.clone(), env.pubsub.clone());

    let mut endpoints = Endpoints::from_env();
    endpoints.set("storage", &gcs_url);
    endpoints.set("pubsub", &ps_url);
    let graph = support::graph_str("gcp", APP);
    let gcp = |timeout: Duration| {
        let endpoints = endpoints.clone();
        let graph = graph.clone();
        async move {
            nimbus_gcp::Gcp::new(
                &graph,
                Options {
                    lock_timeout: timeout,
                    ..Options::default()
                },
                endpoints,
                Credentials::Anonymous,
                Some("123".into()),
            )
            .await
            .unwrap()
        }
    };

    // 1. Pub/Sub: the engine creates the topics and the subscription with its dead-letter policy,
    //    as the emulator's own REST API shows. (The emulator has no IAM: the dead-letter grants of
    //    the Pub/Sub agent are left out of this apply, and checked by the lowering tests.)
    let build = support::build_of(&graph);
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        graph: &graph,
        build: &build,
        build_dir: dir.path(),
    };
    let a = gcp(Duration::ZERO).await;
    let settings = a.settings().clone();
    let desired: Vec<_> = nimbus_gcp::lower(&graph, &build, &settings)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind.starts_with("gcp.pubsub.") && !r.kind.ends_with("iam_member"))
        .collect();
    let store = nimbus_gcp::storage::GcsStore::new(
        nimbus_gcp::api::Client::new(endpoints.clone(), Credentials::Anonymous).unwrap(),
        &settings.deploy_bucket,
    );
    assert!(
        store
            .ensure_bucket("test-project", "europe-west1")
            .await
            .unwrap()
    );
    let deployment = Deployment::new("shop", "dev", "gcp").unwrap();
    let engine = |store: nimbus_gcp::storage::GcsStore| {
        nimbus_engine::Engine::new(
            deployment.clone(),
            ObjectStoreBackend::new(store.clone(), "state", &deployment),
            nimbus_gcp::driver::GcpDriver::new(
                nimbus_gcp::api::Client::new(endpoints.clone(), Credentials::Anonymous).unwrap(),
                nimbus_gcp::driver::Scope::new(&settings, "shop", "dev"),
                nimbus_gcp::driver::Timing::default(),
                None,
            ),
        )
    };
    let report = engine(store.clone()).apply(&desired).await.unwrap();
    assert_eq!(report.summary.create, 5, "{report:?}");
    let topics = curl_json(&format!("{ps_url}/v1/projects/test-project/topics"));
    let mut names: Vec<&str> = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "projects/test-project/topics/shop-dev-order-events",
            "projects/test-project/topics/shop-dev-payments",
            "projects/test-project/topics/shop-dev-payments-dlq",
        ]
    );
    let sub = curl_json(&format!(
        "{ps_url}/v1/projects/test-project/subscriptions/shop-dev-payments"
    ));
    assert_eq!(
        sub["topic"],
        "projects/test-project/topics/shop-dev-payments"
    );
    assert_eq!(sub["ackDeadlineSeconds"], 45);
    assert_eq!(
        sub["deadLetterPolicy"]["deadLetterTopic"],
        "projects/test-project/topics/shop-dev-payments-dlq"
    );
    assert_eq!(sub["deadLetterPolicy"]["maxDeliveryAttempts"], 7);
    let dlq = curl_json(&format!(
        "{ps_url}/v1/projects/test-project/subscriptions/shop-dev-payments-dlq"
    ));
    assert_eq!(dlq["messageRetentionDuration"], "604800s");

    // An unchanged redeploy writes nothing; a changed ack deadline is one PATCH.
    let again = engine(store.clone()).apply(&desired).await.unwrap();
    assert_eq!(again.calls.writes(), 0, "{:?}", again.calls);
    let mut changed = desired.clone();
    let s = changed
        .iter_mut()
        .find(|r| r.id == "gcp.pubsub.subscription/payments")
        .unwrap();
    s.properties["ackDeadlineSeconds"] = 90.into();
    let report = engine(store.clone()).apply(&changed).await.unwrap();
    assert_eq!((report.summary.update, report.calls.writes()), (1, 1));
    let sub = curl_json(&format!(
        "{ps_url}/v1/projects/test-project/subscriptions/shop-dev-payments"
    ));
    assert_eq!(sub["ackDeadlineSeconds"], 90);

    // 2. The state is an object in the deployment bucket.
    let keys = store.list("state/").await.unwrap();
    assert_eq!(keys, ["state/shop/dev/gcp/state.json"]);

    // 3. Lock: while another deploy holds it, a deploy is refused and names the holder.
    let backend = ObjectStoreBackend::new(store.clone(), "state", &deployment);
    let held = LockInfo::new(
        "shop/dev",
        "apply",
        &LockOptions {
            holder: Some("ci@runner-7".into()),
            ..Default::default()
        },
    );
    assert_eq!(backend.try_lock(&held).await.unwrap(), TryLock::Acquired);
    assert!(
        matches!(backend.try_lock(&held).await.unwrap(), TryLock::Held(_)),
        "a second create-if-absent fails"
    );
    let artifact = &build.functions["f"];
    std::fs::write(
        dir.path().join(&artifact.file),
        vec![7u8; artifact.size as usize],
    )
    .unwrap();
    let err = a
        .deploy(&target, nimbus_cloud::DeployOptions::default())
        .await
        .unwrap_err();
    let text = format!("{err}");
    assert!(
        text.contains("ci@runner-7") && text.contains(&held.id),
        "{text}"
    );
    a.unlock(&graph, &held.id).await.unwrap();

    // 4. Packages: the refused deploy uploaded the package (content-addressed uploads come before
    //    the lock and are harmless); the same bytes are never sent again.
    let packages = store.list("packages/").await.unwrap();
    assert_eq!(packages.len(), 1, "{packages:?}");
    store.remove(&packages[0]).await.unwrap();
    let up = a.upload(&target).await.unwrap();
    assert_eq!((up.len(), up[0].skipped), (1, false));
    assert!(
        up[0]
            .location
            .starts_with("gs://nimbus-deploy-test-project/packages/shop/dev/f/"),
        "{}",
        up[0].location
    );
    let up = a.upload(&target).await.unwrap();
    assert!(up[0].skipped, "the same bytes are not sent twice");

    // 5. Two applies at once over the same state: one takes the lock, the other is refused and
    //    names the holder; the state stays consistent.
    let (ea, eb) = (engine(store.clone()), engine(store.clone()));
    let (ra, rb) = tokio::join!(ea.apply(&changed), eb.apply(&changed));
    let refused: Vec<String> = [&ra, &rb]
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert!(ra.is_ok() || rb.is_ok(), "{ra:?} {rb:?}");
    for text in &refused {
        assert!(
            text.contains("lock id"),
            "refused naming the holder: {text}"
        );
    }

    // 6. Destroy deletes the Pub/Sub objects, and the state says nothing is left.
    let report = engine(store.clone()).destroy(false).await.unwrap();
    assert_eq!(report.summary.delete, 5);
    let topics = curl_json(&format!("{ps_url}/v1/projects/test-project/topics"));
    assert!(
        topics["topics"].as_array().is_none_or(|t| t.is_empty()),
        "{topics}"
    );
}
