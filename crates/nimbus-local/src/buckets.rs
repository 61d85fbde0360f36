//! Buckets as folders: `<state>/buckets/<bucket>/<key>`. Objects written through the resource
//! API and files dropped into the folder by hand are the same thing: a scanner compares each
//! bucket with its last snapshot and reports `created` (new or changed) and `deleted` objects,
//! so both raise the same events exactly once.
//!
//! Keys are checked before they touch the file system: no `..`, no absolute paths, no empty
//! segments, no backslashes or NUL bytes — nothing is ever read or written outside a bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A rejected object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key `{key}`: {reason}")]
pub struct BadKey {
    /// The key as given.
    pub key: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks an object key and returns its path segments.
pub fn check_key(key: &str) -> Result<Vec<&str>, BadKey> {
    let bad = |reason| {
        Err(BadKey {
            key: key.chars().take(200).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("it starts with `/`");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("it contains `\\` or a NUL byte");
    }
    let segments: Vec<&str> = key.split('/').collect();
    if segments.iter().any(|s| *s == ".." || *s == ".") {
        return bad("`.` and `..` segments are not allowed");
    }
    if segments.iter().any(|s| s.is_empty()) {
        return bad("it has an empty segment (`//` or a trailing `/`)");
    }
    if segments.iter().any(|s| s.starts_with(".nimbus-")) {
        return bad("segments starting with `.nimbus-` are reserved");
    }
    Ok(segments)
}

/// One bucket folder.
#[derive(Debug, Clone)]
pub struct Bucket {
    root: PathBuf,
    tmp: PathBuf,
}

/// An object change seen by the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    /// The object key.
    pub key: String,
    /// `created` or `deleted`.
    pub action: &'static str,
    /// Size in bytes (created objects).
    pub size: Option<u64>,
}

/// What the scanner remembers of an object: size and modification time.
pub type Snapshot = BTreeMap<String, (u64, i128)>;

impl Bucket {
    /// The bucket stored in `root` (created if missing); `tmp` is a folder on the same file
    /// system for atomic writes.
    pub fn open(root: PathBuf, tmp: PathBuf) -> std::io::Result<Bucket> {
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Bucket { root, tmp })
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BadKey> {
        let mut p = self.root.clone();
        for s in check_key(key)? {
            p.push(s);
        }
        Ok(p)
    }

    /// An object's bytes, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::IsADirectory =>
            {
                Ok(None)
            }
            Err(e) => Err(ObjectError::Io(e)),
        }
    }

    /// Writes an object atomically (the scanner never sees half a file).
    pub fn put(&self, key: &str, data: &[u8]) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = self
            .tmp
            .join(format!("put-{}-{}", std::process::id(), unique()));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// Deletes an object; deleting a missing one is not an error.
    pub fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ObjectError::Io(e)),
        }
        // Remove emptied folders up to the bucket root.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || std::fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    /// Keys starting with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        Ok(self
            .snapshot()?
            .into_keys()
            .filter(|k| k.starts_with(prefix))
            .collect())
    }

    /// The current objects with their sizes and modification times. Symlinks are not followed.
    pub fn snapshot(&self) -> std::io::Result<Snapshot> {
        let mut out = Snapshot::new();
        walk(&self.root, "", &mut out)?;
        Ok(out)
    }

    /// The changes between `before` and now; `before` becomes the current snapshot.
    pub fn scan(&self, before: &mut Snapshot) -> std::io::Result<Vec<ObjectEvent>> {
        let now = self.snapshot()?;
        let mut events = Vec::new();
        for (key, meta) in &now {
            if before.get(key) != Some(meta) {
                events.push(ObjectEvent {
                    key: key.clone(),
                    action: "created",
                    size: Some(meta.0),
                });
            }
        }
        for key in before.keys() {
            if !now.contains_key(key) {
                events.push(ObjectEvent {
                    key: key.clone(),
                    action: "deleted",
                    size: None,
                });
            }
        }
        *before = now;
        Ok(events)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Snapshot) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else if meta.is_file() && check_key(&key).is_ok() {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i128)
                .unwrap_or(0);
            out.insert(key, (meta.len(), mtime));
        }
    }
    Ok(())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The key is not acceptable.
    #[error(transparent)]
    BadKey(#[from] BadKey),
    /// The file system said no.
    #[error("object storage: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_bucket() {
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "a/../../b",
            "a//b",
            "a/",
            ".",
            "a\\b",
            "a\0b",
            "x/.nimbus-tmp",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "uploads/cat.jpg", "a b/c", "é/ü", "..a/b..", ".hidden"] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn api_writes_and_dropped_files_raise_one_event_each() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bucket::open(dir.path().join("images"), dir.path().join("tmp")).unwrap();
        let mut snap = b.snapshot().unwrap();
        b.put("uploads/a.png", b"png").unwrap();
        std::fs::write(dir.path().join("images/dropped.txt"), "hi").unwrap();
        let events = b.scan(&mut snap).unwrap();
        assert_eq!(
            events,
            vec![
                ObjectEvent {
                    key: "dropped.txt".into(),
                    action: "created",
                    size: Some(2)
                },
                ObjectEvent {
                    key: "uploads/a.png".into(),
                    action: "created",
                    size: Some(3)
                },
            ]
        );
        assert!(b.scan(&mut snap).unwrap().is_empty(), "nothing new");
        b.delete("uploads/a.png").unwrap();
        assert!(
            !dir.path().join("images/uploads").exists(),
            "empty folders are removed"
        );
        assert_eq!(
            b.scan(&mut snap).unwrap(),
            vec![ObjectEvent {
                key: "uploads/a.png".into(),
                action: "deleted",
                size: None
            }]
        );
        assert_eq!(b.get("dropped.txt").unwrap().as_deref(), Some(&b"hi"[..]));
        assert_eq!(b.get("missing").unwrap(), None);
        assert_eq!(b.list("").unwrap(), vec!["dropped.txt".to_string()]);
        assert!(matches!(
            b.put("../escape", b"x"),
            Err(ObjectError::BadKey(_))
        ));
        assert!(!dir.path().join("escape").exists());
    }
}
