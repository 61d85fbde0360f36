//! The gateway's port: binding exactly the port that was asked for (an error naming the holder
//! when it is taken, never a silent move), or — when none was asked for — the port this
//! deployment used last time, else 3000 or the next free one.
//!
//! Who holds a port is found best effort from `/proc`: the listening socket's inode in
//! `/proc/net/tcp{,6}`, then the process with that socket among `/proc/<pid>/fd` (only this
//! user's processes are visible), then the registry, to say which local deployment it is.

use std::path::Path;

use tokio::net::TcpListener;

use crate::LocalError;

/// The first port tried when none is asked for and none was used before.
pub const DEFAULT_PORT: u16 = 3000;

/// Binds `127.0.0.1:port` exactly (`0`: any free port); a taken port is
/// [`LocalError::PortInUse`] naming its holder when it can.
pub async fn bind_exact(port: u16) -> Result<TcpListener, LocalError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| in_use(port, source))
}

/// Checks that `127.0.0.1:port` can be bound now (before starting a background runtime on it).
pub fn ensure_free(port: u16) -> Result<(), LocalError> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|source| in_use(port, source))
}

fn in_use(port: u16, source: std::io::Error) -> LocalError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        LocalError::PortInUse {
            port,
            holder: describe_holder(port),
        }
    } else {
        LocalError::Bind { port, source }
    }
}

/// The first free port from `start` on (up to 100 tries).
pub async fn bind_from(start: u16) -> Result<TcpListener, LocalError> {
    let mut error = None;
    for port in start..=start.saturating_add(99) {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) => error = Some(e),
        }
    }
    Err(LocalError::Bind {
        port: start,
        source: error.unwrap_or_else(|| std::io::Error::other("no port")),
    })
}

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command line (arguments joined by spaces).
    pub command: String,
}

/// Who holds `port` on this machine, in words: a local deployment (service, stage, manifest) or
/// a process (pid and command line); `None` when it cannot be seen.
pub fn describe_holder(port: u16) -> Option<String> {
    let holder = holder(port)?;
    if let Some(r) = crate::registry::served_by(holder.pid) {
        return Some(format!(
            "the local runtime of `{}` (stage `{}`, {}, pid {})",
            r.service,
            r.stage,
            r.manifest.display(),
            holder.pid
        ));
    }
    Some(format!("pid {} (`{}`)", holder.pid, holder.command))
}

/// The process listening on `port` (IPv4 or IPv6), if this user can see it.
pub fn holder(port: u16) -> Option<Holder> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| wanted.iter().any(|w| t.as_os_str() == w.as_str()))
        });
        if holds {
            return Some(Holder {
                pid,
                command: command_line(&entry.path()),
            });
        }
    }
    None
}

/// The inodes of the sockets listening on `port` in a `/proc/net/tcp` (or `tcp6`) table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == LISTEN;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .filter(|inode| *inode != 0)
        .collect()
}

fn command_line(proc_dir: &Path) -> String {
    let raw = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let text = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let text = if text.is_empty() {
        std::fs::read_to_string(proc_dir.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        text
    };
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_found_by_port_in_both_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0DAC 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n   1: 0100007F:0DAC 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1\n   2: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(v4, 3500), [4242], "the LISTEN row only");
        assert_eq!(listening_inodes(v4, 3000), [5151]);
        assert!(listening_inodes(v4, 3001).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:0DAC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6161 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(v6, 3500), [6161]);
    }

    #[test]
    fn a_taken_port_names_this_process_as_its_holder() {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let holder = holder(port).expect("our own socket is visible");
        assert_eq!(holder.pid, std::process::id());
        match ensure_free(port) {
            Err(LocalError::PortInUse { port: p, holder }) => {
                assert_eq!(p, port);
                let holder = holder.expect("named");
                assert!(
                    holder.starts_with(&format!("pid {} (`", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("expected PortInUse, got {other:?}"),
        }
        drop(taken);
        ensure_free(port).expect("free once released");
    }
}
