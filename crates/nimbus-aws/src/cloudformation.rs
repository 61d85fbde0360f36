//! The CloudFormation export: the lowered app as one deterministic template.
//!
//! The template is made *from* the lowered resources, so it names and grants exactly what a
//! direct deploy does. Lowering runs with placeholders for the partition, region and account,
//! which become `${AWS::Partition}`, `${AWS::Region}` and `${AWS::AccountId}` in `Fn::Sub`, so
//! one template deploys to any account and region (and bucket and role names, which embed the
//! account and region, come out the same as a direct deploy's there). References become `Ref`
//! and `Fn::GetAtt`; outputs that the driver computes (an integration's route target, a route's
//! execute-api ARN) become the equivalent `Fn::Sub`.
//!
//! Differences from the native resources, all forced by CloudFormation's model:
//! - the deployment bucket is not in the template (the packages must be uploaded before the
//!   stack is created): parameter `ArtifactBucket` names it, and when left empty the
//!   conventional `nimbus-<service>-<stage>-<account>-<region>` is used;
//! - a bucket's notification configuration is a property of the bucket, which then depends on
//!   the Lambda permissions S3 checks (and the permissions name the bucket by its deterministic
//!   ARN rather than a `Ref`, which would be a cycle);
//! - property spellings follow CloudFormation (`LogGroupName` for `logGroupName`, tags as lists,
//!   SQS attributes as typed properties, a Scheduler `Input` and a filter `Pattern` as strings);
//! - buckets, tables and secrets get `DeletionPolicy` and `UpdateReplacePolicy` `Retain`;
//! - a secret is an `AWS::SecretsManager::Secret` without `SecretString` or
//!   `GenerateSecretString`: its value is set with `nimbus secret set -p aws`, never here;
//! - a resource that already exists (`existing.aws`) is not declared: references to it are its
//!   literal ARN, name or queue URL, and the stream of an existing table a function listens to
//!   is a parameter, `<Name>ExistingStreamArn` (CloudFormation cannot read another stack's or
//!   an unmanaged table's stream);
//! - `http.domain` is an `AWS::ApiGatewayV2::DomainName` and `ApiMapping`, with an output giving
//!   the regional domain name the DNS record points at.
//!
//! The same graph, build and settings always give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_engine::NativeResource;
use nimbus_engine::resource::{as_reference, references};
use nimbus_graph::AppGraph;
use nimbus_package::BuildManifest;
use serde_json::{Map, Value, json};

use crate::error::AwsError;
use crate::kinds;
use crate::lower::{AwsSettings, Packages, lower_in};
use crate::names::Scope;

/// The parameter that names the bucket holding the packages.
const ARTIFACT_BUCKET: &str = "ArtifactBucket";
/// True when [`ARTIFACT_BUCKET`] is left empty.
const CONVENTIONAL_BUCKET: &str = "UseConventionalArtifactBucket";

/// Placeholder of a pseudo parameter inside lowered strings, between private-use characters
/// that names and ARNs never contain (a user value holding one would just be substituted).
fn pseudo(name: &str) -> String {
    format!("\u{E000}{name}\u{E001}")
}

fn placeholder_scope() -> Scope {
    Scope {
        partition: pseudo("Partition"),
        region: pseudo("Region"),
        account: pseudo("AccountId"),
    }
}

/// The CloudFormation template (JSON, pretty, ending with a newline) of `graph` built as `build`.
pub fn template(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &AwsSettings,
) -> Result<String, AwsError> {
    let conventional = AwsSettings {
        artifact_bucket: String::new(),
        ..settings.clone()
    };
    let resources = lower_in(
        graph,
        build,
        &conventional,
        &placeholder_scope(),
        Packages::Node,
    )?;
    let doc = Converter::new(&resources).document(graph, settings);
    let mut text = serde_json::to_string_pretty(&doc).expect("a template serializes");
    text.push('\n');
    Ok(text)
}

/// The CloudFormation type of a kind (`None`: not a resource of the template).
pub fn cfn_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        kinds::ROLE => "AWS::IAM::Role",
        kinds::ROLE_POLICY => "AWS::IAM::RolePolicy",
        kinds::LOG_GROUP => "AWS::Logs::LogGroup",
        kinds::FUNCTION => "AWS::Lambda::Function",
        kinds::PERMISSION => "AWS::Lambda::Permission",
        kinds::API => "AWS::ApiGatewayV2::Api",
        kinds::AUTHORIZER => "AWS::ApiGatewayV2::Authorizer",
        kinds::INTEGRATION => "AWS::ApiGatewayV2::Integration",
        kinds::ROUTE => "AWS::ApiGatewayV2::Route",
        kinds::STAGE => "AWS::ApiGatewayV2::Stage",
        kinds::SCHEDULE => "AWS::Scheduler::Schedule",
        kinds::QUEUE => "AWS::SQS::Queue",
        kinds::EVENT_SOURCE_MAPPING => "AWS::Lambda::EventSourceMapping",
        kinds::TOPIC => "AWS::SNS::Topic",
        kinds::SUBSCRIPTION => "AWS::SNS::Subscription",
        kinds::BUCKET => "AWS::S3::Bucket",
        kinds::TABLE => "AWS::DynamoDB::Table",
        kinds::SECRET => "AWS::SecretsManager::Secret",
        kinds::DOMAIN_NAME => "AWS::ApiGatewayV2::DomainName",
        kinds::API_MAPPING => "AWS::ApiGatewayV2::ApiMapping",
        _ => return None,
    })
}

/// `PlaceOrder` from `place-order`, `Http0` from `http/0`.
fn pascal(text: &str) -> String {
    crate::lower::pascal(text)
}

/// Maps native resources (ids, references, properties) to template resources.
struct Converter<'a> {
    by_id: BTreeMap<&'a str, &'a NativeResource>,
    logical: BTreeMap<&'a str, String>,
    resources: &'a [NativeResource],
}

impl<'a> Converter<'a> {
    fn new(resources: &'a [NativeResource]) -> Self {
        let by_id = resources.iter().map(|r| (r.id.as_str(), r)).collect();
        // `aws.lambda.function/place-order` → `PlaceOrderFunction`.
        let mut logical: BTreeMap<&str, String> = resources
            .iter()
            .map(|r| {
                let (kind, name) = r.id.split_once('/').unwrap_or((&r.id, ""));
                let suffix = pascal(kind.rsplit('.').next().unwrap_or(kind));
                (r.id.as_str(), format!("{}{suffix}", pascal(name)))
            })
            .collect();
        // Distinct names can meet in one logical id (`a-b` and `ab` differ only in case, which
        // CloudFormation may not tell apart): then each gets a hash of its id.
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for l in logical.values() {
            *count.entry(l.to_ascii_lowercase()).or_default() += 1;
        }
        for (id, l) in logical.iter_mut() {
            if count[&l.to_ascii_lowercase()] > 1 {
                l.push_str(&crate::names::short_hash(id).to_ascii_uppercase());
            }
        }
        Converter {
            by_id,
            logical,
            resources,
        }
    }

    fn document(&self, graph: &AppGraph, settings: &AwsSettings) -> Value {
        let mut resources: BTreeMap<String, Value> = BTreeMap::new();
        for r in self.resources {
            if let Some(entry) = self.resource(r) {
                resources.insert(self.logical[r.id.as_str()].clone(), entry);
            }
        }
        let mut doc = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": format!(
                "Nimbus app {} (stage {}), generated by `nimbus build -p aws`; do not edit",
                graph.service, graph.stage
            ),
        });
        let has_code = self.resources.iter().any(|r| r.kind == kinds::FUNCTION);
        if has_code {
            doc["Parameters"] = json!({
                ARTIFACT_BUCKET: {
                    "Type": "String",
                    "Default": settings.artifact_bucket,
                    "AllowedPattern": "^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                    "Description": "The S3 bucket holding the function packages (uploaded before the stack is deployed); empty for the conventional nimbus-<service>-<stage>-<account>-<region>",
                },
            });
            doc["Conditions"] = json!({
                CONVENTIONAL_BUCKET: { "Fn::Equals": [{ "Ref": ARTIFACT_BUCKET }, ""] },
            });
        }
        // The stream of a table the app does not own is not in the template: a parameter.
        for (id, param) in self.stream_parameters() {
            let r = self.by_id[id];
            let params = doc
                .as_object_mut()
                .expect("an object")
                .entry("Parameters")
                .or_insert_with(|| json!({}));
            params[param.as_str()] = json!({
                "Type": "String",
                "AllowedPattern": "^arn:[a-z-]+:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[^/]+/stream/.+$",
                "Description": format!(
                    "The stream ARN (LatestStreamArn) of the existing table {}; its stream must be enabled",
                    r.properties["Arn"].as_str().unwrap_or_default()
                ),
            });
        }
        doc["Resources"] = Value::Object(resources.into_iter().collect());
        let mut outputs = Map::new();
        for r in self.resources {
            let l = &self.logical[r.id.as_str()];
            let (name, value, what) = match r.kind.as_str() {
                kinds::API => (
                    format!("{l}Endpoint"),
                    json!({ "Fn::GetAtt": [l, "ApiEndpoint"] }),
                    "The URL of the HTTP API".to_string(),
                ),
                kinds::DOMAIN_NAME => (
                    format!("{l}Target"),
                    json!({ "Fn::GetAtt": [l, "RegionalDomainName"] }),
                    format!(
                        "The target of the CNAME record to create for {}",
                        r.physical_name.as_deref().unwrap_or_default()
                    ),
                ),
                kinds::FUNCTION => (
                    format!("{l}Arn"),
                    json!({ "Fn::GetAtt": [l, "Arn"] }),
                    format!(
                        "The ARN of function {}",
                        r.id.split_once('/').map_or("", |x| x.1)
                    ),
                ),
                _ => continue,
            };
            outputs.insert(name, json!({ "Description": what, "Value": value }));
        }
        if !outputs.is_empty() {
            doc["Outputs"] = Value::Object(outputs);
        }
        doc
    }

    /// The template entry of one native resource, or `None` when it has none of its own.
    fn resource(&self, r: &NativeResource) -> Option<Value> {
        let cfn = cfn_type(&r.kind)?;
        let mut props = self.properties(r);
        let mut depends: BTreeSet<String> = r.depends_on.iter().cloned().collect();
        if r.kind == kinds::BUCKET {
            // The bucket's notifications live in the bucket.
            let name = r.id.split_once('/').map_or("", |(_, name)| name);
            let notification = self
                .by_id
                .get(crate::lower::id(kinds::BUCKET_NOTIFICATION, name).as_str());
            if let Some(n) = notification {
                props.insert(
                    "NotificationConfiguration".into(),
                    self.notification(&n.properties["NotificationConfiguration"]),
                );
                depends.extend(n.depends_on.iter().cloned());
            }
        }
        let props = Value::Object(props);
        // Dependencies the properties already imply are left to CloudFormation.
        let implied: BTreeSet<String> = references(&r.properties)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let depends: Vec<&String> = depends
            .iter()
            .filter(|d| !implied.contains(*d))
            .filter(|d| {
                self.by_id
                    .get(d.as_str())
                    .is_some_and(|t| cfn_type(&t.kind).is_some())
            })
            .map(|d| &self.logical[d.as_str()])
            .collect();
        let mut entry = json!({ "Type": cfn });
        if !depends.is_empty() {
            let mut depends: Vec<&String> = depends;
            depends.sort();
            entry["DependsOn"] = json!(depends);
        }
        if r.retain_data {
            entry["DeletionPolicy"] = json!("Retain");
            entry["UpdateReplacePolicy"] = json!("Retain");
        }
        entry["Properties"] = props;
        Some(entry)
    }

    /// The CloudFormation properties of a resource.
    fn properties(&self, r: &NativeResource) -> Map<String, Value> {
        let p = self.value(&r.properties);
        let p = p.as_object().cloned().unwrap_or_default();
        let get = |k: &str| p.get(k).cloned();
        let mut out = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                out.insert(k.to_string(), v);
            }
        };
        match r.kind.as_str() {
            kinds::LOG_GROUP => {
                put("LogGroupName", get("logGroupName"));
                put("RetentionInDays", get("retentionInDays"));
                put("Tags", get("tags").map(tag_list));
            }
            kinds::FUNCTION => {
                for (k, v) in &p {
                    if k == "Tags" {
                        put("Tags", Some(tag_list(v.clone())));
                    } else {
                        put(k, Some(v.clone()));
                    }
                }
            }
            kinds::PERMISSION => {
                for k in [
                    "Action",
                    "FunctionName",
                    "Principal",
                    "SourceArn",
                    "SourceAccount",
                ] {
                    put(k, get(k));
                }
            }
            kinds::SCHEDULE => {
                for (k, v) in &p {
                    let mut v = v.clone();
                    if k == "Target"
                        && let Some(input) = v.get_mut("Input")
                    {
                        *input = json!(compact(input));
                    }
                    put(k, Some(v));
                }
            }
            kinds::QUEUE => {
                put("QueueName", get("QueueName"));
                let attributes = get("Attributes").unwrap_or_default();
                for (k, v) in attributes.as_object().into_iter().flatten() {
                    let typed = match (k.as_str(), v.as_str()) {
                        ("SqsManagedSseEnabled", Some(s)) => json!(s == "true"),
                        (_, Some(s)) => s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n)),
                        _ => v.clone(),
                    };
                    put(k, Some(typed));
                }
                put("Tags", get("tags").map(tag_list));
            }
            kinds::EVENT_SOURCE_MAPPING => {
                for (k, v) in &p {
                    let mut v = v.clone();
                    if k == "FilterCriteria" {
                        for f in v["Filters"].as_array_mut().into_iter().flatten() {
                            f["Pattern"] = json!(compact(&f["Pattern"]));
                        }
                    }
                    put(k, Some(v));
                }
            }
            kinds::TOPIC => {
                put("TopicName", get("Name"));
                put(
                    "KmsMasterKeyId",
                    get("Attributes").and_then(|a| a.get("KmsMasterKeyId").cloned()),
                );
                put("Tags", get("Tags"));
            }
            kinds::BUCKET => {
                put("BucketName", get("Bucket"));
                put(
                    "BucketEncryption",
                    get("ServerSideEncryptionConfiguration").map(|c| {
                        let rules: Vec<Value> = c["Rules"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|r| {
                                json!({ "ServerSideEncryptionByDefault": r["ApplyServerSideEncryptionByDefault"] })
                            })
                            .collect();
                        json!({ "ServerSideEncryptionConfiguration": rules })
                    }),
                );
                put(
                    "PublicAccessBlockConfiguration",
                    get("PublicAccessBlockConfiguration"),
                );
                put("VersioningConfiguration", get("VersioningConfiguration"));
                put("Tags", get("Tagging").map(|t| t["TagSet"].clone()));
            }
            kinds::TABLE => {
                for (k, v) in &p {
                    if k == "StreamSpecification" {
                        if v["StreamEnabled"] == json!(true) {
                            put(k, Some(json!({ "StreamViewType": v["StreamViewType"] })));
                        }
                    } else {
                        put(k, Some(v.clone()));
                    }
                }
            }
            // Same names as the API.
            _ => {
                for (k, v) in &p {
                    if k != "StatementId" {
                        put(k, Some(v.clone()));
                    }
                }
            }
        }
        out
    }

    /// A bucket's `NotificationConfiguration` from the API's: one entry per event.
    fn notification(&self, api: &Value) -> Value {
        let api = self.value(api);
        let mut configs = Vec::new();
        for c in api["LambdaFunctionConfigurations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for event in c["Events"].as_array().into_iter().flatten() {
                let mut entry = json!({ "Event": event, "Function": c["LambdaFunctionArn"] });
                if let Some(rules) = c.pointer("/Filter/Key/FilterRules") {
                    entry["Filter"] = json!({ "S3Key": { "Rules": rules } });
                }
                configs.push(entry);
            }
        }
        json!({ "LambdaConfigurations": configs })
    }

    /// `v` with references as intrinsic functions and placeholders as `Fn::Sub`.
    fn value(&self, v: &Value) -> Value {
        if let Some((id, output)) = as_reference(v) {
            return self.intrinsic(id, output);
        }
        match v {
            Value::String(s) => sub(s),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, i)| (k.clone(), self.value(i)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The parameters that stand for the streams of existing tables, by the table's id.
    fn stream_parameters(&self) -> BTreeMap<&str, String> {
        self.resources
            .iter()
            .flat_map(|r| references(&r.properties))
            .filter(|(id, output)| {
                output == "stream_arn"
                    && self
                        .by_id
                        .get(id.as_str())
                        .is_some_and(|t| t.kind == kinds::EXISTING)
            })
            .map(|(id, _)| {
                let key = self.by_id[id.as_str()].id.as_str();
                (key, format!("{}StreamArn", self.logical[key]))
            })
            .collect()
    }

    /// The intrinsic function that gives output `output` of resource `id`.
    fn intrinsic(&self, id: &str, output: &str) -> Value {
        let target = self.by_id[id];
        let l = self.logical[id].as_str();
        if target.kind == kinds::EXISTING {
            // Not in the template: what the ARN says, or a parameter for a stream.
            return match output {
                "stream_arn" => json!({ "Ref": format!("{l}StreamArn") }),
                "name" => target.properties["Name"].clone(),
                "url" => target.properties["Url"].clone(),
                _ => target.properties["Arn"].clone(),
            };
        }
        let get_att = |attribute: &str| json!({ "Fn::GetAtt": [l, attribute] });
        let reference = json!({ "Ref": l });
        match (target.kind.as_str(), output) {
            (kinds::DEPLOYMENT_BUCKET, _) => {
                let name = target.physical_name.as_deref().unwrap_or_default();
                json!({ "Fn::If": [CONVENTIONAL_BUCKET, sub(name), { "Ref": ARTIFACT_BUCKET }] })
            }
            (kinds::INTEGRATION, "target") => {
                json!({ "Fn::Sub": format!("integrations/${{{l}}}") })
            }
            (kinds::ROUTE, "source_arn") => {
                let api = as_reference(&target.properties["ApiId"]).map(|(api, _)| api);
                let api = api.map(|a| self.logical[a].as_str()).unwrap_or_default();
                let key = target.properties["RouteKey"].as_str().unwrap_or_default();
                json!({ "Fn::Sub": format!(
                    "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}{}",
                    crate::lower::route_arn_suffix(key)
                ) })
            }
            (kinds::QUEUE, "name") => get_att("QueueName"),
            // A secret's `Ref` is its ARN (its `Id` attribute too).
            (kinds::QUEUE, "url")
            | (kinds::TOPIC, "arn")
            | (kinds::SUBSCRIPTION, "arn")
            | (kinds::SECRET, "arn") => reference,
            (kinds::TABLE, "stream_arn") => get_att("StreamArn"),
            (kinds::API, "endpoint") => get_att("ApiEndpoint"),
            (kinds::DOMAIN_NAME, "target") => get_att("RegionalDomainName"),
            (kinds::DOMAIN_NAME, "zone_id") => get_att("RegionalHostedZoneId"),
            (kinds::DOMAIN_NAME, "name") => reference,
            (_, "arn") => get_att("Arn"),
            _ => reference,
        }
    }
}

/// A string, or an `Fn::Sub` of it when it holds pseudo-parameter placeholders.
fn sub(s: &str) -> Value {
    if !s.contains('\u{E000}') {
        return json!(s);
    }
    for name in ["Partition", "Region", "AccountId"] {
        if s == pseudo(name) {
            return json!({ "Ref": format!("AWS::{name}") });
        }
    }
    let mut text = s.replace("${", "${!");
    for name in ["Partition", "Region", "AccountId"] {
        text = text.replace(&pseudo(name), &format!("${{AWS::{name}}}"));
    }
    json!({ "Fn::Sub": text })
}

/// `{"k": "v"}` → `[{"Key": "k", "Value": "v"}]`.
fn tag_list(map: Value) -> Value {
    Value::Array(
        map.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// Compact JSON text of a value.
fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("json")
}
