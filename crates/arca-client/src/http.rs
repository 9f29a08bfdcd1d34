//! One HTTP exchange with the vault, and the retry policy around it.
//!
//! Only requests that are safe to repeat are retried: reading info and
//! status, `register/start` (stateless on the vault) and deleting the
//! account. `recover/start` is never repeated automatically, because the
//! vault counts a guess before it answers: a lost answer already cost one,
//! and a silent retry would spend another without the user knowing. The
//! finish steps are single-use by design (the login state works once).

use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::ClientError;

/// Attempts of a retryable request, the first included.
const TRIES: u32 = 3;
/// Backoff before the second attempt; doubles after that.
const BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait we honour from a `retry_after_secs`: beyond this the
/// caller (and the user) is better served by an error it can show.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// Whole exchange, DNS to last body byte. Argon2id runs on the client, so
/// the vault answers fast; a slow answer means a sick network.
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Vault answers are a few hundred bytes; anything near this is not one.
const MAX_ANSWER: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

/// Whether a request may be sent again when its answer is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Sent once: it counts a guess or spends single-use state.
    Once,
    /// Idempotent: repeat on transport errors and retryable vault codes.
    Retry,
    /// `DELETE /v1/account`: idempotent, and a `not_registered` answer after
    /// an attempt whose answer was lost means that attempt did the delete.
    RetryDelete,
}

/// The vault's address, the agent, and the bearer header.
pub(crate) struct Http {
    agent: ureq::Agent,
    base: String,
    authorization: Zeroizing<String>,
}

/// A success answer: status and body text.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Http {
    /// `roots`: PEM certificates to trust instead of the built-in web roots.
    pub(crate) fn new(
        base_url: &str,
        token: &str,
        roots: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Protocol(format!(
                "the vault address {base:?} must start with https:// (or http:// for a local test vault)"
            )));
        }
        let mut config = ureq::Agent::config_builder()
            // Error statuses carry the vault's typed error body: read them.
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // The vault never redirects; following one would hand the
            // bearer token's requests to someone else's server.
            .max_redirects(0)
            .user_agent(concat!("arca-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = roots {
            config = config.tls_config(tls_trusting(pem)?);
        }
        Ok(Self {
            agent: config.build().into(),
            base,
            authorization: Zeroizing::new(format!("Bearer {}", token.trim())),
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request under `policy`; returns the 2xx answer or the error.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        authenticated: bool,
        policy: Policy,
    ) -> Result<Answer, ClientError> {
        let tries = if policy == Policy::Once { 1 } else { TRIES };
        // Whether an earlier attempt may have reached the vault without us
        // seeing the answer.
        let mut unanswered = false;
        let mut attempt = 1;
        loop {
            let (error, transient, retry_after) =
                match self.send_once(method, path, body, authenticated) {
                    Ok(answer) if (200..300).contains(&answer.status) => return Ok(answer),
                    Ok(answer) => {
                        let (error, after) =
                            ClientError::from_response(answer.status, &answer.body);
                        if policy == Policy::RetryDelete
                            && unanswered
                            && error == ClientError::NotEnrolled
                        {
                            return Ok(Answer {
                                status: 204,
                                body: String::new(),
                            });
                        }
                        // A gateway's 502-504 may come after the vault
                        // did the work: as good as a lost answer.
                        if matches!(error, ClientError::VaultUnreachable(_)) {
                            unanswered = true;
                        }
                        let transient = error.retryable();
                        (error, transient, after.map(Duration::from_secs))
                    }
                    Err(e) => {
                        unanswered = true;
                        let transient = transient_transport(&e);
                        let error = ClientError::VaultUnreachable(format!("{}: {e}", self.base));
                        (error, transient, None)
                    }
                };
            if !transient || attempt >= tries {
                return Err(error);
            }
            std::thread::sleep(backoff(attempt, retry_after));
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        authenticated: bool,
    ) -> Result<Answer, ureq::Error> {
        let url = format!("{}{path}", self.base);
        let auth = authenticated.then_some(self.authorization.as_str());
        let mut response = match method {
            Method::Get => with_auth(self.agent.get(&url), auth).call()?,
            Method::Delete => with_auth(self.agent.delete(&url), auth).call()?,
            Method::Post => {
                let request = with_auth(self.agent.post(&url), auth);
                match body {
                    Some(b) => request.send_json(b)?,
                    None => request.send_empty()?,
                }
            }
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()?;
        Ok(Answer { status, body })
    }
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => request.header("Authorization", a),
        None => request,
    }
}

/// Transport failures that a second attempt can plausibly cure. TLS and
/// address errors are not among them: they fail the same way every time.
fn transient_transport(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// Wait before attempt `attempt + 1`: exponential with jitter (so clients
/// that failed together do not return together), at least what the vault
/// asked for, capped.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1));
    let mut r = [0u8; 1];
    arca_crypto::fill_random(&mut r);
    // Between 50 % and 150 % of the exponential step.
    let jittered = exp.mul_f64(0.5 + f64::from(r[0]) / 255.0);
    match retry_after {
        Some(after) => jittered.max(after.min(RETRY_AFTER_CAP)),
        None => jittered,
    }
}

/// A TLS configuration that trusts exactly the certificates in `pem`.
fn tls_trusting(pem: &[u8]) -> Result<ureq::tls::TlsConfig, ClientError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            // A bundle may carry keys or other sections; only certificates
            // can be trust roots.
            Ok(_) => {}
            Err(e) => {
                return Err(ClientError::Protocol(format!(
                    "the trusted certificates are not valid PEM: {e}"
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(ClientError::Protocol(
            "no PEM certificate found among the trusted certificates".into(),
        ));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after_up_to_a_cap() {
        for attempt in 1..=3 {
            let step = BACKOFF * 2u32.pow(attempt - 1);
            let d = backoff(attempt, None);
            assert!(d >= step / 2 && d <= step * 3 / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert_eq!(backoff(1, Some(Duration::from_secs(3600))), RETRY_AFTER_CAP);
    }

    #[test]
    fn addresses_must_be_http_urls() {
        assert!(matches!(
            Http::new("vault.example", "t", None),
            Err(ClientError::Protocol(_))
        ));
        let h = Http::new(" https://vault.example/ ", "t", None).unwrap();
        assert_eq!(h.base(), "https://vault.example");
    }

    #[test]
    fn trusted_roots_must_contain_a_certificate() {
        assert!(matches!(
            Http::new("https://v", "t", Some(b"not pem")),
            Err(ClientError::Protocol(_))
        ));
    }
}
