//! State and lock as objects in an [`ObjectStore`]: `<prefix><service>/<stage>/<provider>/state.json`
//! and `<prefix><service>/<stage>/lock.json`. Every state write is conditional on the version
//! read just before it (after the overwrite checks), and the lock is a create-if-absent object,
//! taken over from an expired holder with a delete conditional on the expired lock's version.

use super::{Backend, TryLock};
use crate::lock::LockInfo;
use crate::state::check_overwrite;
use crate::store::{Condition, ObjectStore, StoreError};
use crate::{Deployment, Error, State};

/// State and lock in an object store.
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend<S> {
    store: S,
    state_key: String,
    lock_key: String,
    scope: String,
}

impl<S: ObjectStore> ObjectStoreBackend<S> {
    /// The backend for `deployment` in `store`, under `prefix` (a `/` is added when missing;
    /// an empty prefix means the store's root).
    pub fn new(store: S, prefix: &str, deployment: &Deployment) -> Self {
        let prefix = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        ObjectStoreBackend {
            store,
            state_key: format!("{prefix}{}/state.json", deployment.state_scope()),
            lock_key: format!("{prefix}{}/lock.json", deployment.lock_scope()),
            scope: deployment.lock_scope(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The key of the state object.
    pub fn state_key(&self) -> &str {
        &self.state_key
    }

    /// The key of the lock object.
    pub fn lock_key(&self) -> &str {
        &self.lock_key
    }

    fn lock_location(&self) -> String {
        format!("object `{}`", self.lock_key)
    }

    fn store_error(&self, action: &str, key: &str, source: StoreError) -> Error {
        Error::Store {
            action: format!("{action} object `{key}`"),
            source,
        }
    }

    async fn get_lock(&self) -> Result<Option<(LockInfo, crate::store::VersionToken)>, Error> {
        match self.store.get(&self.lock_key).await {
            Ok(Some((bytes, token))) => Ok(Some((
                LockInfo::parse(&bytes, &self.lock_location())?,
                token,
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.store_error("read", &self.lock_key, e)),
        }
    }
}

impl<S: ObjectStore> Backend for ObjectStoreBackend<S> {
    fn location(&self) -> String {
        format!("object `{}`", self.state_key)
    }

    async fn load(&self) -> Result<Option<State>, Error> {
        match self.store.get(&self.state_key).await {
            Ok(Some((bytes, _))) => State::parse(&bytes, &self.location()).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.store_error("read", &self.state_key, e)),
        }
    }

    async fn save(&self, state: &State) -> Result<(), Error> {
        let location = self.location();
        let condition = match self.store.get(&self.state_key).await {
            Ok(Some((stored, token))) => {
                check_overwrite(&stored, state, &location)?;
                Condition::IfMatch(token)
            }
            Ok(None) => Condition::IfAbsent,
            Err(e) => return Err(self.store_error("read", &self.state_key, e)),
        };
        match self
            .store
            .put(&self.state_key, state.to_bytes(), condition)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.store_error("write", &self.state_key, e)),
        }
    }

    async fn try_lock(&self, lock: &LockInfo) -> Result<TryLock, Error> {
        for _ in 0..5 {
            match self
                .store
                .put(&self.lock_key, lock.to_bytes(), Condition::IfAbsent)
                .await
            {
                Ok(_) => return Ok(TryLock::Acquired),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(self.store_error("create", &self.lock_key, e)),
            }
            match self.get_lock().await? {
                None => continue,
                Some((held, _)) if !held.is_expired() => return Ok(TryLock::Held(held)),
                Some((_, token)) => match self
                    .store
                    .delete(&self.lock_key, Condition::IfMatch(token))
                    .await
                {
                    Ok(()) | Err(StoreError::Conflict) => continue,
                    Err(e) => {
                        return Err(self.store_error("delete the expired lock", &self.lock_key, e));
                    }
                },
            }
        }
        Err(Error::LockContention {
            location: self.lock_location(),
        })
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, Error> {
        Ok(self.get_lock().await?.map(|(lock, _)| lock))
    }

    async fn unlock(&self, id: &str) -> Result<(), Error> {
        for _ in 0..5 {
            let Some((held, token)) = self.get_lock().await? else {
                return super::check_unlock(&self.scope, None, id);
            };
            super::check_unlock(&self.scope, Some(&held), id)?;
            match self
                .store
                .delete(&self.lock_key, Condition::IfMatch(token))
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(self.store_error("delete", &self.lock_key, e)),
            }
        }
        Err(Error::LockContention {
            location: self.lock_location(),
        })
    }
}
