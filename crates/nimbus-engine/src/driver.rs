//! The [`Driver`] trait a provider implements to create, update, delete and read its native
//! resources, what it returns ([`Applied`], [`Live`], [`DriverError`]), and the call counters
//! the engine keeps around it ([`CallCounts`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::{NativeResource, StateEntry};

/// What a create or update produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The id the cloud knows the resource by.
    pub physical_id: String,
    /// Values other resources may refer to (ARN, URL, …).
    pub outputs: BTreeMap<String, Value>,
}

/// A resource as the cloud has it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Its physical id (a driver that was asked by physical name returns the real id here).
    pub physical_id: String,
    /// Its properties, in the same shape as the properties the engine passes to create and
    /// update (only what nimbus manages, so that they compare path by path).
    pub properties: Value,
    /// Its outputs, as create would have returned them.
    pub outputs: BTreeMap<String, Value>,
}

/// A failed driver call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    /// The cloud's message.
    pub message: String,
    /// Whether trying again may succeed (throttling, timeouts, 5xx).
    pub retryable: bool,
}

impl DriverError {
    /// A transient failure, worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        DriverError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that will not go away by itself.
    pub fn permanent(message: impl Into<String>) -> Self {
        DriverError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// What a provider implements so the engine can deploy its native resources. Calls for
/// different resources run concurrently, hence `Send + Sync`.
pub trait Driver: Send + Sync {
    /// Creates `resource` with `properties` (its properties with references resolved). When the
    /// resource has a `physical_name`, the resource must get that name.
    fn create(
        &self,
        resource: &NativeResource,
        properties: &Value,
    ) -> impl Future<Output = Result<Applied, DriverError>> + Send;

    /// Changes `prior` in place so it has `properties`.
    fn update(
        &self,
        resource: &NativeResource,
        prior: &StateEntry,
        properties: &Value,
    ) -> impl Future<Output = Result<Applied, DriverError>> + Send;

    /// Deletes `entry`. Must be idempotent: a resource that is already gone is a success.
    fn delete(&self, entry: &StateEntry) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// The resource of `kind` with `physical_id`, or `None` when it does not exist. For
    /// resources with a physical name, the engine also calls this with the physical name to find
    /// a resource whose create was interrupted.
    fn read(
        &self,
        kind: &str,
        physical_id: &str,
    ) -> impl Future<Output = Result<Option<Live>, DriverError>> + Send;

    /// Whether `entry` (a resource with `retain_data`) still holds data; destroy keeps it if
    /// so. The default says yes, which always keeps such resources.
    fn holds_data(
        &self,
        entry: &StateEntry,
    ) -> impl Future<Output = Result<bool, DriverError>> + Send {
        let _ = entry;
        async { Ok(true) }
    }
}

impl<T: Driver> Driver for Arc<T> {
    fn create(
        &self,
        resource: &NativeResource,
        properties: &Value,
    ) -> impl Future<Output = Result<Applied, DriverError>> + Send {
        (**self).create(resource, properties)
    }

    fn update(
        &self,
        resource: &NativeResource,
        prior: &StateEntry,
        properties: &Value,
    ) -> impl Future<Output = Result<Applied, DriverError>> + Send {
        (**self).update(resource, prior, properties)
    }

    fn delete(&self, entry: &StateEntry) -> impl Future<Output = Result<(), DriverError>> + Send {
        (**self).delete(entry)
    }

    fn read(
        &self,
        kind: &str,
        physical_id: &str,
    ) -> impl Future<Output = Result<Option<Live>, DriverError>> + Send {
        (**self).read(kind, physical_id)
    }

    fn holds_data(
        &self,
        entry: &StateEntry,
    ) -> impl Future<Output = Result<bool, DriverError>> + Send {
        (**self).holds_data(entry)
    }
}

/// How many driver calls a run made, retries included. `read` and `holds_data` count as reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// `read` and `holds_data` calls.
    pub reads: u64,
    /// `create` calls.
    pub creates: u64,
    /// `update` calls.
    pub updates: u64,
    /// `delete` calls.
    pub deletes: u64,
}

impl CallCounts {
    /// Calls that change the cloud: creates, updates and deletes.
    pub fn writes(&self) -> u64 {
        self.creates + self.updates + self.deletes
    }
}

/// A driver with its calls counted.
pub(crate) struct Metered<'a, D> {
    driver: &'a D,
    reads: AtomicU64,
    creates: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
}

impl<'a, D: Driver> Metered<'a, D> {
    pub(crate) fn new(driver: &'a D) -> Self {
        Metered {
            driver,
            reads: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        }
    }

    pub(crate) fn counts(&self) -> CallCounts {
        CallCounts {
            reads: self.reads.load(Ordering::Relaxed),
            creates: self.creates.load(Ordering::Relaxed),
            updates: self.updates.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn create(
        &self,
        r: &NativeResource,
        props: &Value,
    ) -> Result<Applied, DriverError> {
        self.creates.fetch_add(1, Ordering::Relaxed);
        self.driver.create(r, props).await
    }

    pub(crate) async fn update(
        &self,
        r: &NativeResource,
        prior: &StateEntry,
        props: &Value,
    ) -> Result<Applied, DriverError> {
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.driver.update(r, prior, props).await
    }

    pub(crate) async fn delete(&self, entry: &StateEntry) -> Result<(), DriverError> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        self.driver.delete(entry).await
    }

    pub(crate) async fn read(
        &self,
        kind: &str,
        physical_id: &str,
    ) -> Result<Option<Live>, DriverError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.driver.read(kind, physical_id).await
    }

    pub(crate) async fn holds_data(&self, entry: &StateEntry) -> Result<bool, DriverError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.driver.holds_data(entry).await
    }
}
