//! The retry policy, against a scripted fake vault: idempotent steps are
//! repeated through transient failures, a guess never is.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_client::{ClientError, ErrorCode, VaultClient};

const INFO: &str = r#"{"vault_id":"fake","protocol":"arca-vault-v1","ksf_version":1}"#;
const STATUS: &str =
    r#"{"registered":true,"locked":false,"attempts_used":0,"attempts_left":10,"max_attempts":10}"#;

fn err(code: &str, extra: &str) -> String {
    format!(r#"{{"code":"{code}","message":"scripted"{extra}}}"#)
}

/// What the fake answers to the `n`th (from 0) request of a route such as
/// `GET /v1/info`; `None` closes the connection without an answer.
type Script = dyn Fn(&str, usize) -> Option<(u16, String)> + Send + Sync;

/// A one-route-at-a-time HTTP server answering from a script.
struct Fake {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Fake {
    fn new(script: impl Fn(&str, usize) -> Option<(u16, String)> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counted = hits.clone();
        let script: Box<Script> = Box::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let route = request_line
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let n = {
                    let mut h = counted.lock().unwrap();
                    let n = h.entry(route.clone()).or_insert(0);
                    *n += 1;
                    *n - 1
                };
                if let Some((status, body)) = script(&route, n) {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        });
        Fake { base, hits }
    }

    fn hits(&self, route: &str) -> usize {
        self.hits.lock().unwrap().get(route).copied().unwrap_or(0)
    }

    fn client(&self) -> VaultClient {
        VaultClient::new(&self.base, &common::token("fake-user")).unwrap()
    }
}

#[test]
fn info_is_retried_through_an_unavailable_store() {
    let fake = Fake::new(|route, n| match (route, n) {
        ("GET /v1/info", 0 | 1) => Some((503, err("store_unavailable", ""))),
        ("GET /v1/info", _) => Some((200, INFO.into())),
        _ => None,
    });
    let c = fake.client();
    assert_eq!(c.vault_id().unwrap(), "fake");
    assert_eq!(fake.hits("GET /v1/info"), 3);
    // Cached: not asked again.
    assert_eq!(c.vault_id().unwrap(), "fake");
    assert_eq!(fake.hits("GET /v1/info"), 3);
}

#[test]
fn retries_give_up_after_three_tries() {
    let fake = Fake::new(|route, _| match route {
        "GET /v1/status" => Some((503, err("store_unavailable", ""))),
        "POST /v1/register/start" => Some((502, "<html>Bad Gateway</html>".into())),
        "GET /v1/info" => Some((200, INFO.into())),
        _ => None,
    });
    let c = fake.client();
    let e = c.status().unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Vault {
                code: ErrorCode::StoreUnavailable,
                ..
            }
        ) && e.retryable(),
        "{e:?}"
    );
    assert_eq!(fake.hits("GET /v1/status"), 3);
    // register/start is stateless on the vault, so it is retried too.
    let e = c.enroll("pw").unwrap_err();
    assert!(matches!(e, ClientError::VaultUnreachable(_)), "{e:?}");
    assert_eq!(fake.hits("POST /v1/register/start"), 3);
}

#[test]
fn a_guess_is_never_sent_twice() {
    let fake = Fake::new(|route, _| match route {
        "GET /v1/info" => Some((200, INFO.into())),
        "GET /v1/status" => Some((200, STATUS.into())),
        "POST /v1/recover/start" => Some((503, err("store_unavailable", ""))),
        _ => None,
    });
    let c = fake.client();
    let e = c.recover("pw").unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Vault {
                code: ErrorCode::StoreUnavailable,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(fake.hits("POST /v1/recover/start"), 1);

    // Nor when the answer is lost on the way back.
    let lost = Fake::new(|route, _| match route {
        "GET /v1/info" => Some((200, INFO.into())),
        _ => None,
    });
    let c = lost.client();
    let e = c.recover("pw").unwrap_err();
    assert!(
        matches!(e, ClientError::VaultUnreachable(_)) && e.retryable(),
        "{e:?}"
    );
    assert_eq!(lost.hits("POST /v1/recover/start"), 1);
}

#[test]
fn rate_limits_are_waited_out() {
    let fake = Fake::new(|route, n| match (route, n) {
        ("GET /v1/status", 0) => Some((429, err("rate_limited", r#","retry_after_secs":1"#))),
        ("GET /v1/status", _) => Some((200, STATUS.into())),
        _ => None,
    });
    let started = Instant::now();
    assert_eq!(fake.client().attempts_left().unwrap(), 10);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.hits("GET /v1/status"), 2);
}

#[test]
fn a_delete_whose_answer_was_lost_counts_as_done() {
    let fake = Fake::new(|route, n| match (route, n) {
        // The first delete went through, but its answer was lost.
        ("DELETE /v1/account", 0) => None,
        ("DELETE /v1/account", _) => Some((404, err("not_registered", ""))),
        _ => None,
    });
    fake.client().remove_password().unwrap();
    assert_eq!(fake.hits("DELETE /v1/account"), 2);

    // Without a lost answer, nothing to delete is reported.
    let fake = Fake::new(|route, _| match route {
        "DELETE /v1/account" => Some((404, err("not_registered", ""))),
        _ => None,
    });
    assert_eq!(
        fake.client().remove_password().unwrap_err(),
        ClientError::NotEnrolled
    );
    assert_eq!(fake.hits("DELETE /v1/account"), 1);
}

#[test]
fn another_protocol_or_version_is_refused_before_any_guess() {
    for info in [
        r#"{"vault_id":"fake","protocol":"arca-vault-v2","ksf_version":1}"#,
        r#"{"vault_id":"fake","protocol":"arca-vault-v1","ksf_version":2}"#,
        r#"{"hello":"world"}"#,
    ] {
        let fake = Fake::new(move |route, _| match route {
            "GET /v1/info" => Some((200, info.into())),
            _ => Some((500, err("internal", ""))),
        });
        let e = fake.client().recover("pw").unwrap_err();
        assert!(
            matches!(e, ClientError::Protocol(_)) && !e.retryable(),
            "{e:?}"
        );
        assert_eq!(fake.hits("POST /v1/recover/start"), 0);
    }
}
