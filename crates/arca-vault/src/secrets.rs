//! The vault's own secrets (OPAQUE server setup, master key) and the seals
//! that keep them encrypted at rest: a key file for development, or an AES
//! key inside an HSM through PKCS#11 (HashiCorp Vault's auto-unseal model).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use arca_crypto::SubKey;
use arca_vault_api::Suite;
use opaque_ke::ServerSetup;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pkcs11::Pkcs11Seal;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot unseal the vault secrets: wrong seal key, or the sealed file is damaged")]
    Unseal,
    #[error("HSM (PKCS#11): {0}")]
    Hsm(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encrypts and decrypts the sealed secrets file.
pub enum Seal {
    KeyFile(SubKey),
    Pkcs11(Pkcs11Seal),
}

const SEAL_AAD: &[u8] = b"arca vault v1 sealed secrets";

impl Seal {
    /// The key-file seal. With `create`, a missing key file is generated
    /// (mode 0600). A key file that group or others can read is refused.
    pub fn key_file(path: &Path, create: bool) -> Result<Self, SealError> {
        if create && !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            arca_crypto::fill_random(&mut key[..]);
            write_private(path, Zeroizing::new(hex::encode(&key[..])).as_bytes())?;
        }
        let mode = fs::metadata(path).map_err(io(path))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SealError::Config(format!(
                "{}: the seal key file is readable by others (mode {:o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io(path))?);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut key[..]).map_err(|_| {
            SealError::Config(format!(
                "{}: a seal key file holds 64 hex digits",
                path.display()
            ))
        })?;
        Ok(Seal::KeyFile(SubKey::from_bytes(*key)))
    }

    fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        match self {
            Seal::KeyFile(k) => Ok(arca_crypto::seal(k, SEAL_AAD, plain)),
            Seal::Pkcs11(h) => h.encrypt(plain, SEAL_AAD),
        }
    }

    fn unseal(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match self {
            Seal::KeyFile(k) => arca_crypto::open(k, SEAL_AAD, sealed)
                .map(Zeroizing::new)
                .map_err(|_| SealError::Unseal),
            Seal::Pkcs11(h) => h.decrypt(sealed, SEAL_AAD).map(Zeroizing::new),
        }
    }
}

/// What the sealed file holds.
#[derive(Serialize, Deserialize)]
struct Plain {
    server_setup: Vec<u8>,
    master: [u8; 32],
}

/// The vault's unsealed secrets.
pub struct VaultSecrets {
    pub setup: ServerSetup<Suite>,
    pub master: SubKey,
}

impl std::fmt::Debug for VaultSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultSecrets(REDACTED)")
    }
}

/// Creates new secrets and writes them sealed to `path`; refuses to
/// overwrite an existing file (that would orphan every record).
pub fn create(path: &Path, seal: &Seal) -> Result<(), SealError> {
    if path.exists() {
        return Err(SealError::Config(format!(
            "{} already exists: the vault is initialised (overwriting it would make every record unreadable)",
            path.display()
        )));
    }
    let setup = ServerSetup::<Suite>::new(&mut OsRng);
    let mut master = [0u8; 32];
    arca_crypto::fill_random(&mut master);
    let plain = Plain {
        server_setup: setup.serialize().to_vec(),
        master,
    };
    let bytes = Zeroizing::new(postcard::to_stdvec(&plain).expect("secrets serialize"));
    let mut plain = plain;
    zeroize::Zeroize::zeroize(&mut plain.master);
    zeroize::Zeroize::zeroize(&mut plain.server_setup);
    let sealed = seal.seal(&bytes)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    write_private(path, &sealed)
}

/// Writes a new file readable only by its owner, and syncs it; refuses to
/// replace an existing one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SealError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads and unseals the secrets.
pub fn load(path: &Path, seal: &Seal) -> Result<VaultSecrets, SealError> {
    let sealed = fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SealError::Config(format!(
                "{} does not exist: run `arca-vault init --config ...` first",
                path.display()
            ))
        } else {
            SealError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    let bytes = seal.unseal(&sealed)?;
    let mut plain: Plain = postcard::from_bytes(&bytes).map_err(|_| SealError::Unseal)?;
    let setup =
        ServerSetup::<Suite>::deserialize(&plain.server_setup).map_err(|_| SealError::Unseal)?;
    let master = SubKey::from_bytes(plain.master);
    zeroize::Zeroize::zeroize(&mut plain.master);
    zeroize::Zeroize::zeroize(&mut plain.server_setup);
    Ok(VaultSecrets { setup, master })
}
