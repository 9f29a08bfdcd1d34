//! Errors a UI can act on: each variant says whether to retry, ask for the
//! password again, offer the recovery key, or get a new sign-in token.
//! Nothing secret (password, key, token) ever appears in one.

use arca_vault_api::{ErrorBody, ErrorCode};

/// Why a vault operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The password is wrong. The guess has been counted: `attempts_left`
    /// more wrong guesses are allowed before the vault destroys the escrowed
    /// key (at 0 the next attempt gets [`ClientError::Locked`]). Not
    /// retryable as is: ask the user for the password again.
    #[error("{}", wrong_password(*attempts_left))]
    WrongPassword { attempts_left: u32 },

    /// Too many wrong passwords: the vault has destroyed the escrowed key for
    /// good. Not retryable: the repository opens only with the 64-digit
    /// recovery key now; after that, enroll a new password.
    #[error(
        "too many wrong passwords: the vault has destroyed this account's password backup; \
         open the backup with the 64-digit recovery key, then set a new password"
    )]
    Locked,

    /// This account has no password backup in the vault (never enrolled, or
    /// removed). Not retryable: use the recovery key, or enroll a password.
    #[error(
        "this account has no password backup in the vault: open the backup with the \
         64-digit recovery key, or set up a password first"
    )]
    NotEnrolled,

    /// The vault could not be reached or did not answer (network down,
    /// vault stopped, timeout, TLS failure, a proxy error page). Retryable:
    /// try again later. For a password recovery nothing is known about the
    /// password, but the guess may have been counted if the request got
    /// through.
    #[error("cannot reach the backup key vault ({0}): check the network connection and try again")]
    VaultUnreachable(String),

    /// The vault did not accept the sign-in token (expired, for another
    /// vault, unknown app, malformed), or the token has no account in it.
    /// Not retryable with this token: get a new one from the app's account
    /// system. Nothing was counted.
    #[error("the backup key vault did not accept the sign-in token ({0}): sign in again")]
    TokenRejected(String),

    /// The vault (or whatever answered at its address) sent something that
    /// is not the arca vault protocol, or a version this client does not
    /// speak. Not retryable: check the vault address or update the app.
    #[error(
        "the backup key vault's answer is not valid ({0}): check the vault address, \
         or update the app"
    )]
    Protocol(String),

    /// Any other refusal by the vault, with its typed code and message.
    /// Retryable only if the code is (`rate_limited`, `store_unavailable`);
    /// `login_expired` means start the recovery again.
    #[error("the backup key vault refused the request ({}): {message}", code_name(*code))]
    Vault { code: ErrorCode, message: String },
}

impl ClientError {
    /// Whether the same call may succeed later without the user changing
    /// anything. A wrong password is not retryable: a new password is a new
    /// request (and a new counted guess).
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::VaultUnreachable(_) => true,
            ClientError::Vault { code, .. } => code.retryable(),
            ClientError::WrongPassword { .. }
            | ClientError::Locked
            | ClientError::NotEnrolled
            | ClientError::TokenRejected(_)
            | ClientError::Protocol(_) => false,
        }
    }

    /// The error for an HTTP answer that is not a success, plus how long the
    /// vault asked us to wait (if it did).
    pub(crate) fn from_response(status: u16, body: &str) -> (Self, Option<u64>) {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(e) => {
                let err = match e.code {
                    ErrorCode::Unauthorized => ClientError::TokenRejected(e.message),
                    ErrorCode::NotRegistered => ClientError::NotEnrolled,
                    ErrorCode::Locked => ClientError::Locked,
                    ErrorCode::WrongPassword => ClientError::WrongPassword {
                        attempts_left: e.attempts_left.unwrap_or(0),
                    },
                    code => ClientError::Vault {
                        code,
                        message: e.message,
                    },
                };
                (err, e.retry_after_secs)
            }
            // Not the vault's error format: a gateway between us and the
            // vault answered. 502/503/504 from a proxy mean the vault behind
            // it is down or overloaded, which is the same as unreachable.
            Err(_) if matches!(status, 502..=504) => (
                ClientError::VaultUnreachable(format!(
                    "HTTP {status} from a gateway in front of the vault"
                )),
                None,
            ),
            Err(_) => (
                ClientError::Protocol(format!(
                    "HTTP {status} without an arca error body{}",
                    snippet(body)
                )),
                None,
            ),
        }
    }
}

fn wrong_password(attempts_left: u32) -> String {
    match attempts_left {
        0 => "wrong password, and that was the last attempt: the vault destroys this account's \
              password backup; open the backup with the 64-digit recovery key"
            .into(),
        1 => "wrong password: 1 attempt left before the vault destroys this account's \
              password backup; if unsure, use the 64-digit recovery key instead"
            .into(),
        n => format!(
            "wrong password: {n} attempts left before the vault destroys this account's \
             password backup"
        ),
    }
}

/// The wire name of a code (`rate_limited`), as the vault documents it.
fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// The start of an unexpected body, printable and short, to help whoever
/// reads the message see what answered (an HTML error page, say).
fn snippet(body: &str) -> String {
    let text: String = body.chars().filter(|c| !c.is_control()).take(120).collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {:?}", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, extra: &str) -> String {
        format!(r#"{{"code":"{code}","message":"m"{extra}}}"#)
    }

    #[test]
    fn vault_codes_map_to_what_a_ui_does() {
        let map = |code: &str, extra: &str| ClientError::from_response(400, &body(code, extra));
        assert_eq!(
            map("wrong_password", r#","attempts_left":4"#).0,
            ClientError::WrongPassword { attempts_left: 4 }
        );
        assert_eq!(map("locked", "").0, ClientError::Locked);
        assert_eq!(map("not_registered", "").0, ClientError::NotEnrolled);
        assert_eq!(
            map("unauthorized", "").0,
            ClientError::TokenRejected("m".into())
        );
        let (e, after) = map("rate_limited", r#","retry_after_secs":3"#);
        assert!(e.retryable(), "{e}");
        assert_eq!(after, Some(3));
        assert!(map("store_unavailable", "").0.retryable());
        let e = map("login_expired", "").0;
        assert!(!e.retryable());
        assert!(e.to_string().contains("login_expired"), "{e}");
    }

    #[test]
    fn foreign_answers_are_unreachable_or_protocol_errors() {
        let (e, _) = ClientError::from_response(502, "<html>Bad Gateway</html>");
        assert!(matches!(e, ClientError::VaultUnreachable(_)) && e.retryable());
        let (e, _) = ClientError::from_response(404, "<html>\nNot Found</html>");
        assert!(matches!(e, ClientError::Protocol(_)) && !e.retryable());
        assert!(e.to_string().contains("Not Found"), "{e}");
    }

    #[test]
    fn messages_say_what_to_do() {
        assert!(
            ClientError::WrongPassword { attempts_left: 7 }
                .to_string()
                .contains("7 attempts left")
        );
        assert!(
            ClientError::WrongPassword { attempts_left: 0 }
                .to_string()
                .contains("recovery key")
        );
        assert!(ClientError::Locked.to_string().contains("recovery key"));
        assert!(
            ClientError::VaultUnreachable("x".into())
                .to_string()
                .contains("try again")
        );
        assert!(
            ClientError::TokenRejected("x".into())
                .to_string()
                .contains("sign in again")
        );
    }
}
