//! The native resource kinds of the GCP provider and the outputs each one reports.
//!
//! Properties are the REST representation of the object as the Google API takes it (camelCase
//! field names, `name` the full resource path), so the driver can send them as they are. The
//! few values the API takes encoded are given as JSON so that references inside them can be
//! resolved first: an API Gateway OpenAPI document (`openapiDocuments[].document.contents`, which
//! the API takes base64-encoded) is the document itself, and the driver encodes it after resolving
//! references. Values `{"$ref": id, "output": name}` are references
//! ([`nimbus_engine::reference`]) to the outputs listed in [`OUTPUTS`].
//!
//! | kind | API call(s) | key properties | outputs | replace on |
//! |---|---|---|---|---|
//! | `gcp.iam.service_account` | iam v1 `serviceAccounts.create` | `project`, `accountId`, `displayName`, `description` | `email`, `member` (`serviceAccount:EMAIL`), `name` | `project`, `accountId` |
//! | `gcp.project.iam_member` | cloudresourcemanager v1 `projects.getIamPolicy` + `setIamPolicy` (read-modify-write with the etag) | `project`, `role`, `member`, `condition` (`title`, `expression`) | — | all |
//! | `gcp.pubsub.topic` | pubsub v1 `topics.create` | `name`, `labels`, `messageRetentionDuration` | `name` (`projects/P/topics/T`) | `name` |
//! | `gcp.pubsub.subscription` | pubsub v1 `subscriptions.create`, `patch` | `name`, `topic`, `ackDeadlineSeconds`, `messageRetentionDuration`, `expirationPolicy`, `retryPolicy`, `deadLetterPolicy`, `pushConfig.pushEndpoint/oidcToken`, `labels` | `name` | `name`, `topic` |
//! | `gcp.pubsub.topic_iam_member` | pubsub v1 `topics.getIamPolicy` + `setIamPolicy` | `topic`, `role`, `member` | — | all |
//! | `gcp.pubsub.subscription_iam_member` | pubsub v1 `subscriptions.getIamPolicy` + `setIamPolicy` | `subscription`, `role`, `member` | — | all |
//! | `gcp.storage.bucket` | storage v1 `buckets.insert`, `patch` | `name`, `project`, `location`, `storageClass`, `iamConfiguration` (uniform access on, public access prevention `enforced`), `versioning`, `labels` | `name` | `name`, `project`, `location` |
//! | `gcp.storage.bucket_iam_member` | storage v1 `buckets.getIamPolicy` + `setIamPolicy` | `bucket`, `role`, `member` | — | all |
//! | `gcp.firestore.collection` | firestore v1 `databases.get` (a collection exists by its documents; create checks the database) | `database` (`projects/P/databases/D`), `collection` | `collection`, `path` | all |
//! | `gcp.functions.function` | cloudfunctions v2 `functions.create`, `patch` (with `updateMask`), `delete`: long-running operations | `name`, `description`, `environment` (`GEN_2`), `labels`, `buildConfig.runtime/entryPoint/source.storageSource`, `serviceConfig.availableMemory/timeoutSeconds/maxInstanceCount/environmentVariables/serviceAccountEmail/ingressSettings/allTrafficOnLatestRevision` | `name`, `uri`, `service` (the Cloud Run service's id), `service_path` (its full name) | `name` |
//! | `gcp.run.service_iam_member` | run v2 `services.getIamPolicy` + `setIamPolicy` | `service` (`projects/P/locations/R/services/S`), `role`, `member` | — | all |
//! | `gcp.eventarc.trigger` | eventarc v1 `triggers.create`, `patch`, `delete`: long-running operations | `name`, `eventFilters`, `destination.cloudRun`, `serviceAccount`, `transport.pubsub.topic`, `eventDataContentType`, `labels` | `name` | `name`, `transport`, `eventDataContentType` |
//! | `gcp.scheduler.job` | cloudscheduler v1 `jobs.create`, `patch`, `delete` | `name`, `description`, `schedule`, `timeZone`, `attemptDeadline`, `httpTarget.uri/httpMethod/oidcToken` | `name` | `name` |
//! | `gcp.secretmanager.secret` | secretmanager v1 `secrets.create` (adopting one `nimbus secret set` made: `patch` of its labels), `patch`, `delete` (the values are versions added by `nimbus secret set`, never by a deployment) | `name` (`projects/P/secrets/S`), `replication.automatic`, `labels` | `name`, `secret_id` | `name`, `replication` |
//! | `gcp.secretmanager.secret_iam_member` | secretmanager v1 `secrets.getIamPolicy` + `setIamPolicy` | `secret`, `role`, `member` | — | all |
//! | `gcp.apigateway.api` | apigateway v1 `apis.create`, `patch`, `delete`: long-running operations | `name`, `displayName`, `labels` | `name`, `managedService` | `name` |
//! | `gcp.apigateway.config` | apigateway v1 `apis.configs.create`, `delete` (configs are immutable) | `name`, `displayName`, `gatewayServiceAccount`, `openapiDocuments[].document.path/contents`, `labels` | `name` | all |
//! | `gcp.existing` | reads only: pubsub v1 `topics.get` / `subscriptions.get`, storage v1 `buckets.get`, firestore v1 `documents.list` (`pageSize=1`) | `kind` (`table`, `queue`, `topic`, `bucket`), `resource` (its full name, as in the manifest) | `name` (topic, bucket; a queue's topic), `topic`, `subscription`, `collection`, `database`, `path` | all |
//! | `gcp.apigateway.gateway` | apigateway v1 `gateways.create`, `patch`, `delete` | `name`, `apiConfig`, `displayName`, `labels` | `name`, `url` (`https://` + the default hostname) | `name` |
//!
//! `gcp.existing` stands for a resource of the manifest that already exists (`existing.gcp`):
//! the driver never writes to it, a delete only forgets it, and plans show it as `existing (not
//! managed)` ([`nimbus_engine::resource::is_external`]). What Nimbus adds around it (role
//! bindings of its own members, Eventarc triggers) are resources of their own.
//!
//! Buckets and collections are `retain_data`: `remove` keeps them while they hold objects or
//! documents. The deployment bucket that holds packages and state is not a resource of the
//! deployment (see [`crate::storage`]).

/// A service account.
pub const SERVICE_ACCOUNT: &str = "gcp.iam.service_account";
/// One member of one role on the project (a binding, not the whole policy).
pub const PROJECT_IAM_MEMBER: &str = "gcp.project.iam_member";
/// A Pub/Sub topic.
pub const TOPIC: &str = "gcp.pubsub.topic";
/// A Pub/Sub subscription.
pub const SUBSCRIPTION: &str = "gcp.pubsub.subscription";
/// One member of one role on a topic.
pub const TOPIC_IAM_MEMBER: &str = "gcp.pubsub.topic_iam_member";
/// One member of one role on a subscription.
pub const SUBSCRIPTION_IAM_MEMBER: &str = "gcp.pubsub.subscription_iam_member";
/// A Cloud Storage bucket.
pub const BUCKET: &str = "gcp.storage.bucket";
/// One member of one role on a bucket.
pub const BUCKET_IAM_MEMBER: &str = "gcp.storage.bucket_iam_member";
/// A Firestore collection.
pub const COLLECTION: &str = "gcp.firestore.collection";
/// A Cloud Functions (2nd gen) function.
pub const FUNCTION: &str = "gcp.functions.function";
/// One member of one role on a Cloud Run service (a function's invoker).
pub const SERVICE_IAM_MEMBER: &str = "gcp.run.service_iam_member";
/// An Eventarc trigger.
pub const EVENTARC_TRIGGER: &str = "gcp.eventarc.trigger";
/// A Cloud Scheduler job.
pub const SCHEDULER_JOB: &str = "gcp.scheduler.job";
/// A Secret Manager secret (its versions hold the values; a deployment never writes one).
pub const SECRET: &str = "gcp.secretmanager.secret";
/// One member of one role on a secret (a function's accessor grant).
pub const SECRET_IAM_MEMBER: &str = "gcp.secretmanager.secret_iam_member";
/// An API Gateway API.
pub const API: &str = "gcp.apigateway.api";
/// An API Gateway API config (immutable).
pub const API_CONFIG: &str = "gcp.apigateway.config";
/// An API Gateway gateway.
pub const GATEWAY: &str = "gcp.apigateway.gateway";

/// A resource that already exists, used but not managed.
pub const EXISTING: &str = "gcp.existing";

/// Every kind and the outputs its driver reports (what references may name).
pub const OUTPUTS: &[(&str, &[&str])] = &[
    (SERVICE_ACCOUNT, &["email", "member", "name"]),
    (PROJECT_IAM_MEMBER, &[]),
    (TOPIC, &["name"]),
    (SUBSCRIPTION, &["name"]),
    (TOPIC_IAM_MEMBER, &[]),
    (SUBSCRIPTION_IAM_MEMBER, &[]),
    (BUCKET, &["name"]),
    (BUCKET_IAM_MEMBER, &[]),
    (COLLECTION, &["collection", "path"]),
    (FUNCTION, &["name", "uri", "service", "service_path"]),
    (SERVICE_IAM_MEMBER, &[]),
    (EVENTARC_TRIGGER, &["name"]),
    (SCHEDULER_JOB, &["name"]),
    (SECRET, &["name", "secret_id"]),
    (SECRET_IAM_MEMBER, &[]),
    (API, &["name", "managedService"]),
    (API_CONFIG, &["name"]),
    (GATEWAY, &["name", "url"]),
    (
        EXISTING,
        &[
            "name",
            "topic",
            "subscription",
            "collection",
            "database",
            "path",
        ],
    ),
];

/// The outputs of `kind`, if it is one of ours.
pub fn outputs(kind: &str) -> Option<&'static [&'static str]> {
    OUTPUTS.iter().find(|(k, _)| *k == kind).map(|(_, o)| *o)
}

/// The top-level properties of `kind` whose change replaces the object; `None` means all.
pub fn replace_on(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        SERVICE_ACCOUNT => &["project", "accountId"],
        TOPIC => &["name"],
        SUBSCRIPTION => &["name", "topic"],
        BUCKET => &["name", "project", "location"],
        FUNCTION => &["name"],
        EVENTARC_TRIGGER => &["name", "transport", "eventDataContentType"],
        SCHEDULER_JOB => &["name"],
        SECRET => &["name", "replication"],
        API => &["name"],
        GATEWAY => &["name"],
        _ => return None,
    })
}

/// Whether objects of `kind` hold the app's data (kept by `remove` unless forced).
pub fn holds_data(kind: &str) -> bool {
    matches!(kind, BUCKET | COLLECTION)
}
