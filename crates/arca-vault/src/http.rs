//! The HTTP API (axum): `/v1` JSON routes, bearer auth, body limits, rate
//! limits, typed errors, health, metrics and the OpenAPI document.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arca_vault_api::{
    AccountId, ErrorBody, ErrorCode, InfoResponse, KSF_VERSION, PROTOCOL, RecoverFinishRequest,
    RecoverStartRequest, RegisterFinishRequest, RegisterFinishResponse, RegisterStartRequest,
    RegisterStartResponse,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::auth::Authenticator;
use crate::core::ApiError;
use crate::service::{Vault, now};
use crate::store::Store;

pub struct AppState<S: Store> {
    pub vault: Vault<S>,
    pub auth: Authenticator,
    pub per_ip: RateLimiter<IpAddr>,
    pub per_account: RateLimiter<AccountId>,
}

type Shared<S> = Arc<AppState<S>>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = (self.code == ErrorCode::RateLimited).then_some(1u64);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            attempts_left: self.attempts_left,
            retry_after_secs: retry,
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(r) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(r));
        }
        resp
    }
}

/// A token bucket per key: `per_minute` requests a minute, bursts of up to
/// a fifth of that. Slows abuse; the guess counter is the real limit.
pub struct RateLimiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Entries kept before idle buckets are dropped.
const MAX_BUCKETS: usize = 100_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, key: &K) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let rate = self.per_minute as f64 / 60.0;
        let burst = (self.per_minute as f64 / 5.0).max(1.0);
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_BUCKETS {
            map.retain(|_, (_, t)| now.duration_since(*t).as_secs() < 60);
        }
        let (tokens, last) = map.entry(key.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn limited(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests {what}: slow down"),
    )
}

/// The account of a request, from its bearer token.
pub struct Authed(pub AccountId);

impl<S: Store> FromRequestParts<Shared<S>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared<S>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |why: &str| ApiError::new(ErrorCode::Unauthorized, why.to_string());
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let account = state
            .auth
            .verify(token.trim(), now())
            .map_err(|why| unauthorized(&why))?;
        if !state.per_account.allow(&account) {
            return Err(limited("for this account"));
        }
        Ok(Authed(account))
    }
}

/// JSON body with typed errors for malformed, oversized or truncated bodies.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "request body too large",
                    ))
                } else {
                    Err(ApiError::new(
                        ErrorCode::BadRequest,
                        format!("cannot read the body: {e}"),
                    ))
                }
            }
            Err(e) => Err(ApiError::new(ErrorCode::BadRequest, e.body_text())),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics<S: Store>(State(s): State<Shared<S>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut out = s.vault.metrics.render();
        s.vault.store.render_metrics(&mut out);
        out
    })
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

async fn info<S: Store>(State(s): State<Shared<S>>) -> Json<InfoResponse> {
    Json(InfoResponse {
        vault_id: s.vault.core.vault_id().to_string(),
        protocol: PROTOCOL.into(),
        ksf_version: KSF_VERSION,
    })
}

async fn register_start<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
    ApiJson(req): ApiJson<RegisterStartRequest>,
) -> Result<Json<RegisterStartResponse>, ApiError> {
    let msg = s
        .vault
        .core
        .register_start(&account, &req.registration_request.0)?;
    Ok(Json(RegisterStartResponse {
        registration_response: msg.into(),
    }))
}

async fn register_finish<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
    ApiJson(req): ApiJson<RegisterFinishRequest>,
) -> Result<Json<RegisterFinishResponse>, ApiError> {
    let max_attempts = s
        .vault
        .run(&account, |cur, now| {
            s.vault.core.register_finish(&req, cur, now)
        })
        .await?;
    tracing::info!(account = %account, "password backup registered");
    Ok(Json(RegisterFinishResponse { max_attempts }))
}

async fn recover_start<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
    ApiJson(req): ApiJson<RecoverStartRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let counted = s
        .vault
        .run(&account, |cur, now| {
            s.vault
                .core
                .recover_start(&req.credential_request.0, cur, now)
        })
        .await?;
    Ok(Json(s.vault.core.answer_start(&account, counted, now())?))
}

async fn recover_finish<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
    ApiJson(req): ApiJson<RecoverFinishRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let resp = s
        .vault
        .run(&account, |cur, now| {
            s.vault.core.recover_finish(
                &account,
                &req.login_state.0,
                &req.credential_finalization.0,
                cur,
                now,
            )
        })
        .await?;
    tracing::info!(account = %account, "password recovery succeeded");
    Ok(Json(resp))
}

async fn status<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
) -> Result<impl IntoResponse, ApiError> {
    let resp = s
        .vault
        .run(&account, |cur, now| s.vault.core.status(cur, now))
        .await?;
    Ok(Json(resp))
}

async fn delete_account<S: Store>(
    State(s): State<Shared<S>>,
    Authed(account): Authed,
) -> Result<StatusCode, ApiError> {
    s.vault
        .run(&account, |cur, _| s.vault.core.delete(cur))
        .await?;
    tracing::info!(account = %account, "password backup deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::BadRequest, "no such route: see /openapi.json")
}

/// Per-IP limit, then metrics by route.
async fn observe<S: Store>(
    State(s): State<Shared<S>>,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    req: Request,
    next: Next,
) -> Response {
    let route =
        crate::openapi::route_label(req.extensions().get::<MatchedPath>().map(|m| m.as_str()));
    let started = Instant::now();
    let resp = if s.per_ip.allow(&peer.ip()) {
        next.run(req).await
    } else {
        limited("from this address").into_response()
    };
    s.vault.metrics.observe(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

pub fn router<S: Store>(state: Shared<S>, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::<S>))
        .route("/openapi.json", get(openapi))
        .route("/v1/info", get(info::<S>))
        .route("/v1/register/start", post(register_start::<S>))
        .route("/v1/register/finish", post(register_finish::<S>))
        .route("/v1/recover/start", post(recover_start::<S>))
        .route("/v1/recover/finish", post(recover_finish::<S>))
        .route("/v1/status", get(status::<S>))
        .route("/v1/account", delete(delete_account::<S>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .route_layer(middleware::from_fn_with_state(state.clone(), observe::<S>))
        .with_state(state)
}
