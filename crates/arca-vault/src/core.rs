//! The vault's protocol logic, pure: `(request, current record, now) ->
//! (response, write)`. The caller commits the write with a compare-and-swap
//! and only then sends the response, so a guess is counted durably before
//! its KE2 leaves (recover-start goes further: KE2 is only computed after
//! the count is committed). No I/O here: every rule is testable without a
//! store.

use arca_crypto::SubKey;
use arca_vault_api::{
    AccountId, CONTEXT, ErrorCode, RecoverFinishResponse, RecoverStartResponse,
    RegisterFinishRequest, StatusResponse, Suite, response_key,
};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, Identifiers, RegistrationRequest,
    RegistrationUpload, ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::record::{Record, Versioned};

/// An error for the client, with its typed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub attempts_left: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            attempts_left: None,
        }
    }

    fn bad(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::BadRequest, format!("invalid {what}: {e}"))
    }

    fn locked() -> Self {
        Self {
            code: ErrorCode::Locked,
            message: "too many wrong passwords: the escrowed key has been destroyed; \
                      restore with the 64-digit recovery key if you wrote it down"
                .into(),
            attempts_left: Some(0),
        }
    }
}

/// What the caller must commit before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    None,
    /// Store `record` at `version`, if the row is still at the version read.
    Put(Versioned),
    /// Delete the row, if it is still at the version read.
    Delete,
}

/// A response and the write it depends on. The write is committed even
/// when the result is an error (for example: erasing a locked secret).
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: Result<T, ApiError>,
    pub write: Write,
    /// A guess was counted (metrics).
    pub counted: bool,
    /// The write may be lost in an OS crash without harm: it only resets a
    /// count or spends a login state, so losing it leaves the account with
    /// fewer guesses, never more. Such writes skip the fsync.
    pub lazy: bool,
    /// The secret was destroyed (metrics).
    pub destroyed: bool,
}

impl<T> Outcome<T> {
    fn reply(result: Result<T, ApiError>) -> Self {
        Self {
            result,
            write: Write::None,
            counted: false,
            destroyed: false,
            lazy: false,
        }
    }
}

/// A guess counted by recover-start, to be answered with KE2 once the
/// count is committed.
pub struct Counted {
    request: CredentialRequest<Suite>,
    /// `None`: no such account; the answer is a dummy.
    password_file: Option<ServerRegistration<Suite>>,
    /// The record version the count wrote.
    version: u64,
    attempts_left: u32,
}

/// Server login state between recover-start and recover-finish, sealed so
/// that any replica can finish what another started.
#[derive(Serialize, Deserialize)]
struct LoginState {
    account: Vec<u8>,
    /// Record version written by the start; finish requires it unchanged,
    /// which makes the state single-use.
    version: u64,
    expires: i64,
    /// Started against no record (the response was a dummy).
    dummy: bool,
    server_login: Vec<u8>,
}

const LOGIN_AAD: &[u8] = b"arca vault v1 login state";

/// The vault's secrets and settings.
pub struct VaultCore {
    setup: ServerSetup<Suite>,
    record_key: SubKey,
    login_key: SubKey,
    vault_id: String,
    max_attempts: u32,
    login_ttl: i64,
}

impl VaultCore {
    pub fn new(
        setup: ServerSetup<Suite>,
        master: &SubKey,
        vault_id: String,
        max_attempts: u32,
        login_ttl: i64,
    ) -> Self {
        Self {
            setup,
            record_key: master.derive("arca vault v1 record key"),
            login_key: master.derive("arca vault v1 login state key"),
            vault_id,
            max_attempts,
            login_ttl,
        }
    }

    pub fn record_key(&self) -> &SubKey {
        &self.record_key
    }

    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    fn params<'a>(&'a self, cred: &'a [u8]) -> ServerLoginParameters<'a, 'a> {
        ServerLoginParameters {
            context: Some(CONTEXT),
            identifiers: Identifiers {
                client: Some(cred),
                server: Some(self.vault_id.as_bytes()),
            },
        }
    }

    /// Registration step 1: evaluate the OPRF on the blinded password.
    /// Stateless.
    pub fn register_start(&self, account: &AccountId, request: &[u8]) -> Result<Vec<u8>, ApiError> {
        let request = RegistrationRequest::<Suite>::deserialize(request)
            .map_err(|e| ApiError::bad("registration request", e))?;
        let start =
            ServerRegistration::<Suite>::start(&self.setup, request, &account.credential_id())
                .map_err(|e| ApiError::bad("registration request", e))?;
        Ok(start.message.serialize().to_vec())
    }

    /// Registration step 2: store the password file and the sealed secret.
    /// Replaces (and so erases) any earlier secret; guesses start afresh for
    /// the new one only.
    pub fn register_finish(
        &self,
        request: &RegisterFinishRequest,
        current: Option<&Versioned>,
        now: i64,
    ) -> Outcome<u32> {
        let upload = match RegistrationUpload::<Suite>::deserialize(&request.registration_upload.0)
        {
            Ok(u) => u,
            Err(e) => return Outcome::reply(Err(ApiError::bad("registration upload", e))),
        };
        if request.sealed_secret.0.is_empty() || request.sealed_secret.0.len() > 1024 {
            return Outcome::reply(Err(ApiError::new(
                ErrorCode::BadRequest,
                "sealed_secret must be 1 to 1024 bytes",
            )));
        }
        let registration = ServerRegistration::<Suite>::finish(upload);
        let record = Record {
            registration: registration.serialize().to_vec(),
            secret: Some(request.sealed_secret.0.clone()),
            attempts: 0,
            max_attempts: self.max_attempts,
            last_attempt: now,
        };
        Outcome {
            result: Ok(self.max_attempts),
            write: Write::Put(Versioned {
                version: current.map_or(1, |c| c.version + 1),
                record,
            }),
            counted: false,
            destroyed: false,
            lazy: false,
        }
    }

    /// If guesses are used up and no counted login can still finish,
    /// destroy the secret.
    fn settle(&self, current: &Versioned, now: i64) -> Option<Versioned> {
        let r = &current.record;
        (r.secret.is_some()
            && r.attempts >= r.max_attempts
            && now >= r.last_attempt + self.login_ttl)
            .then(|| Versioned {
                version: current.version + 1,
                record: Record {
                    secret: None,
                    ..r.clone()
                },
            })
    }

    /// Recovery step 1a: plan the counted guess. Cheap (parsing only): the
    /// caller commits the count, and only then has [`Self::answer_start`]
    /// compute KE2, so a request that loses a compare-and-swap race and
    /// re-runs costs no OPAQUE work.
    pub fn recover_start(
        &self,
        request: &[u8],
        current: Option<&Versioned>,
        now: i64,
    ) -> Outcome<Counted> {
        let request = match CredentialRequest::<Suite>::deserialize(request) {
            Ok(r) => r,
            Err(e) => return Outcome::reply(Err(ApiError::bad("credential request", e))),
        };
        let (password_file, write, attempts_left, version) = match current {
            None => (None, Write::None, self.max_attempts - 1, 0),
            Some(cur) if cur.record.locked() => {
                let mut out = Outcome::reply(Err(ApiError::locked()));
                if let Some(erased) = self.settle(cur, now) {
                    out.write = Write::Put(erased);
                    out.destroyed = true;
                }
                return out;
            }
            Some(cur) => {
                let file = match ServerRegistration::<Suite>::deserialize(&cur.record.registration)
                {
                    Ok(f) => f,
                    Err(e) => {
                        return Outcome::reply(Err(ApiError::new(
                            ErrorCode::Internal,
                            format!("stored registration is unreadable: {e}"),
                        )));
                    }
                };
                let counted = Versioned {
                    version: cur.version + 1,
                    record: Record {
                        attempts: cur.record.attempts + 1,
                        last_attempt: now,
                        ..cur.record.clone()
                    },
                };
                let left = counted.record.attempts_left();
                let version = counted.version;
                (Some(file), Write::Put(counted), left, version)
            }
        };
        Outcome {
            counted: password_file.is_some(),
            result: Ok(Counted {
                request,
                password_file,
                version,
                attempts_left,
            }),
            write,
            destroyed: false,
            lazy: false,
        }
    }

    /// Recovery step 1b, after the count is committed: KE2 and the sealed
    /// login state.
    pub fn answer_start(
        &self,
        account: &AccountId,
        counted: Counted,
        now: i64,
    ) -> Result<RecoverStartResponse, ApiError> {
        let cred = account.credential_id();
        let dummy = counted.password_file.is_none();
        let start = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            counted.password_file,
            counted.request,
            &cred,
            self.params(&cred),
        )
        .map_err(|e| ApiError::bad("credential request", e))?;
        let state = LoginState {
            account: cred,
            version: counted.version,
            expires: now + self.login_ttl,
            dummy,
            server_login: start.state.serialize().to_vec(),
        };
        let state =
            zeroize::Zeroizing::new(postcard::to_stdvec(&state).expect("login state serializes"));
        let sealed = arca_crypto::seal(&self.login_key, LOGIN_AAD, &state);
        Ok(RecoverStartResponse {
            credential_response: start.message.serialize().to_vec().into(),
            login_state: sealed.into(),
            attempts_left: counted.attempts_left,
        })
    }

    /// Recovery step 2: verify KE3; on success reset the count and return
    /// the sealed secret encrypted under the session key.
    pub fn recover_finish(
        &self,
        account: &AccountId,
        login_state: &[u8],
        finalization: &[u8],
        current: Option<&Versioned>,
        now: i64,
    ) -> Outcome<RecoverFinishResponse> {
        let expired = || {
            ApiError::new(
                ErrorCode::LoginExpired,
                "this login expired, was already used, or the account changed: start again",
            )
        };
        let Ok(plain) = arca_crypto::open(&self.login_key, LOGIN_AAD, login_state) else {
            return Outcome::reply(Err(ApiError::new(
                ErrorCode::BadRequest,
                "invalid login_state",
            )));
        };
        let plain = zeroize::Zeroizing::new(plain);
        let Ok(state) = postcard::from_bytes::<LoginState>(&plain) else {
            return Outcome::reply(Err(ApiError::new(
                ErrorCode::BadRequest,
                "invalid login_state",
            )));
        };
        let cred = account.credential_id();
        if state.account != cred {
            return Outcome::reply(Err(ApiError::new(
                ErrorCode::BadRequest,
                "this login_state belongs to another account",
            )));
        }
        if now > state.expires {
            return Outcome::reply(Err(expired()));
        }
        let finalization = match CredentialFinalization::<Suite>::deserialize(finalization) {
            Ok(f) => f,
            Err(e) => return Outcome::reply(Err(ApiError::bad("credential finalization", e))),
        };
        let wrong = |left: u32| ApiError {
            code: ErrorCode::WrongPassword,
            message: format!("wrong password: {left} attempt(s) left"),
            attempts_left: Some(left),
        };
        if state.dummy {
            return Outcome::reply(Err(wrong(self.max_attempts - 1)));
        }
        let Some(cur) = current.filter(|c| c.version == state.version) else {
            return Outcome::reply(Err(expired()));
        };
        let login = match ServerLogin::<Suite>::deserialize(&state.server_login) {
            Ok(l) => l,
            Err(e) => return Outcome::reply(Err(ApiError::bad("login_state", e))),
        };
        // Either way the state is spent: the version moves on.
        let next = cur.version + 1;
        match login.finish(finalization, self.params(&cred)) {
            Ok(done) => {
                let Some(secret) = cur.record.secret.clone() else {
                    return Outcome::reply(Err(ApiError::locked()));
                };
                let encrypted = arca_crypto::seal(
                    &response_key(&done.session_key),
                    arca_vault_api::RESPONSE_AAD,
                    &secret,
                );
                Outcome {
                    result: Ok(RecoverFinishResponse {
                        encrypted_secret: encrypted.into(),
                    }),
                    write: Write::Put(Versioned {
                        version: next,
                        record: Record {
                            attempts: 0,
                            ..cur.record.clone()
                        },
                    }),
                    counted: false,
                    destroyed: false,
                    lazy: true,
                }
            }
            Err(_) => Outcome {
                result: Err(wrong(cur.record.attempts_left())),
                write: Write::Put(Versioned {
                    version: next,
                    record: cur.record.clone(),
                }),
                counted: false,
                destroyed: false,
                lazy: true,
            },
        }
    }

    /// Whether the account has a password backup and how many guesses remain.
    pub fn status(&self, current: Option<&Versioned>, now: i64) -> Outcome<StatusResponse> {
        let Some(cur) = current else {
            return Outcome::reply(Ok(StatusResponse {
                registered: false,
                locked: false,
                attempts_used: 0,
                attempts_left: self.max_attempts,
                max_attempts: self.max_attempts,
            }));
        };
        let r = &cur.record;
        let mut out = Outcome::reply(Ok(StatusResponse {
            registered: true,
            locked: r.locked(),
            attempts_used: r.attempts,
            attempts_left: if r.secret.is_none() {
                0
            } else {
                r.attempts_left()
            },
            max_attempts: r.max_attempts,
        }));
        if let Some(erased) = self.settle(cur, now) {
            out.write = Write::Put(erased);
            out.destroyed = true;
        }
        out
    }

    /// Turns password backup off: the record and its secret are deleted.
    pub fn delete(&self, current: Option<&Versioned>) -> Outcome<()> {
        match current {
            None => Outcome::reply(Err(ApiError::new(
                ErrorCode::NotRegistered,
                "no password backup for this account",
            ))),
            Some(_) => Outcome {
                result: Ok(()),
                write: Write::Delete,
                counted: false,
                destroyed: false,
                lazy: false,
            },
        }
    }
}
