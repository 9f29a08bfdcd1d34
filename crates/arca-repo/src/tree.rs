//! Trees: one directory's entries and their metadata, stored as blobs.

use serde::{Deserialize, Serialize};

use crate::id::BlobId;

/// A directory listing, sorted by name bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// One directory entry. Names and link targets are raw bytes: Unix paths
/// need not be UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits (the low 12 bits of `st_mode`).
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Change time, inode and device: used only to decide that a file is
    /// unchanged since the parent snapshot, never restored.
    pub ctime: i64,
    pub ctime_nsec: u32,
    pub inode: u64,
    pub device: u64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File { size: u64, content: Vec<BlobId> },
    Dir { subtree: BlobId },
    Symlink { target: Vec<u8> },
}

impl Node {
    /// Whether `self` (from the parent snapshot) describes the same, unchanged
    /// file as `now`: same size, mtime, ctime, inode and device, and not
    /// marked for re-reading.
    pub fn unchanged_file(&self, now: &Node, now_size: u64) -> bool {
        !self.must_reread()
            && matches!(self.kind, NodeKind::File { size, .. } if size == now_size)
            && self.mtime == now.mtime
            && self.mtime_nsec == now.mtime_nsec
            && self.ctime == now.ctime
            && self.ctime_nsec == now.ctime_nsec
            && self.inode == now.inode
            && self.device == now.device
    }
}

impl Node {
    /// Marks a file whose stored content may not match its metadata (it
    /// changed while it was read, or so recently that a later change could
    /// keep the same mtime): the next backup reads it again. ctime is never
    /// restored, so zero is free to mean "not a usable ctime".
    pub(crate) fn mark_reread(&mut self) {
        self.ctime = 0;
        self.ctime_nsec = 0;
    }

    fn must_reread(&self) -> bool {
        self.ctime == 0 && self.ctime_nsec == 0
    }

    /// Refuses names that would escape or alias the folder being restored.
    /// Restore and check apply the same rule, so a repository that checks
    /// clean restores whole.
    pub(crate) fn check_name(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.contains(&b'/') || n == b"." || n == b".." {
            Err(format!(
                "it has an entry with an unsafe name {:?}",
                String::from_utf8_lossy(n)
            ))
        } else {
            Ok(())
        }
    }
}

impl Tree {
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}
