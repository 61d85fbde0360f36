//! One worker process: spawn and ready handshake, invocations (answering the handler's resource
//! calls while they run), graceful stop and kill; and its [`Probe`], which tells the pool whether
//! the handler is blocked (sleeping, waiting on I/O) rather than computing.
//!
//! **Invariant:** a worker that returns [`Outcome::Fatal`] (or whose `ready`/`stop`/`kill` has
//! returned) is dead and reaped, and so is every process it started, in its process group or
//! not (see [`tree`](crate::tree)).
//!
//! **Invariant:** a worker does not outlive the runtime, however the runtime dies (`kill -9`
//! included). Each worker inherits, on fd 5 (named by `NIMBUS_LIFE_FD`), the read end of a pipe whose write end only this
//! process holds (close-on-exec, so no other child inherits it). The kernel closes that end when
//! this process exits; the worker's shim watches its end (a thread in Python, a pipe reader in
//! Node) and on end-of-file kills its own process group with `SIGKILL`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::frame::{self, FrameError, FrameReader, encode};
use crate::logs::Output;
use crate::pool::{Ahead, Job};
use crate::tree::{self, TAG_VAR};
use crate::{ErrorInfo, Event, FunctionSpec, Hooks, InvokeError, StopReason};

/// Stderr lines quoted in a crash report.
const CRASH_LINES: usize = 10;

/// The worker's fd that reaches end-of-file when the runtime is gone.
const LIFE_FD: i32 = 5;

/// What every worker of a pool shares.
pub(crate) struct Ctx {
    /// The function's name, for hooks.
    pub(crate) function: Arc<str>,
    /// The runtime's callbacks.
    pub(crate) hooks: Arc<dyn Hooks>,
    /// The memory limit, for `OutOfMemory`.
    pub(crate) memory_mb: u32,
    /// Becomes true when the pool shuts down: starting and busy workers are killed.
    pub(crate) shutdown: watch::Sender<bool>,
}

/// A running worker process and its pipes.
pub(crate) struct Worker {
    pid: u32,
    /// Its [`TAG_VAR`] value, which whatever it starts inherits.
    tag: String,
    child: Child,
    /// The write end of the worker's life pipe (see the module's invariants): never written,
    /// closed by the kernel when this process ends.
    _life: std::io::PipeWriter,
    to_worker: Option<pipe::Sender>,
    from_worker: FrameReader,
    output: Output,
    probe: Arc<Probe>,
    /// Where the pool puts an invocation to send ahead while this worker is busy.
    pub(crate) ahead: Arc<Ahead>,
    spawned: Instant,
    seq: u64,
    reaped: bool,
    /// Invocations it has served.
    pub(crate) served: u64,
    /// Spawn to ready.
    pub(crate) init: Duration,
    /// When it last became idle.
    pub(crate) idle_since: Instant,
}

/// How one invocation went.
pub(crate) enum Outcome {
    /// The handler returned.
    Ok {
        /// Its normalized result.
        result: Value,
        /// From sending the invocation to its reply.
        duration: Duration,
    },
    /// The handler raised; the worker goes on serving.
    Handler {
        /// What it raised.
        error: ErrorInfo,
    },
    /// The worker is gone (killed and reaped).
    Fatal {
        /// What the caller gets.
        error: InvokeError,
        /// Why the worker stopped.
        reason: StopReason,
    },
}

/// How the frame exchange of one invocation ended.
enum Exchanged {
    Reply(serde_json::Map<String, Value>),
    Exited,
    Protocol(String),
}

impl Worker {
    /// Starts a worker process (it then loads the handler: see [`Worker::ready`]).
    pub(crate) fn spawn(spec: &FunctionSpec, ctx: &Ctx) -> Result<Worker, ErrorInfo> {
        let extra = ctx.hooks.spawn_env(&ctx.function)?;
        let failed =
            |what: &str, e: io::Error| ErrorInfo::new("SpawnError", format!("{what}: {e}"));
        let pipes = || std::io::pipe().map_err(|e| failed("cannot create a pipe", e));
        let (req_r, req_w) = pipes()?;
        let (rep_r, rep_w) = pipes()?;
        let (life_r, life) = pipes()?;
        // Our ends first, so that nothing can fail once the process exists.
        let setup = |e| failed("cannot set up the worker's pipes", e);
        let to_worker = pipe::Sender::from_owned_fd(req_w.into()).map_err(setup)?;
        let replies = rep_r.try_clone().map_err(setup)?;
        let from_worker = FrameReader::new(rep_r.into()).map_err(setup)?;
        let (output, [out_w, err_w]) = Output::create(&ctx.function, &ctx.hooks)
            .map_err(|e| failed("cannot create the worker's output files", e))?;

        let tag = next_tag();
        let mut cmd = spec.command(&extra);
        cmd.env(TAG_VAR, &tag)
            .env("NIMBUS_LIFE_FD", LIFE_FD.to_string());
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        cmd.fd_mappings(vec![
            FdMapping {
                parent_fd: req_r.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: rep_w.into(),
                child_fd: 4,
            },
            FdMapping {
                parent_fd: life_r.into(),
                child_fd: LIFE_FD,
            },
        ])
        .map_err(|e| failed("cannot map fds 3, 4 and 5", io::Error::other(e)))?;
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| failed(&format!("cannot start `{}`", spec.interpreter.display()), e))?;
        // Dropping the command closes the worker's ends of the pipes here: they end with it.
        drop(cmd);
        let pid = child.id().unwrap_or(0);
        let probe = Arc::new(Probe {
            pid,
            replies: replies.into(),
            phase: AtomicU64::new(0),
            since: AtomicU64::new(0),
            buffered: AtomicBool::new(false),
        });
        Ok(Worker {
            pid,
            tag,
            child,
            _life: life,
            to_worker: Some(to_worker),
            from_worker,
            output,
            probe,
            ahead: Arc::default(),
            spawned,
            seq: 0,
            reaped: false,
            served: 0,
            init: Duration::ZERO,
            idle_since: spawned,
        })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Its probe.
    pub(crate) fn probe(&self) -> Arc<Probe> {
        Arc::clone(&self.probe)
    }

    /// Waits for the ready frame. On success returns the handler's load time (as the worker
    /// measured it) and sets [`Worker::init`]; on failure the worker is dead.
    pub(crate) async fn ready(
        &mut self,
        ctx: &Ctx,
        limit: Duration,
    ) -> Result<Duration, ErrorInfo> {
        let mut shutdown = ctx.shutdown.subscribe();
        let frame = tokio::select! {
            frame = tokio::time::timeout(limit, self.from_worker.next()) => frame.map_err(|_| Cut::Timeout),
            _ = shutdown.wait_for(|down| *down) => Err(Cut::Shutdown),
        };
        let failure = match frame {
            Err(Cut::Shutdown) => ErrorInfo::new("Shutdown", "the pool was shut down"),
            Err(Cut::Timeout) => ErrorInfo::new(
                "InitTimeout",
                format!(
                    "the worker did not load the handler within {} ms",
                    limit.as_millis()
                ),
            ),
            Ok(Ok(Some(frame))) => match frame.get("ready") {
                Some(Value::Bool(true)) => {
                    // What loading printed belongs to no invocation.
                    self.output.end(output_sizes(frame.get("output")));
                    self.init = self.spawned.elapsed();
                    let load_ms = frame.get("load_ms").and_then(Value::as_f64).unwrap_or(0.0);
                    return Ok(Duration::from_secs_f64(load_ms.max(0.0) / 1000.0));
                }
                Some(Value::Bool(false)) => ErrorInfo::from_wire(frame.get("error")),
                _ => ErrorInfo::new(
                    "ProtocolError",
                    format!("expected the ready frame, got {}", excerpt(&frame)),
                ),
            },
            Ok(Ok(None) | Err(_)) => {
                let status = self.kill().await;
                self.output.end(None);
                let detail = self.crash_detail(status, "exited before it was ready");
                return Err(ErrorInfo::new("WorkerExited", detail));
            }
        };
        self.kill().await;
        Err(failure)
    }

    /// Runs one invocation (`sent`: its frame id when it was sent ahead, while the previous one
    /// ran; the worker started it when it replied to that one). `behind`: the request ids of the
    /// invocations already sent after it, in order. `timeout` bounds everything from its start
    /// to its reply, resource calls included. While it runs, invocations the pool puts in
    /// [`Worker::ahead`] are sent at once; they are returned, to run after those (or, if this one
    /// ended its worker, to be dispatched again: they had not started).
    pub(crate) async fn invoke(
        &mut self,
        ctx: &Ctx,
        request_id: &Arc<str>,
        event: &Event,
        sent: Option<u64>,
        behind: &[Arc<str>],
        timeout: Duration,
    ) -> (Outcome, Vec<Sent>) {
        let (id, frame) = match sent {
            Some(id) => (id, None),
            None => {
                self.seq += 1;
                match frame::invocation(self.seq, timeout_ms(timeout), request_id, event) {
                    Ok(frame) => (self.seq, Some(frame)),
                    Err(e) => {
                        let message = format!("the event cannot be sent to the worker: {e}");
                        let error = ErrorInfo::new("ProtocolError", message);
                        return (Outcome::Handler { error }, Vec::new());
                    }
                }
            }
        };
        if sent.is_none() {
            self.output.begin(request_id); // else the previous invocation's end did
        }
        let started = Instant::now();
        let mut shutdown = ctx.shutdown.subscribe();
        let mut queued = Vec::new();
        let exchange = self.exchange(ctx, request_id, id, frame.as_deref(), timeout, &mut queued);
        let exchanged = tokio::select! {
            exchanged = tokio::time::timeout(timeout, exchange) => {
                exchanged.map_err(|_| Cut::Timeout)
            }
            _ = shutdown.wait_for(|down| *down) => Err(Cut::Shutdown),
        };
        self.probe.leave();
        let duration = started.elapsed();
        // Where its output ends, as the reply says (else: all there is, the worker being dead).
        let upto = match &exchanged {
            Ok(Exchanged::Reply(reply)) => output_sizes(reply.get("output")),
            _ => None,
        };
        let outcome = match exchanged {
            Ok(Exchanged::Reply(reply)) => self.reply_outcome(ctx, reply, duration).await,
            Err(Cut::Timeout) => {
                self.kill().await;
                Outcome::Fatal {
                    error: InvokeError::Timeout { after: timeout },
                    reason: StopReason::Timeout,
                }
            }
            Err(Cut::Shutdown) => {
                self.kill().await;
                let detail = format!("worker {} was killed: the pool was shut down", self.pid);
                Outcome::Fatal {
                    error: InvokeError::Crashed { detail },
                    reason: StopReason::Shutdown,
                }
            }
            Ok(Exchanged::Protocol(problem)) => {
                self.kill().await;
                let detail = format!("worker {} broke the protocol: {problem}", self.pid);
                Outcome::Fatal {
                    error: InvokeError::Crashed {
                        detail: detail.clone(),
                    },
                    reason: StopReason::Crashed { detail },
                }
            }
            Ok(Exchanged::Exited) => {
                let status = self.kill().await;
                // Everything it wrote is in the files now: pass it on, tagged, and read it.
                self.output.end(None);
                let (_, oom) = self.output.evidence();
                if oom {
                    Outcome::Fatal {
                        error: InvokeError::OutOfMemory {
                            limit_mb: ctx.memory_mb,
                        },
                        reason: StopReason::OutOfMemory,
                    }
                } else {
                    let detail = self.crash_detail(status, "exited mid-invocation");
                    Outcome::Fatal {
                        error: InvokeError::Crashed {
                            detail: detail.clone(),
                        },
                        reason: StopReason::Crashed { detail },
                    }
                }
            }
        };
        let next = behind.first().or(queued.first().map(|q| &q.job.request_id));
        match (&outcome, next) {
            // The worker has started the next one: from this reply on, output is the next one's
            // (held still while others wait behind it).
            (Outcome::Ok { .. } | Outcome::Handler { .. }, Some(next)) => {
                let held = behind.len() + queued.len() > 1;
                self.output.end_then_begin(upto, next, held);
                self.probe.enter();
            }
            _ => self.output.end(upto),
        }
        (outcome, queued)
    }

    /// Whether the process is gone (checked before an idle worker is handed out).
    pub(crate) fn is_gone(&mut self) -> bool {
        self.reaped || self.from_worker.is_closed()
    }

    /// Stops the worker: closes fd 3 (the worker exits on EOF), waits up to `grace`, then kills
    /// what is left of its process group.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        self.to_worker = None;
        let reader = &mut self.from_worker;
        let _ = tokio::time::timeout(grace, async {
            while let Ok(Some(_)) = reader.next().await {}
        })
        .await;
        self.kill().await;
    }

    /// Kills the worker and everything it started, and reaps it; returns how it ended.
    pub(crate) async fn kill(&mut self) -> Option<ExitStatus> {
        self.to_worker = None;
        if !self.reaped {
            // The worker is not reaped yet, so its pid (= process group id) cannot be reused.
            tree::kill_tree(self.pid, &self.tag);
        }
        let status = self.child.wait().await.ok();
        self.reaped = true;
        status
    }

    async fn exchange(
        &mut self,
        ctx: &Ctx,
        tag: &Arc<str>,
        id: u64,
        frame: Option<&[u8]>,
        timeout: Duration,
        queued: &mut Vec<Sent>,
    ) -> Exchanged {
        let Some(tx) = self.to_worker.as_mut() else {
            return Exchanged::Exited;
        };
        if let Some(frame) = frame {
            if tx.write_all(frame).await.is_err() {
                return Exchanged::Exited;
            }
            // From here until its reply is read, the worker is in the invocation (see `Probe`).
            self.probe.enter();
        }
        let mut calls = JoinSet::new();
        let mut numbers = HashMap::new();
        loop {
            let step = tokio::select! {
                frame = self.from_worker.next() => Step::Frame(frame),
                Some(done) = calls.join_next_with_id(), if !calls.is_empty() => Step::Rpc(done),
                () = self.ahead.wait() => {
                    let jobs = self.ahead.take();
                    if jobs.is_empty() {
                        continue;
                    }
                    Step::Ahead(jobs)
                }
            };
            if let Step::Frame(_) = step {
                let buffered = self.from_worker.buffered();
                self.probe.buffered.store(buffered, Ordering::Release);
            }
            let reply = match step {
                Step::Frame(Ok(Some(frame))) => {
                    if frame.get("id").is_none()
                        && let Some(number) = frame.get("rpc").cloned()
                    {
                        let hooks = Arc::clone(&ctx.hooks);
                        let function = Arc::clone(&ctx.function);
                        let tag = Arc::clone(tag);
                        let task =
                            calls.spawn(async move { hooks.rpc(&function, &tag, frame).await });
                        numbers.insert(task.id(), number);
                        continue;
                    }
                    let is_reply = frame.get("id").and_then(Value::as_u64) == Some(id);
                    return match frame {
                        Value::Object(reply) if is_reply => Exchanged::Reply(reply),
                        other => {
                            Exchanged::Protocol(format!("unexpected frame {}", excerpt(&other)))
                        }
                    };
                }
                Step::Frame(Ok(None) | Err(FrameError::Io(_) | FrameError::Truncated)) => {
                    return Exchanged::Exited;
                }
                Step::Frame(Err(e)) => return Exchanged::Protocol(e.to_string()),
                Step::Rpc(Ok((task, result))) => {
                    let number = numbers.remove(&task).unwrap_or(Value::Null);
                    rpc_reply(number, result)
                }
                Step::Rpc(Err(e)) => {
                    let number = numbers.remove(&e.id()).unwrap_or(Value::Null);
                    rpc_reply(
                        number,
                        Err(ErrorInfo::new(
                            "InternalError",
                            "the resource call failed inside the runtime",
                        )),
                    )
                }
                Step::Ahead(jobs) => {
                    // Sent now; the worker starts each right after the reply before it. Until
                    // that reply says where the running one's output ends, output is left unread.
                    self.output.hold(true);
                    let mut frames = Vec::new();
                    for job in jobs {
                        self.seq += 1;
                        let next = Sent { job, id: self.seq };
                        let frame = frame::invocation(
                            next.id,
                            timeout_ms(timeout),
                            &next.job.request_id,
                            &next.job.event,
                        );
                        queued.push(next);
                        match frame {
                            Ok(frame) => frames.extend_from_slice(&frame),
                            // The pool sends only small events ahead; should one not encode,
                            // this worker ends as if it had died, and they run elsewhere.
                            Err(e) => return Exchanged::Protocol(e.to_string()),
                        }
                    }
                    frames
                }
            };
            if tx.write_all(&reply).await.is_err() {
                return Exchanged::Exited;
            }
        }
    }

    async fn reply_outcome(
        &mut self,
        ctx: &Ctx,
        mut reply: serde_json::Map<String, Value>,
        duration: Duration,
    ) -> Outcome {
        if reply.get("ok") == Some(&Value::Bool(true)) {
            let result = reply.remove("result").unwrap_or(Value::Null);
            return Outcome::Ok { result, duration };
        }
        let error = ErrorInfo::from_wire(reply.get("error"));
        if error.kind == "MemoryError" {
            // The handler may hold on to what it allocated: start afresh, as clouds do.
            self.kill().await;
            return Outcome::Fatal {
                error: InvokeError::OutOfMemory {
                    limit_mb: ctx.memory_mb,
                },
                reason: StopReason::OutOfMemory,
            };
        }
        Outcome::Handler { error }
    }

    /// "worker <pid> <what> (<exit status or signal>)" and the last lines of its stderr.
    pub(crate) fn crash_detail(&self, status: Option<ExitStatus>, what: &str) -> String {
        let status = match status {
            Some(s) if s.code().is_some() => format!("exit status {}", s.code().unwrap_or(0)),
            Some(s) => match s.signal().and_then(|n| Signal::try_from(n).ok()) {
                Some(signal) => format!("killed by {signal}"),
                None => s.to_string(),
            },
            None => "exit status unknown".to_owned(),
        };
        let mut detail = format!("worker {} {what} ({status})", self.pid);
        let (tail, _) = self.output.evidence();
        if !tail.is_empty() {
            detail.push_str("; last stderr lines:\n");
            detail.push_str(&tail[tail.len().saturating_sub(CRASH_LINES)..].join("\n"));
        }
        detail
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            tree::kill_tree(self.pid, &self.tag); // tokio reaps the orphaned child
        }
    }
}

/// What the pool may ask about a busy worker it does not hold (its invocation does).
pub(crate) struct Probe {
    pid: u32,
    /// A duplicate of the read end of the worker's reply pipe.
    replies: OwnedFd,
    /// Odd while the worker is in an invocation (from writing its frame to reading its reply):
    /// one more at each of these two moments.
    phase: AtomicU64,
    /// When the current invocation's frame was written, in nanoseconds since [`epoch`].
    since: AtomicU64,
    /// The runtime has read bytes from the worker it has not handled yet.
    buffered: AtomicBool,
}

impl Probe {
    /// An invocation's frame was written.
    fn enter(&self) {
        self.since.store(nanos_since_epoch(), Ordering::Relaxed);
        self.phase.fetch_add(1, Ordering::Release);
    }

    /// Its reply was read (or the worker is gone).
    fn leave(&self) {
        if !self.phase.load(Ordering::Relaxed).is_multiple_of(2) {
            self.phase.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether the worker has been in one invocation for longer than `longer_than` and is
    /// blocked there: sleeping on a timer, on I/O or on a resource call, rather than computing
    /// or waiting for a CPU. Another worker would then add throughput even when every CPU is
    /// taken. Without `/proc` (not Linux), such a worker is taken as blocked.
    pub(crate) fn blocked(&self, longer_than: Duration) -> bool {
        let phase = self.phase.load(Ordering::Acquire);
        let since = self.since.load(Ordering::Relaxed);
        let age = nanos_since_epoch().saturating_sub(since);
        if phase.is_multiple_of(2) || u128::from(age) <= longer_than.as_nanos() {
            return false;
        }
        // `R`: running or waiting for a CPU; `S`: sleeping (`D`, a page fault or disk wait, is
        // left out: it passes). Field 3 follows `(comm)`.
        let sleeping = match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('S')),
            Err(_) => true,
        };
        // A worker that has replied sleeps too, waiting for its next invocation: its reply is in
        // the pipe, or already read (with the one before it) and not handled yet.
        let replied = self.buffered.load(Ordering::Acquire) || readable(&self.replies);
        // All of it about one invocation: it may have ended, and the next begun, meanwhile.
        sleeping && !replied && self.phase.load(Ordering::Acquire) == phase
    }
}

/// The time base of [`Probe::since`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether `fd` holds something to read now.
fn readable(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Why a wait was cut short.
enum Cut {
    Timeout,
    Shutdown,
}

/// One step of an invocation's frame exchange.
enum Step {
    Frame(Result<Option<Value>, FrameError>),
    Rpc(Result<(tokio::task::Id, Result<Value, ErrorInfo>), tokio::task::JoinError>),
    Ahead(VecDeque<Job>),
}

/// An invocation sent to a worker ahead of its turn.
pub(crate) struct Sent {
    pub(crate) job: Job,
    /// Its frame id.
    pub(crate) id: u64,
}

/// The `timeout_ms` of an invocation frame.
fn timeout_ms(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

/// A tag no other worker has had: this process's id and start time, and a counter.
fn next_tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: OnceLock<u128> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{started}-{n}", std::process::id())
}

/// The reply frame to resource call `number`.
fn rpc_reply(number: Value, result: Result<Value, ErrorInfo>) -> Vec<u8> {
    let reply = match result {
        Ok(result) => json!({"rpc": number.clone(), "ok": true, "result": result}),
        Err(e) => {
            json!({"rpc": number.clone(), "ok": false, "error": {"type": e.kind, "message": e.message}})
        }
    };
    encode(&reply).unwrap_or_else(|e| {
        let error = json!({"type": "ResultTooLarge", "message": format!("the resource call's result cannot be sent: {e}")});
        encode(&json!({"rpc": number, "ok": false, "error": error}))
            .expect("a small frame always encodes")
    })
}

/// The sizes of stdout and stderr a ready frame or a reply reports: its `"output": [out, err]`.
fn output_sizes(output: Option<&Value>) -> Option<[u64; 2]> {
    match output?.as_array()?.as_slice() {
        [out, err] => Some([out.as_u64()?, err.as_u64()?]),
        _ => None,
    }
}

/// The start of a frame, for error messages.
fn excerpt(frame: &Value) -> String {
    let text = frame.to_string();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}
