//! The local runtime's folder for one service and stage, `.nimbus/local/<service>/<stage>/`:
//! the durable store, buckets, unpacked packages, logs, the deployment and the running
//! runtime's address (`runtime.json`).
//!
//! Everything in it is the owner's only, whatever the umask: the folder and its subfolders are
//! created 0700 (and an existing one is tightened to it), files 0600.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::LocalError;

/// Paths inside a state folder.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state folder of `service`/`stage` next to the manifest in `manifest_dir`.
    pub fn for_service(manifest_dir: &Path, service: &str, stage: &str) -> StateDir {
        StateDir {
            root: manifest_dir
                .join(".nimbus")
                .join("local")
                .join(service)
                .join(stage),
        }
    }

    /// A state folder at `root`.
    pub fn at(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Creates the folder and its subfolders (buckets, scratch, functions, logs), owner-only.
    pub fn create(&self) -> Result<(), LocalError> {
        for dir in [
            self.root.clone(),
            self.buckets(),
            self.tmp(),
            self.functions(),
            self.logs(),
        ] {
            private_dir(&dir).map_err(|source| LocalError::Io {
                action: "creating",
                path: dir,
                source,
            })?;
        }
        Ok(())
    }
    /// The SQLite store.
    pub fn store(&self) -> PathBuf {
        self.root.join("state.db")
    }
    /// Bucket folders.
    pub fn buckets(&self) -> PathBuf {
        self.root.join("buckets")
    }
    /// Bucket scanner snapshot.
    pub fn bucket_snapshot(&self) -> PathBuf {
        self.root.join("buckets.snapshot.json")
    }
    /// Scratch space on the same file system.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// Unpacked packages.
    pub fn functions(&self) -> PathBuf {
        self.root.join("functions")
    }
    /// Log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The deployment description.
    pub fn deployment(&self) -> PathBuf {
        self.root.join("deployment.json")
    }
    /// Where the running runtime listens.
    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime.json")
    }
    /// The gateway port this deployment used last (kept across stops, so a redeploy keeps it).
    pub fn port_file(&self) -> PathBuf {
        self.root.join("port.json")
    }
    /// The gateway port this deployment used last, if it ran before.
    pub fn last_port(&self) -> Option<u16> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.port_file()).ok()?).ok()?;
        v.get("port")?
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    }
    /// Records the gateway port in use.
    pub fn record_port(&self, port: u16) -> Result<(), LocalError> {
        write_atomic(
            &self.port_file(),
            serde_json::json!({ "port": port }).to_string().as_bytes(),
        )
    }
    /// The runtime process's own output (panics, startup errors).
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("logs").join("daemon.log")
    }
}

/// What a running runtime writes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Its process id.
    pub pid: u32,
    /// Gateway port.
    pub gateway_port: u16,
    /// Admin port.
    pub admin_port: u16,
    /// Token the admin API requires (`x-nimbus-admin-token`).
    pub admin_token: String,
    /// The API key for routes with `api_key` auth.
    pub api_key: String,
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
}

impl RuntimeInfo {
    /// The gateway's base URL.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }
    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }
    /// Reads `runtime.json`, if there is one.
    pub fn read(path: &Path) -> Option<RuntimeInfo> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, with mode 0600 (missing
/// folders are created 0700).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |action: &'static str| {
        move |source| LocalError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    if let Some(parent) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io("creating the folder of"))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("writing"))?;
        f.write_all(bytes).map_err(io("writing"))?;
        f.sync_all().map_err(io("writing"))?;
    }
    std::fs::rename(&tmp, path).map_err(io("writing"))
}

/// Creates `dir` (and missing parents) with mode 0700; an existing `dir` is set to 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Opens `path` for appending, creating it with mode 0600 (set exactly, whatever the umask).
pub fn private_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// A random hex token from the OS.
pub fn random_token(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8));
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use nix::sys::stat::{Mode, umask};

    use super::*;
    use crate::{Runtime, RuntimeOptions};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn the_state_folder_its_database_and_logs_are_the_owners_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path().join("shop/dev"));
        // A folder left by an older nimbus, readable by all: tightened.
        std::fs::create_dir_all(state.logs()).unwrap();
        std::fs::set_permissions(state.logs(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let before = umask(Mode::empty());
        let opened = Runtime::open(state.clone(), RuntimeOptions::default());
        let daemon_log = private_append(&state.daemon_log());
        let written = write_atomic(&state.root().join("sub/x.json"), b"{}");
        umask(before);
        let rt = opened.unwrap();
        daemon_log.unwrap();
        written.unwrap();
        rt.log("info", None, "hello");
        rt.logs.flush();
        for folder in [
            state.root().to_path_buf(),
            state.logs(),
            state.buckets(),
            state.functions(),
            state.tmp(),
            state.root().join("sub"),
        ] {
            assert_eq!(mode(&folder), 0o700, "{}", folder.display());
        }
        for file in [
            state.store(),
            state.logs().join(crate::logs::FILE),
            state.daemon_log(),
            state.root().join("sub/x.json"),
        ] {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
}
