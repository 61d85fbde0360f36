//! Cloud Storage for the deployment itself: the deployment bucket, the packages in it, and the
//! state and lock as objects ([`GcsStore`], an [`ObjectStore`] with generation preconditions).
//!
//! The deployment bucket (`nimbus-deploy-<project>` unless `providers.gcp.deploy_bucket` names
//! one) holds, for every service and stage of the project:
//! `packages/<service>/<stage>/<function>/<sha256>.zip` (content-addressed: an upload is skipped
//! when the object exists), `state/<service>/<stage>/gcp/state.json` and
//! `state/<service>/<stage>/lock.json`. It is created on first deploy (uniform access, public
//! access prevention, versioning so a state can be recovered) and never deleted by `remove`,
//! which deletes only the deployment's packages and state.
//!
//! Conditions: create-if-absent is `ifGenerationMatch=0`; replace-if-version is
//! `ifGenerationMatch=<generation>`; a failed precondition (412) is [`StoreError::Conflict`].

use nimbus_engine::{Condition, ObjectStore, StoreError, VersionToken};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{ApiError, Client, urlencode};

/// Objects of one bucket, through the JSON API.
#[derive(Debug, Clone)]
pub struct GcsStore {
    client: Client,
    bucket: String,
}

impl GcsStore {
    /// The objects of `bucket`.
    pub fn new(client: Client, bucket: &str) -> Self {
        GcsStore {
            client,
            bucket: bucket.to_string(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn object_url(&self, key: &str) -> String {
        self.client.url(
            "storage",
            &format!(
                "/storage/v1/b/{}/o/{}",
                urlencode(&self.bucket),
                urlencode(key)
            ),
        )
    }

    /// Whether an object exists (its metadata can be read).
    pub async fn exists(&self, key: &str) -> Result<bool, ApiError> {
        match self
            .client
            .json(Method::GET, &self.object_url(key), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads `bytes` as `key`; `if_generation` is a precondition. Returns the new generation.
    pub async fn upload(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        if_generation: Option<&str>,
    ) -> Result<String, ApiError> {
        // A multipart upload (metadata, then the bytes): preconditions hold for it on GCS and on
        // fake-gcs-server alike (the latter ignores them on `uploadType=media`).
        let mut url = self.client.url(
            "storage",
            &format!(
                "/upload/storage/v1/b/{}/o?uploadType=multipart",
                urlencode(&self.bucket)
            ),
        );
        if let Some(g) = if_generation {
            url.push_str(&format!("&ifGenerationMatch={g}"));
        }
        let boundary = "nimbus-7c1f0b2e9d4a";
        let meta = json!({ "name": key, "contentType": content_type });
        let mut body = format!(
            "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n--{boundary}\r\ncontent-type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = reqwest_request(&self.client, Method::POST, &url)
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(body);
        let (_, body) = self.client.send(request, &Method::POST, &url).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(generation(&v))
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.client.url(
                "storage",
                &format!(
                    "/storage/v1/b/{}/o?prefix={}",
                    urlencode(&self.bucket),
                    urlencode(prefix)
                ),
            );
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", urlencode(t)));
            }
            let v = self.client.json(Method::GET, &url, None).await?;
            keys.extend(
                v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["name"].as_str().map(str::to_string)),
            );
            token = v["nextPageToken"].as_str().map(str::to_string);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Deletes `key` (a missing object is fine).
    pub async fn remove(&self, key: &str) -> Result<(), ApiError> {
        match self
            .client
            .json(Method::DELETE, &self.object_url(key), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket in `project` at `location` unless it exists (uniform access, public
    /// access prevention, versioning); `true` when it was created.
    pub async fn ensure_bucket(&self, project: &str, location: &str) -> Result<bool, ApiError> {
        let url = self.client.url(
            "storage",
            &format!("/storage/v1/b/{}", urlencode(&self.bucket)),
        );
        match self.client.json(Method::GET, &url, None).await {
            Ok(_) => return Ok(false),
            Err(e) if e.not_found() => {}
            Err(e) => return Err(e),
        }
        let url = self.client.url(
            "storage",
            &format!("/storage/v1/b?project={}", urlencode(project)),
        );
        let body = json!({
            "name": self.bucket,
            "location": location,
            "iamConfiguration": {
                "uniformBucketLevelAccess": { "enabled": true },
                "publicAccessPrevention": "enforced",
            },
            "versioning": { "enabled": true },
            "labels": { "nimbus-role": "deploy" },
        });
        match self.client.json(Method::POST, &url, Some(&body)).await {
            Ok(_) => Ok(true),
            Err(e) if e.conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn reqwest_request(client: &Client, method: Method, url: &str) -> reqwest::RequestBuilder {
    client.raw().request(method, url)
}

fn generation(v: &Value) -> String {
    match &v["generation"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn store_error(e: ApiError) -> StoreError {
    if e.status == Some(412) {
        StoreError::Conflict
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl GcsStore {
    /// The object under `key` and its generation, or `None` (see [`ObjectStore::get`]).
    pub async fn read_object(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, VersionToken)>, StoreError> {
        // Replaced or deleted between the two reads: read again (a few times).
        for _ in 0..5 {
            if let Some(found) = self.get_once(key).await? {
                return Ok(found);
            }
        }
        Err(StoreError::Backend(format!(
            "object `{key}` kept changing while it was read"
        )))
    }

    /// One read: `Ok(None)` when the object changed between its metadata and its bytes.
    #[allow(clippy::type_complexity)]
    async fn get_once(
        &self,
        key: &str,
    ) -> Result<Option<Option<(Vec<u8>, VersionToken)>>, StoreError> {
        let meta = match self
            .client
            .json(Method::GET, &self.object_url(key), None)
            .await
        {
            Ok(v) => v,
            Err(e) if e.not_found() => return Ok(Some(None)),
            Err(e) => return Err(store_error(e)),
        };
        let generation = generation(&meta);
        let url = format!(
            "{}?alt=media&ifGenerationMatch={generation}",
            self.object_url(key)
        );
        let request = reqwest_request(&self.client, Method::GET, &url);
        match self.client.send(request, &Method::GET, &url).await {
            Ok((_, bytes)) => Ok(Some(Some((bytes, VersionToken(generation))))),
            Err(e) if e.status == Some(412) || e.not_found() => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }
}

impl ObjectStore for GcsStore {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, VersionToken)>, StoreError> {
        self.read_object(key).await
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<VersionToken, StoreError> {
        let generation = match &condition {
            Condition::IfAbsent => "0".to_string(),
            Condition::IfMatch(v) => v.0.clone(),
        };
        self.upload(key, bytes, "application/json", Some(&generation))
            .await
            .map(VersionToken)
            .map_err(store_error)
    }

    async fn delete(&self, key: &str, condition: Condition) -> Result<(), StoreError> {
        match condition {
            Condition::IfAbsent => match self.exists(key).await {
                Ok(false) => Ok(()),
                Ok(true) => Err(StoreError::Conflict),
                Err(e) => Err(store_error(e)),
            },
            Condition::IfMatch(v) => {
                let url = format!("{}?ifGenerationMatch={}", self.object_url(key), v.0);
                match self.client.json(Method::DELETE, &url, None).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.not_found() => Err(StoreError::Conflict),
                    Err(e) => Err(store_error(e)),
                }
            }
        }
    }
}
