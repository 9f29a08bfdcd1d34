//! The arca SDK an app embeds: protect the backup key with a password
//! through the Backup Key Vault (`arca-vault`), and open an arca repository
//! with that password or with the 64-digit recovery key.
//!
//! The API is blocking (no async runtime needed): call it from a worker
//! thread, not a UI thread. Password steps run Argon2id (64 MiB, a fraction
//! of a second) and one or two HTTPS round trips.
//!
//! ```no_run
//! use arca_client::{VaultClient, open_with_password};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vault = VaultClient::new("https://vault.example", "<JWT from the app's account system>")?;
//! // First device: make a backup key and protect it with a password.
//! let key = vault.enroll("correct horse battery staple")?;
//! # drop(key);
//! // Later, on a new phone: the password gets the same key back.
//! let storage = arca_repo::Storage::local("/backups/phone".as_ref(), false)?;
//! let (repo, key) = open_with_password(storage, &vault, "correct horse battery staple")?;
//! # drop((repo, key));
//! # Ok(()) }
//! ```
//!
//! Every failure is a [`ClientError`] (or an [`OpenError`] around one) whose
//! variants say what a UI should do: ask for the password again, offer the
//! recovery key, get a new sign-in token, or retry later.

mod error;
mod http;
mod open;
mod token;
mod vault;

pub use arca_crypto::BackupKey;
pub use arca_vault_api::{AccountId, ErrorCode, StatusResponse};
pub use error::ClientError;
pub use open::{OpenError, open_with_password, open_with_recovery_key};
pub use vault::VaultClient;

#[cfg(test)]
mod tests {
    /// Apps share one client and open repositories from worker threads.
    #[test]
    fn clients_and_errors_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::VaultClient>();
        send_sync::<super::ClientError>();
        send_sync::<super::OpenError>();
    }
}
