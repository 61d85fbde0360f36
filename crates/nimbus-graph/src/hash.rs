//! Content hashes: SHA-256 over a node's canonical JSON.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hex SHA-256 of `value`'s JSON (ordered maps make it canonical).
pub(crate) fn of<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).expect("graph nodes serialize");
    hex(&Sha256::digest(&bytes))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a list of hashes.
pub(crate) fn combine<'a>(hashes: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for h in hashes {
        hasher.update(h.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}
