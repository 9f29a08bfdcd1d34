//! Which Backup Key Vault holds the key, and talking to it: a remote vault
//! (`--vault URL` or `ARCA_VAULT`, with `ARCA_VAULT_TOKEN`), or the same
//! vault code run in this process with its store under the data directory.
//!
//! The embedded vault keeps arca usable on a fresh machine with no server,
//! but it lives on the same disk as the key store and usually near the
//! backup: it is a convenience, not protection. Real protection needs the
//! vault on other hardware than the backup.

use std::path::{Path, PathBuf};

use arca_client::{ClientError, OpenError, VaultClient};
use arca_crypto::BackupKey;
use arca_repo::{Repository, Storage};
use arca_vault::config::{Algorithm, Config, RateLimit, SealConfig, Tenant};
use arca_vault::server::{self, InProcess};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::binding::{Binding, EMBEDDED};
use crate::password;
use crate::store::{private_dir, write_private};

/// Environment variable holding the sign-in token for a remote vault.
pub const ENV_TOKEN: &str = "ARCA_VAULT_TOKEN";
/// The embedded vault's only tenant and user.
const LOCAL: &str = "local";
/// Guesses before the embedded vault destroys the escrowed key, as a
/// remote one by default.
const MAX_ATTEMPTS: u32 = 10;

/// A connected vault client, and the in-process vault if it is embedded.
pub struct Vault {
    pub client: VaultClient,
    /// What the binding records: the URL, or `embedded`.
    pub location: String,
    /// Keeps the embedded vault serving while the client is used; declared
    /// after `client` so the client goes first.
    embedded: Option<InProcess>,
}

impl Vault {
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// The vault's folder, for the embedded vault.
    pub fn embedded_dir(data: &Path) -> PathBuf {
        data.join("vault")
    }
}

/// Whether this machine has an embedded vault.
pub fn embedded_exists(data: &Path) -> bool {
    Vault::embedded_dir(data).join("vault.sealed").exists()
}

/// The vault to use: `explicit` (from `--vault`/`ARCA_VAULT`; `embedded`
/// names the in-process one), else the one `binding` records, else the
/// embedded vault (created only if `create`).
pub fn connect(
    explicit: Option<&str>,
    binding: Option<&Binding>,
    data: &Path,
    create: bool,
) -> Result<Vault, String> {
    let url = explicit
        .filter(|u| !u.trim().is_empty())
        .or_else(|| binding.and_then(Binding::remote_url));
    match url {
        Some(u) if u != EMBEDDED => remote(u),
        _ => embedded(data, create),
    }
}

fn remote(url: &str) -> Result<Vault, String> {
    let token = Zeroizing::new(std::env::var(ENV_TOKEN).map_err(|_| {
        format!(
            "the backup key vault at {url} needs a sign-in token: set {ENV_TOKEN} to the token \
             from your app's account system"
        )
    })?);
    let client = VaultClient::new(url, &token).map_err(client_error)?;
    Ok(Vault {
        client,
        location: url.trim().trim_end_matches('/').to_string(),
        embedded: None,
    })
}

fn embedded(data: &Path, create: bool) -> Result<Vault, String> {
    let dir = Vault::embedded_dir(data);
    if !create && !embedded_exists(data) {
        return Err(format!(
            "no backup key vault: pass --vault URL (or set ARCA_VAULT) with {ENV_TOKEN}, or open \
             the backup with its 64-digit recovery key (ARCA_RECOVERY_KEY or --recovery-key-file); \
             this machine has no embedded vault in {}",
            dir.display()
        ));
    }
    private_dir(&dir)?;
    let vault_id = read_or_create(&dir.join("vault-id"), || {
        let mut id = [0u8; 8];
        arca_crypto::fill_random(&mut id);
        Zeroizing::new(format!("arca-embedded-{}", hex::encode(id)))
    })?;
    let secret = read_or_create(&dir.join("tenant.secret"), || {
        let mut s = Zeroizing::new([0u8; 32]);
        arca_crypto::fill_random(&mut s[..]);
        Zeroizing::new(URL_SAFE_NO_PAD.encode(&s[..]))
    })?;
    let config = Config {
        vault_id: vault_id.trim().to_string(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.clone(),
        max_attempts: MAX_ATTEMPTS,
        login_ttl_secs: 60,
        max_body_bytes: 16 * 1024,
        // Only this process talks to it; the guess counter is the limit.
        rate_limit: RateLimit {
            per_ip_per_minute: 0,
            per_account_per_minute: 0,
        },
        seal: SealConfig::KeyFile {
            path: dir.join("seal.key"),
        },
        tenants: vec![Tenant {
            id: LOCAL.into(),
            algorithm: Algorithm::HS256,
            keys: vec![secret.trim().to_string()],
            signing_key: None,
        }],
        tls: None,
    };
    if !config.sealed_path().exists() {
        server::init(&config)
            .map_err(|e| format!("cannot create the embedded vault in {}: {e}", dir.display()))?;
    }
    let token = local_token(&config.vault_id, secret.trim())?;
    let running = server::spawn(config)
        .map_err(|e| format!("cannot start the embedded vault in {}: {e}", dir.display()))?;
    let client = VaultClient::new(&running.url, &token).map_err(client_error)?;
    Ok(Vault {
        client,
        location: EMBEDDED.into(),
        embedded: Some(running),
    })
}

/// The file's text, or `make()` written to it (mode 0600) first.
fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> Zeroizing<String>,
) -> Result<Zeroizing<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let v = make();
            write_private(path, v.as_bytes())?;
            Ok(v)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A short-lived token for the embedded vault's local account, signed with
/// its tenant secret (what an app's account system does for a remote one).
fn local_token(vault_id: &str, secret_b64: &str) -> Result<Zeroizing<String>, String> {
    let secret = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(secret_b64)
            .map_err(|_| "the embedded vault's tenant.secret is damaged: it is not base64url")?,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let claims = serde_json::json!({
        "iss": LOCAL, "sub": LOCAL, "aud": vault_id, "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .map(Zeroizing::new)
    .map_err(|e| format!("cannot sign a token for the embedded vault: {e}"))
}

/// A vault error as shown to the user: what happened and what to do.
pub fn client_error(e: ClientError) -> String {
    match &e {
        ClientError::VaultUnreachable(_) => {
            format!("{e} (nothing was changed; this is worth retrying)")
        }
        ClientError::TokenRejected(_) => format!("{e}: set {ENV_TOKEN} to a fresh token"),
        _ => e.to_string(),
    }
}

fn open_error(e: OpenError) -> String {
    match e {
        OpenError::Vault(e) => client_error(e),
        e => e.to_string(),
    }
}

/// Warns before the guess that would destroy the escrowed key, and on a
/// terminal asks first. Errors if the account cannot take a guess at all.
pub fn before_guess(vault: &Vault) -> Result<(), String> {
    let status = vault.client.status().map_err(client_error)?;
    if status.locked {
        return Err(client_error(ClientError::Locked));
    }
    if !status.registered {
        return Err(client_error(ClientError::NotEnrolled));
    }
    if status.attempts_left == 1 {
        eprintln!(
            "warning: this is the last password attempt: if it is wrong, the vault destroys \
             the password backup for good and only the 64-digit recovery key opens the backup"
        );
        if password::interactive() && !password::confirm("Try the password once more?")? {
            return Err(
                "stopped before the last attempt: the password backup is intact; \
                        open the backup with the 64-digit recovery key instead"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Opens the repository with the password (from `ARCA_PASSWORD` or a
/// prompt; on a terminal a wrong one is asked again while guesses remain).
pub fn open_with_password(
    vault: &Vault,
    storage: &Storage,
) -> Result<(Repository, BackupKey), String> {
    loop {
        before_guess(vault)?;
        let pw = password::read(password::ENV_PASSWORD, "password: ")?;
        match arca_client::open_with_password(storage.clone(), &vault.client, &pw) {
            Ok(done) => return Ok(done),
            Err(OpenError::Vault(ClientError::WrongPassword { attempts_left }))
                if attempts_left > 0
                    && password::interactive()
                    && std::env::var_os(password::ENV_PASSWORD).is_none() =>
            {
                eprintln!("{}", ClientError::WrongPassword { attempts_left });
            }
            Err(e) => return Err(open_error(e)),
        }
    }
}

/// Gets the key back with the current password (one guess).
pub fn recover(vault: &Vault, prompt: &str) -> Result<BackupKey, String> {
    before_guess(vault)?;
    let pw = password::read(password::ENV_PASSWORD, prompt)?;
    vault.client.recover(&pw).map_err(client_error)
}
