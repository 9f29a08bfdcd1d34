//! Opening and creating repositories, and reading their objects.
//!
//! Reading is tolerant of single bad objects: an index file or snapshot
//! that cannot be read (damaged, a stray file such as `.DS_Store`, or a
//! newer format) is left out with a warning, so one bad object does not
//! block every backup and restore. Only an operation that needs what the
//! bad object holds fails, and it says why. `check` reports them as errors.
//!
//! Readers list objects in the reverse of the order backups write them
//! (snapshots, then index files, then packs; see docs/format.md §9), so a
//! backup running at the same time can only add objects the reader does
//! not need, never a snapshot whose blobs the reader's index lacks.

use std::sync::Mutex;

use arca_crypto::{BackupKey, IdKey, ObjectKey, Purpose, Salt, SubKey};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::chunker::{Chunker, ChunkerParams};
use crate::error::{Error, Result};
use crate::format::{self, FORMAT_VERSION, HEADER_LEN, MetaKind, OpenMetaError};
use crate::id::{BlobId, BlobType, ObjectName};
use crate::index::{Index, index_path};
use crate::pack::{self, PackInfo};
use crate::snapshot::{Snapshot, snapshot_path};
use crate::storage::Storage;
use crate::tree::Tree;

/// Name of the config object.
const CONFIG: &str = "config";
/// Bytes of the BLAKE3 checksum after the sealed config.
const CHECKSUM_LEN: usize = 32;

/// The repository's settings, stored encrypted in `config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Random id of this repository.
    pub id: [u8; 16],
    pub chunker: ChunkerParams,
    pub created: i64,
    /// Named, versioned additions (for example how the key is escrowed),
    /// so later features extend the config without a format change.
    pub extensions: Vec<(String, Vec<u8>)>,
}

impl Config {
    /// The value of the extension named `name`, if the config has one.
    pub fn extension(&self, name: &str) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The subkeys of one repository.
pub(crate) struct Keys {
    pub blob: SubKey,
    pub meta: SubKey,
    pub data_id: IdKey,
    pub tree_id: IdKey,
    pub gear: SubKey,
}

impl Keys {
    fn derive(key: &BackupKey) -> Self {
        Self {
            blob: key.derive(Purpose::BlobEncryption),
            meta: key.derive(Purpose::MetadataEncryption),
            data_id: IdKey::new(key.derive(Purpose::DataId)),
            tree_id: IdKey::new(key.derive(Purpose::TreeId)),
            gear: key.derive(Purpose::ChunkerGear),
        }
    }
}

/// An open repository.
pub struct Repository {
    storage: Storage,
    pub(crate) keys: Keys,
    config: Config,
    chunker: Chunker,
    /// Problems met while reading that did not stop the operation.
    warnings: Mutex<Vec<String>>,
}

/// Snapshots that could be read, oldest first, and those that could not.
pub(crate) struct SnapshotList {
    pub readable: Vec<(ObjectName, Snapshot)>,
    pub unreadable: Vec<(ObjectName, Error)>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.location())
    }
}

pub(crate) fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Repository {
    /// Creates a repository in empty storage.
    pub fn init(storage: Storage, key: &BackupKey) -> Result<Self> {
        Self::init_with(storage, key, ChunkerParams::default())
    }

    /// Creates a repository with explicit chunk sizes.
    pub fn init_with(storage: Storage, key: &BackupKey, chunker: ChunkerParams) -> Result<Self> {
        Self::create(storage, key, chunker, Vec::new())
    }

    /// Creates a repository whose config carries `extensions` (named,
    /// versioned values such as which vault escrows the key; docs/format.md
    /// §4). They are encrypted with the rest of the config and fixed for the
    /// repository's life. Names must be unique.
    pub fn init_with_extensions(
        storage: Storage,
        key: &BackupKey,
        extensions: Vec<(String, Vec<u8>)>,
    ) -> Result<Self> {
        Self::create(storage, key, ChunkerParams::default(), extensions)
    }

    fn create(
        storage: Storage,
        key: &BackupKey,
        chunker: ChunkerParams,
        extensions: Vec<(String, Vec<u8>)>,
    ) -> Result<Self> {
        chunker.validate().map_err(Error::Invalid)?;
        for (i, (name, _)) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::Invalid(format!(
                    "config extension {name:?} is given twice: give each name once"
                )));
            }
        }
        if !storage.list("")?.is_empty() {
            return Err(Error::AlreadyExists {
                location: storage.location().to_string(),
            });
        }
        let mut id = [0u8; 16];
        arca_crypto::fill_random(&mut id);
        let config = Config {
            id,
            chunker,
            created: now().0,
            extensions,
        };
        let keys = Keys::derive(key);
        let mut sealed = format::seal_meta(&keys.meta, MetaKind::Config, &config)?;
        let checksum = arca_crypto::content_hash(&sealed);
        sealed.extend_from_slice(&checksum);
        storage.put(CONFIG, Bytes::from(sealed), true)?;
        let chunker = Chunker::new(&keys.gear, config.chunker);
        Ok(Self {
            storage,
            keys,
            config,
            chunker,
            warnings: Mutex::new(Vec::new()),
        })
    }

    /// Opens an existing repository with its backup key.
    pub fn open(storage: Storage, key: &BackupKey) -> Result<Self> {
        let location = storage.location().to_string();
        let bytes = storage.get(CONFIG)?.ok_or_else(|| Error::NoRepository {
            location: location.clone(),
        })?;
        if bytes.len() < HEADER_LEN || bytes[..4] != format::MAGIC {
            return Err(Error::NotARepository { location });
        }
        if bytes[4] > FORMAT_VERSION {
            return Err(Error::NewerFormat {
                location: format!("repository {location}"),
                found: bytes[4],
                supported: FORMAT_VERSION,
            });
        }
        let damaged = |reason: &str| Error::damaged(format!("{location}/{CONFIG}"), reason);
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(damaged("truncated"));
        }
        let (sealed, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if arca_crypto::content_hash(sealed) != checksum {
            return Err(damaged(
                "its checksum does not match (changed or truncated)",
            ));
        }
        let keys = Keys::derive(key);
        let config: Config = format::open_meta(&keys.meta, MetaKind::Config, CONFIG, sealed)
            .map_err(|e| match e {
                OpenMetaError::Unauthentic => Error::WrongKey {
                    location: location.clone(),
                },
                OpenMetaError::Malformed(e) => e,
            })?;
        config.chunker.validate().map_err(|e| damaged(&e))?;
        let chunker = Chunker::new(&keys.gear, config.chunker);
        Ok(Self {
            storage,
            keys,
            config,
            chunker,
            warnings: Mutex::new(Vec::new()),
        })
    }

    /// Records a problem that did not stop the operation (each once).
    pub(crate) fn warn(&self, message: String) {
        let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if !w.contains(&message) {
            w.push(message);
        }
    }

    /// Problems met since the last call that did not stop an operation,
    /// such as objects left out because they cannot be read. Show them to
    /// the user: what they affect may be missing from a listing or restore.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    pub(crate) fn data_id(&self, data: &[u8]) -> BlobId {
        BlobId(self.keys.data_id.id(data))
    }

    pub(crate) fn tree_id(&self, data: &[u8]) -> BlobId {
        BlobId(self.keys.tree_id.id(data))
    }

    pub(crate) fn blob_id(&self, kind: BlobType, data: &[u8]) -> BlobId {
        match kind {
            BlobType::Data => self.data_id(data),
            BlobType::Tree => self.tree_id(data),
        }
    }

    pub(crate) fn pack_key(&self, salt: &[u8; arca_crypto::SALT_LEN]) -> ObjectKey {
        ObjectKey::new(&self.keys.blob, &Salt(*salt))
    }

    /// Reads every index file into one in-memory index. An index file that
    /// cannot be read is left out with a warning; a blob listed only there
    /// is then reported missing, with a pointer to that file.
    pub fn load_index(&self) -> Result<Index> {
        let mut index = Index::default();
        for (path, _) in self.storage.list("index")? {
            if name_from_path(&path).is_err() {
                self.warn(stray_object(&path));
                continue;
            }
            match self.read_index_file(&path) {
                Ok(packs) => {
                    for pack in packs {
                        index.add_pack(&pack);
                    }
                }
                Err(e) => {
                    self.warn(format!("left out an unreadable index file: {e}"));
                    index.add_unreadable(path);
                }
            }
        }
        Ok(index)
    }

    /// Reads and authenticates one index file.
    pub(crate) fn read_index_file(&self, path: &str) -> Result<Vec<PackInfo>> {
        Ok(self.read_named(path, MetaKind::Index)?.1)
    }

    /// Writes an index file listing `packs`; returns its stored size.
    pub(crate) fn write_index(&self, packs: &[PackInfo]) -> Result<u64> {
        Ok(self.write_named(MetaKind::Index, &packs, index_path)?.1)
    }

    pub(crate) fn write_snapshot(&self, snapshot: &Snapshot) -> Result<ObjectName> {
        Ok(self
            .write_named(MetaKind::Snapshot, snapshot, snapshot_path)?
            .0)
    }

    /// Reads one snapshot object.
    pub(crate) fn read_snapshot(&self, path: &str) -> Result<(ObjectName, Snapshot)> {
        self.read_named(path, MetaKind::Snapshot)
    }

    /// Reads a content-addressed metadata object (index file, snapshot,
    /// setting): its name must match its bytes and it must authenticate.
    pub(crate) fn read_named<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        kind: MetaKind,
    ) -> Result<(ObjectName, T)> {
        let name = name_from_path(path)?;
        let bytes = self
            .storage
            .get(path)?
            .ok_or_else(|| Error::damaged(path, "listed but missing"))?;
        let value = format::open_named_meta(&self.keys.meta, kind, path, &name, &bytes)?;
        Ok((name, value))
    }

    /// Seals `value` and stores it under its name at `path_of(name)`;
    /// returns the name and the stored size.
    pub(crate) fn write_named<T: Serialize>(
        &self,
        kind: MetaKind,
        value: &T,
        path_of: fn(&ObjectName) -> String,
    ) -> Result<(ObjectName, u64)> {
        let sealed = format::seal_meta(&self.keys.meta, kind, value)?;
        let name = ObjectName::of(&sealed);
        let size = sealed.len() as u64;
        self.storage
            .put(&path_of(&name), Bytes::from(sealed), false)?;
        Ok((name, size))
    }

    /// Every snapshot object, read or not; stray objects are skipped. Both
    /// come with a warning.
    pub(crate) fn list_snapshots(&self) -> Result<SnapshotList> {
        let mut list = SnapshotList {
            readable: Vec::new(),
            unreadable: Vec::new(),
        };
        for (path, _) in self.storage.list("snapshots")? {
            let Ok(name) = name_from_path(&path) else {
                self.warn(stray_object(&path));
                continue;
            };
            match self.read_snapshot(&path) {
                Ok(s) => list.readable.push(s),
                Err(e) => {
                    self.warn(format!("left out an unreadable snapshot: {e}"));
                    list.unreadable.push((name, e));
                }
            }
        }
        list.readable
            .sort_by_key(|(name, s)| (s.time, s.time_nsec, *name));
        Ok(list)
    }

    /// All snapshots that can be read, oldest first. Those that cannot are
    /// left out, with a warning (see [`Repository::take_warnings`]).
    pub fn snapshots(&self) -> Result<Vec<(ObjectName, Snapshot)>> {
        Ok(self.list_snapshots()?.readable)
    }

    /// `latest`, or a unique prefix of a snapshot's id. A snapshot that
    /// cannot be read fails this only when it is the one asked for.
    pub fn find_snapshot(&self, query: &str) -> Result<(ObjectName, Snapshot)> {
        let SnapshotList {
            mut readable,
            unreadable,
        } = self.list_snapshots()?;
        if query == "latest" {
            if let Some(found) = readable.pop() {
                return Ok(found);
            }
            // Only unreadable snapshots: say why rather than "no snapshots".
            return Err(unreadable
                .into_iter()
                .next()
                .map_or(Error::NoSnapshots, |(_, e)| e));
        }
        let q = query.to_ascii_lowercase();
        let not_found = || Error::SnapshotNotFound {
            query: query.into(),
        };
        if q.is_empty() {
            return Err(not_found());
        }
        let matches = |n: &ObjectName| n.to_hex().starts_with(&q);
        let mut good: Vec<_> = readable.into_iter().filter(|(n, _)| matches(n)).collect();
        let mut bad: Vec<_> = unreadable.into_iter().filter(|(n, _)| matches(n)).collect();
        match (good.len(), bad.len()) {
            (1, 0) => Ok(good.remove(0)),
            (0, 1) => Err(bad.remove(0).1),
            (0, 0) => Err(not_found()),
            _ => Err(Error::AmbiguousSnapshot {
                query: query.into(),
            }),
        }
    }

    /// Reads, decrypts and verifies one blob.
    pub fn read_blob(&self, index: &Index, kind: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let loc = index
            .get(id)
            .filter(|l| l.entry.kind == kind)
            .ok_or_else(|| {
                Error::damaged(
                    format!("{kind:?} blob {}", id.short()),
                    index.missing_reason(),
                )
            })?;
        let pack = index.pack(loc.pack);
        let path = pack::pack_path(&pack.name);
        let e = loc.entry;
        let range = e.offset as u64..e.offset as u64 + e.length as u64;
        let got = self.storage.get_ranges(&path, &[range])?;
        let info = PackInfo {
            name: pack.name,
            salt: pack.salt,
            size: pack.size,
            blobs: Vec::new(),
        };
        pack::open_blob(&info, &self.pack_key(&pack.salt), &e, &got[0], |d| {
            self.blob_id(kind, d)
        })
    }

    /// Reads one tree.
    pub fn load_tree(&self, index: &Index, id: &BlobId) -> Result<Tree> {
        let bytes = self.read_blob(index, BlobType::Tree, id)?;
        postcard::from_bytes(&bytes).map_err(|e| {
            Error::damaged(
                format!("tree {}", id.short()),
                format!("cannot decode: {e}"),
            )
        })
    }
}

/// The warning for an object whose name is not one arca writes.
fn stray_object(path: &str) -> String {
    format!(
        "ignored {path}: it is not an arca object (its name is not a 64-digit hex id); \
         remove it from the repository"
    )
}

/// The object name at the end of a storage path.
pub(crate) fn name_from_path(path: &str) -> Result<ObjectName> {
    path.rsplit('/')
        .next()
        .and_then(ObjectName::from_hex)
        .ok_or_else(|| Error::damaged(path, "its name is not a 64-digit hex id"))
}

impl Repository {
    /// Every entry of a snapshot (or of one path in it), depth first in name
    /// order, with `/`-separated paths relative to the snapshot root.
    pub fn list_files(&self, query: &str, sub: Option<&str>) -> Result<Vec<(String, crate::Node)>> {
        use crate::tree::NodeKind;
        // The snapshot before the index: see the module docs.
        let (_, snapshot) = self.find_snapshot(query)?;
        let index = self.load_index()?;
        let mut tree = self.load_tree(&index, &snapshot.tree)?;
        let mut out = Vec::new();
        let mut prefix = String::new();
        if let Some(sub) = sub.map(|s| s.trim_matches('/')).filter(|s| !s.is_empty()) {
            let not_found = || Error::PathNotInSnapshot { path: sub.into() };
            for part in sub.split('/').filter(|p| !p.is_empty()) {
                let node = tree.find(part.as_bytes()).cloned().ok_or_else(not_found)?;
                prefix = if prefix.is_empty() {
                    part.to_string()
                } else {
                    format!("{prefix}/{part}")
                };
                match &node.kind {
                    NodeKind::Dir { subtree } => tree = self.load_tree(&index, subtree)?,
                    _ => {
                        out.push((prefix, node));
                        return Ok(out);
                    }
                }
            }
        }
        self.walk_tree(&index, tree, &prefix, &mut out)?;
        Ok(out)
    }

    fn walk_tree(
        &self,
        index: &Index,
        tree: Tree,
        dir: &str,
        out: &mut Vec<(String, crate::Node)>,
    ) -> Result<()> {
        for node in tree.nodes {
            let name = String::from_utf8_lossy(&node.name);
            let path = if dir.is_empty() {
                name.into_owned()
            } else {
                format!("{dir}/{name}")
            };
            let subtree = match &node.kind {
                crate::tree::NodeKind::Dir { subtree } => Some(*subtree),
                _ => None,
            };
            out.push((path.clone(), node));
            if let Some(id) = subtree {
                self.walk_tree(index, self.load_tree(index, &id)?, &path, out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_with_chunk_sizes_fastcdc_cannot_use_is_damaged_not_a_panic() {
        let storage = Storage::memory();
        let key = BackupKey::generate();
        let keys = Keys::derive(&key);
        let config = Config {
            id: [7; 16],
            // Passed the old checks (max up to 64 MiB), but an average of
            // 2^25 indexes past the end of select_masks' 26-entry table.
            chunker: ChunkerParams {
                min_size: 1 << 20,
                avg_size: 1 << 25,
                max_size: 1 << 26,
            },
            created: 0,
            extensions: Vec::new(),
        };
        let mut sealed = format::seal_meta(&keys.meta, MetaKind::Config, &config).unwrap();
        let checksum = arca_crypto::content_hash(&sealed);
        sealed.extend_from_slice(&checksum);
        storage.put(CONFIG, Bytes::from(sealed), true).unwrap();
        let err = Repository::open(storage, &key).unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("invalid chunker sizes"), "{err}");
        assert!(matches!(
            Repository::init_with(Storage::memory(), &key, config.chunker),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn extensions_set_at_init_are_read_back_encrypted() {
        let storage = Storage::memory();
        let key = BackupKey::generate();
        let ext = vec![("x.test.v1".to_string(), b"vault-marker-7f3a".to_vec())];
        let repo = Repository::init_with_extensions(storage.clone(), &key, ext).unwrap();
        assert_eq!(
            repo.config().extension("x.test.v1"),
            Some(&b"vault-marker-7f3a"[..])
        );
        assert_eq!(repo.config().extension("other"), None);
        let stored = storage.get(CONFIG).unwrap().unwrap();
        assert!(!stored.windows(17).any(|w| w == b"vault-marker-7f3a"));
        let again = Repository::open(storage, &key).unwrap();
        assert_eq!(again.config(), repo.config());
        let twice = vec![("a".to_string(), vec![]), ("a".to_string(), vec![1])];
        assert!(matches!(
            Repository::init_with_extensions(Storage::memory(), &key, twice),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn an_object_of_a_newer_format_asks_for_an_upgrade() {
        let repo = Repository::init(Storage::memory(), &BackupKey::generate()).unwrap();
        let snap = Snapshot {
            time: 1,
            time_nsec: 0,
            hostname: "h".into(),
            username: "u".into(),
            source: b"/src".to_vec(),
            tree: BlobId([1; 32]),
            parent: None,
            program_version: "arca 9".into(),
            files: 0,
            dirs: 0,
            bytes: 0,
        };
        let sealed = format::seal_meta(&repo.keys.meta, MetaKind::Snapshot, &snap).unwrap();
        // As a newer arca would store it: version byte 2, named by its bytes.
        let mut newer = sealed.clone();
        newer[4] = FORMAT_VERSION + 1;
        let name = ObjectName::of(&newer);
        repo.storage()
            .put(&snapshot_path(&name), Bytes::from(newer), true)
            .unwrap();

        let err = repo.find_snapshot(&name.short()).unwrap_err();
        assert!(matches!(err, Error::NewerFormat { found: 2, .. }), "{err}");
        assert!(err.to_string().contains("upgrade arca"), "{err}");
        let err = repo.find_snapshot("latest").unwrap_err();
        assert!(err.to_string().contains("upgrade arca"), "{err}");
        assert!(repo.snapshots().unwrap().is_empty());
        let warnings = repo.take_warnings();
        assert!(
            warnings.iter().any(|w| w.contains("upgrade arca")),
            "{warnings:?}"
        );

        // A readable snapshot next to it is still found.
        let ok = repo.write_snapshot(&snap).unwrap();
        assert_eq!(repo.find_snapshot("latest").unwrap().0, ok);
    }
}
