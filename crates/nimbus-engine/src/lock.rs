//! The deployment lock: who holds it ([`LockInfo`], stored as JSON in the lock file or object),
//! when it expires, and acquiring it with a timeout and backoff. Each backend provides the
//! atomic primitive (create-new file, create-if-absent object); this module does the rest.
//!
//! Lock format:
//!
//! ```json
//! { "id": "3f9c0a…", "scope": "shop/dev", "holder": "alice@build-7", "pid": 4242,
//!   "operation": "apply", "created": "2025-01-01T10:00:00.000Z",
//!   "expires": "2025-01-01T11:00:00.000Z", "host": "build-7", "boot": "8c1f…" }
//! ```
//!
//! `host` and `boot` (the kernel's host name and boot id, Linux only) tell a lock whose holder is
//! certainly gone: taken on this host, and either the host has rebooted since or no process has
//! its pid any more. Such a lock is refused at once as stale ([`Error::StaleLock`], with the
//! `nimbus unlock` command that takes it over) rather than waited on until it expires.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, TryLock};
use crate::{Error, random};

/// How locks are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// How long to keep retrying (with backoff) while another run holds the lock; zero fails at
    /// once.
    pub timeout: Duration,
    /// How long a lock is valid. An expired lock may be taken over, so this must exceed the
    /// longest deploy.
    pub ttl: Duration,
    /// Who to record as the holder; `user@host` when `None`.
    pub holder: Option<String>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout: Duration::ZERO,
            ttl: Duration::from_secs(3600),
            holder: None,
        }
    }
}

/// Who holds a lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id; `nimbus unlock <id>` removes the lock only when it matches.
    pub id: String,
    /// The locked `<service>/<stage>`.
    pub scope: String,
    /// `user@host`, or what the options named.
    pub holder: String,
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing (`apply`, `destroy`).
    pub operation: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    /// When it stops being valid (RFC 3339).
    pub expires: String,
    /// The holder's host name; empty when unknown (not Linux, or an older lock).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The holder's boot id; empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot: String,
}

impl LockInfo {
    /// A new lock for `scope`, valid for `options.ttl` from now.
    pub fn new(scope: &str, operation: &str, options: &LockOptions) -> Self {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(options.ttl).unwrap_or(chrono::Duration::MAX);
        LockInfo {
            id: random::random_hex(8),
            scope: scope.to_string(),
            holder: options.holder.clone().unwrap_or_else(default_holder),
            pid: std::process::id(),
            operation: operation.to_string(),
            created: random::timestamp(now),
            expires: random::timestamp(
                now.checked_add_signed(ttl)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
            host: kernel_text("hostname"),
            boot: kernel_text("random/boot_id"),
        }
    }

    /// Whether the run holding it is certainly gone: it took the lock on this host (same host
    /// name), and this host has rebooted since or no process has its pid. Unknown is not gone.
    pub fn holder_is_gone(&self) -> bool {
        let (host, boot) = (kernel_text("hostname"), kernel_text("random/boot_id"));
        if host.is_empty() || self.host != host {
            return false;
        }
        if !self.boot.is_empty() && !boot.is_empty() && self.boot != boot {
            return true;
        }
        std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Whether it has expired and may be taken over. A lock whose expiry cannot be read never
    /// expires.
    pub fn is_expired(&self) -> bool {
        DateTime::parse_from_rfc3339(&self.expires).is_ok_and(|t| t <= Utc::now())
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("lock serializes");
        bytes.push(b'\n');
        bytes
    }

    pub(crate) fn parse(bytes: &[u8], location: &str) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|source| Error::CorruptLock {
            location: location.to_string(),
            source,
        })
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pid {}) running `{}` since {}, until {}; lock id `{}`",
            self.holder, self.pid, self.operation, self.created, self.expires, self.id
        )
    }
}

/// `/proc/sys/kernel/<name>`, trimmed; empty where there is none.
fn kernel_text(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

fn default_holder() -> String {
    let env = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let user = env(&["USER", "USERNAME", "LOGNAME"]).unwrap_or_else(|| "unknown".into());
    let host = env(&["HOSTNAME", "COMPUTERNAME"])
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}")
}

/// Takes the lock on `scope`, retrying with exponential backoff (100 ms doubling to 5 s) until
/// `options.timeout` has passed; then fails naming the holder. A lock whose holder is gone
/// ([`LockInfo::holder_is_gone`]) fails at once as stale: waiting would not free it.
pub(crate) async fn acquire<B: Backend>(
    backend: &B,
    scope: &str,
    operation: &str,
    options: &LockOptions,
) -> Result<LockInfo, Error> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut delay = Duration::from_millis(100);
    let id = random::random_hex(8);
    loop {
        // Fresh times on every attempt, so a lock taken after a long wait gets its full ttl.
        let lock = LockInfo {
            id: id.clone(),
            ..LockInfo::new(scope, operation, options)
        };
        match backend.try_lock(&lock).await? {
            TryLock::Acquired => return Ok(lock),
            TryLock::Held(holder) if holder.holder_is_gone() => {
                return Err(Error::StaleLock {
                    scope: scope.to_string(),
                    lock: Box::new(holder),
                });
            }
            TryLock::Held(holder) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(Error::Locked {
                        scope: scope.to_string(),
                        lock: Box::new(holder),
                    });
                }
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_display() {
        let fresh = LockInfo::new("s/dev", "apply", &LockOptions::default());
        assert!(!fresh.is_expired());
        let stale = LockInfo::new(
            "s/dev",
            "apply",
            &LockOptions {
                ttl: Duration::ZERO,
                ..Default::default()
            },
        );
        assert!(stale.is_expired());
        let text = fresh.to_string();
        assert!(
            text.contains(&fresh.id) && text.contains("`apply`") && text.contains('@'),
            "{text}"
        );
        let unreadable = LockInfo {
            expires: "soon".into(),
            ..stale
        };
        assert!(!unreadable.is_expired());
        assert_eq!(LockInfo::parse(&fresh.to_bytes(), "x").unwrap(), fresh);
    }

    #[test]
    fn a_holder_is_gone_only_when_certain() {
        let mine = LockInfo::new("s/dev", "apply", &LockOptions::default());
        assert!(!mine.holder_is_gone(), "this process is alive");
        if mine.host.is_empty() {
            return; // not Linux: nothing is ever certain
        }
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let dead = exited.id();
        exited.wait().unwrap();
        let gone = LockInfo {
            pid: dead,
            ..mine.clone()
        };
        assert!(gone.holder_is_gone(), "pid {dead} has exited");
        let rebooted = LockInfo {
            boot: "another-boot".into(),
            ..mine.clone()
        };
        assert!(rebooted.holder_is_gone());
        let elsewhere = LockInfo {
            host: format!("{}-other", mine.host),
            ..gone.clone()
        };
        assert!(
            !elsewhere.holder_is_gone(),
            "another host's pids say nothing"
        );
        let old_format = LockInfo {
            host: String::new(),
            boot: String::new(),
            ..gone
        };
        assert!(!old_format.holder_is_gone());
        let parsed = LockInfo::parse(
            br#"{"id":"a","scope":"s/dev","holder":"x@y","pid":1,"operation":"apply","created":"c","expires":"e"}"#,
            "x",
        )
        .unwrap();
        assert_eq!(
            parsed.host, "",
            "locks written before `host` existed still parse"
        );
    }
}
