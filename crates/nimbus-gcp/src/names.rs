//! Deterministic physical names.
//!
//! Every Google Cloud object Nimbus creates gets a name computed from the service, the stage and
//! the neutral name, so an interrupted deploy finds (and adopts) what it already created, and the
//! Terraform export names things exactly as a direct deploy does.
//!
//! | object | name | Google's limit |
//! |---|---|---|
//! | function (and its Cloud Run service) | `{service}-{stage}-{function}` | 49, `[a-z][a-z0-9-]*` (the Cloud Run service name) |
//! | function service account | `{service}-{stage}-{function}` | 6–30, `[a-z][a-z0-9-]*[a-z0-9]` |
//! | invoker service account | `{service}-{stage}-invoker` | 6–30 |
//! | Pub/Sub topic / subscription | `{service}-{stage}-{name}`, dead letters `…-dlq` | 3–255, not starting with `goog` |
//! | Firestore collection | `{service}-{stage}-{table}` | 1500 bytes, no `/` |
//! | bucket | `{service}-{stage}-{bucket}-{project}` | 3–63, DNS-safe, globally unique, no `google` |
//! | deployment bucket | `nimbus-deploy-{project}` | same |
//! | Eventarc trigger | `{service}-{stage}-{function}-{kind}-{index}` (bucket triggers: `-created`/`-deleted`) | 63 |
//! | Scheduler job | `{service}-{stage}-{function}-schedule-{index}` | 500 |
//! | API Gateway API / gateway | `{service}-{stage}` | 63 / 49 |
//! | API config | `{service}-{stage}-{hash of the document}` | 63 |
//!
//! **Too long.** A name over its limit keeps a prefix and ends with `-` and 8 hex digits of the
//! SHA-256 of the whole name ([`fit`]): still deterministic, still unique.
//!
//! **Buckets** share one global namespace, so their names end with the project id, which is
//! globally unique. The part before it is fitted to 32 characters whatever the project's id
//! (reserving the longest, 30), so a name never depends on the id's length and the Terraform
//! export computes the same one.

use sha2::{Digest, Sha256};

use crate::error::GcpError;

/// The longest project id.
pub const MAX_PROJECT_LEN: usize = 30;
/// Longest function name (its Cloud Run service name).
pub const FUNCTION_MAX: usize = 49;
/// Longest service account id.
pub const ACCOUNT_MAX: usize = 30;
/// Shortest service account id.
pub const ACCOUNT_MIN: usize = 6;
/// Longest Pub/Sub topic or subscription id.
pub const PUBSUB_MAX: usize = 255;
/// Longest Secret Manager secret id (`[A-Za-z0-9_-]{1,255}`).
pub const SECRET_MAX: usize = 255;
/// Longest bucket name.
pub const BUCKET_MAX: usize = 63;
/// Longest Eventarc trigger id.
pub const TRIGGER_MAX: usize = 63;
/// Longest Cloud Scheduler job id.
pub const JOB_MAX: usize = 500;
/// Longest API Gateway API or config id.
pub const API_MAX: usize = 63;
/// Longest API Gateway gateway id.
pub const GATEWAY_MAX: usize = 49;

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

/// A function's name (also its Cloud Run service's).
pub fn function(service: &str, stage: &str, function: &str) -> String {
    fit(&base(service, stage, function), FUNCTION_MAX)
}

/// A service account id of at least 6 and at most 30 characters.
fn account(text: &str) -> String {
    let mut id = fit(text, ACCOUNT_MAX);
    while id.len() < ACCOUNT_MIN {
        id.push_str("-sa");
    }
    id
}

/// The service account a function runs as.
pub fn function_account(service: &str, stage: &str, function: &str) -> String {
    account(&base(service, stage, function))
}

/// The service account Google's services (API Gateway, Eventarc, Pub/Sub push, Cloud Scheduler)
/// use to invoke the deployment's functions.
pub fn invoker_account(service: &str, stage: &str) -> String {
    account(&format!("{service}-{stage}-invoker"))
}

/// A secret's id in Secret Manager: `<service>-<stage>-<secret>`, so that each stage has its own
/// value (what `nimbus secret set -p gcp -s STAGE` writes).
pub fn secret(service: &str, stage: &str, secret: &str) -> String {
    fit(&base(service, stage, secret), SECRET_MAX)
}

/// A Pub/Sub topic or subscription id.
pub fn pubsub(service: &str, stage: &str, name: &str) -> Result<String, GcpError> {
    let id = fit(&base(service, stage, name), PUBSUB_MAX);
    if id.starts_with("goog") {
        return Err(GcpError::InvalidName {
            name: id,
            reason: "Pub/Sub names cannot start with `goog`".into(),
        });
    }
    Ok(id)
}

/// The dead-letter topic (and its subscription) of a queue.
pub fn dead_letter(service: &str, stage: &str, queue: &str) -> Result<String, GcpError> {
    pubsub(service, stage, &format!("{queue}-dlq"))
}

/// A table's Firestore collection id.
pub fn collection(service: &str, stage: &str, table: &str) -> String {
    base(service, stage, table)
}

/// A bucket's name: see the module docs.
pub fn bucket(service: &str, stage: &str, bucket: &str, project: &str) -> Result<String, GcpError> {
    let budget = BUCKET_MAX - 1 - MAX_PROJECT_LEN;
    checked_bucket(format!(
        "{}-{project}",
        fit(&base(service, stage, bucket), budget)
    ))
}

/// The bucket that holds the packages and the state of every deployment in `project`.
pub fn deploy_bucket(project: &str) -> Result<String, GcpError> {
    checked_bucket(format!("nimbus-deploy-{project}"))
}

fn checked_bucket(name: String) -> Result<String, GcpError> {
    // A project id may be a placeholder in the Terraform export: check the rest.
    let plain: String = name.chars().filter(|c| c.is_ascii()).collect();
    if plain.contains("google") || plain.starts_with("goog") {
        return Err(GcpError::InvalidName {
            name,
            reason: "bucket names cannot contain `google`".into(),
        });
    }
    if let Some(c) = plain
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(GcpError::InvalidName {
            name,
            reason: format!("bucket names cannot contain `{c}`"),
        });
    }
    Ok(name)
}

/// `trigger:<function>/<kind>/<index>` → `<function>-<kind>-<index>`.
pub fn trigger_part(trigger_id: &str) -> String {
    trigger_id.trim_start_matches("trigger:").replace('/', "-")
}

/// An Eventarc trigger id; `suffix` tells the events of one trigger apart (`created`).
pub fn eventarc_trigger(
    service: &str,
    stage: &str,
    trigger_id: &str,
    suffix: Option<&str>,
) -> String {
    let mut name = base(service, stage, &trigger_part(trigger_id));
    if let Some(s) = suffix {
        name = format!("{name}-{s}");
    }
    fit(&name, TRIGGER_MAX)
}

/// A Cloud Scheduler job id.
pub fn job(service: &str, stage: &str, trigger_id: &str) -> String {
    fit(&base(service, stage, &trigger_part(trigger_id)), JOB_MAX)
}

/// The API Gateway API's id.
pub fn api(service: &str, stage: &str) -> String {
    fit(&format!("{service}-{stage}"), API_MAX)
}

/// The API Gateway gateway's id.
pub fn gateway(service: &str, stage: &str) -> String {
    fit(&format!("{service}-{stage}"), GATEWAY_MAX)
}

/// An API config id: the API's id and a hash of the document.
pub fn api_config(service: &str, stage: &str, document_hash: &str) -> String {
    let hash = &document_hash[..8.min(document_hash.len())];
    format!("{}-{hash}", fit(&format!("{service}-{stage}"), API_MAX - 9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_readable() {
        assert_eq!(
            function("shop", "dev", "place-order"),
            "shop-dev-place-order"
        );
        assert_eq!(
            function_account("shop", "dev", "place-order"),
            "shop-dev-place-order"
        );
        assert_eq!(function_account("s", "d", "f"), "s-d-f-sa");
        assert_eq!(invoker_account("shop", "dev"), "shop-dev-invoker");
        assert_eq!(
            pubsub("shop", "dev", "payments").unwrap(),
            "shop-dev-payments"
        );
        assert_eq!(
            dead_letter("shop", "dev", "payments").unwrap(),
            "shop-dev-payments-dlq"
        );
        assert_eq!(
            bucket("shop", "dev", "images", "my-project").unwrap(),
            "shop-dev-images-my-project"
        );
        assert_eq!(
            deploy_bucket("my-project").unwrap(),
            "nimbus-deploy-my-project"
        );
        assert_eq!(
            eventarc_trigger(
                "shop",
                "dev",
                "trigger:make-thumbnail/bucket/0",
                Some("created")
            ),
            "shop-dev-make-thumbnail-bucket-0-created"
        );
        assert_eq!(
            job("shop", "dev", "trigger:nightly-report/schedule/0"),
            "shop-dev-nightly-report-schedule-0"
        );
        assert_eq!(
            api_config("shop", "dev", "0123456789abcdef"),
            "shop-dev-01234567"
        );
    }

    #[test]
    fn secret_ids_fit_secret_manager_and_stay_apart() {
        assert_eq!(secret("shop", "dev", "payment-key"), "shop-dev-payment-key");
        let long = |c: &str| c.repeat(100);
        let id = secret(&long("s"), &long("d"), &long("k"));
        assert!(id.len() <= SECRET_MAX, "{} > {SECRET_MAX}", id.len());
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(
            id,
            secret(&long("s"), &long("d"), &format!("{}y", long("k")))
        );
    }

    #[test]
    fn long_names_fit_their_limits() {
        let n = format!("f{}", "x".repeat(62));
        for (name, max) in [
            (function(&n, &n, &n), FUNCTION_MAX),
            (function_account(&n, &n, &n), ACCOUNT_MAX),
            (invoker_account(&n, &n), ACCOUNT_MAX),
            (pubsub(&n, &n, &n).unwrap(), PUBSUB_MAX),
            (bucket(&n, &n, &n, &"p".repeat(30)).unwrap(), BUCKET_MAX),
            (
                eventarc_trigger(&n, &n, "trigger:x/bucket/0", Some("deleted")),
                TRIGGER_MAX,
            ),
            (api(&n, &n), API_MAX),
            (gateway(&n, &n), GATEWAY_MAX),
            (api_config(&n, &n, "abcdef0123"), API_MAX),
        ] {
            assert!(name.len() <= max, "{name} is {} > {max}", name.len());
        }
        assert_ne!(function("s", "d", &n), function("s", "d", &format!("{n}y")));
        // The part before the project does not depend on the project's length.
        let a = bucket("shop", "dev", &n, "p1").unwrap();
        let b = bucket("shop", "dev", &n, "project-number-two").unwrap();
        assert_eq!(
            a.trim_end_matches("-p1"),
            b.trim_end_matches("-project-number-two")
        );
        assert!(bucket("shop", "dev", "x", "my-google-proj").is_err());
        assert!(pubsub("goog", "dev", "x").is_err());
    }
}
