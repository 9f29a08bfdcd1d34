//! Pack files: many encrypted blobs in one object, plus an encrypted table
//! of contents at the end so an index can be rebuilt from packs alone.
//!
//! `header || salt || blob records... || table record || table length (u32 LE)`
//!
//! Each blob record is `AES-256-GCM(K_pack, nonce = its offset,
//! aad = blob type || blob id, encoding || data)`; `K_pack` is derived from
//! the blob-encryption subkey and this pack's random salt.

use arca_crypto::{ObjectKey, SALT_LEN, Salt, SubKey, TAG_LEN};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, HEADER_LEN, PREFIX_LEN};
use crate::id::{BlobId, BlobType, ObjectName};

/// A pack is closed once it reaches this size.
pub const TARGET_PACK_SIZE: usize = 16 * 1024 * 1024;
/// Associated data of a pack's table record.
const TABLE_AAD: &[u8] = b"arca pack table";
/// Bytes of the trailing table length.
const TABLE_LEN_BYTES: usize = 4;

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
        let mut buf = Vec::with_capacity(TARGET_PACK_SIZE + 2 * 1024 * 1024);
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
        self.buf.extend_from_slice(&table_len.to_le_bytes());
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
    let plain = key
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
        })?;
    let data = format::decode_payload(&object, plain, entry.raw_length as usize)?;
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
    if pack.len() < PREFIX_LEN + TAG_LEN + TABLE_LEN_BYTES {
        return Err(Error::damaged(object, "truncated"));
    }
    let version = format::check_header(object, pack)?;
    if version != format::FORMAT_VERSION {
        return Err(Error::damaged(object, format!("format version {version}")));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&pack[HEADER_LEN..PREFIX_LEN]);
    let len_at = pack.len() - TABLE_LEN_BYTES;
    let table_len = u32::from_le_bytes(
        pack[len_at..]
            .try_into()
            .expect("slice of TABLE_LEN_BYTES bytes"),
    ) as usize;
    if table_len > len_at - PREFIX_LEN {
        return Err(Error::damaged(object, "table length out of range"));
    }
    let start = len_at - table_len;
    let mut record = pack[start..len_at].to_vec();
    let key = key_of(&Salt(salt));
    let plain = key
        .open_at(start as u64, TABLE_AAD, &mut record)
        .map_err(|_| Error::damaged(object, "its table of contents fails authentication"))?;
    postcard::from_bytes(plain).map_err(|e| Error::damaged(object, format!("bad table: {e}")))
}
