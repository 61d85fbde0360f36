//! Killing a worker with everything it started, including processes that left its process
//! group: a handler's `setsid` child, or a daemon that forked twice and was reparented to init.
//!
//! A worker's descendants are found in `/proc` two ways: by parent (every process whose chain of
//! parents leads to the worker) and by a tag each worker gets in its environment
//! ([`TAG_VAR`], inherited by whatever it starts, even once reparented). They are stopped with
//! `SIGSTOP` as they are found, so that none can fork a child that is missed, until a scan finds
//! no new one; then all of them, and the worker's process group, get `SIGKILL`. Without `/proc`
//! (not Linux) only the process group is killed.

use std::collections::{BTreeMap, BTreeSet};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable that tags a worker and its descendants.
pub(crate) const TAG_VAR: &str = "NIMBUS_WORKER_TAG";

/// Scans at most this many times (each one stops what it found), so a fork bomb cannot keep
/// the kill going.
const MAX_SCANS: usize = 16;

/// A process seen in `/proc`.
struct Process {
    ppid: u32,
    tagged: bool,
}

/// Every process now: pid → parent and whether its environment holds `tag`.
fn processes(tag: &str) -> BTreeMap<u32, Process> {
    let needle = format!("{TAG_VAR}={tag}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after `(comm)`: state, ppid, ...
            let (_, rest) = stat.rsplit_once(") ")?;
            let ppid = rest.split(' ').nth(1)?.parse().ok()?;
            let tagged = std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()));
            Some((pid, Process { ppid, tagged }))
        })
        .collect()
}

/// The descendants of `root` and of the processes tagged `tag` (those included), `root` and
/// this process excluded.
fn descendants(root: u32, tag: &str) -> BTreeSet<u32> {
    let all = processes(tag);
    let this = std::process::id();
    let mut found = BTreeSet::new();
    let tagged = all.iter().filter(|(_, p)| p.tagged).map(|(pid, _)| *pid);
    let mut frontier: Vec<u32> = std::iter::once(root).chain(tagged).collect();
    while let Some(parent) = frontier.pop() {
        if parent == this || (parent != root && !found.insert(parent)) {
            continue;
        }
        frontier.extend(
            all.iter()
                .filter(|(pid, p)| p.ppid == parent && **pid != root && !found.contains(*pid))
                .map(|(pid, _)| *pid),
        );
    }
    found
}

/// SIGKILL to the worker `pid` (its process group, which it leads) and to every process it
/// started, wherever that went. `tag` is the worker's [`TAG_VAR`] value. The worker must not be
/// reaped yet, so that its pid cannot have been reused.
pub(crate) fn kill_tree(pid: u32, tag: &str) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    if raw <= 0 {
        return; // never group 0 (ours) or -1 (everything)
    }
    let mut stopped = BTreeSet::new();
    // Stop the leader first: it forks no more while its descendants are collected.
    let _ = kill(Pid::from_raw(raw), Signal::SIGSTOP);
    for _ in 0..MAX_SCANS {
        let fresh: Vec<u32> = descendants(pid, tag)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for p in fresh {
            if let Ok(p_raw) = i32::try_from(p) {
                let _ = kill(Pid::from_raw(p_raw), Signal::SIGSTOP);
            }
            stopped.insert(p);
        }
    }
    let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    for p in stopped {
        if let Ok(p_raw) = i32::try_from(p) {
            let _ = kill(Pid::from_raw(p_raw), Signal::SIGKILL);
        }
    }
    // A stopped process dies of SIGKILL without being continued.
}
