//! Secrets: one AWS Secrets Manager secret per declared secret and stage, named
//! `{service}-{stage}/{secret}` ([`names::secret`]), with the deployment's tags and no value.
//! Values are set by `nimbus secret set -p aws` (`PutSecretValue`), never by a deployment, so
//! neither the resources, the state nor the CloudFormation export ever holds one.
//!
//! A function that reads a secret gets, in `NIMBUS_SECRET_<VAR>`, that secret's ARN (a
//! reference to the secret's `arn` output: the complete ARN, never a partial one), and its role
//! may call `secretsmanager:GetSecretValue` on exactly that ARN. The AWS shim resolves the
//! variable at cold start, before the handler's module is imported. The secret is encrypted
//! with the account's AWS-managed key `aws/secretsmanager`, whose key policy lets Secrets
//! Manager decrypt for any principal of the account allowed to read the secret, so no KMS grant
//! goes with it.
//!
//! Secrets are `retain_data`: `remove` keeps one that holds a value unless `--force`.

use nimbus_graph::FunctionNode;
use serde_json::{Value, json};

use super::{Cx, iam, out};
use crate::kinds;
use crate::names;

/// A secret for every declared secret, by name.
pub(super) fn all(cx: &mut Cx) {
    let declared: Vec<(String, Option<String>)> = cx
        .graph
        .secrets
        .iter()
        .map(|(n, s)| (n.clone(), s.description.clone()))
        .collect();
    for (name, description) in declared {
        let physical = names::secret(cx.service(), cx.stage(), &name);
        let props = json!({
            "Name": physical,
            "Description": description.unwrap_or_else(|| description_of(cx.service(), cx.stage(), &name)),
            "Tags": cx.tag_list(),
        });
        cx.push(kinds::SECRET, &name, Some(physical), props);
    }
}

/// The description of a secret the manifest does not describe (also what `nimbus secret set`
/// gives a secret it creates before the first deploy).
pub(crate) fn description_of(service: &str, stage: &str, secret: &str) -> String {
    format!("Nimbus: secret {secret} of {service} ({stage})")
}

/// `f`'s statements: `GetSecretValue` on the exact ARN of each secret it reads.
pub(super) fn statements(f: &FunctionNode) -> Vec<Value> {
    let mut read: Vec<&String> = f.secrets.values().collect();
    read.sort();
    read.dedup();
    read.into_iter()
        .map(|secret| {
            iam::allow(
                &format!("ReadSecret{}", iam::pascal(secret)),
                &["secretsmanager:GetSecretValue"],
                vec![out(kinds::SECRET, secret, "arn")],
            )
        })
        .collect()
}
