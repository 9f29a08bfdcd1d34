//! Backup: walk a folder, chunk what changed, store what is new.
//!
//! One thread walks, reads, chunks and hashes (deduplication is decided
//! there, so it needs no locking); worker threads compress, encrypt and pack
//! blobs, each into its own pack, and upload full packs. Index files are
//! written as packs land, the snapshot last: an interrupted backup leaves
//! only unreferenced packs or index entries, never a snapshot that points
//! at missing data.

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
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
    pending: Mutex<Vec<PackInfo>>,
    bytes_added: AtomicU64,
    failed: AtomicBool,
    progress: Option<Arc<BackupProgress>>,
}

impl Repository {
    /// Backs up `source` (a folder or a single file) as a new snapshot.
    pub fn backup(&self, source: &Path, opts: &BackupOptions) -> Result<BackupSummary> {
        let started = Instant::now();
        let source = std::path::absolute(source).map_err(|e| Error::io(source, e))?;
        let root_meta = fs::symlink_metadata(&source).map_err(|e| Error::io(&source, e))?;
        let index = self.load_index()?;
        let source_bytes = source.as_os_str().as_bytes().to_vec();
        let parent = match &opts.parent {
            Some(q) => Some(self.find_snapshot(q)?),
            None => self
                .snapshots()?
                .into_iter()
                .rev()
                .find(|(_, s)| s.source == source_bytes),
        };
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
            let results: Vec<Result<()>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Invalid("a backup worker panicked".into())))
                })
                .collect();
            (root, results)
        });
        for r in worker_results {
            r?;
        }
        let root = root?;
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
        let name = self.write_snapshot(&snapshot)?;
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

    /// Compresses, encrypts and packs blobs until the walker is done.
    fn pack_worker(&self, rx: Receiver<Job>, shared: &Shared) -> Result<()> {
        let result = (|| {
            let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
            let mut pack = PackWriter::new(&self.keys.blob);
            for job in rx {
                pack.add(&mut compressor, job.kind, job.id, &job.data);
                if pack.is_full() {
                    let full = std::mem::replace(&mut pack, PackWriter::new(&self.keys.blob));
                    self.upload_pack(full, shared)?;
                }
            }
            if !pack.is_empty() {
                self.upload_pack(pack, shared)?;
            }
            Ok(())
        })();
        if result.is_err() {
            shared.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn upload_pack(&self, pack: PackWriter, shared: &Shared) -> Result<()> {
        let (bytes, info) = pack.finish()?;
        let size = bytes.len() as u64;
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
        self.flush_index(shared, false)
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
}

fn hostname() -> String {
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
            let content = match reuse {
                Some(content) => {
                    self.stats.files_unmodified += 1;
                    self.stats.bytes_total += size;
                    node.kind = NodeKind::File { size, content };
                    self.count_file(0);
                    return Ok(Some(node));
                }
                None => match self.read_file(path)? {
                    Some(c) => c,
                    None => return Ok(None),
                },
            };
            if parent.is_some() {
                self.stats.files_changed += 1;
            } else {
                self.stats.files_new += 1;
            }
            self.stats.bytes_total += content.0;
            node.kind = NodeKind::File {
                size: content.0,
                content: content.1,
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

    /// Chunks one file; `None` (and a skipped-file entry) if it cannot be read.
    fn read_file(&mut self, path: &Path) -> Result<Option<(u64, Vec<BlobId>)>> {
        self.abort_if_failed()?;
        let file = match File::open(path) {
            Ok(f) => f,
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
        let res = chunker.chunk_stream::<_, ChunkError>(file, boundaries, |chunk| {
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
                Ok(Some((size, content)))
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
