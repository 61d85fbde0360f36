//! Lowering the shop (and small apps) to Google Cloud objects: names, least-privilege grants,
//! triggers, and a graph the engine can order.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use nimbus_engine::NativeResource;
use nimbus_gcp::kinds;
use nimbus_test_support as support;
use serde_json::{Value, json};

fn shop() -> Vec<NativeResource> {
    let g = support::shop("gcp");
    nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap()
}

fn get<'a>(rs: &'a [NativeResource], id: &str) -> &'a NativeResource {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

fn reference(id: &str, output: &str) -> Value {
    json!({ "$ref": id, "output": output })
}

#[test]
fn every_dependency_exists_and_there_is_no_cycle() {
    let rs = shop();
    let ids: BTreeSet<&str> = rs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rs.len(), "logical ids are unique");
    let mut deps: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &rs {
        for d in r.dependencies() {
            assert!(ids.contains(d.as_str()), "{} depends on unknown {d}", r.id);
        }
        for (id, output) in nimbus_engine::resource::references(&r.properties) {
            let kind = &rs.iter().find(|x| x.id == id).unwrap().kind;
            assert!(
                kinds::outputs(kind).unwrap().contains(&output.as_str()),
                "{} refers to {id}.{output}, which {kind} does not report",
                r.id
            );
        }
        deps.insert(&r.id, r.dependencies());
    }
    // Kahn: everything gets ordered.
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < rs.len() {
        let ready: Vec<String> = deps
            .iter()
            .filter(|(id, d)| !done.contains(**id) && d.iter().all(|x| done.contains(x)))
            .map(|(id, _)| id.to_string())
            .collect();
        assert!(
            !ready.is_empty(),
            "dependency cycle among {:?}",
            deps.keys()
                .filter(|k| !done.contains(**k))
                .collect::<Vec<_>>()
        );
        done.extend(ready);
    }
}

#[test]
fn lowering_is_deterministic() {
    assert_eq!(shop(), shop());
}

#[test]
fn each_function_runs_as_its_own_account_with_only_what_it_uses() {
    let rs = shop();
    let g = support::shop("gcp");
    let accounts: Vec<&NativeResource> = rs
        .iter()
        .filter(|r| r.kind == kinds::SERVICE_ACCOUNT)
        .collect();
    assert_eq!(
        accounts.len(),
        g.functions.len() + 1,
        "one per function and the invoker"
    );
    let allowed = [
        "roles/datastore.viewer",
        "roles/datastore.user",
        "roles/pubsub.publisher",
        "roles/pubsub.subscriber",
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
        "roles/run.invoker",
        "roles/eventarc.eventReceiver",
        "roles/secretmanager.secretAccessor",
    ];
    for r in rs.iter().filter(|r| r.kind.ends_with("iam_member")) {
        let role = r.properties["role"].as_str().unwrap();
        assert!(allowed.contains(&role), "{} grants {role}", r.id);
    }
    // place-order: write on orders (Firestore, limited to the database), publish on order-events,
    // send on payments, and nothing else.
    let mine: BTreeMap<String, String> = rs
        .iter()
        .filter(|r| {
            r.properties.get("member")
                == Some(&reference("gcp.iam.service_account/place-order", "member"))
        })
        .map(|r| {
            (
                r.id.clone(),
                r.properties["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        BTreeMap::from([
            (
                "gcp.project.iam_member/place-order/firestore".to_string(),
                "roles/datastore.user".to_string()
            ),
            (
                "gcp.pubsub.topic_iam_member/place-order/uses/order-events".to_string(),
                "roles/pubsub.publisher".to_string()
            ),
            (
                "gcp.pubsub.topic_iam_member/place-order/uses/payments".to_string(),
                "roles/pubsub.publisher".to_string()
            ),
        ])
    );
    let firestore = get(&rs, "gcp.project.iam_member/place-order/firestore");
    assert_eq!(
        firestore.properties["condition"]["expression"],
        "resource.name == \"projects/my-project/databases/(default)\""
    );
    // get-order only reads.
    assert_eq!(
        get(&rs, "gcp.project.iam_member/get-order/firestore").properties["role"],
        "roles/datastore.viewer"
    );
    // make-thumbnail: objects of its own bucket only.
    let b = get(
        &rs,
        "gcp.storage.bucket_iam_member/make-thumbnail/uses/images",
    );
    assert_eq!(
        b.properties["bucket"],
        reference("gcp.storage.bucket/images", "name")
    );
    assert_eq!(b.properties["role"], "roles/storage.objectUser");
    // The invoker may call exactly the functions that have triggers.
    let invoked: BTreeSet<&str> = rs
        .iter()
        .filter(|r| r.kind == kinds::SERVICE_IAM_MEMBER)
        .map(|r| r.id.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(invoked, g.functions.keys().map(String::as_str).collect());
}

#[test]
fn a_long_description_is_cut_at_a_character_boundary() {
    let mut g = support::shop("gcp");
    let f = g.functions.get_mut("place-order").unwrap();
    // 999 bytes, then a two-byte character across the 1000-byte cut.
    f.description = Some(format!("{}é and more", "x".repeat(999)));
    let rs = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let description = get(&rs, "gcp.functions.function/place-order").properties["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(description, "x".repeat(999));
}

#[test]
fn functions_are_gen2_with_their_package_limits_and_names() {
    let rs = shop();
    let g = support::shop("gcp");
    let build = support::build_of(&g);
    let f = get(&rs, "gcp.functions.function/place-order");
    assert_eq!(f.physical_name.as_deref(), Some("shop-dev-place-order"));
    let p = &f.properties;
    assert_eq!(
        p["name"],
        "projects/my-project/locations/europe-west1/functions/shop-dev-place-order"
    );
    assert_eq!(p["environment"], "GEN_2");
    assert_eq!(p["buildConfig"]["runtime"], "python312");
    assert_eq!(p["buildConfig"]["entryPoint"], "nimbus_entry");
    let sha = &build.functions["place-order"].sha256;
    assert_eq!(
        p["buildConfig"]["source"]["storageSource"],
        json!({ "bucket": "nimbus-deploy-my-project", "object": format!("packages/shop/dev/place-order/{sha}.zip") })
    );
    let s = &p["serviceConfig"];
    assert_eq!(s["availableMemory"], "256Mi");
    assert_eq!(s["timeoutSeconds"], 10);
    assert_eq!(s["maxInstanceCount"], 10);
    assert_eq!(s["ingressSettings"], "ALLOW_ALL");
    assert_eq!(
        s["serviceAccountEmail"],
        reference("gcp.iam.service_account/place-order", "email")
    );
    let env = &s["environmentVariables"];
    assert_eq!(env["LOG_LEVEL"], "debug");
    assert_eq!(env["NIMBUS_GCP_PROJECT"], "my-project");
    assert_eq!(
        env["NIMBUS_RESOURCE_ORDERS_COLLECTION"],
        reference("gcp.firestore.collection/orders", "collection")
    );
    assert_eq!(
        env["NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC"],
        reference("gcp.pubsub.topic/order-events", "name")
    );
    assert_eq!(
        env["NIMBUS_RESOURCE_PAYMENTS_SUBSCRIPTION"],
        "projects/my-project/subscriptions/shop-dev-payments"
    );
    // Event-only functions take no traffic from outside Google.
    let charge = get(&rs, "gcp.functions.function/charge-payment");
    assert_eq!(charge.properties["buildConfig"]["runtime"], "nodejs22");
    assert_eq!(
        charge.properties["serviceConfig"]["ingressSettings"],
        "ALLOW_INTERNAL_ONLY"
    );
    let nightly = get(&rs, "gcp.functions.function/nightly-report");
    assert_eq!(
        nightly.properties["serviceConfig"]["environmentVariables"]["NIMBUS_SCHEDULE_NIGHTLY_REPORT_SCHEDULE_0_JOB"],
        "projects/my-project/locations/europe-west1/jobs/shop-dev-nightly-report-schedule-0"
    );
}

#[test]
fn queues_push_to_their_consumer_and_dead_letter_after_max_receives() {
    let rs = shop();
    let sub = get(&rs, "gcp.pubsub.subscription/payments");
    let p = &sub.properties;
    assert_eq!(
        p["name"],
        "projects/my-project/subscriptions/shop-dev-payments"
    );
    assert_eq!(p["topic"], reference("gcp.pubsub.topic/payments", "name"));
    assert_eq!(p["ackDeadlineSeconds"], 60);
    assert_eq!(
        p["deadLetterPolicy"],
        json!({ "deadLetterTopic": reference("gcp.pubsub.topic/payments/dlq", "name"), "maxDeliveryAttempts": 5 })
    );
    assert_eq!(
        p["pushConfig"]["pushEndpoint"],
        reference("gcp.functions.function/charge-payment", "uri")
    );
    assert_eq!(
        p["pushConfig"]["oidcToken"]["serviceAccountEmail"],
        reference("gcp.iam.service_account/invoker", "email")
    );
    // Dead letters are kept, and the Pub/Sub agent may move them.
    assert_eq!(
        get(&rs, "gcp.pubsub.subscription/payments/dlq").properties["messageRetentionDuration"],
        "604800s"
    );
    let agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com";
    assert_eq!(
        get(&rs, "gcp.pubsub.topic_iam_member/payments/dlq/agent").properties["member"],
        agent
    );
    assert_eq!(
        get(&rs, "gcp.pubsub.subscription_iam_member/payments/dlq-agent").properties["role"],
        "roles/pubsub.subscriber"
    );
}

#[test]
fn event_triggers_are_eventarc_triggers_and_schedules_are_jobs() {
    let rs = shop();
    let topic = get(&rs, "gcp.eventarc.trigger/reserve-stock/topic/0");
    assert_eq!(
        topic.properties["transport"]["pubsub"]["topic"],
        reference("gcp.pubsub.topic/order-events", "name")
    );
    assert_eq!(
        topic.properties["destination"]["cloudRun"]["service"],
        reference("gcp.functions.function/reserve-stock", "service")
    );
    let bucket = get(&rs, "gcp.eventarc.trigger/make-thumbnail/bucket/0/created");
    assert_eq!(
        bucket.properties["eventFilters"][0]["value"],
        "google.cloud.storage.object.v1.finalized"
    );
    assert!(
        !rs.iter().any(|r| r.id.ends_with("bucket/0/deleted")),
        "only the events asked for"
    );
    let table = get(&rs, "gcp.eventarc.trigger/audit-orders/table/0");
    assert_eq!(
        table.properties["eventFilters"][0]["value"],
        "google.cloud.firestore.document.v1.written"
    );
    assert_eq!(
        table.properties["eventFilters"][2]["value"],
        "shop-dev-orders/{doc}"
    );
    assert_eq!(table.properties["eventDataContentType"], "application/json");
    let job = get(&rs, "gcp.scheduler.job/nightly-report/schedule/0");
    assert_eq!(job.properties["schedule"], "0 3 * * *");
    assert_eq!(job.properties["timeZone"], "UTC");
    assert_eq!(job.properties["attemptDeadline"], "60s");
    assert_eq!(
        job.properties["httpTarget"]["uri"],
        reference("gcp.functions.function/nightly-report", "uri")
    );
    // Buckets: uniform access, public access prevented; kept with their data.
    let images = get(&rs, "gcp.storage.bucket/images");
    assert_eq!(
        images.physical_name.as_deref(),
        Some("shop-dev-images-my-project")
    );
    assert_eq!(
        images.properties["iamConfiguration"]["publicAccessPrevention"],
        "enforced"
    );
    assert_eq!(
        images.properties["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"],
        true
    );
    assert!(images.retain_data && get(&rs, "gcp.firestore.collection/orders").retain_data);
}

#[test]
fn http_routes_share_one_gateway_with_path_parameters() {
    let rs = shop();
    let config = rs.iter().find(|r| r.kind == kinds::API_CONFIG).unwrap();
    let doc = &config.properties["openapiDocuments"][0]["document"]["contents"];
    assert_eq!(doc["swagger"], "2.0");
    let post = &doc["paths"]["/orders"]["post"];
    assert_eq!(
        post["x-google-backend"]["address"],
        reference("gcp.functions.function/place-order", "uri")
    );
    assert_eq!(
        post["x-google-backend"]["path_translation"],
        "APPEND_PATH_TO_ADDRESS"
    );
    let get_order = &doc["paths"]["/orders/{id}"]["get"];
    assert_eq!(
        get_order["parameters"],
        json!([{ "name": "id", "in": "path", "required": true, "type": "string" }])
    );
    assert_eq!(
        config.properties["gatewayServiceAccount"],
        reference("gcp.iam.service_account/invoker", "email")
    );
    let gw = get(&rs, "gcp.apigateway.gateway/http");
    assert_eq!(gw.properties["apiConfig"], reference(&config.id, "name"));
    // A change of routes is a new config (configs are immutable).
    let g = support::graph_str(
        "gcp",
        "version: 1\nservice: shop\nfunctions:\n  a:\n    handler: a.py:handler\n    triggers: [ { http: { method: GET, path: \"/x/{rest+}\" } } ]\nproviders:\n  gcp: { project: p-1, region: us-central1 }\n",
    );
    let other = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let c2 = other.iter().find(|r| r.kind == kinds::API_CONFIG).unwrap();
    assert_ne!(c2.id, config.id);
    assert!(
        c2.properties["openapiDocuments"][0]["document"]["contents"]["paths"]["/x/{rest=**}"]
            .is_object()
    );
}

#[test]
fn missing_settings_are_clear_errors() {
    let g = support::graph_str(
        "gcp",
        "version: 1\nservice: s\nfunctions:\n  a: { handler: a.py:handler }\n",
    );
    let e = nimbus_gcp::GcpSettings::from_graph(&g, "1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`providers.gcp.project` is required (set it under `providers: gcp:` in the manifest)"
    );
}

/// The shop with secret `payment-key` read by `place-order` as `PAYMENT_API_KEY`.
/// The shop as it is: its secret `payment-key` is read by charge-payment as `PAYMENT_API_KEY`.
fn shop_with_secret() -> Vec<NativeResource> {
    let g = support::shop("gcp");
    assert_eq!(
        g.functions["charge-payment"].secrets["PAYMENT_API_KEY"],
        "payment-key"
    );
    shop()
}

#[test]
fn a_secret_is_a_secret_manager_secret_read_natively_by_its_function_only() {
    let rs = shop_with_secret();
    let secret = get(&rs, "gcp.secretmanager.secret/payment-key");
    assert_eq!(
        secret.physical_name.as_deref(),
        Some("shop-dev-payment-key")
    );
    assert_eq!(
        secret.properties["name"],
        json!(format!(
            "projects/{}/secrets/shop-dev-payment-key",
            common::settings(&support::shop("gcp")).project
        ))
    );
    assert_eq!(secret.properties["replication"], json!({ "automatic": {} }));

    // The function reads it through the platform, at version latest; the value is nowhere.
    let f = get(&rs, "gcp.functions.function/charge-payment");
    assert_eq!(
        f.properties["serviceConfig"]["secretEnvironmentVariables"],
        json!([{
            "key": "PAYMENT_API_KEY",
            "projectId": common::settings(&support::shop("gcp")).project,
            "secret": reference("gcp.secretmanager.secret/payment-key", "secret_id"),
            "version": "latest",
        }])
    );
    assert!(
        f.properties["serviceConfig"]["environmentVariables"]
            .get("PAYMENT_API_KEY")
            .is_none()
    );
    // Its grant is in place before the code first runs.
    let grant = "gcp.secretmanager.secret_iam_member/charge-payment/secrets/payment-key";
    assert!(
        f.depends_on.iter().any(|d| d == grant),
        "{:?}",
        f.depends_on
    );

    // Exactly one accessor binding: on that secret, for that function's own account.
    let bindings: Vec<&NativeResource> = rs
        .iter()
        .filter(|r| r.kind == kinds::SECRET_IAM_MEMBER)
        .collect();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].id, grant);
    assert_eq!(
        bindings[0].properties,
        json!({
            "secret": reference("gcp.secretmanager.secret/payment-key", "name"),
            "role": "roles/secretmanager.secretAccessor",
            "member": reference("gcp.iam.service_account/charge-payment", "member"),
        })
    );
    // No other function gets secret environment variables.
    for r in rs
        .iter()
        .filter(|r| r.kind == kinds::FUNCTION && r.id != f.id)
    {
        assert!(
            r.properties["serviceConfig"]
                .get("secretEnvironmentVariables")
                .is_none(),
            "{}",
            r.id
        );
    }
}

#[test]
fn without_secrets_nothing_about_secrets_is_lowered() {
    let mut g = support::shop("gcp");
    g.secrets.clear();
    for f in g.functions.values_mut() {
        f.secrets.clear();
    }
    let rs = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    assert!(
        !rs.iter()
            .any(|r| r.kind == kinds::SECRET || r.kind == kinds::SECRET_IAM_MEMBER)
    );
}
