//! What can go wrong with an app on AWS: lowering it, and deploying and running it.

use thiserror::Error;

/// What can go wrong on AWS: an app that cannot be lowered as it is, or a deploy, plan,
/// remove or other command that failed.
#[derive(Debug, Error)]
pub enum AwsError {
    /// The graph or the build is for another provider.
    #[error("the {what} is for provider `{provider}`, not `aws`")]
    WrongProvider {
        /// `app graph` or `build`.
        what: &'static str,
        /// The provider it is for.
        provider: String,
    },
    /// A function has no package in the build.
    #[error("function `{function}` has no package in the build; run `nimbus build -p aws`")]
    MissingArtifact {
        /// The function.
        function: String,
    },
    /// AWS has no runtime for the function's neutral runtime.
    #[error("function `{function}`: AWS Lambda has no runtime for `{runtime}`")]
    UnsupportedRuntime {
        /// The function.
        function: String,
        /// The neutral runtime.
        runtime: String,
    },
    /// Something the AWS provider does not implement.
    #[error("function `{function}`: {what} is not supported on AWS yet")]
    Unsupported {
        /// The function.
        function: String,
        /// What, e.g. "`api_key` auth on HTTP APIs".
        what: String,
    },
    /// A schedule that EventBridge Scheduler cannot express.
    #[error("function `{function}`: schedule `{expression}`")]
    Schedule {
        /// The function.
        function: String,
        /// The neutral expression.
        expression: String,
        /// Why.
        #[source]
        source: ScheduleProblem,
    },
    /// A queue whose visibility timeout is shorter than its consumer's timeout.
    #[error(
        "queue `{queue}` hides a received message for {visibility_s} s, less than the {timeout_s} s timeout of function `{function}` that consumes it (AWS rejects this)"
    )]
    VisibilityTimeout {
        /// The queue.
        queue: String,
        /// The consumer.
        function: String,
        /// The queue's visibility timeout, seconds.
        visibility_s: u64,
        /// The function's timeout, seconds.
        timeout_s: u64,
    },
    /// An `existing.aws` value that is not the ARN of a resource of its kind.
    #[error("resource `{resource}`: `{arn}` is not the ARN of an existing {kind} (`{shape}`)")]
    ExistingArn {
        /// The neutral resource.
        resource: String,
        /// Its kind.
        kind: String,
        /// The value given.
        arn: String,
        /// The shape expected.
        shape: String,
    },
    /// An existing resource in another region than the deployment's.
    #[error(
        "resource `{resource}` exists in region `{region}`, but the app deploys to `{deployment}`: the functions' clients reach their own region only"
    )]
    ExistingRegion {
        /// The neutral resource.
        resource: String,
        /// The resource's region.
        region: String,
        /// The deployment's region.
        deployment: String,
    },
    /// An existing resource that is missing, or not usable as it is.
    #[error("{0}")]
    Existing(String),
    /// A custom domain without an ACM certificate.
    #[error(
        "`http.domain` `{domain}` needs `certificate.aws`: the ARN of an ACM certificate for it in the deployment's region"
    )]
    DomainCertificate {
        /// The host name.
        domain: String,
    },
    /// A trigger on a bucket Nimbus does not own (its notifications would be replaced).
    #[error(
        "bucket `{bucket}` already exists: a trigger on it would replace its notification configuration; trigger the function from an SNS topic the bucket's owner sends events to"
    )]
    ExistingBucketTrigger {
        /// The bucket.
        bucket: String,
    },
    /// Two bucket triggers whose events and key filters overlap: S3 rejects the configuration.
    #[error(
        "bucket `{bucket}`: the triggers of `{first}` and `{second}` overlap (same event, overlapping prefix and suffix); S3 rejects overlapping notifications"
    )]
    OverlappingNotifications {
        /// The bucket.
        bucket: String,
        /// One function.
        first: String,
        /// The other.
        second: String,
    },
    /// A physical name AWS would reject.
    #[error("invalid AWS name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Two objects of one kind got the same physical name.
    #[error("{kind} name `{name}` is given to both `{first}` and `{second}`; rename one of them")]
    NameClash {
        /// The resource kind.
        kind: String,
        /// The physical name.
        name: String,
        /// One logical id.
        first: String,
        /// The other.
        second: String,
    },
    /// The function's environment would exceed Lambda's 4 KB limit.
    #[error(
        "function `{function}`: its environment would be about {bytes} bytes; Lambda allows 4096 (user variables plus the NIMBUS_* names of the resources it uses)"
    )]
    EnvironmentTooLarge {
        /// The function.
        function: String,
        /// The estimated size.
        bytes: usize,
    },
    /// Secrets that functions read have no value for this stage: nothing was changed.
    #[error("{message}")]
    MissingSecrets {
        /// The neutral names of the secrets without a value.
        missing: Vec<String>,
        /// What is missing, who reads it, and the `nimbus secret set` commands.
        message: String,
    },
    /// A secret value over Secrets Manager's limit (checked before any call).
    #[error(
        "the value of secret `{secret}` is {bytes} bytes; AWS Secrets Manager takes at most 65536"
    )]
    SecretTooLarge {
        /// The neutral name.
        secret: String,
        /// The value's size.
        bytes: usize,
    },
    /// The deploy engine stopped (a lock held, a failed resource, a state it will not
    /// overwrite, …); its error says what and how to go on.
    #[error(transparent)]
    Engine(#[from] nimbus_engine::Error),
    /// An AWS call outside the engine failed (the deployment bucket, a package upload, logs,
    /// invoke).
    #[error("{0}")]
    Call(String),
    /// No usable AWS configuration: credentials, region.
    #[error("{message}")]
    Config {
        /// What is missing and how to provide it.
        message: String,
    },
    /// A package file could not be read.
    #[error("could not read the package `{path}`")]
    Package {
        /// The zip.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A function name that is not in the app.
    #[error("no function `{function}` in the app; the functions are {known}")]
    UnknownFunction {
        /// The name given.
        function: String,
        /// The app's functions, listed.
        known: String,
    },
}

impl From<crate::driver::error::CallError> for AwsError {
    fn from(e: crate::driver::error::CallError) -> Self {
        AwsError::Call(nimbus_engine::DriverError::from(e).message)
    }
}

/// Why a schedule cannot be used.
#[derive(Debug, Error)]
pub enum ScheduleProblem {
    /// It does not parse (the manifest crate validates schedules, so this is unexpected).
    #[error(transparent)]
    Invalid(#[from] nimbus_schedule::ScheduleError),
    /// EventBridge Scheduler cannot express it.
    #[error(transparent)]
    Unsupported(#[from] nimbus_schedule::Unsupported),
}
