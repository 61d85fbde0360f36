//! Google REST APIs: endpoints (with overrides), credentials, calls, errors and long-running
//! operations.
//!
//! **Endpoints.** Each API has Google's endpoint by default; `NIMBUS_GCP_<API>_ENDPOINT`
//! overrides it (`NIMBUS_GCP_STORAGE_ENDPOINT=http://127.0.0.1:4443`), where `<API>` is one of
//! [`APIS`] upper-cased. This is how tests point the driver at emulators and test doubles.
//!
//! **Credentials** ([`Credentials`]), in this order: none when `NIMBUS_GCP_ANONYMOUS=1` (for
//! emulators); else Application Default Credentials: the JSON file named by
//! `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's `~/.config/gcloud/application_default_credentials.json`
//! (`gcloud auth application-default login`), each either a `service_account` key (a signed RS256
//! JWT exchanged for a token) or `authorized_user` credentials (a refresh token exchanged for a
//! token); else the metadata server (`GCE_METADATA_HOST`, on Google's runtimes). An
//! `external_account` file (workload identity federation) is refused with a clear error: it is
//! not implemented yet (in CI, exchange the OIDC token with `google-github-actions/auth`, which
//! writes a service-account access token to use through `GOOGLE_OAUTH_ACCESS_TOKEN`, honoured too).
//!
//! **Errors.** 429, 5xx and transport failures are retryable; everything else is not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Mutex;

/// The OAuth scope of every access token nimbus asks for.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Every API the provider calls, by the name its endpoint variable uses.
pub const APIS: &[(&str, &str)] = &[
    ("storage", "https://storage.googleapis.com"),
    ("pubsub", "https://pubsub.googleapis.com"),
    ("iam", "https://iam.googleapis.com"),
    (
        "cloudresourcemanager",
        "https://cloudresourcemanager.googleapis.com",
    ),
    ("firestore", "https://firestore.googleapis.com"),
    ("cloudfunctions", "https://cloudfunctions.googleapis.com"),
    ("run", "https://run.googleapis.com"),
    ("eventarc", "https://eventarc.googleapis.com"),
    ("cloudscheduler", "https://cloudscheduler.googleapis.com"),
    ("apigateway", "https://apigateway.googleapis.com"),
    ("logging", "https://logging.googleapis.com"),
    ("secretmanager", "https://secretmanager.googleapis.com"),
];

/// A failed call to a Google API.
#[derive(Debug, Clone, Error)]
#[error("{method} {url}: {message}")]
pub struct ApiError {
    /// The HTTP method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Google's message (or the transport's).
    pub message: String,
}

impl ApiError {
    /// Whether trying again may succeed.
    pub fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 429 || s >= 500,
        }
    }

    /// Whether the object does not exist.
    pub fn not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// Whether the object already exists.
    pub fn conflict(&self) -> bool {
        self.status == Some(409)
    }

    /// As a driver error, retryable or not.
    pub fn to_driver(&self) -> nimbus_engine::DriverError {
        nimbus_engine::DriverError {
            message: self.to_string(),
            retryable: self.retryable(),
        }
    }
}

/// Base URLs of the APIs, with the overrides of the environment applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(BTreeMap<String, String>);

impl Endpoints {
    /// Google's endpoints, overridden by `NIMBUS_GCP_<API>_ENDPOINT`.
    pub fn from_env() -> Self {
        Endpoints(
            APIS.iter()
                .map(|(api, url)| {
                    let var = format!("NIMBUS_GCP_{}_ENDPOINT", api.to_ascii_uppercase());
                    let url = std::env::var(var)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| url.to_string());
                    (api.to_string(), url.trim_end_matches('/').to_string())
                })
                .collect(),
        )
    }

    /// Sets one API's endpoint.
    pub fn set(&mut self, api: &str, url: &str) {
        self.0
            .insert(api.to_string(), url.trim_end_matches('/').to_string());
    }

    /// The base URL of `api`.
    pub fn get(&self, api: &str) -> &str {
        self.0.get(api).map(String::as_str).unwrap_or_default()
    }
}

/// Where access tokens come from.
#[derive(Clone)]
pub enum Credentials {
    /// No credentials (emulators).
    Anonymous,
    /// A fixed access token (`GOOGLE_OAUTH_ACCESS_TOKEN`).
    Token(String),
    /// A service account key: signed JWTs exchanged at `token_uri`.
    ServiceAccount {
        /// The account's email.
        email: String,
        /// The PEM private key.
        key: String,
        /// Where tokens come from.
        token_uri: String,
    },
    /// gcloud user credentials: a refresh token.
    AuthorizedUser {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: String,
        /// The refresh token.
        refresh_token: String,
    },
    /// The metadata server of Google's runtimes.
    Metadata(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::Anonymous => "Anonymous",
            Credentials::Token(_) => "Token",
            Credentials::ServiceAccount { .. } => "ServiceAccount",
            Credentials::AuthorizedUser { .. } => "AuthorizedUser",
            Credentials::Metadata(_) => "Metadata",
        })
    }
}

impl Credentials {
    /// The credentials the environment names (see the module docs).
    pub fn from_env() -> Result<Self, String> {
        if std::env::var("NIMBUS_GCP_ANONYMOUS").is_ok_and(|v| v == "1" || v == "true") {
            return Ok(Credentials::Anonymous);
        }
        if let Ok(token) = std::env::var("GOOGLE_OAUTH_ACCESS_TOKEN")
            && !token.is_empty()
        {
            return Ok(Credentials::Token(token));
        }
        let file = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let home = std::env::var_os("HOME")?;
                let p = std::path::PathBuf::from(home)
                    .join(".config/gcloud/application_default_credentials.json");
                p.is_file().then_some(p)
            });
        if let Some(file) = file {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading `{}`: {e}", file.display()))?;
            return Self::from_json(&text).map_err(|e| format!("`{}`: {e}", file.display()));
        }
        let host = std::env::var("GCE_METADATA_HOST")
            .unwrap_or_else(|_| "metadata.google.internal".into());
        Ok(Credentials::Metadata(format!("http://{host}")))
    }

    /// Credentials from an ADC JSON file's text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("`{k}` is missing"))
        };
        match v.get("type").and_then(Value::as_str) {
            Some("service_account") => Ok(Credentials::ServiceAccount {
                email: field("client_email")?,
                key: field("private_key")?,
                token_uri: field("token_uri")
                    .unwrap_or_else(|_| "https://oauth2.googleapis.com/token".into()),
            }),
            Some("authorized_user") => Ok(Credentials::AuthorizedUser {
                client_id: field("client_id")?,
                client_secret: field("client_secret")?,
                refresh_token: field("refresh_token")?,
            }),
            Some("external_account") => Err(
                "`external_account` (workload identity federation) credentials are not supported yet; set GOOGLE_OAUTH_ACCESS_TOKEN to a token (e.g. from google-github-actions/auth with token_format: access_token)".into(),
            ),
            other => Err(format!("unknown credentials type {other:?}")),
        }
    }
}

/// What to do when no credentials were found (and no metadata server answered).
pub const NO_CREDENTIALS: &str = "none found: run `gcloud auth application-default login`, or set \
`GOOGLE_APPLICATION_CREDENTIALS` to a service-account key file, or `GOOGLE_OAUTH_ACCESS_TOKEN` to an \
access token (in GitHub Actions, `google-github-actions/auth` with workload identity federation \
provides one); the metadata server that Google's own machines offer did not answer";

/// A client of Google's REST APIs: endpoints, credentials, and a token cache.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    credentials: Credentials,
    token: Arc<Mutex<Option<(String, Instant)>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// The body of a response, parsed as JSON (`null` when empty).
pub type Json = Value;

impl Client {
    /// A client with these endpoints and credentials.
    pub fn new(endpoints: Endpoints, credentials: Credentials) -> Result<Self, String> {
        // One crypto provider for every TLS connection (a second install is a no-op). ring, not
        // aws-lc-rs: it builds without cmake and in a fraction of the time; its lack of
        // post-quantum key exchange is what the deprecation is about.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(20))
            .user_agent(concat!("nimbus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("creating the HTTP client: {e}"))?;
        Ok(Client {
            http,
            endpoints: Arc::new(endpoints),
            credentials,
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// The underlying HTTP client (requests made with it still go through [`Client::send`]
    /// for credentials and errors).
    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `api`'s base URL joined with `path` (which starts with `/`).
    pub fn url(&self, api: &str, path: &str) -> String {
        format!("{}{path}", self.endpoints.get(api))
    }

    /// The POST that exchanges a service account key for a token at `token_uri`: a JWT signed
    /// with the key, whose claims add `claim` (an access token's `scope`, or an ID token's
    /// `target_audience`). Errs with what is wrong with the key.
    fn key_grant(
        &self,
        email: &str,
        key: &str,
        token_uri: &str,
        claim: (&str, &str),
    ) -> Result<reqwest::RequestBuilder, String> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": email, "sub": email, "aud": token_uri, "iat": now, "exp": now + 3600,
        });
        claims[claim.0] = json!(claim.1);
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes())
            .map_err(|e| format!("the service account key: {e}"))?;
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| format!("signing: {e}"))?;
        Ok(self
            .http
            .post(token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            )))
    }

    /// The POST that refreshes gcloud user credentials (its answer carries both an access token
    /// and an ID token), and its URL.
    fn refresh_grant(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> (reqwest::RequestBuilder, String) {
        let url = "https://oauth2.googleapis.com/token".to_string();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("refresh_token", refresh_token),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        (request, url)
    }

    /// Gets (and caches) an access token now: whether the credentials work.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        self.token().await.map(|_| ())
    }

    async fn token(&self) -> Result<Option<String>, ApiError> {
        let fail = |url: &str, message: String| ApiError {
            method: "POST".into(),
            url: url.to_string(),
            status: None,
            message: format!("getting an access token: {message}"),
        };
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(Some(t.clone()));
        }
        let (request, url) = match &self.credentials {
            Credentials::Anonymous => return Ok(None),
            Credentials::Token(t) => return Ok(Some(t.clone())),
            Credentials::ServiceAccount {
                email,
                key,
                token_uri,
            } => (
                self.key_grant(email, key, token_uri, ("scope", CLOUD_PLATFORM_SCOPE))
                    .map_err(|m| fail(token_uri, m))?,
                token_uri.clone(),
            ),
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
            } => self.refresh_grant(client_id, client_secret, refresh_token),
            Credentials::Metadata(host) => {
                let url =
                    format!("{host}/computeMetadata/v1/instance/service-accounts/default/token");
                (self.http.get(&url).header("Metadata-Flavor", "Google"), url)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| fail(&url, e.to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = body.get("access_token").and_then(Value::as_str) else {
            return Err(ApiError {
                status: Some(status.as_u16()),
                ..fail(
                    &url,
                    format!("no access token in the answer ({status}): {body}"),
                )
            });
        };
        let ttl = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(ttl.saturating_sub(120));
        *cached = Some((token.to_string(), until));
        Ok(Some(token.to_string()))
    }

    /// An ID token for calling `audience` (a function's URL), when the credentials can make one:
    /// a service account key (a JWT with `target_audience`, exchanged at its token URI), gcloud
    /// user credentials (the `id_token` of a refresh), or the metadata server's identity
    /// endpoint. `None` for anonymous credentials and a bare access token.
    pub async fn id_token(&self, audience: &str) -> Result<Option<String>, ApiError> {
        let fail = |url: &str, status: Option<u16>, message: String| ApiError {
            method: "POST".into(),
            url: url.to_string(),
            status,
            message: format!("getting an ID token: {message}"),
        };
        let (request, url, field) = match &self.credentials {
            Credentials::Anonymous | Credentials::Token(_) => return Ok(None),
            Credentials::ServiceAccount {
                email,
                key,
                token_uri,
            } => (
                self.key_grant(email, key, token_uri, ("target_audience", audience))
                    .map_err(|m| fail(token_uri, None, m))?,
                token_uri.clone(),
                "id_token",
            ),
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let (request, url) = self.refresh_grant(client_id, client_secret, refresh_token);
                (request, url, "id_token")
            }
            Credentials::Metadata(host) => {
                let url = format!(
                    "{host}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
                    urlencode(audience)
                );
                (
                    self.http.get(&url).header("Metadata-Flavor", "Google"),
                    url,
                    "",
                )
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| fail(&url, None, e.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| fail(&url, Some(status.as_u16()), e.to_string()))?;
        if !status.is_success() {
            return Err(fail(
                &url,
                Some(status.as_u16()),
                format!("{status}: {}", text.chars().take(300).collect::<String>()),
            ));
        }
        if field.is_empty() {
            return Ok(Some(text.trim().to_string()));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match body.get(field).and_then(Value::as_str) {
            Some(t) => Ok(Some(t.to_string())),
            None => Err(fail(
                &url,
                Some(status.as_u16()),
                format!("no `{field}` in the answer"),
            )),
        }
    }

    /// Sends `method` to `url` with an optional JSON body; returns the JSON answer.
    pub async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Json, ApiError> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(b) = body {
            request = request.json(b);
        }
        let (status, bytes) = self.send(request, &method, url).await?;
        let _ = status;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Sends a prepared request with credentials; returns the status and bytes of a success.
    pub async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        method: &reqwest::Method,
        url: &str,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        if let Some(token) = self.token().await? {
            request = request.bearer_auth(token);
        }
        let error = |status: Option<u16>, message: String| ApiError {
            method: method.to_string(),
            url: url.to_string(),
            status,
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|e| error(None, format!("{e}")))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| error(Some(status), format!("reading the answer: {e}")))?;
        if (200..300).contains(&status) {
            return Ok((status, bytes.to_vec()));
        }
        let text = String::from_utf8_lossy(&bytes);
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.trim().chars().take(500).collect());
        Err(error(Some(status), format!("{status}: {message}")))
    }
}

/// Percent-encodes `s` for a URL path segment or query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_are_read_or_refused_clearly() {
        let sa = r#"{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":"k"}"#;
        assert!(matches!(
            Credentials::from_json(sa),
            Ok(Credentials::ServiceAccount { token_uri, .. }) if token_uri == "https://oauth2.googleapis.com/token"
        ));
        let user =
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#;
        assert!(matches!(
            Credentials::from_json(user),
            Ok(Credentials::AuthorizedUser { .. })
        ));
        let wif = r#"{"type":"external_account"}"#;
        assert!(
            Credentials::from_json(wif)
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(
            Credentials::from_json(r#"{"type":"service_account"}"#)
                .unwrap_err()
                .contains("client_email")
        );
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
