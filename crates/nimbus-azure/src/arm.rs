//! Azure Resource Manager (ARM) over REST, through `azure_core`'s HTTP client: resource groups,
//! the deployment storage account, template deployments, what-if, deletes, and the documented
//! long-running operation protocol.
//!
//! **Polling.** A PUT or DELETE that ARM answers with 201/202 is followed to its end: the
//! `Azure-AsyncOperation` URL when given (its body's `status` is `InProgress`, then `Succeeded`,
//! `Failed` or `Canceled`), else the `Location` URL (202 while running; 200/204 when done), waiting
//! `Retry-After` seconds between polls (2 s when absent, at most 10 s). A template deployment is
//! also read back (`properties.provisioningState`). Every wait is reported through the progress
//! callback as `Progress::Waiting`. 429 and 5xx answers are retried up to 4 times with backoff.
//!
//! The endpoint is `https://management.azure.com` unless `NIMBUS_AZURE_ARM_ENDPOINT` overrides it
//! (tests point it at the ARM test double).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use azure_core::http::{HttpClient, Method, Request, Url};
use serde_json::Value;

use crate::credential::Credential;
use crate::error::AzureError;

/// API version of `Microsoft.Resources` (resource groups, deployments, what-if).
pub const RESOURCES_API: &str = "2024-03-01";

/// The public cloud's ARM endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";

/// A response: status, lower-cased headers, JSON body (`null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Headers by lower-cased name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body.
    pub body: Value,
}

/// Calls made, by method (for reports and the unchanged-redeploy tests).
#[derive(Debug, Default)]
pub struct Calls {
    /// GETs (polls included).
    pub get: AtomicU64,
    /// PUTs.
    pub put: AtomicU64,
    /// POSTs.
    pub post: AtomicU64,
    /// DELETEs.
    pub delete: AtomicU64,
}

/// An ARM client.
#[derive(Clone)]
pub struct Arm {
    http: Arc<dyn HttpClient>,
    endpoint: String,
    credential: Credential,
    /// Calls made so far.
    pub calls: Arc<Calls>,
    progress: Option<nimbus_cloud::ProgressFn>,
    /// The token scope of every request, when not chosen by host name.
    audience: Option<String>,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A long-running operation's end.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The final body (of the operation status, or of the resource).
    pub body: Value,
}

impl Arm {
    /// A client of `endpoint` with `credential`.
    pub fn new(
        endpoint: &str,
        credential: Credential,
        progress: Option<nimbus_cloud::ProgressFn>,
    ) -> Self {
        Arm {
            http: crate::http_client(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            credential,
            calls: Arc::new(Calls::default()),
            progress,
            audience: None,
        }
    }

    /// The same client asking tokens for `scope` (`https://vault.azure.net/.default` for Key
    /// Vault's data plane), whatever the host (an endpoint override keeps the audience).
    pub fn with_audience(mut self, scope: &str) -> Self {
        self.audience = Some(scope.to_string());
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, path_or_url: &str) -> Result<Url, AzureError> {
        let text = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.endpoint)
        };
        Url::parse(&text).map_err(|e| AzureError::Settings {
            message: format!("invalid ARM URL `{text}`: {e}"),
        })
    }

    /// One request (retried on 429 and 5xx); any status is returned.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, AzureError> {
        let url = self.url(path)?;
        let counter = match method {
            Method::Get => &self.calls.get,
            Method::Put => &self.calls.put,
            Method::Post => &self.calls.post,
            Method::Delete => &self.calls.delete,
            _ => &self.calls.get,
        };
        // Tokens are per audience: the Application Insights query API has its own.
        let scope = match url.host_str() {
            _ if self.audience.is_some() => self.audience.clone().unwrap_or_default(),
            Some(h) if h.ends_with("applicationinsights.io") => {
                "https://api.applicationinsights.io/.default".to_string()
            }
            _ => format!("{DEFAULT_ENDPOINT}/.default"),
        };
        let mut delay = Duration::from_millis(500);
        for attempt in 0.. {
            let token = self.credential.token(&scope).await?;
            let mut request = Request::new(url.clone(), method);
            request.insert_header("authorization", format!("Bearer {token}"));
            request.insert_header("accept", "application/json");
            if let Some(b) = body {
                request.insert_header("content-type", "application/json");
                request.set_body(serde_json::to_vec(b).expect("json"));
            } else if matches!(method, Method::Post | Method::Put) {
                request.set_body(Vec::<u8>::new());
            }
            counter.fetch_add(1, Ordering::Relaxed);
            let operation = || format!("{} {}", method_name(method), url.path());
            let raw = self
                .http
                .execute_request(&request)
                .await
                .map_err(|e| AzureError::Api {
                    operation: operation(),
                    status: None,
                    code: None,
                    message: e.to_string(),
                });
            let raw = match raw {
                Ok(r) => r,
                Err(e) if attempt < 4 => {
                    let _ = e;
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = u16::from(raw.status());
            let headers: BTreeMap<String, String> = raw
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str().to_string()))
                .collect();
            let bytes = raw
                .into_body()
                .collect()
                .await
                .map_err(|e| AzureError::Api {
                    operation: operation(),
                    status: Some(status),
                    code: None,
                    message: e.to_string(),
                })?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if (status == 429 || status >= 500) && attempt < 4 {
                tokio::time::sleep(retry_after(&headers).unwrap_or(delay)).await;
                delay *= 2;
                continue;
            }
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        unreachable!("the loop returns")
    }

    /// A request that must succeed (2xx), else [`AzureError::Api`] with ARM's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, AzureError> {
        let r = self.send(method, path, body).await?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(error_of(method, path, &r))
        }
    }

    /// GET that gives `None` on 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, AzureError> {
        let r = self.send(Method::Get, path, None).await?;
        match r.status {
            404 => Ok(None),
            s if (200..300).contains(&s) => Ok(Some(r.body)),
            _ => Err(error_of(Method::Get, path, &r)),
        }
    }

    /// Follows a long-running operation started by `r` to its end (see the module docs);
    /// `what` names it in progress and errors.
    pub async fn wait(
        &self,
        what: &str,
        r: Response,
        limit: Duration,
    ) -> Result<Finished, AzureError> {
        if !matches!(r.status, 201 | 202) {
            return Ok(Finished { body: r.body });
        }
        let started = Instant::now();
        let (url, async_op) = match (
            r.headers.get("azure-asyncoperation"),
            r.headers.get("location"),
        ) {
            (Some(u), _) => (u.clone(), true),
            (None, Some(u)) => (u.clone(), false),
            (None, None) => return Ok(Finished { body: r.body }),
        };
        let mut wait = retry_after(&r.headers).unwrap_or(Duration::from_secs(2));
        let mut last = String::from("Accepted");
        loop {
            if started.elapsed() > limit {
                return Err(AzureError::Timeout {
                    operation: what.to_string(),
                    seconds: limit.as_secs(),
                    status: last,
                });
            }
            self.emit(what, &last, started.elapsed());
            tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
            let p = self.send(Method::Get, &url, None).await?;
            wait = retry_after(&p.headers).unwrap_or(Duration::from_secs(2));
            if async_op {
                if !(200..300).contains(&p.status) {
                    return Err(error_of(Method::Get, &url, &p));
                }
                let status = p.body["status"]
                    .as_str()
                    .unwrap_or("InProgress")
                    .to_string();
                match status.as_str() {
                    "Succeeded" => {
                        self.emit(what, &status, started.elapsed());
                        return Ok(Finished { body: p.body });
                    }
                    "Failed" | "Canceled" => {
                        return Err(AzureError::DeploymentFailed {
                            deployment: what.to_string(),
                            resource_group: None,
                            state: status,
                            codes: error_codes(&p.body["error"]),
                            message: error_text(&p.body["error"]),
                        });
                    }
                    _ => last = status,
                }
            } else {
                match p.status {
                    202 => last = "Running".into(),
                    200 | 201 | 204 => {
                        self.emit(what, "Succeeded", started.elapsed());
                        return Ok(Finished { body: p.body });
                    }
                    _ => return Err(error_of(Method::Get, &url, &p)),
                }
            }
        }
    }

    fn emit(&self, what: &str, status: &str, elapsed: Duration) {
        if let Some(p) = &self.progress {
            p(&nimbus_cloud::Progress::Waiting {
                what: what.to_string(),
                status: status.to_string(),
                elapsed,
            });
        }
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Head => "HEAD",
        _ => "REQUEST",
    }
}

fn retry_after(headers: &BTreeMap<String, String>) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// ARM's `{"error": {"code", "message", "details": [...]}}` as one line.
pub fn error_text(error: &Value) -> String {
    let mut parts = Vec::new();
    fn walk(e: &Value, parts: &mut Vec<String>) {
        if let (Some(code), Some(message)) = (e["code"].as_str(), e["message"].as_str()) {
            parts.push(format!("{code}: {message}"));
        } else if let Some(message) = e["message"].as_str() {
            parts.push(message.to_string());
        }
        for d in e["details"].as_array().into_iter().flatten() {
            walk(d, parts);
        }
    }
    walk(error, &mut parts);
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join("; ")
    }
}

/// Every `code` of ARM's error and its `details`, outermost first.
pub fn error_codes(error: &Value) -> Vec<String> {
    fn walk(e: &Value, codes: &mut Vec<String>) {
        if let Some(code) = e["code"].as_str() {
            codes.push(code.to_string());
        }
        for d in e["details"].as_array().into_iter().flatten() {
            walk(d, codes);
        }
    }
    let mut codes = Vec::new();
    walk(error, &mut codes);
    codes
}

fn error_of(method: Method, path: &str, r: &Response) -> AzureError {
    let path = path.split('?').next().unwrap_or(path);
    let error = &r.body["error"];
    AzureError::Api {
        operation: format!("{} {path}", method_name(method)),
        status: Some(r.status),
        code: error["code"].as_str().map(String::from),
        message: if error.is_null() {
            format!("HTTP {}", r.status)
        } else {
            error_text(error)
        },
    }
}
