//! Where the recovery key comes from: the environment, a file, or a prompt.

use std::io::IsTerminal;
use std::path::Path;

use arca_crypto::{BackupKey, RecoveryKey};
use zeroize::Zeroizing;

/// Environment variable holding the recovery key.
pub const ENV_RECOVERY_KEY: &str = "ARCA_RECOVERY_KEY";

/// The backup key from `ARCA_RECOVERY_KEY`, `--recovery-key-file`, or a
/// hidden prompt on a terminal, in that order.
pub fn read_recovery_key(file: Option<&Path>) -> Result<BackupKey, String> {
    let text: Zeroizing<String> = if let Some(path) = file {
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read the recovery key file {}: {e}", path.display())
            })?,
        )
    } else if let Ok(v) = std::env::var(ENV_RECOVERY_KEY) {
        Zeroizing::new(v)
    } else if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("recovery key: ")
                .map_err(|e| format!("cannot read the recovery key from the terminal: {e}"))?,
        )
    } else {
        return Err(format!(
            "no recovery key: set {ENV_RECOVERY_KEY}, pass --recovery-key-file FILE, or run on a terminal"
        ));
    };
    RecoveryKey::parse(&text).map_err(|e| e.to_string())
}
