//! State and lock as local files: `<root>/<service>/<stage>/<provider>/state.json`, written
//! atomically (temp file, fsync, rename, fsync of the directory), and
//! `<root>/<service>/<stage>/lock.json`, created with `create_new`.
//!
//! File operations are synchronous inside the async methods: they are small, and an apply that
//! is dropped must not leave a write running in the background.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Backend, TryLock};
use crate::lock::LockInfo;
use crate::state::check_overwrite;
use crate::{Deployment, Error, State, random};

/// State and lock in local files.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    state_path: PathBuf,
    lock_path: PathBuf,
    scope: String,
}

impl LocalBackend {
    /// The backend for `deployment` under `root` (for example `.nimbus/state`).
    pub fn new(root: impl AsRef<Path>, deployment: &Deployment) -> Self {
        let stage_dir = root
            .as_ref()
            .join(deployment.service())
            .join(deployment.stage());
        LocalBackend {
            state_path: stage_dir.join(deployment.provider()).join("state.json"),
            lock_path: stage_dir.join("lock.json"),
            scope: deployment.lock_scope(),
        }
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn lock_location(&self) -> String {
        format!("`{}`", self.lock_path.display())
    }

    /// The lock file's content. A file being written by another process can be empty for a
    /// moment, so an unreadable lock is read again a few times before it is called corrupt.
    async fn read_lock_file(&self) -> Result<Option<LockInfo>, Error> {
        let mut attempt = 0;
        loop {
            let bytes = match fs::read(&self.lock_path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(format!("read {}", self.lock_location()), e)),
            };
            match LockInfo::parse(&bytes, &self.lock_location()) {
                Ok(lock) => return Ok(Some(lock)),
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves an expired lock out of the way. The rename is atomic, so of several processes only
    /// one moves a given file; if what was moved turns out to be a fresh lock (someone took over
    /// in between), it is put back with a no-clobber hard link.
    fn take_over(&self, expired: &LockInfo) -> Result<(), Error> {
        let dir = self.lock_path.parent().unwrap_or(Path::new("."));
        let moved = dir.join(format!(".lock.{}.stale", random::random_hex(8)));
        match fs::rename(&self.lock_path, &moved) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(io(
                    format!("move the expired lock {}", self.lock_location()),
                    e,
                ));
            }
        }
        let was_expired = fs::read(&moved)
            .ok()
            .and_then(|b| LockInfo::parse(&b, "").ok())
            .is_some_and(|l| l.id == expired.id);
        if !was_expired {
            let _ = fs::hard_link(&moved, &self.lock_path);
        }
        let _ = fs::remove_file(&moved);
        Ok(())
    }
}

fn io(action: String, source: std::io::Error) -> Error {
    Error::Io { action, source }
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename over
/// `path`, then fsync of the directory so the rename survives a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let temp = dir.join(format!(".{name}.{}.tmp", random::random_hex(8)));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        format!("`{}`", self.state_path.display())
    }

    async fn load(&self) -> Result<Option<State>, Error> {
        match fs::read(&self.state_path) {
            Ok(bytes) => State::parse(&bytes, &self.location()).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("read {}", self.location()), e)),
        }
    }

    async fn save(&self, state: &State) -> Result<(), Error> {
        let location = self.location();
        match fs::read(&self.state_path) {
            Ok(stored) => check_overwrite(&stored, state, &location)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("read {location}"), e)),
        }
        if let Some(dir) = self.state_path.parent() {
            fs::create_dir_all(dir).map_err(|e| io(format!("create `{}`", dir.display()), e))?;
        }
        write_atomically(&self.state_path, &state.to_bytes())
            .map_err(|e| io(format!("write {location}"), e))
    }

    async fn try_lock(&self, lock: &LockInfo) -> Result<TryLock, Error> {
        if let Some(dir) = self.lock_path.parent() {
            fs::create_dir_all(dir).map_err(|e| io(format!("create `{}`", dir.display()), e))?;
        }
        for _ in 0..5 {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.lock_path)
            {
                Ok(mut file) => {
                    file.write_all(&lock.to_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io(format!("write {}", self.lock_location()), e))?;
                    return Ok(TryLock::Acquired);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(format!("create {}", self.lock_location()), e)),
            }
            match self.read_lock_file().await? {
                None => continue,
                Some(held) if !held.is_expired() => return Ok(TryLock::Held(held)),
                Some(expired) => self.take_over(&expired)?,
            }
        }
        Err(Error::LockContention {
            location: self.lock_location(),
        })
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, Error> {
        self.read_lock_file().await
    }

    async fn unlock(&self, id: &str) -> Result<(), Error> {
        let held = self.read_lock_file().await?;
        super::check_unlock(&self.scope, held.as_ref(), id)?;
        match fs::remove_file(&self.lock_path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(io(format!("remove {}", self.lock_location()), e))
            }
            _ => Ok(()),
        }
    }
}
