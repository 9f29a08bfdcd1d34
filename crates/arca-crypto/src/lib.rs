//! arca's secrets and the only place that touches cryptographic primitives.
//!
//! Everything here composes audited crates: BLAKE3 (keyed hashing and key
//! derivation) and ring's AES-256-GCM. Nothing here invents a primitive.

mod aead;
mod key;
mod recovery;

pub use aead::{NONCE_POSITION_MAX, ObjectKey, OpenError, SALT_LEN, Salt, TAG_LEN, open, seal};
pub use key::{BackupKey, IdKey, KEY_LEN, Purpose, SubKey};
pub use recovery::{RecoveryKey, RecoveryKeyError};

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// Only if the OS has no working random source, in which case no key arca
/// could make would be safe; refusing to run is the only correct answer.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// BLAKE3 of `data` (unkeyed). Used for content-addressed object names,
/// which are computed over ciphertext and so reveal nothing.
pub fn content_hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}
