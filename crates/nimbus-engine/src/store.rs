//! The object-store interface that remote state and locks are built on, and
//! [`InMemoryObjectStore`], its reference implementation (used by tests).
//!
//! The trait is **async** (methods return `impl Future + Send`) because every real store (S3,
//! GCS, Azure Blob) is reached through an async SDK. Implementations live in the provider
//! crates; what they must provide is conditional writes — create-if-absent and
//! replace-if-version-matches — which S3 (`If-None-Match`/`If-Match`), GCS (generation
//! preconditions) and Blob storage (ETags) all offer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The store's version of an object (an ETag or a generation). Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionToken(pub String);

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only when no object exists under the key.
    IfAbsent,
    /// Only when the object exists and has this version.
    IfMatch(VersionToken),
}

/// An object-store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition did not hold: someone else wrote or deleted the object.
    #[error("the object was changed by someone else (precondition failed)")]
    Conflict,
    /// Anything else, with the store's message.
    #[error("{0}")]
    Backend(String),
}

/// A key-value store of byte objects with conditional writes.
pub trait ObjectStore: Send + Sync {
    /// The object under `key` and its version, or `None`.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, VersionToken)>, StoreError>> + Send;

    /// Writes `bytes` under `key` if `condition` holds, returning the new version, or
    /// [`StoreError::Conflict`].
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> impl Future<Output = Result<VersionToken, StoreError>> + Send;

    /// Deletes `key` if `condition` holds: `IfMatch` needs the object to exist with that
    /// version; `IfAbsent` succeeds only when there is nothing to delete. Otherwise
    /// [`StoreError::Conflict`].
    fn delete(
        &self,
        key: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<T: ObjectStore> ObjectStore for Arc<T> {
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, VersionToken)>, StoreError>> + Send {
        (**self).get(key)
    }

    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> impl Future<Output = Result<VersionToken, StoreError>> + Send {
        (**self).put(key, bytes, condition)
    }

    fn delete(
        &self,
        key: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key, condition)
    }
}

/// An [`ObjectStore`] in memory. Versions come from one counter, so an object deleted and
/// created again never gets an old version back.
#[derive(Debug, Default)]
pub struct InMemoryObjectStore {
    objects: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    versions: AtomicU64,
}

impl InMemoryObjectStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The bytes under `key`, without going through the async interface.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).map(|(b, _)| b.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Vec<u8>, u64)>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn matches(current: Option<u64>, condition: &Condition) -> bool {
        match (condition, current) {
            (Condition::IfAbsent, None) => true,
            (Condition::IfMatch(token), Some(v)) => token.0 == v.to_string(),
            _ => false,
        }
    }
}

impl ObjectStore for InMemoryObjectStore {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, VersionToken)>, StoreError> {
        Ok(self
            .lock()
            .get(key)
            .map(|(bytes, v)| (bytes.clone(), VersionToken(v.to_string()))))
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<VersionToken, StoreError> {
        let mut objects = self.lock();
        if !Self::matches(objects.get(key).map(|(_, v)| *v), &condition) {
            return Err(StoreError::Conflict);
        }
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        objects.insert(key.to_string(), (bytes, version));
        Ok(VersionToken(version.to_string()))
    }

    async fn delete(&self, key: &str, condition: Condition) -> Result<(), StoreError> {
        let mut objects = self.lock();
        if !Self::matches(objects.get(key).map(|(_, v)| *v), &condition) {
            return Err(StoreError::Conflict);
        }
        objects.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditions_are_enforced() {
        let store = InMemoryObjectStore::new();
        let v1 = store
            .put("k", b"a".to_vec(), Condition::IfAbsent)
            .await
            .unwrap();
        assert_eq!(
            store.put("k", b"b".to_vec(), Condition::IfAbsent).await,
            Err(StoreError::Conflict)
        );
        let v2 = store
            .put("k", b"b".to_vec(), Condition::IfMatch(v1.clone()))
            .await
            .unwrap();
        assert_eq!(
            store
                .put("k", b"c".to_vec(), Condition::IfMatch(v1.clone()))
                .await,
            Err(StoreError::Conflict)
        );
        assert_eq!(
            store.get("k").await.unwrap(),
            Some((b"b".to_vec(), v2.clone()))
        );
        assert_eq!(
            store.delete("k", Condition::IfMatch(v1)).await,
            Err(StoreError::Conflict)
        );
        assert_eq!(
            store.delete("k", Condition::IfAbsent).await,
            Err(StoreError::Conflict)
        );
        store
            .delete("k", Condition::IfMatch(v2.clone()))
            .await
            .unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
        store.delete("k", Condition::IfAbsent).await.unwrap();
        let v3 = store
            .put("k", b"d".to_vec(), Condition::IfAbsent)
            .await
            .unwrap();
        assert_ne!(v3, v2);
    }
}
