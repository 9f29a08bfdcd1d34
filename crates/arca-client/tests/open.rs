//! Opening a repository with the password (through the real vault) or with
//! the recovery key.

mod common;

use arca_client::{ClientError, OpenError, open_with_password, open_with_recovery_key};
use arca_repo::{Repository, Storage};
use common::*;

const PASSWORD: &str = "open sesame, but longer";

#[test]
fn the_password_and_the_recovery_key_open_the_repository() {
    let v = VaultDir::new();
    let server = v.start();
    let vault = client(&server, "kim");
    let key = vault.enroll(PASSWORD).unwrap();

    let repo_dir = tempfile::tempdir().unwrap();
    let storage = || Storage::local(repo_dir.path(), false).unwrap();
    let created = Repository::init(storage(), &key).unwrap();
    let id = created.config().id;
    drop(created);

    // On a new device: the password alone.
    let new_device = client(&server, "kim");
    let (repo, got) = open_with_password(storage(), &new_device, PASSWORD).unwrap();
    assert_eq!(repo.config().id, id);
    assert_eq!(got, key);

    // A wrong password opens nothing and says how many guesses remain.
    let e = open_with_password(storage(), &new_device, "open sesame").unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Vault(ClientError::WrongPassword { attempts_left: 9 })
        ),
        "{e:?}"
    );
    assert!(!e.retryable());

    // The written-down key, as typed (upper case, spaces instead of dashes).
    let written = key.to_recovery_key().expose().to_string();
    let repo = open_with_recovery_key(storage(), &written).unwrap();
    assert_eq!(repo.config().id, id);
    let typed = written.to_uppercase().replace('-', " ");
    assert_eq!(
        open_with_recovery_key(storage(), &typed)
            .unwrap()
            .config()
            .id,
        id
    );
}

#[test]
fn wrong_keys_are_told_apart() {
    let v = VaultDir::new();
    let server = v.start();
    let vault = client(&server, "lee");
    // The password protects a key, but this repository was made with another.
    vault.enroll(PASSWORD).unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let storage = || Storage::local(repo_dir.path(), false).unwrap();
    let other = arca_client::BackupKey::generate();
    Repository::init(storage(), &other).unwrap();

    let e = open_with_password(storage(), &vault, PASSWORD).unwrap_err();
    assert!(matches!(e, OpenError::KeyMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("recovery key"), "{e}");

    // A recovery key of another repository, and one mistyped.
    let e = open_with_recovery_key(
        storage(),
        arca_client::BackupKey::generate()
            .to_recovery_key()
            .expose(),
    )
    .unwrap_err();
    assert!(
        matches!(e, OpenError::Repository(arca_repo::Error::WrongKey { .. })),
        "{e:?}"
    );
    let e = open_with_recovery_key(storage(), "1234-5678").unwrap_err();
    assert!(matches!(e, OpenError::RecoveryKey(_)), "{e:?}");
    assert!(open_with_recovery_key(storage(), other.to_recovery_key().expose()).is_ok());

    // No repository at all.
    let empty = tempfile::tempdir().unwrap();
    let e = open_with_recovery_key(
        Storage::local(empty.path(), false).unwrap(),
        other.to_recovery_key().expose(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Repository(arca_repo::Error::NoRepository { .. })
        ),
        "{e:?}"
    );
}
