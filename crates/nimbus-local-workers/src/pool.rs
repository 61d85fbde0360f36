//! The pool of one function: hands invocations to idle workers, sends one ahead to a busy worker
//! or queues the rest, starts workers when waiting persists (see [`Pool`] for when), retires
//! workers that failed, and stops idle ones.
//!
//! **Invariants:** `instances` counts every process that is starting, idle, busy or being
//! stopped; a slot is released only once its process has been reaped, so there are never more
//! than `max_concurrency` worker processes. Every [`Job`] ends exactly once: finished, or not
//! started (sent ahead to a worker that died or timed out before replying to the invocation
//! before it), and then it is dispatched again by the caller.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};

use crate::worker::{Ctx, Outcome, Probe, Worker};
use crate::{ErrorInfo, Event, FunctionSpec, Hooks, InvokeError, PoolEvent, StopReason};

/// How long a stopped worker gets to exit after fd 3 is closed, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// How long [`Pool::shutdown`] lets in-flight invocations finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// A worker gets at least this long (or the function's timeout, if longer) to load the handler.
const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Busy workers are probed (`/proc` reads) at most this often, while requests wait.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// Only events up to this size are sent ahead (their frames fit in a pipe's buffer at once, so
/// that writing them never waits for the worker).
const SEND_AHEAD_MAX_EVENT: usize = 16 * 1024;
/// At most this many invocations wait ahead in a worker.
const SEND_AHEAD_DEPTH: usize = 2;

/// A pool of worker processes for one function. Cheap to clone: clones share the pool.
///
/// Needs a tokio runtime (with time and IO enabled) from the first invocation on. When the last
/// clone is dropped, the remaining workers are killed.
///
/// # Scaling up
///
/// An invocation that finds no idle worker waits for the first one to free up. A worker is
/// started for it at once only when no worker is serving or starting (scale from zero, or
/// after a failure). Otherwise the pool grows only once some invocation has waited
/// longer than [`FunctionSpec::scale_up_wait`], one start at a time (the next waits until the
/// last one is ready), up to `max_concurrency`, and
/// - while fewer workers serve than the machine has CPUs, or
/// - beyond that, only when a busy worker is blocked in its handler (sleeping, waiting on I/O or
///   on a resource call; read from `/proc/<pid>/stat`) in an invocation that has lasted longer
///   than `scale_up_wait`, so that another worker adds throughput.
///
/// A burst of quick invocations is so served by the warm workers in a few milliseconds instead
/// of starting an interpreter per waiting request; many clients of a function that computes do
/// not start more interpreters than the CPUs can run; and a backlog of invocations that wait on
/// something grows the pool to `max_concurrency`. Idle workers stop after `idle_timeout`.
///
/// # Sending ahead
///
/// When no worker is idle and invocations of this function have been quick lately (shorter than
/// [`FunctionSpec::send_ahead_below`] on average), the next invocation (its event up to 16 KiB)
/// is sent at once to a busy worker instead of waiting for a reply: the worker starts it as soon
/// as it has replied to the one it runs, without waiting for the runtime, which saves both
/// processes a wake-up per invocation. At most two invocations wait ahead in a worker, and one
/// has not started until the worker replies to the one before it: if that one times out or its
/// worker dies, it is dispatched again (to another worker), not failed. Its timeout counts from
/// its start. Replies say where each invocation's output ends, so every line stays with the
/// invocation that printed it.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The handler's normalized result.
    pub result: Value,
    /// Whether this was the worker's first invocation (it was started for this load).
    pub cold: bool,
    /// From its start on the worker (its frame written, or, when it was sent ahead, the reply to
    /// the invocation before it) to its reply; waiting and the worker's start not included.
    pub duration: Duration,
    /// When `cold`: the worker's start, from spawn to ready (interpreter start + handler load).
    pub init: Option<Duration>,
    /// The process that served it.
    pub worker_pid: u32,
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker processes: starting, idle, busy or being stopped.
    pub instances: usize,
    /// Of those, the ones starting (spawned, not ready yet).
    pub starting: usize,
    /// Workers serving an invocation.
    pub busy: usize,
    /// Invocations waiting for a worker (to start or to free up), or sent ahead to a busy one.
    pub queued: usize,
    /// Invocations sent to a busy worker ahead of their turn (see [`Pool`], "Sending ahead"),
    /// since the pool was created.
    pub sent_ahead: u64,
    /// Workers started (cold starts), since the pool was created.
    pub cold_starts: u64,
    /// Invocations served or failed (not those turned away), since the pool was created.
    pub invocations: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// Invocations turned away: `Overloaded` or `Draining`.
    pub rejected: u64,
}

struct Inner {
    spec: FunctionSpec,
    ctx: Ctx,
    /// The CPUs this process may use.
    cpus: usize,
    state: Mutex<State>,
    /// Woken on every state change (for `drain`, `shutdown`).
    changed: Notify,
    /// Wakes the reaper: a worker became idle, or the pool is gone.
    reaper: Arc<Notify>,
    /// The sequence number of the last `InstancesChanged` event passed to the hooks.
    announced: Mutex<u64>,
}

/// An invocation on its way to a worker: what the worker needs, and where its end goes.
pub(crate) struct Job {
    pub(crate) request_id: Arc<str>,
    pub(crate) event: Event,
    done: oneshot::Sender<Done>,
}

/// How a [`Job`] ended.
enum Done {
    /// It ran.
    Finished(Result<Invocation, InvokeError>),
    /// It had been sent ahead to a worker that died (or timed out) before starting it: it is to
    /// be dispatched again.
    NotStarted,
}

/// Where the pool puts invocations for a busy worker to send ahead (at most
/// [`SEND_AHEAD_DEPTH`] waiting ahead in that worker at a time).
#[derive(Default)]
pub(crate) struct Ahead {
    jobs: Mutex<VecDeque<Job>>,
    put: Notify,
}

impl Ahead {
    fn put(&self, job: Job) {
        self.lock().push_back(job);
        self.put.notify_one();
    }

    /// Waits until a job may have been put.
    pub(crate) async fn wait(&self) {
        self.put.notified().await;
    }

    /// The jobs put, in order.
    pub(crate) fn take(&self) -> VecDeque<Job> {
        mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What an invocation waiting for a worker gets: a worker (with its job back), or nothing when
/// its job was sent ahead to a busy worker.
type Handoff = Result<Option<(Worker, Job)>, InvokeError>;

struct Waiter {
    id: u64,
    job: Job,
    tx: oneshot::Sender<Handoff>,
    /// It has waited longer than `scale_up_wait`.
    overdue: bool,
}

/// What an invocation found.
enum Acquired {
    /// An idle worker.
    Worker(Box<Worker>, Job),
    /// A busy worker's slot: it is sent ahead.
    Ahead,
    /// A place in line.
    Wait(u64, oneshot::Receiver<Handoff>),
}

/// How to stop a worker.
enum Stop {
    /// Close fd 3, wait a little, then kill.
    Graceful(StopReason),
    /// Kill at once.
    Kill(StopReason),
    /// It died by itself while idle.
    Dead,
}

#[derive(Default)]
struct State {
    /// Idle workers, the most recently used last.
    idle: Vec<Worker>,
    instances: usize,
    starting: usize,
    busy: usize,
    waiters: VecDeque<Waiter>,
    /// Slots of busy workers that take an invocation to send ahead.
    ahead: Vec<Arc<Ahead>>,
    /// Invocations put in such slots, not started yet.
    ahead_jobs: usize,
    sent_ahead: u64,
    /// The mean duration of recent invocations (moving average), once one has finished.
    recent: Option<Duration>,
    /// Every worker process that exists, by pid.
    probes: BTreeMap<u32, Arc<Probe>>,
    /// A probe found a busy worker blocked in its handler (since the last start).
    blocked: bool,
    /// When busy workers were last probed.
    probed_at: Option<Instant>,
    draining: bool,
    shut_down: bool,
    reaper_running: bool,
    next_waiter: u64,
    instances_seq: u64,
    cold_starts: u64,
    invocations: u64,
    errors: u64,
    rejected: u64,
    /// What to do once the lock is released.
    work: Work,
}

#[derive(Default)]
struct Work {
    starts: usize,
    stops: Vec<(Worker, Stop)>,
    events: Vec<PoolEvent>,
    wake_reaper: bool,
}

impl Pool {
    /// A pool for `spec`, without workers yet.
    pub fn new(spec: FunctionSpec, hooks: Arc<dyn Hooks>) -> Pool {
        let ctx = Ctx {
            function: Arc::from(spec.name.as_str()),
            hooks,
            memory_mb: spec.memory_mb,
            shutdown: watch::Sender::new(false),
        };
        Pool {
            inner: Arc::new(Inner {
                spec,
                ctx,
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                reaper: Arc::new(Notify::new()),
                announced: Mutex::new(0),
            }),
        }
    }

    /// The function this pool runs.
    pub fn spec(&self) -> &FunctionSpec {
        &self.inner.spec
    }

    /// Runs one invocation: on an idle worker, else sent ahead to a busy one or on the first to
    /// free up or to be started (see "Sending ahead" and "Scaling up"). At most
    /// `max_concurrency + max_queued` invocations are running or waiting; beyond that,
    /// [`InvokeError::Overloaded`].
    ///
    /// Once a worker has it, the invocation runs to its end even if this future is dropped.
    pub async fn invoke(
        &self,
        request_id: &str,
        event: impl Into<Event>,
    ) -> Result<Invocation, InvokeError> {
        let event = event.into();
        let request_id: Arc<str> = Arc::from(request_id);
        loop {
            let (done, ended) = oneshot::channel();
            let job = Job {
                request_id: Arc::clone(&request_id),
                event: event.clone(),
                done,
            };
            if let Some((worker, job)) = self.inner.acquire(job).await? {
                tokio::spawn(Arc::clone(&self.inner).run(worker, job));
            }
            match ended.await {
                Ok(Done::Finished(result)) => return result,
                Ok(Done::NotStarted) => {} // its worker died first: again
                Err(_) => {
                    return Err(InvokeError::Crashed {
                        detail: "the invocation was dropped by the runtime".to_owned(),
                    });
                }
            }
        }
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        let st = self.inner.lock();
        PoolStats {
            instances: st.instances,
            starting: st.starting,
            busy: st.busy,
            queued: st.waiters.len() + st.ahead_jobs,
            sent_ahead: st.sent_ahead,
            cold_starts: st.cold_starts,
            invocations: st.invocations,
            errors: st.errors,
            rejected: st.rejected,
        }
    }

    /// The process ids of the pool's workers now.
    pub fn pids(&self) -> Vec<u32> {
        self.inner.lock().probes.keys().copied().collect()
    }

    /// Takes no new invocations (they get [`InvokeError::Draining`]), lets the running and
    /// queued ones finish, then stops every worker. Returns when no worker process is left.
    pub async fn drain(&self) {
        let inner = &self.inner;
        inner.update(|st| st.draining = true);
        inner
            .wait_until(|st| st.busy == 0 && st.waiters.is_empty() && st.starting == 0)
            .await;
        inner.update(|st| {
            for w in mem::take(&mut st.idle) {
                st.work.stops.push((w, Stop::Graceful(StopReason::Drained)));
            }
        });
        inner.wait_until(|st| st.instances == 0).await;
    }

    /// Like [`Pool::drain`], but queued invocations get [`InvokeError::Draining`] at once and
    /// workers still busy after a grace period (2 s) are killed (their invocations get
    /// [`InvokeError::Crashed`]). Returns when no worker process is left.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.update(|st| {
            st.draining = true;
            for waiter in mem::take(&mut st.waiters) {
                st.rejected += 1;
                let _ = waiter.tx.send(Err(InvokeError::Draining));
            }
        });
        let settled = inner.wait_until(|st| st.busy == 0 && st.starting == 0);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, settled).await;
        inner.update(|st| {
            st.shut_down = true;
            for w in mem::take(&mut st.idle) {
                st.work.stops.push((w, Stop::Kill(StopReason::Shutdown)));
            }
        });
        inner.ctx.shutdown.send_replace(true);
        inner.wait_until(|st| st.instances == 0).await;
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("function", &self.inner.spec.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state under the lock, then (unlocked) starts and stops workers, wakes the
    /// reaper, passes events to the hooks and wakes whoever waits for a change.
    fn update<R>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, work, instances, spawn_reaper) = {
            let mut st = self.lock();
            let before = st.instances;
            let out = f(&mut st);
            st.replenish(self.spec.capacity(), self.cpus);
            let instances = (st.instances != before).then(|| {
                st.instances_seq += 1;
                (st.instances_seq, st.instances)
            });
            let spawn_reaper = st.work.wake_reaper && !st.reaper_running;
            st.reaper_running |= spawn_reaper;
            (out, mem::take(&mut st.work), instances, spawn_reaper)
        };
        if spawn_reaper {
            spawn(reaper(Arc::downgrade(self), Arc::clone(&self.reaper)));
        }
        if work.wake_reaper {
            self.reaper.notify_one();
        }
        for _ in 0..work.starts {
            spawn(Arc::clone(self).start());
        }
        for (worker, stop) in work.stops {
            spawn(Arc::clone(self).stop(worker, stop));
        }
        let hooks = &self.ctx.hooks;
        for event in work.events {
            hooks.event(&self.ctx.function, event);
        }
        if let Some((seq, instances)) = instances {
            // Racing updates announce in order: a count older than the last one announced is
            // skipped, so the last event always carries the current count.
            let mut announced = self
                .announced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seq > *announced {
                *announced = seq;
                hooks.event(
                    &self.ctx.function,
                    PoolEvent::InstancesChanged { instances },
                );
            }
        }
        self.changed.notify_waiters();
        out
    }

    async fn wait_until(&self, done: impl Fn(&State) -> bool) {
        loop {
            let changed = self.changed.notified();
            if done(&self.lock()) {
                return;
            }
            changed.await;
        }
    }

    /// A worker for `job`: an idle one, or one handed over while waiting; or none when the job
    /// was sent ahead to a busy worker (it then ends through its `done`).
    async fn acquire(self: &Arc<Self>, job: Job) -> Result<Option<(Worker, Job)>, InvokeError> {
        let capacity = self.spec.capacity();
        let max_queued = self.spec.max_queued;
        let acquired = self.update(|st| {
            if st.draining {
                st.rejected += 1;
                return Err(InvokeError::Draining);
            }
            while let Some(mut worker) = st.idle.pop() {
                if worker.is_gone() {
                    st.work.stops.push((worker, Stop::Dead));
                    continue;
                }
                st.busy += 1;
                return Ok(Acquired::Worker(Box::new(worker), job));
            }
            if st.may_send_ahead(&job, self.spec.send_ahead_below)
                && let Some(ahead) = st.ahead.pop()
            {
                st.put_ahead(&ahead, job);
                return Ok(Acquired::Ahead);
            }
            // One invocation per worker the pool may have, and `max_queued` more.
            if st.busy + st.waiters.len() + st.ahead_jobs >= capacity + max_queued {
                st.rejected += 1;
                return Err(InvokeError::Overloaded);
            }
            let id = st.next_waiter;
            st.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(Waiter {
                id,
                job,
                tx,
                overdue: false,
            });
            Ok(Acquired::Wait(id, rx)) // `update` starts a worker for it if none serves
        })?;
        match acquired {
            Acquired::Worker(worker, job) => Ok(Some((*worker, job))),
            Acquired::Ahead => Ok(None),
            Acquired::Wait(id, rx) => {
                let mut wait = Wait {
                    inner: self,
                    id,
                    rx,
                    done: false,
                };
                // Every `scale_up_wait` of waiting, the pool may grow for it.
                let handoff = loop {
                    let wait_more = tokio::time::timeout(self.spec.scale_up_wait, &mut wait.rx);
                    match wait_more.await {
                        Ok(handoff) => break handoff,
                        Err(_) => self.overdue(id),
                    }
                };
                wait.done = true;
                handoff.unwrap_or(Err(InvokeError::Draining))
            }
        }
    }

    /// Waiter `id` has waited longer than `scale_up_wait` (again): the pool may grow for it (see
    /// [`Pool`], "Scaling up"), after probing the busy workers if that decides it.
    fn overdue(self: &Arc<Self>, id: u64) {
        let (capacity, cpus) = (self.spec.capacity(), self.cpus);
        let now = Instant::now();
        let probes = self.update(|st| {
            if let Some(w) = st.waiters.iter_mut().find(|w| w.id == id) {
                w.overdue = true;
            }
            let serving = st.idle.len() + st.busy;
            let decides = st.instances < capacity && st.starting == 0 && serving >= cpus;
            let recent = st.probed_at.is_some_and(|at| now < at + PROBE_EVERY);
            if !decides || recent || st.blocked {
                return Vec::new();
            }
            st.probed_at = Some(now);
            st.probes.values().cloned().collect()
        });
        if probes.iter().any(|p| p.blocked(self.spec.scale_up_wait)) {
            self.update(|st| st.blocked = true);
        }
    }

    /// Runs `job` on `worker`, then the invocations sent ahead to it while it ran, then returns
    /// it to the pool or retires it.
    async fn run(self: Arc<Self>, worker: Worker, job: Job) {
        let mut worker = Some(worker);
        // This invocation and those after it on this worker, in order: sent ahead already (with
        // their frame id), or put in its slot too late to be sent.
        let mut jobs: VecDeque<(Job, Option<u64>)> = VecDeque::from([(job, None)]);
        loop {
            let (Some(w), Some((job, sent))) = (worker.as_mut(), jobs.pop_front()) else {
                return;
            };
            // While this one runs, the worker may take invocations ahead.
            let sent_ahead = jobs.iter().filter(|(_, id)| id.is_some()).count();
            let room = SEND_AHEAD_DEPTH.saturating_sub(sent_ahead);
            let below = self.spec.send_ahead_below;
            if jobs.is_empty() || sent_ahead == jobs.len() {
                self.update(|st| st.offer_ahead(&w.ahead, below, room));
            }
            let cold = w.served == 0;
            let init = cold.then_some(w.init);
            let worker_pid = w.pid();
            let behind: Vec<Arc<str>> = jobs
                .iter()
                .take_while(|(_, id)| id.is_some())
                .map(|(job, _)| Arc::clone(&job.request_id))
                .collect();
            let (outcome, newly_sent) = w
                .invoke(
                    &self.ctx,
                    &job.request_id,
                    &job.event,
                    sent,
                    &behind,
                    self.spec.timeout,
                )
                .await;
            w.served += 1;
            let ahead = Arc::clone(&w.ahead);
            let (result, gone) = match outcome {
                Outcome::Ok { result, duration } => {
                    let invocation = Invocation {
                        result,
                        cold,
                        duration,
                        init,
                        worker_pid,
                    };
                    (Ok(invocation), None)
                }
                Outcome::Handler { error } => (Err(InvokeError::Handler { error }), None),
                Outcome::Fatal { error, reason } => (Err(error), Some(reason)),
            };
            let duration = result.as_ref().ok().map(|inv| inv.duration);
            // Jobs sent during this invocation follow those sent before; jobs put in the slot but
            // not sent come last. If the worker is gone, none of them had started.
            let at = jobs.iter().take_while(|(_, id)| id.is_some()).count();
            for (i, sent) in newly_sent.into_iter().enumerate() {
                jobs.insert(at + i, (sent.job, Some(sent.id)));
            }
            let released = self.update(|st| {
                st.invocations += 1;
                if result.is_err() {
                    st.errors += 1;
                }
                if let Some(d) = duration {
                    st.recent = Some(st.recent.map_or(d, |r| (r * 7 + d) / 8));
                }
                st.ahead.retain(|a| !Arc::ptr_eq(a, &ahead));
                jobs.extend(ahead.take().into_iter().map(|job| (job, None)));
                if let Some(reason) = gone {
                    st.busy -= 1;
                    st.gone(worker_pid, reason);
                    for (job, _) in jobs.drain(..) {
                        st.ahead_jobs -= 1;
                        let _ = job.done.send(Done::NotStarted);
                    }
                    return true;
                }
                if jobs.is_empty() {
                    st.busy -= 1;
                    if let Some(w) = worker.take() {
                        st.hand_over(w);
                    }
                    return true;
                }
                st.ahead_jobs -= 1; // the next one starts
                false
            });
            let _ = job.done.send(Done::Finished(result));
            if released {
                return; // the worker is free, or gone (then dropped: it is reaped)
            }
        }
    }

    /// Starts one worker (its slot is already counted) and hands it over when it is ready.
    async fn start(self: Arc<Self>) {
        let mut worker = match Worker::spawn(&self.spec, &self.ctx) {
            Ok(worker) => worker,
            Err(error) => {
                self.update(|st| st.start_failed(None, error));
                return;
            }
        };
        let pid = worker.pid();
        let probe = worker.probe();
        self.update(|st| st.probes.insert(pid, probe));
        let limit = self.spec.timeout.max(MIN_INIT_TIMEOUT);
        match worker.ready(&self.ctx, limit).await {
            Ok(load) => {
                let init = worker.init;
                self.update(|st| {
                    st.starting -= 1;
                    st.cold_starts += 1;
                    st.work
                        .events
                        .push(PoolEvent::WorkerStarted { pid, init, load });
                    st.hand_over(worker);
                });
            }
            Err(error) => self.update(|st| {
                st.probes.remove(&pid);
                st.start_failed(Some(pid), error);
            }),
        }
    }

    /// Stops `worker` (its slot is still counted) and releases its slot.
    async fn stop(self: Arc<Self>, mut worker: Worker, stop: Stop) {
        let pid = worker.pid();
        let reason = match stop {
            Stop::Graceful(reason) => {
                worker.stop(STOP_GRACE).await;
                reason
            }
            Stop::Kill(reason) => {
                worker.kill().await;
                reason
            }
            Stop::Dead => {
                let status = worker.kill().await;
                StopReason::Crashed {
                    detail: worker.crash_detail(status, "exited while idle"),
                }
            }
        };
        drop(worker);
        self.update(|st| st.gone(pid, reason));
    }

    /// Stops the workers idle longer than the idle timeout; returns when the next one expires.
    fn reap(self: &Arc<Self>) -> Option<Instant> {
        let idle_timeout = self.spec.idle_timeout;
        self.update(|st| {
            let now = Instant::now();
            let (expired, kept): (Vec<Worker>, Vec<Worker>) = mem::take(&mut st.idle)
                .into_iter()
                .partition(|w| w.idle_since + idle_timeout <= now);
            st.idle = kept;
            for worker in expired {
                st.work
                    .stops
                    .push((worker, Stop::Graceful(StopReason::Idle)));
            }
            st.idle.iter().map(|w| w.idle_since + idle_timeout).min()
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reaper.notify_one(); // the reaper finds the pool gone and ends
    }
}

/// Spawns `task` on the current tokio runtime. Without one (it is shutting down) the task is
/// dropped, and with it any worker it owns, whose process is then killed.
fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(task);
    }
}

/// Stops idle workers when their idle timeout passes; ends when the pool is gone.
async fn reaper(pool: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = match pool.upgrade() {
            Some(inner) => inner.reap(),
            None => return,
        };
        match next {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at);
                let _ = tokio::time::timeout_at(at, wake.notified()).await;
            }
            None => wake.notified().await,
        }
    }
}

/// An invocation waiting for a worker. If the waiting is abandoned (the `invoke` future dropped),
/// it leaves the line, and a worker handed over meanwhile goes back to the pool.
struct Wait<'a> {
    inner: &'a Arc<Inner>,
    id: u64,
    rx: oneshot::Receiver<Handoff>,
    done: bool,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.rx.close();
        let handed = self.rx.try_recv().ok();
        let id = self.id;
        self.inner.update(|st| {
            st.waiters.retain(|w| w.id != id);
            // (A job sent ahead runs anyway; its result is dropped.)
            if let Some(Ok(Some((worker, _job)))) = handed {
                st.busy -= 1;
                st.hand_over(worker);
            }
        });
    }
}

impl State {
    /// Gives a free worker to the first waiter still waiting, or makes it idle.
    fn hand_over(&mut self, mut worker: Worker) {
        if self.shut_down {
            self.work
                .stops
                .push((worker, Stop::Kill(StopReason::Shutdown)));
            return;
        }
        while let Some(waiter) = self.waiters.pop_front() {
            match waiter.tx.send(Ok(Some((worker, waiter.job)))) {
                Ok(()) => {
                    self.busy += 1;
                    return;
                }
                Err(Ok(Some((back, _abandoned)))) => worker = back,
                Err(_) => return, // only workers are sent here
            }
        }
        worker.idle_since = Instant::now();
        self.idle.push(worker);
        self.work.wake_reaper = true;
    }

    /// Whether `job` may be sent ahead to a busy worker: invocations of this function have lasted
    /// less than `below` lately (so that it does not wait long behind the one running), and its
    /// event is small (its frame fits in the pipe at once).
    fn may_send_ahead(&self, job: &Job, below: Duration) -> bool {
        self.quick(below) && job.event.json().len() <= SEND_AHEAD_MAX_EVENT
    }

    /// Whether invocations have lasted less than `below` on average lately.
    fn quick(&self, below: Duration) -> bool {
        !self.draining && self.recent.is_some_and(|d| d < below)
    }

    /// Puts `job` in a busy worker's slot, to be sent ahead.
    fn put_ahead(&mut self, ahead: &Ahead, job: Job) {
        self.ahead_jobs += 1;
        self.sent_ahead += 1;
        ahead.put(job);
    }

    /// A busy worker starts an invocation and may take `room` more ahead: the first waiters are
    /// sent ahead to it, and its slot takes the next invocations that come, if invocations may be
    /// sent ahead.
    fn offer_ahead(&mut self, ahead: &Arc<Ahead>, below: Duration, room: usize) {
        for _ in 0..room {
            let may = match self.waiters.front() {
                Some(first) => self.may_send_ahead(&first.job, below),
                None => self.quick(below),
            };
            if !may {
                return;
            }
            match self.waiters.pop_front() {
                Some(waiter) => {
                    self.put_ahead(ahead, waiter.job);
                    let _ = waiter.tx.send(Ok(None));
                }
                None => self.ahead.push(Arc::clone(ahead)),
            }
        }
    }

    /// A worker process is gone (reaped): its slot is free.
    fn gone(&mut self, pid: u32, reason: StopReason) {
        self.instances -= 1;
        self.probes.remove(&pid);
        self.work
            .events
            .push(PoolEvent::WorkerStopped { pid, reason });
    }

    /// A worker could not start: the first waiter gets the error (each waiter then gets its own
    /// attempt, through `replenish`: nothing serves or starts).
    fn start_failed(&mut self, pid: Option<u32>, error: ErrorInfo) {
        self.starting -= 1;
        self.instances -= 1;
        self.work.events.push(PoolEvent::WorkerFailed {
            pid,
            error: error.clone(),
        });
        while let Some(waiter) = self.waiters.pop_front() {
            let failed = InvokeError::LoadFailed {
                error: error.clone(),
            };
            if waiter.tx.send(Err(failed)).is_ok() {
                self.invocations += 1;
                self.errors += 1;
                break;
            }
        }
    }

    /// Starts a worker, if the pool may grow and should (see the module's "Scaling up"): for a
    /// waiter when no worker serves or starts; else, one start at a time, for an overdue waiter
    /// while fewer than `cpus` workers serve, or when a busy worker was found blocked.
    fn replenish(&mut self, capacity: usize, cpus: usize) {
        if self.waiters.is_empty() {
            self.blocked = false;
        }
        if self.shut_down || self.starting > 0 || self.instances >= capacity {
            return;
        }
        let serving = self.idle.len() + self.busy;
        let grow = match self.waiters.front() {
            None => false,
            Some(_) if serving == 0 => true,
            Some(_) => self.waiters.iter().any(|w| w.overdue) && (serving < cpus || self.blocked),
        };
        if grow {
            self.instances += 1;
            self.starting += 1;
            self.work.starts += 1;
            self.blocked = false;
        }
    }
}
