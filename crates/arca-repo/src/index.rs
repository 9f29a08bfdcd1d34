//! The index: which pack holds which blob. Stored as encrypted index files
//! (`index/<name>`), each listing some packs and all their blobs; loaded
//! into memory as one map.

use std::collections::HashMap;

use arca_crypto::SALT_LEN;

use crate::id::{BlobId, BlobType, ObjectName};
use crate::pack::{PackEntry, PackInfo};

/// One pack as the in-memory index knows it.
#[derive(Clone, Debug)]
pub struct PackMeta {
    pub name: ObjectName,
    pub salt: [u8; SALT_LEN],
    pub size: u64,
}

/// Where one blob is: which pack (position in [`Index::packs`]) and where in it.
#[derive(Clone, Copy, Debug)]
pub struct BlobLocation {
    pub pack: u32,
    pub entry: PackEntry,
}

/// All blobs of a repository, in memory.
#[derive(Default, Debug)]
pub struct Index {
    packs: Vec<PackMeta>,
    pack_numbers: HashMap<ObjectName, u32>,
    blobs: HashMap<BlobId, BlobLocation>,
    /// Index files that could not be read and were left out: a blob missing
    /// from the index may be listed in one of them.
    unreadable: Vec<String>,
}

/// Storage path of an index file.
pub fn index_path(name: &ObjectName) -> String {
    format!("index/{}", name.to_hex())
}

impl Index {
    /// Adds one pack's blobs. A blob stored in two packs (two devices backing
    /// up the same data at once) keeps its first location; both are valid.
    pub fn add_pack(&mut self, info: &PackInfo) {
        let number = match self.pack_numbers.get(&info.name) {
            Some(n) => *n,
            None => {
                let n = self.packs.len() as u32;
                self.packs.push(PackMeta {
                    name: info.name,
                    salt: info.salt,
                    size: info.size,
                });
                self.pack_numbers.insert(info.name, n);
                n
            }
        };
        for entry in &info.blobs {
            self.blobs.entry(entry.id).or_insert(BlobLocation {
                pack: number,
                entry: *entry,
            });
        }
    }

    /// Records an index file that was left out because it could not be read.
    pub(crate) fn add_unreadable(&mut self, path: String) {
        self.unreadable.push(path);
    }

    /// Why a needed blob is missing: not in the index, and, if some index
    /// files could not be read, that it may be listed in one of them.
    pub(crate) fn missing_reason(&self) -> String {
        match self.unreadable.as_slice() {
            [] => "not in the index".into(),
            [one] => format!("not in the index (it may be listed in {one}, which cannot be read)"),
            [first, ..] => format!(
                "not in the index (it may be listed in one of {} index files that cannot be \
                 read, such as {first})",
                self.unreadable.len()
            ),
        }
    }

    /// Where each chunk of a file of `size` bytes is. Fails, naming the
    /// problem, if a chunk is not a stored data blob or the chunks do not
    /// add up to the size. Restore and check share this rule.
    pub(crate) fn locate_file(
        &self,
        size: u64,
        content: &[BlobId],
    ) -> Result<Vec<BlobLocation>, String> {
        let mut total = 0u64;
        let mut out = Vec::with_capacity(content.len());
        for id in content {
            let loc = self
                .get(id)
                .filter(|l| l.entry.kind == BlobType::Data)
                .ok_or_else(|| format!("data blob {} is {}", id.short(), self.missing_reason()))?;
            total += loc.entry.raw_length as u64;
            out.push(*loc);
        }
        if total != size {
            return Err(format!(
                "its chunks add up to {total} bytes, not its size of {size} bytes"
            ));
        }
        Ok(out)
    }

    pub fn get(&self, id: &BlobId) -> Option<&BlobLocation> {
        self.blobs.get(id)
    }

    /// Whether a blob of this type and id is stored.
    pub fn contains(&self, kind: BlobType, id: &BlobId) -> bool {
        self.blobs.get(id).is_some_and(|l| l.entry.kind == kind)
    }

    pub fn pack(&self, number: u32) -> &PackMeta {
        &self.packs[number as usize]
    }

    pub fn packs(&self) -> &[PackMeta] {
        &self.packs
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Every blob id, for seeding deduplication.
    pub fn ids(&self) -> impl Iterator<Item = &BlobId> {
        self.blobs.keys()
    }
}
