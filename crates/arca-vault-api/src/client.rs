//! The client's side of the protocol, as pure functions over bytes: the
//! network and storage are the caller's. Used by `arca-client` and by the
//! vault's own tests.

use arca_crypto::SubKey;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::suite::{AccountId, CONTEXT, Suite, ksf, response_key};
use crate::wire::RESPONSE_AAD;

/// Why a client step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// The server's answer does not open with this password.
    #[error("wrong password")]
    WrongPassword,
    /// The server sent something that is not a valid protocol message.
    #[error("the vault sent an invalid protocol message: {0}")]
    Protocol(String),
}

/// What the client keeps between the two registration steps.
pub struct RegistrationState(ClientRegistration<Suite>);
/// What the client keeps between the two recovery steps.
pub struct RecoveryState(ClientLogin<Suite>);

/// The OPAQUE export key, hashed to a 256-bit key that wraps the secret.
pub struct WrapKey(SubKey);

const WRAP_CONTEXT: &str = "arca vault v1 backup key wrap";
const WRAP_AAD: &[u8] = b"arca vault v1 escrowed backup key";

impl WrapKey {
    fn from_export_key(export_key: &[u8]) -> Self {
        WrapKey(SubKey::derive_from(WRAP_CONTEXT, export_key))
    }

    /// Seals the secret to escrow (the backup key). The vault stores only this.
    pub fn wrap(&self, secret: &[u8]) -> Vec<u8> {
        arca_crypto::seal(&self.0, WRAP_AAD, secret)
    }

    /// Opens what [`WrapKey::wrap`] sealed.
    pub fn unwrap(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        arca_crypto::open(&self.0, WRAP_AAD, sealed)
            .map(Zeroizing::new)
            .map_err(|_| ClientError::Protocol("the escrowed secret does not open".into()))
    }
}

fn identifiers<'a>(client: &'a [u8], vault_id: &'a str) -> Identifiers<'a> {
    Identifiers {
        client: Some(client),
        server: Some(vault_id.as_bytes()),
    }
}

/// Step 1 of registration: the blinded password.
pub fn register_start(password: &[u8]) -> Result<(RegistrationState, Vec<u8>), ClientError> {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((
        RegistrationState(start.state),
        start.message.serialize().to_vec(),
    ))
}

/// Step 2 of registration: the upload for the vault and the wrap key.
/// Runs Argon2id.
pub fn register_finish(
    state: RegistrationState,
    password: &[u8],
    response: &[u8],
    account: &AccountId,
    vault_id: &str,
) -> Result<(Vec<u8>, WrapKey), ClientError> {
    let response = RegistrationResponse::<Suite>::deserialize(response)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let cred = account.credential_id();
    let ksf = ksf();
    let finish = state
        .0
        .finish(
            &mut OsRng,
            password,
            response,
            ClientRegistrationFinishParameters::new(identifiers(&cred, vault_id), Some(&ksf)),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((
        finish.message.serialize().to_vec(),
        WrapKey::from_export_key(&finish.export_key),
    ))
}

/// Step 1 of recovery: KE1.
pub fn recover_start(password: &[u8]) -> Result<(RecoveryState, Vec<u8>), ClientError> {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((
        RecoveryState(start.state),
        start.message.serialize().to_vec(),
    ))
}

/// The outcome of recovery step 2.
pub struct RecoveryFinish {
    /// KE3, to send to the vault.
    pub finalization: Vec<u8>,
    /// Decrypts the vault's answer.
    pub response_key: SubKey,
    /// Opens the escrowed secret.
    pub wrap_key: WrapKey,
}

/// Step 2 of recovery: verifies the vault's KE2 with the password (runs
/// Argon2id). A wrong password is found here, before anything is sent.
pub fn recover_finish(
    state: RecoveryState,
    password: &[u8],
    response: &[u8],
    account: &AccountId,
    vault_id: &str,
) -> Result<RecoveryFinish, ClientError> {
    let response = CredentialResponse::<Suite>::deserialize(response)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let cred = account.credential_id();
    let ksf = ksf();
    let finish = state
        .0
        .finish(
            &mut OsRng,
            password,
            response,
            ClientLoginFinishParameters::new(
                Some(CONTEXT),
                identifiers(&cred, vault_id),
                Some(&ksf),
            ),
        )
        .map_err(|e| match e {
            opaque_ke::errors::ProtocolError::InvalidLoginError => ClientError::WrongPassword,
            other => ClientError::Protocol(other.to_string()),
        })?;
    Ok(RecoveryFinish {
        finalization: finish.message.serialize().to_vec(),
        response_key: response_key(&finish.session_key),
        wrap_key: WrapKey::from_export_key(&finish.export_key),
    })
}

/// Opens the vault's recover-finish answer and then the escrowed secret.
pub fn open_recovered(
    finish: &RecoveryFinish,
    encrypted: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let sealed = arca_crypto::open(&finish.response_key, RESPONSE_AAD, encrypted)
        .map_err(|_| ClientError::Protocol("the vault's answer does not open".into()))?;
    finish.wrap_key.unwrap(&sealed)
}
