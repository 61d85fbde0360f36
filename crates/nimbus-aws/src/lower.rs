//! Lowering: the app graph and its build → the AWS objects that run it, as native resources.
//!
//! One [`NativeResource`] per AWS object, in a fixed order (the resources by name, the secrets
//! by name ([`secrets`]), then each function by name with its role, log group, code and
//! triggers, then the HTTP API, then bucket notifications), with properties shaped like the AWS
//! API requests that create them (see [`crate::kinds`] for every kind's properties, outputs and
//! `replace_on`). Logical ids are `<kind>/<name>`: `<name>` is the neutral name of the
//! resource or function, `<function>/<trigger kind>/<index>` for what belongs to one trigger
//! (routes, permissions, schedules, mappings, subscriptions), `<queue>/dlq`,
//! `<function>/scheduler` (the scheduler's role), `http` and `http/access` (the API and its
//! access log group), `default` (the stage), `jwt-<hash>` (authorizers) and `deployment`.
//! A `/` never occurs in a neutral name, so these never collide with one.
//!
//! What each function gets:
//! - an IAM role trusted by `lambda.amazonaws.com` and one inline policy (`nimbus`) that grants
//!   exactly what its `uses` allow on the exact ARNs ([`iam`]), what its triggers need on their
//!   sources (SQS receive/delete, DynamoDB stream reads), and writing to its own log group.
//!   No statement has a `*` action, and none has `Resource: "*"`: everything Nimbus grants
//!   can be scoped to an ARN, so the documented list of exceptions is empty;
//! - a log group `/aws/lambda/<name>` with [`LOG_RETENTION_DAYS`] days of retention, created
//!   before the function so Lambda never creates an unbounded one;
//! - the function: the runtime from `providers/aws/capabilities.toml`, the shim's handler
//!   `_nimbus_aws.handler`, the package at `s3://<artifact bucket>/<prefix>/<function>/<sha256>.zip`
//!   (content-addressed: new code, new key), memory, timeout, reserved concurrency = the
//!   manifest's `concurrency.max` (always set: the graph applies the default of 10), and the
//!   user's environment plus the `NIMBUS_*` variables of [`crate::env`].
//!
//! Triggers: HTTP routes share one HTTP API ([`http`]); schedules, queues, topics, buckets and
//! tables are wired in [`events`].

mod events;
mod function;
mod http;
mod iam;
mod resources;
pub(crate) mod secrets;

pub(crate) use http::{DOMAIN, route_arn_suffix};
pub(crate) use iam::pascal;
pub(crate) use resources::existing_properties;

use std::collections::BTreeMap;

use nimbus_engine::{NativeResource, reference};
use nimbus_graph::AppGraph;
use nimbus_manifest::ResourceKind;
use nimbus_package::BuildManifest;
use nimbus_provider::ProviderId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::AwsError;
use crate::kinds;
use crate::names::{self, Scope};

/// Days a function's log group keeps its logs.
pub const LOG_RETENTION_DAYS: u32 = 30;

/// Where the app is deployed and where its packages are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsSettings {
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The 12-digit account id.
    pub account_id: String,
    /// The bucket the packages are uploaded to; empty for the conventional
    /// [`names::deployment_bucket`].
    pub artifact_bucket: String,
    /// The key prefix of the packages in that bucket (`<service>/<stage>` by convention), without
    /// a trailing `/`; may be empty.
    pub artifact_prefix: String,
}

impl AwsSettings {
    /// The conventional settings: the conventional deployment bucket, prefix `<service>/<stage>`.
    pub fn conventional(graph: &AppGraph, region: &str, account_id: &str) -> Self {
        AwsSettings {
            region: region.to_string(),
            account_id: account_id.to_string(),
            artifact_bucket: String::new(),
            artifact_prefix: format!("{}/{}", graph.service, graph.stage),
        }
    }
}

/// Lowers `graph`, packaged as `build`, into the AWS objects that run it. The packages are in
/// `settings.artifact_bucket` (the conventional deployment bucket when empty), which a deploy
/// creates before the engine runs: it is not one of the resources.
pub fn lower(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &AwsSettings,
) -> Result<Vec<NativeResource>, AwsError> {
    let scope = Scope::new(&settings.region, &settings.account_id);
    let bucket = match settings.artifact_bucket.as_str() {
        "" => names::deployment_bucket(&graph.service, &graph.stage, &scope)?,
        name => name.to_string(),
    };
    lower_in(graph, build, settings, &scope, Packages::In(bucket))
}

/// Where function code comes from.
pub(crate) enum Packages {
    /// A bucket of this name.
    In(String),
    /// The output `name` of an `aws.s3.deployment_bucket` node (the CloudFormation export makes
    /// it a parameter).
    Node,
}

impl Packages {
    /// The value of a function's `Code.S3Bucket`.
    pub fn bucket(&self) -> Value {
        match self {
            Packages::In(name) => json!(name),
            Packages::Node => out(kinds::DEPLOYMENT_BUCKET, "deployment", "name"),
        }
    }
}

/// [`lower`] with names and ARNs made in `scope` (the CloudFormation export passes placeholders)
/// and the packages where `packages` says.
pub(crate) fn lower_in(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &AwsSettings,
    scope: &Scope,
    packages: Packages,
) -> Result<Vec<NativeResource>, AwsError> {
    if graph.provider != "aws" {
        return Err(AwsError::WrongProvider {
            what: "app graph",
            provider: graph.provider.clone(),
        });
    }
    if build.provider != "aws" {
        return Err(AwsError::WrongProvider {
            what: "build",
            provider: build.provider.clone(),
        });
    }
    let node = matches!(packages, Packages::Node);
    let mut cx = Cx::new(graph, build, settings, scope.clone(), packages);
    if node {
        resources::deployment_bucket(&mut cx)?;
    }
    resources::all(&mut cx)?;
    secrets::all(&mut cx);
    for f in graph.functions.values() {
        function::function(&mut cx, f)?;
        events::triggers(&mut cx, f)?;
    }
    http::api(&mut cx)?;
    events::bucket_notifications(&mut cx)?;
    check_names(&cx.out)?;
    Ok(cx.out)
}

/// What lowering needs at hand, and what it has produced so far.
pub(crate) struct Cx<'a> {
    pub graph: &'a AppGraph,
    pub build: &'a BuildManifest,
    pub settings: &'a AwsSettings,
    pub scope: Scope,
    /// Where function code comes from.
    pub packages: Packages,
    /// Tags for every taggable object: the user's `providers.aws.tags`, then `nimbus:service`
    /// and `nimbus:stage`.
    pub tags: BTreeMap<String, String>,
    pub out: Vec<NativeResource>,
}

impl<'a> Cx<'a> {
    fn new(
        graph: &'a AppGraph,
        build: &'a BuildManifest,
        settings: &'a AwsSettings,
        scope: Scope,
        packages: Packages,
    ) -> Self {
        let tags = tags(graph);
        Cx {
            graph,
            build,
            settings,
            scope,
            packages,
            tags,
            out: Vec::new(),
        }
    }

    pub fn service(&self) -> &str {
        &self.graph.service
    }

    pub fn stage(&self) -> &str {
        &self.graph.stage
    }

    /// Adds a resource; returns its logical id.
    pub fn push(
        &mut self,
        kind: &str,
        name: &str,
        physical_name: Option<String>,
        properties: Value,
    ) -> String {
        let id = id(kind, name);
        let outputs = kinds::outputs(kind);
        debug_assert!(outputs.is_some(), "unknown kind {kind}");
        self.out.push(NativeResource {
            id: id.clone(),
            kind: kind.to_string(),
            physical_name,
            properties,
            depends_on: Vec::new(),
            replace_on: replace_on(kind),
            retain_data: matches!(kind, kinds::BUCKET | kinds::TABLE | kinds::SECRET),
        });
        id
    }

    /// Makes `id` wait for `on` (beyond what its references imply).
    pub fn depend(&mut self, id: &str, on: &str) {
        let r = self
            .out
            .iter_mut()
            .find(|r| r.id == id)
            .expect("the resource was pushed");
        if !r.depends_on.iter().any(|d| d == on) {
            r.depends_on.push(on.to_string());
        }
    }

    /// Tags as a map (`{"k": "v"}`): Lambda, API Gateway, SQS, CloudWatch Logs.
    pub fn tag_map(&self) -> Value {
        Value::Object(
            self.tags
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<_, _>>(),
        )
    }

    /// Tags as a list (`[{"Key", "Value"}]`): IAM, SNS, DynamoDB, S3.
    pub fn tag_list(&self) -> Value {
        Value::Array(
            self.tags
                .iter()
                .map(|(k, v)| json!({ "Key": k, "Value": v }))
                .collect(),
        )
    }

    /// The Lambda name of a function.
    pub fn function_name(&self, function: &str) -> String {
        names::function(self.service(), self.stage(), function)
    }

    /// The physical name of a bucket resource (an existing one's own).
    pub fn bucket_name(&self, bucket: &str) -> Result<String, AwsError> {
        if self.existing(bucket).is_some() {
            return self.existing_part(bucket, "name");
        }
        names::bucket(self.service(), self.stage(), bucket, &self.scope)
    }

    /// The ARN of resource `name` when it already exists (`existing.aws`).
    pub fn existing(&self, name: &str) -> Option<&'a str> {
        self.graph.resources.get(name)?.existing.as_deref()
    }

    /// A part (`name`, `region`, `account`) of the ARN of existing resource `name`, read with
    /// the shape of `providers/aws/capabilities.toml`.
    pub fn existing_part(&self, name: &str, part: &str) -> Result<String, AwsError> {
        let r = &self.graph.resources[name];
        let arn = r.existing.as_deref().unwrap_or_default();
        let shape = ProviderId::Aws
            .capabilities()
            .resource(r.kind)
            .and_then(|c| c.existing.as_ref())
            .map(|e| e.shape.as_str())
            .unwrap_or_default();
        nimbus_provider::external::parse_shape(shape, arn)
            .and_then(|mut parts| parts.remove(part))
            .ok_or_else(|| AwsError::ExistingArn {
                resource: name.to_string(),
                kind: r.kind.to_string(),
                arn: arn.to_string(),
                shape: shape.to_string(),
            })
    }

    /// A reference to output `output` of resource `name`: of the resource Nimbus creates, or
    /// of its `aws.existing` stand-in.
    pub fn res(&self, name: &str, output: &str) -> Value {
        if self.existing(name).is_some() {
            return out(kinds::EXISTING, name, output);
        }
        let kind = match self.graph.resources[name].kind {
            ResourceKind::Table => kinds::TABLE,
            ResourceKind::Queue => kinds::QUEUE,
            ResourceKind::Topic => kinds::TOPIC,
            ResourceKind::Bucket => kinds::BUCKET,
        };
        out(kind, name, output)
    }
}

/// The tags of every taggable object of `graph`'s deployment: the user's
/// `providers.aws.tags`, then `nimbus:service` and `nimbus:stage`.
pub(crate) fn tags(graph: &AppGraph) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = graph
        .settings
        .get("aws")
        .and_then(|a| a.get("tags"))
        .and_then(Value::as_object)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    tags.insert("nimbus:service".into(), graph.service.clone());
    tags.insert("nimbus:stage".into(), graph.stage.clone());
    tags
}

/// The logical id of a resource of `kind` named `name`.
pub(crate) fn id(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// A reference to output `output` of the resource of `kind` named `name`.
pub(crate) fn out(kind: &str, name: &str, output: &str) -> Value {
    debug_assert!(
        kinds::outputs(kind).is_some_and(|o| o.contains(&output)),
        "{kind} has no output {output}"
    );
    reference(&id(kind, name), output)
}

/// `trigger:place-order/http/0` → `place-order/http/0`: the tail of logical ids of a trigger's
/// objects.
pub(crate) fn trigger_key(trigger_id: &str) -> &str {
    trigger_id.trim_start_matches("trigger:")
}

fn replace_on(kind: &str) -> Vec<String> {
    let props: &[&str] = match kind {
        kinds::DEPLOYMENT_BUCKET | kinds::BUCKET => &["Bucket"],
        kinds::ROLE => &["RoleName"],
        kinds::ROLE_POLICY => &["RoleName", "PolicyName"],
        kinds::LOG_GROUP => &["logGroupName"],
        kinds::FUNCTION => &["FunctionName"],
        kinds::PERMISSION => &[
            "FunctionName",
            "StatementId",
            "Action",
            "Principal",
            "SourceArn",
            "SourceAccount",
        ],
        kinds::API => &["ProtocolType"],
        kinds::AUTHORIZER | kinds::INTEGRATION | kinds::ROUTE => &["ApiId"],
        kinds::STAGE => &["ApiId", "StageName"],
        kinds::SCHEDULE => &["Name", "GroupName"],
        kinds::QUEUE => &["QueueName"],
        kinds::EVENT_SOURCE_MAPPING => &["EventSourceArn", "StartingPosition"],
        kinds::TOPIC => &["Name"],
        kinds::SUBSCRIPTION => &["TopicArn", "Protocol", "Endpoint"],
        kinds::BUCKET_NOTIFICATION => &["Bucket"],
        kinds::TABLE => &["TableName", "KeySchema", "AttributeDefinitions"],
        kinds::SECRET => &["Name"],
        kinds::EXISTING => &["Arn"],
        kinds::DOMAIN_NAME => &["DomainName"],
        kinds::API_MAPPING => &["DomainName"],
        _ => &[],
    };
    props.iter().map(|p| p.to_string()).collect()
}

/// Physical names must be unique within each AWS namespace (all S3 buckets share one).
fn check_names(out: &[NativeResource]) -> Result<(), AwsError> {
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    for r in out {
        let Some(name) = &r.physical_name else {
            continue;
        };
        let namespace = if r.kind == kinds::DEPLOYMENT_BUCKET {
            kinds::BUCKET
        } else {
            r.kind.as_str()
        };
        if let Some(first) = seen.insert((namespace.to_string(), name.clone()), &r.id) {
            return Err(AwsError::NameClash {
                kind: namespace.to_string(),
                name: name.clone(),
                first: first.to_string(),
                second: r.id.clone(),
            });
        }
    }
    Ok(())
}
