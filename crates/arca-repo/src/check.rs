//! Check: verify that a repository is whole. The structural check reads all
//! metadata and every tree, applying the rules restore applies (safe names,
//! chunks that add up to each file's size), so a repository that checks
//! clean restores whole; `read_data` also downloads every pack, checks it
//! against its name and opens and re-hashes every blob. Unlike other
//! operations, which skip an unreadable or stray object with a warning,
//! check reports every one as an error.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::id::{BlobId, ObjectName};
use crate::index::Index;
use crate::pack::{self, PackInfo};
use crate::repo::{Repository, name_from_path};
use crate::tree::NodeKind;

#[derive(Debug, Default, Clone)]
pub struct CheckOptions {
    pub read_data: bool,
}

/// What a check found. `errors` empty means the repository is whole.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    /// Setting objects (later values of config extensions).
    pub settings: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs: usize,
    pub trees: usize,
    pub packs_read: usize,
    pub errors: Vec<String>,
    /// Harmless findings, such as packs left by an interrupted backup.
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Repository {
    /// Checks the repository. Returns `Err` only if the check itself could
    /// not run (storage unreachable); damage is listed in the report.
    pub fn check(&self, opts: &CheckOptions) -> Result<CheckReport> {
        let _lock = self.read_lock()?;
        let mut report = CheckReport::default();
        // Snapshots, then index files, then packs: the reverse of the order
        // backups write them, so a backup running during the check cannot
        // make a new snapshot's blobs or a new index's packs look missing.
        let mut snapshots = Vec::new();
        for (path, _) in self.storage().list("snapshots")? {
            report.snapshots += 1;
            match self.read_snapshot(&path) {
                Ok(s) => snapshots.push(s),
                Err(e) => report.errors.push(e.to_string()),
            }
        }

        for (path, _) in self.storage().list("settings")? {
            report.settings += 1;
            if let Err(e) = self.read_setting(&path) {
                report.errors.push(e.to_string());
            }
        }

        let mut index = Index::default();
        let mut indexed: HashMap<ObjectName, PackInfo> = HashMap::new();
        for (path, _) in self.storage().list("index")? {
            report.index_files += 1;
            match self.read_index_file(&path) {
                Ok(packs) => {
                    for p in packs {
                        index.add_pack(&p);
                        indexed.insert(p.name, p);
                    }
                }
                Err(e) => {
                    index.add_unreadable(path);
                    report.errors.push(e.to_string());
                }
            }
        }
        report.blobs = index.blob_count();

        let mut stored: HashMap<ObjectName, (String, u64)> = HashMap::new();
        for (path, size) in self.storage().list("data")? {
            match name_from_path(&path) {
                Ok(name) => {
                    stored.insert(name, (path, size));
                }
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        report.packs = stored.len();
        for (name, info) in &indexed {
            match stored.get(name) {
                None => report.errors.push(format!(
                    "pack {} is listed in the index but missing from storage",
                    pack::pack_path(name)
                )),
                Some((path, size)) if *size != info.size => report.errors.push(format!(
                    "pack {path} has {size} bytes but the index says {} (truncated or damaged)",
                    info.size
                )),
                Some(_) => {}
            }
        }
        for (name, (path, _)) in &stored {
            if !indexed.contains_key(name) {
                report.notes.push(format!(
                    "pack {path} is not in any index (left by an interrupted backup; harmless)"
                ));
            }
        }

        // Every tree, with the rules restore applies: a snapshot that
        // checks clean restores whole.
        let mut trees_seen: HashSet<BlobId> = HashSet::new();
        for (name, snap) in &snapshots {
            let mut stack = vec![(snap.tree, String::new())];
            while let Some((id, dir)) = stack.pop() {
                if !trees_seen.insert(id) {
                    continue;
                }
                report.trees += 1;
                let tree = match self.load_tree(&index, &id) {
                    Ok(t) => t,
                    Err(e) => {
                        report
                            .errors
                            .push(format!("snapshot {}: {dir}/: {e}", name.short()));
                        continue;
                    }
                };
                for node in tree.nodes {
                    if let Err(reason) = node.check_name() {
                        report.errors.push(format!(
                            "snapshot {}: {dir}/: a tree is damaged: {reason}",
                            name.short()
                        ));
                        continue;
                    }
                    let shown = format!("{dir}/{}", String::from_utf8_lossy(&node.name));
                    match node.kind {
                        NodeKind::Dir { subtree } => stack.push((subtree, shown)),
                        NodeKind::File { size, content } => {
                            if let Err(reason) = index.locate_file(size, &content) {
                                report
                                    .errors
                                    .push(format!("snapshot {}: {shown}: {reason}", name.short()));
                            }
                        }
                        NodeKind::Symlink { .. } => {}
                    }
                }
            }
        }

        if opts.read_data {
            let mut names: Vec<_> = stored.keys().copied().collect();
            names.sort();
            for name in names {
                let (path, _) = &stored[&name];
                report.packs_read += 1;
                if let Err(e) = self.check_pack(&name, path, indexed.get(&name)) {
                    report.errors.push(e);
                }
            }
        }
        Ok(report)
    }

    /// Downloads one pack and verifies everything in it.
    fn check_pack(
        &self,
        name: &ObjectName,
        path: &str,
        indexed: Option<&PackInfo>,
    ) -> Result<(), String> {
        let bytes = self
            .storage()
            .get(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("pack {path} disappeared during the check"))?;
        if ObjectName::of(&bytes) != *name {
            return Err(format!(
                "pack {path} is damaged: its contents do not match its name (changed or truncated)"
            ));
        }
        let table = pack::read_table(path, |salt| self.pack_key(&salt.0), &bytes)
            .map_err(|e| e.to_string())?;
        if let Some(info) = indexed
            && info.blobs != table
        {
            return Err(format!(
                "pack {path}: its table of contents differs from the index"
            ));
        }
        let salt: [u8; arca_crypto::SALT_LEN] = bytes
            [crate::format::HEADER_LEN..crate::format::PREFIX_LEN]
            .try_into()
            .map_err(|_| format!("pack {path} is truncated"))?;
        let info = PackInfo {
            name: *name,
            salt,
            size: bytes.len() as u64,
            blobs: Vec::new(),
        };
        let key = self.pack_key(&salt);
        for entry in &table {
            let start = entry.offset as usize;
            let record = bytes
                .get(start..start + entry.length as usize)
                .ok_or_else(|| {
                    format!(
                        "pack {path}: blob {} lies outside the pack",
                        entry.id.short()
                    )
                })?;
            pack::open_blob(&info, &key, entry, record, |d| self.blob_id(entry.kind, d))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{PackWriter, pack_path};
    use crate::snapshot::Snapshot;
    use crate::storage::Storage;
    use crate::tree::{Node, Tree};
    use crate::{BlobType, Error, RestoreOptions};
    use arca_crypto::BackupKey;

    fn file(name: &[u8], size: u64, content: Vec<BlobId>) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::File { size, content },
            mode: 0o644,
            mtime: 1_600_000_000,
            mtime_nsec: 0,
            ctime: 1,
            ctime_nsec: 0,
            inode: 1,
            device: 1,
            uid: 0,
            gid: 0,
        }
    }

    /// Stores `nodes` as a snapshot's root tree, with `data` as data blobs,
    /// the way a buggy or hostile writer holding the key could.
    fn write_crafted(repo: &Repository, data: &[&[u8]], nodes: Vec<Node>) {
        let mut z = zstd::bulk::Compressor::new(crate::format::ZSTD_LEVEL).unwrap();
        let mut pack = PackWriter::new(&repo.keys.blob);
        for d in data {
            pack.add(&mut z, BlobType::Data, repo.data_id(d), d);
        }
        let tree = postcard::to_stdvec(&Tree { nodes }).unwrap();
        let tree_id = repo.tree_id(&tree);
        pack.add(&mut z, BlobType::Tree, tree_id, &tree);
        let (bytes, info) = pack.finish().unwrap();
        repo.storage()
            .put(&pack_path(&info.name), bytes, false)
            .unwrap();
        repo.write_index(&[info]).unwrap();
        repo.write_snapshot(&Snapshot {
            time: 1,
            time_nsec: 0,
            hostname: "h".into(),
            username: "u".into(),
            source: b"/src".to_vec(),
            tree: tree_id,
            parent: None,
            program_version: "test".into(),
            files: 3,
            dirs: 0,
            bytes: 0,
        })
        .unwrap();
    }

    #[test]
    fn check_rejects_what_restore_rejects() {
        let repo = Repository::init(Storage::memory(), &BackupKey::generate()).unwrap();
        let abc = repo.data_id(b"abc");
        write_crafted(
            &repo,
            &[b"abc"],
            vec![
                file(b"..", 3, vec![abc]),
                file(b"ok", 3, vec![abc]),
                file(b"short", 100, vec![abc]),
            ],
        );
        let report = repo.check(&CheckOptions { read_data: true }).unwrap();
        let errors = report.errors.join("\n");
        assert_eq!(report.errors.len(), 2, "{errors}");
        assert!(errors.contains("unsafe name \"..\""), "{errors}");
        assert!(
            errors.contains("/short: its chunks add up to 3 bytes, not its size of 100 bytes"),
            "{errors}"
        );

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let msg = match repo.restore("latest", &out, &RestoreOptions::default()) {
            Err(Error::Incomplete(msg)) => msg,
            other => panic!("{other:?}"),
        };
        assert!(msg.contains("\n  .: integrity failure: a tree"), "{msg}");
        assert!(msg.contains("\n  short: integrity failure"), "{msg}");
        assert_eq!(std::fs::read(out.join("ok")).unwrap(), b"abc");
        assert!(!dir.path().join("short").exists() && !out.join("short").exists());
    }
}
