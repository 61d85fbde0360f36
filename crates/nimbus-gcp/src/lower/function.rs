//! A function: its service account, its grants, the Cloud Functions (2nd gen) function, and the
//! invoker binding that lets the triggers call it.
//!
//! The function: the runtime from `providers/gcp/capabilities.toml`, entry point `nimbus_entry`
//! (the shim), source = its package in the deployment bucket
//! (`packages/<service>/<stage>/<function>/<sha256>.zip`: content-addressed, so new code is a new
//! object), memory (`<MiB>Mi`), timeout, `maxInstanceCount` = the manifest's `concurrency.max`
//! (one request per instance), the user's environment plus the `NIMBUS_*` variables of
//! [`crate::env`], the secrets it reads as `secretEnvironmentVariables` (see
//! [`super::secrets`]), its own service account, all traffic on the latest revision. Ingress: all
//! traffic for functions behind the API gateway or Cloud Scheduler, internal only for functions
//! reached by Pub/Sub and Eventarc alone; either way every call needs `roles/run.invoker`, which
//! only the invoker account has. The function's `gcp:` block adds `vpcConnector` with
//! `vpcConnectorEgressSettings` (`PRIVATE_RANGES_ONLY` unless `egress: all`) and
//! `minInstanceCount`.

use std::collections::BTreeMap;

use nimbus_graph::{FunctionNode, TriggerSpec};
use nimbus_manifest::ResourceKind;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use super::{Cx, INVOKER, iam, out, secrets};
use crate::env;
use crate::error::GcpError;
use crate::kinds;
use crate::names;

/// The functions-framework target every package exports.
pub const ENTRY_POINT: &str = "nimbus_entry";

pub(super) fn function(cx: &mut Cx, f: &FunctionNode) -> Result<(), GcpError> {
    let artifact = cx
        .build
        .functions
        .get(&f.name)
        .ok_or_else(|| GcpError::MissingArtifact {
            function: f.name.clone(),
        })?;
    let runtime = ProviderId::Gcp
        .capabilities()
        .runtime(f.runtime)
        .ok_or_else(|| GcpError::UnsupportedRuntime {
            function: f.name.clone(),
            runtime: f.runtime.to_string(),
        })?
        .to_string();

    let account = names::function_account(cx.service(), cx.stage(), &f.name);
    let props = json!({
        "project": cx.project(),
        "accountId": account,
        "displayName": format!("{} {} {}", cx.service(), cx.stage(), f.name),
        "description": format!("Runs function {} of {}/{} (nimbus)", f.name, cx.service(), cx.stage()),
    });
    cx.push(kinds::SERVICE_ACCOUNT, &f.name, Some(account), props);
    iam::uses(cx, f);
    iam::extra(cx, f);
    secrets::grants(cx, f);

    let name = names::function(cx.service(), cx.stage(), &f.name);
    let http = f.triggers.iter().any(|t| {
        matches!(
            t.spec,
            TriggerSpec::Http { .. } | TriggerSpec::Schedule { .. }
        )
    });
    let object = cx
        .settings
        .package_key(cx.service(), cx.stage(), &f.name, &artifact.sha256);
    let mut description = f
        .description
        .clone()
        .unwrap_or_else(|| format!("{} of {}/{}", f.name, cx.service(), cx.stage()));
    // At most 1000 bytes, cut at a character boundary (a byte index inside a character panics).
    description.truncate(description.floor_char_boundary(1000));
    let mut props = json!({
        "name": format!("{}/functions/{name}", cx.settings.location()),
        "description": description,
        "environment": "GEN_2",
        "labels": cx.label_map(),
        "buildConfig": {
            "runtime": runtime,
            "entryPoint": ENTRY_POINT,
            "source": { "storageSource": { "bucket": cx.settings.deploy_bucket, "object": object } },
        },
        "serviceConfig": {
            "availableMemory": format!("{}Mi", f.memory_mb),
            "timeoutSeconds": f.timeout_ms.div_ceil(1000),
            "maxInstanceCount": f.concurrency,
            "maxInstanceRequestConcurrency": 1,
            "environmentVariables": environment(cx, f),
            "serviceAccountEmail": out(kinds::SERVICE_ACCOUNT, &f.name, "email"),
            "ingressSettings": if http { "ALLOW_ALL" } else { "ALLOW_INTERNAL_ONLY" },
            "allTrafficOnLatestRevision": true,
        },
    });
    if !f.secrets.is_empty() {
        props["serviceConfig"]["secretEnvironmentVariables"] = secrets::environment(cx, f);
    }
    // The function's `gcp:` settings (see `providers/gcp/capabilities.toml`).
    if let Some(connector) = &f.gcp.vpc_connector {
        props["serviceConfig"]["vpcConnector"] = json!(connector.as_str());
        props["serviceConfig"]["vpcConnectorEgressSettings"] = json!(
            f.gcp
                .egress
                .as_ref()
                .map_or(nimbus_manifest::Egress::PrivateRangesOnly, |e| e.value)
                .native()
        );
    }
    // Zero is the API's default, which a read leaves out.
    if let Some(min) = f.gcp.min_instances.as_ref().filter(|m| m.value > 0) {
        props["serviceConfig"]["minInstanceCount"] = json!(min.value);
    }
    let id = cx.push(kinds::FUNCTION, &f.name, Some(name), props);
    // The grants are in place before the code first runs.
    let grants: Vec<String> = cx
        .out
        .iter()
        .filter(|r| {
            r.id.starts_with(&format!("{}/{}/", r.kind, f.name))
                && matches!(
                    r.kind.as_str(),
                    kinds::TOPIC_IAM_MEMBER
                        | kinds::SUBSCRIPTION_IAM_MEMBER
                        | kinds::BUCKET_IAM_MEMBER
                        | kinds::PROJECT_IAM_MEMBER
                        | kinds::SECRET_IAM_MEMBER
                )
        })
        .map(|r| r.id.clone())
        .collect();
    for g in grants {
        cx.depend(&id, &g);
    }

    if !f.triggers.is_empty() {
        let props = json!({
            "service": out(kinds::FUNCTION, &f.name, "service_path"),
            "role": "roles/run.invoker",
            "member": out(kinds::SERVICE_ACCOUNT, INVOKER, "member"),
        });
        cx.push(kinds::SERVICE_IAM_MEMBER, &f.name, None, props);
    }
    Ok(())
}

/// The user's environment, then the `NIMBUS_*` variables (which win).
fn environment(cx: &Cx, f: &FunctionNode) -> Value {
    let mut vars: BTreeMap<String, Value> =
        f.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    vars.insert(env::PROJECT_VAR.into(), json!(cx.project()));
    for edge in cx.graph.edges.iter().filter(|e| e.from == f.id) {
        let name = edge.to.trim_start_matches("resource:");
        let Some(r) = cx.graph.resources.get(name) else {
            continue;
        };
        match r.kind {
            ResourceKind::Table => {
                vars.insert(
                    env::resource_var(name, "COLLECTION"),
                    cx.res(name, "collection"),
                );
                vars.insert(
                    env::resource_var(name, "DATABASE"),
                    cx.res(name, "database"),
                );
            }
            ResourceKind::Topic => {
                vars.insert(env::resource_var(name, "TOPIC"), cx.res(name, "topic"));
            }
            ResourceKind::Queue => {
                vars.insert(env::resource_var(name, "TOPIC"), cx.res(name, "topic"));
                let sub = match cx.existing(name) {
                    Some(_) => cx.res(name, "subscription"),
                    None => json!(
                        names::pubsub(cx.service(), cx.stage(), name)
                            .map(|s| cx.subscription_path(&s))
                            .unwrap_or_default()
                    ),
                };
                vars.insert(env::resource_var(name, "SUBSCRIPTION"), sub);
            }
            ResourceKind::Bucket => {
                vars.insert(env::resource_var(name, "NAME"), cx.res(name, "bucket"));
            }
        }
    }
    for t in &f.triggers {
        if matches!(t.spec, TriggerSpec::Schedule { .. }) {
            let job = names::job(cx.service(), cx.stage(), &t.id);
            vars.insert(
                env::schedule_var(&names::trigger_part(&t.id)),
                json!(format!("{}/jobs/{job}", cx.settings.location())),
            );
        }
    }
    Value::Object(vars.into_iter().collect())
}
