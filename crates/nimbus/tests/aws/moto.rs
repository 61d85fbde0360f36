//! The AWS endpoint the contract tests run against: `moto_server` from the project's venv on a
//! free port (started here, stopped on drop), or — when `NIMBUS_TEST_AWS_ENDPOINT` names one —
//! an endpoint someone else runs (LocalStack, another moto). Tests use distinct stages, so they
//! can share one endpoint.
//!
//! The tools come from the venv `scripts/test` prepares (`NIMBUS_TEST_PYTHON`'s directory, else
//! `<repo>/.tools/venv/bin`). A missing tool fails the test, never skips it.

use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nimbus_test_support::required_venv_tool;
use serde_json::Value;

/// A running AWS endpoint.
pub struct Endpoint {
    pub url: String,
    child: Option<Child>,
}

impl Endpoint {
    /// `NIMBUS_TEST_AWS_ENDPOINT`, or a fresh moto.
    pub fn start() -> Endpoint {
        if let Ok(url) = std::env::var("NIMBUS_TEST_AWS_ENDPOINT") {
            return Endpoint { url, child: None };
        }
        let port = free_port();
        let child = Command::new(required_venv_tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoint = Endpoint {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        // Lambda Invoke must not need Docker: moto then echoes the event it was given.
        let config = ureq_post(
            &format!("{}/moto-api/config", endpoint.url),
            r#"{"lambda": {"use_docker": false}}"#,
        );
        assert!(config.is_ok(), "configuring moto: {config:?}");
        endpoint
    }

    /// Runs the AWS CLI (from the venv) against this endpoint; returns its JSON output.
    pub fn aws(&self, args: &[&str]) -> Value {
        let out = self.aws_raw(args);
        assert!(
            out.status.success(),
            "aws {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
    }

    /// Runs the AWS CLI and returns what it printed, successful or not.
    pub fn aws_raw(&self, args: &[&str]) -> Output {
        Command::new(required_venv_tool("aws"))
            .args(["--endpoint-url", &self.url, "--output", "json"])
            .args(args)
            .envs(credentials())
            .output()
            .expect("run the aws CLI")
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Test credentials and region for every AWS client.
pub fn credentials() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP POST (the moto admin API), without pulling in a client crate.
fn ureq_post(url: &str, body: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("http only")?;
    let (host, path) = rest.split_once('/').ok_or("no path")?;
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    match response.starts_with("HTTP/1.1 20") || response.starts_with("HTTP/1.0 20") {
        true => Ok(response),
        false => Err(response),
    }
}
