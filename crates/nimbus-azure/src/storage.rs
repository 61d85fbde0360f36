//! The deployment storage account, through the official `azure_storage_blob` crate: content-
//! addressed package uploads, the deployment's state blob, and the deployment lock as a **blob
//! lease**.
//!
//! Access is an account SAS in the URL ([`crate::sas`]; against Azurite, or with a key) or an
//! Entra ID token (https only, as the crate requires).
//!
//! **Lock.** `nimbus-state/<service>/<stage>/lock` is a small blob; a deploy or remove takes an
//! infinite lease on it with a fresh GUID as the proposed lease id, then writes the engine's
//! [`LockInfo`] (holder, pid, operation, expiry; `id` = the lease id) into it under that lease.
//! Another run's acquire fails with 409 `LeaseAlreadyPresent`: it reads the holder and waits (with
//! backoff, up to the lock timeout) or fails with the engine's `Locked` error, whose hint names
//! `nimbus unlock <lease id>`. A lease whose `LockInfo` has expired is broken and taken over.
//! Releasing the lease ends the lock; `unlock` breaks it when the id matches.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientDownloadOptions, BlockBlobClientUploadOptions,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use nimbus_engine::{LockInfo, LockOptions};

use crate::error::AzureError;

/// How the account is reached.
#[derive(Clone)]
pub enum Access {
    /// An account SAS query string (without `?`).
    Sas(String),
    /// An Entra ID credential (https endpoints only).
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Sas(_) => "Sas(..)",
            Access::Token(_) => "Token(..)",
        })
    }
}

/// A storage account's blob service.
#[derive(Debug, Clone)]
pub struct BlobStore {
    endpoint: String,
    access: Access,
}

/// An azure_core error as an [`AzureError::Api`].
pub(crate) fn api_error(operation: impl Into<String>, e: azure_core::Error) -> AzureError {
    let (status, code) = match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => (Some(u16::from(*status)), error_code.clone()),
        _ => (None, None),
    };
    AzureError::Api {
        operation: operation.into(),
        status,
        code,
        message: e.to_string(),
    }
}

fn code_of(e: &azure_core::Error) -> Option<(u16, String)> {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => Some((u16::from(*status), error_code.clone().unwrap_or_default())),
        _ => None,
    }
}

impl BlobStore {
    /// The blob service at `endpoint` (`https://<account>.blob.core.windows.net`, or Azurite's
    /// `http://127.0.0.1:<port>/devstoreaccount1`).
    pub fn new(endpoint: &str, access: Access) -> Self {
        crate::tls();
        BlobStore {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            access,
        }
    }

    /// The blob service endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The URL of a blob, as a `location` to show (no SAS).
    pub fn blob_url(&self, container: &str, blob: &str) -> String {
        format!("{}/{container}/{blob}", self.endpoint)
    }

    fn container_client(&self, container: &str) -> Result<BlobContainerClient, AzureError> {
        let (url, credential) = match &self.access {
            Access::Sas(sas) => (format!("{}/{container}?{sas}", self.endpoint), None),
            Access::Token(t) => (format!("{}/{container}", self.endpoint), Some(t.clone())),
        };
        let url = Url::parse(&url).map_err(|e| AzureError::Settings {
            message: format!("invalid storage endpoint `{}`: {e}", self.endpoint),
        })?;
        BlobContainerClient::new(url, credential, None)
            .map_err(|e| api_error(format!("open container `{container}`"), e))
    }

    fn blob(&self, container: &str, blob: &str) -> Result<BlobClient, AzureError> {
        Ok(self.container_client(container)?.blob_client(blob))
    }

    /// Creates `container` unless it exists.
    pub async fn ensure_container(&self, container: &str) -> Result<(), AzureError> {
        match self.container_client(container)?.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e).is_some_and(|(s, _)| s == 409) => Ok(()),
            Err(e) => Err(api_error(format!("create container `{container}`"), e)),
        }
    }

    /// Whether the blob exists.
    pub async fn exists(&self, container: &str, blob: &str) -> Result<bool, AzureError> {
        self.blob(container, blob)?
            .exists()
            .await
            .map_err(|e| api_error(format!("read `{container}/{blob}`"), e))
    }

    /// Writes a blob (overwriting), under `lease` when the blob is leased.
    pub async fn put(
        &self,
        container: &str,
        blob: &str,
        bytes: Vec<u8>,
        lease: Option<&str>,
    ) -> Result<(), AzureError> {
        let options = BlockBlobClientUploadOptions {
            lease_id: lease.map(String::from),
            ..Default::default()
        };
        self.blob(container, blob)?
            .block_blob_client()
            .upload(RequestContent::from(bytes), Some(options))
            .await
            .map(|_| ())
            .map_err(|e| api_error(format!("write `{container}/{blob}`"), e))
    }

    /// Writes a blob only when there is none; `false` when one exists.
    pub async fn put_if_absent(
        &self,
        container: &str,
        blob: &str,
        bytes: Vec<u8>,
    ) -> Result<bool, AzureError> {
        let options = BlockBlobClientUploadOptions::default().if_not_exists();
        match self
            .blob(container, blob)?
            .block_blob_client()
            .upload(RequestContent::from(bytes), Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e).is_some_and(|(s, _)| s == 409 || s == 412) => Ok(false),
            Err(e) => Err(api_error(format!("write `{container}/{blob}`"), e)),
        }
    }

    /// A blob's bytes, or `None` when it does not exist.
    pub async fn get(&self, container: &str, blob: &str) -> Result<Option<Vec<u8>>, AzureError> {
        let client = self.blob(container, blob)?;
        let result = client
            .download(Some(BlobClientDownloadOptions::default()))
            .await;
        match result {
            Ok(r) => r
                .body
                .collect()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| api_error(format!("read `{container}/{blob}`"), e)),
            Err(e) if code_of(&e).is_some_and(|(s, _)| s == 404) => Ok(None),
            Err(e) => Err(api_error(format!("read `{container}/{blob}`"), e)),
        }
    }

    /// Takes an infinite lease with `lease_id`; `false` when another lease is held.
    pub async fn acquire_lease(
        &self,
        container: &str,
        blob: &str,
        lease_id: &str,
    ) -> Result<bool, AzureError> {
        let options = BlobClientAcquireLeaseOptions {
            proposed_lease_id: Some(lease_id.to_string()),
            ..Default::default()
        };
        match self
            .blob(container, blob)?
            .acquire_lease(-1, Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e).is_some_and(|(s, _)| s == 409) => Ok(false),
            Err(e) => Err(api_error(format!("lease `{container}/{blob}`"), e)),
        }
    }

    /// Releases the lease `lease_id`.
    pub async fn release_lease(
        &self,
        container: &str,
        blob: &str,
        lease_id: &str,
    ) -> Result<(), AzureError> {
        self.blob(container, blob)?
            .release_lease(lease_id.to_string(), None)
            .await
            .map(|_| ())
            .map_err(|e| api_error(format!("release the lease on `{container}/{blob}`"), e))
    }

    /// Breaks whatever lease the blob has; `false` when it had none.
    pub async fn break_lease(&self, container: &str, blob: &str) -> Result<bool, AzureError> {
        let options = azure_storage_blob::models::BlobClientBreakLeaseOptions {
            break_period: Some(0),
            ..Default::default()
        };
        match self.blob(container, blob)?.break_lease(Some(options)).await {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e).is_some_and(|(s, _)| s == 409) => Ok(false),
            Err(e) => Err(api_error(
                format!("break the lease on `{container}/{blob}`"),
                e,
            )),
        }
    }
}

/// A held deployment lock.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Who holds it (`id` is the lease id).
    pub info: LockInfo,
    container: String,
    blob: String,
}

/// A fresh lease id (a GUID, as Blob storage requires).
fn lease_id() -> String {
    let mut bytes = [0u8; 16];
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Takes the lock blob `container/blob` for `scope` (see the module docs).
pub async fn lock(
    store: &BlobStore,
    container: &str,
    blob: &str,
    scope: &str,
    operation: &str,
    options: &LockOptions,
) -> Result<Lease, AzureError> {
    store.ensure_container(container).await?;
    store
        .put_if_absent(container, blob, UNLOCKED.to_vec())
        .await?;
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut delay = Duration::from_millis(100);
    loop {
        let id = lease_id();
        if store.acquire_lease(container, blob, &id).await? {
            let info = LockInfo {
                id: id.clone(),
                ..LockInfo::new(scope, operation, options)
            };
            let mut bytes = serde_json::to_vec_pretty(&info).expect("json");
            bytes.push(b'\n');
            store.put(container, blob, bytes, Some(&id)).await?;
            return Ok(Lease {
                info,
                container: container.to_string(),
                blob: blob.to_string(),
            });
        }
        let holder = read_holder(store, container, blob).await?;
        if let Some(h) = &holder
            && h.is_expired()
        {
            store.break_lease(container, blob).await?;
            continue;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let lock = holder.unwrap_or_else(|| LockInfo {
                id: "(unknown)".into(),
                holder: "another run (its lock record is unreadable)".into(),
                ..LockInfo::new(scope, "?", options)
            });
            return Err(AzureError::Engine(nimbus_engine::Error::Locked {
                scope: scope.to_string(),
                lock: Box::new(lock),
            }));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn read_holder(
    store: &BlobStore,
    container: &str,
    blob: &str,
) -> Result<Option<LockInfo>, AzureError> {
    Ok(store
        .get(container, blob)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// What the lock blob holds when nobody holds the lock.
const UNLOCKED: &[u8] = b"{}\n";

/// Ends the lock (clearing its record first, under the lease).
pub async fn unlock_lease(store: &BlobStore, lease: &Lease) -> Result<(), AzureError> {
    store
        .put(
            &lease.container,
            &lease.blob,
            UNLOCKED.to_vec(),
            Some(&lease.info.id),
        )
        .await?;
    store
        .release_lease(&lease.container, &lease.blob, &lease.info.id)
        .await
}

/// Breaks the lock on `container/blob` if its id is `lock_id` (`nimbus unlock`).
pub async fn force_unlock(
    store: &BlobStore,
    container: &str,
    blob: &str,
    scope: &str,
    lock_id: &str,
) -> Result<(), AzureError> {
    let not_locked = || {
        AzureError::Engine(nimbus_engine::Error::NotLocked {
            scope: scope.to_string(),
        })
    };
    let holder = read_holder(store, container, blob)
        .await?
        .ok_or_else(not_locked)?;
    if holder.id != lock_id {
        return Err(AzureError::Engine(nimbus_engine::Error::LockIdMismatch {
            scope: scope.to_string(),
            given: lock_id.to_string(),
            actual: holder.id,
        }));
    }
    if !store.break_lease(container, blob).await? {
        return Err(not_locked());
    }
    store.put(container, blob, UNLOCKED.to_vec(), None).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_ids_are_guids_and_differ() {
        let a = super::lease_id();
        let b = super::lease_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.chars().filter(|c| *c == '-').count(), 4);
    }
}
