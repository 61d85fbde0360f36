//! The registry of local deployments, in the user's data folder
//! (`$XDG_DATA_HOME/nimbus/local/deployments/`, else `~/.local/share/nimbus/local/deployments/`):
//! one small record per deployment — service, stage, manifest, state folder, the folder it was
//! deployed from, its port and the process serving it — so that `nimbus info --all` lists every
//! local deployment and `info`, `logs` and `remove` find one without its manifest, also after
//! its project was moved or deleted.
//!
//! The state itself stays in the project (`.nimbus/local/<service>/<stage>/`); a record only
//! points at it. Records hold no secret (no admin token, no API key); folders are 0700 and
//! files 0600 all the same. Whether a record's deployment is running is read from `/proc`: its
//! process is alive and was started for that state folder (`--state PATH` on its command line,
//! which stays true after the folder moved) or holds its store open (`nimbus dev`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LocalError;
use crate::state::StateDir;

/// One local deployment, as last deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// The manifest it was deployed from (absolute).
    pub manifest: PathBuf,
    /// Its state folder (absolute).
    pub state: PathBuf,
    /// The working folder of the command that deployed it (absolute): `nimbus info` run there
    /// without a manifest finds it.
    pub deployed_from: PathBuf,
    /// When it was last deployed (RFC 3339, UTC).
    pub deployed_at: String,
    /// The gateway's port.
    pub port: u16,
    /// The process serving it (the background runtime, or `nimbus dev`).
    pub pid: u32,
}

impl Record {
    /// The gateway's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its state folder.
    pub fn state_dir(&self) -> StateDir {
        StateDir::at(self.state.clone())
    }

    /// Whether it is running, stopped, or gone (its state folder no longer exists).
    pub fn status(&self) -> Status {
        if serves(self.pid, &self.state) {
            Status::Running { pid: self.pid }
        } else if self.state.is_dir() {
            Status::Stopped
        } else {
            Status::Gone
        }
    }
}

/// Whether a recorded deployment is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Its process is alive and serves it.
    Running {
        /// The process.
        pid: u32,
    },
    /// Nothing serves it; its data is still there.
    Stopped,
    /// Nothing serves it and its state folder is gone (the project was moved or deleted).
    Gone,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Running { pid } => write!(f, "running (pid {pid})"),
            Status::Stopped => f.write_str("stopped"),
            Status::Gone => f.write_str("gone (its folder no longer exists)"),
        }
    }
}

/// Nimbus's local data folder: `$XDG_DATA_HOME/nimbus/local`, else
/// `$HOME/.local/share/nimbus/local`; `None` without either.
pub fn data_root() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let data = std::env::var_os("XDG_DATA_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/share"))
        })?;
    Some(data.join("nimbus").join("local"))
}

/// The registry folder: `$XDG_DATA_HOME/nimbus/local/deployments`, else
/// `$HOME/.local/share/nimbus/local/deployments`; `None` without either.
pub fn root() -> Option<PathBuf> {
    data_root().map(|d| d.join("deployments"))
}

/// The record file of the deployment whose state folder is `state` (absolute).
fn file_of(root: &Path, state: &Path) -> PathBuf {
    let digest = Sha256::digest(state.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    root.join(format!("{hex}.json"))
}

/// Maps an I/O error on `path` during `action` to [`LocalError::Io`].
pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LocalError {
    let path = path.to_path_buf();
    move |source| LocalError::Io {
        action,
        path,
        source,
    }
}

/// Records `record` (replacing the record of the same state folder).
pub fn save(record: &Record) -> Result<(), LocalError> {
    let Some(root) = root() else {
        return Ok(());
    };
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .map_err(io("creating", &root))?;
    let mut text = serde_json::to_vec_pretty(record).expect("records serialize");
    text.push(b'\n');
    crate::state::write_atomic(&file_of(&root, &record.state), &text)
}

/// Removes the record of the deployment whose state folder is `state`, if there is one.
pub fn forget(state: &Path) -> Result<(), LocalError> {
    let Some(root) = root() else {
        return Ok(());
    };
    let file = file_of(&root, state);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("deleting", &file)(e)),
        _ => Ok(()),
    }
}

/// The record of the deployment whose state folder is `state`, if there is one.
pub fn find(state: &Path) -> Option<Record> {
    let file = file_of(&root()?, state);
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Every record, by service, stage and manifest. Unreadable files are skipped.
pub fn all() -> Vec<Record> {
    let Some(entries) = root().and_then(|r| std::fs::read_dir(r).ok()) else {
        return Vec::new();
    };
    let mut records: Vec<Record> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    records.sort_by(|a, b| {
        (&a.service, &a.stage, &a.manifest).cmp(&(&b.service, &b.stage, &b.manifest))
    });
    records
}

/// Whether process `pid` is alive and serves the state folder `state`: it was started with
/// `--state <state>`, or holds the folder's store open.
pub fn serves(pid: u32, state: &Path) -> bool {
    if !crate::control::alive(pid) {
        return false;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let wanted = state.as_os_str().as_encoded_bytes();
    if args
        .windows(2)
        .any(|w| w[0] == b"--state" && w[1] == wanted)
    {
        return true;
    }
    let store = StateDir::at(state.to_path_buf()).store();
    let deleted = format!("{} (deleted)", store.display());
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| target == store || target.as_os_str() == deleted.as_str())
    })
}

/// The recorded deployment served by process `pid`, if any.
pub fn served_by(pid: u32) -> Option<Record> {
    all()
        .into_iter()
        .find(|r| r.pid == pid && serves(pid, &r.state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_serves_the_state_whose_store_it_holds_open() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().canonicalize().unwrap();
        let me = std::process::id();
        assert!(!serves(me, &state), "nothing is open yet");
        let store = std::fs::File::create(StateDir::at(state.clone()).store()).unwrap();
        assert!(serves(me, &state));
        assert!(!serves(me, &state.join("elsewhere")));
        std::fs::remove_file(StateDir::at(state.clone()).store()).unwrap();
        assert!(serves(me, &state), "a deleted but open store still counts");
        drop(store);
        assert!(!serves(me, &state));
    }
}
