//! Settings: later values of config extensions.
//!
//! The config is written once, when the repository is created, and never
//! rewritten (a rewrite that dies half way would lose the repository). A
//! setting object records a new value for one extension; the newest one
//! (by its time, then its name) supersedes the config's value and older
//! settings. Like snapshots they are sealed with the metadata key and named
//! by the hash of their bytes, so two devices writing at once never collide.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::MetaKind;
use crate::id::ObjectName;
use crate::repo::{Repository, now};

/// One new value of a config extension, stored as `settings/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Setting {
    pub name: String,
    pub value: Vec<u8>,
    pub time: i64,
    pub time_nsec: u32,
}

/// Storage path of a setting object.
pub(crate) fn setting_path(name: &ObjectName) -> String {
    format!("settings/{}", name.to_hex())
}

impl Repository {
    /// Records `value` as the new value of the config extension `name`: it
    /// supersedes the config's own value and every earlier setting.
    pub fn set_extension(&self, name: &str, value: Vec<u8>) -> Result<()> {
        let (time, time_nsec) = now();
        let setting = Setting {
            name: name.to_string(),
            value,
            time,
            time_nsec,
        };
        self.write_named(MetaKind::Setting, &setting, setting_path)?;
        Ok(())
    }

    /// The current value of the config extension `name`: the newest
    /// setting for it, else the config's value. Setting objects that cannot
    /// be read are left out with a warning.
    pub fn current_extension(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut newest: Option<(i64, u32, ObjectName, Vec<u8>)> = None;
        for (path, _) in self.storage().list("settings")? {
            let setting = match self.read_setting(&path) {
                Ok((_, s)) if s.name != name => continue,
                Ok(found) => found,
                Err(e) => {
                    self.warn(format!("left out an unreadable setting: {e}"));
                    continue;
                }
            };
            let (object, s) = setting;
            let key = (s.time, s.time_nsec, object);
            if newest
                .as_ref()
                .is_none_or(|(t, n, o, _)| key > (*t, *n, *o))
            {
                newest = Some((key.0, key.1, key.2, s.value));
            }
        }
        Ok(match newest {
            Some((.., value)) => Some(value),
            None => self.config().extension(name).map(<[u8]>::to_vec),
        })
    }

    /// Reads one setting object.
    pub(crate) fn read_setting(&self, path: &str) -> Result<(ObjectName, Setting)> {
        self.read_named(path, MetaKind::Setting)
    }
}

#[cfg(test)]
mod tests {
    use arca_crypto::BackupKey;

    use crate::{Repository, Storage};

    #[test]
    fn the_newest_setting_wins_over_the_config() {
        let storage = Storage::memory();
        let key = BackupKey::generate();
        let repo = Repository::init_with_extensions(
            storage.clone(),
            &key,
            vec![("mode".into(), b"password".to_vec())],
        )
        .unwrap();
        assert_eq!(
            repo.current_extension("mode").unwrap().as_deref(),
            Some(&b"password"[..])
        );
        assert_eq!(repo.current_extension("other").unwrap(), None);
        repo.set_extension("mode", b"recovery-key-only".to_vec())
            .unwrap();
        repo.set_extension("other", b"x".to_vec()).unwrap();
        // Another device opens the same repository and sees the change.
        let again = Repository::open(storage.clone(), &key).unwrap();
        assert_eq!(
            again.current_extension("mode").unwrap().as_deref(),
            Some(&b"recovery-key-only"[..])
        );
        again.set_extension("mode", b"password".to_vec()).unwrap();
        assert_eq!(
            repo.current_extension("mode").unwrap().as_deref(),
            Some(&b"password"[..])
        );
        assert_eq!(
            repo.current_extension("other").unwrap().as_deref(),
            Some(&b"x"[..])
        );
        // The config itself never changes.
        assert_eq!(again.config().extension("mode"), Some(&b"password"[..]));
    }

    #[test]
    fn a_damaged_setting_is_left_out_with_a_warning_and_check_reports_it() {
        let storage = Storage::memory();
        let key = BackupKey::generate();
        let repo = Repository::init(storage.clone(), &key).unwrap();
        repo.set_extension("mode", b"a".to_vec()).unwrap();
        let (path, _) = storage.list("settings").unwrap().pop().unwrap();
        let mut bytes = storage.get(&path).unwrap().unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        storage.delete(&path).unwrap();
        storage.put(&path, bytes.into(), false).unwrap();
        assert_eq!(repo.current_extension("mode").unwrap(), None);
        let warnings = repo.take_warnings();
        assert!(
            warnings.iter().any(|w| w.contains("unreadable setting")),
            "{warnings:?}"
        );
        let report = repo.check(&Default::default()).unwrap();
        assert!(!report.is_ok());
        assert!(
            report.errors.iter().any(|e| e.contains("settings/")),
            "{:?}",
            report.errors
        );
    }
}
