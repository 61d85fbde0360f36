//! The worker protocol's framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON
//! (at most [`MAX_FRAME`]); and the non-blocking pipe the worker's frames arrive on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use serde::Serialize;
use tokio::net::unix::pipe;

use crate::Event;

/// The largest frame either side accepts.
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A frame that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The pipe failed.
    #[error("pipe error")]
    Io(#[from] io::Error),
    /// The frame is not JSON.
    #[error("frame is not JSON")]
    Json(#[from] serde_json::Error),
    /// The frame is over [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The pipe ended inside a frame.
    #[error("unexpected end of the pipe inside a frame")]
    Truncated,
}

/// `msg` as one frame.
pub(crate) fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg)?;
    finish(buf)
}

/// The invocation frame `{"id", "timeout_ms", "request_id", "event"}`, with the event's JSON
/// spliced in as it was encoded.
pub(crate) fn invocation(
    id: u64,
    timeout_ms: u64,
    request_id: &str,
    event: &Event,
) -> Result<Vec<u8>, FrameError> {
    let event = event.json().as_bytes();
    let mut buf = Vec::with_capacity(80 + request_id.len() + event.len());
    buf.extend_from_slice(&[0; 4]);
    write!(
        buf,
        r#"{{"id":{id},"timeout_ms":{timeout_ms},"request_id":"#
    )?;
    serde_json::to_writer(&mut buf, request_id)?;
    buf.extend_from_slice(br#","event":"#);
    buf.extend_from_slice(event);
    buf.push(b'}');
    finish(buf)
}

/// Writes the length of the JSON after the first 4 bytes of `buf` into them.
fn finish(mut buf: Vec<u8>) -> Result<Vec<u8>, FrameError> {
    let len = buf.len() - 4;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_FRAME)
        .ok_or(FrameError::TooLarge(len))?;
    buf[..4].copy_from_slice(&len32.to_be_bytes());
    Ok(buf)
}

/// The read end of a pipe, non-blocking: waits through the tokio reactor, and can also read what
/// is in the pipe *now*, straight from the kernel, whatever tokio last saw of its readiness.
pub(crate) struct PipeIn {
    rx: pipe::Receiver,
    /// A duplicate of `rx`'s fd (same open pipe, also non-blocking) for direct reads.
    file: File,
}

impl PipeIn {
    /// Takes the read end of a pipe.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PipeIn> {
        let rx = pipe::Receiver::from_owned_fd(fd)?; // sets O_NONBLOCK
        let file = File::from(rx.as_fd().try_clone_to_owned()?);
        Ok(PipeIn { rx, file })
    }

    /// Reads what the pipe holds now: `WouldBlock` when it is empty, 0 at its end.
    pub(crate) fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Waits until the pipe may be read.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.rx.readable().await
    }

    /// Runs `read` (which uses [`PipeIn::read_now`]) if the pipe may be read; a `WouldBlock`
    /// from it makes [`PipeIn::readable`] wait for new data.
    pub(crate) fn try_io<R>(&self, read: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.rx.try_io(read)
    }
}

/// Reads frames from the worker (fd 4). [`FrameReader::next`] is cancel-safe: bytes read are kept
/// in the buffer until a whole frame is there.
pub(crate) struct FrameReader {
    fd: PipeIn,
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// Reads from `fd` (made non-blocking).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<FrameReader> {
        Ok(FrameReader {
            fd: PipeIn::new(fd)?,
            buf: Vec::with_capacity(8192),
            start: 0,
        })
    }

    /// The next frame; `None` at the end of the pipe on a frame boundary.
    pub(crate) async fn next(&mut self) -> Result<Option<serde_json::Value>, FrameError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if self.fill().await? == 0 {
                return if self.start == self.buf.len() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// Whether bytes read from the pipe wait in the buffer (a part of a frame, or frames after
    /// the one returned last).
    pub(crate) fn buffered(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Whether the worker is gone: its end of the pipe is closed. Never waits; bytes read on the
    /// way are kept for [`FrameReader::next`].
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 512];
        match self.fd.read_now(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) => {
                e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted
            }
        }
    }

    /// One whole frame out of the buffer, if there is one.
    fn parse(&mut self) -> Result<Option<serde_json::Value>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(header) = avail.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let frame = serde_json::from_slice(&avail[4..4 + len])?;
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }

    /// Reads what the pipe has (waiting until it has something); 0 at its end.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = match self.buf.first_chunk::<4>() {
            Some(h) => (4 + u32::from_be_bytes(*h) as usize).saturating_sub(self.buf.len()),
            None => 0,
        };
        self.buf.reserve(want.clamp(8192, MAX_FRAME));
        loop {
            self.fd.readable().await?;
            let len = self.buf.len();
            // Zero only what one read can fill (a pipe holds 64 KiB by default).
            let room = (self.buf.capacity() - len).clamp(1, 256 * 1024);
            self.buf.resize(len + room, 0);
            let res = self.fd.try_io(|| self.fd.read_now(&mut self.buf[len..]));
            match res {
                Ok(n) => {
                    self.buf.truncate(len + n);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.buf.truncate(len);
                }
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn frames_split_across_reads_and_eof() {
        let (r, mut w) = std::io::pipe().unwrap();
        let mut reader = FrameReader::new(r.into()).unwrap();
        let a = encode(&serde_json::json!({"ready": true})).unwrap();
        let b = encode(&serde_json::json!({"id": 1, "ok": true, "result": "x".repeat(20_000)}))
            .unwrap();
        assert_eq!(&a[..4], &14u32.to_be_bytes());
        w.write_all(&a[..2]).unwrap();
        assert!(!reader.is_closed());
        w.write_all(&a[2..]).unwrap();
        w.write_all(&b[..100]).unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap()["ready"], true);
        let writer = std::thread::spawn(move || {
            w.write_all(&b[100..]).unwrap();
            w.write_all(&[0, 0]).unwrap();
        });
        let second = reader.next().await.unwrap().unwrap();
        assert_eq!(second["result"].as_str().unwrap().len(), 20_000);
        writer.join().unwrap();
        assert!(matches!(reader.next().await, Err(FrameError::Truncated)));
    }

    #[test]
    fn invocation_frames_splice_the_event() {
        let event = Event::from(serde_json::json!({"type": "http", "body": "a\"b"}));
        let frame = invocation(7, 3000, "req-\"1", &event).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        let parsed: serde_json::Value = serde_json::from_slice(&frame[4..]).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"id": 7, "timeout_ms": 3000, "request_id": "req-\"1",
                               "event": {"type": "http", "body": "a\"b"}})
        );
    }

    #[tokio::test]
    async fn clean_eof_and_oversized_frames() {
        let (r, w) = std::io::pipe().unwrap();
        let mut reader = FrameReader::new(r.into()).unwrap();
        drop(w);
        assert!(reader.is_closed());
        assert!(reader.next().await.unwrap().is_none());

        let (r, mut w) = std::io::pipe().unwrap();
        let mut reader = FrameReader::new(r.into()).unwrap();
        w.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes()).unwrap();
        assert!(matches!(reader.next().await, Err(FrameError::TooLarge(_))));
    }
}
