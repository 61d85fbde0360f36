//! A worker's stdout and stderr, read line by line and passed to [`Hooks::log`] with the request
//! id of the invocation being served.
//!
//! The worker flushes its output before each reply (and before its ready frame), so when the
//! reply arrives every line of that invocation is already in the pipes: [`Output::end`] reads
//! them dry (straight from the kernel, never waiting) before the tag is cleared. Between
//! invocations a task per pipe forwards lines as they come, untagged. One `poll` tells whether
//! either pipe holds anything, so that an invocation that printed nothing costs one system call
//! for its output, at its end. [`Output::begin`] makes none: a line printed between invocations
//! (by a thread the handler left running) that the task has not passed on yet when the next
//! invocation begins is tagged with that invocation.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::frame::PipeIn;
use crate::{Hooks, Stream};

/// A longer line is passed on in pieces of this size.
const MAX_LINE: usize = 256 * 1024;
/// Lines of stderr kept for crash reports.
const TAIL_LINES: usize = 20;
/// At most this much is read in one go outside the reader task (a pipe holds 64 KiB).
const MAX_PUMP: usize = 1024 * 1024;

/// A worker's stdout and stderr.
pub(crate) struct Output {
    stdout: Arc<LogPipe>,
    stderr: Arc<LogPipe>,
}

impl Output {
    /// Starts forwarding the lines of `stdout` and `stderr` (the read ends of the worker's pipes).
    pub(crate) fn spawn(
        stdout: OwnedFd,
        stderr: OwnedFd,
        function: &Arc<str>,
        hooks: &Arc<dyn Hooks>,
    ) -> io::Result<Output> {
        let pipe = |fd, stream| LogPipe::spawn(fd, stream, Arc::clone(function), Arc::clone(hooks));
        Ok(Output {
            stdout: pipe(stdout, Stream::Stdout)?,
            stderr: pipe(stderr, Stream::Stderr)?,
        })
    }

    /// An invocation starts: an incomplete line printed before is passed on untagged, lines read
    /// from now on carry `request_id`.
    pub(crate) fn begin(&self, request_id: &Arc<str>) {
        self.stdout.begin(Arc::clone(request_id));
        self.stderr.begin(Arc::clone(request_id));
    }

    /// The invocation ended (its reply arrived, or its worker is dead), or the handler was
    /// loaded: the remaining output is passed on, tagged as it was, and later lines are untagged.
    pub(crate) fn end(&self) {
        let [out, err] = self.readable();
        self.stdout.end(out);
        self.stderr.end(err);
    }

    /// The last lines of stderr, and whether any since the invocation began reported running out
    /// of memory.
    pub(crate) fn evidence(&self) -> (Vec<String>, bool) {
        self.stderr.evidence()
    }

    /// Whether each pipe holds something to read now or has ended, in one system call.
    fn readable(&self) -> [bool; 2] {
        let mut fds = [
            PollFd::new(self.stdout.fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.stderr.fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => [false, false],
            Ok(_) => fds.map(|fd| fd.revents().is_some_and(|events| !events.is_empty())),
            Err(_) => [true, true], // read them and see
        }
    }
}

/// One output stream of one worker.
pub(crate) struct LogPipe {
    fd: PipeIn,
    stream: Stream,
    function: Arc<str>,
    hooks: Arc<dyn Hooks>,
    state: Mutex<LineState>,
}

/// What [`LogPipe::pump`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    /// The pipe is empty for now.
    Drained,
    /// The pipe may hold more.
    More,
    /// The pipe has ended.
    Closed,
}

#[derive(Default)]
struct LineState {
    partial: Vec<u8>,
    tag: Option<Arc<str>>,
    tail: VecDeque<String>,
    oom: bool,
}

impl LogPipe {
    /// Starts forwarding the lines of `fd` (the read end of the worker's stdout or stderr).
    fn spawn(
        fd: OwnedFd,
        stream: Stream,
        function: Arc<str>,
        hooks: Arc<dyn Hooks>,
    ) -> io::Result<Arc<LogPipe>> {
        let pipe = Arc::new(LogPipe {
            fd: PipeIn::new(fd)?,
            stream,
            function,
            hooks,
            state: Mutex::new(LineState::default()),
        });
        tokio::spawn(Arc::clone(&pipe).run());
        Ok(pipe)
    }

    /// See [`Output::begin`].
    fn begin(&self, request_id: Arc<str>) {
        let mut st = self.lock();
        self.flush(&mut st, false);
        st.tag = Some(request_id);
        st.oom = false;
    }

    /// See [`Output::end`]; `readable`: whether the pipe may hold something.
    fn end(&self, readable: bool) {
        let mut st = self.lock();
        self.flush(&mut st, readable);
        st.tag = None;
    }

    /// Passes on what the pipe holds (when it may hold something) and the incomplete last line.
    fn flush(&self, st: &mut LineState, readable: bool) {
        if readable {
            self.pump(st, true);
        } else if !st.partial.is_empty() {
            self.emit(st);
        }
    }

    /// The last lines (of stderr) and whether any since the invocation began reported running
    /// out of memory.
    fn evidence(&self) -> (Vec<String>, bool) {
        let st = self.lock();
        (st.tail.iter().cloned().collect(), st.oom)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn run(self: Arc<Self>) {
        loop {
            if self.fd.readable().await.is_err() {
                return;
            }
            // Reading the pipe dry ends in `WouldBlock`, so that `readable` waits for new data.
            let pumped = self.fd.try_io(|| match self.pump(&mut self.lock(), false) {
                Pumped::Drained => Err(io::ErrorKind::WouldBlock.into()),
                other => Ok(other),
            });
            if let Ok(Pumped::Closed) = pumped {
                return;
            }
        }
    }

    /// Reads what the pipe holds now (up to [`MAX_PUMP`]) and passes on complete lines, and the
    /// incomplete last one when `flush` or at the end of the pipe.
    fn pump(&self, st: &mut LineState, flush: bool) -> Pumped {
        let mut chunk = [0u8; 16 * 1024];
        let mut read = 0;
        let pumped = loop {
            if read >= MAX_PUMP {
                break Pumped::More;
            }
            match self.fd.read_now(&mut chunk) {
                Ok(0) => break Pumped::Closed,
                Ok(n) => {
                    read += n;
                    self.feed(st, &chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Pumped::Drained,
                Err(_) => break Pumped::Closed,
            }
        };
        if (flush || pumped == Pumped::Closed) && !st.partial.is_empty() {
            self.emit(st);
        }
        pumped
    }

    fn feed(&self, st: &mut LineState, mut data: &[u8]) {
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

    fn emit(&self, st: &mut LineState) {
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
