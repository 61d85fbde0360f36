//! The native resource kinds of the AWS provider and the outputs each one reports.
//!
//! Properties are the AWS API request of the call that creates the object, so the driver can
//! pass them through; where one object takes several calls, the extra properties are the
//! request bodies of those calls, named as in the API. One rule bends the API shape: a parameter
//! the API takes as a JSON-encoded *string* (IAM policy documents, an SQS `RedrivePolicy`, a
//! Scheduler target `Input`, an event source mapping filter `Pattern`) is given as the JSON value
//! itself, so that references inside it can be resolved; the driver encodes it (compact JSON)
//! after resolving references. Values `{"$ref": id, "output": name}` are references
//! ([`nimbus_engine::reference`]) to the outputs listed in [`OUTPUTS`].
//!
//! | kind | API call(s) | key properties | outputs | replace on |
//! |---|---|---|---|---|
//! | `aws.s3.deployment_bucket` | CreateBucket, PutPublicAccessBlock, PutBucketEncryption | `Bucket`, `CreateBucketConfiguration` (outside us-east-1), `PublicAccessBlockConfiguration`, `ServerSideEncryptionConfiguration` | `name`, `arn` | `Bucket` |
//! | `aws.iam.role` | CreateRole | `RoleName`, `AssumeRolePolicyDocument`, `Description`, `Tags` | `arn`, `name` | `RoleName` |
//! | `aws.iam.role_policy` | PutRolePolicy | `RoleName`, `PolicyName`, `PolicyDocument` | `name` | `RoleName`, `PolicyName` |
//! | `aws.logs.log_group` | CreateLogGroup, PutRetentionPolicy | `logGroupName`, `retentionInDays`, `tags` | `arn` (`…:log-group:NAME:*`), `name` | `logGroupName` |
//! | `aws.lambda.function` | CreateFunction, PutFunctionConcurrency | `FunctionName`, `Runtime`, `Handler`, `Role`, `Code.S3Bucket/S3Key`, `MemorySize`, `Timeout`, `Environment.Variables`, `Architectures`, `ReservedConcurrentExecutions`, `VpcConfig.SubnetIds/SecurityGroupIds`, `Tags` | `arn`, `name` | `FunctionName` |
//! | `aws.lambda.permission` | AddPermission | `FunctionName`, `StatementId`, `Action`, `Principal`, `SourceArn`, `SourceAccount` | — | all |
//! | `aws.apigatewayv2.api` | CreateApi (UpdateApi, DeleteCorsConfiguration) | `Name`, `ProtocolType` (`HTTP`), `CorsConfiguration` (`AllowOrigins`, `AllowMethods`, `AllowHeaders`, `ExposeHeaders`, `AllowCredentials`, `MaxAge`), `Tags` | `id`, `endpoint` | `ProtocolType` |
//! | `aws.apigatewayv2.authorizer` | CreateAuthorizer | `ApiId`, `Name`, `AuthorizerType` (`JWT`), `IdentitySource`, `JwtConfiguration` | `id` | `ApiId` |
//! | `aws.apigatewayv2.integration` | CreateIntegration | `ApiId`, `IntegrationType` (`AWS_PROXY`), `IntegrationUri`, `PayloadFormatVersion` (`2.0`), `TimeoutInMillis` | `id`, `target` (`integrations/{id}`) | `ApiId` |
//! | `aws.apigatewayv2.route` | CreateRoute | `ApiId`, `RouteKey` (`POST /orders/{id}`), `Target`, `AuthorizationType`, `AuthorizerId` | `id`, `source_arn` (`arn:…:execute-api:{region}:{account}:{api}/*/{METHOD}/{path, parameters as *}`) | `ApiId` |
//! | `aws.apigatewayv2.stage` | CreateStage | `ApiId`, `StageName` (`$default`), `AutoDeploy`, `AccessLogSettings`, `Tags` | `name` | `ApiId`, `StageName` |
//! | `aws.scheduler.schedule` | CreateSchedule | `Name`, `GroupName`, `ScheduleExpression`, `ScheduleExpressionTimezone`, `FlexibleTimeWindow`, `State`, `Target.Arn/RoleArn/Input/RetryPolicy` | `arn` | `Name`, `GroupName` |
//! | `aws.sqs.queue` | CreateQueue | `QueueName`, `Attributes` (`VisibilityTimeout`, `MessageRetentionPeriod`, `SqsManagedSseEnabled`, `RedrivePolicy`), `tags` | `url`, `arn`, `name` | `QueueName` |
//! | `aws.lambda.event_source_mapping` | CreateEventSourceMapping | `FunctionName`, `EventSourceArn`, `BatchSize`, `MaximumBatchingWindowInSeconds`, `StartingPosition` (streams), `FunctionResponseTypes` (`ReportBatchItemFailures`), `FilterCriteria`, `Enabled` | `uuid` | `EventSourceArn`, `StartingPosition` |
//! | `aws.sns.topic` | CreateTopic | `Name`, `Attributes.KmsMasterKeyId`, `Tags` | `arn` | `Name` |
//! | `aws.sns.subscription` | Subscribe | `TopicArn`, `Protocol` (`lambda`), `Endpoint` | `arn` | all |
//! | `aws.s3.bucket` | CreateBucket, PutPublicAccessBlock, PutBucketEncryption, PutBucketVersioning, PutBucketTagging | `Bucket`, `CreateBucketConfiguration`, `PublicAccessBlockConfiguration`, `ServerSideEncryptionConfiguration`, `VersioningConfiguration`, `Tagging` | `name`, `arn` | `Bucket` |
//! | `aws.s3.bucket_notification` | PutBucketNotificationConfiguration | `Bucket`, `NotificationConfiguration.LambdaFunctionConfigurations` | — | `Bucket` |
//! | `aws.secretsmanager.secret` | CreateSecret (no value; adopting one `nimbus secret set` made: DescribeSecret, TagResource), UpdateSecret, TagResource/UntagResource, DeleteSecret (`ForceDeleteWithoutRecovery`) | `Name`, `Description`, `Tags` | `arn`, `name` | `Name` |
//! | `aws.dynamodb.table` | CreateTable, UpdateContinuousBackups | `TableName`, `AttributeDefinitions`, `KeySchema`, `BillingMode` (`PAY_PER_REQUEST`), `StreamSpecification`, `Tags`, `PointInTimeRecoverySpecification` | `name`, `arn`, `stream_arn` | `TableName`, `KeySchema`, `AttributeDefinitions` |
//! | `aws.existing` | DescribeTable / GetQueueUrl / GetTopicAttributes / HeadBucket (reads only) | `Kind` (`table`, `queue`, `topic`, `bucket`), `Arn`, `Name`, `Url` (queues), `Stream` (a table trigger needs its stream) | `name`, `arn`, `url`, `stream_arn` | `Arn` |
//! | `aws.apigatewayv2.domain_name` | CreateDomainName | `DomainName`, `DomainNameConfigurations` (`CertificateArn`, `EndpointType` `REGIONAL`, `SecurityPolicy` `TLS_1_2`), `Tags` | `name`, `target` (the regional domain name to CNAME to), `zone_id` | `DomainName` |
//! | `aws.apigatewayv2.api_mapping` | CreateApiMapping | `DomainName`, `ApiId`, `Stage` | `id` | `DomainName` |
//!
//! `aws.existing` stands for a resource of the manifest that already exists (`existing.aws`):
//! the driver never writes to it, a delete only forgets it, and plans show it as `existing (not
//! managed)` ([`nimbus_engine::resource::is_external`]).
//!
//! Buckets, tables and secrets are `retain_data` (a secret holds data when it has a current
//! value). The deployment bucket is not one of the deployed
//! resources: a deploy creates it before the engine runs (it holds the engine's state and lock
//! as well as the packages), and `remove` empties and deletes it last, when nothing was kept.
//! Only the CloudFormation export has an `aws.s3.deployment_bucket` node, which becomes its
//! artifact-bucket parameter.

/// The deployment bucket the packages are uploaded to.
pub const DEPLOYMENT_BUCKET: &str = "aws.s3.deployment_bucket";
/// An IAM role.
pub const ROLE: &str = "aws.iam.role";
/// An inline policy of a role.
pub const ROLE_POLICY: &str = "aws.iam.role_policy";
/// A CloudWatch Logs log group.
pub const LOG_GROUP: &str = "aws.logs.log_group";
/// A Lambda function.
pub const FUNCTION: &str = "aws.lambda.function";
/// A statement of a function's resource policy.
pub const PERMISSION: &str = "aws.lambda.permission";
/// An API Gateway HTTP API.
pub const API: &str = "aws.apigatewayv2.api";
/// A JWT authorizer of the HTTP API.
pub const AUTHORIZER: &str = "aws.apigatewayv2.authorizer";
/// A Lambda proxy integration.
pub const INTEGRATION: &str = "aws.apigatewayv2.integration";
/// A route.
pub const ROUTE: &str = "aws.apigatewayv2.route";
/// A stage.
pub const STAGE: &str = "aws.apigatewayv2.stage";
/// An EventBridge Scheduler schedule.
pub const SCHEDULE: &str = "aws.scheduler.schedule";
/// An SQS queue.
pub const QUEUE: &str = "aws.sqs.queue";
/// A Lambda event source mapping (SQS, DynamoDB Streams).
pub const EVENT_SOURCE_MAPPING: &str = "aws.lambda.event_source_mapping";
/// An SNS topic.
pub const TOPIC: &str = "aws.sns.topic";
/// An SNS subscription.
pub const SUBSCRIPTION: &str = "aws.sns.subscription";
/// An S3 bucket.
pub const BUCKET: &str = "aws.s3.bucket";
/// The notification configuration of a bucket (all its function triggers).
pub const BUCKET_NOTIFICATION: &str = "aws.s3.bucket_notification";
/// A DynamoDB table.
pub const TABLE: &str = "aws.dynamodb.table";

/// A Secrets Manager secret (its versions hold the value; a deployment never writes one).
pub const SECRET: &str = "aws.secretsmanager.secret";
/// A resource that already exists, used but not managed.
pub const EXISTING: &str = "aws.existing";
/// An API Gateway custom domain name.
pub const DOMAIN_NAME: &str = "aws.apigatewayv2.domain_name";
/// The mapping of a custom domain to the HTTP API's stage.
pub const API_MAPPING: &str = "aws.apigatewayv2.api_mapping";

/// Every kind and the outputs its driver reports (what references may name).
pub const OUTPUTS: &[(&str, &[&str])] = &[
    (DEPLOYMENT_BUCKET, &["name", "arn"]),
    (ROLE, &["arn", "name"]),
    (ROLE_POLICY, &["name"]),
    (LOG_GROUP, &["arn", "name"]),
    (FUNCTION, &["arn", "name"]),
    (PERMISSION, &[]),
    (API, &["id", "endpoint"]),
    (AUTHORIZER, &["id"]),
    (INTEGRATION, &["id", "target"]),
    (ROUTE, &["id", "source_arn"]),
    (STAGE, &["name"]),
    (SCHEDULE, &["arn"]),
    (QUEUE, &["url", "arn", "name"]),
    (EVENT_SOURCE_MAPPING, &["uuid"]),
    (TOPIC, &["arn"]),
    (SUBSCRIPTION, &["arn"]),
    (BUCKET, &["name", "arn"]),
    (BUCKET_NOTIFICATION, &[]),
    (TABLE, &["name", "arn", "stream_arn"]),
    (SECRET, &["arn", "name"]),
    (EXISTING, &["name", "arn", "url", "stream_arn"]),
    (DOMAIN_NAME, &["name", "target", "zone_id"]),
    (API_MAPPING, &["id"]),
];

/// The outputs of `kind`, if it is one of ours.
pub fn outputs(kind: &str) -> Option<&'static [&'static str]> {
    OUTPUTS.iter().find(|(k, _)| *k == kind).map(|(_, o)| *o)
}
