//! Pack files: many encrypted blobs in one object, plus an encrypted table
//! of contents at the end so an index can be rebuilt from packs alone.
//!
//! `header || salt || blob records... || table record || trailer`
//!
//! Each blob record is `AES-256-GCM(K_pack, nonce = its offset,
//! aad = blob type || blob id, encoding || data)`; `K_pack` is derived from
//! the blob-encryption subkey and this pack's random salt. The trailer is
//! the table record's length, sealed too (at the reserved nonce position
//! 2^64-1, which no record can start at): a cleartext length would tell the
//! storage provider how many blobs each pack holds.

use arca_crypto::{NONCE_POSITION_MAX, ObjectKey, SALT_LEN, Salt, SubKey, TAG_LEN};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, HEADER_LEN, PREFIX_LEN};
use crate::id::{BlobId, BlobType, ObjectName};

/// A pack is closed once it reaches this size.
pub const TARGET_PACK_SIZE: usize = 16 * 1024 * 1024;
/// Associated data of a pack's table record.
const TABLE_AAD: &[u8] = b"arca pack table";
/// Associated data of a pack's trailer.
const TRAILER_AAD: &[u8] = b"arca pack trailer";
/// Nonce position of the trailer: records start below 4 GiB (offsets are
/// u32), so this position is never a record's.
const TRAILER_POSITION: u64 = NONCE_POSITION_MAX;
/// Bytes of the trailer: the sealed u32 table length and its tag.
pub const TRAILER_LEN: usize = 4 + TAG_LEN;

/// Where one blob sits in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub kind: BlobType,
    pub id: BlobId,
    /// Offset of the sealed record in the pack; also its nonce.
    pub offset: u32,
    /// Length of the sealed record (encoding byte, data, tag).
    pub length: u32,
    /// Length of the blob's plaintext data.
    pub raw_length: u32,
}

/// What an index knows about one pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackInfo {
    pub name: ObjectName,
    pub salt: [u8; SALT_LEN],
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

/// Storage path of a pack: `data/<first 2 hex digits>/<hex name>`.
pub fn pack_path(name: &ObjectName) -> String {
    let hex = name.to_hex();
    format!("data/{}/{}", &hex[..2], hex)
}

fn blob_aad(kind: BlobType, id: &BlobId) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[0] = kind as u8;
    aad[1..].copy_from_slice(&id.0);
    aad
}

/// A pack being filled by one worker.
pub struct PackWriter {
    key: ObjectKey,
    salt: Salt,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new(blob_key: &SubKey) -> Self {
        Self::with_salt(blob_key, Salt::random())
    }

    /// A pack with a given salt: for test vectors only, since a repeated
    /// salt would repeat a key.
    pub(crate) fn with_salt(blob_key: &SubKey, salt: Salt) -> Self {
        Self::build(blob_key, salt, None)
    }

    /// A new pack (fresh salt) that writes into `buf`, the buffer of a
    /// finished pack, if there is one.
    pub fn reusing(blob_key: &SubKey, buf: Option<Vec<u8>>) -> Self {
        Self::build(blob_key, Salt::random(), buf)
    }

    fn build(blob_key: &SubKey, salt: Salt, buf: Option<Vec<u8>>) -> Self {
        let mut buf = buf.unwrap_or_default();
        buf.clear();
        buf.reserve(TARGET_PACK_SIZE + 2 * 1024 * 1024);
        buf.extend_from_slice(&format::header());
        buf.extend_from_slice(&salt.0);
        Self {
            key: ObjectKey::new(blob_key, &salt),
            salt,
            buf,
            entries: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.buf.len() >= TARGET_PACK_SIZE
    }

    /// Bytes so far: header, salt and sealed records.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The blobs added so far, in order.
    pub fn entries(&self) -> &[PackEntry] {
        &self.entries
    }

    /// Moves one blob of `from` (another unfinished pack) into this pack, so
    /// that the partial packs left by several workers become one. The record
    /// is opened and sealed again under this pack's key at its new offset;
    /// the payload is not compressed again.
    pub fn move_blob(&mut self, from: &PackWriter, entry: &PackEntry) -> Result<()> {
        let start = entry.offset as usize;
        let mut record = from
            .buf
            .get(start..start + entry.length as usize)
            .ok_or_else(|| {
                Error::Invalid("internal error: a pack entry lies outside its pack".into())
            })?
            .to_vec();
        let aad = blob_aad(entry.kind, &entry.id);
        let payload = from
            .key
            .open_at(entry.offset as u64, &aad, &mut record)
            .map_err(|_| {
                Error::Invalid("internal error: a blob of an unfinished pack does not open".into())
            })?;
        let at = self.buf.len();
        self.buf.extend_from_slice(payload);
        self.key.seal_at(at as u64, &aad, &mut self.buf, at);
        self.entries.push(PackEntry {
            offset: at as u32,
            length: (self.buf.len() - at) as u32,
            ..*entry
        });
        Ok(())
    }

    /// Compresses (when it helps), encrypts and appends one blob.
    pub fn add(
        &mut self,
        compressor: &mut zstd::bulk::Compressor<'_>,
        kind: BlobType,
        id: BlobId,
        data: &[u8],
    ) {
        let start = self.buf.len();
        format::encode_payload(compressor, data, &mut self.buf);
        self.key
            .seal_at(start as u64, &blob_aad(kind, &id), &mut self.buf, start);
        self.entries.push(PackEntry {
            kind,
            id,
            offset: start as u32,
            length: (self.buf.len() - start) as u32,
            raw_length: data.len() as u32,
        });
    }

    /// Seals the table and returns the finished pack and what the index
    /// needs to know about it.
    pub fn finish(mut self) -> Result<(Bytes, PackInfo)> {
        let table = postcard::to_stdvec(&self.entries)
            .map_err(|e| Error::Invalid(format!("cannot serialize a pack table: {e}")))?;
        let start = self.buf.len();
        self.buf.extend_from_slice(&table);
        self.key
            .seal_at(start as u64, TABLE_AAD, &mut self.buf, start);
        let table_len = (self.buf.len() - start) as u32;
        let trailer_at = self.buf.len();
        self.buf.extend_from_slice(&table_len.to_le_bytes());
        self.key
            .seal_at(TRAILER_POSITION, TRAILER_AAD, &mut self.buf, trailer_at);
        let name = ObjectName::of(&self.buf);
        let info = PackInfo {
            name,
            salt: self.salt.0,
            size: self.buf.len() as u64,
            blobs: self.entries,
        };
        Ok((Bytes::from(self.buf), info))
    }
}

/// Opens one blob record read from a pack; verifies that the plaintext
/// hashes to the id it is filed under.
pub fn open_blob(
    pack: &PackInfo,
    key: &ObjectKey,
    entry: &PackEntry,
    record: &[u8],
    verify: impl FnOnce(&[u8]) -> BlobId,
) -> Result<Vec<u8>> {
    let object = pack_path(&pack.name);
    if record.len() != entry.length as usize {
        return Err(Error::damaged(&object, "truncated"));
    }
    let mut sealed = record.to_vec();
    let plain_len = key
        .open_at(
            entry.offset as u64,
            &blob_aad(entry.kind, &entry.id),
            &mut sealed,
        )
        .map_err(|_| {
            Error::damaged(
                &object,
                format!(
                    "blob {} at offset {} fails authentication",
                    entry.id.short(),
                    entry.offset
                ),
            )
        })?
        .len();
    sealed.truncate(plain_len);
    let data = format::decode_payload_owned(&object, sealed, entry.raw_length as usize)?;
    if data.len() != entry.raw_length as usize || verify(&data) != entry.id {
        return Err(Error::damaged(
            &object,
            format!("blob {} does not match its id", entry.id.short()),
        ));
    }
    Ok(data)
}

/// Reads the table of contents of a whole pack, checking its framing.
pub fn read_table(
    object: &str,
    key_of: impl FnOnce(&Salt) -> ObjectKey,
    pack: &[u8],
) -> Result<Vec<PackEntry>> {
    format::check_header(object, pack)?;
    if pack.len() < PREFIX_LEN + TAG_LEN + TRAILER_LEN {
        return Err(Error::damaged(object, "truncated"));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&pack[HEADER_LEN..PREFIX_LEN]);
    let key = key_of(&Salt(salt));
    let trailer_at = pack.len() - TRAILER_LEN;
    let mut trailer = pack[trailer_at..].to_vec();
    let len_bytes = key
        .open_at(TRAILER_POSITION, TRAILER_AAD, &mut trailer)
        .map_err(|_| Error::damaged(object, "its trailer fails authentication"))?;
    let table_len = <[u8; 4]>::try_from(&*len_bytes)
        .map(u32::from_le_bytes)
        .map_err(|_| Error::damaged(object, "its trailer has the wrong length"))?
        as usize;
    if table_len > trailer_at - PREFIX_LEN {
        return Err(Error::damaged(object, "table length out of range"));
    }
    let start = trailer_at - table_len;
    let mut record = pack[start..trailer_at].to_vec();
    let plain = key
        .open_at(start as u64, TABLE_AAD, &mut record)
        .map_err(|_| Error::damaged(object, "its table of contents fails authentication"))?;
    postcard::from_bytes(plain).map_err(|e| Error::damaged(object, format!("bad table: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_crypto::{BackupKey, Purpose};

    fn open_all(blob_key: &SubKey, bytes: &[u8], info: &PackInfo) -> Vec<Vec<u8>> {
        let table = read_table("p", |salt| ObjectKey::new(blob_key, salt), bytes).unwrap();
        assert_eq!(table, info.blobs);
        let key = ObjectKey::new(blob_key, &Salt(info.salt));
        table
            .iter()
            .map(|e| {
                let record = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                open_blob(info, &key, e, record, |_| e.id).unwrap()
            })
            .collect()
    }

    #[test]
    fn blobs_moved_between_unfinished_packs_still_open() {
        let blob_key = BackupKey::generate().derive(Purpose::BlobEncryption);
        let mut z = zstd::bulk::Compressor::new(format::ZSTD_LEVEL).unwrap();
        let mut a = PackWriter::new(&blob_key);
        let mut b = PackWriter::new(&blob_key);
        a.add(&mut z, BlobType::Data, BlobId([1; 32]), b"first blob");
        b.add(
            &mut z,
            BlobType::Tree,
            BlobId([2; 32]),
            &b"second ".repeat(1000),
        );
        b.add(&mut z, BlobType::Data, BlobId([3; 32]), b"third");
        for e in b.entries().to_vec() {
            a.move_blob(&b, &e).unwrap();
        }
        let (bytes, info) = a.finish().unwrap();
        assert_eq!(
            open_all(&blob_key, &bytes, &info),
            vec![
                b"first blob".to_vec(),
                b"second ".repeat(1000),
                b"third".to_vec()
            ]
        );
        assert_eq!(info.blobs[1].kind, BlobType::Tree);
    }

    #[test]
    fn the_table_length_is_not_in_the_clear() {
        let blob_key = BackupKey::generate().derive(Purpose::BlobEncryption);
        let mut z = zstd::bulk::Compressor::new(format::ZSTD_LEVEL).unwrap();
        let mut p = PackWriter::new(&blob_key);
        p.add(&mut z, BlobType::Data, BlobId([1; 32]), b"x");
        let (bytes, info) = p.finish().unwrap();
        let records_end = info
            .blobs
            .iter()
            .map(|e| e.offset + e.length)
            .max()
            .unwrap();
        let trailer_at = bytes.len() - TRAILER_LEN;
        let table_len = (trailer_at - records_end as usize) as u32;
        for at in [trailer_at, bytes.len() - 4] {
            assert_ne!(
                bytes[at..at + 4],
                table_len.to_le_bytes(),
                "no cleartext table length"
            );
        }
        let mut flipped = bytes.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let err = read_table("p", |salt| ObjectKey::new(&blob_key, salt), &flipped);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("trailer fails authentication"),
            "a changed trailer is detected"
        );

        let mut newer = bytes.to_vec();
        newer[4] = format::FORMAT_VERSION + 1;
        let err = read_table("p", |salt| ObjectKey::new(&blob_key, salt), &newer).unwrap_err();
        assert!(matches!(err, Error::NewerFormat { .. }), "{err}");
        assert!(err.to_string().contains("upgrade arca"), "{err}");
    }
}
