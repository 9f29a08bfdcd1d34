//! Byte-level building blocks shared by every object: the cleartext header,
//! payload encoding (zstd or raw) and sealed metadata objects.
//! `docs/format.md` is the specification; keep the two in step.

use arca_crypto::{ObjectKey, SALT_LEN, Salt, SubKey, TAG_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// First bytes of every stored object.
pub const MAGIC: [u8; 4] = *b"ARCA";
/// The repository format this code writes and the newest it reads.
pub const FORMAT_VERSION: u8 = 1;
/// `MAGIC || FORMAT_VERSION`: the only cleartext in any object.
pub const HEADER_LEN: usize = MAGIC.len() + 1;
/// Header and salt: where the first sealed record of an object starts.
pub const PREFIX_LEN: usize = HEADER_LEN + SALT_LEN;

/// Payload encoding byte: stored as is.
const ENCODING_RAW: u8 = 0;
/// Payload encoding byte: one zstd frame.
const ENCODING_ZSTD: u8 = 1;
/// zstd level for blobs and metadata.
pub const ZSTD_LEVEL: i32 = 3;
/// Payloads at least this large are sampled before compressing, so media
/// that zstd cannot shrink costs no compression time.
const SAMPLE_THRESHOLD: usize = 64 * 1024;
const SAMPLE_LEN: usize = 16 * 1024;

/// Metadata object kinds, bound into each object's associated data.
#[derive(Clone, Copy, Debug)]
pub enum MetaKind {
    Config = 1,
    Index = 2,
    Snapshot = 3,
    Setting = 4,
    Lock = 5,
}

pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = FORMAT_VERSION;
    h
}

/// Checks an object's header: the magic, and a version this code reads.
/// A newer version is not damage: it asks the user to upgrade.
pub fn check_header(object: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() < HEADER_LEN || bytes[..4] != MAGIC {
        return Err(Error::damaged(object, "no arca header"));
    }
    match bytes[4] {
        FORMAT_VERSION => Ok(()),
        v if v > FORMAT_VERSION => Err(Error::NewerFormat {
            location: format!("repository object {object}"),
            found: v,
            supported: FORMAT_VERSION,
        }),
        v => Err(Error::damaged(
            object,
            format!("unknown format version {v}"),
        )),
    }
}

/// Appends `encoding || data` to `out`, compressing with `compressor` when
/// that saves space.
pub fn encode_payload(compressor: &mut zstd::bulk::Compressor<'_>, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    if worth_compressing(compressor, data) {
        out.push(ENCODING_ZSTD);
        out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        // Compress straight into `out` after the encoding byte: no copy.
        let mut cursor = std::io::Cursor::new(&mut *out);
        cursor.set_position(start as u64 + 1);
        if let Ok(n) = compressor.compress_to_buffer(data, &mut cursor)
            && n + data.len() / 64 < data.len()
        {
            return;
        }
        out.truncate(start);
    }
    out.push(ENCODING_RAW);
    out.extend_from_slice(data);
}

fn worth_compressing(compressor: &mut zstd::bulk::Compressor<'_>, data: &[u8]) -> bool {
    if data.len() < SAMPLE_THRESHOLD {
        return true;
    }
    let mid = data.len() / 2 - SAMPLE_LEN / 2;
    let sample = &data[mid..mid + SAMPLE_LEN];
    match compressor.compress(sample) {
        Ok(c) => c.len() < SAMPLE_LEN * 31 / 32,
        Err(_) => true,
    }
}

/// Reverses [`encode_payload`]. `max_len` bounds the decoded size.
pub fn decode_payload(object: &str, payload: &[u8], max_len: usize) -> Result<Vec<u8>> {
    match payload.split_first() {
        Some((&ENCODING_RAW, data)) => Ok(data.to_vec()),
        Some((&ENCODING_ZSTD, data)) => zstd::bulk::decompress(data, max_len)
            .map_err(|e| Error::damaged(object, format!("cannot decompress: {e}"))),
        _ => Err(Error::damaged(object, "unknown payload encoding")),
    }
}

/// [`decode_payload`] of a plaintext the caller owns: raw payloads are
/// returned in the same buffer (shifted by the encoding byte) instead of
/// being copied into a new one. Restore opens every blob through here.
pub fn decode_payload_owned(object: &str, mut plain: Vec<u8>, max_len: usize) -> Result<Vec<u8>> {
    if plain.first() == Some(&ENCODING_RAW) {
        plain.drain(..1);
        return Ok(plain);
    }
    decode_payload(object, &plain, max_len)
}

/// Largest decoded metadata object accepted (index files, snapshots, config).
const MAX_META_LEN: usize = 1 << 30;

fn meta_aad(kind: MetaKind) -> [u8; HEADER_LEN + 1] {
    let mut aad = [0u8; HEADER_LEN + 1];
    aad[..HEADER_LEN].copy_from_slice(&header());
    aad[HEADER_LEN] = kind as u8;
    aad
}

/// `header || salt || AEAD(K(meta, salt), nonce = PREFIX_LEN, aad = header || kind, encode(postcard(value)))`.
pub fn seal_meta<T: Serialize>(meta_key: &SubKey, kind: MetaKind, value: &T) -> Result<Vec<u8>> {
    seal_meta_with_salt(meta_key, kind, value, Salt::random())
}

/// [`seal_meta`] with a given salt: for test vectors only, since a repeated
/// salt would repeat a key.
pub(crate) fn seal_meta_with_salt<T: Serialize>(
    meta_key: &SubKey,
    kind: MetaKind,
    value: &T,
    salt: Salt,
) -> Result<Vec<u8>> {
    let plain = postcard::to_stdvec(value)
        .map_err(|e| Error::Invalid(format!("cannot serialize {kind:?}: {e}")))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + plain.len() + TAG_LEN + 1);
    out.extend_from_slice(&header());
    out.extend_from_slice(&salt.0);
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
    encode_payload(&mut compressor, &plain, &mut out);
    ObjectKey::new(meta_key, &salt).seal_at(
        PREFIX_LEN as u64,
        &meta_aad(kind),
        &mut out,
        PREFIX_LEN,
    );
    Ok(out)
}

/// Why a sealed metadata object could not be opened.
pub enum OpenMetaError {
    /// Header, version or layout is wrong: the bytes are not what we wrote.
    Malformed(Error),
    /// The AEAD tag did not verify: wrong key or changed bytes.
    Unauthentic,
}

/// Opens what [`seal_meta`] sealed.
pub fn open_meta<T: DeserializeOwned>(
    meta_key: &SubKey,
    kind: MetaKind,
    object: &str,
    bytes: &[u8],
) -> std::result::Result<T, OpenMetaError> {
    check_header(object, bytes).map_err(OpenMetaError::Malformed)?;
    if bytes.len() < PREFIX_LEN + TAG_LEN + 1 {
        return Err(OpenMetaError::Malformed(Error::damaged(
            object,
            "truncated",
        )));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&bytes[HEADER_LEN..PREFIX_LEN]);
    let mut record = bytes[PREFIX_LEN..].to_vec();
    let plain = ObjectKey::new(meta_key, &Salt(salt))
        .open_at(PREFIX_LEN as u64, &meta_aad(kind), &mut record)
        .map_err(|_| OpenMetaError::Unauthentic)?;
    let decoded = decode_payload(object, plain, MAX_META_LEN).map_err(OpenMetaError::Malformed)?;
    postcard::from_bytes(&decoded).map_err(|e| {
        OpenMetaError::Malformed(Error::damaged(
            object,
            format!("cannot decode {kind:?}: {e}"),
        ))
    })
}

/// Opens a content-addressed metadata object: its name must match its bytes,
/// and it must authenticate (a failure there after the name matched means
/// the object was written under another key).
pub fn open_named_meta<T: DeserializeOwned>(
    meta_key: &SubKey,
    kind: MetaKind,
    object: &str,
    name: &crate::ObjectName,
    bytes: &[u8],
) -> Result<T> {
    if crate::ObjectName::of(bytes) != *name {
        return Err(Error::damaged(
            object,
            "its contents do not match its name (changed or truncated)",
        ));
    }
    open_meta(meta_key, kind, object, bytes).map_err(|e| match e {
        OpenMetaError::Malformed(e) => e,
        OpenMetaError::Unauthentic => Error::damaged(
            object,
            "it does not authenticate under this repository's key",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_raw_and_compressed() {
        let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap();
        let text = b"hello hello hello hello hello hello hello hello".repeat(100);
        let mut out = Vec::new();
        encode_payload(&mut c, &text, &mut out);
        assert_eq!(out[0], ENCODING_ZSTD);
        assert!(out.len() < text.len() / 10);
        assert_eq!(decode_payload("t", &out, text.len()).unwrap(), text);

        let mut noise = vec![0u8; 200_000];
        arca_crypto::fill_random(&mut noise);
        let mut out = Vec::new();
        encode_payload(&mut c, &noise, &mut out);
        assert_eq!(out[0], ENCODING_RAW, "random data is stored raw");
        assert_eq!(decode_payload("t", &out, noise.len()).unwrap(), noise);
    }
}
