//! The vault over real HTTP: a started `arca-vault` process and clients
//! that speak the protocol.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use arca_vault_api::RecoverStartResponse;
use common::*;

#[test]
fn register_and_recover_returns_the_exact_secret() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "alice");
    assert!(!c.status().registered);
    let secret: Vec<u8> = (0..32).collect();
    c.register("correct horse battery", &secret);
    let s = c.status();
    assert!(s.registered && !s.locked);
    assert_eq!(
        (s.attempts_used, s.attempts_left, s.max_attempts),
        (0, 10, 10)
    );
    assert_eq!(c.recover("correct horse battery").unwrap(), secret);
    assert_eq!(c.status().attempts_used, 0, "success resets the count");

    // Another account with the same password sees nothing of alice's.
    let bob = Client::new(&server, "bob");
    assert_eq!(
        bob.recover("correct horse battery"),
        Err("wrong_password".into())
    );

    // Delete turns password backup off.
    let r = c.call::<()>("DELETE", "/v1/account", None);
    assert_eq!(r.status, 204);
    assert!(!c.status().registered);
}

#[test]
fn two_hundred_concurrent_wrong_guesses_get_at_most_ten_answers() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "target");
    c.register("the right one", b"escrowed key bytes");
    let answers: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let c = Client::new(&server, "target");
                s.spawn(move || {
                    let (_, reply) = c.start_recover(&format!("guess {i}"));
                    match reply.status {
                        200 => 1,
                        423 => 0,
                        other => panic!("unexpected {other}: {}", reply.body),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(answers <= 10, "{answers} KE2 responses");
    assert_eq!(answers, 10, "every one of the 10 guesses is usable");
    let s = c.status();
    assert!(s.locked, "{s:?}");
    assert_eq!(s.attempts_left, 0);
    let (_, reply) = c.start_recover("the right one");
    assert_eq!(reply.status, 423);
    assert_eq!(reply.code(), "locked");
}

#[test]
fn right_password_after_nine_wrong_ones_succeeds_and_resets() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "u");
    c.register("right password", b"k");
    for i in 0..9 {
        let (state, reply) = c.start_recover("wrong password");
        let start: RecoverStartResponse = reply.ok();
        assert_eq!(start.attempts_left, 9 - i);
        assert_eq!(
            c.finish_recover(state, "wrong password", start),
            Err("wrong_password".into())
        );
    }
    assert_eq!(c.status().attempts_left, 1);
    assert_eq!(c.recover("right password").unwrap(), b"k");
    let s = c.status();
    assert_eq!((s.attempts_used, s.attempts_left, s.locked), (0, 10, false));
}

#[test]
fn a_client_that_never_sends_ke3_is_still_counted() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "u");
    c.register("pw-123456", b"k");
    for n in 1..=3 {
        let (_state, reply) = c.start_recover("pw-123456");
        assert_eq!(reply.status, 200);
        assert_eq!(c.status().attempts_used, n);
    }
}

#[test]
fn a_restart_between_start_and_finish_gives_no_extra_guess() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "u");
    c.register("my password", b"the key");
    for _ in 0..4 {
        let (_, r) = c.start_recover("not it");
        assert_eq!(r.status, 200);
    }
    let (state, reply) = c.start_recover("my password");
    let start: RecoverStartResponse = reply.ok();
    drop(server);

    let server = v.start();
    let c = Client::new(&server, "u");
    assert_eq!(c.status().attempts_used, 5, "counts survive the restart");
    // The login started before the restart finishes on the new process...
    let start2 = start.clone();
    assert_eq!(
        c.finish_recover(state, "my password", start).unwrap(),
        b"the key"
    );
    assert_eq!(c.status().attempts_used, 0);
    // ...exactly once.
    let (state, _) = c.start_recover("x");
    let _ = state;
    let (st, _) = arca_vault_api::client::recover_start(b"my password").unwrap();
    let reused = c.finish_recover(st, "my password", start2);
    assert!(reused.is_err(), "a login state works once");
}

#[test]
fn tampered_or_swapped_rows_are_detected() {
    let v = VaultDir::new();
    let server = v.start();
    let alice = Client::new(&server, "alice");
    let bob = Client::new(&server, "bob");
    alice.register("alice-pass", b"alice key");
    bob.register("bob-pass", b"bob key");
    drop(server);

    let db = rusqlite::Connection::open(v.db()).unwrap();
    let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = db
        .prepare("SELECT account, version, sealed FROM records ORDER BY account")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for (_, _, sealed) in &rows {
        assert!(
            !sealed
                .windows(7)
                .any(|w| w == b"bob key" || w == b"alice k")
        );
    }
    // Swap the two sealed records.
    db.execute(
        "UPDATE records SET sealed = ?1 WHERE account = ?2",
        (&rows[1].2, &rows[0].0),
    )
    .unwrap();
    db.execute(
        "UPDATE records SET sealed = ?1 WHERE account = ?2",
        (&rows[0].2, &rows[1].0),
    )
    .unwrap();
    drop(db);
    let server = v.start();
    for user in ["alice", "bob"] {
        let c = Client::new(&server, user);
        let (_, r) = c.start_recover("anything");
        assert_eq!(
            (r.status, r.code()),
            (500, "internal"),
            "{user}: {}",
            r.body
        );
    }
    drop(server);

    // Restore alice's row but move it to another version.
    let db = rusqlite::Connection::open(v.db()).unwrap();
    db.execute(
        "UPDATE records SET sealed = ?1, version = ?2 WHERE account = ?3",
        (&rows[0].2, rows[0].1 + 1, &rows[0].0),
    )
    .unwrap();
    drop(db);
    let server = v.start();
    let (_, r) = Client::new(&server, "alice").start_recover("alice-pass");
    assert_eq!(r.code(), "internal");
    // Back at its real version it opens again.
    drop(server);
    let db = rusqlite::Connection::open(v.db()).unwrap();
    db.execute(
        "UPDATE records SET version = ?1 WHERE account = ?2",
        (rows[0].1, &rows[0].0),
    )
    .unwrap();
    drop(db);
    let server = v.start();
    assert_eq!(
        Client::new(&server, "alice").recover("alice-pass").unwrap(),
        b"alice key"
    );
}

#[test]
fn bad_tokens_are_refused_and_nothing_is_counted() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "victim");
    c.register("pw-abcdef", b"k");
    let forged = {
        let claims = serde_json::json!({ "iss": TENANT, "sub": "victim", "aud": VAULT_ID, "exp": 4_000_000_000i64 });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"not the tenant's secret at all, no"),
        )
        .unwrap()
    };
    let cases = [
        ("missing", None),
        ("expired", Some(token_for("victim", VAULT_ID, -3600))),
        (
            "wrong audience",
            Some(token_for("victim", "another-vault", 3600)),
        ),
        (
            "too long-lived",
            Some(token_for("victim", VAULT_ID, 48 * 3600)),
        ),
        ("forged", Some(forged)),
        ("garbage", Some("not.a.jwt".to_string())),
    ];
    for (what, tok) in cases {
        let mut bad = Client::new(&server, "victim");
        bad.token = tok;
        let (_, r) = bad.start_recover("guess");
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized"),
            "{what}: {}",
            r.body
        );
        let r = bad.call::<()>("GET", "/v1/status", None);
        assert_eq!(r.status, 401, "{what}");
    }
    assert_eq!(
        c.status().attempts_used,
        0,
        "no refused request counted a guess"
    );
}

fn raw_http(base: &str, request: &[u8]) -> String {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn malformed_oversized_and_truncated_bodies_get_typed_4xx() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "u");
    let post = |body: &str| {
        let auth = format!("Bearer {}", c.token.as_ref().unwrap());
        agent()
            .post(&format!("{}/v1/recover/start", server.base))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap()
    };
    let cases = [
        ("not json", "{{{", 400, "bad_request"),
        ("wrong field", r#"{"nope": "AAAA"}"#, 400, "bad_request"),
        (
            "bad base64",
            r#"{"credential_request": "!!!"}"#,
            400,
            "bad_request",
        ),
        (
            "bad protocol message",
            r#"{"credential_request": "AAAA"}"#,
            400,
            "bad_request",
        ),
    ];
    for (what, body, status, code) in cases {
        let mut r = post(body);
        assert_eq!(r.status().as_u16(), status, "{what}");
        let v: serde_json::Value = r.body_mut().read_json().unwrap();
        assert_eq!(v["code"], code, "{what}: {v}");
    }
    let big = format!(r#"{{"credential_request": "{}"}}"#, "A".repeat(64 * 1024));
    let mut r = post(&big);
    assert_eq!(r.status().as_u16(), 413);
    let v: serde_json::Value = r.body_mut().read_json().unwrap();
    assert_eq!(v["code"], "payload_too_large");

    // A body shorter than its Content-Length.
    let auth = c.token.as_ref().unwrap();
    let reply = raw_http(
        &server.base,
        format!(
            "POST /v1/recover/start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"credential_request\": \"AA"
        )
        .as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("bad_request"), "{reply}");

    // The server keeps serving.
    let mut r = agent()
        .get(&format!("{}/healthz", server.base))
        .call()
        .unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "ok\n");
    assert_eq!(c.status().attempts_used, 0);
}

#[test]
fn health_metrics_openapi_and_info() {
    let v = VaultDir::new();
    let server = v.start();
    let c = Client::new(&server, "m");
    c.register("pw-metrics1", b"k");
    let _ = c.start_recover("wrong");
    let get = |p: &str| {
        agent()
            .get(&format!("{}{p}", server.base))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let metrics = get("/metrics");
    assert!(
        metrics.contains("arca_vault_guesses_counted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/recover/start\",status=\"200\""),
        "{metrics}"
    );
    assert!(metrics.contains("arca_vault_request_duration_seconds_bucket"));
    // Registration and the counted guess: two durable writes.
    assert!(
        metrics.contains("arca_vault_store_writes_total 2\n"),
        "{metrics}"
    );
    let commits = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    let (all, synced) = (
        commits("arca_vault_store_commits_total "),
        commits("arca_vault_store_synced_commits_total "),
    );
    assert!((1..=2).contains(&all) && synced == all, "{metrics}");
    let api: serde_json::Value = serde_json::from_str(&get("/openapi.json")).unwrap();
    for route in [
        "/v1/register/start",
        "/v1/register/finish",
        "/v1/recover/start",
        "/v1/recover/finish",
        "/v1/status",
        "/v1/account",
        "/v1/info",
    ] {
        assert!(api["paths"][route].is_object(), "{route} documented");
    }
    let info: serde_json::Value = serde_json::from_str(&get("/v1/info")).unwrap();
    assert_eq!(info["vault_id"], VAULT_ID);
}
