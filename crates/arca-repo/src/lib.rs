//! The arca repository: an end-to-end encrypted, content-defined-chunked,
//! deduplicated store of snapshots on any `object_store` backend.
//!
//! The byte-level format is specified in `docs/format.md`; this crate is its
//! reference implementation. The public API is blocking: call it from a
//! plain thread (or `spawn_blocking`), never from inside an async task.

mod backup;
mod check;
mod chunker;
mod error;
mod forget;
mod format;
mod id;
mod index;
mod lock;
mod pack;
mod prune;
mod repo;
mod restore;
mod settings;
mod snapshot;
mod storage;
mod time;
mod tree;
#[cfg(test)]
mod vectors;

pub use backup::{BackupOptions, BackupProgress, BackupSummary, SkippedFile};
pub use check::{CheckOptions, CheckReport};
pub use chunker::{Boundaries, Chunker, ChunkerParams};
pub use error::{Error, Result};
pub use forget::{ForgetSummary, KeepPolicy};
pub use format::{FORMAT_VERSION, MAGIC};
pub use id::{BlobId, BlobType, ObjectName};
pub use index::Index;
pub use lock::{Lock, LockKind, LockValidity};
pub use prune::{PruneOptions, PruneSummary};
pub use repo::{Config, Repository};
pub use restore::{RestoreOptions, RestoreProgress, RestoreSummary};
pub use snapshot::Snapshot;
pub use storage::Storage;
pub use time::format_utc;
pub use tree::{Node, NodeKind, Tree};
