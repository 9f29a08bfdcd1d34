//! Backup: walk a folder, chunk what changed, store what is new.
//!
//! One thread walks, reads, chunks and hashes (deduplication is decided
//! there, so it needs no locking); worker threads compress, encrypt and pack
//! blobs, each into its own pack, and upload full packs. At the end the
//! workers' unfinished packs are merged into as few packs as possible, so a
//! backup of a few changed files makes one small pack, not one per worker.
//! Index files are written as packs land, the snapshot last: an interrupted
//! backup leaves only unreferenced packs or index entries, never a snapshot
//! that points at missing data.
//!
//! A file whose content may not match its recorded metadata (it changed
//! while being read, or was modified within a second of the backup start,
//! so a later change could keep the same mtime) is marked for re-reading
//! (ctime 0), so the next backup does not trust it as unchanged.

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::format::ZSTD_LEVEL;
use crate::id::{BlobId, BlobType};
use crate::index::Index;
use crate::pack::{PackInfo, PackWriter, pack_path};
use crate::repo::{Repository, now};
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Tree};

/// Packs per index file written during a backup. Small enough that a killed
/// backup loses little; large enough that index files stay few.
const PACKS_PER_INDEX: usize = 8;

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct BackupProgress {
    pub files: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_added: AtomicU64,
}

#[derive(Debug, Default, Clone)]
pub struct BackupOptions {
    /// Snapshot to compare against (`latest` of the same source if unset).
    pub parent: Option<String>,
    /// Compress/encrypt threads; 0 means one per CPU.
    pub workers: usize,
    pub progress: Option<Arc<BackupProgress>>,
}

/// A file that could not be read and is missing from the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub error: String,
}

/// What a backup did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub snapshot: String,
    pub parent: Option<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    /// Size of all files in the snapshot.
    pub bytes_total: u64,
    /// Bytes read from disk (unmodified files are not read).
    pub bytes_read: u64,
    /// Bytes written to the repository, after deduplication and compression.
    pub bytes_added: u64,
    pub blobs_added: u64,
    pub duration_secs: f64,
    pub skipped: Vec<SkippedFile>,
}

struct Job {
    kind: BlobType,
    id: BlobId,
    data: Bytes,
}

/// State the workers share.
struct Shared {
    /// The backup's lock: checked before each index file and the snapshot,
    /// so nothing is written once a prune may have run.
    lock: Option<crate::LockValidity>,
    pending: Mutex<Vec<PackInfo>>,
    bytes_added: AtomicU64,
    failed: AtomicBool,
    progress: Option<Arc<BackupProgress>>,
}

/// The source as recorded in the snapshot: absolute, without `.`, `..` or
/// trailing slashes, with symbolic links in its parent folders resolved, so
/// `backup dir/`, `backup ./dir` and `backup /abs/dir` find the same parent
/// snapshot. A last component that is a symbolic link is backed up as the
/// link, unless the path ends in `/`, which (as in the shell) means the
/// folder it points to.
fn normalise_source(source: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(source).map_err(|e| Error::io(source, e))?;
    let lexical: PathBuf = abs.components().collect();
    let canonical = |p: &Path| fs::canonicalize(p).map_err(|e| Error::io(p, e));
    if source.as_os_str().as_bytes().ends_with(b"/") {
        return canonical(&lexical);
    }
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => Ok(canonical(parent)?.join(name)),
        // `/`, or a path ending in `..`.
        _ => canonical(&lexical),
    }
}

/// Whether two stats of a file describe the same, unchanged file.
fn same_state(a: &Metadata, b: &Metadata) -> bool {
    a.ino() == b.ino()
        && a.dev() == b.dev()
        && a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ctime() == b.ctime()
        && a.ctime_nsec() == b.ctime_nsec()
}

/// Nanoseconds since the epoch, for comparing file times with the start.
fn nanos(secs: i64, nsec: u32) -> i128 {
    secs as i128 * 1_000_000_000 + nsec as i128
}

/// A file modified this close to the backup start may be modified again
/// within the same timestamp tick (coarse on many file systems) after it
/// was read, without its size or mtime changing.
const RECENT_NANOS: i128 = 1_000_000_000;

impl Repository {
    /// Backs up `source` (a folder or a single file) as a new snapshot.
    pub fn backup(&self, source: &Path, opts: &BackupOptions) -> Result<BackupSummary> {
        let started = Instant::now();
        let (start_secs, start_nsec) = now();
        let source = normalise_source(source)?;
        let root_meta = fs::symlink_metadata(&source).map_err(|e| Error::io(&source, e))?;
        let source_bytes = source.as_os_str().as_bytes().to_vec();
        // Shared: other backups may run too, but not a prune, which could
        // delete packs this backup deduplicates against.
        let lock = self.lock(crate::LockKind::Shared)?;
        // Snapshots before the index (the reverse of write order): the
        // parent's blobs are then in the index unless it is damaged.
        let parent = match &opts.parent {
            Some(q) => Some(self.find_snapshot(q)?),
            None => self
                .snapshots()?
                .into_iter()
                .rev()
                .find(|(_, s)| s.source == source_bytes),
        };
        let index = self.load_index()?;
        let parent_root = match &parent {
            Some((_, snap)) => self.load_tree(&index, &snap.tree).ok(),
            None => None,
        };
        let workers = if opts.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            opts.workers
        };
        let shared = Shared {
            lock: Some(lock.validity()),
            pending: Mutex::new(Vec::new()),
            bytes_added: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            progress: opts.progress.clone(),
        };
        let (tx, rx) = crossbeam_channel::bounded::<Job>(workers * 8);
        let mut walker = Walker {
            repo: self,
            index: &index,
            known: index.ids().copied().collect(),
            tx,
            shared: &shared,
            stats: Stats::default(),
            skipped: Vec::new(),
            recent_after: nanos(start_secs, start_nsec) - RECENT_NANOS,
        };

        let (root, worker_results) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let rx = rx.clone();
                    let shared = &shared;
                    scope.spawn(move || self.pack_worker(rx, shared))
                })
                .collect();
            drop(rx);
            let root = walker.root(&source, &root_meta, parent_root.as_ref());
            drop(std::mem::replace(
                &mut walker.tx,
                crossbeam_channel::bounded(0).0,
            ));
            let results: Vec<Result<PackWriter>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Invalid("a backup worker panicked".into())))
                })
                .collect();
            (root, results)
        });
        let mut leftovers = Vec::with_capacity(worker_results.len());
        for r in worker_results {
            leftovers.push(r?);
        }
        let root = root?;
        self.finish_leftovers(leftovers, &shared)?;
        self.flush_index(&shared, true)?;

        let (time, time_nsec) = now();
        let stats = &walker.stats;
        let snapshot = Snapshot {
            time,
            time_nsec,
            hostname: hostname(),
            username: std::env::var("USER").unwrap_or_default(),
            source: source_bytes,
            tree: root,
            parent: parent.as_ref().map(|(n, _)| *n),
            program_version: concat!("arca ", env!("CARGO_PKG_VERSION")).into(),
            files: stats.files_new + stats.files_changed + stats.files_unmodified,
            dirs: stats.dirs,
            bytes: stats.bytes_total,
        };
        lock.ensure()?;
        let name = self.write_snapshot(&snapshot)?;
        drop(lock);
        Ok(BackupSummary {
            snapshot: name.to_hex(),
            parent: parent.map(|(n, _)| n.to_hex()),
            files_new: stats.files_new,
            files_changed: stats.files_changed,
            files_unmodified: stats.files_unmodified,
            dirs: stats.dirs,
            bytes_total: stats.bytes_total,
            bytes_read: stats.bytes_read,
            bytes_added: shared.bytes_added.load(Ordering::Relaxed),
            blobs_added: stats.blobs_added,
            duration_secs: started.elapsed().as_secs_f64(),
            skipped: walker.skipped,
        })
    }

    /// Compresses, encrypts and packs blobs until the walker is done; full
    /// packs are uploaded, the unfinished last one is returned for
    /// [`Repository::finish_leftovers`].
    fn pack_worker(&self, rx: Receiver<Job>, shared: &Shared) -> Result<PackWriter> {
        let result = (|| {
            let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
            // The buffer of an uploaded pack is reused for the next one:
            // a fresh 16 MiB buffer per pack costs a page fault per 4 KiB.
            let mut pack: Option<PackWriter> = None;
            let mut spare: Option<Vec<u8>> = None;
            for job in rx {
                let open =
                    pack.get_or_insert_with(|| PackWriter::reusing(&self.keys.blob, spare.take()));
                open.add(&mut compressor, job.kind, job.id, &job.data);
                if open.is_full()
                    && let Some(full) = pack.take()
                {
                    spare = self.upload_pack(full, shared)?;
                }
            }
            Ok(pack.unwrap_or_else(|| PackWriter::new(&self.keys.blob)))
        })();
        if result.is_err() {
            shared.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Merges the workers' unfinished packs into as few packs as possible
    /// and uploads them: the fullest takes the others' blobs until it is
    /// full, then a new one continues.
    fn finish_leftovers(&self, mut leftovers: Vec<PackWriter>, shared: &Shared) -> Result<()> {
        leftovers.retain(|p| !p.is_empty());
        leftovers.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut rest = leftovers.into_iter();
        let Some(mut pack) = rest.next() else {
            return Ok(());
        };
        for other in rest {
            for entry in other.entries() {
                if pack.is_full() {
                    let full = std::mem::replace(&mut pack, PackWriter::new(&self.keys.blob));
                    self.upload_pack(full, shared)?;
                }
                pack.move_blob(&other, entry)?;
            }
        }
        self.upload_pack(pack, shared).map(|_| ())
    }

    /// Uploads a finished pack; returns its buffer for reuse when the
    /// storage no longer holds on to it.
    fn upload_pack(&self, pack: PackWriter, shared: &Shared) -> Result<Option<Vec<u8>>> {
        let (bytes, info) = pack.finish()?;
        let size = bytes.len() as u64;
        let kept = bytes.clone();
        self.storage().put(&pack_path(&info.name), bytes, false)?;
        shared.bytes_added.fetch_add(size, Ordering::Relaxed);
        if let Some(p) = &shared.progress {
            p.bytes_added.fetch_add(size, Ordering::Relaxed);
        }
        shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(info);
        self.flush_index(shared, false)?;
        Ok(kept.try_into_mut().ok().map(Vec::from))
    }

    /// Writes an index file for uploaded packs: always with `all`, otherwise
    /// once enough packs are waiting.
    fn flush_index(&self, shared: &Shared, all: bool) -> Result<()> {
        let packs = {
            let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.is_empty() || (!all && pending.len() < PACKS_PER_INDEX) {
                return Ok(());
            }
            std::mem::take(&mut *pending)
        };
        if let Some(lock) = &shared.lock {
            lock.ensure()?;
        }
        let size = self.write_index(&packs)?;
        shared.bytes_added.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Default)]
struct Stats {
    files_new: u64,
    files_changed: u64,
    files_unmodified: u64,
    dirs: u64,
    bytes_total: u64,
    bytes_read: u64,
    blobs_added: u64,
}

struct Walker<'a> {
    repo: &'a Repository,
    index: &'a Index,
    known: HashSet<BlobId>,
    tx: Sender<Job>,
    shared: &'a Shared,
    stats: Stats,
    skipped: Vec<SkippedFile>,
    /// Files with an mtime after this (nanoseconds since the epoch) are
    /// marked for re-reading: see [`RECENT_NANOS`].
    recent_after: i128,
}

/// What reading one file gave.
struct ReadFile {
    size: u64,
    content: Vec<BlobId>,
    /// The file did not change between the lstat that made its node and the
    /// end of reading.
    stable: bool,
}

/// This machine's name, as snapshots and locks record it.
pub(crate) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The metadata part of a node; `kind` is filled in by the caller.
fn node_from(name: &[u8], md: &Metadata, kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: md.mode() & 0o7777,
        mtime: md.mtime(),
        mtime_nsec: md.mtime_nsec() as u32,
        ctime: md.ctime(),
        ctime_nsec: md.ctime_nsec() as u32,
        inode: md.ino(),
        device: md.dev(),
        uid: md.uid(),
        gid: md.gid(),
    }
}

impl Walker<'_> {
    fn root(&mut self, path: &Path, md: &Metadata, parent: Option<&Tree>) -> Result<BlobId> {
        if md.is_dir() {
            return self.dir(path, parent, true);
        }
        let name = path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let parent_node = parent.and_then(|t| t.find(&name));
        let mut tree = Tree::default();
        if let Some(node) = self.entry(path, &name, md, parent_node)? {
            tree.nodes.push(node);
        }
        self.store_tree(&tree)
    }

    fn skip(&mut self, path: &Path, err: impl std::fmt::Display) {
        self.skipped.push(SkippedFile {
            path: path.display().to_string(),
            error: err.to_string(),
        });
    }

    fn abort_if_failed(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(Error::Invalid(
                "backup stopped: writing to the repository failed".into(),
            ));
        }
        Ok(())
    }

    fn dir(&mut self, path: &Path, parent: Option<&Tree>, is_root: bool) -> Result<BlobId> {
        self.abort_if_failed()?;
        self.stats.dirs += 1;
        let mut entries: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        match fs::read_dir(path) {
            Ok(rd) => {
                for e in rd {
                    match e {
                        Ok(e) => entries.push((e.file_name().as_bytes().to_vec(), e.path())),
                        Err(err) => self.skip(path, err),
                    }
                }
            }
            Err(err) if is_root => return Err(Error::io(path, err)),
            Err(err) => self.skip(path, err),
        }
        entries.sort();
        let mut tree = Tree::default();
        for (name, child) in entries {
            let md = match fs::symlink_metadata(&child) {
                Ok(md) => md,
                Err(err) => {
                    self.skip(&child, err);
                    continue;
                }
            };
            let parent_node = parent.and_then(|t| t.find(&name));
            if let Some(node) = self.entry(&child, &name, &md, parent_node)? {
                tree.nodes.push(node);
            }
        }
        self.store_tree(&tree)
    }

    /// The node for one directory entry, or `None` if it is skipped.
    fn entry(
        &mut self,
        path: &Path,
        name: &[u8],
        md: &Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        let ft = md.file_type();
        let mut node = node_from(name, md, NodeKind::Symlink { target: Vec::new() });
        if ft.is_file() {
            let size = md.len();
            let reuse = parent
                .filter(|p| p.unchanged_file(&node, size))
                .and_then(|p| match &p.kind {
                    NodeKind::File { content, .. }
                        if content.iter().all(|id| self.known.contains(id)) =>
                    {
                        Some(content.clone())
                    }
                    _ => None,
                });
            if nanos(node.mtime, node.mtime_nsec) > self.recent_after {
                node.mark_reread();
            }
            let read = match reuse {
                Some(content) => {
                    self.stats.files_unmodified += 1;
                    self.stats.bytes_total += size;
                    node.kind = NodeKind::File { size, content };
                    self.count_file(0);
                    return Ok(Some(node));
                }
                None => match self.read_file(path, md)? {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
            // A file read again only because its timestamps could not be
            // trusted, whose content turned out the same, is unmodified.
            let same_content = parent.is_some_and(|p| {
                matches!(&p.kind, NodeKind::File { size, content }
                    if *size == read.size && *content == read.content)
            });
            match parent {
                Some(_) if same_content => self.stats.files_unmodified += 1,
                Some(_) => self.stats.files_changed += 1,
                None => self.stats.files_new += 1,
            }
            if !read.stable {
                node.mark_reread();
            }
            self.stats.bytes_total += read.size;
            node.kind = NodeKind::File {
                size: read.size,
                content: read.content,
            };
        } else if ft.is_dir() {
            let parent_tree = match parent.map(|p| &p.kind) {
                Some(NodeKind::Dir { subtree }) => self.repo.load_tree(self.index, subtree).ok(),
                _ => None,
            };
            let subtree = self.dir(path, parent_tree.as_ref(), false)?;
            node.kind = NodeKind::Dir { subtree };
        } else if ft.is_symlink() {
            match fs::read_link(path) {
                Ok(target) => {
                    node.kind = NodeKind::Symlink {
                        target: target.as_os_str().as_bytes().to_vec(),
                    }
                }
                Err(err) => {
                    self.skip(path, err);
                    return Ok(None);
                }
            }
        } else {
            // Sockets, FIFOs and device nodes hold no data to back up.
            return Ok(None);
        }
        Ok(Some(node))
    }

    fn count_file(&self, bytes: u64) {
        if let Some(p) = &self.shared.progress {
            p.files.fetch_add(1, Ordering::Relaxed);
            p.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Chunks one file; `None` (and a skipped-file entry) if it cannot be
    /// read. `lstat` is the metadata its node was made from.
    fn read_file(&mut self, path: &Path, lstat: &Metadata) -> Result<Option<ReadFile>> {
        self.abort_if_failed()?;
        // The path was a regular file at lstat time, but may have been
        // replaced since: O_NOFOLLOW refuses a symbolic link (which could
        // point anywhere), O_NONBLOCK keeps a FIFO from blocking the open,
        // and fstat confirms what was actually opened.
        let opened = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path);
        let file = match opened {
            Ok(f) => f,
            Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
                self.skip(
                    path,
                    "it was replaced by a symbolic link during the backup; back up again",
                );
                return Ok(None);
            }
            Err(err) => {
                self.skip(path, err);
                return Ok(None);
            }
        };
        let before = match file.metadata() {
            Ok(m) if m.file_type().is_file() => m,
            Ok(_) => {
                self.skip(
                    path,
                    "it is no longer a regular file (it was replaced during the backup); \
                     back up again",
                );
                return Ok(None);
            }
            Err(err) => {
                self.skip(path, err);
                return Ok(None);
            }
        };
        let mut head = [0u8; 100];
        let head_len = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0).unwrap_or(0);
        let boundaries = Chunker::boundaries_for(&head[..head_len]);
        let mut content = Vec::new();
        let chunker = self.repo.chunker().clone();
        let res = chunker.chunk_stream::<_, ChunkError>(&file, boundaries, |chunk| {
            let id = self.repo.data_id(chunk);
            content.push(id);
            if let Some(p) = &self.shared.progress {
                p.bytes_read
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            if self.known.insert(id) {
                self.stats.blobs_added += 1;
                self.tx
                    .send(Job {
                        kind: BlobType::Data,
                        id,
                        data: Bytes::copy_from_slice(chunk),
                    })
                    .map_err(|_| ChunkError::Stopped)?;
            }
            Ok(())
        });
        match res {
            Ok(size) => {
                self.stats.bytes_read += size;
                if let Some(p) = &self.shared.progress {
                    p.files.fetch_add(1, Ordering::Relaxed);
                }
                let stable = size == lstat.len()
                    && same_state(lstat, &before)
                    && file.metadata().is_ok_and(|after| same_state(lstat, &after));
                Ok(Some(ReadFile {
                    size,
                    content,
                    stable,
                }))
            }
            Err(ChunkError::Io(err)) => {
                self.skip(path, err);
                Ok(None)
            }
            Err(ChunkError::Stopped) => {
                self.abort_if_failed()?;
                Err(Error::Invalid(
                    "backup stopped: the pack workers exited".into(),
                ))
            }
        }
    }

    fn store_tree(&mut self, tree: &Tree) -> Result<BlobId> {
        let bytes = postcard::to_stdvec(tree)
            .map_err(|e| Error::Invalid(format!("cannot serialize a tree: {e}")))?;
        let id = self.repo.tree_id(&bytes);
        if self.known.insert(id) {
            self.stats.blobs_added += 1;
            self.tx
                .send(Job {
                    kind: BlobType::Tree,
                    id,
                    data: Bytes::from(bytes),
                })
                .map_err(|_| Error::Invalid("backup stopped: the pack workers exited".into()))?;
        }
        Ok(id)
    }
}

enum ChunkError {
    Io(std::io::Error),
    Stopped,
}

impl From<std::io::Error> for ChunkError {
    fn from(e: std::io::Error) -> Self {
        ChunkError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use arca_crypto::BackupKey;
    use std::io::Write;

    /// Runs `f` with a walker over an empty in-memory repository.
    fn with_walker(f: impl FnOnce(&mut Walker<'_>)) {
        let repo = Repository::init(Storage::memory(), &BackupKey::generate()).unwrap();
        let index = Index::default();
        let shared = Shared {
            lock: None,
            pending: Mutex::new(Vec::new()),
            bytes_added: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            progress: None,
        };
        let (tx, _rx) = crossbeam_channel::unbounded();
        let mut walker = Walker {
            repo: &repo,
            index: &index,
            known: HashSet::new(),
            tx,
            shared: &shared,
            stats: Stats::default(),
            skipped: Vec::new(),
            recent_after: 0,
        };
        f(&mut walker);
    }

    #[test]
    fn a_file_that_changes_while_it_is_read_is_not_trusted_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.log");
        fs::write(&path, b"first line\n").unwrap();
        with_walker(|w| {
            let lstat = fs::symlink_metadata(&path).unwrap();
            let read = w.read_file(&path, &lstat).unwrap().unwrap();
            assert!(read.stable, "an untouched file is stable");

            // Changed after the lstat its node is made from.
            fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(b"second line\n")
                .unwrap();
            let read = w.read_file(&path, &lstat).unwrap().unwrap();
            assert!(!read.stable);
            assert_eq!(read.size, 23, "what was read is stored");
        });
    }

    #[test]
    fn a_fifo_or_link_swapped_in_for_a_file_is_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"data").unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();

        // Opening a FIFO without O_NONBLOCK would wait for a writer forever:
        // run in a thread so a regression fails instead of hanging.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            with_walker(|w| {
                let lstat = fs::symlink_metadata(&file).unwrap();
                assert!(w.read_file(&fifo, &lstat).unwrap().is_none());
                assert!(w.read_file(&link, &lstat).unwrap().is_none());
                let errors: Vec<_> = w.skipped.iter().map(|s| s.error.clone()).collect();
                done.send(errors).unwrap();
            })
        });
        let errors = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading a FIFO must not block");
        assert!(errors[0].contains("no longer a regular file"), "{errors:?}");
        assert!(
            errors[1].contains("replaced by a symbolic link"),
            "{errors:?}"
        );
    }
}
