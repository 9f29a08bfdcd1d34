//! The repository's record of how its key is protected: the
//! `arca.key-escrow.v1` config extension (docs/format.md §4). It lives in
//! the encrypted config, so the storage provider learns nothing from it.

use serde::{Deserialize, Serialize};

/// The config extension's name.
pub const EXTENSION: &str = "arca.key-escrow.v1";
/// `vault_url` of the vault the CLI runs in-process.
pub const EMBEDDED: &str = "embedded";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Password,
    RecoveryKeyOnly,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub mode: Mode,
    pub vault_id: Option<String>,
    pub vault_url: Option<String>,
    pub tenant: Option<String>,
    pub user: Option<String>,
}

impl Binding {
    pub fn recovery_key_only() -> Self {
        Self {
            mode: Mode::RecoveryKeyOnly,
            vault_id: None,
            vault_url: None,
            tenant: None,
            user: None,
        }
    }

    pub fn password(vault_id: &str, vault_url: &str, tenant: &str, user: &str) -> Self {
        Self {
            mode: Mode::Password,
            vault_id: Some(vault_id.into()),
            vault_url: Some(vault_url.into()),
            tenant: Some(tenant.into()),
            user: Some(user.into()),
        }
    }

    /// The binding the config records (see [`Binding::current`] for the one
    /// in force); `None` for repositories made
    /// before bindings existed (recovery key only) or unreadable ones.
    #[cfg(test)]
    pub fn of(config: &arca_repo::Config) -> Option<Self> {
        config
            .extension(EXTENSION)
            .and_then(|v| serde_json::from_slice(v).ok())
    }

    /// The binding in force: the newest one `arca password add`/`remove`
    /// recorded (a setting, docs/format.md §4.1), else the config's.
    pub fn current(repo: &arca_repo::Repository) -> Result<Option<Self>, String> {
        Ok(repo
            .current_extension(EXTENSION)
            .map_err(|e| e.to_string())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records `self` as the binding in force from now on.
    pub fn record(&self, repo: &arca_repo::Repository) -> Result<(), String> {
        let (name, value) = self.to_extension()?;
        repo.set_extension(&name, value).map_err(|e| e.to_string())
    }

    pub fn to_extension(&self) -> Result<(String, Vec<u8>), String> {
        let v = serde_json::to_vec(self).map_err(|e| format!("cannot encode the binding: {e}"))?;
        Ok((EXTENSION.to_string(), v))
    }

    /// The remote vault's address, if the key is escrowed in one.
    pub fn remote_url(&self) -> Option<&str> {
        self.vault_url.as_deref().filter(|u| *u != EMBEDDED)
    }

    pub fn account(&self) -> String {
        format!(
            "{}/{}",
            self.tenant.as_deref().unwrap_or("?"),
            self.user.as_deref().unwrap_or("?")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_repo::Config;

    #[test]
    fn round_trips_through_the_config_extension() {
        let b = Binding::password("v1", "https://v", "app", "alice");
        let (name, value) = b.to_extension().unwrap();
        let config = Config {
            id: [0; 16],
            chunker: Default::default(),
            created: 0,
            extensions: vec![(name, value)],
        };
        assert_eq!(Binding::of(&config), Some(b));
        let v = Binding::recovery_key_only().to_extension().unwrap().1;
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            r#"{"mode":"recovery-key-only","vault_id":null,"vault_url":null,"tenant":null,"user":null}"#
        );
    }
}
