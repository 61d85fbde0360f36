//! Message ids and receipts: how a message's row is named outside the store.
//!
//! A message id is 128 bits printed like a UUID: the high 64 bits are a random
//! nonce chosen when the store file was created, the low 64 bits the message's
//! row sequence number (SQLite `AUTOINCREMENT`, never reused). Ids are therefore
//! unique within a store forever and distinct across stores, with no extra
//! column or index. A receipt is an id plus the message's receive generation.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StoreError;

/// A message id, split back into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MessageId {
    /// The store's nonce.
    pub(crate) nonce: u64,
    /// The message's row sequence number.
    pub(crate) seq: i64,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sequence number is always positive (SQLite rowids start at 1).
        let v = (u128::from(self.nonce) << 64) | u128::from(self.seq as u64);
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl FromStr for MessageId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let dashes: Vec<usize> = s.match_indices('-').map(|(i, _)| i).collect();
        if s.len() != 36 || dashes != [8, 13, 18, 23] {
            return Err(());
        }
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        let v = u128::from_str_radix(&hex, 16).map_err(|_| ())?;
        let seq = i64::try_from(v as u64).map_err(|_| ())?;
        Ok(MessageId {
            nonce: (v >> 64) as u64,
            seq,
        })
    }
}

/// Proof of one particular receive of a message, needed to ack, retry or
/// extend it.
///
/// A receipt goes stale when the message is received again (by anyone): acking
/// with a stale receipt is ignored, so a slow consumer whose visibility timeout
/// ran out cannot delete a message that another consumer is now handling.
///
/// It crosses process and API boundaries as a string (`Display`/`FromStr`, and
/// serde as a string): `<message id>.<generation>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub(crate) id: MessageId,
    pub(crate) generation: u64,
}

impl Receipt {
    /// The id of the message this receipt is for.
    pub fn message_id(&self) -> String {
        self.id.to_string()
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.generation)
    }
}

impl FromStr for Receipt {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::BadReceipt {
            receipt: s.to_owned(),
        };
        let (id, generation) = s.split_once('.').ok_or_else(bad)?;
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Receipt {
            id: id.parse().map_err(|()| bad())?,
            generation: generation.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for Receipt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Receipt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A random 64-bit value for a new store's nonce.
///
/// std's `RandomState` is seeded from the operating system's random source;
/// mixing in the time and process id guards against a platform where it is not.
pub(crate) fn random_nonce() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_look_like_uuids() {
        let id = MessageId {
            nonce: 0x0123_4567_89ab_cdef,
            seq: 42,
        };
        let text = id.to_string();
        assert_eq!(text, "01234567-89ab-cdef-0000-00000000002a");
        assert_eq!(text.parse::<MessageId>(), Ok(id));
    }

    #[test]
    fn receipts_round_trip_through_strings_and_serde() {
        let receipt = Receipt {
            id: MessageId { nonce: 7, seq: 9 },
            generation: 3,
        };
        let text = receipt.to_string();
        assert_eq!(text.parse::<Receipt>().unwrap(), receipt);
        let json = serde_json::to_string(&receipt).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt);
    }

    #[test]
    fn malformed_receipts_are_errors() {
        for bad in [
            "",
            "x",
            "01234567-89ab-cdef-0000-00000000002a",
            "01234567-89ab-cdef-0000-00000000002a.",
            "01234567-89ab-cdef-0000-00000000002a.-1",
            "0123456789abcdef000000000000002a.1",
            "01234567-89ab-cdef-0000-80000000002z.1",
            "01234567-89ab-cdef-8000-00000000002a.1",
        ] {
            let err = bad.parse::<Receipt>().unwrap_err();
            assert!(matches!(err, StoreError::BadReceipt { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(random_nonce(), random_nonce());
    }
}
