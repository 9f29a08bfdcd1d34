//! Prune: delete the data no snapshot uses any more.
//!
//! Under an exclusive lock (no backup, restore or check can run), prune
//! finds every blob the snapshots use, then for each pack: deletes it if it
//! holds nothing used, rewrites it if at least [`PruneOptions::repack_unused`]
//! of it is unused (the used blobs are read, verified and written into new
//! packs), and keeps it otherwise. Packs no index lists (left by an
//! interrupted backup) are deleted too.
//!
//! **Crash safety** comes from the order of writes: new packs, then new
//! index files listing every pack that stays, then the old index files are
//! deleted, and only then the packs. Killed at any point, every blob a
//! snapshot uses is in a pack that an index lists; what is left over (a
//! duplicate index, unlisted packs) is harmless, and the next prune removes it.
//!
//! Prune refuses to run when it cannot see everything: a snapshot or an index
//! file that cannot be read, or a used blob that is missing, could mean it
//! deletes data that is still needed. `arca check` says what is wrong.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::ZSTD_LEVEL;
use crate::id::{BlobId, BlobType, ObjectName};
use crate::index::Index;
use crate::lock::LockKind;
use crate::pack::{self, PackInfo, PackWriter, pack_path};
use crate::repo::{Repository, name_from_path};
use crate::tree::NodeKind;

/// Packs listed in one new index file.
const PACKS_PER_INDEX_FILE: usize = 256;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Work out and report what would be done, change nothing.
    pub dry_run: bool,
    /// A pack whose unused share (of its blob bytes) reaches this is
    /// rewritten; below it, it is kept as is. 0.0 rewrites every pack with
    /// anything unused; 1.0 only deletes wholly unused packs.
    pub repack_unused: f64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            repack_unused: 0.25,
        }
    }
}

/// What prune did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneSummary {
    pub dry_run: bool,
    pub snapshots: usize,
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Packs that held nothing used.
    pub packs_deleted: usize,
    /// Packs rewritten because much of them was unused.
    pub packs_repacked: usize,
    /// Packs written with the used blobs of the rewritten ones.
    pub packs_written: usize,
    /// Packs no index listed (left by interrupted backups).
    pub unindexed_deleted: usize,
    /// Blobs dropped (unused blobs of deleted and rewritten packs).
    pub blobs_removed: usize,
    pub index_files_replaced: usize,
    pub packs_after: usize,
    pub bytes_after: u64,
    pub duration_secs: f64,
}

#[cfg(test)]
thread_local! {
    /// Tests: the step after which prune stops as if killed (0: never).
    static CRASH_AFTER: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Where a test can stop prune as if the process were killed.
fn crash_point(step: u8) -> Result<()> {
    #[cfg(test)]
    if CRASH_AFTER.with(|c| c.get()) == step {
        return Err(Error::Invalid(format!("simulated crash after step {step}")));
    }
    let _ = step;
    Ok(())
}

/// One pack's fate.
enum Fate {
    Keep,
    Delete,
    /// Rewrite these entries (the used ones) into new packs.
    Repack(Vec<pack::PackEntry>),
}

impl Repository {
    /// Deletes data no snapshot uses. See the module documentation.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneSummary> {
        let started = Instant::now();
        // A dry run only reads: a shared lock keeps a real prune out.
        let lock = self.lock(if opts.dry_run {
            LockKind::Shared
        } else {
            LockKind::Exclusive
        })?;
        let refuse = |why: String| {
            Error::Invalid(format!(
                "prune cannot run: {why}. Nothing was deleted; run `arca check` to see what \
                 is wrong"
            ))
        };

        // Everything the snapshots use. Snapshots first, as everywhere.
        let list = self.list_snapshots()?;
        if let Some((name, e)) = list.unreadable.first() {
            return Err(refuse(format!(
                "snapshot {} cannot be read ({e}), so what it uses is unknown; if it is beyond \
                 repair, remove it with `arca forget {}`",
                name.short(),
                name.short()
            )));
        }
        let mut old_index_files = Vec::new();
        let mut infos: HashMap<ObjectName, PackInfo> = HashMap::new();
        let mut index = Index::default();
        for (path, _) in self.storage().list("index")? {
            if name_from_path(&path).is_err() {
                continue; // a stray file (`.DS_Store`): not an index, not ours
            }
            let packs = self.read_index_file(&path).map_err(|e| {
                refuse(format!(
                    "index file {path} cannot be read ({e}), so the packs it lists are unknown"
                ))
            })?;
            for p in packs {
                index.add_pack(&p);
                infos.entry(p.name).or_insert(p);
            }
            old_index_files.push(path);
        }
        let used = self.used_blobs(&index, &list.readable).map_err(refuse)?;

        let mut stored: HashMap<ObjectName, (String, u64)> = HashMap::new();
        for (path, size) in self.storage().list("data")? {
            // A stray file is not ours to delete.
            if let Ok(name) = name_from_path(&path) {
                stored.insert(name, (path, size));
            }
        }
        let mut summary = PruneSummary {
            dry_run: opts.dry_run,
            snapshots: list.readable.len(),
            packs_before: stored.len(),
            bytes_before: stored.values().map(|(_, s)| *s).sum(),
            ..Default::default()
        };

        // Each indexed pack's fate. A blob is used where the index finds it;
        // another copy of it elsewhere is not.
        let mut fates: Vec<(ObjectName, Fate)> = Vec::new();
        // Listed, gone, and not needed: only the index changes.
        let mut dropped_from_index = 0usize;
        let mut names: Vec<&ObjectName> = infos.keys().collect();
        names.sort();
        for name in names {
            let info = &infos[name];
            let used_here: Vec<pack::PackEntry> = info
                .blobs
                .iter()
                .filter(|e| {
                    used.contains(&e.id)
                        && index
                            .get(&e.id)
                            .is_some_and(|l| index.pack(l.pack).name == *name)
                })
                .copied()
                .collect();
            if !stored.contains_key(name) {
                if used_here.is_empty() {
                    dropped_from_index += 1;
                    continue;
                }
                return Err(refuse(format!(
                    "pack {} holds data snapshots use, but it is missing from storage",
                    pack_path(name)
                )));
            }
            let total: u64 = info.blobs.iter().map(|e| e.length as u64).sum();
            let kept: u64 = used_here.iter().map(|e| e.length as u64).sum();
            let fate = if used_here.is_empty() {
                Fate::Delete
            } else if used_here.len() < info.blobs.len()
                && (total - kept) as f64 >= opts.repack_unused * total as f64
            {
                Fate::Repack(used_here)
            } else {
                Fate::Keep
            };
            fates.push((*name, fate));
        }
        let unindexed: Vec<&String> = stored
            .iter()
            .filter(|(name, _)| !infos.contains_key(name))
            .map(|(_, (path, _))| path)
            .collect();

        // New packs for the rewritten ones, and the packs that stay.
        let mut staying: Vec<PackInfo> = Vec::new();
        let mut doomed: Vec<String> = unindexed.iter().map(|p| p.to_string()).collect();
        let mut writer = PackWriter::new(&self.keys.blob);
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
        let mut written: Vec<PackInfo> = Vec::new();
        // Stored bytes of the blobs that move to new packs.
        let mut moving = 0u64;
        for (name, fate) in &fates {
            let info = &infos[name];
            match fate {
                Fate::Keep => staying.push(info.clone()),
                Fate::Delete => {
                    summary.packs_deleted += 1;
                    summary.blobs_removed += info.blobs.len();
                    doomed.push(pack_path(name));
                }
                Fate::Repack(keep) => {
                    summary.packs_repacked += 1;
                    summary.blobs_removed += info.blobs.len() - keep.len();
                    doomed.push(pack_path(name));
                    moving += keep.iter().map(|e| e.length as u64).sum::<u64>();
                    if opts.dry_run {
                        continue;
                    }
                    // Only the kept records (ranges close together are
                    // fetched as one by the store).
                    let ranges: Vec<_> = keep
                        .iter()
                        .map(|e| e.offset as u64..e.offset as u64 + e.length as u64)
                        .collect();
                    let records = self.storage().get_ranges(&pack_path(name), &ranges)?;
                    let key = self.pack_key(&info.salt);
                    for (e, record) in keep.iter().zip(&records) {
                        let data =
                            pack::open_blob(info, &key, e, record, |d| self.blob_id(e.kind, d))?;
                        writer.add(&mut compressor, e.kind, e.id, &data);
                        if writer.is_full() {
                            let full =
                                std::mem::replace(&mut writer, PackWriter::new(&self.keys.blob));
                            written.push(self.put_pack(full)?);
                        }
                    }
                }
            }
        }
        if !writer.is_empty() && !opts.dry_run {
            written.push(self.put_pack(writer)?);
        }
        summary.unindexed_deleted = unindexed.len();
        if opts.dry_run {
            // Estimated: the moving blobs fill new packs of the usual size.
            summary.packs_written = moving.div_ceil(pack::TARGET_PACK_SIZE as u64) as usize;
            summary.bytes_after = moving;
        } else {
            summary.packs_written = written.len();
        }
        staying.extend(written);
        summary.packs_after = staying.len()
            + if opts.dry_run {
                summary.packs_written
            } else {
                0
            };
        summary.bytes_after += staying.iter().map(|p| p.size).sum::<u64>();

        let nothing_to_do = doomed.is_empty() && dropped_from_index == 0;
        if opts.dry_run || nothing_to_do {
            summary.duration_secs = started.elapsed().as_secs_f64();
            return Ok(summary);
        }
        // New index, then away with the old one, then the packs.
        // (Index files are sealed with a random salt: a new one never has an
        // old one's name.)
        // Before each step: a lapsed lock means a backup may be running.
        crash_point(1)?;
        lock.ensure()?;
        for chunk in staying.chunks(PACKS_PER_INDEX_FILE) {
            self.write_index(chunk)?;
        }
        crash_point(2)?;
        lock.ensure()?;
        for path in &old_index_files {
            self.storage().delete(path)?;
            summary.index_files_replaced += 1;
        }
        crash_point(3)?;
        lock.ensure()?;
        for (i, path) in doomed.iter().enumerate() {
            self.storage().delete(path)?;
            if i == 0 {
                crash_point(4)?;
            }
        }
        summary.duration_secs = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Every tree and data blob the snapshots use. Fails, saying why, if a
    /// tree cannot be read or a blob is not in the index.
    fn used_blobs(
        &self,
        index: &Index,
        snapshots: &[(ObjectName, crate::Snapshot)],
    ) -> std::result::Result<HashSet<BlobId>, String> {
        let mut used: HashSet<BlobId> = HashSet::new();
        let mut trees: Vec<(ObjectName, BlobId)> =
            snapshots.iter().map(|(n, s)| (*n, s.tree)).collect();
        while let Some((snap, id)) = trees.pop() {
            if !used.insert(id) {
                continue;
            }
            let tree = self.load_tree(index, &id).map_err(|e| {
                format!(
                    "a tree of snapshot {} cannot be read ({e}), so what it uses is unknown",
                    snap.short()
                )
            })?;
            for node in tree.nodes {
                match node.kind {
                    NodeKind::Dir { subtree } => trees.push((snap, subtree)),
                    NodeKind::File { content, .. } => {
                        for blob in content {
                            if !index.contains(BlobType::Data, &blob) {
                                return Err(format!(
                                    "snapshot {} uses data blob {}, which is {}",
                                    snap.short(),
                                    blob.short(),
                                    index.missing_reason()
                                ));
                            }
                            used.insert(blob);
                        }
                    }
                    NodeKind::Symlink { .. } => {}
                }
            }
        }
        Ok(used)
    }

    fn put_pack(&self, pack: PackWriter) -> Result<PackInfo> {
        let (bytes, info) = pack.finish()?;
        self.storage().put(&pack_path(&info.name), bytes, false)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use arca_crypto::BackupKey;

    use super::*;
    use crate::{BackupOptions, CheckOptions, KeepPolicy, RestoreOptions, Storage};

    fn key() -> BackupKey {
        BackupKey::from_bytes([5; 32])
    }

    fn random(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        arca_crypto::fill_random(&mut v);
        v
    }

    fn objects(storage: &Storage) -> Vec<String> {
        let mut all = Vec::new();
        for dir in ["data", "index", "snapshots", "settings", "locks"] {
            all.extend(storage.list(dir).unwrap().into_iter().map(|(p, _)| p));
        }
        all.sort();
        all
    }

    fn data_bytes(storage: &Storage) -> u64 {
        storage.list("data").unwrap().iter().map(|(_, s)| s).sum()
    }

    fn backup(repo: &Repository, src: &Path) -> String {
        repo.backup(src, &BackupOptions::default())
            .unwrap()
            .snapshot
    }

    fn restored(repo: &Repository, snapshot: &str, dir: &Path) -> Vec<(String, Vec<u8>)> {
        let out = dir.join(format!("out-{snapshot}"));
        repo.restore(snapshot, &out, &RestoreOptions::default())
            .unwrap();
        let mut files: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// Three backups: `a` replaced after the first, `c` added in the third.
    fn three_generations(dir: &Path) -> (Repository, Storage, [String; 3], Vec<u8>) {
        let storage = Storage::memory();
        let repo = Repository::init(storage.clone(), &key()).unwrap();
        let src = dir.join("src");
        fs::create_dir_all(&src).unwrap();
        let b = random(2 << 20);
        fs::write(src.join("a"), random(3 << 20)).unwrap();
        fs::write(src.join("b"), &b).unwrap();
        let s1 = backup(&repo, &src);
        fs::write(src.join("a"), random(3 << 20)).unwrap();
        let s2 = backup(&repo, &src);
        fs::write(src.join("c"), random(1 << 20)).unwrap();
        let s3 = backup(&repo, &src);
        (repo, storage, [s1, s2, s3], b)
    }

    #[test]
    fn prune_frees_what_only_forgotten_snapshots_used_and_the_rest_restores() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, storage, [s1, s2, s3], b) = three_generations(dir.path());
        let before_2 = restored(&repo, &s2, dir.path());
        let before_3 = restored(&repo, &s3, dir.path());
        let bytes_before = data_bytes(&storage);

        let forgot = repo.forget(&[s1[..8].to_string()], &KeepPolicy::default(), false);
        assert_eq!(forgot.unwrap().removed.len(), 1);
        let summary = repo.prune(&PruneOptions::default()).unwrap();
        // The first pack held the old `a` (unused now) and `b` (still used).
        assert_eq!(summary.packs_repacked, 1, "{summary:?}");
        assert_eq!(summary.packs_written, 1, "{summary:?}");
        assert!(summary.blobs_removed > 0, "{summary:?}");
        let freed = bytes_before - data_bytes(&storage);
        assert!(freed > 3 << 20 && freed < 4 << 20, "freed {freed} bytes");
        assert_eq!(summary.bytes_after, data_bytes(&storage));

        let report = repo.check(&CheckOptions { read_data: true }).unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        let again = Repository::open(storage.clone(), &key()).unwrap();
        assert_eq!(restored(&again, &s2, &dir.path().join("x")), before_2);
        assert_eq!(restored(&again, &s3, &dir.path().join("x")), before_3);
        assert!(before_3.iter().any(|(n, d)| n == "b" && *d == b));

        // Nothing left to do: nothing changes.
        let objects_now = objects(&storage);
        let second = repo.prune(&PruneOptions::default()).unwrap();
        assert_eq!(second.packs_deleted + second.packs_repacked, 0);
        assert_eq!(objects(&storage), objects_now);
    }

    #[test]
    fn a_dry_run_changes_nothing_and_forgetting_everything_frees_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, storage, ids, _) = three_generations(dir.path());
        let all = objects(&storage);
        let dry = repo.forget(&ids, &KeepPolicy::default(), true);
        assert_eq!(dry.unwrap().removed.len(), 3);
        assert_eq!(objects(&storage), all);
        let forgot = repo.forget(&ids, &KeepPolicy::default(), false);
        assert_eq!(forgot.unwrap().kept.len(), 0);
        let plan = repo
            .prune(&PruneOptions {
                dry_run: true,
                ..Default::default()
            })
            .unwrap();
        assert!(plan.packs_deleted > 0 && plan.bytes_after == 0, "{plan:?}");
        let after_forget = objects(&storage);
        assert_eq!(
            objects(&storage),
            after_forget,
            "a dry run wrote or deleted"
        );
        let done = repo.prune(&PruneOptions::default()).unwrap();
        assert_eq!(done.packs_deleted, plan.packs_deleted);
        assert!(storage.list("data").unwrap().is_empty());
        assert!(storage.list("index").unwrap().is_empty());
        assert!(repo.check(&CheckOptions::default()).unwrap().is_ok());
    }

    #[test]
    fn leftover_packs_of_an_interrupted_backup_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, storage, [_, _, s3], _) = three_generations(dir.path());
        let mut stray = PackWriter::new(&repo.keys.blob);
        let mut z = zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap();
        stray.add(&mut z, BlobType::Data, BlobId([9; 32]), b"never indexed");
        repo.put_pack(stray).unwrap();
        let summary = repo.prune(&PruneOptions::default()).unwrap();
        assert_eq!(summary.unindexed_deleted, 1, "{summary:?}");
        let report = repo.check(&CheckOptions { read_data: true }).unwrap();
        assert!(report.is_ok() && report.notes.is_empty(), "{report:?}");
        restored(&repo, &s3, dir.path());
        assert_eq!(storage.list("data").unwrap().len(), summary.packs_after);
    }

    /// Every file below `dir`, as (relative path, contents), sorted.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn nested_folders_shared_by_snapshots_survive_prune_at_any_threshold() {
        for threshold in [0.0, 1.0] {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::memory();
            let repo = Repository::init(storage.clone(), &key()).unwrap();
            let src = dir.path().join("src");
            fs::create_dir_all(src.join("a/b/c")).unwrap();
            fs::write(src.join("a/b/c/deep"), random(300_000)).unwrap();
            fs::write(src.join("a/top"), random(200_000)).unwrap();
            let s1 = backup(&repo, &src);
            // `a` changes; `a/b` and `a/b/c` stay the same trees.
            fs::write(src.join("a/top"), random(200_000)).unwrap();
            fs::create_dir_all(src.join("x/y")).unwrap();
            fs::write(src.join("x/y/new"), random(100_000)).unwrap();
            let s2 = backup(&repo, &src);
            let s3 = backup(&repo, &src);
            repo.forget(&[s1], &KeepPolicy::default(), false).unwrap();
            let summary = repo
                .prune(&PruneOptions {
                    dry_run: false,
                    repack_unused: threshold,
                })
                .unwrap();
            assert!(summary.blobs_removed > 0 || threshold == 1.0, "{summary:?}");
            let report = repo.check(&CheckOptions { read_data: true }).unwrap();
            assert!(report.is_ok(), "{threshold}: {:?}", report.errors);
            for s in [&s2, &s3] {
                let out = dir.path().join(format!("out-{s}"));
                repo.restore(s, &out, &RestoreOptions::default()).unwrap();
                assert!(
                    files(&out) == files(&src),
                    "{threshold}: snapshot {s} changed"
                );
            }
        }
    }

    #[test]
    fn blobs_stored_twice_stay_restorable_whichever_copy_prune_keeps() {
        for threshold in [0.0, 0.25, 1.0] {
            let dir = tempfile::tempdir().unwrap();
            let (repo, _storage, [s1, s2, s3], _) = three_generations(dir.path());
            let want_2 = restored(&repo, &s2, dir.path());
            let want_3 = restored(&repo, &s3, dir.path());
            // A second copy of every blob in one more pack, listed by one
            // more index file: what two devices backing up the same data at
            // once leave behind. Which copy the index finds first depends on
            // the listing order of index files.
            let index = repo.load_index().unwrap();
            let mut copy = PackWriter::new(&repo.keys.blob);
            let mut z = zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap();
            let mut ids: Vec<BlobId> = index.ids().copied().collect();
            ids.sort_by_key(|id| id.0);
            for id in ids {
                let kind = index.get(&id).unwrap().entry.kind;
                let data = repo.read_blob(&index, kind, &id).unwrap();
                copy.add(&mut z, kind, id, &data);
            }
            let info = repo.put_pack(copy).unwrap();
            repo.write_index(&[info]).unwrap();

            repo.forget(&[s1], &KeepPolicy::default(), false).unwrap();
            repo.prune(&PruneOptions {
                dry_run: false,
                repack_unused: threshold,
            })
            .unwrap();
            let report = repo.check(&CheckOptions { read_data: true }).unwrap();
            assert!(report.is_ok(), "{threshold}: {:?}", report.errors);
            let out = dir.path().join("after");
            assert_eq!(restored(&repo, &s2, &out), want_2, "{threshold}");
            assert_eq!(restored(&repo, &s3, &out), want_3, "{threshold}");
            // Prune again: still whole.
            repo.prune(&PruneOptions::default()).unwrap();
            assert_eq!(restored(&repo, &s3, &dir.path().join("again")), want_3);
        }
    }

    #[test]
    fn a_prune_killed_after_any_step_loses_nothing_and_the_next_one_finishes() {
        for step in 1..=4u8 {
            let dir = tempfile::tempdir().unwrap();
            let (repo, _storage, [s1, s2, s3], _) = three_generations(dir.path());
            let want_2 = restored(&repo, &s2, dir.path());
            let want_3 = restored(&repo, &s3, dir.path());
            repo.forget(&[s1], &KeepPolicy::default(), false).unwrap();
            // Rewrite whatever is partly unused, so every step has work.
            let opts = PruneOptions {
                dry_run: false,
                repack_unused: 0.0,
            };
            CRASH_AFTER.with(|c| c.set(step));
            let e = repo.prune(&opts).unwrap_err().to_string();
            CRASH_AFTER.with(|c| c.set(0));
            assert!(e.contains("simulated crash"), "{step}: {e}");

            let report = repo.check(&CheckOptions { read_data: true }).unwrap();
            assert!(report.is_ok(), "after step {step}: {:?}", report.errors);
            let out = dir.path().join(format!("crashed-{step}"));
            assert_eq!(restored(&repo, &s2, &out), want_2, "after step {step}");
            assert_eq!(restored(&repo, &s3, &out), want_3, "after step {step}");

            repo.prune(&opts).unwrap();
            let report = repo.check(&CheckOptions { read_data: true }).unwrap();
            assert!(report.is_ok(), "{step}: {:?}", report.errors);
            assert!(report.notes.is_empty(), "{step}: {:?}", report.notes);
            let out = dir.path().join(format!("finished-{step}"));
            assert_eq!(restored(&repo, &s3, &out), want_3, "{step}");
        }
    }

    #[test]
    fn prune_refuses_when_a_snapshot_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, storage, [s1, ..], _) = three_generations(dir.path());
        let path = format!("snapshots/{s1}");
        let mut bytes = storage.get(&path).unwrap().unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        storage.delete(&path).unwrap();
        storage.put(&path, bytes.into(), false).unwrap();
        let all = objects(&storage);
        let e = repo
            .prune(&PruneOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot run") && e.contains(&s1[..8]), "{e}");
        assert_eq!(objects(&storage), all);
        // As the message says: forget the damaged snapshot, then prune.
        let forgot = repo
            .forget(&[s1[..8].to_string()], &KeepPolicy::default(), false)
            .unwrap();
        assert_eq!(forgot.removed_unreadable.len(), 1);
        assert_eq!(forgot.kept.len(), 2);
        repo.prune(&PruneOptions::default()).unwrap();
        assert!(
            repo.check(&CheckOptions { read_data: true })
                .unwrap()
                .is_ok()
        );
    }
}
