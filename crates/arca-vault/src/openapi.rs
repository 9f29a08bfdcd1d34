//! `/openapi.json`: every route, its body and its errors.

use serde_json::{Value, json};

/// Metric label of a matched route (bounded set, so labels cannot explode).
pub fn route_label(path: Option<&str>) -> &'static str {
    match path {
        Some("/healthz") => "/healthz",
        Some("/metrics") => "/metrics",
        Some("/openapi.json") => "/openapi.json",
        Some("/v1/info") => "/v1/info",
        Some("/v1/register/start") => "/v1/register/start",
        Some("/v1/register/finish") => "/v1/register/finish",
        Some("/v1/recover/start") => "/v1/recover/start",
        Some("/v1/recover/finish") => "/v1/recover/finish",
        Some("/v1/status") => "/v1/status",
        Some("/v1/account") => "/v1/account",
        _ => "other",
    }
}

fn b64(desc: &str) -> Value {
    json!({ "type": "string", "format": "base64url", "description": desc })
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

fn op(summary: &str, body: Option<&str>, ok: &str, auth: bool) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{ok}") } } } },
            "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    });
    if let Some(b) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{b}") } } } });
    }
    if auth {
        o["security"] = json!([{ "bearer": [] }]);
    }
    o
}

pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "arca Backup Key Vault", "version": "1", "description": "OPAQUE (RFC 9807) guess-limited key escrow. See docs/vault-protocol.md." },
        "paths": {
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition format" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3" } } } },
            "/v1/info": { "get": op("Vault id, protocol and key-stretching version", None, "Info", false) },
            "/v1/register/start": { "post": op("OPAQUE registration, step 1", Some("RegisterStartRequest"), "RegisterStartResponse", true) },
            "/v1/register/finish": { "post": op("OPAQUE registration, step 2: store the record and the sealed secret", Some("RegisterFinishRequest"), "RegisterFinishResponse", true) },
            "/v1/recover/start": { "post": op("Recovery step 1: counts a guess durably, then returns KE2", Some("RecoverStartRequest"), "RecoverStartResponse", true) },
            "/v1/recover/finish": { "post": op("Recovery step 2: verifies KE3, resets the count, returns the secret under the session key", Some("RecoverFinishRequest"), "RecoverFinishResponse", true) },
            "/v1/status": { "get": op("Registered? Attempts left?", None, "Status", true) },
            "/v1/account": { "delete": {
                "summary": "Turn password backup off: delete the record and its secret",
                "security": [{ "bearer": [] }],
                "responses": { "204": { "description": "deleted" }, "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } }
            } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Info": obj(json!({ "vault_id": { "type": "string" }, "protocol": { "type": "string" }, "ksf_version": { "type": "integer" } }), &["vault_id", "protocol", "ksf_version"]),
                "RegisterStartRequest": obj(json!({ "registration_request": b64("OPAQUE RegistrationRequest") }), &["registration_request"]),
                "RegisterStartResponse": obj(json!({ "registration_response": b64("OPAQUE RegistrationResponse") }), &["registration_response"]),
                "RegisterFinishRequest": obj(json!({ "registration_upload": b64("OPAQUE RegistrationUpload"), "sealed_secret": b64("client-sealed secret, 1-1024 bytes") }), &["registration_upload", "sealed_secret"]),
                "RegisterFinishResponse": obj(json!({ "max_attempts": { "type": "integer" } }), &["max_attempts"]),
                "RecoverStartRequest": obj(json!({ "credential_request": b64("OPAQUE CredentialRequest (KE1)") }), &["credential_request"]),
                "RecoverStartResponse": obj(json!({ "credential_response": b64("OPAQUE CredentialResponse (KE2)"), "login_state": b64("sealed server state"), "attempts_left": { "type": "integer" } }), &["credential_response", "login_state", "attempts_left"]),
                "RecoverFinishRequest": obj(json!({ "login_state": b64("from recover/start"), "credential_finalization": b64("OPAQUE CredentialFinalization (KE3)") }), &["login_state", "credential_finalization"]),
                "RecoverFinishResponse": obj(json!({ "encrypted_secret": b64("sealed secret under the session-derived key") }), &["encrypted_secret"]),
                "Status": obj(json!({ "registered": { "type": "boolean" }, "locked": { "type": "boolean" }, "attempts_used": { "type": "integer" }, "attempts_left": { "type": "integer" }, "max_attempts": { "type": "integer" } }), &["registered", "locked", "attempts_used", "attempts_left", "max_attempts"]),
                "Error": {
                    "type": "object",
                    "properties": {
                        "code": { "type": "string", "enum": ["bad_request", "payload_too_large", "unauthorized", "not_registered", "locked", "wrong_password", "login_expired", "rate_limited", "store_unavailable", "internal"] },
                        "message": { "type": "string" },
                        "attempts_left": { "type": "integer" },
                        "retry_after_secs": { "type": "integer" }
                    },
                    "required": ["code", "message"]
                }
            }
        }
    })
}
