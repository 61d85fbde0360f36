//! [`S3Store`]: the engine's [`ObjectStore`] on an S3 bucket, so that state and lock live in the
//! deployment's own bucket and CI runners, which start empty, share them.
//!
//! Conditional writes are S3's own: `If-None-Match: *` for create-if-absent and `If-Match:
//! <ETag>` for replace- and delete-if-unchanged (S3 answers 412 Precondition Failed, or 409 when
//! a conflicting conditional write is in flight; both are [`StoreError::Conflict`]). The
//! version token is the object's ETag. A bucket that does not exist yet holds no objects.

use aws_sdk_s3::primitives::ByteStream;
use nimbus_engine::{Condition, ObjectStore, StoreError, VersionToken};

use crate::driver::error::{Call, CallError};

/// An object store on one bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    /// The store on `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn is_conflict(e: &CallError) -> bool {
    matches!(e.status, Some(412 | 409))
        || e.is("PreconditionFailed")
        || e.is("ConditionalRequestConflict")
}

fn backend(e: CallError) -> StoreError {
    StoreError::Backend(nimbus_engine::DriverError::from(e).message)
}

impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, VersionToken)>, StoreError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .call("GetObject");
        let out = match got {
            Ok(out) => out,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend(format!("GetObject `{key}`: reading the body: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some((bytes, VersionToken(etag))))
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<VersionToken, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        let request = match condition {
            Condition::IfAbsent => request.if_none_match("*"),
            Condition::IfMatch(token) => request.if_match(token.0),
        };
        match request.send().await.call("PutObject") {
            Ok(out) => Ok(VersionToken(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if is_conflict(&e) => Err(StoreError::Conflict),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str, condition: Condition) -> Result<(), StoreError> {
        match condition {
            Condition::IfMatch(token) => {
                let deleted = self
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .if_match(token.0)
                    .send()
                    .await
                    .call("DeleteObject");
                match deleted {
                    Ok(_) => Ok(()),
                    Err(e) if is_conflict(&e) || e.is_not_found() => Err(StoreError::Conflict),
                    Err(e) => Err(backend(e)),
                }
            }
            Condition::IfAbsent => {
                let head = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .call("HeadObject");
                match head {
                    Ok(_) => Err(StoreError::Conflict),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(backend(e)),
                }
            }
        }
    }
}
