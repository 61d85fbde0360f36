//! The CORS request table (`tests/shims/cases/cors.json`) through real HTTP against a local
//! deployment made by the real `nimbus` binary: preflights answered by the gateway (the handler
//! never runs), the policy's headers on handler responses, the handler's own replaced.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nimbus_test_support::cors::{Answer, check, manifest, table};

const HANDLER: &str = r#"
def handler(event, context):
    return {
        "status": 200,
        "headers": {
            "x-handled": "yes",
            "x-request-id": "r-1",
            "access-control-allow-origin": "https://handler.example",
        },
        "body": "ok",
    }
"#;

fn nimbus(dir: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .env("XDG_DATA_HOME", data)
        .output()
        .expect("nimbus runs")
}

/// Sends one request; the status, lower-case headers (repeated ones joined) and body.
fn send(url: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let host = url.strip_prefix("http://").unwrap().trim_end_matches('/');
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let head = raw.split_once("\r\n\r\n").map_or(raw.as_str(), |(h, _)| h);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut out = std::collections::BTreeMap::<String, String>::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            out.entry(k.trim().to_ascii_lowercase())
                .and_modify(|e| {
                    e.push_str(", ");
                    e.push_str(v.trim())
                })
                .or_insert_with(|| v.trim().to_string());
        }
    }
    Answer {
        status,
        handler: out.get("x-handled").is_some_and(|v| v == "yes"),
        headers: out,
    }
}

#[test]
fn the_cors_table_through_the_local_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest(None)).unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    let out = nimbus(dir.path(), data.path(), &["deploy", "--port", "0"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let t = table();
    let path = t["route"]["path"].as_str().unwrap();
    let mut failures = Vec::new();
    for case in t["cases"].as_array().unwrap() {
        let r = &case["request"];
        let mut headers = Vec::new();
        for (key, header) in [
            ("origin", "origin"),
            ("request_method", "access-control-request-method"),
            ("request_headers", "access-control-request-headers"),
            ("cookie", "cookie"),
        ] {
            if let Some(v) = r[key].as_str() {
                headers.push((header, v));
            }
        }
        let answer = send(&url, r["method"].as_str().unwrap(), path, &headers);
        if let Err(e) = check(case, "local", &answer) {
            failures.push(format!("{e}\n  got {answer:?}"));
        }
        if answer.status == 204 {
            assert_eq!(
                answer.headers.get("vary").map(String::as_str),
                Some("Origin"),
                "a preflight answer varies by origin"
            );
        }
    }
    // A path with no CORS route is not answered as a preflight: the router's 405 stands.
    let other = send(
        &url,
        "OPTIONS",
        "/elsewhere",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ],
    );
    assert_eq!(other.status, 404, "{other:?}");
    let _ = nimbus(dir.path(), data.path(), &["remove", "--yes"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_route_can_opt_out_of_the_app_cors() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let yaml = "version: 1\nservice: optout\nhttp:\n  cors: { origins: [\"https://app.example.com\"] }\nfunctions:\n  api:\n    handler: app.py:handler\n    triggers:\n      - http: { method: GET, path: /open }\n      - http: { method: GET, path: /closed, cors: false }\n";
    std::fs::write(dir.path().join("nimbus.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    let out = nimbus(dir.path(), data.path(), &["deploy", "--port", "0"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let origin = [("origin", "https://app.example.com")];
    let open = send(&url, "GET", "/open", &origin);
    let closed = send(&url, "GET", "/closed", &origin);
    let preflight = send(
        &url,
        "OPTIONS",
        "/closed",
        &[origin[0], ("access-control-request-method", "GET")],
    );
    let _ = nimbus(dir.path(), data.path(), &["remove", "--yes"]);
    assert_eq!(
        open.headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some("https://app.example.com"),
        "{open:?}"
    );
    // Without CORS the handler's response is passed through untouched.
    assert_eq!(
        closed
            .headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some("https://handler.example"),
        "{closed:?}"
    );
    assert_eq!(
        preflight.status, 405,
        "no CORS: the router answers, {preflight:?}"
    );
}
