//! The AWS driver: the deploy engine's [`Driver`] for every kind in [`crate::kinds`], through
//! the official AWS SDK for Rust.
//!
//! Each kind's module turns the resource's properties (already resolved, shaped like the AWS
//! API request, see `kinds`) into SDK calls, and reads the object back in the same shape so
//! that a refresh compares property by property. Creates wait until the object is usable
//! (a Lambda function `Active`, a table `ACTIVE`), so that what depends on it can go next;
//! deletes treat "not found" as done. Errors carry the API operation, AWS's code and message,
//! and whether a retry may help ([`error`]).
//!
//! | module | kinds |
//! |---|---|
//! | [`iam`] | `aws.iam.role`, `aws.iam.role_policy` |
//! | [`logs`] | `aws.logs.log_group` |
//! | [`lambda`] | `aws.lambda.function`, `aws.lambda.permission`, `aws.lambda.event_source_mapping` |
//! | [`apigw`] | `aws.apigatewayv2.{api,authorizer,integration,route,stage}` |
//! | [`scheduler`] | `aws.scheduler.schedule` |
//! | [`sqs`] | `aws.sqs.queue` |
//! | [`sns`] | `aws.sns.topic`, `aws.sns.subscription` |
//! | [`s3`] | `aws.s3.bucket`, `aws.s3.bucket_notification` |
//! | [`dynamodb`] | `aws.dynamodb.table` |
//! | [`secrets`] | `aws.secretsmanager.secret` |
//! | [`existing`] | `aws.existing` (reads only) |
//! | [`domain`] | `aws.apigatewayv2.{domain_name,api_mapping}` |

mod apigw;
mod domain;
mod dynamodb;
pub(crate) mod error;
pub(crate) mod existing;
mod iam;
mod lambda;
mod logs;
mod props;
pub(crate) mod s3;
mod scheduler;
pub(crate) mod secrets;
mod sns;
mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use nimbus_engine::{Applied, Driver, DriverError, Live, NativeResource, StateEntry};
use serde_json::Value;

use crate::clients::Clients;
use crate::kinds;
use crate::names::Scope;
pub(crate) use props::Props;

/// The engine's driver for AWS: SDK clients and where names and ARNs are made.
#[derive(Debug, Clone)]
pub struct AwsDriver {
    pub(crate) clients: Clients,
    pub(crate) scope: Scope,
    /// The bucket and key prefix of the packages (to read a function's code back).
    pub(crate) artifacts: Artifacts,
    /// How long to wait for an object to become usable after a create or update.
    pub(crate) settle_timeout: Duration,
}

/// Where the packages are: `s3://{bucket}/{prefix}/{sha256}.zip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without a trailing `/` (may be empty).
    pub prefix: String,
}

impl Artifacts {
    /// The key of the package with this SHA-256 (hex).
    pub fn key(&self, sha256: &str) -> String {
        crate::names::package_key(&self.prefix, sha256)
    }

    /// The SHA-256 (hex) in a key made by [`Artifacts::key`].
    pub fn sha256_of(&self, key: &str) -> Option<String> {
        let name = key.rsplit('/').next()?;
        let sha = name.strip_suffix(".zip")?;
        (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
    }
}

impl AwsDriver {
    /// A driver for the account and region of `scope`, through `clients`.
    pub fn new(clients: Clients, scope: Scope, artifacts: Artifacts) -> Self {
        AwsDriver {
            clients,
            scope,
            artifacts,
            settle_timeout: Duration::from_secs(300),
        }
    }
}

/// What a create or update returns.
pub(crate) fn applied(physical_id: impl Into<String>, outputs: &[(&str, Value)]) -> Applied {
    Applied {
        physical_id: physical_id.into(),
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// What a read returns.
pub(crate) fn live(physical_id: impl Into<String>, properties: Value, outputs: Applied) -> Live {
    Live {
        physical_id: physical_id.into(),
        properties,
        outputs: outputs.outputs,
    }
}

/// A resource kind this driver does not know: a bug in nimbus (lowering and driver disagree).
fn unknown(kind: &str) -> DriverError {
    DriverError::permanent(format!(
        "internal: the AWS driver has no resource kind `{kind}`"
    ))
}

/// A builder that failed for want of a required field: a bug in nimbus.
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, DriverError> {
    r.map_err(|e| DriverError::permanent(format!("internal: {e}")))
}

impl Driver for AwsDriver {
    async fn create(
        &self,
        resource: &NativeResource,
        properties: &Value,
    ) -> Result<Applied, DriverError> {
        let p = Props::new(&resource.kind, properties);
        match resource.kind.as_str() {
            kinds::ROLE => iam::create_role(self, p).await,
            kinds::ROLE_POLICY => iam::put_role_policy(self, p).await,
            kinds::LOG_GROUP => logs::create(self, p).await,
            kinds::FUNCTION => lambda::create_function(self, p).await,
            kinds::PERMISSION => lambda::add_permission(self, p).await,
            kinds::EVENT_SOURCE_MAPPING => lambda::create_mapping(self, p).await,
            kinds::API => apigw::create_api(self, p).await,
            kinds::AUTHORIZER => apigw::create_authorizer(self, p).await,
            kinds::INTEGRATION => apigw::create_integration(self, p).await,
            kinds::ROUTE => apigw::create_route(self, p).await,
            kinds::STAGE => apigw::create_stage(self, p).await,
            kinds::SCHEDULE => scheduler::create(self, p).await,
            kinds::QUEUE => sqs::create(self, p).await,
            kinds::TOPIC => sns::create_topic(self, p).await,
            kinds::SUBSCRIPTION => sns::subscribe(self, p).await,
            kinds::BUCKET => s3::create_bucket(self, p).await,
            kinds::BUCKET_NOTIFICATION => s3::put_notification(self, p).await,
            kinds::TABLE => dynamodb::create(self, p).await,
            kinds::SECRET => secrets::create(self, p).await,
            kinds::EXISTING => existing::apply(self, resource, properties).await,
            kinds::DOMAIN_NAME => domain::put_domain_name(self, p, false).await,
            kinds::API_MAPPING => domain::put_api_mapping(self, None, p).await,
            other => Err(unknown(other)),
        }
    }

    async fn update(
        &self,
        resource: &NativeResource,
        prior: &StateEntry,
        properties: &Value,
    ) -> Result<Applied, DriverError> {
        let p = Props::new(&resource.kind, properties);
        let before = Props::new(&resource.kind, &prior.properties);
        let id = prior.physical_id.as_str();
        match resource.kind.as_str() {
            kinds::ROLE => iam::update_role(self, before, p).await,
            kinds::ROLE_POLICY => iam::put_role_policy(self, p).await,
            kinds::LOG_GROUP => logs::update(self, before, p).await,
            kinds::FUNCTION => lambda::update_function(self, before, p).await,
            kinds::EVENT_SOURCE_MAPPING => lambda::update_mapping(self, id, p).await,
            kinds::API => apigw::update_api(self, id, before, p).await,
            kinds::AUTHORIZER => apigw::update_authorizer(self, id, p).await,
            kinds::INTEGRATION => apigw::update_integration(self, id, p).await,
            kinds::ROUTE => apigw::update_route(self, id, p).await,
            kinds::STAGE => apigw::update_stage(self, id, before, p).await,
            kinds::SCHEDULE => scheduler::update(self, p).await,
            kinds::QUEUE => sqs::update(self, id, before, p).await,
            kinds::TOPIC => sns::update_topic(self, id, before, p).await,
            kinds::BUCKET => s3::update_bucket(self, before, p).await,
            kinds::BUCKET_NOTIFICATION => s3::put_notification(self, p).await,
            kinds::TABLE => dynamodb::update(self, before, p).await,
            kinds::SECRET => secrets::update(self, id, before, p).await,
            kinds::EXISTING => existing::apply(self, resource, properties).await,
            kinds::DOMAIN_NAME => domain::put_domain_name(self, p, true).await,
            kinds::API_MAPPING => domain::put_api_mapping(self, Some(id), p).await,
            // Every property of these forces a replacement.
            kinds::PERMISSION | kinds::SUBSCRIPTION => Err(DriverError::permanent(format!(
                "internal: `{}` cannot be updated in place",
                resource.kind
            ))),
            other => Err(unknown(other)),
        }
    }

    async fn delete(&self, entry: &StateEntry) -> Result<(), DriverError> {
        let id = entry.physical_id.as_str();
        let p = Props::new(&entry.kind, &entry.properties);
        match entry.kind.as_str() {
            kinds::ROLE => iam::delete_role(self, id).await,
            kinds::ROLE_POLICY => iam::delete_role_policy(self, id).await,
            kinds::LOG_GROUP => logs::delete(self, id).await,
            kinds::FUNCTION => lambda::delete_function(self, id).await,
            kinds::PERMISSION => lambda::remove_permission(self, id).await,
            kinds::EVENT_SOURCE_MAPPING => lambda::delete_mapping(self, id).await,
            kinds::API => apigw::delete_api(self, id).await,
            kinds::AUTHORIZER => apigw::delete_authorizer(self, id).await,
            kinds::INTEGRATION => apigw::delete_integration(self, id).await,
            kinds::ROUTE => apigw::delete_route(self, id).await,
            kinds::STAGE => apigw::delete_stage(self, id).await,
            kinds::SCHEDULE => scheduler::delete(self, id, p).await,
            kinds::QUEUE => sqs::delete(self, id).await,
            kinds::TOPIC => sns::delete_topic(self, id).await,
            kinds::SUBSCRIPTION => sns::unsubscribe(self, id).await,
            kinds::BUCKET => s3::delete_bucket(self, id).await,
            kinds::BUCKET_NOTIFICATION => s3::delete_notification(self, id).await,
            kinds::TABLE => dynamodb::delete(self, id).await,
            kinds::SECRET => secrets::delete(self, id).await,
            // Never deleted: it is not ours. The state forgets it.
            kinds::EXISTING => Ok(()),
            kinds::DOMAIN_NAME => domain::delete_domain_name(self, id).await,
            kinds::API_MAPPING => domain::delete_api_mapping(self, id).await,
            other => Err(unknown(other)),
        }
    }

    async fn read(&self, kind: &str, physical_id: &str) -> Result<Option<Live>, DriverError> {
        let id = physical_id;
        match kind {
            kinds::ROLE => iam::read_role(self, id).await,
            kinds::ROLE_POLICY => iam::read_role_policy(self, id).await,
            kinds::LOG_GROUP => logs::read(self, id).await,
            kinds::FUNCTION => lambda::read_function(self, id).await,
            kinds::PERMISSION => lambda::read_permission(self, id).await,
            kinds::EVENT_SOURCE_MAPPING => lambda::read_mapping(self, id).await,
            kinds::API => apigw::read_api(self, id).await,
            kinds::AUTHORIZER => apigw::read_authorizer(self, id).await,
            kinds::INTEGRATION => apigw::read_integration(self, id).await,
            kinds::ROUTE => apigw::read_route(self, id).await,
            kinds::STAGE => apigw::read_stage(self, id).await,
            kinds::SCHEDULE => scheduler::read(self, id).await,
            kinds::QUEUE => sqs::read(self, id).await,
            kinds::TOPIC => sns::read_topic(self, id).await,
            kinds::SUBSCRIPTION => sns::read_subscription(self, id).await,
            kinds::BUCKET => s3::read_bucket(self, id).await,
            kinds::BUCKET_NOTIFICATION => s3::read_notification(self, id).await,
            kinds::TABLE => dynamodb::read(self, id).await,
            kinds::SECRET => secrets::read(self, id).await,
            kinds::EXISTING => existing::read(self, id).await,
            kinds::DOMAIN_NAME => domain::read_domain_name(self, id).await,
            kinds::API_MAPPING => domain::read_api_mapping(self, id).await,
            other => Err(unknown(other)),
        }
    }

    async fn holds_data(&self, entry: &StateEntry) -> Result<bool, DriverError> {
        match entry.kind.as_str() {
            kinds::BUCKET => s3::holds_data(self, &entry.physical_id).await,
            kinds::TABLE => dynamodb::holds_data(self, &entry.physical_id).await,
            kinds::SECRET => secrets::holds_data(self, &entry.physical_id).await,
            _ => Ok(false),
        }
    }
}

/// Splits a composite physical id `a/b` (ids of sub-objects: `{api}/{route}`, `{role}/{policy}`).
pub(crate) fn split_id<'a>(kind: &str, id: &'a str) -> Result<(&'a str, &'a str), DriverError> {
    id.split_once('/').ok_or_else(|| {
        DriverError::permanent(format!(
            "internal: `{id}` is not a physical id of a `{kind}` (expected `parent/child`)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_keys_are_content_addressed() {
        let a = Artifacts {
            bucket: "b".into(),
            prefix: "packages".into(),
        };
        let sha = "a".repeat(64);
        assert_eq!(a.key(&sha), format!("packages/{sha}.zip"));
        assert_eq!(a.sha256_of(&a.key(&sha)), Some(sha.clone()));
        assert_eq!(a.sha256_of("packages/x.zip"), None);
        let bare = Artifacts {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(bare.key(&sha), format!("{sha}.zip"));
    }
}
