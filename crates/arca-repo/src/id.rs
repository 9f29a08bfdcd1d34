//! Names of blobs and objects.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a blob holds. Part of every blob's associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BlobType {
    /// A content-defined chunk of a file.
    Data = 0,
    /// A serialized [`crate::Tree`].
    Tree = 1,
}

/// A blob's id: keyed BLAKE3 of its plaintext. Reveals nothing without the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

/// An object's storage name: BLAKE3 of its stored bytes, so anyone can check
/// an object against its name and the name says nothing about the plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectName(pub [u8; 32]);

macro_rules! hex_id {
    ($t:ty) => {
        impl $t {
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The 8-digit prefix shown to users.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).ok()?;
                Some(Self(out))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.short())
            }
        }
    };
}
hex_id!(BlobId);
hex_id!(ObjectName);

impl ObjectName {
    pub fn of(stored: &[u8]) -> Self {
        Self(arca_crypto::content_hash(stored))
    }
}
