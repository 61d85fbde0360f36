//! Talking to a running runtime's admin API from another process (the CLI): a minimal
//! HTTP/1.1 client for JSON over loopback, and finding the runtime of a service and stage.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::state::{RuntimeInfo, StateDir};

/// Calls `method path` on the admin API with an optional JSON body; returns the status and the
/// JSON reply.
pub fn call(
    info: &RuntimeInfo,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", info.admin_port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\nx-nimbus-admin-token: {}\r\ncontent-length: {}\r\n\r\n{payload}",
        info.admin_token,
        payload.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed HTTP reply"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed HTTP status"))?;
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    Ok((status, value))
}

/// The runtime serving `state`, if one is running and answers.
pub fn running(state: &StateDir) -> Option<RuntimeInfo> {
    let info = RuntimeInfo::read(&state.runtime())?;
    match call(&info, "GET", "/health", None, Duration::from_secs(2)) {
        Ok((200, v)) if v.get("pid").and_then(Value::as_u64) == Some(info.pid as u64) => Some(info),
        _ => None,
    }
}

/// Whether process `pid` is still alive.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Asks process `pid` to stop (SIGTERM: the runtime drains and stops, as on `POST /shutdown`).
/// For a runtime that cannot be reached through its state folder (moved or deleted).
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(std::io::Error::from)
}
