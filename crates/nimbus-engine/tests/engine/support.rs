//! Test support: `FakeCloud` (an in-memory cloud behind the `Driver` trait that records every
//! call and can inject failures, throttling, latency and lost responses), backends over both
//! local files and an in-memory object store, and convergence checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nimbus_engine::resource::resolve;
use nimbus_engine::{
    Applied, Backend, Condition, Deployment, Driver, DriverError, Engine, Error,
    InMemoryObjectStore, Live, LocalBackend, LockInfo, NativeResource, ObjectStore,
    ObjectStoreBackend, Options, RetryPolicy, State, StateEntry, StoreError, TryLock, VersionToken,
};
use serde_json::Value;

pub const KIND: &str = "fake.thing";

/// The logical id of the test resource `name`.
pub fn id(name: &str) -> String {
    format!("{KIND}/{name}")
}

/// A resource `name` with physical name `name` and `props`.
pub fn res(name: &str, props: Value) -> NativeResource {
    NativeResource {
        id: id(name),
        kind: KIND.into(),
        physical_name: Some(name.into()),
        properties: props,
        depends_on: Vec::new(),
        replace_on: Vec::new(),
        retain_data: false,
    }
}

/// `r` depending on the resources named `deps`.
pub fn after(mut r: NativeResource, deps: &[&str]) -> NativeResource {
    r.depends_on = deps.iter().map(|d| id(d)).collect();
    r
}

pub fn deployment() -> Deployment {
    Deployment::new("shop", "dev", "fake").unwrap()
}

/// Fast retries for tests.
pub fn options() -> Options {
    Options {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        },
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------------------
// FakeCloud
// ---------------------------------------------------------------------------------------------

/// One object in the fake cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: String,
    pub properties: Value,
    pub outputs: BTreeMap<String, Value>,
    pub holds_data: bool,
}

/// A recorded driver call: creates and updates by logical id, the rest by physical id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Create(String),
    Update(String),
    Delete(String),
    Read(String),
    HoldsData(String),
}

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, Object>,
    calls: Vec<Call>,
    /// Successful creates per physical id, over the fake's lifetime.
    creations: BTreeMap<String, u32>,
    next_id: u64,
    latency: Duration,
    writes: u64,
    fail_after: Option<u64>,
    fail: BTreeSet<String>,
    transient: BTreeMap<String, u32>,
    lose_response: BTreeMap<String, bool>,
    in_flight: usize,
    max_in_flight: usize,
}

/// An in-memory cloud. Physical ids are the physical name when there is one, `fake-N`
/// otherwise; outputs are `{"arn": "fake:<kind>:<physical id>"}`. Creates refuse an existing
/// name (so a duplicate create fails loudly) and refuse references (`fake:` strings) to objects
/// that do not exist (so dependency order is checked by the cloud too). Each call takes its
/// latency in two halves with its effect in between, so a call dropped half-way has either
/// happened or not, and a dropped response is a lost response.
#[derive(Debug, Default)]
pub struct FakeCloud {
    inner: Mutex<Inner>,
}

fn arn(kind: &str, pid: &str) -> Value {
    Value::String(format!("fake:{kind}:{pid}"))
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

impl Inner {
    fn injected(&mut self, key: &str) -> Result<(), DriverError> {
        if self.fail_after.is_some_and(|n| self.writes >= n) {
            return Err(DriverError::permanent("InternalFailure: injected failure"));
        }
        if self.fail.contains(key) {
            return Err(DriverError::permanent(format!(
                "AccessDenied: not allowed to change `{key}`"
            )));
        }
        if let Some(left) = self.transient.get_mut(key).filter(|n| **n > 0) {
            *left -= 1;
            return Err(DriverError::retryable("Throttling: rate exceeded"));
        }
        Ok(())
    }

    fn check_refs(&self, props: &Value) -> Result<(), DriverError> {
        let mut all = Vec::new();
        strings(props, &mut all);
        let arns: BTreeSet<&str> = self
            .objects
            .values()
            .filter_map(|o| o.outputs.get("arn")?.as_str())
            .collect();
        match all
            .into_iter()
            .find(|s| s.starts_with("fake:") && !arns.contains(s.as_str()))
        {
            Some(missing) => Err(DriverError::permanent(format!(
                "InvalidParameter: `{missing}` does not exist"
            ))),
            None => Ok(()),
        }
    }

    fn create(&mut self, r: &NativeResource, props: &Value) -> Result<Applied, DriverError> {
        self.injected(&r.id)?;
        self.check_refs(props)?;
        let pid = match &r.physical_name {
            Some(name) if self.objects.contains_key(name) => {
                return Err(DriverError::permanent(format!(
                    "ResourceAlreadyExists: `{name}` already exists"
                )));
            }
            Some(name) => name.clone(),
            None => {
                self.next_id += 1;
                format!("fake-{}", self.next_id)
            }
        };
        let outputs = BTreeMap::from([("arn".to_string(), arn(&r.kind, &pid))]);
        let object = Object {
            kind: r.kind.clone(),
            properties: props.clone(),
            outputs: outputs.clone(),
            holds_data: false,
        };
        self.objects.insert(pid.clone(), object);
        *self.creations.entry(pid.clone()).or_default() += 1;
        self.writes += 1;
        if let Some(retryable) = self.lose_response.remove(&r.id) {
            return Err(DriverError {
                message: "RequestTimeout: connection reset before the response".into(),
                retryable,
            });
        }
        Ok(Applied {
            physical_id: pid,
            outputs,
        })
    }

    fn update(
        &mut self,
        r: &NativeResource,
        prior: &StateEntry,
        props: &Value,
    ) -> Result<Applied, DriverError> {
        self.injected(&r.id)?;
        self.check_refs(props)?;
        let Some(object) = self
            .objects
            .get_mut(&prior.physical_id)
            .filter(|o| o.kind == r.kind)
        else {
            return Err(DriverError::permanent(format!(
                "ResourceNotFound: `{}`",
                prior.physical_id
            )));
        };
        object.properties = props.clone();
        self.writes += 1;
        Ok(Applied {
            physical_id: prior.physical_id.clone(),
            outputs: object.outputs.clone(),
        })
    }

    fn delete(&mut self, entry: &StateEntry) -> Result<(), DriverError> {
        self.injected(&entry.physical_id)?;
        self.objects.remove(&entry.physical_id);
        self.writes += 1;
        Ok(())
    }
}

/// Decrements the in-flight count when a call ends, however it ends.
struct Flight<'a>(&'a FakeCloud);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

impl FakeCloud {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeCloud::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self, call: Call) -> (Flight<'_>, Duration) {
        let mut inner = self.lock();
        inner.calls.push(call);
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (Flight(self), inner.latency / 2)
    }

    async fn pause(half: Duration) {
        if !half.is_zero() {
            tokio::time::sleep(half).await;
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }
    /// Every write from the `n`-th on fails permanently (`None` heals).
    pub fn fail_after(&self, n: Option<u64>) {
        self.lock().fail_after = n;
    }
    /// Writes to `key` (logical id for create/update, physical id for delete) fail permanently.
    pub fn fail(&self, key: &str) {
        self.lock().fail.insert(key.to_string());
    }
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.fail.clear();
        inner.fail_after = None;
        inner.transient.clear();
    }
    /// The next `n` writes to `key` fail with a retryable throttling error.
    pub fn throttle(&self, key: &str, n: u32) {
        self.lock().transient.insert(key.to_string(), n);
    }
    /// The next create of `id` happens, but its response is an error.
    pub fn lose_create_response(&self, id: &str, retryable: bool) {
        self.lock().lose_response.insert(id.to_string(), retryable);
    }
    /// Changes a property behind the engine's back.
    pub fn tamper(&self, pid: &str, key: &str, value: Value) {
        self.lock()
            .objects
            .get_mut(pid)
            .expect("object exists")
            .properties[key] = value;
    }
    /// Deletes an object behind the engine's back.
    pub fn delete_behind(&self, pid: &str) {
        self.lock().objects.remove(pid);
    }
    pub fn set_holds_data(&self, pid: &str, holds: bool) {
        self.lock()
            .objects
            .get_mut(pid)
            .expect("object exists")
            .holds_data = holds;
    }
    pub fn objects(&self) -> BTreeMap<String, Object> {
        self.lock().objects.clone()
    }
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }
    pub fn clear_calls(&self) {
        let mut inner = self.lock();
        inner.calls.clear();
        inner.max_in_flight = 0;
    }
    pub fn creations(&self) -> BTreeMap<String, u32> {
        self.lock().creations.clone()
    }
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

impl Driver for FakeCloud {
    async fn create(
        &self,
        resource: &NativeResource,
        properties: &Value,
    ) -> Result<Applied, DriverError> {
        let (_flight, half) = self.enter(Call::Create(resource.id.clone()));
        Self::pause(half).await;
        let result = self.lock().create(resource, properties);
        Self::pause(half).await;
        result
    }

    async fn update(
        &self,
        resource: &NativeResource,
        prior: &StateEntry,
        properties: &Value,
    ) -> Result<Applied, DriverError> {
        let (_flight, half) = self.enter(Call::Update(resource.id.clone()));
        Self::pause(half).await;
        let result = self.lock().update(resource, prior, properties);
        Self::pause(half).await;
        result
    }

    async fn delete(&self, entry: &StateEntry) -> Result<(), DriverError> {
        let (_flight, half) = self.enter(Call::Delete(entry.physical_id.clone()));
        Self::pause(half).await;
        let result = self.lock().delete(entry);
        Self::pause(half).await;
        result
    }

    async fn read(&self, kind: &str, physical_id: &str) -> Result<Option<Live>, DriverError> {
        let (_flight, half) = self.enter(Call::Read(physical_id.to_string()));
        Self::pause(half).await;
        let live = self
            .lock()
            .objects
            .get(physical_id)
            .filter(|o| o.kind == kind)
            .map(|o| Live {
                physical_id: physical_id.to_string(),
                properties: o.properties.clone(),
                outputs: o.outputs.clone(),
            });
        Self::pause(half).await;
        Ok(live)
    }

    async fn holds_data(&self, entry: &StateEntry) -> Result<bool, DriverError> {
        let (_flight, _) = self.enter(Call::HoldsData(entry.physical_id.clone()));
        Ok(self
            .lock()
            .objects
            .get(&entry.physical_id)
            .is_some_and(|o| o.holds_data))
    }
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// An in-memory object store whose calls take `latency`, so a dropped apply can stop between a
/// state read and the conditional write.
#[derive(Debug, Default)]
pub struct SlowStore {
    pub inner: InMemoryObjectStore,
    pub latency: Mutex<Duration>,
    /// Puts and deletes so far.
    pub writes: std::sync::atomic::AtomicU64,
}

impl SlowStore {
    async fn pause(&self) {
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

impl ObjectStore for SlowStore {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, VersionToken)>, StoreError> {
        self.pause().await;
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<VersionToken, StoreError> {
        self.pause().await;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.put(key, bytes, condition).await
    }
    async fn delete(&self, key: &str, condition: Condition) -> Result<(), StoreError> {
        self.pause().await;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.delete(key, condition).await
    }
}

/// Either backend, so one test body runs over both.
#[derive(Debug, Clone)]
pub enum AnyBackend {
    Local(LocalBackend),
    Memory(ObjectStoreBackend<Arc<SlowStore>>),
}

impl Backend for AnyBackend {
    fn location(&self) -> String {
        match self {
            AnyBackend::Local(b) => b.location(),
            AnyBackend::Memory(b) => b.location(),
        }
    }
    async fn load(&self) -> Result<Option<State>, Error> {
        match self {
            AnyBackend::Local(b) => b.load().await,
            AnyBackend::Memory(b) => b.load().await,
        }
    }
    async fn save(&self, state: &State) -> Result<(), Error> {
        match self {
            AnyBackend::Local(b) => b.save(state).await,
            AnyBackend::Memory(b) => b.save(state).await,
        }
    }
    async fn try_lock(&self, lock: &LockInfo) -> Result<TryLock, Error> {
        match self {
            AnyBackend::Local(b) => b.try_lock(lock).await,
            AnyBackend::Memory(b) => b.try_lock(lock).await,
        }
    }
    async fn read_lock(&self) -> Result<Option<LockInfo>, Error> {
        match self {
            AnyBackend::Local(b) => b.read_lock().await,
            AnyBackend::Memory(b) => b.read_lock().await,
        }
    }
    async fn unlock(&self, id: &str) -> Result<(), Error> {
        match self {
            AnyBackend::Local(b) => b.unlock(id).await,
            AnyBackend::Memory(b) => b.unlock(id).await,
        }
    }
}

/// Where a test's state lives.
pub enum Fixture {
    Local(tempfile::TempDir),
    Memory(Arc<SlowStore>),
}

pub type TestEngine = Engine<AnyBackend, Arc<FakeCloud>>;

impl Fixture {
    pub fn local() -> Self {
        Fixture::Local(tempfile::tempdir().unwrap())
    }

    pub fn memory() -> Self {
        Fixture::Memory(Arc::new(SlowStore::default()))
    }

    pub fn backend(&self) -> AnyBackend {
        match self {
            Fixture::Local(dir) => AnyBackend::Local(LocalBackend::new(dir.path(), &deployment())),
            Fixture::Memory(store) => AnyBackend::Memory(ObjectStoreBackend::new(
                store.clone(),
                "nimbus",
                &deployment(),
            )),
        }
    }

    pub fn engine(&self, cloud: &Arc<FakeCloud>) -> TestEngine {
        self.engine_with(cloud, options())
    }

    pub fn engine_with(&self, cloud: &Arc<FakeCloud>, options: Options) -> TestEngine {
        Engine::new(deployment(), self.backend(), cloud.clone()).with_options(options)
    }

    /// The stored state's bytes.
    pub fn raw_state(&self) -> Option<Vec<u8>> {
        match self.backend() {
            AnyBackend::Local(b) => std::fs::read(b.state_path()).ok(),
            AnyBackend::Memory(b) => b.store().inner.bytes(b.state_key()),
        }
    }

    /// Replaces the stored state's bytes.
    pub fn write_raw_state(&self, bytes: &[u8]) {
        match self.backend() {
            AnyBackend::Local(b) => {
                std::fs::create_dir_all(b.state_path().parent().unwrap()).unwrap();
                std::fs::write(b.state_path(), bytes).unwrap();
            }
            AnyBackend::Memory(b) => {
                let store = &b.store().inner;
                let key = b.state_key();
                let condition = match block(store.get(key)).unwrap() {
                    Some((_, token)) => Condition::IfMatch(token),
                    None => Condition::IfAbsent,
                };
                block(store.put(key, bytes.to_vec(), condition)).unwrap();
            }
        }
    }

    /// Puts and deletes the store has seen (in-memory store only).
    pub fn store_writes(&self) -> u64 {
        match self {
            Fixture::Memory(store) => store.writes.load(std::sync::atomic::Ordering::Relaxed),
            Fixture::Local(_) => panic!("only the in-memory store counts writes"),
        }
    }

    /// Store calls take `latency` (in-memory store only).
    pub fn set_store_latency(&self, latency: Duration) {
        if let Fixture::Memory(store) = self {
            *store.latency.lock().unwrap() = latency;
        }
    }
}

/// Runs a future that never waits (the in-memory store's) to completion.
fn block<F: Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the in-memory store never waits"),
    }
}

/// Runs the test body `$name(fixture)` over both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(start_paused = true)]
                async fn local_file() {
                    super::$name($crate::support::Fixture::local()).await
                }
                #[tokio::test(start_paused = true)]
                async fn object_store() {
                    super::$name($crate::support::Fixture::memory()).await
                }
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// The cloud holds exactly the desired resources with their resolved properties, once each, and
/// the state records exactly the cloud.
pub fn assert_converged(cloud: &FakeCloud, state: &State, desired: &[NativeResource]) {
    assert!(
        state.journal.is_empty(),
        "journal left: {:?}",
        state.journal
    );
    let objects = cloud.objects();
    assert_eq!(
        objects.len(),
        state.resources.len(),
        "cloud {objects:#?}\nstate {:#?}",
        state.resources
    );
    for e in &state.resources {
        let o = objects
            .get(&e.physical_id)
            .unwrap_or_else(|| panic!("`{}` is recorded but not in the cloud", e.id));
        assert_eq!(
            (&o.kind, &o.properties, &o.outputs),
            (&e.kind, &e.properties, &e.outputs),
            "{}",
            e.id
        );
    }
    assert_eq!(state.resources.len(), desired.len());
    let outputs = state.outputs();
    for r in desired {
        let e = state
            .get(&r.id)
            .unwrap_or_else(|| panic!("`{}` is not recorded", r.id));
        if let Some(name) = &r.physical_name {
            assert_eq!(&e.physical_id, name);
        }
        assert_eq!(e.kind, r.kind);
        assert_eq!(
            objects[&e.physical_id].properties,
            resolve(&r.properties, &outputs).unwrap(),
            "{}",
            r.id
        );
    }
}

/// Position of the first `call` in `calls`.
pub fn position(calls: &[Call], call: &Call) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call:?} not in {calls:#?}"))
}
