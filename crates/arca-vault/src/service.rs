//! The vault service: loads a record, runs the pure core, commits the write
//! with compare-and-swap, and only then releases the response. A lost race
//! re-reads and re-runs, so concurrent guesses are counted one by one.

use std::time::{SystemTime, UNIX_EPOCH};

use arca_vault_api::{AccountId, ErrorCode};

use crate::core::{ApiError, Outcome, VaultCore, Write};
use crate::metrics::Metrics;
use crate::record::{self, Versioned};
use crate::store::Store;

/// How many times one request re-runs after losing a compare-and-swap.
const MAX_RACES: usize = 1000;

pub struct Vault<S: Store> {
    pub core: VaultCore,
    pub store: S,
    pub metrics: Metrics,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl<S: Store> Vault<S> {
    async fn load(&self, account: &AccountId) -> Result<Option<Versioned>, ApiError> {
        let row = self
            .store
            .get(&account.credential_id())
            .await
            .map_err(|e| {
                self.metrics.store_error();
                tracing::error!(error = %e, "record store read failed");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the record store is unavailable: retry later",
                )
            })?;
        row.map(|r| record::open(self.core.record_key(), account, &r))
            .transpose()
            .map_err(|e| {
                tracing::error!(error = %e, "record failed authentication");
                ApiError::new(
                    ErrorCode::Internal,
                    "the stored record failed authentication",
                )
            })
    }

    /// Runs `step` on the current record until its write commits.
    pub async fn run<T>(
        &self,
        account: &AccountId,
        step: impl Fn(Option<&Versioned>, i64) -> Outcome<T>,
    ) -> Result<T, ApiError> {
        let key = account.credential_id();
        for _ in 0..MAX_RACES {
            let current = self.load(account).await?;
            let outcome = step(current.as_ref(), now());
            let expected = current.as_ref().map(|c| c.version);
            let new = match &outcome.write {
                Write::None => return outcome.result,
                Write::Put(v) => Some(record::seal(
                    self.core.record_key(),
                    account,
                    v.version,
                    &v.record,
                )),
                Write::Delete => None,
            };
            match self
                .store
                .compare_and_swap(&key, expected, new, !outcome.lazy)
                .await
            {
                Ok(true) => {
                    if outcome.counted {
                        self.metrics.guess_counted();
                    }
                    if outcome.destroyed {
                        self.metrics.lockout();
                        tracing::warn!(account = %account, "guesses used up: escrowed secret destroyed");
                    }
                    return outcome.result;
                }
                Ok(false) => continue,
                Err(e) => {
                    self.metrics.store_error();
                    tracing::error!(error = %e, "record store write failed");
                    return Err(ApiError::new(
                        ErrorCode::StoreUnavailable,
                        "the record store is unavailable: retry later",
                    ));
                }
            }
        }
        Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "too many concurrent requests for this account: retry later",
        ))
    }
}
