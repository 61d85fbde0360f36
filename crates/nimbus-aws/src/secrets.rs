//! Secret values in AWS Secrets Manager, for `nimbus secret set/list/rm -p aws` and the check
//! `plan` and `deploy` run first. Each neutral secret of a service and stage is the secret
//! `{service}-{stage}/{name}` ([`names::secret`]); its value is the version staged
//! `AWSCURRENT`.
//!
//! - `set` puts a new value (`PutSecretValue`, which makes it `AWSCURRENT`); when the secret
//!   does not exist yet it creates it with the value and the deployment's tags (a later deploy
//!   adopts it); one scheduled for deletion is restored first;
//! - `list` is one `ListSecrets` filtered by the `{service}-{stage}/` prefix: which secrets
//!   have a current value and when each last changed (`LastChangedDate`; never a value);
//! - `remove` deletes the secret without a recovery window (`ForceDeleteWithoutRecovery`), as
//!   `nimbus secret rm -p gcp` deletes Secret Manager's secret with its versions;
//! - [`check_values`]: every secret a function reads has a current value, else nothing is
//!   changed and the exact `nimbus secret set` commands are listed; a secret deleted and set
//!   again since the last deploy has a new ARN, which the deploy picks up by reading the
//!   deployment back first ([`replaced`]).
//!
//! A value travels only in the `SecretString` of `PutSecretValue`/`CreateSecret`; no function
//! here returns or logs one, and AWS's error messages do not repeat it.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use aws_smithy_types::date_time::Format;
use nimbus_graph::AppGraph;

use crate::cloud::{Aws, AwsEngine};
use crate::driver::error::{Call, CallError, found};
use crate::driver::secrets::{CURRENT, has_value};
use crate::error::AwsError;
use crate::lower::secrets::description_of;
use crate::{kinds, names};

/// Secrets Manager's limit on a secret's value: 65,536 bytes.
pub const MAX_VALUE_BYTES: usize = 65536;

/// One service and stage's secrets in one account and region.
pub struct SecretValues<'a> {
    aws: &'a Aws,
    graph: &'a AppGraph,
}

/// A secret of the service and stage as Secrets Manager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretState {
    /// Its ARN.
    pub arn: String,
    /// When it last changed (RFC 3339), when it has a current value.
    pub set_at: Option<String>,
}

impl<'a> SecretValues<'a> {
    /// The secrets of `graph`'s service and stage, through `aws`.
    pub fn new(aws: &'a Aws, graph: &'a AppGraph) -> Self {
        SecretValues { aws, graph }
    }

    /// The Secrets Manager name of neutral secret `name`.
    pub fn full_name(&self, name: &str) -> String {
        names::secret(&self.graph.service, &self.graph.stage, name)
    }

    /// Stores `value` as the current value of `name`, creating the secret first if needed.
    /// Errs before any call when the value is over [`MAX_VALUE_BYTES`].
    pub async fn set(&self, name: &str, value: &str) -> Result<(), AwsError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(AwsError::SecretTooLarge {
                secret: name.to_string(),
                bytes: value.len(),
            });
        }
        let sm = &self.aws.clients().secrets;
        let id = self.full_name(name);
        let put = || async {
            sm.put_secret_value()
                .secret_id(&id)
                .secret_string(value)
                .send()
                .await
                .call("PutSecretValue")
        };
        match put().await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) if deleting(&e) => {
                sm.restore_secret()
                    .secret_id(&id)
                    .send()
                    .await
                    .call("RestoreSecret")?;
                put().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let tags: Vec<Tag> = crate::lower::tags(self.graph)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let description = self
            .graph
            .secrets
            .get(name)
            .and_then(|s| s.description.clone())
            .unwrap_or_else(|| description_of(&self.graph.service, &self.graph.stage, name));
        let created = sm
            .create_secret()
            .name(&id)
            .description(description)
            .set_tags(Some(tags))
            .secret_string(value)
            .send()
            .await
            .call("CreateSecret");
        match created {
            Ok(_) => Ok(()),
            // Created meanwhile (a deploy, another `secret set`): put the value.
            Err(e) if e.is("ResourceExistsException") => Ok(put().await.map(|_| ())?),
            Err(e) => Err(e.into()),
        }
    }

    /// Every secret under the service and stage's prefix, by neutral name (declared or not).
    pub async fn list(&self) -> Result<BTreeMap<String, SecretState>, AwsError> {
        let prefix = format!(
            "{}/",
            names::secret_prefix(&self.graph.service, &self.graph.stage)
        );
        let sm = &self.aws.clients().secrets;
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = sm
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(&prefix)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .call("ListSecrets")?;
            for s in page.secret_list() {
                // The filter is a case-insensitive prefix match: keep exactly ours.
                let Some(neutral) = s.name().and_then(|n| n.strip_prefix(&prefix)) else {
                    continue;
                };
                if s.deleted_date().is_some() {
                    continue;
                }
                let current = s
                    .secret_versions_to_stages()
                    .is_some_and(|m| m.values().any(|st| st.iter().any(|x| x == CURRENT)));
                let set_at = current.then(|| {
                    s.last_changed_date()
                        .and_then(|d| d.fmt(Format::DateTime).ok())
                        .unwrap_or_else(|| "(date unknown)".into())
                });
                out.insert(
                    neutral.to_string(),
                    SecretState {
                        arn: s.arn().unwrap_or_default().to_string(),
                        set_at,
                    },
                );
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Deletes `name` and its values at once; `false` when there was no such secret.
    pub async fn remove(&self, name: &str) -> Result<bool, AwsError> {
        let sm = &self.aws.clients().secrets;
        let id = self.full_name(name);
        let exists = found(
            sm.describe_secret()
                .secret_id(&id)
                .send()
                .await
                .call("DescribeSecret"),
        )?
        .is_some_and(|s| s.deleted_date().is_none());
        if !exists {
            return Ok(false);
        }
        sm.delete_secret()
            .secret_id(&id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .call("DeleteSecret")?;
        Ok(true)
    }
}

/// The secret is scheduled for deletion (it must be restored before it takes a value).
fn deleting(e: &CallError) -> bool {
    e.is("InvalidRequestException") && e.message.contains("deletion")
}

/// Before `deploy` or `plan` changes or shows anything: every secret a function reads has a
/// current value for the graph's stage; otherwise [`AwsError::MissingSecrets`] lists them with
/// their readers and the exact commands that set them. Returns each read secret's ARN.
pub async fn check_values(
    aws: &Aws,
    graph: &AppGraph,
) -> Result<BTreeMap<String, String>, AwsError> {
    let readers = graph.secret_readers();
    let sm = &aws.clients().secrets;
    let mut arns = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, functions) in &readers {
        let id = names::secret(&graph.service, &graph.stage, name);
        let described = found(
            sm.describe_secret()
                .secret_id(&id)
                .send()
                .await
                .call("DescribeSecret"),
        )?;
        let described = described.filter(|d| d.deleted_date().is_none());
        if let Some(arn) = described.as_ref().and_then(|d| d.arn()) {
            arns.insert(name.to_string(), arn.to_string());
        }
        if !described.is_some_and(|d| has_value(&d)) {
            missing.push((
                name.to_string(),
                functions.iter().map(|f| f.to_string()).collect(),
            ));
        }
    }
    if missing.is_empty() {
        return Ok(arns);
    }
    Err(AwsError::MissingSecrets {
        missing: missing.iter().map(|(n, _)| n.clone()).collect(),
        message: nimbus_cloud::missing_secrets_message(
            "aws",
            &graph.stage,
            "AWS Secrets Manager",
            &missing,
        ),
    })
}

/// The read secrets (of `arns`, name → current ARN) that the deployment's state records under
/// another ARN: deleted and set again since the last deploy (`nimbus secret rm`, then `set`), so
/// the roles and environments naming the old ARN are stale and must be read back (refresh).
pub(crate) async fn replaced(
    engine: &AwsEngine,
    arns: &BTreeMap<String, String>,
) -> Result<Vec<String>, AwsError> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let Some(state) = engine.state().await? else {
        return Ok(Vec::new());
    };
    Ok(arns
        .iter()
        .filter(|(name, arn)| {
            state
                .get(&format!("{}/{name}", kinds::SECRET))
                .is_some_and(|e| &e.physical_id != *arn)
        })
        .map(|(name, _)| name.clone())
        .collect())
}
