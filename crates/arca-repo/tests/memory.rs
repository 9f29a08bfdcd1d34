//! The repository API on `object_store`'s in-memory backend.

use std::fs;
use std::path::{Path, PathBuf};

use arca_crypto::BackupKey;
use arca_repo::{BackupOptions, CheckOptions, Error, Repository, RestoreOptions, Storage};

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Moves a file's mtime a minute into the past: files modified within a
/// second of a backup are re-read by the next one.
fn age(path: &Path) {
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    filetime::set_file_mtime(path, t).unwrap();
}

fn paths(storage: &Storage, prefix: &str) -> Vec<String> {
    storage
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn backup_restore_and_check_on_in_memory_storage() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha").unwrap();
    fs::write(src.join("sub/b.txt"), "beta ".repeat(100_000)).unwrap();

    let storage = Storage::memory();
    let key = BackupKey::generate();
    let repo = Repository::init(storage.clone(), &key).unwrap();
    let summary = repo.backup(&src, &BackupOptions::default()).unwrap();
    assert_eq!(summary.files_new, 2);
    assert!(summary.bytes_added < 100_000, "text compresses");

    // Re-open from the same storage, as another process would.
    let repo = Repository::open(storage.clone(), &key).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 1);
    let out = dir.path().join("out");
    repo.restore("latest", &out, &RestoreOptions::default())
        .unwrap();
    assert_eq!(
        fs::read(out.join("sub/b.txt")).unwrap(),
        fs::read(src.join("sub/b.txt")).unwrap()
    );
    assert!(
        repo.check(&CheckOptions { read_data: true })
            .unwrap()
            .is_ok()
    );

    assert!(matches!(
        Repository::open(storage.clone(), &BackupKey::generate()),
        Err(Error::WrongKey { .. })
    ));
    assert!(matches!(
        Repository::init(storage, &key),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Repository::open(Storage::memory(), &key),
        Err(Error::NoRepository { .. })
    ));
}

#[test]
fn one_unreadable_object_does_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    write(&one.join("a.txt"), b"first source");
    write(&two.join("b.txt"), b"second source");
    let storage = Storage::memory();
    let key = BackupKey::generate();
    let repo = Repository::init(storage.clone(), &key).unwrap();
    let first = repo.backup(&one, &BackupOptions::default()).unwrap();
    let before = paths(&storage, "index");
    let second = repo.backup(&two, &BackupOptions::default()).unwrap();
    let damaged: Vec<String> = paths(&storage, "index")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(damaged.len(), 1);
    let mut bytes = storage.get(&damaged[0]).unwrap().unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    storage.put(&damaged[0], bytes.into(), false).unwrap();
    storage
        .put("snapshots/.DS_Store", b"Bud1".to_vec().into(), false)
        .unwrap();

    let repo = Repository::open(storage.clone(), &key).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    let warnings = repo.take_warnings().join("\n");
    assert!(warnings.contains("snapshots/.DS_Store"), "{warnings}");

    // The first snapshot needs nothing from the damaged index file.
    let out = dir.path().join("out1");
    repo.restore(&first.snapshot, &out, &RestoreOptions::default())
        .unwrap();
    assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"first source");
    let warnings = repo.take_warnings().join("\n");
    assert!(
        warnings.contains(&format!(
            "unreadable index file: repository object {}",
            damaged[0]
        )),
        "{warnings}"
    );
    // The second does, and says where its blobs may be.
    let err = repo
        .restore(
            &second.snapshot,
            &dir.path().join("out2"),
            &RestoreOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("it may be listed in {}", damaged[0])),
        "{err}"
    );
    // Backups go on.
    repo.backup(&one, &BackupOptions::default()).unwrap();

    let report = repo.check(&CheckOptions::default()).unwrap();
    let errors = report.errors.join("\n");
    assert!(errors.contains("snapshots/.DS_Store"), "{errors}");
    assert!(errors.contains(&damaged[0]), "{errors}");
}

#[test]
fn files_modified_just_before_a_backup_are_read_again_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("f.txt"), b"just written");
    let repo = Repository::init(Storage::memory(), &BackupKey::generate()).unwrap();
    let opts = BackupOptions::default();
    assert_eq!(repo.backup(&src, &opts).unwrap().files_new, 1);
    // Its mtime was within a second of the backup start: a change in the
    // same timestamp tick would look unchanged, so it is not trusted: it is
    // read again (and, its content being the same, counted as unmodified).
    let again = repo.backup(&src, &opts).unwrap();
    assert_eq!(
        (
            again.files_unmodified,
            again.files_changed,
            again.bytes_read
        ),
        (1, 0, 12)
    );
    age(&src.join("f.txt"));
    repo.backup(&src, &opts).unwrap();
    let settled = repo.backup(&src, &opts).unwrap();
    assert_eq!((settled.files_unmodified, settled.bytes_read), (1, 0));
}

#[test]
fn the_end_of_a_backup_makes_one_pack_not_one_per_worker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for i in 0..64u32 {
        let mut data = vec![0u8; 8192];
        arca_crypto::fill_random(&mut data);
        write(&src.join(format!("d{}/f{i}", i % 4)), &data);
    }
    let storage = Storage::memory();
    let repo = Repository::init(storage.clone(), &BackupKey::generate()).unwrap();
    let opts = BackupOptions {
        workers: 8,
        ..Default::default()
    };
    repo.backup(&src, &opts).unwrap();
    assert_eq!(paths(&storage, "data").len(), 1);
    let out = dir.path().join("out");
    repo.restore("latest", &out, &RestoreOptions::default())
        .unwrap();
    for i in 0..64u32 {
        let rel = format!("d{}/f{i}", i % 4);
        assert_eq!(
            fs::read(out.join(&rel)).unwrap(),
            fs::read(src.join(&rel)).unwrap()
        );
    }
    assert!(
        repo.check(&CheckOptions { read_data: true })
            .unwrap()
            .is_ok()
    );
}

#[test]
fn trailing_slashes_and_dot_dot_find_the_same_parent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("f.txt"), b"data");
    age(&src.join("f.txt"));
    let repo = Repository::init(Storage::memory(), &BackupKey::generate()).unwrap();
    let opts = BackupOptions::default();
    let mut slash = src.clone().into_os_string();
    slash.push("/");
    let first = repo.backup(&PathBuf::from(slash), &opts).unwrap();
    let second = repo.backup(&src.join("../src/."), &opts).unwrap();
    assert_eq!(second.parent.as_deref(), Some(first.snapshot.as_str()));
    assert_eq!(second.files_unmodified, 1);
    let third = repo.backup(&src, &opts).unwrap();
    assert_eq!(third.parent.as_deref(), Some(second.snapshot.as_str()));
    let sources: Vec<String> = repo
        .snapshots()
        .unwrap()
        .iter()
        .map(|(_, s)| s.source_display())
        .collect();
    let canonical = fs::canonicalize(&src).unwrap();
    assert!(
        sources.iter().all(|s| Path::new(s) == canonical),
        "{sources:?}"
    );
}
