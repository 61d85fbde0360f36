//! The deployment storage against Azurite, through the official `azure_storage_blob` crate with
//! an account SAS: content-addressed uploads, the lease lock and the state blob. Every effect is
//! checked with Microsoft's Python library (`azure-storage-blob`) talking to Azurite, not with
//! nimbus code.

mod common;

use std::time::Duration;

use common::azurite::{ACCOUNT, Azurite, KEY};
use nimbus_azure::storage::{self, Access, BlobStore};
use nimbus_azure::{AzureError, sas};
use nimbus_engine::LockOptions;
use serde_json::Value;

fn store(azurite: &Azurite) -> BlobStore {
    let sas = sas::account_sas(ACCOUNT, KEY, "2099-01-01T00:00:00Z").unwrap();
    BlobStore::new(&azurite.blob_endpoint(), Access::Sas(sas))
}

fn options(timeout_ms: u64, ttl_s: u64) -> LockOptions {
    LockOptions {
        timeout: Duration::from_millis(timeout_ms),
        ttl: Duration::from_secs(ttl_s),
        holder: Some("tester@ci".into()),
    }
}

#[tokio::test]
async fn uploads_are_content_addressed_and_state_round_trips() {
    let azurite = Azurite::start();
    let s = store(&azurite);
    s.ensure_container("app-get-order").await.unwrap();
    s.ensure_container("app-get-order").await.unwrap();
    assert!(!s.exists("app-get-order", "abc.zip").await.unwrap());
    assert!(
        s.put_if_absent("app-get-order", "abc.zip", b"zip bytes".to_vec())
            .await
            .unwrap()
    );
    assert!(
        !s.put_if_absent("app-get-order", "abc.zip", b"other".to_vec())
            .await
            .unwrap()
    );
    assert!(s.exists("app-get-order", "abc.zip").await.unwrap());
    let view = azurite.blobs("app-get-order");
    assert_eq!(view["abc.zip"]["content"], "zip bytes", "{view}");

    s.ensure_container("nimbus-state").await.unwrap();
    assert_eq!(
        s.get("nimbus-state", "shop/dev/azure/state.json")
            .await
            .unwrap(),
        None
    );
    s.put(
        "nimbus-state",
        "shop/dev/azure/state.json",
        b"{\"serial\": 1}".to_vec(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        s.get("nimbus-state", "shop/dev/azure/state.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{\"serial\": 1}"[..])
    );
    assert_eq!(
        azurite.blobs("nimbus-state")["shop/dev/azure/state.json"]["content"],
        "{\"serial\": 1}"
    );
}

#[tokio::test]
async fn the_lock_is_a_blob_lease() {
    let azurite = Azurite::start();
    let s = store(&azurite);
    let (c, b) = ("nimbus-state", "shop/dev/lock");
    let held = storage::lock(&s, c, b, "shop/dev", "apply", &options(0, 3600))
        .await
        .unwrap();
    let view = azurite.blobs(c);
    assert_eq!(view[b]["lease"], "leased", "{view}");
    let record: Value = serde_json::from_str(view[b]["content"].as_str().unwrap()).unwrap();
    assert_eq!(record["id"], held.info.id.as_str());
    assert_eq!(record["holder"], "tester@ci");
    assert_eq!(record["operation"], "apply");

    // A second run waits for its timeout, then fails naming the holder.
    let err = storage::lock(&s, c, b, "shop/dev", "apply", &options(300, 3600))
        .await
        .unwrap_err();
    match &err {
        AzureError::Engine(nimbus_engine::Error::Locked { lock, .. }) => {
            assert_eq!(lock.id, held.info.id)
        }
        e => panic!("{e}"),
    }
    assert!(
        err.hint()
            .unwrap()
            .contains(&format!("nimbus unlock {}", held.info.id))
    );

    // Unlock needs the right id.
    let wrong = storage::force_unlock(&s, c, b, "shop/dev", "nope")
        .await
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            AzureError::Engine(nimbus_engine::Error::LockIdMismatch { .. })
        ),
        "{wrong}"
    );
    storage::unlock_lease(&s, &held).await.unwrap();
    assert_eq!(azurite.blobs(c)[b]["lease"], "available");

    // Taken again, then broken by `unlock <id>`.
    let again = storage::lock(&s, c, b, "shop/dev", "destroy", &options(0, 3600))
        .await
        .unwrap();
    assert_ne!(again.info.id, held.info.id);
    storage::force_unlock(&s, c, b, "shop/dev", &again.info.id)
        .await
        .unwrap();
    assert_ne!(azurite.blobs(c)[b]["lease"], "leased");
    let none = storage::force_unlock(&s, c, b, "shop/dev", &again.info.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            none,
            AzureError::Engine(nimbus_engine::Error::NotLocked { .. })
        ),
        "{none}"
    );

    // An expired lock is taken over.
    let stale = storage::lock(&s, c, b, "shop/dev", "apply", &options(0, 0))
        .await
        .unwrap();
    let fresh = storage::lock(&s, c, b, "shop/dev", "apply", &options(0, 3600))
        .await
        .unwrap();
    assert_ne!(stale.info.id, fresh.info.id);
    let record: Value =
        serde_json::from_str(azurite.blobs(c)[b]["content"].as_str().unwrap()).unwrap();
    assert_eq!(record["id"], fresh.info.id.as_str());
}
