//! The account a bearer token names. The vault verifies the token; the
//! client only reads `iss` (the tenant) and `sub` (the user) from its
//! payload, because both sides must bind the same account identity into the
//! OPAQUE exchange and the token is the only place the client learns it.

use arca_vault_api::AccountId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::ClientError;

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
}

/// Reads the account from a JWT without verifying it (the vault does that).
/// Errors never quote the token.
pub(crate) fn account_from_token(token: &str) -> Result<AccountId, ClientError> {
    let rejected = |why: &str| ClientError::TokenRejected(why.to_string());
    // The token goes into an HTTP header: anything outside visible ASCII
    // would be refused there anyway, so say so now, clearly.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(rejected(
            "the token is empty or has characters a JWT cannot have",
        ));
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(rejected(
            "the token is not a JWT (three parts separated by dots)",
        ));
    };
    // JWTs use unpadded base64url; tolerate padding some encoders add.
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| rejected("the token's payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&json)
        .map_err(|_| rejected("the token's payload is not a JSON object of claims"))?;
    match (claims.iss, claims.sub) {
        (Some(iss), Some(sub)) if !iss.is_empty() && !sub.is_empty() => {
            Ok(AccountId::new(iss, sub))
        }
        _ => Err(rejected(
            "the token names no account: it needs `iss` (the app) and `sub` (the user)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_tenant_and_user() {
        let a = account_from_token(&jwt(r#"{"iss":"chat-app","sub":"alice","aud":"v"}"#)).unwrap();
        assert_eq!(a, AccountId::new("chat-app", "alice"));
    }

    #[test]
    fn refuses_tokens_without_an_account() {
        for bad in [
            String::new(),
            "not a token".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            "a.!!!.c".into(),
            jwt("[1,2]"),
            jwt(r#"{"iss":"chat-app"}"#),
            jwt(r#"{"sub":"alice"}"#),
            jwt(r#"{"iss":"","sub":"alice"}"#),
            jwt(r#"{"iss":7,"sub":"alice"}"#),
        ] {
            let e = account_from_token(&bad).unwrap_err();
            assert!(matches!(e, ClientError::TokenRejected(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_never_quote_the_token() {
        let token = jwt(r#"{"iss":"chat-app","secret-ish":"zzzz"}"#);
        let e = account_from_token(&token).unwrap_err().to_string();
        assert!(!e.contains(&token) && !e.contains("zzzz"), "{e}");
    }
}
