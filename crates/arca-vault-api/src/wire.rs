//! JSON request and response bodies. Binary fields are base64url without
//! padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that travel as a base64url string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64url: {e}")))
    }
}

impl From<Vec<u8>> for B64 {
    fn from(v: Vec<u8>) -> Self {
        B64(v)
    }
}

/// `POST /v1/register/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStartRequest {
    /// OPAQUE `RegistrationRequest`.
    pub registration_request: B64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterStartResponse {
    /// OPAQUE `RegistrationResponse`.
    pub registration_response: B64,
}

/// `POST /v1/register/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// OPAQUE `RegistrationUpload` (the registration record).
    pub registration_upload: B64,
    /// The secret as the client sealed it under its export-key-derived key.
    /// The vault stores it and never learns what it is.
    pub sealed_secret: B64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterFinishResponse {
    pub max_attempts: u32,
}

/// `POST /v1/recover/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverStartRequest {
    /// OPAQUE `CredentialRequest` (KE1).
    pub credential_request: B64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoverStartResponse {
    /// OPAQUE `CredentialResponse` (KE2). The guess is already counted.
    pub credential_response: B64,
    /// Sealed server login state; send it back with KE3.
    pub login_state: B64,
    /// Guesses left after this one.
    pub attempts_left: u32,
}

/// `POST /v1/recover/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverFinishRequest {
    pub login_state: B64,
    /// OPAQUE `CredentialFinalization` (KE3).
    pub credential_finalization: B64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoverFinishResponse {
    /// The sealed secret, encrypted under [`crate::response_key`] of the
    /// session key (format of `arca_crypto::seal`, aad `RESPONSE_AAD`).
    pub encrypted_secret: B64,
}

/// Associated data of the encrypted secret in a recover-finish response.
pub const RESPONSE_AAD: &[u8] = b"arca vault v1 recovered secret";

/// `GET /v1/status`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub registered: bool,
    pub locked: bool,
    pub attempts_used: u32,
    pub attempts_left: u32,
    pub max_attempts: u32,
}

/// `GET /v1/info` (no token needed): what a client must know to talk to this vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResponse {
    pub vault_id: String,
    pub protocol: String,
    pub ksf_version: u32,
}
