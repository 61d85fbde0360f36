//! Secrets: one Secret Manager secret per declared secret and stage
//! (`projects/P/secrets/<service>-<stage>-<secret>`, automatic replication, the deployment's
//! labels), and per function that reads it one `roles/secretmanager.secretAccessor` binding on
//! that secret alone for the function's own service account. The function gets the value through
//! Cloud Functions' native `secretEnvironmentVariables` (version `latest`, resolved by the
//! platform when an instance starts, so a new value reaches new instances), so neither the
//! deployment nor its state ever holds a value: only secret names. Values are versions added by
//! `nimbus secret set -p gcp`.

use nimbus_graph::FunctionNode;
use serde_json::{Value, json};

use super::{Cx, out};
use crate::kinds;
use crate::names;

/// The role that reads a secret's versions, and nothing else.
pub const ACCESSOR: &str = "roles/secretmanager.secretAccessor";

/// A secret for every declared secret.
pub(super) fn all(cx: &mut Cx) {
    let declared: Vec<String> = cx.graph.secrets.keys().cloned().collect();
    for name in declared {
        let id = names::secret(cx.service(), cx.stage(), &name);
        let props = json!({
            "name": format!("projects/{}/secrets/{id}", cx.project()),
            "replication": { "automatic": {} },
            "labels": cx.label_map(),
        });
        cx.push(kinds::SECRET, &name, Some(id), props);
    }
}

/// `f`'s accessor grant on each secret it reads.
pub(super) fn grants(cx: &mut Cx, f: &FunctionNode) {
    let mut read: Vec<&String> = f.secrets.values().collect();
    read.sort();
    read.dedup();
    for secret in read {
        let props = json!({
            "secret": out(kinds::SECRET, secret, "name"),
            "role": ACCESSOR,
            "member": out(kinds::SERVICE_ACCOUNT, &f.name, "member"),
        });
        cx.push(
            kinds::SECRET_IAM_MEMBER,
            &format!("{}/secrets/{secret}", f.name),
            None,
            props,
        );
    }
}

/// `serviceConfig.secretEnvironmentVariables`: each variable from its secret's latest version.
pub(super) fn environment(cx: &Cx, f: &FunctionNode) -> Value {
    Value::Array(
        f.secrets
            .iter()
            .map(|(var, secret)| {
                json!({
                    "key": var,
                    "projectId": cx.project(),
                    "secret": out(kinds::SECRET, secret, "secret_id"),
                    "version": "latest",
                })
            })
            .collect(),
    )
}
