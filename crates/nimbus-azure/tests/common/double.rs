//! The ARM test double (`tests/arm_double.py`), started on a free 127.0.0.1 port with the
//! project venv's Python (Microsoft's models installed) and stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The token the double accepts.
pub const TOKEN: &str = "double-token";

/// A running ARM test double.
pub struct ArmDouble {
    child: Child,
    /// Where the Functions host stand-in unpacks apps; removed with the double.
    _apps: tempfile::TempDir,
    /// Its port.
    pub port: u16,
    /// The port of its TLS listener (Key Vault's SDK), when started with one.
    pub tls_port: Option<u16>,
}

impl ArmDouble {
    /// Starts the double against `azurite`: storage accounts report its blob endpoint (so the
    /// packages uploaded there are where the template points), and the Functions host stand-in
    /// reads packages and runs apps with its connection string.
    pub fn start(azurite: &super::azurite::Azurite) -> ArmDouble {
        Self::start_with(
            &format!("{}/", azurite.blob_endpoint()),
            &azurite.connection_string(),
            "",
            false,
        )
    }

    /// Also listening with TLS for Microsoft's Key Vault SDK ([`ArmDouble::tls_url`],
    /// [`ArmDouble::tls_cert`]).
    /// Without storage: enough for vaults and secrets.
    pub fn start_with_tls() -> ArmDouble {
        Self::start_with("", "", "", true)
    }

    /// [`ArmDouble::start`], and apps the host stand-in runs reach their tables on `cosmos`.
    pub fn start_with_cosmos(
        azurite: &super::azurite::Azurite,
        cosmos: &super::cosmos::Cosmos,
    ) -> ArmDouble {
        Self::start_with(
            &format!("{}/", azurite.blob_endpoint()),
            &azurite.connection_string(),
            &cosmos.connection_string(),
            false,
        )
    }

    /// Starts the double without storage: enough to validate deployments, not to run apps.
    pub fn start_without_storage() -> ArmDouble {
        Self::start_with("", "", "", false)
    }

    fn start_with(
        blob_endpoint: &str,
        connection_string: &str,
        cosmos: &str,
        tls: bool,
    ) -> ArmDouble {
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let port = free();
        let tls_port = tls.then(free);
        let python = std::env::var_os("NIMBUS_TEST_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| nimbus_test_support::required_venv_tool("python"));
        let apps = tempfile::tempdir().unwrap();
        let mut command = Command::new(python);
        command.arg(super::repo().join("crates/nimbus-azure/tests/arm_double.py"));
        if let Some(p) = tls_port {
            command
                .args(["--keyvault-tls-port", &p.to_string(), "--tls-cert"])
                .arg(apps.path().join("double-cert.pem"));
        }
        let mut child = command
            .args(["--port", &port.to_string(), "--token", TOKEN])
            .args(["--blob-endpoint", blob_endpoint])
            .args(["--storage-connection-string", connection_string])
            .args(["--cosmos-connection-string", cosmos])
            .arg("--apps-dir")
            .arg(apps.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the ARM double starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the ARM double did not start");
        ArmDouble {
            child,
            _apps: apps,
            port,
            tls_port,
        }
    }

    /// The TLS listener's base URL (started with [`ArmDouble::start_with_tls`]).
    pub fn tls_url(&self) -> String {
        format!(
            "https://127.0.0.1:{}",
            self.tls_port.expect("a TLS listener")
        )
    }

    /// The TLS listener's self-signed certificate (PEM).
    pub fn tls_cert(&self) -> std::path::PathBuf {
        self._apps.path().join("double-cert.pem")
    }

    /// Every vault's secrets (values included) and the data-plane calls, from the double.
    pub fn keyvault(&self) -> Value {
        self.hook("GET", "/_double/keyvault", None)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn hook(&self, method: &str, path: &str, body: Option<&str>) -> Value {
        self.exchange(method, path, "", body.unwrap_or("")).1
    }

    /// A plain HTTP/1.1 exchange (the double is ours, no client library needed): its status and
    /// JSON body (null when there is none).
    fn exchange(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let payload = out.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(payload).unwrap_or(Value::Null))
    }

    /// An ARM request with the double's token: its status and JSON body.
    pub fn arm(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.exchange(
            method,
            path,
            &format!("Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"),
            &body.to_string(),
        )
    }

    /// Every request so far, as `[method, path]`.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.hook("GET", "/_double/calls", None)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_str().unwrap().into(), c[1].as_str().unwrap().into()))
            .collect()
    }

    /// The ids of what the resource groups hold.
    pub fn resources(&self) -> Vec<String> {
        self.hook("GET", "/_double/resources", None)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Adds Application Insights trace rows (`timestamp`, `cloud_RoleName`, `message`).
    pub fn add_traces(&self, rows: &Value) {
        self.hook("POST", "/_double/traces", Some(&rows.to_string()));
    }

    /// What the Functions host stand-in ran through the admin API.
    pub fn invocations(&self) -> Value {
        self.hook("GET", "/_double/invocations", None)
    }

    /// Makes the next deployment fail with `message` (its failed resource's code `Conflict`).
    pub fn fail_next_deployment(&self, message: &str) {
        self.fail_next_deployment_with("Conflict", message);
    }

    /// Makes the next deployment fail with ARM's `code` and `message` for its failed resource.
    pub fn fail_next_deployment_with(&self, code: &str, message: &str) {
        self.hook(
            "POST",
            "/_double/fail-next-deployment",
            Some(&serde_json::json!({ "code": code, "message": message }).to_string()),
        );
    }
}

impl Drop for ArmDouble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
