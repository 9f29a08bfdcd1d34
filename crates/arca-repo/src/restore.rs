//! Restore: plan the whole snapshot first (no disk writes until every tree
//! has been read and every blob located), then fetch each pack once with the
//! needed ranges coalesced, verify every blob against its id, and write it
//! at its offsets.
//!
//! **No wrong or partial files.** Every file is written under a temporary
//! name (`.arca-restore-<random>.tmp`, mode 0600) in its folder and renamed
//! into place only when all its blobs are written and verified; its
//! metadata is set on the open file just before. A file that cannot be
//! completed never appears under its real name, and `overwrite` replaces
//! files whole instead of truncating them in place (a hard link elsewhere
//! keeps the old content). The temporary files of everything unfinished are
//! removed on any error, early return or panic.
//!
//! **No writing through symbolic links.** No existing component of the
//! target may be a symbolic link, nor may any folder of the snapshot be
//! restored through one; files and links are put in place with rename, which
//! replaces a symbolic link instead of following it, and metadata is set on
//! open handles (`O_NOFOLLOW`), not paths. A target that already holds
//! anything is refused unless `overwrite` is set.
//!
//! **Damage is contained.** A tree that cannot be read or fails validation
//! is skipped with its whole subtree (its folder is not created); everything
//! else is restored, links and folder metadata are still applied, and the
//! restore ends with [`Error::Incomplete`] listing what is missing and
//! whether storage or the repository's data was at fault.
//!
//! **Ownership** is restored only when running as root; only then are the
//! set-user-id, set-group-id and sticky bits restored too. Otherwise they are
//! dropped: on a file owned by whoever restores it, a set-id bit would grant
//! that user's rights, not the original owner's.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use filetime::FileTime;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::BlobId;
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
    /// Restore into a folder that already holds files, replacing those the
    /// snapshot also has (each whole, by rename). Without it, a non-empty
    /// target is refused.
    pub overwrite: bool,
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

/// Why an entry was not restored.
#[derive(Clone, Debug)]
enum Problem {
    /// The repository could not be read: unreachable, no permission, an
    /// object missing. Retrying may help.
    Storage(String),
    /// What was read is damaged: it failed authentication, does not match
    /// its id, or describes something impossible.
    Damaged(String),
    /// Writing it to the target failed.
    Local(String),
    /// Inside a folder that could not be created; reported with the folder.
    Covered,
}

impl Problem {
    fn of(e: &Error) -> Self {
        match e {
            Error::Storage { .. } => Problem::Storage(e.to_string()),
            Error::Io { .. } | Error::NoSpace { .. } => Problem::Local(e.to_string()),
            _ => Problem::Damaged(e.to_string()),
        }
    }
}

/// Metadata to apply to a restored entry.
#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: FileTime,
}

impl Meta {
    fn of(node: &Node) -> Self {
        Self {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: FileTime::from_unix_time(node.mtime, node.mtime_nsec),
        }
    }
}

struct FilePlan {
    path: PathBuf,
    size: u64,
    meta: Meta,
    remaining: AtomicUsize,
    /// Set once, by whoever first finds that this file cannot be completed.
    failure: OnceLock<Problem>,
}

impl FilePlan {
    fn fail(&self, problem: Problem) {
        let _ = self.failure.set(problem);
    }
}

/// Where one blob's plaintext goes: (file number, offset in the file).
type Targets = Vec<(usize, u64)>;

struct PackWork {
    pack: u32,
    blobs: Vec<(PackEntry, Targets)>,
}

#[derive(Default)]
struct Plan {
    /// Folders an `include` path passes through: created, but their
    /// metadata is not part of what was asked for.
    parents: Vec<PathBuf>,
    /// Snapshot folders, children before parents.
    dirs: Vec<(PathBuf, Meta)>,
    files: Vec<FilePlan>,
    symlinks: Vec<(PathBuf, Vec<u8>, Meta)>,
    by_pack: HashMap<u32, HashMap<BlobId, (PackEntry, Targets)>>,
    /// Entries left out while planning, and why.
    skipped: Vec<(PathBuf, Problem)>,
}

fn name_path(name: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(name))
}

impl Plan {
    /// Adds `node` (an entry of the folder `dir`). Anything wrong with it
    /// skips it, and a folder with its whole subtree, never the restore.
    fn add_node(&mut self, repo: &Repository, index: &Index, node: &Node, dir: &Path) {
        if let Err(reason) = node.check_name() {
            self.skipped.push((
                dir.to_path_buf(),
                Problem::Damaged(format!("a tree in the snapshot is damaged: {reason}")),
            ));
            return;
        }
        let path = dir.join(name_path(&node.name));
        match &node.kind {
            NodeKind::Dir { subtree } => match repo.load_tree(index, subtree) {
                Ok(tree) => {
                    self.add_tree(repo, index, &tree, &path);
                    self.dirs.push((path, Meta::of(node)));
                }
                Err(e) => self.skipped.push((path, Problem::of(&e))),
            },
            NodeKind::File { size, content } => {
                let locations = match index.locate_file(*size, content) {
                    Ok(l) => l,
                    Err(reason) => {
                        self.skipped.push((
                            path,
                            Problem::Damaged(format!(
                                "a tree in the snapshot is damaged: {reason}"
                            )),
                        ));
                        return;
                    }
                };
                let number = self.files.len();
                let mut offset = 0u64;
                for (id, loc) in content.iter().zip(locations) {
                    self.by_pack
                        .entry(loc.pack)
                        .or_default()
                        .entry(*id)
                        .or_insert_with(|| (loc.entry, Vec::new()))
                        .1
                        .push((number, offset));
                    offset += loc.entry.raw_length as u64;
                }
                self.files.push(FilePlan {
                    path,
                    size: *size,
                    meta: Meta::of(node),
                    remaining: AtomicUsize::new(content.len()),
                    failure: OnceLock::new(),
                });
            }
            NodeKind::Symlink { target } => {
                self.symlinks.push((path, target.clone(), Meta::of(node)))
            }
        }
    }

    fn add_tree(&mut self, repo: &Repository, index: &Index, tree: &Tree, dir: &Path) {
        for node in &tree.nodes {
            self.add_node(repo, index, node, dir);
        }
    }
}

/// Temporary files not yet renamed into place, by file number. Dropping
/// this removes them all, so no error, early return or panic leaves one.
struct Temps(Vec<Option<PathBuf>>);

impl Drop for Temps {
    fn drop(&mut self) {
        // No `?` here: every file gets its removal attempt.
        for path in self.0.iter().flatten() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Whether `path` lies inside one of the `failed` folders.
fn under(failed: &HashSet<PathBuf>, path: &Path) -> bool {
    !failed.is_empty() && path.ancestors().skip(1).any(|a| failed.contains(a))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
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
        check_target(target, opts.overwrite)?;
        let _lock = self.read_lock()?;
        // The snapshot before the index (the reverse of write order), so a
        // backup running now cannot give us a snapshot our index lacks.
        let (name, snapshot) = self.find_snapshot(query)?;
        let index = self.load_index()?;
        let root = self.load_tree(&index, &snapshot.tree)?;
        let mut plan = self.plan(&index, root, target, opts.include.as_deref())?;
        if opts.overwrite {
            refuse_symlinked_folders(&plan)?;
        }

        create_target(target)?;
        for parent in &plan.parents {
            ensure_dir(parent, opts.overwrite, 0o777)?;
        }
        // Folders parents first, owner-only until their real modes are
        // applied at the end. One that cannot be made takes its subtree
        // with it; the rest goes on.
        let mut failed_dirs: HashSet<PathBuf> = HashSet::new();
        let mut problems: Vec<(PathBuf, Problem)> = std::mem::take(&mut plan.skipped);
        for (dir, _) in plan.dirs.iter().rev() {
            if under(&failed_dirs, dir) {
                failed_dirs.insert(dir.clone());
                continue;
            }
            match ensure_dir(dir, opts.overwrite, 0o700) {
                Ok(()) => {}
                Err(e @ Error::NoSpace { .. }) => return Err(e),
                Err(e) => {
                    failed_dirs.insert(dir.clone());
                    problems.push((dir.clone(), Problem::of(&e)));
                }
            }
        }

        let bytes_total: u64 = plan.files.iter().map(|f| f.size).sum();
        if let Some(p) = &opts.progress {
            p.bytes_total.store(bytes_total, Ordering::Relaxed);
        }
        let mut temps = Temps(Vec::with_capacity(plan.files.len()));
        for file in &plan.files {
            temps.0.push(None);
            if under(&failed_dirs, &file.path) {
                file.fail(Problem::Covered);
                continue;
            }
            if fs::symlink_metadata(&file.path).is_ok_and(|m| m.is_dir()) {
                file.fail(Problem::Local(format!(
                    "{} is a folder, but the snapshot has a file there: move the folder away",
                    file.path.display()
                )));
                continue;
            }
            match create_temp(&file.path, file.size) {
                Ok(tmp) => {
                    if let Some(slot) = temps.0.last_mut() {
                        *slot = Some(tmp);
                    }
                }
                Err(e @ Error::NoSpace { .. }) => return Err(e),
                Err(e) => file.fail(Problem::of(&e)),
            }
        }

        let fatal = self.fetch_and_write(&index, &mut plan, &temps.0, opts);

        // Put every complete, verified file in place, fatal error or not:
        // what was fully restored stays. The rest is removed with `temps`.
        let as_root = running_as_root();
        let mut files_done = 0u64;
        for (file, tmp) in plan.files.iter().zip(temps.0.iter_mut()) {
            let complete =
                file.failure.get().is_none() && file.remaining.load(Ordering::Relaxed) == 0;
            let Some(path) = tmp.as_deref().filter(|_| complete) else {
                continue;
            };
            match commit_file(path, file, as_root) {
                Ok(()) => {
                    *tmp = None;
                    files_done += 1;
                }
                Err(e) => file.fail(Problem::of(&e)),
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        drop(temps);

        let mut links_done = 0u64;
        for (path, link, meta) in &plan.symlinks {
            if under(&failed_dirs, path) {
                continue;
            }
            match place_symlink(path, link, meta, as_root) {
                Ok(()) => links_done += 1,
                Err(e) => problems.push((path.clone(), Problem::of(&e))),
            }
        }
        // Children were pushed before their parents: a folder's mtime is set
        // after everything inside it is done.
        let mut dirs_done = 0u64;
        for (dir, meta) in &plan.dirs {
            if failed_dirs.contains(dir) {
                continue;
            }
            match set_dir_meta(dir, meta, as_root) {
                Ok(()) => dirs_done += 1,
                Err(e) => problems.push((dir.clone(), Problem::of(&e))),
            }
        }

        for file in &plan.files {
            match file.failure.get() {
                Some(p) => problems.push((file.path.clone(), p.clone())),
                None if file.remaining.load(Ordering::Relaxed) != 0 => problems.push((
                    file.path.clone(),
                    Problem::Local("not all of its data was written".into()),
                )),
                None => {}
            }
        }
        problems.retain(|(_, p)| !matches!(p, Problem::Covered));
        if !problems.is_empty() {
            return Err(Error::Incomplete(incomplete_message(target, problems)));
        }
        Ok(RestoreSummary {
            snapshot: name.to_hex(),
            files: files_done,
            dirs: dirs_done,
            symlinks: links_done,
            bytes: bytes_total,
            duration_secs: started.elapsed().as_secs_f64(),
        })
    }

    /// Reads every tree under the snapshot root (or under `include`) and
    /// locates every blob. Fails only if `include` cannot be found; damage
    /// below it is recorded in the plan.
    fn plan(
        &self,
        index: &Index,
        root: Tree,
        target: &Path,
        include: Option<&str>,
    ) -> Result<Plan> {
        let mut plan = Plan::default();
        let include = include
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let Some(include) = include else {
            plan.add_tree(self, index, &root, target);
            return Ok(plan);
        };
        let not_found = || Error::PathNotInSnapshot {
            path: include.into(),
        };
        let parts: Vec<&str> = include.split('/').filter(|p| !p.is_empty()).collect();
        let mut tree = root;
        let mut dir = target.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            let node = tree.find(part.as_bytes()).cloned().ok_or_else(not_found)?;
            if i + 1 == parts.len() {
                plan.add_node(self, index, &node, &dir);
            } else if let NodeKind::Dir { subtree } = &node.kind {
                node.check_name()
                    .map_err(|r| Error::damaged("a tree in the snapshot", r))?;
                tree = self.load_tree(index, subtree)?;
                dir.push(part);
                plan.parents.push(dir.clone());
            } else {
                return Err(not_found());
            }
        }
        Ok(plan)
    }

    /// Runs the download workers. Blob and storage problems mark the files
    /// they affect; a local disk error stops everything and is returned.
    fn fetch_and_write(
        &self,
        index: &Index,
        plan: &mut Plan,
        temps: &[Option<PathBuf>],
        opts: &RestoreOptions,
    ) -> Option<Error> {
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
        let plan = &*plan;
        let next = AtomicUsize::new(0);
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let workers = if opts.workers == 0 { 4 } else { opts.workers };
        std::thread::scope(|scope| {
            for _ in 0..workers.min(work.len().max(1)) {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(w) = work.get(i) else { break };
                        if let Err(e) = self.restore_pack(index, w, plan, temps, opts) {
                            stop.store(true, Ordering::Relaxed);
                            fatal
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                });
            }
        });
        fatal.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches the needed blobs of one pack and writes them out. Blob errors
    /// mark the affected files failed; disk errors are returned.
    fn restore_pack(
        &self,
        index: &Index,
        work: &PackWork,
        plan: &Plan,
        temps: &[Option<PathBuf>],
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
                    fail_files(plan, batch, &Problem::of(&e));
                    continue;
                }
            };
            for (blob, record) in batch.iter().zip(&records) {
                let (entry, targets) = blob;
                match pack::open_blob(&info, &key, entry, record, |d| self.data_id(d)) {
                    Ok(data) => self.write_blob(&data, targets, plan, temps, &mut handles, opts)?,
                    Err(e) => fail_files(plan, std::slice::from_ref(blob), &Problem::of(&e)),
                }
            }
        }
        Ok(())
    }

    /// Writes one verified blob at each of its offsets.
    fn write_blob(
        &self,
        data: &[u8],
        targets: &Targets,
        plan: &Plan,
        temps: &[Option<PathBuf>],
        handles: &mut HashMap<usize, File>,
        opts: &RestoreOptions,
    ) -> Result<()> {
        // The files were created at full length: all-zero chunks are
        // already there, and skipping them keeps sparse files sparse.
        let zero = data.iter().all(|b| *b == 0);
        for (f, offset) in targets {
            let file = &plan.files[*f];
            let Some(tmp) = temps[*f].as_deref() else {
                continue;
            };
            if file.failure.get().is_some() {
                continue;
            }
            if !zero {
                let handle = match handles.entry(*f) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(
                        File::options()
                            .write(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(tmp)
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

fn fail_files(plan: &Plan, blobs: &[(PackEntry, Targets)], problem: &Problem) {
    for (_, targets) in blobs {
        for (f, _) in targets {
            plan.files[*f].fail(problem.clone());
        }
    }
}

fn symlink_refusal(target: &Path, link: &Path) -> Error {
    let real = fs::canonicalize(link)
        .map(|p| format!(" (it points to {})", p.display()))
        .unwrap_or_default();
    Error::Invalid(format!(
        "refusing to restore into {}: {} is a symbolic link{real}, and restoring through one \
         could write outside the folder you chose; give a --target without symbolic links",
        target.display(),
        link.display()
    ))
}

/// Refuses a target reached through a symbolic link, and, unless
/// `overwrite`, one that already holds anything. Only reads.
fn check_target(target: &Path, overwrite: bool) -> Result<()> {
    let abs = std::path::absolute(target).map_err(|e| Error::io(target, e))?;
    let mut path = PathBuf::new();
    for part in abs.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(symlink_refusal(target, &path)),
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "cannot restore into {}: {} exists and is not a folder",
                    target.display(),
                    path.display()
                )));
            }
            // Nothing exists from here on, so nothing can be in the way.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let mut entries = fs::read_dir(&abs).map_err(|e| Error::io(&abs, e))?;
    if !overwrite && entries.next().is_some() {
        return Err(Error::Invalid(format!(
            "{} is not empty: restore into an empty or new folder, or pass --overwrite to \
             replace the files the snapshot has with its versions",
            target.display()
        )));
    }
    Ok(())
}

/// Creates the target and its missing parents, one component at a time, so
/// that none is followed if it is (or became) a symbolic link.
fn create_target(target: &Path) -> Result<()> {
    let abs = std::path::absolute(target).map_err(|e| Error::io(target, e))?;
    let mut path = PathBuf::new();
    for part in abs.components() {
        path.push(part);
        ensure_dir(&path, false, 0o777).map_err(|e| match e {
            Error::Invalid(_) if fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) => {
                symlink_refusal(target, &path)
            }
            e => e,
        })?;
    }
    Ok(())
}

/// With `overwrite`, an existing symbolic link where the snapshot has a
/// folder would have files restored through it: refuse before writing.
fn refuse_symlinked_folders(plan: &Plan) -> Result<()> {
    let dirs = plan.parents.iter().chain(plan.dirs.iter().map(|(d, _)| d));
    for dir in dirs {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Invalid(format!(
                "refusing to restore: {} is a symbolic link where the snapshot has a folder, \
                 and restoring through it could write outside the target; remove the link or \
                 restore into an empty folder",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Makes `path` a real folder: keeps an existing one, never follows a
/// symbolic link, and with `replace` removes a file in the way.
fn ensure_dir(path: &Path, replace: bool, mode: u32) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::Invalid(format!(
                "{} is a symbolic link where the snapshot has a folder: not restored through it",
                path.display()
            )));
        }
        Ok(_) if replace => fs::remove_file(path).map_err(|e| Error::io(path, e))?,
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{} exists and is not a folder: restore into an empty folder or pass --overwrite",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(path, e))
}

/// A fresh temporary name in `dir`.
fn temp_name(dir: &Path) -> PathBuf {
    let mut random = [0u8; 8];
    arca_crypto::fill_random(&mut random);
    dir.join(format!(".arca-restore-{}.tmp", hex::encode(random)))
}

/// Creates the temporary file for `path`, owner-only and `size` bytes long
/// (sparse); returns its name.
fn create_temp(path: &Path, size: u64) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for _ in 0..16 {
        let tmp = temp_name(dir);
        let created = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp);
        match created {
            Ok(f) => {
                if let Err(e) = f.set_len(size) {
                    let _ = fs::remove_file(&tmp);
                    return Err(Error::io(path, e));
                }
                return Ok(tmp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Err(Error::Invalid(format!(
        "cannot find a free temporary file name in {}",
        dir.display()
    )))
}

/// The permission bits to apply after `chown` was tried: all of them if the
/// owner was restored, otherwise without set-id and sticky bits.
fn mode_after_chown(
    meta: &Meta,
    as_root: bool,
    chown: impl FnOnce() -> std::io::Result<()>,
) -> u32 {
    if as_root && chown().is_ok() {
        meta.mode & 0o7777
    } else {
        meta.mode & 0o777
    }
}

/// Applies a completed file's metadata through its open handle (owner
/// first: chown clears set-id bits), then renames it into place.
fn commit_file(tmp: &Path, file: &FilePlan, as_root: bool) -> Result<()> {
    let io = |e| Error::io(&file.path, e);
    let handle = File::options()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(io)?;
    let meta = &file.meta;
    let mode = mode_after_chown(meta, as_root, || {
        std::os::unix::fs::fchown(&handle, Some(meta.uid), Some(meta.gid))
    });
    handle
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    filetime::set_file_handle_times(&handle, None, Some(meta.mtime)).map_err(io)?;
    drop(handle);
    fs::rename(tmp, &file.path).map_err(io)
}

/// Creates a symbolic link under a temporary name and renames it into
/// place, replacing (never following) whatever non-folder is there.
fn place_symlink(path: &Path, link: &[u8], meta: &Meta, as_root: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let target = std::ffi::OsStr::from_bytes(link);
    let mut tmp = temp_name(dir);
    let mut tries = 0;
    loop {
        match std::os::unix::fs::symlink(target, &tmp) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => {
                tries += 1;
                tmp = temp_name(dir);
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let placed = (|| {
        if as_root {
            // A link's own owner matters only for sticky folders; a
            // failure here leaves root's, which is harmless.
            let _ = std::os::unix::fs::lchown(&tmp, Some(meta.uid), Some(meta.gid));
        }
        filetime::set_symlink_file_times(&tmp, meta.mtime, meta.mtime)?;
        fs::rename(&tmp, path)
    })();
    placed.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Applies a folder's metadata through a handle opened without following
/// a symbolic link.
fn set_dir_meta(dir: &Path, meta: &Meta, as_root: bool) -> Result<()> {
    let io = |e| Error::io(dir, e);
    let handle = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(io)?;
    let mode = mode_after_chown(meta, as_root, || {
        std::os::unix::fs::fchown(&handle, Some(meta.uid), Some(meta.gid))
    });
    handle
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    filetime::set_file_handle_times(&handle, None, Some(meta.mtime)).map_err(io)
}

/// Most entries named in an incomplete-restore message.
const MAX_LISTED: usize = 20;

/// Lists what was not restored, then says what kind of failure each group
/// was and what to do about it.
fn incomplete_message(target: &Path, mut problems: Vec<(PathBuf, Problem)>) -> String {
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    let count = |f: fn(&Problem) -> bool| problems.iter().filter(|(_, p)| f(p)).count();
    let storage = count(|p| matches!(p, Problem::Storage(_)));
    let damaged = count(|p| matches!(p, Problem::Damaged(_)));
    let local = count(|p| matches!(p, Problem::Local(_)));
    let mut msg = format!(
        "restore incomplete: {} {} not restored (a folder with everything in it):",
        problems.len(),
        if problems.len() == 1 {
            "entry was"
        } else {
            "entries were"
        }
    );
    for (path, problem) in problems.iter().take(MAX_LISTED) {
        let shown = match path.strip_prefix(target) {
            Ok(rel) if rel.as_os_str().is_empty() => Path::new("."),
            Ok(rel) => rel,
            Err(_) => path,
        }
        .display();
        let why = match problem {
            Problem::Storage(e) => format!("could not be read from storage: {e}"),
            Problem::Damaged(e) => format!("integrity failure: {e}"),
            Problem::Local(e) => format!("could not be written: {e}"),
            Problem::Covered => continue,
        };
        msg.push_str(&format!("\n  {shown}: {why}"));
    }
    if problems.len() > MAX_LISTED {
        msg.push_str(&format!("\n  ... and {} more", problems.len() - MAX_LISTED));
    }
    if storage > 0 {
        msg.push_str(&format!(
            "\n{storage} storage error(s): the repository could not be read; check that it is \
             reachable and complete, then run the restore again (with --overwrite)"
        ));
    }
    if damaged > 0 {
        msg.push_str(&format!(
            "\n{damaged} integrity failure(s): stored data failed authentication or does not \
             match its id, so the repository is damaged; run `arca check --read-data`"
        ));
    }
    if local > 0 {
        msg.push_str(&format!(
            "\n{local} could not be written to {}: fix the cause above and run the restore \
             again (with --overwrite)",
            target.display()
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use crate::{BackupOptions, BlobType};
    use arca_crypto::BackupKey;
    use std::os::unix::fs::{MetadataExt, symlink};

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    fn new_repo() -> Repository {
        Repository::init(Storage::memory(), &BackupKey::generate()).unwrap()
    }

    /// Names of every entry under `dir`, recursively.
    fn all_names(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd {
                let p = e.unwrap().path();
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    out.extend(all_names(&p));
                }
            }
        }
        out
    }

    fn no_temp_files(dir: &Path) {
        let names = all_names(dir);
        assert!(
            !names.iter().any(|n| n.starts_with(".arca-restore-")),
            "temporary files left: {names:?}"
        );
    }

    fn incomplete(r: Result<RestoreSummary>) -> String {
        match r {
            Err(Error::Incomplete(msg)) => msg,
            other => panic!("expected an incomplete restore, got {other:?}"),
        }
    }

    #[test]
    fn a_damaged_tree_skips_only_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src.join("good/file.txt"), b"good data");
        write(&src.join("bad/inner.txt"), b"inside the damaged folder");
        write(&src.join("top.txt"), b"top");
        symlink("good/file.txt", src.join("link")).unwrap();
        let old = FileTime::from_unix_time(1_600_000_000, 0);
        filetime::set_file_mtime(src.join("good"), old).unwrap();
        let repo = new_repo();
        repo.backup(&src, &BackupOptions::default()).unwrap();

        // Flip one byte of the `bad` folder's tree blob in its pack.
        let index = repo.load_index().unwrap();
        let (_, snap) = repo.find_snapshot("latest").unwrap();
        let root = repo.load_tree(&index, &snap.tree).unwrap();
        let Some(NodeKind::Dir { subtree }) = root.find(b"bad").map(|n| &n.kind) else {
            panic!("no bad/ folder")
        };
        let loc = *index.get(subtree).unwrap();
        assert_eq!(loc.entry.kind, BlobType::Tree);
        let path = pack::pack_path(&index.pack(loc.pack).name);
        let mut bytes = repo.storage().get(&path).unwrap().unwrap().to_vec();
        bytes[loc.entry.offset as usize + 3] ^= 1;
        repo.storage().put(&path, bytes.into(), false).unwrap();

        let out = dir.path().join("out");
        let msg = incomplete(repo.restore("latest", &out, &RestoreOptions::default()));
        assert!(msg.contains("\n  bad: integrity failure"), "{msg}");
        assert!(msg.contains("1 integrity failure(s)"), "{msg}");
        assert!(!msg.contains("storage error"), "{msg}");
        assert_eq!(fs::read(out.join("good/file.txt")).unwrap(), b"good data");
        assert_eq!(fs::read(out.join("top.txt")).unwrap(), b"top");
        assert_eq!(
            fs::read_link(out.join("link")).unwrap(),
            Path::new("good/file.txt"),
            "symbolic links are still restored"
        );
        let good = fs::metadata(out.join("good")).unwrap();
        assert_eq!(
            FileTime::from_last_modification_time(&good),
            old,
            "folder metadata is still applied"
        );
        assert!(
            !out.join("bad").exists(),
            "the damaged folder is not created"
        );
        no_temp_files(&out);
    }

    #[test]
    fn storage_errors_are_told_apart_from_damage() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let mut big = vec![0u8; 300_000];
        arca_crypto::fill_random(&mut big);
        write(&src.join("a.bin"), &big);
        let repo = new_repo();
        repo.backup(&src, &BackupOptions::default()).unwrap();
        let first: Vec<String> = repo
            .storage()
            .list("data")
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        write(&src.join("b.txt"), b"added later");
        repo.backup(&src, &BackupOptions::default()).unwrap();
        // a.bin's data is only in the first backup's packs.
        for p in &first {
            repo.storage().delete(p).unwrap();
        }
        let out = dir.path().join("out");
        let msg = incomplete(repo.restore("latest", &out, &RestoreOptions::default()));
        assert!(
            msg.contains("\n  a.bin: could not be read from storage"),
            "{msg}"
        );
        assert!(msg.contains("1 storage error(s)"), "{msg}");
        assert!(!msg.contains("integrity failure"), "{msg}");
        assert_eq!(fs::read(out.join("b.txt")).unwrap(), b"added later");
        assert!(!out.join("a.bin").exists(), "no zero-filled file is left");
        no_temp_files(&out);
    }

    #[test]
    fn a_non_empty_target_needs_overwrite_which_replaces_files_whole() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src.join("f.txt"), b"snapshot content");
        write(&src.join("sub/g.txt"), b"g");
        let repo = new_repo();
        repo.backup(&src, &BackupOptions::default()).unwrap();

        let out = dir.path().join("out");
        let keep = dir.path().join("keep.txt");
        write(&keep, b"old content");
        fs::create_dir(&out).unwrap();
        fs::hard_link(&keep, out.join("f.txt")).unwrap();
        write(&out.join("extra.txt"), b"mine");

        let err = repo
            .restore("latest", &out, &RestoreOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not empty") && err.contains("--overwrite"),
            "{err}"
        );
        assert_eq!(fs::read(out.join("f.txt")).unwrap(), b"old content");

        let opts = RestoreOptions {
            overwrite: true,
            ..Default::default()
        };
        repo.restore("latest", &out, &opts).unwrap();
        assert_eq!(fs::read(out.join("f.txt")).unwrap(), b"snapshot content");
        assert_eq!(fs::read(out.join("sub/g.txt")).unwrap(), b"g");
        assert_eq!(
            fs::read(&keep).unwrap(),
            b"old content",
            "the old file was replaced, not truncated and rewritten in place"
        );
        assert_eq!(fs::read(out.join("extra.txt")).unwrap(), b"mine");
        no_temp_files(&out);
    }

    #[test]
    fn nothing_is_restored_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src.join("f.txt"), b"data");
        write(&src.join("sub/g.txt"), b"g");
        let repo = new_repo();
        repo.backup(&src, &BackupOptions::default()).unwrap();

        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        symlink(&real, dir.path().join("link")).unwrap();
        let err = repo
            .restore(
                "latest",
                &dir.path().join("link/out"),
                &RestoreOptions::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(
            all_names(&real).is_empty(),
            "nothing written through the link"
        );

        // With --overwrite, a link where the snapshot has a folder is refused
        // before anything is written.
        let out = dir.path().join("out");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::create_dir(&out).unwrap();
        symlink(&elsewhere, out.join("sub")).unwrap();
        let opts = RestoreOptions {
            overwrite: true,
            ..Default::default()
        };
        let err = repo.restore("latest", &out, &opts).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link where the snapshot has a folder"),
            "{err}"
        );
        assert!(all_names(&elsewhere).is_empty());
        assert!(!out.join("f.txt").exists());
    }

    #[test]
    fn set_id_bits_need_the_owner_restored_too() {
        let meta = |mode| Meta {
            mode,
            uid: 1,
            gid: 1,
            mtime: FileTime::zero(),
        };
        let ok = || Ok(());
        let refused = || Err(std::io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(mode_after_chown(&meta(0o4755), true, ok), 0o4755);
        assert_eq!(mode_after_chown(&meta(0o4755), true, refused), 0o755);
        assert_eq!(mode_after_chown(&meta(0o2775), false, ok), 0o775);
        assert_eq!(mode_after_chown(&meta(0o1777), false, ok), 0o777);

        if !running_as_root() {
            eprintln!("set_id_bits_need_the_owner_restored_too: chown part needs root; not run");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src.join("tool"), b"#!/bin/sh\n");
        write(&src.join("shared/x"), b"x");
        std::os::unix::fs::chown(src.join("tool"), Some(65534), Some(65534)).unwrap();
        fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(src.join("shared"), fs::Permissions::from_mode(0o1777)).unwrap();
        let repo = new_repo();
        repo.backup(&src, &BackupOptions::default()).unwrap();
        let out = dir.path().join("out");
        repo.restore("latest", &out, &RestoreOptions::default())
            .unwrap();
        let tool = fs::metadata(out.join("tool")).unwrap();
        assert_eq!((tool.uid(), tool.gid()), (65534, 65534));
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(
            fs::metadata(out.join("shared")).unwrap().mode() & 0o7777,
            0o1777
        );
    }
}
