//! Temporary files that never outlive a build and are never shared between builds.
//!
//! Every file a build writes (a zip, `build.json`) is first written to a temporary file of its
//! own in the same folder — `.<name>.<pid>.<random>.tmp`, unique per writer even between threads
//! of one process — and renamed over the destination only when complete, so a reader sees the
//! old file or the new one, never a part. The temporary file is removed when the write fails or
//! is dropped (an error, an over-limit package, a panic). A process killed outright cannot
//! remove its own: the next build in the folder removes the temporary files of processes that
//! are gone, and leaves those of live ones (a concurrent build) alone.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::PackageError;

/// The prefix of this process's temporary files and folders for `name` (with the suffix `.tmp`,
/// the next build removes them if this process is killed).
pub fn temp_prefix(name: &str) -> String {
    format!(".{name}.{}.", std::process::id())
}

/// A new temporary file in `dir` for the destination file `name`.
pub(crate) fn create(dir: &Path, name: &str) -> Result<NamedTempFile, PackageError> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(name))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(PackageError::io("creating a temporary file in", dir))
}

/// Writes `bytes` to `path` atomically, through a temporary file of this writer's own.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = create(dir, &name)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(PackageError::io("writing", tmp.path().to_path_buf()))?;
    tmp.persist(path)
        .map_err(|e| PackageError::io("writing", path)(e.error))?;
    Ok(())
}

/// Removes the temporary files and folders in `dir` left by processes that no longer run (this
/// layout's, which [`temp_prefix`] also names folders with, and the `<name>.tmp-<pid>` of
/// earlier versions).
pub(crate) fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner(&name)
            && !running(pid)
        {
            match entry.file_type().is_ok_and(|t| t.is_dir()) {
                true => std::fs::remove_dir_all(entry.path()),
                false => std::fs::remove_file(entry.path()),
            }
            .ok();
        }
    }
}

/// The process id in a temporary file's name, if it is one of ours.
fn owner(name: &str) -> Option<i32> {
    if let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        // `<dest>.<pid>.<random>`: the pid is the second field from the end.
        let mut fields = inner.rsplit('.');
        let _random = fields.next()?;
        return fields.next()?.parse().ok();
    }
    name.rsplit_once(".tmp-")?.1.parse().ok()
}

/// Whether process `pid` exists (signal 0 probes without sending anything).
fn running(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true, // it exists, owned by someone else
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_both_layouts() {
        assert_eq!(owner(".f.zip.123.aB9xQz.tmp"), Some(123));
        assert_eq!(owner(".build.json.77.Qq1234.tmp"), Some(77));
        assert_eq!(owner("f.zip.tmp-4242"), Some(4242));
        assert_eq!(owner("f.zip"), None);
        assert_eq!(owner(".env.tmp"), None);
    }

    #[test]
    fn only_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid i32::MAX (the kernel's limit is far below).
        let dead = dir.path().join(format!(".f.zip.{}.abcdef.tmp", i32::MAX));
        let old = dir.path().join(format!("f.zip.tmp-{}", i32::MAX));
        let live = dir
            .path()
            .join(format!(".f.zip.{}.abcdef.tmp", std::process::id()));
        let zip = dir.path().join("f.zip");
        for p in [&dead, &old, &live, &zip] {
            std::fs::write(p, b"x").unwrap();
        }
        let dead_dir = dir.path().join(format!(".azure.{}.abcdef.tmp", i32::MAX));
        std::fs::create_dir_all(dead_dir.join("f")).unwrap();
        std::fs::write(dead_dir.join("f/host.json"), b"{}").unwrap();
        remove_stale(dir.path());
        assert!(!dead.exists() && !old.exists() && !dead_dir.exists());
        assert!(live.exists() && zip.exists());
    }

    #[test]
    fn a_dropped_temporary_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = create(dir.path(), "f.zip").unwrap();
        let path = tmp.path().to_path_buf();
        assert!(path.exists());
        drop(tmp);
        assert!(!path.exists());
        write_atomically(&dir.path().join("build.json"), b"{}\n").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["build.json"]);
    }
}
