//! This device's data directory and its key store: the backup keys of the
//! repositories this device backs up, so daily backups need neither the
//! password nor the vault.
//!
//! One file per repository, `<data>/keys/<repository id>.key`, mode 0600,
//! holding the key as 64 hex digits. The repository id is inside the
//! encrypted config, so a repository is matched by trying each stored key
//! on its config (an AEAD open of a few hundred bytes per key).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use arca_crypto::{BackupKey, RecoveryKey};
use arca_repo::{Repository, Storage};
use zeroize::Zeroizing;

/// Environment variable naming the data directory.
pub const ENV_DATA_DIR: &str = "ARCA_DATA_DIR";

/// `ARCA_DATA_DIR`, else `$XDG_DATA_HOME/arca`, else `~/.local/share/arca`.
pub fn data_dir() -> Result<PathBuf, String> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = set(ENV_DATA_DIR) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = set("XDG_DATA_HOME") {
        return Ok(PathBuf::from(d).join("arca"));
    }
    if let Some(h) = set("HOME") {
        return Ok(PathBuf::from(h).join(".local/share/arca"));
    }
    Err(format!(
        "no data directory for arca's key store: set {ENV_DATA_DIR} (or HOME)"
    ))
}

/// Creates `dir` (and parents) readable by the owner only.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private: {e}", dir.display()))
}

/// Writes `bytes` to `path` with mode 0600, atomically (temporary file,
/// then rename), replacing what was there.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An older file left with wider permissions keeps its mode on
        // open: narrow it before the secret goes in.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// The key store under a data directory.
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(data: &Path) -> Self {
        Self {
            dir: data.join("keys"),
        }
    }

    /// Where the key of repository `id` is kept.
    pub fn path(&self, id: &[u8; 16]) -> PathBuf {
        self.dir.join(format!("{}.key", hex::encode(id)))
    }

    /// Keeps `key` as the key of repository `id`; returns the file.
    pub fn save(&self, id: &[u8; 16], key: &BackupKey) -> Result<PathBuf, String> {
        private_dir(&self.dir)?;
        let path = self.path(id);
        let mut text = Zeroizing::new(hex::encode(key.expose_secret()));
        text.push('\n');
        write_private(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Opens the repository in `storage` with a stored key, if one fits.
    /// `Ok(None)`: no stored key opens it. Errors other than a wrong key
    /// (no repository there, damage, storage failure) are returned: no
    /// other key would do better.
    pub fn open(&self, storage: &Storage) -> Result<Option<(Repository, BackupKey)>, String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(None);
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "key"))
            .collect();
        paths.sort();
        for path in paths {
            let key = match read_key(&path) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("warning: {e}");
                    continue;
                }
            };
            match Repository::open(storage.clone(), &key) {
                Ok(repo) => return Ok(Some((repo, key))),
                Err(arca_repo::Error::WrongKey { .. }) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(None)
    }
}

fn read_key(path: &Path) -> Result<BackupKey, String> {
    let md = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = md.permissions().mode();
    if mode & 0o077 != 0 {
        // Still used: refusing would stop this device's backups. The fix
        // is one command.
        eprintln!(
            "warning: the key store file {} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = Zeroizing::new(fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let text = std::str::from_utf8(&text).map_err(|_| {
        format!(
            "the key store file {} is not 64 hex digits: remove it (the backup then needs the \
             password or the recovery key once)",
            path.display()
        )
    })?;
    RecoveryKey::parse(text).map_err(|e| {
        format!(
            "the key store file {} is damaged ({e}): remove it (the backup then needs the \
             password or the recovery key once)",
            path.display()
        )
    })
}
