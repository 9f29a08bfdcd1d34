//! Restore: plan the whole snapshot first (no disk writes until every tree
//! has been read and every blob located), then fetch each pack once with the
//! needed ranges coalesced, verify every blob against its id, and write it
//! at its offsets. Files that cannot be completed are removed: a restore
//! never leaves wrong bytes on disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use filetime::FileTime;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobType};
use crate::index::Index;
use crate::pack::{self, PackEntry, PackInfo};
use crate::repo::Repository;
use crate::tree::{Node, NodeKind, Tree};

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_done: AtomicU64,
}

#[derive(Debug, Default, Clone)]
pub struct RestoreOptions {
    /// Restore only this path of the snapshot (relative, `/`-separated).
    pub include: Option<String>,
    /// Download/decrypt threads; 0 picks a default.
    pub workers: usize,
    pub progress: Option<Arc<RestoreProgress>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreSummary {
    pub snapshot: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub duration_secs: f64,
}

struct FilePlan {
    path: PathBuf,
    mode: u32,
    mtime: FileTime,
    remaining: AtomicUsize,
    failed: AtomicBool,
}

/// Where one blob's plaintext goes: (file number, offset in the file).
type Targets = Vec<(usize, u64)>;

struct PackWork {
    pack: u32,
    blobs: Vec<(PackEntry, Targets)>,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<(PathBuf, u32, FileTime)>,
    files: Vec<FilePlan>,
    sizes: Vec<u64>,
    symlinks: Vec<(PathBuf, Vec<u8>, FileTime)>,
    by_pack: HashMap<u32, HashMap<BlobId, (PackEntry, Targets)>>,
}

fn mtime(node: &Node) -> FileTime {
    FileTime::from_unix_time(node.mtime, node.mtime_nsec)
}

fn name_path(name: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(name))
}

impl Plan {
    fn add_node(
        &mut self,
        repo: &Repository,
        index: &Index,
        node: &Node,
        path: PathBuf,
    ) -> Result<()> {
        if node.name.is_empty()
            || node.name.contains(&b'/')
            || node.name == b"."
            || node.name == b".."
        {
            return Err(Error::damaged(
                "a tree",
                "it has an entry with an unsafe name",
            ));
        }
        match &node.kind {
            NodeKind::Dir { subtree } => {
                let tree = repo.load_tree(index, subtree)?;
                self.add_tree(repo, index, &tree, &path)?;
                self.dirs.push((path, node.mode, mtime(node)));
            }
            NodeKind::File { size, content } => {
                let number = self.files.len();
                let mut offset = 0u64;
                for id in content {
                    let loc = index
                        .get(id)
                        .filter(|l| l.entry.kind == BlobType::Data)
                        .ok_or_else(|| {
                            Error::damaged(
                                format!("data blob {}", id.short()),
                                format!("needed by {} but not in the index", path.display()),
                            )
                        })?;
                    self.by_pack
                        .entry(loc.pack)
                        .or_default()
                        .entry(*id)
                        .or_insert_with(|| (loc.entry, Vec::new()))
                        .1
                        .push((number, offset));
                    offset += loc.entry.raw_length as u64;
                }
                if offset != *size {
                    return Err(Error::damaged(
                        "a tree",
                        format!("{}: its chunks do not add up to its size", path.display()),
                    ));
                }
                self.files.push(FilePlan {
                    path,
                    mode: node.mode,
                    mtime: mtime(node),
                    remaining: AtomicUsize::new(content.len()),
                    failed: AtomicBool::new(false),
                });
                self.sizes.push(*size);
            }
            NodeKind::Symlink { target } => self.symlinks.push((path, target.clone(), mtime(node))),
        }
        Ok(())
    }

    fn add_tree(
        &mut self,
        repo: &Repository,
        index: &Index,
        tree: &Tree,
        dir: &Path,
    ) -> Result<()> {
        for node in &tree.nodes {
            self.add_node(repo, index, node, dir.join(name_path(&node.name)))?;
        }
        Ok(())
    }
}

impl Repository {
    /// Restores snapshot `query` (`latest` or an id prefix) into `target`.
    pub fn restore(
        &self,
        query: &str,
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreSummary> {
        let started = Instant::now();
        let index = self.load_index()?;
        let (name, snapshot) = self.find_snapshot(query)?;
        let root = self.load_tree(&index, &snapshot.tree)?;

        let mut plan = Plan::default();
        match opts
            .include
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            None => plan.add_tree(self, &index, &root, target)?,
            Some(include) => {
                let mut tree = root;
                let mut path = target.to_path_buf();
                let parts: Vec<&str> = include.split('/').filter(|p| !p.is_empty()).collect();
                for (i, part) in parts.iter().enumerate() {
                    let node = tree.find(part.as_bytes()).cloned().ok_or_else(|| {
                        Error::PathNotInSnapshot {
                            path: include.into(),
                        }
                    })?;
                    path.push(part);
                    if i + 1 == parts.len() {
                        if let Some(parent) = path.parent() {
                            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                        }
                        plan.add_node(self, &index, &node, path.clone())?;
                    } else if let NodeKind::Dir { subtree } = &node.kind {
                        tree = self.load_tree(&index, subtree)?;
                    } else {
                        return Err(Error::PathNotInSnapshot {
                            path: include.into(),
                        });
                    }
                }
            }
        }

        fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
        // Directories first (parents before children), owner-writable until
        // their real modes are applied at the end.
        for (dir, _, _) in plan.dirs.iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(Error::io(dir, e)),
            }
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let bytes_total: u64 = plan.sizes.iter().sum();
        if let Some(p) = &opts.progress {
            p.bytes_total.store(bytes_total, Ordering::Relaxed);
        }
        for (file, size) in plan.files.iter().zip(&plan.sizes) {
            if file.path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
                return Err(Error::Invalid(format!(
                    "{} exists and is not a regular file: restore into an empty folder",
                    file.path.display()
                )));
            }
            let f = File::create(&file.path).map_err(|e| Error::io(&file.path, e))?;
            f.set_len(*size).map_err(|e| Error::io(&file.path, e))?;
        }

        let work: Vec<PackWork> = {
            let mut v: Vec<PackWork> = std::mem::take(&mut plan.by_pack)
                .into_iter()
                .map(|(pack, blobs)| {
                    let mut blobs: Vec<_> = blobs.into_values().collect();
                    blobs.sort_by_key(|(e, _)| e.offset);
                    PackWork { pack, blobs }
                })
                .collect();
            v.sort_by_key(|w| w.pack);
            v
        };
        let next = AtomicUsize::new(0);
        let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let workers = if opts.workers == 0 { 4 } else { opts.workers };
        std::thread::scope(|scope| {
            for _ in 0..workers.min(work.len().max(1)) {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(w) = work.get(i) else { break };
                        if let Err(e) = self.restore_pack(&index, w, &plan, &errors, opts) {
                            if matches!(e, Error::NoSpace { .. } | Error::Io { .. }) {
                                stop.store(true, Ordering::Relaxed);
                                fatal
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .get_or_insert(e);
                            } else {
                                errors
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(e.to_string());
                            }
                        }
                    }
                });
            }
        });
        let fatal = fatal.into_inner().unwrap_or_else(|p| p.into_inner());
        let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());

        // Remove every file that is not complete and verified.
        let mut removed = 0usize;
        for f in &plan.files {
            if f.failed.load(Ordering::Relaxed) || f.remaining.load(Ordering::Relaxed) != 0 {
                let _ = fs::remove_file(&f.path);
                removed += 1;
            } else {
                set_file_meta(f)?;
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        if !errors.is_empty() || removed > 0 {
            let mut msg = format!(
                "restore incomplete: {removed} file(s) could not be restored and were not written; \
                 the repository is damaged: "
            );
            msg.push_str(
                &errors
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            return Err(Error::Invalid(msg));
        }

        for (path, target, mt) in &plan.symlinks {
            if path.symlink_metadata().is_ok() {
                fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            }
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path)
                .map_err(|e| Error::io(path, e))?;
            filetime::set_symlink_file_times(path, *mt, *mt).map_err(|e| Error::io(path, e))?;
        }
        // Deepest directories were pushed first: their mtimes are set before
        // anything else touches their parents.
        for (dir, mode, mt) in &plan.dirs {
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                .map_err(|e| Error::io(dir, e))?;
            filetime::set_file_mtime(dir, *mt).map_err(|e| Error::io(dir, e))?;
        }
        Ok(RestoreSummary {
            snapshot: name.to_hex(),
            files: plan.files.len() as u64,
            dirs: plan.dirs.len() as u64,
            symlinks: plan.symlinks.len() as u64,
            bytes: bytes_total,
            duration_secs: started.elapsed().as_secs_f64(),
        })
    }

    /// Fetches the needed blobs of one pack and writes them out. Blob errors
    /// mark the affected files failed; disk errors are returned.
    fn restore_pack(
        &self,
        index: &Index,
        work: &PackWork,
        plan: &Plan,
        errors: &Mutex<Vec<String>>,
        opts: &RestoreOptions,
    ) -> Result<()> {
        let meta = index.pack(work.pack);
        let path = pack::pack_path(&meta.name);
        let info = PackInfo {
            name: meta.name,
            salt: meta.salt,
            size: meta.size,
            blobs: Vec::new(),
        };
        let key = self.pack_key(&meta.salt);
        let mut handles: HashMap<usize, File> = HashMap::new();
        for batch in batches(&work.blobs) {
            let ranges: Vec<_> = batch
                .iter()
                .map(|(e, _)| e.offset as u64..e.offset as u64 + e.length as u64)
                .collect();
            let records = match self.storage().get_ranges(&path, &ranges) {
                Ok(r) => r,
                Err(e) => {
                    fail_files(plan, batch);
                    errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(e.to_string());
                    continue;
                }
            };
            for (blob, record) in batch.iter().zip(&records) {
                let (entry, targets) = blob;
                let data = match pack::open_blob(&info, &key, entry, record, |d| self.data_id(d)) {
                    Ok(d) => d,
                    Err(e) => {
                        fail_files(plan, std::slice::from_ref(blob));
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(e.to_string());
                        continue;
                    }
                };
                self.write_blob(&data, targets, plan, &mut handles, opts)?;
            }
        }
        Ok(())
    }
}

impl Repository {
    /// Writes one verified blob at each of its offsets.
    fn write_blob(
        &self,
        data: &[u8],
        targets: &Targets,
        plan: &Plan,
        handles: &mut HashMap<usize, File>,
        opts: &RestoreOptions,
    ) -> Result<()> {
        // The files were created at full length: all-zero chunks are
        // already there, and skipping them keeps sparse files sparse.
        let zero = data.iter().all(|b| *b == 0);
        for (f, offset) in targets {
            let file = &plan.files[*f];
            if !zero {
                let handle = match handles.entry(*f) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(
                        File::options()
                            .write(true)
                            .open(&file.path)
                            .map_err(|e| Error::io(&file.path, e))?,
                    ),
                };
                handle
                    .write_all_at(data, *offset)
                    .map_err(|e| Error::io(&file.path, e))?;
            }
            if let Some(p) = &opts.progress {
                p.bytes_done.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            if file.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                handles.remove(f);
                if let Some(p) = &opts.progress {
                    p.files_done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// Most bytes of one pack fetched at once: bounds restore memory per worker.
const MAX_FETCH_SPAN: u64 = 8 * 1024 * 1024;

/// Splits a pack's needed blobs (sorted by offset) into runs that span at
/// most [`MAX_FETCH_SPAN`] bytes each.
fn batches(blobs: &[(PackEntry, Targets)]) -> Vec<&[(PackEntry, Targets)]> {
    let mut out = Vec::new();
    let mut first = 0;
    for i in 1..=blobs.len() {
        let end = |j: usize| blobs[j].0.offset as u64 + blobs[j].0.length as u64;
        if i == blobs.len() || end(i) - blobs[first].0.offset as u64 > MAX_FETCH_SPAN {
            out.push(&blobs[first..i]);
            first = i;
        }
    }
    out
}

fn fail_files(plan: &Plan, blobs: &[(PackEntry, Targets)]) {
    for (_, targets) in blobs {
        for (f, _) in targets {
            plan.files[*f].failed.store(true, Ordering::Relaxed);
        }
    }
}

fn set_file_meta(f: &FilePlan) -> Result<()> {
    fs::set_permissions(&f.path, fs::Permissions::from_mode(f.mode))
        .map_err(|e| Error::io(&f.path, e))?;
    filetime::set_file_mtime(&f.path, f.mtime).map_err(|e| Error::io(&f.path, e))
}
