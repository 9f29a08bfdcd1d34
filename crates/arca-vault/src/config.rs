//! `vault.toml`: the vault's configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This vault's identity: the OPAQUE server identity and the JWT `aud`.
    pub vault_id: String,
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Folder for the sealed secrets and the SQLite store. Relative paths in
    /// this file are relative to the file's folder.
    pub data_dir: PathBuf,
    /// Wrong guesses before the escrowed key is destroyed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds between recover-start and recover-finish.
    #[serde(default = "default_login_ttl")]
    pub login_ttl_secs: u32,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub rate_limit: RateLimit,
    pub seal: SealConfig,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per minute from one IP address (0 = unlimited).
    #[serde(default = "default_per_ip")]
    pub per_ip_per_minute: u32,
    /// Requests per minute for one account (0 = unlimited).
    #[serde(default = "default_per_account")]
    pub per_account_per_minute: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_ip_per_minute: default_per_ip(),
            per_account_per_minute: default_per_account(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SealConfig {
    /// Development only: a 0600 file holding the seal key.
    KeyFile { path: PathBuf },
    /// An AES key in a PKCS#11 token (an HSM; SoftHSM2 in tests).
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        /// Environment variable holding the user PIN.
        #[serde(default = "default_pin_env")]
        pin_env: String,
        #[serde(default = "default_key_label")]
        key_label: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    EdDSA,
    ES256,
    HS256,
}

/// An app whose account system issues the bearer tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Tenant id: the tokens' `iss`.
    pub id: String,
    /// The only algorithm accepted for this tenant's tokens.
    pub algorithm: Algorithm,
    /// Verification keys: EdDSA: base64url raw 32-byte public keys; ES256:
    /// PEM public keys; HS256: base64url shared secrets (development).
    pub keys: Vec<String>,
    /// Optional: a local signing key file for `arca-vault token` (EdDSA:
    /// PKCS#8 DER written by `arca-vault tenant-key`).
    pub signing_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_max_attempts() -> u32 {
    10
}
fn default_login_ttl() -> u32 {
    60
}
fn default_body_limit() -> usize {
    16 * 1024
}
fn default_per_ip() -> u32 {
    600
}
fn default_per_account() -> u32 {
    60
}
fn default_pin_env() -> String {
    "ARCA_VAULT_HSM_PIN".into()
}
fn default_key_label() -> String {
    "arca-vault-seal".into()
}

impl Config {
    /// Reads and checks a config file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config {}: {e}", path.display()))?;
        let mut c: Config =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.data_dir);
        if let SealConfig::KeyFile { path } = &mut c.seal {
            fix(path);
        }
        for t in &mut c.tenants {
            if let Some(k) = &mut t.signing_key {
                fix(k);
            }
        }
        if let Some(tls) = &mut c.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        if self.vault_id.is_empty() {
            return Err("vault_id must not be empty".into());
        }
        if !(1..=1000).contains(&self.max_attempts) {
            return Err("max_attempts must be between 1 and 1000".into());
        }
        for t in &self.tenants {
            if t.id.is_empty() || t.id.contains('\0') {
                return Err(format!(
                    "tenant id {:?} must be non-empty and without NUL",
                    t.id
                ));
            }
            if t.keys.is_empty() {
                return Err(format!("tenant {:?} has no verification keys", t.id));
            }
        }
        Ok(())
    }

    pub fn sealed_path(&self) -> PathBuf {
        self.data_dir.join("vault.sealed")
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("records.sqlite")
    }
}
