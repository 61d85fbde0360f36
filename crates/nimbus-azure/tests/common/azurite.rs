//! Azurite (blob, queue and table storage), started by the tests on free 127.0.0.1 ports from
//! the project's `node_modules` (`NIMBUS_TEST_NODE_MODULES`, else `<repo>/.tools/node/node_modules`)
//! and stopped when dropped. Missing: the test fails (run `scripts/test`).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key.
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite.
pub struct Azurite {
    child: Child,
    /// Blob, queue and table ports.
    pub blob: u16,
    pub queue: u16,
    pub table: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The project's node_modules.
pub fn node_modules() -> PathBuf {
    std::env::var_os("NIMBUS_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo().join(".tools/node/node_modules"))
}

impl Azurite {
    /// Starts Azurite in memory and waits until every service accepts connections.
    pub fn start() -> Azurite {
        let bin = node_modules().join(".bin/azurite");
        assert!(
            bin.exists(),
            "azurite is not installed at {}: run scripts/test (it installs tests/package.json into .tools/node)",
            bin.display()
        );
        let (blob, queue, table) = (free_port(), free_port(), free_port());
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &blob.to_string()])
            .args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &queue.to_string(),
            ])
            .args([
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                &table.to_string(),
            ])
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite starts");
        let mut a = Azurite {
            child,
            blob,
            queue,
            table,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [blob, queue, table] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = a.child.try_wait() {
                    panic!("azurite exited with {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "azurite did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        a
    }

    /// The blob endpoint, `http://127.0.0.1:<port>/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.blob)
    }

    /// A connection string for Microsoft's client libraries.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint=http://127.0.0.1:{}/{ACCOUNT};QueueEndpoint=http://127.0.0.1:{}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{}/{ACCOUNT};",
            self.blob, self.queue, self.table
        )
    }
}

impl Azurite {
    /// What Azurite holds in `container`, asked through Microsoft's `azure-storage-blob` (not
    /// nimbus code): blob name → `{"lease": state, "content": text}`; empty when the container
    /// does not exist.
    pub fn blobs(&self, container: &str) -> serde_json::Value {
        let out = Command::new(nimbus_test_support::required_venv_tool("python"))
            .arg("-c")
            .arg(
                "import sys, json\nfrom azure.storage.blob import BlobServiceClient\n\
                 c = BlobServiceClient.from_connection_string(sys.argv[1]).get_container_client(sys.argv[2])\n\
                 print(json.dumps({b.name: {'lease': b.lease.state, 'content': c.download_blob(b.name).readall().decode('utf-8', 'replace')} for b in c.list_blobs()} if c.exists() else {}))",
            )
            .arg(self.connection_string())
            .arg(container)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The names of the blobs in `container`, sorted.
    pub fn blob_names(&self, container: &str) -> Vec<String> {
        self.blobs(container)
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
