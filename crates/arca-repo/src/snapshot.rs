//! Snapshots: one backup run, pointing at its root tree.

use serde::{Deserialize, Serialize};

use crate::id::{BlobId, ObjectName};

/// One backup. Stored encrypted as `snapshots/<name>`: the host name, user
/// and path below are never visible to the storage provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: i64,
    pub time_nsec: u32,
    pub hostname: String,
    pub username: String,
    /// The absolute path that was backed up, as raw bytes.
    pub source: Vec<u8>,
    pub tree: BlobId,
    pub parent: Option<ObjectName>,
    pub program_version: String,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Storage path of a snapshot.
pub fn snapshot_path(name: &ObjectName) -> String {
    format!("snapshots/{}", name.to_hex())
}

impl Snapshot {
    pub fn source_display(&self) -> String {
        String::from_utf8_lossy(&self.source).into_owned()
    }
}
