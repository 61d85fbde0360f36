//! A worker's stdout and stderr: two anonymous files that the worker, and any process it starts,
//! append to; read here line by line and passed to [`Hooks::log`] with the request id of the
//! invocation that printed them.
//!
//! Files, not pipes, so that the worker can say exactly where an invocation's output ends: it
//! flushes its streams when an invocation ends and reports their sizes in its reply (and in its
//! ready frame), and every byte before those offsets, not read yet, belongs to that invocation
//! (or, for the ready frame, to loading the handler). That holds whoever wrote the bytes (the
//! handler, native code, a child process) and whether or not the runtime has sent the next
//! invocation ahead (see the pool). Between those moments a task reads what was appended every
//! [`SWEEP`]: tagged with the running invocation, or untagged while the worker is idle, but not
//! while an invocation is queued behind the running one (the output is then held until the reply
//! tells where it belongs). Read bytes are given back to the system as the files grow (on Linux,
//! where the files live in memory: `memfd`; elsewhere they are unlinked temporary files).
//!
//! **Invariant:** bytes are read in order, once, and tagged with the invocation that printed them,
//! or untagged when they were printed between invocations (by a thread the handler left running,
//! or while loading); lines printed between invocations that are still unread when the next
//! invocation ends are tagged with it.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use crate::{Hooks, Stream};

/// How often output is read between the moments an invocation ends.
pub(crate) const SWEEP: Duration = Duration::from_millis(200);
/// A longer line is passed on in pieces of this size.
const MAX_LINE: usize = 256 * 1024;
/// Lines of stderr kept for crash reports.
const TAIL_LINES: usize = 20;
/// Read bytes are given back once this many have accumulated.
const RELEASE: u64 = 1024 * 1024;

/// A worker's stdout and stderr. Dropping it stops its sweeping task.
pub(crate) struct Output {
    files: Arc<[LogFile; 2]>,
}

impl Output {
    /// Creates the two files; returns, besides the output, handles of them to give the worker
    /// as its stdout and stderr. Starts the task that reads them every [`SWEEP`].
    pub(crate) fn create(
        function: &Arc<str>,
        hooks: &Arc<dyn Hooks>,
    ) -> io::Result<(Output, [File; 2])> {
        let file = |stream| -> io::Result<(LogFile, File)> {
            let file = anonymous_file(stream)?;
            let for_worker = file.try_clone()?;
            let log = LogFile {
                file,
                stream,
                function: Arc::clone(function),
                hooks: Arc::clone(hooks),
                state: Mutex::new(FileState::default()),
            };
            Ok((log, for_worker))
        };
        let (stdout, out) = file(Stream::Stdout)?;
        let (stderr, err) = file(Stream::Stderr)?;
        let files = Arc::new([stdout, stderr]);
        tokio::spawn(sweep(Arc::downgrade(&files)));
        Ok((Output { files }, [out, err]))
    }

    /// An invocation starts: what is read from now on carries `request_id`.
    pub(crate) fn begin(&self, request_id: &Arc<str>) {
        for file in self.files.iter() {
            let mut st = file.lock();
            st.tag = Some(Arc::clone(request_id));
            st.oom = false;
        }
    }

    /// Whether the sweeping task leaves the output alone: while an invocation is queued behind
    /// the running one, bytes appended may belong to either.
    pub(crate) fn hold(&self, held: bool) {
        for file in self.files.iter() {
            file.lock().held = held;
        }
    }

    /// The invocation ended (or the handler was loaded, or the worker is dead): the output up
    /// to `upto` (stdout and stderr sizes as the worker reported them; everything there is when
    /// `None`) is passed on, with the running invocation's tag, and later lines are untagged.
    pub(crate) fn end(&self, upto: Option<[u64; 2]>) {
        for (i, file) in self.files.iter().enumerate() {
            let mut st = file.lock();
            file.read(&mut st, upto.map_or(u64::MAX, |sizes| sizes[i]));
            if !st.partial.is_empty() {
                file.emit(&mut st);
            }
            st.tag = None;
            st.held = false;
        }
    }

    /// [`Output::end`], then [`Output::begin`] of `next`, at once: the next invocation, sent
    /// ahead, started when the worker replied to this one, so a sweep in between would take its
    /// output for no invocation's. `held`: others wait ahead behind it (see [`Output::hold`]).
    pub(crate) fn end_then_begin(&self, upto: Option<[u64; 2]>, next: &Arc<str>, held: bool) {
        for (i, file) in self.files.iter().enumerate() {
            let mut st = file.lock();
            file.read(&mut st, upto.map_or(u64::MAX, |sizes| sizes[i]));
            if !st.partial.is_empty() {
                file.emit(&mut st);
            }
            st.tag = Some(Arc::clone(next));
            st.held = held;
            st.oom = false;
        }
    }

    /// The last lines of stderr, and whether any since the invocation began reported running out
    /// of memory.
    pub(crate) fn evidence(&self) -> (Vec<String>, bool) {
        let st = self.files[1].lock();
        (st.tail.iter().cloned().collect(), st.oom)
    }
}

/// Reads what the worker appends, every [`SWEEP`], until its [`Output`] is dropped.
async fn sweep(files: Weak<[LogFile; 2]>) {
    let mut every = tokio::time::interval(SWEEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(files) = files.upgrade() else {
            return;
        };
        for file in files.iter() {
            let mut st = file.lock();
            if !st.held {
                file.read(&mut st, u64::MAX);
            }
        }
    }
}

/// One output stream of one worker.
struct LogFile {
    /// The runtime's handle: the same open file as the worker's, read at explicit offsets
    /// (never moving the offset the worker writes at).
    file: File,
    stream: Stream,
    function: Arc<str>,
    hooks: Arc<dyn Hooks>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    /// Bytes read so far.
    read: u64,
    /// Bytes before this offset have been given back to the system.
    released: u64,
    partial: Vec<u8>,
    tag: Option<Arc<str>>,
    held: bool,
    tail: VecDeque<String>,
    oom: bool,
}

impl LogFile {
    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads and passes on complete lines up to offset `upto` (or the end of the file).
    fn read(&self, st: &mut FileState, upto: u64) {
        let mut chunk = [0u8; 16 * 1024];
        while st.read < upto {
            let want = usize::try_from(upto - st.read).map_or(chunk.len(), |n| n.min(chunk.len()));
            match self.file.read_at(&mut chunk[..want], st.read) {
                Ok(0) => break,
                Ok(n) => {
                    st.read += n as u64;
                    self.feed(st, &chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if st.read - st.released >= RELEASE {
            release(&self.file, st.released, st.read);
            st.released = st.read;
        }
    }

    fn feed(&self, st: &mut FileState, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            st.partial.extend_from_slice(&data[..i]);
            self.emit(st);
            data = &data[i + 1..];
        }
        while !data.is_empty() {
            let take = data.len().min(MAX_LINE - st.partial.len());
            st.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if st.partial.len() >= MAX_LINE {
                self.emit(st);
            }
        }
    }

    fn emit(&self, st: &mut FileState) {
        let mut raw = std::mem::take(&mut st.partial);
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        let line = String::from_utf8_lossy(&raw);
        self.hooks
            .log(&self.function, st.tag.as_deref(), self.stream, &line);
        if self.stream == Stream::Stderr {
            if line.contains("out of memory") || line.contains("MemoryError") {
                st.oom = true;
            }
            if st.tail.len() == TAIL_LINES {
                st.tail.pop_front();
            }
            st.tail.push_back(line.into_owned());
        }
        raw.clear();
        st.partial = raw;
    }
}

/// A file with no name, read and written through its handles only, appended to whatever the
/// offset of a handle (a worker's child may share it).
#[cfg(target_os = "linux")]
fn anonymous_file(stream: Stream) -> io::Result<File> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let name = match stream {
        Stream::Stdout => "nimbus-worker-stdout",
        Stream::Stderr => "nimbus-worker-stderr",
    };
    let file = File::from(memfd_create(name, MFdFlags::MFD_CLOEXEC)?);
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_APPEND | OFlag::O_RDWR))?;
    Ok(file)
}

/// A file with no name (an unlinked temporary file), appended to.
#[cfg(not(target_os = "linux"))]
fn anonymous_file(_stream: Stream) -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "nimbus-worker-output-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::options()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Gives the bytes from `from` to `to` back to the system (the file keeps its size).
#[cfg(target_os = "linux")]
fn release(file: &File, from: u64, to: u64) {
    use nix::fcntl::{FallocateFlags, fallocate};
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    let punch = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    let _ = fallocate(file, punch, offset, len);
}

/// Elsewhere the file grows until the worker stops.
#[cfg(not(target_os = "linux"))]
fn release(_file: &File, _from: u64, _to: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Lines(StdMutex<Vec<(Option<String>, Stream, String)>>);

    impl Hooks for Lines {
        fn rpc(&self, _: &str, _: &str, _: serde_json::Value) -> crate::RpcFuture<'_> {
            Box::pin(async { Ok(serde_json::Value::Null) })
        }
        fn log(&self, _: &str, request_id: Option<&str>, stream: Stream, line: &str) {
            let tag = request_id.map(str::to_owned);
            self.0.lock().unwrap().push((tag, stream, line.to_owned()));
        }
        fn event(&self, _: &str, _: crate::PoolEvent) {}
    }

    #[tokio::test]
    async fn output_is_tagged_by_the_offsets_the_worker_reports() {
        let lines = Arc::new(Lines::default());
        let hooks: Arc<dyn Hooks> = lines.clone();
        let (output, [mut out, mut err]) = Output::create(&Arc::from("f"), &hooks).unwrap();
        out.write_all(b"loading\n").unwrap();
        output.end(Some([8, 0]));
        let first: Arc<str> = Arc::from("req-1");
        output.begin(&first);
        output.hold(true); // the next invocation is queued: nothing is read in between
        out.write_all(b"one\npart").unwrap();
        err.write_all(b"MemoryError: x\n").unwrap();
        let ends = [16, 15]; // where req-1 ended, as its reply says
        out.write_all(b"ial of two\n").unwrap(); // printed by the next one, already running
        tokio::time::sleep(SWEEP * 2).await;
        assert_eq!(lines.0.lock().unwrap().len(), 1, "held until the reply");
        output.end(Some(ends));
        assert!(output.evidence().1, "out of memory seen");
        output.begin(&Arc::from("req-2"));
        output.end(None);
        let seen = lines.0.lock().unwrap().clone();
        let tagged = |tag: Option<&str>, stream, text: &str| {
            (tag.map(str::to_owned), stream, text.to_owned())
        };
        assert_eq!(
            seen,
            [
                tagged(None, Stream::Stdout, "loading"),
                tagged(Some("req-1"), Stream::Stdout, "one"),
                tagged(Some("req-1"), Stream::Stdout, "part"),
                tagged(Some("req-1"), Stream::Stderr, "MemoryError: x"),
                tagged(Some("req-2"), Stream::Stdout, "ial of two"),
            ]
        );
    }

    #[tokio::test]
    async fn the_sweep_passes_on_what_a_long_invocation_prints() {
        let lines = Arc::new(Lines::default());
        let hooks: Arc<dyn Hooks> = lines.clone();
        let (output, [mut out, _err]) = Output::create(&Arc::from("f"), &hooks).unwrap();
        output.begin(&Arc::from("req-1"));
        out.write_all(&vec![b'x'; 3 * RELEASE as usize]).unwrap();
        out.write_all(b"\nstill running\n").unwrap();
        for _ in 0..50 {
            if lines.0.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(SWEEP / 4).await;
        }
        let seen = lines.0.lock().unwrap().clone();
        assert_eq!(seen.last().unwrap().2, "still running");
        assert!(seen.iter().all(|l| l.0.as_deref() == Some("req-1")));
        drop(output);
    }
}
