//! Errors that name what went wrong and what the user can do about it.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no arca repository at {location}: create one with `arca init`, or check --repo")]
    NoRepository { location: String },

    #[error("{location} already holds a repository or other files: choose an empty or new folder")]
    AlreadyExists { location: String },

    #[error(
        "this recovery key does not open repository {location}: check the 64 digits \
         (each group of 4 is 0-9 and a-f)"
    )]
    WrongKey { location: String },

    /// `location` names what has the newer version: the repository (its
    /// config) or one object in it.
    #[error(
        "{location} has format version {found}, newer than this arca understands \
         (version {supported}): upgrade arca"
    )]
    NewerFormat {
        location: String,
        found: u8,
        supported: u8,
    },

    #[error("{location} is not an arca repository (its config object has no arca header)")]
    NotARepository { location: String },

    #[error("repository object {object} is damaged: {reason}; run `arca check --read-data`")]
    Damaged { object: String, reason: String },

    #[error("storage error on {object}: {source}")]
    Storage {
        object: String,
        #[source]
        source: object_store::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no space left on the device (or a disk quota or file size limit reached) while writing \
         {path}: free some space or restore to another disk"
    )]
    NoSpace { path: PathBuf },

    #[error("no snapshot matches {query:?}: list them with `arca snapshots`")]
    SnapshotNotFound { query: String },

    #[error("{query:?} matches more than one snapshot: give more digits of its id")]
    AmbiguousSnapshot { query: String },

    #[error("the repository has no snapshots yet: run `arca backup` first")]
    NoSnapshots,

    #[error("{path:?} is not in this snapshot: list its contents with `arca ls`")]
    PathNotInSnapshot { path: String },

    /// A restore finished but left some entries out; the message lists them
    /// and says whether storage or the repository's data was at fault.
    #[error("{0}")]
    Incomplete(String),

    #[error("{0}")]
    Invalid(String),

    /// Another process holds a conflicting repository lock; the message
    /// names its holder (user, host, pid, times in UTC) and what to do.
    #[error("{0}")]
    Locked(String),
}

impl Error {
    pub(crate) fn damaged(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Damaged {
            object: object.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        // A full disk, an exhausted quota and a file larger than the file
        // system (or RLIMIT_FSIZE) allows all mean the same to the user: this
        // disk cannot take the data.
        match source.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Error::NoSpace { path },
            _ => Error::Io { path, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_quota_and_file_size_limit_all_read_as_no_space() {
        for errno in [libc::ENOSPC, libc::EDQUOT, libc::EFBIG] {
            let e = Error::io("/x", std::io::Error::from_raw_os_error(errno));
            assert!(matches!(e, Error::NoSpace { .. }), "{errno}: {e}");
            assert!(e.to_string().contains("no space left"), "{e}");
        }
        let e = Error::io("/x", std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, Error::Io { .. }));
    }
}
