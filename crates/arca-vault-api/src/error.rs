//! Typed error codes: what went wrong and whether retrying can help.

use serde::{Deserialize, Serialize};

/// Error codes of the vault API. Each says whether a client should retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request (bad JSON, bad base64, bad protocol message). Do not retry.
    BadRequest,
    /// Body larger than the vault accepts. Do not retry.
    PayloadTooLarge,
    /// Missing, expired, forged or wrong-audience token. Get a new token.
    Unauthorized,
    /// No password backup for this account. Enroll first.
    NotRegistered,
    /// Guesses are used up; the escrowed key is destroyed. Never retry.
    Locked,
    /// The key exchange did not verify: wrong password. `attempts_left` says
    /// how many guesses remain.
    WrongPassword,
    /// The login state expired, was used, or the account changed since the
    /// start. Start again (this costs a guess).
    LoginExpired,
    /// Too many requests from this address or for this account. Retry after
    /// `retry_after_secs`.
    RateLimited,
    /// The record store is unavailable. Retry with backoff.
    StoreUnavailable,
    /// A bug or a damaged record on the vault. Retrying will not help.
    Internal,
}

impl ErrorCode {
    /// Whether the same request may succeed later.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::StoreUnavailable)
    }

    /// HTTP status used for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotRegistered => 404,
            ErrorCode::Locked => 423,
            ErrorCode::WrongPassword => 403,
            ErrorCode::LoginExpired => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::StoreUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            attempts_left: None,
            retry_after_secs: None,
        }
    }
}
