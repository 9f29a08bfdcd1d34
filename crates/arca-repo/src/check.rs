//! Check: verify that a repository is whole. The structural check reads all
//! metadata and every tree; `read_data` also downloads every pack, checks it
//! against its name and opens and re-hashes every blob.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::id::{BlobId, BlobType, ObjectName};
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
        let mut report = CheckReport::default();
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
                Err(e) => report.errors.push(e.to_string()),
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

        let mut trees_seen: HashSet<BlobId> = HashSet::new();
        for (path, _) in self.storage().list("snapshots")? {
            report.snapshots += 1;
            let (name, snap) = match self.read_snapshot(&path) {
                Ok(s) => s,
                Err(e) => {
                    report.errors.push(e.to_string());
                    continue;
                }
            };
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
                    let shown = format!("{dir}/{}", String::from_utf8_lossy(&node.name));
                    match node.kind {
                        NodeKind::Dir { subtree } => stack.push((subtree, shown)),
                        NodeKind::File { content, .. } => {
                            if let Some(missing) =
                                content.iter().find(|b| !index.contains(BlobType::Data, b))
                            {
                                report.errors.push(format!(
                                    "snapshot {}: {shown}: data blob {} is not in the index",
                                    name.short(),
                                    missing.short()
                                ));
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
