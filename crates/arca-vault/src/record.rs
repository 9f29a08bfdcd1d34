//! Account records and how they are sealed at rest.
//!
//! The store holds `(account, version, sealed)`. `sealed` is the record
//! encrypted under the vault's record key with the account and version as
//! associated data: the database holds nothing usable, and a row copied to
//! another account or paired with another version fails to open.

use arca_crypto::SubKey;
use arca_vault_api::AccountId;
use serde::{Deserialize, Serialize};

/// One account's escrow. `Debug` shows sizes and counts, never the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Serialized OPAQUE `ServerRegistration` (the password file).
    pub registration: Vec<u8>,
    /// The client-sealed secret; `None` once destroyed after too many guesses.
    pub secret: Option<Vec<u8>>,
    /// Guesses counted since the last successful recovery.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix seconds of the last counted guess.
    pub last_attempt: i64,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field(
                "registration",
                &format_args!("{} bytes", self.registration.len()),
            )
            .field(
                "secret",
                &self
                    .secret
                    .as_ref()
                    .map(|s| format!("REDACTED ({} bytes)", s.len())),
            )
            .field("attempts", &self.attempts)
            .field("max_attempts", &self.max_attempts)
            .field("last_attempt", &self.last_attempt)
            .finish()
    }
}

impl Record {
    pub fn attempts_left(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts)
    }

    /// No more guesses, or the secret is already gone.
    pub fn locked(&self) -> bool {
        self.secret.is_none() || self.attempts >= self.max_attempts
    }
}

/// A record and the version it is stored under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub version: u64,
    pub record: Record,
}

/// What the store holds for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub version: u64,
    pub sealed: Vec<u8>,
}

fn aad(account: &AccountId, version: u64) -> Vec<u8> {
    let mut aad = b"arca vault v1 record\0".to_vec();
    aad.extend_from_slice(&account.credential_id());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// The row that stores `record` at `version`.
pub fn seal(key: &SubKey, account: &AccountId, version: u64, record: &Record) -> Row {
    let plain =
        zeroize::Zeroizing::new(postcard::to_stdvec(record).expect("records always serialize"));
    Row {
        version,
        sealed: arca_crypto::seal(key, &aad(account, version), &plain),
    }
}

/// A stored row that does not open: tampered, moved or rolled to another version.
#[derive(Debug, thiserror::Error)]
#[error("the stored record of {account} fails authentication (tampered, moved or re-versioned)")]
pub struct TamperedRecord {
    pub account: String,
}

/// Opens a stored row.
pub fn open(key: &SubKey, account: &AccountId, row: &Row) -> Result<Versioned, TamperedRecord> {
    let err = || TamperedRecord {
        account: account.to_string(),
    };
    let plain =
        arca_crypto::open(key, &aad(account, row.version), &row.sealed).map_err(|_| err())?;
    let plain = zeroize::Zeroizing::new(plain);
    let record = postcard::from_bytes(&plain).map_err(|_| err())?;
    Ok(Versioned {
        version: row.version,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            registration: vec![1, 2, 3],
            secret: Some(vec![9; 60]),
            attempts: 2,
            max_attempts: 10,
            last_attempt: 5,
        }
    }

    #[test]
    fn debug_shows_no_escrowed_bytes() {
        let shown = format!("{:?}", rec());
        assert!(
            shown.contains("REDACTED") && !shown.contains("9, 9"),
            "{shown}"
        );
    }

    #[test]
    fn rows_open_only_for_their_account_and_version() {
        let key = SubKey::from_bytes([3; 32]);
        let alice = AccountId::new("app", "alice");
        let bob = AccountId::new("app", "bob");
        let row = seal(&key, &alice, 7, &rec());
        assert_eq!(open(&key, &alice, &row).unwrap().record, rec());
        assert!(open(&key, &bob, &row).is_err(), "moved to another account");
        let rolled = Row {
            version: 6,
            sealed: row.sealed.clone(),
        };
        assert!(
            open(&key, &alice, &rolled).is_err(),
            "paired with another version"
        );
        let mut flipped = row.clone();
        flipped.sealed[40] ^= 1;
        assert!(open(&key, &alice, &flipped).is_err());
        assert!(open(&SubKey::from_bytes([4; 32]), &alice, &row).is_err());
    }
}
