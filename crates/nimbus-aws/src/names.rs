//! Deterministic physical names and ARNs.
//!
//! Every AWS object Nimbus creates gets a name computed from the service, the stage and the
//! neutral name, so that an interrupted deploy finds (and adopts) what it already created, and
//! so that the CloudFormation export names things exactly as a direct deploy does.
//!
//! | object | name | AWS limit |
//! |---|---|---|
//! | Lambda function | `{service}-{stage}-{function}` | 64, `[A-Za-z0-9_-]` |
//! | function role | `{service}-{stage}-{function}-{region}-lambda` | 64, IAM roles are global: the region keeps two regions apart |
//! | scheduler role | `{service}-{stage}-{function}-{region}-scheduler` | 64 |
//! | log group | `/aws/lambda/{function name}` | 512 |
//! | SQS queue | `{service}-{stage}-{queue}`, dead letters `…-dlq` | 80, `[A-Za-z0-9_-]` |
//! | SNS topic | `{service}-{stage}-{topic}` | 256 |
//! | DynamoDB table | `{service}-{stage}-{table}` | 255 |
//! | S3 bucket | `{service}-{stage}-{bucket}-{account}-{region}` | 3–63, lowercase, DNS-safe, globally unique |
//! | deployment bucket | `nimbus-{service}-{stage}-{account}-{region}` | same |
//! | schedule | `{service}-{stage}-{function}-schedule-{index}` | 64 |
//! | HTTP API | `{service}-{stage}` | 128 |
//! | Secrets Manager secret | `{service}-{stage}/{secret}` | 512, `[A-Za-z0-9/_+=.@-]` |
//!
//! **Secrets.** Secrets Manager appends `-` and 6 random characters to a secret's name in its
//! ARN, so the ARN is known only once the secret exists: policies and function environments
//! refer to the secret resource's `arn` output (a `Ref` in the CloudFormation export), never to
//! a pattern. The name stays deterministic, so `nimbus secret set` and a deploy meet on it.
//!
//! **Too long.** A name over its limit keeps a prefix and ends with `-` and 8 hex digits of the
//! SHA-256 of the whole name ([`fit`]): still deterministic, still unique.
//!
//! **Buckets** live in one global namespace shared by every AWS account, so their names end with
//! the account id and the region (as CDK's bootstrap bucket does) — readable, unique to the
//! account, and expressible in CloudFormation as `${AWS::AccountId}-${AWS::Region}`. The part
//! before them is fitted to 35 characters whatever the actual region, reserving the longest
//! region name ([`MAX_REGION_LEN`]) and the 12-digit account, so a name never depends on how long
//! the region's name happens to be (and the template computes the same one). Names made of
//! manifest names are lowercase letters, digits and `-` already; names that S3 reserves
//! (`xn--…`, `sthree-…`, `amzn-s3-demo-…`) are rejected. Role names embed the region the same
//! way.

use sha2::{Digest, Sha256};

use crate::error::AwsError;

/// The longest AWS region name (`ap-southeast-5`, `us-isob-east-1` are 14).
pub const MAX_REGION_LEN: usize = 14;
/// An AWS account id is 12 digits.
pub const ACCOUNT_LEN: usize = 12;

/// Longest Lambda function name.
pub const LAMBDA_MAX: usize = 64;
/// Longest IAM role name.
pub const ROLE_MAX: usize = 64;
/// Longest SQS queue name.
pub const SQS_MAX: usize = 80;
/// Longest SNS topic name.
pub const SNS_MAX: usize = 256;
/// Longest DynamoDB table name.
pub const DYNAMODB_MAX: usize = 255;
/// Longest S3 bucket name.
pub const S3_MAX: usize = 63;
/// Longest EventBridge Scheduler schedule name.
pub const SCHEDULE_MAX: usize = 64;
/// Longest API Gateway API name.
pub const API_MAX: usize = 128;
/// Longest Secrets Manager secret name.
pub const SECRET_MAX: usize = 512;

/// Where names and ARNs are made: the partition, region and account. In the CloudFormation
/// export these are placeholders for the pseudo parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The 12-digit account id.
    pub account: String,
}

impl Scope {
    /// The scope of a real region and account (the partition follows from the region).
    pub fn new(region: &str, account: &str) -> Self {
        Scope {
            partition: partition(region).to_string(),
            region: region.to_string(),
            account: account.to_string(),
        }
    }

    /// `arn:{partition}:{service}:{region}:{account}:{resource}`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// An S3 bucket's ARN (no region, no account).
    pub fn bucket_arn(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition)
    }

    /// An EventBridge Scheduler schedule's ARN (schedules in the `default` group).
    pub fn schedule_arn(&self, schedule: &str) -> String {
        self.arn("scheduler", &format!("schedule/default/{schedule}"))
    }
}

/// The partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `full` when it fits in `max` characters, else a prefix of it, `-`, and 8 hex digits of its
/// SHA-256. `full` is ASCII (names are).
pub fn fit(full: &str, max: usize) -> String {
    debug_assert!(full.is_ascii() && max > 9);
    if full.len() <= max {
        return full.to_string();
    }
    let prefix = full[..max - 9].trim_end_matches(['-', '_', '.']);
    format!("{prefix}-{}", short_hash(full))
}

/// The first 8 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn base(service: &str, stage: &str, name: &str) -> String {
    format!("{service}-{stage}-{name}")
}

/// A function's Lambda name.
pub fn function(service: &str, stage: &str, function: &str) -> String {
    fit(&base(service, stage, function), LAMBDA_MAX)
}

/// The execution role of a function.
pub fn function_role(service: &str, stage: &str, function: &str, scope: &Scope) -> String {
    role(&base(service, stage, function), "lambda", scope)
}

/// The role EventBridge Scheduler assumes to invoke a function.
pub fn scheduler_role(service: &str, stage: &str, function: &str, scope: &Scope) -> String {
    role(&base(service, stage, function), "scheduler", scope)
}

fn role(base: &str, suffix: &str, scope: &Scope) -> String {
    let budget = ROLE_MAX - 2 - MAX_REGION_LEN - suffix.len();
    format!("{}-{}-{suffix}", fit(base, budget), scope.region)
}

/// The log group Lambda writes a function's logs to.
pub fn log_group(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// A queue's name.
pub fn queue(service: &str, stage: &str, queue: &str) -> String {
    fit(&base(service, stage, queue), SQS_MAX)
}

/// The dead-letter queue of a queue.
pub fn dead_letter_queue(service: &str, stage: &str, queue: &str) -> String {
    fit(&format!("{}-dlq", base(service, stage, queue)), SQS_MAX)
}

/// A topic's name.
pub fn topic(service: &str, stage: &str, topic: &str) -> String {
    fit(&base(service, stage, topic), SNS_MAX)
}

/// A table's name.
pub fn table(service: &str, stage: &str, table: &str) -> String {
    fit(&base(service, stage, table), DYNAMODB_MAX)
}

/// A bucket's name: see the module docs.
pub fn bucket(service: &str, stage: &str, bucket: &str, scope: &Scope) -> Result<String, AwsError> {
    scoped_bucket(&base(service, stage, bucket), scope)
}

/// The bucket the function packages are uploaded to, one per service and stage.
pub fn deployment_bucket(service: &str, stage: &str, scope: &Scope) -> Result<String, AwsError> {
    scoped_bucket(&format!("nimbus-{service}-{stage}"), scope)
}

fn scoped_bucket(base: &str, scope: &Scope) -> Result<String, AwsError> {
    let budget = S3_MAX - 2 - ACCOUNT_LEN - MAX_REGION_LEN;
    let name = format!("{}-{}-{}", fit(base, budget), scope.account, scope.region);
    for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(reserved) {
            return Err(AwsError::InvalidName {
                name,
                reason: format!("S3 reserves bucket names starting with `{reserved}`"),
            });
        }
    }
    if let Some(c) = base
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(AwsError::InvalidName {
            name,
            reason: format!("S3 bucket names cannot contain `{c}`"),
        });
    }
    Ok(name)
}

/// The key of a package in the deployment bucket: content-addressed, so equal zips share one
/// object, an upload is skipped when the key exists, and a function's code (whose SHA-256
/// Lambda reports) maps back to its key.
pub fn package_key(prefix: &str, sha256: &str) -> String {
    match prefix.trim_matches('/') {
        "" => format!("{sha256}.zip"),
        p => format!("{p}/{sha256}.zip"),
    }
}

/// The name of a schedule trigger, as `_nimbus/function.json` gives it:
/// `trigger:<function>/schedule/<index>` → `<function>-schedule-<index>`.
pub fn schedule_trigger(trigger_id: &str) -> String {
    trigger_id.trim_start_matches("trigger:").replace('/', "-")
}

/// A schedule's EventBridge Scheduler name.
pub fn schedule(service: &str, stage: &str, trigger_id: &str) -> String {
    fit(
        &base(service, stage, &schedule_trigger(trigger_id)),
        SCHEDULE_MAX,
    )
}

/// The HTTP API's name.
pub fn api(service: &str, stage: &str) -> String {
    fit(&format!("{service}-{stage}"), API_MAX)
}

/// A secret's Secrets Manager name: `{service}-{stage}/{secret}`, one per name and stage under
/// the service's prefix (so `nimbus secret list` lists `{service}-{stage}/`).
pub fn secret(service: &str, stage: &str, secret: &str) -> String {
    fit(
        &format!("{}/{secret}", secret_prefix(service, stage)),
        SECRET_MAX,
    )
}

/// The part before the `/` of every secret name of a service's stage: `{service}-{stage}`.
pub fn secret_prefix(service: &str, stage: &str) -> String {
    format!("{service}-{stage}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("us-east-1", "123456789012")
    }

    #[test]
    fn short_names_are_readable() {
        assert_eq!(
            function("shop", "dev", "place-order"),
            "shop-dev-place-order"
        );
        assert_eq!(
            function_role("shop", "dev", "place-order", &scope()),
            "shop-dev-place-order-us-east-1-lambda"
        );
        assert_eq!(
            scheduler_role("shop", "dev", "nightly-report", &scope()),
            "shop-dev-nightly-report-us-east-1-scheduler"
        );
        assert_eq!(queue("shop", "dev", "payments"), "shop-dev-payments");
        assert_eq!(
            dead_letter_queue("shop", "dev", "payments"),
            "shop-dev-payments-dlq"
        );
        assert_eq!(
            bucket("shop", "dev", "images", &scope()).unwrap(),
            "shop-dev-images-123456789012-us-east-1"
        );
        assert_eq!(
            deployment_bucket("shop", "dev", &scope()).unwrap(),
            "nimbus-shop-dev-123456789012-us-east-1"
        );
        assert_eq!(
            schedule("shop", "dev", "trigger:nightly-report/schedule/0"),
            "shop-dev-nightly-report-schedule-0"
        );
        assert_eq!(log_group("shop-dev-x"), "/aws/lambda/shop-dev-x");
        assert_eq!(api("shop", "dev"), "shop-dev");
        assert_eq!(secret("shop", "dev", "payment-key"), "shop-dev/payment-key");
    }

    #[test]
    fn long_names_fit_their_limits_and_stay_unique() {
        let n63 = format!("f{}", "x".repeat(62));
        let other = format!("f{}y", "x".repeat(61));
        let scopes = [
            scope(),
            Scope::new("ap-southeast-5", "123456789012"),
            Scope::new("cn-north-1", "123456789012"),
        ];
        for s in &scopes {
            for (name, max) in [
                (function(&n63, &n63, &n63), LAMBDA_MAX),
                (function_role(&n63, &n63, &n63, s), ROLE_MAX),
                (scheduler_role(&n63, &n63, &n63, s), ROLE_MAX),
                (queue(&n63, &n63, &n63), SQS_MAX),
                (dead_letter_queue(&n63, &n63, &n63), SQS_MAX),
                (topic(&n63, &n63, &n63), SNS_MAX),
                (table(&n63, &n63, &n63), DYNAMODB_MAX),
                (bucket(&n63, &n63, &n63, s).unwrap(), S3_MAX),
                (deployment_bucket(&n63, &n63, s).unwrap(), S3_MAX),
                (
                    schedule(&n63, &n63, &format!("trigger:{n63}/schedule/3")),
                    SCHEDULE_MAX,
                ),
                (api(&n63, &n63), API_MAX),
                (secret(&n63, &n63, &n63), SECRET_MAX),
            ] {
                assert!(name.len() <= max, "{name} is {} > {max}", name.len());
                assert!(!name.contains("--"), "{name}");
            }
        }
        // Truncated names differ when the full names differ, and are stable.
        assert_ne!(function("s", "d", &n63), function("s", "d", &other));
        assert_eq!(function("s", "d", &n63), function("s", "d", &n63));
        assert!(function("s", "d", &n63).starts_with("s-d-fxxx"));
        // Exactly at the limit: kept as is.
        let exact = "a".repeat(64 - 4);
        assert_eq!(function("s", "d", &exact), format!("s-d-{exact}"));
    }

    #[test]
    fn bucket_names_are_dns_safe_and_region_independent() {
        let long = "a".repeat(40);
        let east = bucket("shop", "dev", &long, &scope()).unwrap();
        let south = bucket(
            "shop",
            "dev",
            &long,
            &Scope::new("ap-southeast-5", "123456789012"),
        )
        .unwrap();
        // The fitted part is the same whatever the region.
        assert_eq!(
            east.trim_end_matches("-123456789012-us-east-1"),
            south.trim_end_matches("-123456789012-ap-southeast-5")
        );
        for name in [east, south] {
            assert!((3..=63).contains(&name.len()));
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
            assert!(name.ends_with(|c: char| c.is_ascii_alphanumeric()));
        }
        assert!(matches!(
            bucket("xn--a", "dev", "b", &scope()),
            Err(AwsError::InvalidName { .. })
        ));
    }

    #[test]
    fn partitions_and_arns() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        let s = scope();
        assert_eq!(s.arn("sqs", "q"), "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(s.bucket_arn("b"), "arn:aws:s3:::b");
        assert_eq!(
            s.schedule_arn("x"),
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"
        );
    }
}
