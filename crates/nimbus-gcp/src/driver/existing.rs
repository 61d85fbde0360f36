//! `gcp.existing`: a resource of the manifest that already exists (`existing.gcp`). Reads only:
//! create and update look it up and report its outputs; delete forgets it; nothing here ever
//! writes to it. The physical id is its full name.
//!
//! | kind | lookup | outputs |
//! |---|---|---|
//! | table | firestore v1 `documents.list` of the collection (`pageSize=1`): the database answers | `collection`, `database`, `path` |
//! | queue | pubsub v1 `subscriptions.get` | `subscription`, `topic` and `name` (its topic) |
//! | topic | pubsub v1 `topics.get` | `name`, `topic` |
//! | bucket | storage v1 `buckets.get` | `name` |
//!
//! [`preflight`] runs the same lookups before a deploy changes anything, and refuses a bucket
//! trigger on a bucket outside the deployment's region (Eventarc receives a bucket's events only
//! in the bucket's location), saying why.

use std::collections::BTreeMap;

use nimbus_engine::{DriverError, Live, NativeResource};
use reqwest::Method;
use serde_json::{Value, json};

use super::{GcpDriver, R, outputs, str_of};
use crate::api::urlencode;
use crate::kinds;
use crate::lower::existing_properties;

impl GcpDriver {
    /// Looks up the existing resource of properties `p` (`kind`, `resource`) and returns its
    /// outputs, and the resource as Google returned it.
    async fn lookup_existing(&self, p: &Value) -> R<(BTreeMap<String, Value>, Value)> {
        let kind = str_of(p, "kind");
        let full = str_of(p, "resource");
        let missing = || {
            DriverError::permanent(format!(
                "the existing {kind} `{full}` was not found (or these credentials may not see \
                 it); create it, or fix `existing.gcp` in the manifest"
            ))
        };
        let found = |v: Option<Value>| v.ok_or_else(missing);
        match kind {
            "table" => {
                let (database, collection) = full.split_once("/documents/").unwrap_or_default();
                let url = self.url(
                    "firestore",
                    &format!(
                        "/v1/{database}/documents/{}?pageSize=1",
                        urlencode(collection)
                    ),
                );
                let v = self.client.json(Method::GET, &url, None).await;
                let v = match v {
                    Ok(v) => v,
                    Err(e) if e.not_found() => return Err(missing()),
                    Err(e) => return Err(super::de(e)),
                };
                let out = outputs([
                    ("collection", json!(collection)),
                    ("database", json!(database)),
                    ("path", json!(full)),
                ]);
                Ok((out, v))
            }
            "queue" => {
                let sub = found(self.get("pubsub", &format!("/v1/{full}")).await?)?;
                let topic = sub["topic"].clone();
                let out = outputs([
                    ("name", topic.clone()),
                    ("topic", topic),
                    ("subscription", json!(full)),
                ]);
                Ok((out, sub))
            }
            "topic" => {
                let topic = found(self.get("pubsub", &format!("/v1/{full}")).await?)?;
                Ok((
                    outputs([("name", json!(full)), ("topic", json!(full))]),
                    topic,
                ))
            }
            "bucket" => {
                let name = full.rsplit('/').next().unwrap_or_default();
                let path = format!("/storage/v1/b/{}", urlencode(name));
                let bucket = found(self.get("storage", &path).await?)?;
                Ok((outputs([("name", json!(name))]), bucket))
            }
            other => Err(DriverError::permanent(format!(
                "internal: `gcp.existing` of unknown kind `{other}`"
            ))),
        }
    }

    /// Create and update: the lookup ([`preflight`] has checked the triggers' needs already).
    pub(super) async fn apply_existing(&self, p: &Value) -> R<(String, BTreeMap<String, Value>)> {
        let (outputs, _) = self.lookup_existing(p).await?;
        Ok((str_of(p, "resource").to_string(), outputs))
    }

    /// The resource as it is: the properties lowering gives its name, and its outputs.
    pub(super) async fn read_existing(&self, full: &str) -> R<Option<Live>> {
        let Some(properties) = existing_properties(full) else {
            return Ok(None);
        };
        match self.lookup_existing(&properties).await {
            Ok((outputs, _)) => Ok(Some(Live {
                physical_id: full.to_string(),
                properties,
                outputs,
            })),
            Err(e) if !e.retryable && e.message.contains("was not found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether an Eventarc trigger of `desired` filters on the bucket of stand-in `id`.
fn bucket_triggered(desired: &[NativeResource], id: &str) -> bool {
    desired
        .iter()
        .filter(|r| r.kind == kinds::EVENTARC_TRIGGER)
        .any(|r| {
            nimbus_engine::resource::references(&r.properties)
                .iter()
                .any(|(target, _)| target == id)
        })
}

/// Every existing resource of `desired` looked up, before a deploy changes anything; a bucket
/// with a trigger must be in `region` (Eventarc's Cloud Storage triggers are in the bucket's
/// location, and Nimbus puts its triggers in the deployment's region).
pub(crate) async fn preflight(
    d: &GcpDriver,
    desired: &[NativeResource],
    region: &str,
) -> Result<(), DriverError> {
    for r in desired.iter().filter(|r| r.kind == kinds::EXISTING) {
        let (_, found) = d.lookup_existing(&r.properties).await?;
        if str_of(&r.properties, "kind") != "bucket" || !bucket_triggered(desired, &r.id) {
            continue;
        }
        let location = str_of(&found, "location").to_ascii_lowercase();
        if !location.is_empty() && location != region.to_ascii_lowercase() {
            return Err(DriverError::permanent(format!(
                "the existing bucket `{}` is in `{location}`, and a bucket trigger's Eventarc \
                 trigger must be in the bucket's location, but this deployment's triggers are in \
                 `{region}`: deploy the app to `{location}` (`providers.gcp.region`), or have the \
                 bucket's owner publish its notifications to a topic and trigger on that topic",
                str_of(&r.properties, "resource")
            )));
        }
    }
    Ok(())
}
