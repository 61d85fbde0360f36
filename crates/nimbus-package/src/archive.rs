//! Byte-for-byte reproducible zips: entries sorted by path, every timestamp 1980-01-01 00:00,
//! modes 0644/0755, a fixed compression level, no absolute paths, no extra fields.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::PackageError;

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// A file on disk.
    File(PathBuf),
    /// Bytes in memory (shims, generated files).
    Bytes(std::sync::Arc<[u8]>),
}

/// One file in the package.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: String,
    pub mode: u32,
    pub data: Data,
}

/// What was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub zipped: u64,
    pub unzipped: u64,
}

/// Writes `entries` (sorted here) as a deterministic zip at `dest`, atomically: into a temporary
/// file of this writer's own, which `check` sees the sizes of before it is renamed into place, and
/// which is removed when anything fails (so a refused or broken package leaves nothing behind).
/// Returns the sizes and the hex SHA-256 of the zip.
pub(crate) fn write(
    entries: &mut [Entry],
    dest: &Path,
    check: impl FnOnce(&Written) -> Result<(), PackageError>,
) -> Result<(Written, String), PackageError> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = crate::temp::create(dir, &name)?;
    let tmp_path = tmp.path().to_path_buf();
    let mut zip = ZipWriter::new(std::io::BufWriter::new(
        tmp.reopen()
            .map_err(PackageError::io("opening", &tmp_path))?,
    ));
    let mut unzipped = 0u64;
    for entry in entries.iter() {
        let size = match &entry.data {
            Data::Bytes(b) => b.len() as u64,
            Data::File(path) => std::fs::metadata(path)
                .map_err(|e| PackageError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .len(),
        };
        zip.start_file(entry.path.as_str(), entry_options(entry.mode, size))
            .map_err(|e| zip_error(&tmp_path, e))?;
        match &entry.data {
            Data::Bytes(b) => {
                zip.write_all(b)
                    .map_err(PackageError::io("writing", &tmp_path))?;
                unzipped += b.len() as u64;
            }
            Data::File(path) => unzipped += copy(path, &mut zip, &tmp_path)?,
        }
    }
    let writer = zip.finish().map_err(|e| zip_error(&tmp_path, e))?;
    writer
        .into_inner()
        .map_err(|e| PackageError::io("writing", &tmp_path)(e.into_error()))?
        .sync_all()
        .ok();
    let bytes = std::fs::read(&tmp_path).map_err(PackageError::io("reading", &tmp_path))?;
    let written = Written {
        zipped: bytes.len() as u64,
        unzipped,
    };
    check(&written)?;
    let sha = crate::hash::hex(&Sha256::digest(&bytes));
    tmp.persist(dest)
        .map_err(|e| PackageError::io("moving into place", dest)(e.error))?;
    Ok((written, sha))
}

/// An entry's options: fixed time, level and modes; zip64 only for a file too large without it
/// (over 4 GiB), so the bytes of every other entry stay as they were.
fn entry_options(mode: u32, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
        .large_file(size >= u64::from(u32::MAX))
}

/// Copies the file at `path` into the zip, telling a failure to read it (the user's file) from a
/// failure to write the zip (the disk).
fn copy(path: &Path, zip: &mut impl Write, tmp: &Path) -> Result<u64, PackageError> {
    let unreadable = |e: std::io::Error| PackageError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        };
        zip.write_all(&buf[..n])
            .map_err(PackageError::io("writing", tmp))?;
        total += n as u64;
    }
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> PackageError {
    PackageError::Io {
        action: "writing zip",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_over_4_gib_use_zip64() {
        let write = |size: u64| {
            let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
            zip.start_file("a", entry_options(0o644, size)).unwrap();
            zip.finish().unwrap().into_inner()
        };
        // zip64 adds an extra field to the local header; small entries stay byte-identical.
        assert_eq!(write(10), write(u64::from(u32::MAX) - 1));
        assert!(write(u64::from(u32::MAX) + 1).len() > write(10).len());
    }

    #[test]
    fn a_refused_zip_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.zip");
        let mut entries = vec![Entry {
            path: "a.txt".into(),
            mode: 0o644,
            data: Data::Bytes(std::sync::Arc::from(&b"hello"[..])),
        }];
        let refused = write(&mut entries, &dest, |_| {
            Err(PackageError::HandlerExcluded { file: "x".into() })
        });
        assert!(refused.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write(&mut entries, &dest, |w| {
            assert_eq!(w.unzipped, 5);
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
