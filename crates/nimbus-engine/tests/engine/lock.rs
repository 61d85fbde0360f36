//! Locks, over both backends: a second concurrent apply is refused naming the holder; expired
//! locks are taken over; unlock needs the right id; a lock timeout waits for the holder.

use std::time::Duration;

use nimbus_engine::{Backend, Error, LockInfo, LockOptions, Options, TryLock};
use serde_json::json;

use crate::both_backends;
use crate::support::{FakeCloud, Fixture, deployment, options, res};

fn desired() -> Vec<nimbus_engine::NativeResource> {
    (0..3)
        .map(|i| res(&format!("r{i}"), json!({"i": i})))
        .collect()
}

fn as_holder(holder: &str, timeout: Duration) -> Options {
    Options {
        lock: LockOptions {
            holder: Some(holder.into()),
            timeout,
            ..LockOptions::default()
        },
        ..options()
    }
}

both_backends!(
    a_second_concurrent_apply_is_refused_naming_the_holder,
    an_expired_lock_is_taken_over,
    unlock_needs_the_lock_id,
    a_lock_timeout_waits_for_the_holder_to_finish,
    a_failed_apply_releases_its_lock,
    a_lock_whose_process_is_gone_is_reported_stale_at_once,
);

async fn a_second_concurrent_apply_is_refused_naming_the_holder(fixture: Fixture) {
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(20));
    let alice = fixture.engine_with(&cloud, as_holder("alice@ci", Duration::ZERO));
    let bob = fixture.engine_with(&cloud, as_holder("bob@laptop", Duration::ZERO));
    let d = desired();
    let (first, second) = tokio::join!(alice.apply(&d), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let held = bob
            .lock_info()
            .await
            .unwrap()
            .expect("alice holds the lock");
        (held, bob.apply(&d).await)
    });
    first.unwrap();
    let (held, second) = second;
    let err = second.unwrap_err();
    let Error::Locked { scope, lock } = &err else {
        panic!("{err}")
    };
    assert_eq!(scope, "shop/dev");
    assert_eq!(lock.holder, "alice@ci");
    assert_eq!(lock.operation, "apply");
    assert_eq!(lock.pid, std::process::id());
    assert_eq!(**lock, held);
    let message = err.to_string();
    assert!(
        message.starts_with("`shop/dev` is locked by alice@ci (pid "),
        "{message}"
    );
    assert!(
        message.contains(&format!("lock id `{}`", held.id)),
        "{message}"
    );
    assert!(
        err.hint()
            .unwrap()
            .contains(&format!("nimbus unlock {}", held.id))
    );
    assert_eq!(cloud.objects().len(), 3, "only the first apply ran");
    assert!(
        alice.lock_info().await.unwrap().is_none(),
        "released at the end"
    );
}

async fn an_expired_lock_is_taken_over(fixture: Fixture) {
    let backend = fixture.backend();
    let stale = LockInfo::new(
        &deployment().lock_scope(),
        "apply",
        &LockOptions {
            ttl: Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(backend.try_lock(&stale).await.unwrap(), TryLock::Acquired);
    assert!(stale.is_expired());
    let cloud = FakeCloud::new();
    fixture.engine(&cloud).apply(&desired()).await.unwrap();
    assert!(backend.read_lock().await.unwrap().is_none());
    // A fresh lock is not taken over.
    let fresh = LockInfo::new(&deployment().lock_scope(), "apply", &LockOptions::default());
    assert_eq!(backend.try_lock(&fresh).await.unwrap(), TryLock::Acquired);
    let other = LockInfo::new(
        &deployment().lock_scope(),
        "destroy",
        &LockOptions::default(),
    );
    assert_eq!(
        backend.try_lock(&other).await.unwrap(),
        TryLock::Held(fresh)
    );
}

async fn unlock_needs_the_lock_id(fixture: Fixture) {
    let cloud = FakeCloud::new();
    let engine = fixture.engine(&cloud);
    let err = engine.unlock("nothing").await.unwrap_err();
    assert_eq!(err.to_string(), "`shop/dev` is not locked");
    let dead = LockInfo::new(&deployment().lock_scope(), "apply", &LockOptions::default());
    fixture.backend().try_lock(&dead).await.unwrap();
    assert!(matches!(
        engine.apply(&desired()).await,
        Err(Error::Locked { .. })
    ));
    let err = engine.unlock("0123456789abcdef").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "lock id `0123456789abcdef` does not match the lock on `shop/dev` (id `{}`): pass the id shown in the lock error",
            dead.id
        )
    );
    assert_eq!(engine.lock_info().await.unwrap(), Some(dead.clone()));
    engine.unlock(&dead.id).await.unwrap();
    assert_eq!(engine.lock_info().await.unwrap(), None);
    engine.apply(&desired()).await.unwrap();
}

async fn a_lock_timeout_waits_for_the_holder_to_finish(fixture: Fixture) {
    let cloud = FakeCloud::new();
    cloud.set_latency(Duration::from_millis(300));
    let first = fixture.engine_with(&cloud, as_holder("first", Duration::ZERO));
    let patient = fixture.engine_with(&cloud, as_holder("patient", Duration::from_secs(10)));
    let d = desired();
    let started = tokio::time::Instant::now();
    let (a, b) = tokio::join!(first.apply(&d), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        patient.apply(&d).await
    });
    assert_eq!(a.unwrap().summary.create, 3);
    let b = b.unwrap();
    assert_eq!(b.calls.writes(), 0, "it saw the first apply's result");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Too short a timeout still fails, after waiting.
    let holder = LockInfo::new(&deployment().lock_scope(), "apply", &LockOptions::default());
    fixture.backend().try_lock(&holder).await.unwrap();
    let hasty = fixture.engine_with(&cloud, as_holder("hasty", Duration::from_millis(250)));
    let started = tokio::time::Instant::now();
    assert!(matches!(hasty.apply(&d).await, Err(Error::Locked { .. })));
    assert_eq!(started.elapsed(), Duration::from_millis(250));
}

async fn a_lock_whose_process_is_gone_is_reported_stale_at_once(fixture: Fixture) {
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let pid = exited.id();
    exited.wait().unwrap();
    let dead = LockInfo {
        pid,
        ..LockInfo::new(&deployment().lock_scope(), "apply", &LockOptions::default())
    };
    if dead.host.is_empty() {
        return; // no host name to compare (not Linux): such a lock is waited on as before
    }
    fixture.backend().try_lock(&dead).await.unwrap();
    let cloud = FakeCloud::new();
    let patient = fixture.engine_with(&cloud, as_holder("patient", Duration::from_secs(3600)));
    let started = tokio::time::Instant::now();
    let err = patient.apply(&desired()).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "not waited on");
    let Error::StaleLock { lock, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(**lock, dead);
    assert!(
        err.to_string()
            .starts_with("`shop/dev` is locked by a run that is gone: "),
        "{err}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains(&format!("no process has pid {pid} on this host"))
            && hint.contains(&format!("`nimbus unlock {}`", dead.id)),
        "{hint}"
    );
    // Taken over as the hint says, the deploy goes through.
    patient.unlock(&dead.id).await.unwrap();
    patient.apply(&desired()).await.unwrap();
    assert!(cloud.objects().len() == 3);
}

async fn a_failed_apply_releases_its_lock(fixture: Fixture) {
    let cloud = FakeCloud::new();
    cloud.fail(&crate::support::id("r1"));
    let engine = fixture.engine(&cloud);
    assert!(matches!(
        engine.apply(&desired()).await,
        Err(Error::Failed { .. })
    ));
    assert!(engine.lock_info().await.unwrap().is_none());
    let other = Fixture::memory();
    let report = other.engine(&cloud).destroy(false).await.unwrap();
    assert_eq!(
        report.summary.delete, 0,
        "destroying an empty deployment is a no-op"
    );
}
