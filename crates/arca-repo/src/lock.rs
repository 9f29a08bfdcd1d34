//! Repository locks, so that deleting data (prune) never runs while a
//! backup, restore or check uses the repository (docs/format.md §9.1).
//!
//! A lock is a sealed metadata object `locks/<name>`, named like the others
//! by the hash of its bytes. A process writes its own lock first and only
//! then reads all the others, so of two processes that race, at least one
//! sees the other and gives way. A holder refreshes its lock every 5 minutes
//! (a new object first, then the old one deleted, so a lister always sees
//! one); a lock not refreshed for 30 minutes is stale: its process is gone.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arca_crypto::SubKey;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, MetaKind};
use crate::id::ObjectName;
use crate::repo::{Repository, now};
use crate::storage::Storage;
use crate::time::format_utc;

/// A lock not refreshed for this long is stale: its holder is taken to be gone.
const STALE_AFTER_SECS: i64 = 1800;
/// How often a held lock is refreshed.
const REFRESH_SECS: u64 = 300;

/// What a lock allows others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    /// Coexists with other shared locks (backup, restore, check).
    Shared,
    /// Coexists with nothing (prune).
    Exclusive,
}

/// The plaintext of a lock object.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LockInfo {
    kind: LockKind,
    hostname: String,
    username: String,
    pid: u32,
    created: i64,
    refreshed: i64,
}

/// Whether a held lock still protects its holder: it was refreshed
/// recently (wall clock, which keeps counting while the machine sleeps), and
/// its object was never found gone (deleted by another process as stale).
#[derive(Clone, Debug)]
pub struct LockValidity(Arc<Mutex<(i64, bool)>>);

/// A holder stops trusting its lock this long after the last successful
/// refresh, well before others may call it stale.
const TRUST_SECS: i64 = STALE_AFTER_SECS - 600;

impl LockValidity {
    fn new() -> Self {
        Self(Arc::new(Mutex::new((now().0, false))))
    }

    fn refreshed(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 = now().0;
    }

    fn lost(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
    }

    /// Fails if the lock may no longer protect its holder. Call it before
    /// each write that others must not see half of (an index, a snapshot,
    /// prune's deletions).
    pub fn ensure(&self) -> Result<()> {
        let (last, lost) = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        let why = if lost {
            "another arca removed this process's lock as stale"
        } else if now().0.saturating_sub(last) > TRUST_SECS {
            "this process could not refresh its lock for too long (was the machine asleep or \
             the storage unreachable?)"
        } else {
            return Ok(());
        };
        Err(Error::Locked(format!(
            "{why}: a prune may have run meanwhile, so this operation stops here without \
             writing more; nothing it wrote before is lost. Run it again"
        )))
    }
}

/// A lock held on a repository; released (its object deleted) when dropped.
#[derive(Debug)]
pub struct Lock {
    kind: LockKind,
    storage: Storage,
    /// The current lock object; each refresh replaces it.
    path: Arc<Mutex<String>>,
    validity: LockValidity,
    /// Dropping it wakes and stops the refresher.
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockInfo {
    fn is_stale(&self, now: i64) -> bool {
        now.saturating_sub(self.refreshed) > STALE_AFTER_SECS
    }
}

impl Lock {
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// See [`LockValidity::ensure`].
    pub fn ensure(&self) -> Result<()> {
        self.validity.ensure()
    }

    /// A handle for threads that must check the lock too.
    pub fn validity(&self) -> LockValidity {
        self.validity.clone()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(refresher) = self.refresher.take() {
            let _ = refresher.join();
        }
        let path = self.path.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Storage blocks on its runtime; never let a failure escape a drop.
        let _ = catch_unwind(AssertUnwindSafe(|| self.storage.delete(&path)));
    }
}

/// Storage path of a lock object.
pub(crate) fn lock_path(name: &ObjectName) -> String {
    format!("locks/{}", name.to_hex())
}

/// Seals `info` and stores it as a new lock object; returns its path. Not
/// `write_named`: the refresher has no `Repository`.
fn put_lock(storage: &Storage, meta: &SubKey, info: &LockInfo) -> Result<String> {
    let sealed = format::seal_meta(meta, MetaKind::Lock, info)?;
    let path = lock_path(&ObjectName::of(&sealed));
    storage.put(&path, Bytes::from(sealed), false)?;
    Ok(path)
}

fn refresh_loop(
    storage: Storage,
    meta: SubKey,
    mut info: LockInfo,
    path: Arc<Mutex<String>>,
    validity: LockValidity,
    stop: Receiver<()>,
    every: Duration,
) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        let current = path.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Gone: another process judged it stale. Writing a new one now
        // would hide that a prune may have run: stop, and let the holder
        // find out at its next `ensure`.
        match storage.get(&current) {
            Ok(Some(_)) => {}
            Ok(None) => {
                validity.lost();
                return;
            }
            Err(_) => continue, // unreachable storage: retried at the next tick
        }
        info.refreshed = now().0;
        // A failed write is retried at the next tick; the old lock stays.
        let Ok(new) = put_lock(&storage, &meta, &info) else {
            continue;
        };
        validity.refreshed();
        let old = std::mem::replace(&mut *path.lock().unwrap_or_else(|p| p.into_inner()), new);
        let _ = storage.delete(&old);
    }
}

impl Repository {
    /// Takes a lock. Shared locks coexist with each other; an exclusive lock
    /// coexists with nothing. Fails with [`Error::Locked`] naming who holds
    /// the conflicting lock and what to do.
    pub fn lock(&self, kind: LockKind) -> Result<Lock> {
        self.lock_with(kind, Duration::from_secs(REFRESH_SECS))
    }

    /// [`Repository::lock`], refreshing every `refresh`.
    pub(crate) fn lock_with(&self, kind: LockKind, refresh: Duration) -> Result<Lock> {
        let t = now().0;
        let info = LockInfo {
            kind,
            hostname: crate::backup::hostname(),
            username: std::env::var("USER").unwrap_or_default(),
            pid: std::process::id(),
            created: t,
            refreshed: t,
        };
        let own = put_lock(self.storage(), &self.keys.meta, &info)?;
        let mut lock = Lock {
            kind,
            storage: self.storage().clone(),
            path: Arc::new(Mutex::new(own.clone())),
            validity: LockValidity::new(),
            stop: None,
            refresher: None,
        };
        // On any error from here on, dropping `lock` deletes our object.
        self.check_others(kind, &own)?;
        let (stop, stopped) = mpsc::channel();
        let (storage, meta, path, validity) = (
            lock.storage.clone(),
            self.keys.meta.clone(),
            lock.path.clone(),
            lock.validity.clone(),
        );
        let refresher = std::thread::Builder::new()
            .name("arca-lock".into())
            .spawn(move || refresh_loop(storage, meta, info, path, validity, stopped, refresh))
            .map_err(|e| Error::Invalid(format!("cannot start the lock refresh thread: {e}")))?;
        lock.stop = Some(stop);
        lock.refresher = Some(refresher);
        Ok(lock)
    }

    /// Fails if a live lock other than `own` conflicts with `kind`. An
    /// exclusive acquirer deletes the stale locks it sees.
    fn check_others(&self, kind: LockKind, own: &str) -> Result<()> {
        for _ in 0..10 {
            if self.scan_others(kind, own)? {
                return Ok(());
            }
        }
        Err(Error::Locked(
            "the repository's locks kept changing while arca read them: try again".into(),
        ))
    }

    /// One pass of [`Self::check_others`]. False when a listed lock was gone
    /// by the time it was read: a refresh may have replaced it with one
    /// this listing missed, so the caller lists again.
    fn scan_others(&self, kind: LockKind, own: &str) -> Result<bool> {
        let t = now().0;
        for (path, _) in self.storage().list("locks")? {
            if path == own {
                continue;
            }
            let other: LockInfo = match self.read_named(&path, MetaKind::Lock) {
                Ok((_, other)) => other,
                Err(e @ Error::Storage { .. }) => return Err(e),
                Err(_) if self.storage().get(&path)?.is_none() => return Ok(false),
                Err(_) if kind == LockKind::Shared => {
                    self.warn(format!(
                        "ignored {path}: it is not a lock this arca can read; if no arca \
                         process is using the repository, remove it with `arca unlock --all`"
                    ));
                    continue;
                }
                Err(e) => {
                    let reason = match e {
                        Error::Damaged { reason, .. } => reason,
                        e => e.to_string(),
                    };
                    return Err(Error::Locked(format!(
                        "the repository has a lock object that cannot be read ({path}: {reason}), \
                         so who holds it is unknown: if no arca process is using the repository, \
                         run `arca unlock --all`, then try again"
                    )));
                }
            };
            if other.is_stale(t) {
                if kind == LockKind::Exclusive {
                    let _ = self.storage().delete(&path);
                }
            } else if kind == LockKind::Exclusive || other.kind == LockKind::Exclusive {
                return Err(held_by(&other));
            }
        }
        Ok(true)
    }

    /// Removes lock objects: the stale ones, or with `all` every one (for
    /// when the user knows no arca process uses the repository). Returns how
    /// many were removed.
    pub fn unlock(&self, all: bool) -> Result<usize> {
        let t = now().0;
        let mut removed = 0;
        for (path, _) in self.storage().list("locks")? {
            let stale = || {
                let read = self.read_named::<LockInfo>(&path, MetaKind::Lock);
                read.is_ok_and(|(_, l)| l.is_stale(t))
            };
            if !all && !stale() {
                continue;
            }
            match self.storage().delete(&path) {
                Ok(()) => removed += 1,
                Err(Error::Storage {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

fn held_by(l: &LockInfo) -> Error {
    Error::Locked(format!(
        "the repository is locked ({}, by user {:?} on host {:?} pid {} since {} UTC, \
         last refreshed {} UTC): wait for that arca to finish; if that process is gone, \
         its lock lapses {} minutes after its last refresh (then `arca unlock` removes it), \
         or if you are sure no arca process is using the repository, run `arca unlock --all`",
        format!("{:?}", l.kind).to_lowercase(),
        l.username,
        l.hostname,
        l.pid,
        format_utc(l.created),
        format_utc(l.refreshed),
        STALE_AFTER_SECS / 60,
    ))
}

impl Repository {
    /// A shared lock for reading (restore, check), so that no prune deletes
    /// packs underneath. A lock held by a prune is an error; a lock that
    /// cannot be written (read-only storage) is not: reading goes on without
    /// one, with a warning.
    pub(crate) fn read_lock(&self) -> Result<Option<Lock>> {
        match self.lock(LockKind::Shared) {
            Ok(lock) => Ok(Some(lock)),
            Err(e @ Error::Locked(_)) => Err(e),
            Err(e) => {
                self.warn(format!(
                    "cannot lock the repository ({e}): going on without a lock; a prune \
                     running at the same time could make this fail (never give wrong data)"
                ));
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use arca_crypto::BackupKey;

    use super::*;

    fn two_handles() -> (Storage, Repository, Repository) {
        let storage = Storage::memory();
        let key = BackupKey::generate();
        let a = Repository::init(storage.clone(), &key).unwrap();
        let b = Repository::open(storage.clone(), &key).unwrap();
        (storage, a, b)
    }

    fn locks(storage: &Storage) -> Vec<String> {
        let mut v: Vec<_> = storage
            .list("locks")
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        v.sort();
        v
    }

    /// A lock object last refreshed `age` seconds ago.
    fn old_lock(repo: &Repository, kind: LockKind, age: i64) -> String {
        let t = now().0 - age;
        let info = LockInfo {
            kind,
            hostname: "old-host".into(),
            username: "old-user".into(),
            pid: 4242,
            created: t,
            refreshed: t,
        };
        put_lock(repo.storage(), &repo.keys.meta, &info).unwrap()
    }

    fn garbage(storage: &Storage) -> String {
        let path = format!("locks/{}", "ab".repeat(32));
        storage
            .put(&path, Bytes::from_static(b"not a lock"), false)
            .unwrap();
        path
    }

    fn refused(r: Result<Lock>) -> String {
        match r {
            Err(Error::Locked(m)) => m,
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn shared_locks_coexist_and_an_exclusive_one_waits_for_them() {
        let (storage, a, b) = two_handles();
        let one = a.lock(LockKind::Shared).unwrap();
        let two = b.lock(LockKind::Shared).unwrap();
        assert_eq!(locks(&storage).len(), 2);
        let m = refused(b.lock(LockKind::Exclusive));
        assert!(m.contains("shared") && m.contains(&format!("pid {}", std::process::id())));
        assert!(m.contains("UTC") && m.contains("arca unlock"), "{m}");
        assert_eq!(
            locks(&storage).len(),
            2,
            "the refused attempt left its lock"
        );
        drop(one);
        assert_eq!(locks(&storage).len(), 1);
        refused(a.lock(LockKind::Exclusive));
        drop(two);
        assert!(locks(&storage).is_empty());
        let _x = a.lock(LockKind::Exclusive).unwrap();
    }

    #[test]
    fn an_exclusive_lock_excludes_everything_until_dropped() {
        let (storage, a, b) = two_handles();
        let x = a.lock(LockKind::Exclusive).unwrap();
        assert!(refused(b.lock(LockKind::Shared)).contains("exclusive"));
        refused(b.lock(LockKind::Exclusive));
        assert_eq!(locks(&storage).len(), 1);
        let start = Instant::now();
        drop(x);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the refresher stops at once"
        );
        assert!(locks(&storage).is_empty());
        let _s = b.lock(LockKind::Shared).unwrap();
    }

    #[test]
    fn a_stale_lock_blocks_nothing_and_an_exclusive_acquirer_removes_it() {
        let (storage, a, _) = two_handles();
        let old = old_lock(&a, LockKind::Exclusive, STALE_AFTER_SECS + 60);
        drop(a.lock(LockKind::Shared).unwrap());
        assert_eq!(locks(&storage), vec![old.clone()]);
        let x = a.lock(LockKind::Exclusive).unwrap();
        assert_eq!(locks(&storage).len(), 1);
        assert!(!locks(&storage).contains(&old));
        drop(x);
        assert!(locks(&storage).is_empty());
    }

    #[test]
    fn an_unreadable_lock_blocks_exclusive_only_until_unlock_all() {
        let (storage, a, _) = two_handles();
        let bad = garbage(&storage);
        let m = refused(a.lock(LockKind::Exclusive));
        assert!(m.contains(&bad) && m.contains("arca unlock --all"), "{m}");
        assert_eq!(locks(&storage), vec![bad.clone()]);
        drop(a.lock(LockKind::Shared).unwrap());
        assert!(a.take_warnings().iter().any(|w| w.contains(&bad)));
        assert_eq!(a.unlock(false).unwrap(), 0);
        assert_eq!(a.unlock(true).unwrap(), 1);
        assert!(locks(&storage).is_empty());
        let _x = a.lock(LockKind::Exclusive).unwrap();
    }

    #[test]
    fn unlock_removes_only_stale_locks_unless_told_all() {
        let (storage, a, b) = two_handles();
        let stale = old_lock(&a, LockKind::Shared, STALE_AFTER_SECS + 1);
        let fresh = old_lock(&a, LockKind::Shared, 60);
        let bad = garbage(&storage);
        let live = b.lock(LockKind::Shared).unwrap();
        assert_eq!(a.unlock(false).unwrap(), 1);
        let left = locks(&storage);
        assert_eq!(left.len(), 3);
        assert!(!left.contains(&stale) && left.contains(&fresh) && left.contains(&bad));
        assert_eq!(a.unlock(true).unwrap(), 3);
        assert!(locks(&storage).is_empty());
        drop(live);
    }

    #[test]
    fn a_refresh_replaces_the_object_and_the_lock_still_holds() {
        let (storage, a, b) = two_handles();
        let lock = a
            .lock_with(LockKind::Shared, Duration::from_millis(50))
            .unwrap();
        let before = locks(&storage);
        assert_eq!(before.len(), 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        let after = loop {
            let now = locks(&storage);
            if now.len() == 1 && now != before {
                break now;
            }
            assert!(Instant::now() < deadline, "no refresh");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(!after.contains(&before[0]));
        refused(b.lock(LockKind::Exclusive));
        drop(lock);
        assert!(locks(&storage).is_empty());
    }

    #[test]
    fn a_lock_removed_by_another_process_is_lost_and_its_holder_stops() {
        let (storage, a, b) = two_handles();
        let lock = a
            .lock_with(LockKind::Shared, Duration::from_millis(50))
            .unwrap();
        assert!(lock.ensure().is_ok());
        // Another process judged it stale (say, this machine slept).
        assert_eq!(b.unlock(true).unwrap(), 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock.ensure().is_ok() {
            assert!(Instant::now() < deadline, "the loss was never noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let e = lock.ensure().unwrap_err().to_string();
        assert!(e.contains("removed this process's lock"), "{e}");
        // It does not come back behind the other process's back.
        std::thread::sleep(Duration::from_millis(200));
        assert!(locks(&storage).is_empty());
        // And a lock not refreshed for too long is not trusted either.
        let old = LockValidity::new();
        old.0.lock().unwrap().0 -= TRUST_SECS + 1;
        assert!(old.ensure().is_err());
    }
}
