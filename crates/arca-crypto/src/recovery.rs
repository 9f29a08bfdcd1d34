//! The 64-digit recovery key: the backup key as a person writes it down.

use std::fmt;

use zeroize::Zeroizing;

use crate::key::{BackupKey, KEY_LEN};

/// Hex digits in a recovery key.
const DIGITS: usize = KEY_LEN * 2;
/// Digits per group when shown.
const GROUP: usize = 4;

/// A backup key in its written-down form: 64 lowercase hex digits in 16
/// groups of 4 joined by `-`. Has no `Display`: showing it is an explicit
/// [`RecoveryKey::expose`].
pub struct RecoveryKey(Zeroizing<String>);

impl RecoveryKey {
    pub(crate) fn from_key(key: &BackupKey) -> Self {
        let hex = Zeroizing::new(hex::encode(key.expose_secret()));
        let mut shown = String::with_capacity(DIGITS + DIGITS / GROUP);
        for (i, c) in hex.chars().enumerate() {
            if i > 0 && i % GROUP == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        Self(Zeroizing::new(shown))
    }

    /// The text to show the user once, for writing down.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a recovery key as typed: any case; spaces, tabs, dashes and
    /// newlines anywhere are ignored. Anything else is refused with the
    /// offending character and its position (1-based, counting characters).
    pub fn parse(text: &str) -> Result<BackupKey, RecoveryKeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let mut digits = 0usize;
        let mut first_bad: Option<(char, usize)> = None;
        for (position, c) in text.chars().enumerate() {
            if matches!(c, ' ' | '\t' | '-' | '\n' | '\r') {
                continue;
            }
            match c.to_digit(16) {
                Some(v) => {
                    if digits < DIGITS {
                        let v = v as u8;
                        bytes[digits / 2] |= if digits % 2 == 0 { v << 4 } else { v };
                    }
                    digits += 1;
                }
                None => {
                    if first_bad.is_none() {
                        first_bad = Some((c, position + 1));
                    }
                }
            }
        }
        if let Some((character, position)) = first_bad {
            return Err(RecoveryKeyError::InvalidCharacter {
                character,
                position,
                digits,
            });
        }
        if digits != DIGITS {
            return Err(RecoveryKeyError::WrongLength { digits });
        }
        Ok(BackupKey::from_bytes(*bytes))
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(REDACTED)")
    }
}

/// Why a typed recovery key was refused. Never contains the key's digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryKeyError {
    #[error(
        "the recovery key has an invalid character {character:?} at position {position} \
         ({digits} hex digits found): a recovery key has only the digits 0-9 and letters a-f, \
         optionally grouped with spaces or dashes"
    )]
    InvalidCharacter {
        character: char,
        position: usize,
        digits: usize,
    },
    #[error(
        "the recovery key has {digits} hex digits, but it must have exactly 64: \
         check for a missing or repeated group of 4"
    )]
    WrongLength { digits: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_16_groups_of_4_and_parsed_back() {
        let key = BackupKey::generate();
        let rk = key.to_recovery_key();
        let groups: Vec<&str> = rk.expose().split('-').collect();
        assert_eq!(groups.len(), 16);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert_eq!(RecoveryKey::parse(rk.expose()).unwrap(), key);
    }

    #[test]
    fn accepts_any_case_spaces_dashes_newlines() {
        let key = BackupKey::from_bytes(core::array::from_fn(|i| (i * 37) as u8));
        let plain = hex::encode(key.expose_secret());
        let messy: String = plain
            .to_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = match i % 16 {
                    4 => " ",
                    8 => "-",
                    12 => "\n",
                    _ => "",
                };
                sep.chars().chain(std::iter::once(c))
            })
            .collect();
        assert_eq!(RecoveryKey::parse(&format!("  {messy}\r\n")).unwrap(), key);
    }

    #[test]
    fn names_the_wrong_character_and_the_digit_count() {
        let mut text = "0123".repeat(16);
        text.replace_range(9..10, "o");
        let err = RecoveryKey::parse(&text).unwrap_err();
        assert_eq!(
            err,
            RecoveryKeyError::InvalidCharacter {
                character: 'o',
                position: 10,
                digits: 63
            }
        );
        assert!(err.to_string().contains("'o' at position 10"), "{err}");
    }

    #[test]
    fn wrong_length_says_how_many_digits() {
        let err = RecoveryKey::parse(&"a".repeat(60)).unwrap_err();
        assert_eq!(err, RecoveryKeyError::WrongLength { digits: 60 });
        assert!(err.to_string().contains("60 hex digits"));
        assert!(RecoveryKey::parse(&"a".repeat(65)).is_err());
    }
}
