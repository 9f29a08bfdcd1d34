//! The ciphersuite, key stretching and identities.

use std::fmt;

use arca_crypto::SubKey;
use argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::{CipherSuite, Ristretto255, TripleDh};

/// Protocol name and version, reported by `GET /v1/info`.
pub const PROTOCOL: &str = "arca-vault-v1";

/// OPAQUE-3DH over Ristretto255 with SHA-512, Argon2id as the client's
/// key-stretching function.
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = Argon2<'static>;
}

/// Version of the key-stretching parameters below. Changing them changes
/// every password's envelope, so they are fixed per version.
pub const KSF_VERSION: u32 = 1;
/// Argon2id memory: 64 MiB. Memory-hard enough that a GPU farm guessing a
/// stolen registration (it would also need the vault's OPRF key) pays per
/// guess; small enough for any phone.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id passes: 3 (RFC 9106's second recommended option uses 3 passes
/// at 64 MiB). About 0.15 s on a laptop core, 0.3–0.6 s on a phone.
pub const ARGON2_T: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// The key-stretching function of [`KSF_VERSION`].
pub fn ksf() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .expect("fixed Argon2id parameters are within Argon2's limits");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// OPAQUE context string: binds every key exchange to this protocol.
pub const CONTEXT: &[u8] = b"arca vault v1";

/// One account: the tenant (the app whose account system issued the token)
/// and the user id within it (the token's `sub`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountId {
    pub tenant: String,
    pub user: String,
}

impl AccountId {
    pub fn new(tenant: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            user: user.into(),
        }
    }

    /// The OPAQUE credential identifier and client identity:
    /// `"arca-account-v1" 0x00 tenant 0x00 user`. Tenant ids cannot contain
    /// NUL (config validation), so the encoding is unambiguous.
    pub fn credential_id(&self) -> Vec<u8> {
        let mut out = b"arca-account-v1\0".to_vec();
        out.extend_from_slice(self.tenant.as_bytes());
        out.push(0);
        out.extend_from_slice(self.user.as_bytes());
        out
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.user)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}

/// The key that encrypts the escrowed secret on its way back to the client:
/// derived from the OPAQUE session key, which only the two ends know.
pub fn response_key(session_key: &[u8]) -> SubKey {
    SubKey::derive_from("arca vault v1 recover response key", session_key)
}
