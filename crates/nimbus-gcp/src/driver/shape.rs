//! What Google returns, in the shape lowering writes: `read` answers with these, so the engine
//! compares the cloud with the state path by path and `plan --refresh` reports only real drift.
//!
//! Each function keeps exactly the fields lowering sets (see [`crate::kinds`]) and drops what
//! Google adds: output-only fields (`state`, `updateTime`, `uri`, `revision`, an Eventarc
//! trigger's `uid` and the transport Eventarc creates for Cloud Storage and Firestore events, a
//! Scheduler job's `state`, `retryConfig` and `User-Agent` header, a push subscription's
//! `attributes`), and server-side defaults lowering never sets (a function's `LOG_EXECUTION_ID`
//! variable and `availableCpu`, an object's generation, Eventarc's default
//! `eventDataContentType` of `application/json` on triggers other than Firestore's). A field
//! lowering sets that Google no longer has comes back as `null`, which is drift.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// `keys` of `v`, each `null` when missing.
fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), v.get(*k).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// `keys` of `v` that are present.
fn present(v: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
        .collect()
}

/// Labels: absent means none.
fn labels(v: &Value) -> Value {
    match v.get("labels") {
        Some(Value::Object(l)) => Value::Object(l.clone()),
        _ => json!({}),
    }
}

/// A service account: `projectId` and the id before the `@` of its email.
pub fn service_account(sa: &Value) -> Value {
    let email = sa["email"].as_str().unwrap_or_default();
    json!({
        "project": sa["projectId"],
        "accountId": email.split('@').next().unwrap_or_default(),
        "displayName": sa.get("displayName").cloned().unwrap_or(json!("")),
        "description": sa.get("description").cloned().unwrap_or(json!("")),
    })
}

/// A topic.
pub fn topic(t: &Value) -> Value {
    let mut out = present(t, &["name", "messageRetentionDuration"]);
    out.insert("labels".into(), labels(t));
    Value::Object(out)
}

/// A secret: its name, replication and labels (never a value: those are its versions).
pub fn secret(s: &Value) -> Value {
    let mut out = present(s, &["name", "replication"]);
    out.insert("labels".into(), labels(s));
    Value::Object(out)
}

/// A subscription: its push endpoint and OIDC token only (`{}` when it is a pull subscription).
pub fn subscription(s: &Value) -> Value {
    let mut out = present(
        s,
        &[
            "name",
            "topic",
            "ackDeadlineSeconds",
            "messageRetentionDuration",
            "expirationPolicy",
            "retryPolicy",
            "deadLetterPolicy",
        ],
    );
    let push = &s["pushConfig"];
    let mut config = present(push, &["pushEndpoint"]);
    if let Some(token) = push.get("oidcToken") {
        config.insert(
            "oidcToken".into(),
            pick(token, &["serviceAccountEmail", "audience"]),
        );
    }
    out.insert("pushConfig".into(), Value::Object(config));
    out.insert("labels".into(), labels(s));
    Value::Object(out)
}

/// A bucket; `project` is the project id (the API gives only the number).
pub fn bucket(b: &Value, project: &str) -> Value {
    let iam = &b["iamConfiguration"];
    json!({
        "name": b["name"],
        "project": project,
        "location": b["location"].as_str().map(str::to_ascii_lowercase),
        "storageClass": b["storageClass"],
        "iamConfiguration": {
            "uniformBucketLevelAccess": { "enabled": iam["uniformBucketLevelAccess"]["enabled"].as_bool().unwrap_or(false) },
            "publicAccessPrevention": iam["publicAccessPrevention"].as_str().unwrap_or("inherited"),
        },
        "versioning": { "enabled": b["versioning"]["enabled"].as_bool().unwrap_or(false) },
        "labels": labels(b),
    })
}

/// A Cloud Functions (2nd gen) function.
pub fn function(f: &Value) -> Value {
    let build = &f["buildConfig"];
    let service = &f["serviceConfig"];
    let mut vars = service["environmentVariables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // Added by Cloud Functions to every 2nd gen function.
    if vars.get("LOG_EXECUTION_ID") == Some(&json!("true")) {
        vars.remove("LOG_EXECUTION_ID");
    }
    let mut service_out = pick(
        service,
        &[
            "availableMemory",
            "timeoutSeconds",
            "maxInstanceCount",
            "maxInstanceRequestConcurrency",
        ],
    );
    service_out["environmentVariables"] = Value::Object(vars);
    for k in [
        "serviceAccountEmail",
        "ingressSettings",
        "allTrafficOnLatestRevision",
    ] {
        service_out[k] = service.get(k).cloned().unwrap_or(Value::Null);
    }
    // The `gcp:` settings, in lowering's shape: the egress setting only with a connector, a
    // minimum only when above zero.
    if let Some(connector) = service
        .get("vpcConnector")
        .filter(|c| c.as_str().is_some_and(|c| !c.is_empty()))
    {
        service_out["vpcConnector"] = connector.clone();
        service_out["vpcConnectorEgressSettings"] = service
            .get("vpcConnectorEgressSettings")
            .cloned()
            .unwrap_or(json!("PRIVATE_RANGES_ONLY"));
    }
    if let Some(min) = service
        .get("minInstanceCount")
        .filter(|m| m.as_u64().is_some_and(|m| m > 0))
    {
        service_out["minInstanceCount"] = min.clone();
    }
    if let Some(Value::Array(secrets)) = service.get("secretEnvironmentVariables")
        && !secrets.is_empty()
    {
        service_out["secretEnvironmentVariables"] = secrets
            .iter()
            .map(|v| pick(v, &["key", "projectId", "secret", "version"]))
            .collect();
    }
    json!({
        "name": f["name"],
        "description": f.get("description").cloned().unwrap_or(json!("")),
        "environment": f["environment"],
        "labels": labels(f),
        "buildConfig": {
            "runtime": build["runtime"],
            "entryPoint": build["entryPoint"],
            "source": { "storageSource": pick(&build["source"]["storageSource"], &["bucket", "object"]) },
        },
        "serviceConfig": service_out,
    })
}

/// The canonical position of an event filter: `type` first, then as lowering orders them.
fn filter_rank(attribute: &str) -> usize {
    ["type", "bucket", "database", "document"]
        .iter()
        .position(|a| *a == attribute)
        .unwrap_or(usize::MAX)
}

/// An Eventarc trigger.
pub fn eventarc_trigger(t: &Value) -> Value {
    let mut filters: Vec<Value> = t["eventFilters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|f| Value::Object(present(&f, &["attribute", "value", "operator"])))
        .collect();
    filters.sort_by_key(|f| {
        (
            filter_rank(f["attribute"].as_str().unwrap_or_default()),
            f["attribute"].as_str().unwrap_or_default().to_string(),
        )
    });
    let event = filters
        .iter()
        .find(|f| f["attribute"] == "type")
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut out = json!({
        "name": t["name"],
        "eventFilters": filters,
        "destination": { "cloudRun": pick(&t["destination"]["cloudRun"], &["service", "region"]) },
        "serviceAccount": t["serviceAccount"],
        "labels": labels(t),
    });
    // The topic of a Pub/Sub trigger is ours; for other events Eventarc makes its own.
    if event == "google.cloud.pubsub.topic.v1.messagePublished" {
        out["transport"] = json!({ "pubsub": { "topic": t["transport"]["pubsub"]["topic"] } });
    }
    let content = t["eventDataContentType"]
        .as_str()
        .unwrap_or("application/json");
    if event.starts_with("google.cloud.firestore.") || content != "application/json" {
        out["eventDataContentType"] = json!(content);
    }
    out
}

/// A Cloud Scheduler job with an HTTP target.
pub fn scheduler_job(j: &Value) -> Value {
    let target = &j["httpTarget"];
    json!({
        "name": j["name"],
        "description": j.get("description").cloned().unwrap_or(json!("")),
        "schedule": j["schedule"],
        "timeZone": j["timeZone"],
        "attemptDeadline": j["attemptDeadline"],
        "httpTarget": {
            "uri": target["uri"],
            "httpMethod": target["httpMethod"],
            "oidcToken": pick(&target["oidcToken"], &["serviceAccountEmail", "audience"]),
        },
    })
}

/// An API Gateway API.
pub fn api(a: &Value) -> Value {
    json!({ "name": a["name"], "displayName": a["displayName"], "labels": labels(a) })
}

/// An API Gateway API config read with `view=FULL`: its documents decoded back to JSON.
pub fn api_config(c: &Value) -> Value {
    let documents: Vec<Value> = c["openapiDocuments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let contents = d["document"]["contents"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .unwrap_or(Value::Null);
            json!({ "document": { "path": d["document"]["path"], "contents": contents } })
        })
        .collect();
    json!({
        "name": c["name"],
        "displayName": c["displayName"],
        "gatewayServiceAccount": c["gatewayServiceAccount"],
        "openapiDocuments": documents,
        "labels": labels(c),
    })
}

/// An API Gateway gateway.
pub fn gateway(g: &Value) -> Value {
    json!({
        "name": g["name"],
        "apiConfig": g["apiConfig"],
        "displayName": g["displayName"],
        "labels": labels(g),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_side_additions_are_dropped() {
        let live = json!({
            "name": "projects/p/locations/r/functions/f", "description": "d", "environment": "GEN_2",
            "state": "ACTIVE", "url": "https://x", "updateTime": "t",
            "buildConfig": { "runtime": "python312", "entryPoint": "nimbus_entry", "build": "b",
                "dockerRepository": "r",
                "source": { "storageSource": { "bucket": "b", "object": "o", "generation": "1" } } },
            "serviceConfig": { "availableMemory": "256Mi", "availableCpu": "0.1666", "timeoutSeconds": 10,
                "maxInstanceCount": 100, "maxInstanceRequestConcurrency": 1, "uri": "https://u",
                "environmentVariables": { "A": "1", "LOG_EXECUTION_ID": "true" },
                "serviceAccountEmail": "sa@p.iam.gserviceaccount.com", "ingressSettings": "ALLOW_ALL",
                "allTrafficOnLatestRevision": true, "revision": "r1", "service": "projects/p/locations/r/services/f" },
        });
        assert_eq!(
            function(&live),
            json!({
                "name": "projects/p/locations/r/functions/f", "description": "d", "environment": "GEN_2",
                "labels": {},
                "buildConfig": { "runtime": "python312", "entryPoint": "nimbus_entry",
                    "source": { "storageSource": { "bucket": "b", "object": "o" } } },
                "serviceConfig": { "availableMemory": "256Mi", "timeoutSeconds": 10, "maxInstanceCount": 100,
                    "maxInstanceRequestConcurrency": 1, "environmentVariables": { "A": "1" },
                    "serviceAccountEmail": "sa@p.iam.gserviceaccount.com", "ingressSettings": "ALLOW_ALL",
                    "allTrafficOnLatestRevision": true },
            })
        );
        let t = json!({
            "name": "n", "uid": "u", "eventDataContentType": "application/json",
            "eventFilters": [{ "attribute": "bucket", "value": "b" }, { "attribute": "type", "value": "google.cloud.storage.object.v1.finalized" }],
            "destination": { "cloudRun": { "service": "s", "region": "r", "path": "/" } },
            "serviceAccount": "i@p.iam.gserviceaccount.com",
            "transport": { "pubsub": { "topic": "projects/p/topics/eventarc-x", "subscription": "s" } },
        });
        let shaped = eventarc_trigger(&t);
        assert_eq!(shaped["eventFilters"][0]["attribute"], "type");
        assert!(shaped.get("transport").is_none() && shaped.get("eventDataContentType").is_none());
        assert_eq!(
            shaped["destination"],
            json!({ "cloudRun": { "service": "s", "region": "r" } })
        );
    }
}
