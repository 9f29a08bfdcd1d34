//! The password flows against one vault for one account: enroll, recover,
//! change and remove the password, and read the guess counter.
//!
//! `docs/vault-protocol.md` is the protocol; the cryptographic steps are
//! `arca_vault_api::client`, this module adds the HTTP round trips and turns
//! every failure into a [`ClientError`] a UI can act on.

use std::fmt;
use std::sync::OnceLock;

use arca_crypto::{BackupKey, KEY_LEN};
use arca_vault_api::client::{self, ClientError as StepError};
use arca_vault_api::{
    AccountId, InfoResponse, KSF_VERSION, PROTOCOL, RecoverFinishRequest, RecoverFinishResponse,
    RecoverStartRequest, RecoverStartResponse, RegisterFinishRequest, RegisterFinishResponse,
    RegisterStartRequest, RegisterStartResponse, StatusResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::http::{Http, Method, Policy};
use crate::token::account_from_token;

/// A client of one Backup Key Vault, signed in as one account (the bearer
/// token's `iss`/`sub`). Blocking; cheap to share between threads by
/// reference.
pub struct VaultClient {
    http: Http,
    account: AccountId,
    /// `GET /v1/info`, fetched on first need and then kept: the vault id is
    /// the OPAQUE server identity and never changes for a vault.
    info: OnceLock<InfoResponse>,
}

impl fmt::Debug for VaultClient {
    // Never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("vault", &self.http.base())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A client of the vault at `base_url` (for example
    /// `https://vault.example`), authenticated by `token`, a JWT from the
    /// app's account system. Nothing is sent yet: the vault is first
    /// contacted by the first operation, so this works offline.
    ///
    /// Fails with [`ClientError::TokenRejected`] if the token names no
    /// account (`iss` and `sub`), and [`ClientError::Protocol`] for an
    /// address that is not an http(s) URL.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        Self::build(base_url, token, None)
    }

    /// Like [`VaultClient::new`], trusting exactly the PEM certificates in
    /// `pem_certs` (for a vault with a private CA or a self-signed
    /// certificate) instead of the built-in web roots.
    pub fn with_tls_roots(
        base_url: &str,
        token: &str,
        pem_certs: &[u8],
    ) -> Result<Self, ClientError> {
        Self::build(base_url, token, Some(pem_certs))
    }

    fn build(base_url: &str, token: &str, roots: Option<&[u8]>) -> Result<Self, ClientError> {
        let account = account_from_token(token.trim())?;
        Ok(Self {
            http: Http::new(base_url, token, roots)?,
            account,
            info: OnceLock::new(),
        })
    }

    /// The account the token names.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The vault's address, as used.
    pub fn base_url(&self) -> &str {
        self.http.base()
    }

    /// The vault's id (its `GET /v1/info`), after checking that it speaks
    /// this client's protocol and key-stretching version.
    pub fn vault_id(&self) -> Result<&str, ClientError> {
        Ok(&self.info()?.vault_id)
    }

    fn info(&self) -> Result<&InfoResponse, ClientError> {
        if let Some(info) = self.info.get() {
            return Ok(info);
        }
        let info: InfoResponse = self.get("/v1/info", false)?;
        if info.protocol != PROTOCOL {
            return Err(ClientError::Protocol(format!(
                "{} speaks {:?}, not {PROTOCOL:?}: check the vault address",
                self.http.base(),
                info.protocol
            )));
        }
        if info.ksf_version != KSF_VERSION {
            return Err(ClientError::Protocol(format!(
                "the vault uses key-stretching version {}, this app knows version {KSF_VERSION}: \
                 update the app",
                info.ksf_version
            )));
        }
        // A concurrent first call may have set it; both fetched the same.
        Ok(self.info.get_or_init(|| info))
    }

    /// Makes a new backup key and protects it with `password` in the vault.
    ///
    /// Replaces any password backup this account already has: the old
    /// escrowed key is erased and only its recovery key still opens what it
    /// encrypted. To change the password of an existing key use
    /// [`VaultClient::change_password`]; to escrow an existing key,
    /// [`VaultClient::enroll_key`].
    pub fn enroll(&self, password: &str) -> Result<BackupKey, ClientError> {
        let key = BackupKey::generate();
        self.enroll_key(&key, password)?;
        Ok(key)
    }

    /// Protects the given backup key with `password` in the vault, replacing
    /// any password backup this account has. The guess counter starts at 0.
    pub fn enroll_key(&self, key: &BackupKey, password: &str) -> Result<(), ClientError> {
        let vault_id = self.info()?.vault_id.clone();
        let (state, request) = client::register_start(password.as_bytes()).map_err(step)?;
        let start: RegisterStartResponse = self.post(
            "/v1/register/start",
            &RegisterStartRequest {
                registration_request: request.into(),
            },
            // Stateless on the vault: a repeat costs nothing.
            Policy::Retry,
        )?;
        let (upload, wrap) = client::register_finish(
            state,
            password.as_bytes(),
            &start.registration_response.0,
            &self.account,
            &vault_id,
        )
        .map_err(step)?;
        let _: RegisterFinishResponse = self.post(
            "/v1/register/finish",
            &RegisterFinishRequest {
                registration_upload: upload.into(),
                sealed_secret: wrap.wrap(key.expose_secret()).into(),
            },
            // Repeating is harmless to the record, but a lost answer makes
            // the outcome unknown; the caller re-enrolls from the start,
            // which is what a user pressing "retry" does anyway.
            Policy::Once,
        )?;
        Ok(())
    }

    /// Gets the backup key back with `password`. Costs one of the account's
    /// guesses whether or not the password is right (a right one resets the
    /// count).
    ///
    /// [`ClientError::WrongPassword`] says how many guesses remain,
    /// [`ClientError::Locked`] that none do and the key is gone,
    /// [`ClientError::NotEnrolled`] that the account has no password backup.
    pub fn recover(&self, password: &str) -> Result<BackupKey, ClientError> {
        // Before the guess is spent: a vault we cannot use must not cost one.
        let vault_id = self.info()?.vault_id.clone();
        let (state, request) = client::recover_start(password.as_bytes()).map_err(step)?;
        let start: RecoverStartResponse = self.post(
            "/v1/recover/start",
            &RecoverStartRequest {
                credential_request: request.into(),
            },
            // The vault counts the guess before it answers: never repeat.
            Policy::Once,
        )?;
        let finish = match client::recover_finish(
            state,
            password.as_bytes(),
            &start.credential_response.0,
            &self.account,
            &vault_id,
        ) {
            Ok(f) => f,
            Err(StepError::WrongPassword) => return Err(self.wrong_password(start.attempts_left)),
            Err(e) => return Err(step(e)),
        };
        let done: RecoverFinishResponse = self.post(
            "/v1/recover/finish",
            &RecoverFinishRequest {
                login_state: start.login_state,
                credential_finalization: finish.finalization.clone().into(),
            },
            // The login state works once.
            Policy::Once,
        )?;
        let secret = client::open_recovered(&finish, &done.encrypted_secret.0).map_err(step)?;
        let bytes: Zeroizing<[u8; KEY_LEN]> =
            Zeroizing::new(secret.as_slice().try_into().map_err(|_| {
                ClientError::Protocol(format!(
                    "the escrowed secret is {} bytes, not a {KEY_LEN}-byte backup key",
                    secret.len()
                ))
            })?);
        Ok(BackupKey::from_bytes(*bytes))
    }

    /// A password that did not open the vault's answer. An account without
    /// a record gets a dummy answer that no password opens (so the vault
    /// does not reveal who is enrolled to someone holding only a token); we
    /// hold the token, so ask the status to tell the two apart.
    fn wrong_password(&self, attempts_left: u32) -> ClientError {
        match self.status() {
            Ok(s) if !s.registered => ClientError::NotEnrolled,
            // If the status cannot be read, the guess was still counted:
            // wrong password is the safe thing to show.
            _ => ClientError::WrongPassword { attempts_left },
        }
    }

    /// Changes the password protecting the backup key: recovers it with
    /// `old` (one guess), then enrolls the same key under `new`. Returns the
    /// key, which is unchanged, so repositories and recovery keys stay
    /// valid.
    pub fn change_password(&self, old: &str, new: &str) -> Result<BackupKey, ClientError> {
        let key = self.recover(old)?;
        self.enroll_key(&key, new)?;
        Ok(key)
    }

    /// Turns password backup off: the vault deletes the escrowed key. The
    /// recovery key still opens the backup. [`ClientError::NotEnrolled`] if
    /// there was nothing to delete.
    pub fn remove_password(&self) -> Result<(), ClientError> {
        self.http.call(
            Method::Delete,
            "/v1/account",
            None,
            true,
            Policy::RetryDelete,
        )?;
        Ok(())
    }

    /// Whether the account has a password backup and how many guesses remain.
    pub fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get("/v1/status", true)
    }

    /// Guesses left before the escrowed key is destroyed (0 when locked).
    pub fn attempts_left(&self) -> Result<u32, ClientError> {
        Ok(self.status()?.attempts_left)
    }

    fn get<R: DeserializeOwned>(&self, path: &str, auth: bool) -> Result<R, ClientError> {
        let answer = self
            .http
            .call(Method::Get, path, None, auth, Policy::Retry)?;
        parse(path, &answer.body)
    }

    fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        policy: Policy,
    ) -> Result<R, ClientError> {
        let body = serde_json::to_value(body)
            .map_err(|e| ClientError::Protocol(format!("cannot encode {path}: {e}")))?;
        let answer = self
            .http
            .call(Method::Post, path, Some(&body), true, policy)?;
        parse(path, &answer.body)
    }
}

fn parse<R: DeserializeOwned>(path: &str, body: &str) -> Result<R, ClientError> {
    serde_json::from_str(body)
        .map_err(|e| ClientError::Protocol(format!("invalid answer to {path}: {e}")))
}

/// A failed local protocol step: the vault's message did not parse or open.
fn step(e: StepError) -> ClientError {
    match e {
        // Only recover_finish reports this, and `recover` handles it there
        // with the attempts left; no other step can.
        StepError::WrongPassword => {
            ClientError::Protocol("the password did not open the vault's answer".into())
        }
        StepError::Protocol(m) => ClientError::Protocol(m),
    }
}
