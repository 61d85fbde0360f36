//! Byte-for-byte reproducible zips: entries sorted by path, every timestamp 1980-01-01 00:00,
//! modes 0644/0755, a fixed compression level, no absolute paths, no extra fields.

use std::io::Write;
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

/// Writes `entries` (sorted here) as a deterministic zip at `dest`, atomically; returns its
/// sizes and the hex SHA-256 of the zip.
pub(crate) fn write(entries: &mut [Entry], dest: &Path) -> Result<(Written, String), PackageError> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let tmp = dest.with_extension(format!("zip.tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(PackageError::io("creating", &tmp))?;
    let mut zip = ZipWriter::new(std::io::BufWriter::new(file));
    let mut unzipped = 0u64;
    for entry in entries.iter() {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::default())
            .unix_permissions(entry.mode)
            .large_file(false);
        zip.start_file(entry.path.as_str(), options)
            .map_err(|e| zip_error(&tmp, e))?;
        match &entry.data {
            Data::Bytes(b) => {
                zip.write_all(b)
                    .map_err(PackageError::io("writing", &tmp))?;
                unzipped += b.len() as u64;
            }
            Data::File(path) => {
                let mut f = std::fs::File::open(path).map_err(|e| PackageError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                unzipped +=
                    std::io::copy(&mut f, &mut zip).map_err(|e| PackageError::Unreadable {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
    }
    let writer = zip.finish().map_err(|e| zip_error(&tmp, e))?;
    writer
        .into_inner()
        .map_err(|e| PackageError::io("writing", &tmp)(e.into_error()))?
        .sync_all()
        .ok();
    let bytes = std::fs::read(&tmp).map_err(PackageError::io("reading", &tmp))?;
    let sha = crate::hash::hex(&Sha256::digest(&bytes));
    std::fs::rename(&tmp, dest).map_err(PackageError::io("moving into place", dest))?;
    Ok((
        Written {
            zipped: bytes.len() as u64,
            unzipped,
        },
        sha,
    ))
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> PackageError {
    PackageError::Io {
        action: "writing zip",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}
