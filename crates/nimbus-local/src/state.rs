//! The local runtime's folder for one service and stage, `.nimbus/local/<service>/<stage>/`:
//! the durable store, buckets, unpacked packages, logs, the deployment and the running
//! runtime's address (`runtime.json`).

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

/// Writes `bytes` to `path` through a temporary file and a rename, with mode 0600.
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
        std::fs::create_dir_all(parent).map_err(io("creating the folder of"))?;
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
