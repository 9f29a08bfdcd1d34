//! Bearer-token authentication: a JWT from the app's account system.
//!
//! The token's `iss` names the tenant; the tenant's pinned algorithm and
//! keys verify it; `aud` must be this vault's id; `exp` is required and at
//! most 24 h away; `sub` is the user. Tokens are never logged.

use std::collections::HashMap;
use std::sync::Mutex;

use arca_vault_api::AccountId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::{Algorithm, Tenant};

/// Longest accepted token lifetime from now.
const MAX_TOKEN_LIFETIME: i64 = 24 * 3600;
/// Clock skew tolerated for `exp`.
const LEEWAY: u64 = 30;

struct TenantKeys {
    id: String,
    algorithm: jsonwebtoken::Algorithm,
    keys: Vec<DecodingKey>,
}

pub struct Authenticator {
    vault_id: String,
    tenants: Vec<TenantKeys>,
    /// Tokens already verified: BLAKE3(token) -> (account, exp). A client
    /// sends the same token for every step, and checking a signature costs
    /// more than the lookup. Entries are honoured only until their `exp`.
    verified: Mutex<HashMap<[u8; 32], (AccountId, i64)>>,
}

/// Verified tokens remembered at most; the cache is cleared when full.
const MAX_CACHED_TOKENS: usize = 50_000;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

#[derive(Deserialize)]
struct Issuer {
    iss: Option<String>,
}

fn alg(a: Algorithm) -> jsonwebtoken::Algorithm {
    match a {
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
    }
}

impl Authenticator {
    pub fn new(vault_id: &str, tenants: &[Tenant]) -> Result<Self, String> {
        let mut out = Vec::new();
        for t in tenants {
            let mut keys = Vec::new();
            for k in &t.keys {
                let key = match t.algorithm {
                    Algorithm::EdDSA => {
                        let raw = URL_SAFE_NO_PAD.decode(k.trim()).map_err(|e| {
                            format!("tenant {:?}: EdDSA key is not base64url: {e}", t.id)
                        })?;
                        if raw.len() != 32 {
                            return Err(format!(
                                "tenant {:?}: an EdDSA key is 32 bytes, got {}",
                                t.id,
                                raw.len()
                            ));
                        }
                        DecodingKey::from_ed_der(&raw)
                    }
                    Algorithm::ES256 => DecodingKey::from_ec_pem(k.as_bytes())
                        .map_err(|e| format!("tenant {:?}: bad ES256 PEM key: {e}", t.id))?,
                    Algorithm::HS256 => {
                        let raw = URL_SAFE_NO_PAD.decode(k.trim()).map_err(|e| {
                            format!("tenant {:?}: HS256 secret is not base64url: {e}", t.id)
                        })?;
                        if raw.len() < 32 {
                            return Err(format!(
                                "tenant {:?}: an HS256 secret needs 32+ bytes",
                                t.id
                            ));
                        }
                        DecodingKey::from_secret(&raw)
                    }
                };
                keys.push(key);
            }
            out.push(TenantKeys {
                id: t.id.clone(),
                algorithm: alg(t.algorithm),
                keys,
            });
        }
        Ok(Self {
            vault_id: vault_id.into(),
            tenants: out,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The account a bearer token speaks for, or why it is refused. The
    /// reason is for the client; it never contains the token.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccountId, String> {
        let digest = *blake3::hash(token.as_bytes()).as_bytes();
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((account, exp)) = cache.get(&digest)
                && now <= *exp
            {
                return Ok(account.clone());
            }
        }
        let (account, exp) = self.verify_signature(token, now)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(digest, (account.clone(), exp));
        Ok(account)
    }

    fn verify_signature(&self, token: &str, now: i64) -> Result<(AccountId, i64), String> {
        let header = decode_header(token).map_err(|_| "malformed token".to_string())?;
        let payload = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .ok_or("malformed token")?;
        let iss = serde_json::from_slice::<Issuer>(&payload)
            .ok()
            .and_then(|i| i.iss)
            .ok_or("the token has no iss (tenant)")?;
        let tenant = self
            .tenants
            .iter()
            .find(|t| t.id == iss)
            .ok_or("the token's tenant is not configured on this vault")?;
        if header.alg != tenant.algorithm {
            return Err("the token's algorithm is not the one pinned for its tenant".into());
        }
        let mut v = Validation::new(tenant.algorithm);
        v.set_audience(&[&self.vault_id]);
        v.set_issuer(&[&tenant.id]);
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        v.leeway = LEEWAY;
        let mut last = String::from("no key");
        for key in &tenant.keys {
            match decode::<Claims>(token, key, &v) {
                Ok(data) => {
                    let c = data.claims;
                    if c.exp > now + MAX_TOKEN_LIFETIME {
                        return Err("the token's exp is more than 24 hours away".into());
                    }
                    if c.sub.is_empty() {
                        return Err("the token has an empty sub".into());
                    }
                    return Ok((AccountId::new(tenant.id.clone(), c.sub), c.exp));
                }
                Err(e) => last = describe(&e),
            }
        }
        Err(last)
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::InvalidAudience => "the token is for another vault (aud)".into(),
        K::InvalidIssuer => "the token's issuer does not match".into(),
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        K::InvalidAlgorithm => "the token's algorithm is not allowed".into(),
        _ => "invalid token".into(),
    }
}
