//! The arca Backup Key Vault protocol, shared by the vault server and its
//! clients: the OPAQUE (RFC 9807) ciphersuite and its fixed Argon2id
//! parameters, account and vault identities, the JSON wire types, error
//! codes, and the client's protocol steps as pure functions. No I/O.
//!
//! `docs/vault-protocol.md` is the specification.

pub mod client;
mod error;
mod suite;
mod wire;

pub use error::{ErrorBody, ErrorCode};
pub use suite::{
    ARGON2_M_KIB, ARGON2_P, ARGON2_T, AccountId, CONTEXT, KSF_VERSION, PROTOCOL, Suite, ksf,
    response_key,
};
pub use wire::*;
