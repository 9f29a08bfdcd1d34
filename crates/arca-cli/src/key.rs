//! Where the recovery key comes from: a file, the environment, or a prompt.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use arca_crypto::{BackupKey, RecoveryKey};
use zeroize::Zeroizing;

/// Environment variable holding the recovery key.
pub const ENV_RECOVERY_KEY: &str = "ARCA_RECOVERY_KEY";

/// The backup key from `--recovery-key-file`, `ARCA_RECOVERY_KEY`, or a
/// hidden prompt on a terminal, in that order: the first one given is used.
pub fn read_recovery_key(file: Option<&Path>) -> Result<BackupKey, String> {
    let text: Zeroizing<String> = if let Some(path) = file {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the recovery key file {}: {e}", path.display()))?;
        text_of(bytes, &format!("the recovery key file {}", path.display()))?
    } else if let Some(v) = std::env::var_os(ENV_RECOVERY_KEY) {
        // var_os, not var: a value that is not UTF-8 must be an error that
        // says so, not a silent fall-through to the prompt.
        text_of(v.into_vec(), ENV_RECOVERY_KEY)?
    } else if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("recovery key: ")
                .map_err(|e| format!("cannot read the recovery key from the terminal: {e}"))?,
        )
    } else {
        return Err(format!(
            "no recovery key: pass --recovery-key-file FILE, set {ENV_RECOVERY_KEY}, or run on a terminal"
        ));
    };
    RecoveryKey::parse(&text).map_err(|e| e.to_string())
}

/// `bytes` as text, wiping them whatever the outcome: they may be the key.
fn text_of(bytes: Vec<u8>, what: &str) -> Result<Zeroizing<String>, String> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(format!(
                "{what} is not UTF-8 text: it must hold the 64-digit recovery key \
                 (digits 0-9 and letters a-f, optionally grouped with dashes)"
            ))
        }
    }
}
