//! Opening a repository the two ways a user can: with the password (the
//! vault gives the backup key back) or with the 64-digit recovery key.

use arca_crypto::{BackupKey, RecoveryKey, RecoveryKeyError};
use arca_repo::{Repository, Storage};

use crate::error::ClientError;
use crate::vault::VaultClient;

/// Why a repository did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The vault did not give the key back: see [`ClientError`] for what
    /// each case means (wrong password, locked, unreachable, ...).
    #[error(transparent)]
    Vault(#[from] ClientError),

    /// The repository could not be opened (missing, damaged, storage
    /// error, or — with a recovery key — the wrong key).
    #[error(transparent)]
    Repository(#[from] arca_repo::Error),

    /// The typed recovery key is not 64 hex digits. Not retryable as is:
    /// ask the user to check it.
    #[error(transparent)]
    RecoveryKey(#[from] RecoveryKeyError),

    /// The password was right, but the key the vault escrows is not this
    /// repository's: the password backup was set up for another repository
    /// (or re-enrolled with a new key). The recovery key still opens it.
    #[error(
        "the password is right, but the key it protects does not open the backup at \
         {location}: the password was set up for another backup; open this one with its \
         64-digit recovery key"
    )]
    KeyMismatch { location: String },
}

impl OpenError {
    /// Whether the same call may succeed later without the user changing
    /// anything (the vault or storage was unreachable).
    pub fn retryable(&self) -> bool {
        match self {
            OpenError::Vault(e) => e.retryable(),
            // Storage errors may be transient (a network store), but the
            // repository layer does not tell; let the user decide.
            OpenError::Repository(_)
            | OpenError::RecoveryKey(_)
            | OpenError::KeyMismatch { .. } => false,
        }
    }
}

/// Opens the repository in `storage` with the backup key the vault escrows
/// behind `password`. Costs one guess (see [`VaultClient::recover`]).
/// Returns the key too, for later vault operations (such as
/// [`VaultClient::enroll_key`]) without asking for the password again.
pub fn open_with_password(
    storage: Storage,
    vault: &VaultClient,
    password: &str,
) -> Result<(Repository, BackupKey), OpenError> {
    let key = vault.recover(password)?;
    match Repository::open(storage, &key) {
        Ok(repo) => Ok((repo, key)),
        // The repository's WrongKey message talks about a typed recovery
        // key; here the key came from the vault, so say what really happened.
        Err(arca_repo::Error::WrongKey { location }) => Err(OpenError::KeyMismatch { location }),
        Err(e) => Err(e.into()),
    }
}

/// Opens the repository in `storage` with the recovery key as the user
/// typed it (any case; spaces, dashes and newlines ignored).
pub fn open_with_recovery_key(
    storage: Storage,
    recovery_key_text: &str,
) -> Result<Repository, OpenError> {
    let key = RecoveryKey::parse(recovery_key_text)?;
    Ok(Repository::open(storage, &key)?)
}
