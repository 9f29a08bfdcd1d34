//! The repository API on `object_store`'s in-memory backend.

use std::fs;

use arca_crypto::BackupKey;
use arca_repo::{BackupOptions, CheckOptions, Error, Repository, RestoreOptions, Storage};

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
