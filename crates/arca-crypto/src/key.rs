//! The backup key and the purpose-bound subkeys derived from it.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::recovery::RecoveryKey;

/// Length in bytes of the backup key and of every subkey.
pub const KEY_LEN: usize = 32;

/// The random 256-bit key that encrypts one repository.
///
/// It is the root of every key in the repository; the user holds it as a
/// [`RecoveryKey`] or escrows it in the vault. Zeroized on drop, printed as
/// `REDACTED`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BackupKey([u8; KEY_LEN]);

impl BackupKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        crate::fill_random(&mut key);
        Self(key)
    }

    /// Wraps raw key bytes (from a recovery key, a key store or the vault).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key. Callers must not log, print or store it unencrypted.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The 64-digit form a user writes down.
    pub fn to_recovery_key(&self) -> RecoveryKey {
        RecoveryKey::from_key(self)
    }

    /// The subkey for one purpose. Different purposes give independent keys.
    pub fn derive(&self, purpose: Purpose) -> SubKey {
        SubKey(blake3::derive_key(purpose.label(), &self.0))
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupKey(REDACTED)")
    }
}

impl PartialEq for BackupKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for BackupKey {}

/// What a subkey is for. Each purpose has a fixed, versioned BLAKE3
/// `derive_key` context string; changing one is a format change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypts data and tree blobs inside pack files.
    BlobEncryption,
    /// Encrypts index files, snapshots and the config.
    MetadataEncryption,
    /// Keys the BLAKE3 hash that names data chunks.
    DataId,
    /// Keys the BLAKE3 hash that names tree objects.
    TreeId,
    /// Seeds the FastCDC gear table, so chunk boundaries depend on the key.
    ChunkerGear,
}

impl Purpose {
    /// The BLAKE3 `derive_key` context string of this purpose.
    pub const fn label(self) -> &'static str {
        match self {
            Purpose::BlobEncryption => "arca repository v1 blob encryption",
            Purpose::MetadataEncryption => "arca repository v1 metadata encryption",
            Purpose::DataId => "arca repository v1 data blob id",
            Purpose::TreeId => "arca repository v1 tree blob id",
            Purpose::ChunkerGear => "arca repository v1 chunker gear table",
        }
    }
}

/// A 256-bit key derived from the [`BackupKey`] for one [`Purpose`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SubKey([u8; KEY_LEN]);

impl SubKey {
    /// A 256-bit key that comes from elsewhere: a vault master key unsealed
    /// from an HSM, an OPAQUE export or session key already hashed to 32
    /// bytes. The caller must have produced it with a CSPRNG or a KDF.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key for another purpose, derived with a fixed context string.
    pub fn derive(&self, context: &'static str) -> SubKey {
        SubKey(blake3::derive_key(context, &self.0))
    }

    /// A key derived from arbitrary-length key material (such as a 64-byte
    /// OPAQUE export key) under a fixed context string.
    pub fn derive_from(context: &'static str, material: &[u8]) -> SubKey {
        SubKey(blake3::derive_key(context, material))
    }

    /// Raw subkey bytes, for the primitives in this crate and test vectors.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Expands this key into `out.len()` pseudorandom bytes (BLAKE3 keyed XOF
    /// over the empty input).
    pub fn expand(&self, out: &mut [u8]) {
        blake3::Hasher::new_keyed(&self.0).finalize_xof().fill(out);
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(REDACTED)")
    }
}

/// A keyed BLAKE3 hash that names blobs: ids reveal nothing about content to
/// anyone without the key, yet equal content gets equal ids (deduplication).
#[derive(Clone)]
pub struct IdKey(SubKey);

impl IdKey {
    pub fn new(key: SubKey) -> Self {
        Self(key)
    }

    /// The id of `data`.
    pub fn id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.0.0, data).as_bytes()
    }
}

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdKey(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_material() {
        let key = BackupKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?} {:?}", key.derive(Purpose::DataId));
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn purposes_give_independent_keys() {
        let key = BackupKey::from_bytes([7; 32]);
        let all = [
            Purpose::BlobEncryption,
            Purpose::MetadataEncryption,
            Purpose::DataId,
            Purpose::TreeId,
            Purpose::ChunkerGear,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(
                    key.derive(*a).expose_secret(),
                    key.derive(*b).expose_secret()
                );
            }
        }
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(BackupKey::generate(), BackupKey::generate());
    }
}
