//! A Cosmos DB for NoSQL API server (`@vercel/cosmosdb-server` from npm, installed into the
//! project's `node_modules` by `scripts/test`), started on a free 127.0.0.1 port through
//! `tests/support/cosmos_server.js` (HTTPS with a certificate made for 127.0.0.1) and stopped
//! when dropped. Missing: the test fails with the install command.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The key the server is addressed with (it checks none; Microsoft's SDKs need one).
pub const KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// A running server.
pub struct Cosmos {
    child: Child,
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>/`.
    pub endpoint: String,
    /// Its certificate (PEM), for `NODE_EXTRA_CA_CERTS`.
    pub cert: std::path::PathBuf,
}

impl Cosmos {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Cosmos {
        let modules = super::azurite::node_modules();
        assert!(
            modules.join("@vercel/cosmosdb-server").exists(),
            "@vercel/cosmosdb-server is not installed in {}: run scripts/test (it installs tests/package.json into .tools/node)",
            modules.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(super::repo().join("tests/support/cosmos_server.js"))
            .arg(port.to_string())
            .arg(dir.path())
            .env("NIMBUS_TEST_NODE_MODULES", &modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs tests/support/cosmos_server.js");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(
            parts.next(),
            Some("ready"),
            "the Cosmos DB server did not start: {line}"
        );
        let endpoint = parts.next().unwrap().to_string();
        let cert = parts.next().unwrap().into();
        Cosmos {
            child,
            _dir: dir,
            endpoint,
            cert,
        }
    }

    /// `AccountEndpoint=…;AccountKey=…;`.
    pub fn connection_string(&self) -> String {
        format!("AccountEndpoint={};AccountKey={KEY};", self.endpoint)
    }
}

impl Drop for Cosmos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
