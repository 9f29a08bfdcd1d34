//! AES-256-GCM for repository objects, with keys that are unique per object
//! and nonces that are unique per key by construction.
//!
//! Every encrypted object (pack, index, snapshot, config) carries a random
//! 32-byte [`Salt`]. Its key is `BLAKE3-keyed(master, salt)`, so two objects
//! never share a key (barring a 2^-128 salt collision). Within one object the
//! nonce is the byte position at which the ciphertext record starts, which
//! cannot repeat because records do not overlap. No counter state has to
//! survive a crash and no random 96-bit nonce can collide.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::key::SubKey;

/// Bytes of random salt in front of every encrypted object.
pub const SALT_LEN: usize = 32;
/// Bytes of authentication tag appended to every sealed record.
pub const TAG_LEN: usize = 16;
/// Largest record position usable as a nonce.
pub const NONCE_POSITION_MAX: u64 = u64::MAX;

/// The per-object random value that makes each object's key unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Salt(pub [u8; SALT_LEN]);

impl Salt {
    pub fn random() -> Self {
        let mut salt = [0u8; SALT_LEN];
        crate::fill_random(&mut salt);
        Self(salt)
    }
}

/// Authentication failed: wrong key, or the bytes were changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: wrong key or damaged data")]
pub struct OpenError;

/// The AES-256-GCM key of one object.
pub struct ObjectKey(LessSafeKey);

impl ObjectKey {
    /// The key of the object with `salt`, under the subkey `master`.
    pub fn new(master: &SubKey, salt: &Salt) -> Self {
        let mut derived = *blake3::keyed_hash(master.expose_secret(), &salt.0).as_bytes();
        let unbound = UnboundKey::new(&AES_256_GCM, &derived)
            .expect("AES-256-GCM takes exactly 32-byte keys");
        zeroize::Zeroize::zeroize(&mut derived);
        Self(LessSafeKey::new(unbound))
    }

    /// Encrypts `buf[start..]` in place and appends the tag. `start` is the
    /// record's position in its object and becomes the nonce: the caller must
    /// **never** seal two records at the same position under one key.
    pub fn seal_at(&self, position: u64, aad: &[u8], buf: &mut Vec<u8>, start: usize) {
        let tag: Tag = self
            .0
            .seal_in_place_separate_tag(nonce(position), Aad::from(aad), &mut buf[start..])
            .expect("AES-GCM seals any record shorter than 64 GiB");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Decrypts and authenticates a record sealed at `position`; returns the
    /// plaintext part of `record` (which is `ciphertext || tag`).
    pub fn open_at<'a>(
        &self,
        position: u64,
        aad: &[u8],
        record: &'a mut [u8],
    ) -> Result<&'a mut [u8], OpenError> {
        self.0
            .open_in_place(nonce(position), Aad::from(aad), record)
            .map(|plain| &mut plain[..])
            .map_err(|_| OpenError)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObjectKey(REDACTED)")
    }
}

/// Seals a standalone message: `salt (32) || AES-256-GCM(K(key, salt),
/// nonce 0, aad, plaintext) || tag`. A fresh random salt per message gives a
/// fresh key, so nonce 0 is never reused.
pub fn seal(key: &SubKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let salt = Salt::random();
    let mut out = Vec::with_capacity(SALT_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&salt.0);
    out.extend_from_slice(plaintext);
    ObjectKey::new(key, &salt).seal_at(0, aad, &mut out, SALT_LEN);
    out
}

/// Opens what [`seal`] sealed.
pub fn open(key: &SubKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < SALT_LEN + TAG_LEN {
        return Err(OpenError);
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&sealed[..SALT_LEN]);
    let mut record = sealed[SALT_LEN..].to_vec();
    let n = ObjectKey::new(key, &Salt(salt))
        .open_at(0, aad, &mut record)?
        .len();
    record.truncate(n);
    Ok(record)
}

fn nonce(position: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&position.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackupKey, Purpose};

    fn key() -> ObjectKey {
        let master = BackupKey::from_bytes([1; 32]).derive(Purpose::BlobEncryption);
        ObjectKey::new(&master, &Salt([2; SALT_LEN]))
    }

    #[test]
    fn standalone_seal_round_trip() {
        let k = SubKey::from_bytes([9; 32]);
        let sealed = seal(&k, b"ctx", b"secret");
        assert_eq!(open(&k, b"ctx", &sealed).unwrap(), b"secret");
        assert!(open(&k, b"other", &sealed).is_err());
        assert!(open(&SubKey::from_bytes([8; 32]), b"ctx", &sealed).is_err());
        assert!(open(&k, b"ctx", &sealed[..40]).is_err());
    }

    #[test]
    fn round_trip_and_every_flipped_bit_is_rejected() {
        let k = key();
        let mut buf = b"hdr".to_vec();
        buf.extend_from_slice(b"hello, world");
        k.seal_at(3, b"aad", &mut buf, 3);
        assert_eq!(buf.len(), 3 + 12 + TAG_LEN);
        let mut rec = buf[3..].to_vec();
        assert_eq!(k.open_at(3, b"aad", &mut rec).unwrap(), b"hello, world");
        for i in 0..(buf.len() - 3) * 8 {
            let mut rec = buf[3..].to_vec();
            rec[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open_at(3, b"aad", &mut rec), Err(OpenError));
        }
        let mut rec = buf[3..].to_vec();
        assert!(k.open_at(4, b"aad", &mut rec).is_err(), "wrong position");
        let mut rec = buf[3..].to_vec();
        assert!(k.open_at(3, b"aaD", &mut rec).is_err(), "wrong aad");
    }
}
