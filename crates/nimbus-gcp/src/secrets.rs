//! Secret values in Secret Manager, for `nimbus secret set/list/rm -p gcp`: each neutral secret
//! of a service and stage is the secret `projects/P/secrets/<service>-<stage>-<name>`
//! ([`crate::names::secret`]); a value is a version of it.
//!
//! - `set` creates the secret when it does not exist yet (automatic replication, the
//!   `nimbus-service`/`nimbus-stage` labels: a later deploy adopts it) and adds a version:
//!   functions read version `latest`, so new instances see the new value;
//! - `list` reads each secret's newest version (its creation time; never its payload);
//! - `remove` deletes the secret with all its versions.
//!
//! Values travel only in the `addVersion` request body (base64, as the API takes them); no
//! function here returns or logs one.

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use nimbus_graph::AppGraph;

use crate::api::{ApiError, Client};
use crate::error::GcpError;
use crate::names;

/// Secret Manager's limit on one version's payload.
pub const MAX_VALUE_BYTES: usize = 65536;

/// One service and stage's secrets in one project.
pub struct SecretValues<'a> {
    client: &'a Client,
    project: String,
    service: String,
    stage: String,
}

/// When a secret's newest value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretState {
    /// Its newest version's creation time (RFC 3339), when it has one.
    pub set_at: Option<String>,
}

impl<'a> SecretValues<'a> {
    /// The secrets of `service`/`stage` in `project`.
    pub fn new(client: &'a Client, project: &str, service: &str, stage: &str) -> Self {
        SecretValues {
            client,
            project: project.into(),
            service: service.into(),
            stage: stage.into(),
        }
    }

    /// The full name of neutral secret `name`.
    pub fn full_name(&self, name: &str) -> String {
        format!(
            "projects/{}/secrets/{}",
            self.project,
            names::secret(&self.service, &self.stage, name)
        )
    }

    fn url(&self, path: &str) -> String {
        self.client.url("secretmanager", path)
    }

    /// Stores `value` as the newest version of `name`, creating the secret first if needed.
    /// Errs before any call when the value is over [`MAX_VALUE_BYTES`].
    pub async fn set(&self, name: &str, value: &[u8]) -> Result<(), ApiError> {
        let full = self.full_name(name);
        if value.len() > MAX_VALUE_BYTES {
            return Err(ApiError {
                method: "POST".into(),
                url: format!("{full}:addVersion"),
                status: None,
                message: format!(
                    "the value is {} bytes, over Secret Manager's limit of {MAX_VALUE_BYTES}",
                    value.len()
                ),
            });
        }
        let id = names::secret(&self.service, &self.stage, name);
        let create = self.url(&format!(
            "/v1/projects/{}/secrets?secretId={id}",
            self.project
        ));
        let body = json!({
            "replication": { "automatic": {} },
            "labels": { "nimbus-service": self.service, "nimbus-stage": self.stage },
        });
        match self.client.json(Method::POST, &create, Some(&body)).await {
            Ok(_) => {}
            Err(e) if e.conflict() => {}
            Err(e) => return Err(e),
        }
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        let body = json!({ "payload": { "data": data } });
        self.client
            .json(
                Method::POST,
                &self.url(&format!("/v1/{full}:addVersion")),
                Some(&body),
            )
            .await
            // The request carried the value: never repeat the body in the error.
            .map(|_| ())
    }

    /// Whether `name` exists and when its newest value was set (`None`: no such secret).
    pub async fn state(&self, name: &str) -> Result<Option<SecretState>, ApiError> {
        let full = self.full_name(name);
        let url = self.url(&format!("/v1/{full}/versions?pageSize=1"));
        match self.client.json(Method::GET, &url, None).await {
            Ok(v) => Ok(Some(SecretState {
                set_at: v["versions"]
                    .as_array()
                    .and_then(|vs| vs.iter().find(|v| v["state"] == "ENABLED"))
                    .and_then(|v| v["createTime"].as_str())
                    .map(str::to_string),
            })),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes `name` and all its values; `false` when there was no such secret.
    pub async fn remove(&self, name: &str) -> Result<bool, ApiError> {
        let url = self.url(&format!("/v1/{}", self.full_name(name)));
        match self.client.json(Method::DELETE, &url, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Before `deploy` or `plan` changes or shows anything: every secret a function reads has a
/// value (a version) for the graph's stage; otherwise [`GcpError::MissingSecrets`] lists them
/// with the exact commands that set them.
pub async fn check_values(
    client: &Client,
    project: &str,
    graph: &AppGraph,
) -> Result<(), GcpError> {
    let values = SecretValues::new(client, project, &graph.service, &graph.stage);
    let mut missing = Vec::new();
    for (name, readers) in graph.secret_readers() {
        let state = values.state(name).await.map_err(|source| GcpError::Api {
            action: format!("reading secret `{name}` (Secret Manager)"),
            source,
        })?;
        if state.and_then(|s| s.set_at).is_none() {
            missing.push((
                name.to_string(),
                readers.iter().map(|f| f.to_string()).collect(),
            ));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(GcpError::MissingSecrets {
        missing: missing.iter().map(|(n, _)| n.clone()).collect(),
        message: nimbus_cloud::missing_secrets_message(
            "gcp",
            &graph.stage,
            "Secret Manager",
            &missing,
        ),
    })
}
