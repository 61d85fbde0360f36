//! SHA-256 helpers.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::PackageError;

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of a file's bytes.
pub(crate) fn file(path: &Path) -> Result<String, PackageError> {
    let mut f = std::fs::File::open(path).map_err(|e| PackageError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| PackageError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The hex SHA-256 of bytes.
pub(crate) fn bytes(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}
