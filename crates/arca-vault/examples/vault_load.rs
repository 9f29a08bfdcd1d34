//! Load benchmark for `arca-vault` (run by `bench/vault.sh`, not a test).
//!
//! `vault_load micro N`: the ceiling, raw opaque-ke server work per full
//! recovery, in process, on the current CPU: parse the stored registration
//! and KE1, ServerLogin::start, serialize KE2 and the login state; parse
//! them and KE3 back, ServerLogin::finish. No HTTP, JSON, JWT or store.
//!
//! `vault_load load URL HS_SECRET VAULT_ID SECS SERVER_PID`: full recoveries over HTTP
//! (register once, then recover-start + recover-finish, each client with
//! its own account and keep-alive connection). Finds the peak throughput
//! over increasing concurrency, then runs open-loop at half the peak rate
//! and reports p50/p99 latency. Prints one JSON object per phase.
//!
//! The client stretches with a tiny Argon2 (8 KiB, 1 pass): key stretching is
//! client-only work that the server never sees, and the load generator
//! shares this 2-core machine with the server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_vault_api::*;
use argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_core::OsRng;

fn cheap_ksf() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8, 1, 1, None).unwrap(),
    )
}

fn micro(n: usize) {
    let setup = ServerSetup::<Suite>::new(&mut OsRng);
    let cred = AccountId::new("t", "u").credential_id();
    let ids = Identifiers {
        client: Some(&cred),
        server: Some(b"bench"),
    };
    let ksf = cheap_ksf();
    let reg = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
    let resp = ServerRegistration::<Suite>::start(&setup, reg.message, &cred).unwrap();
    let fin = reg
        .state
        .finish(
            &mut OsRng,
            b"pw",
            resp.message,
            ClientRegistrationFinishParameters::new(ids, Some(&ksf)),
        )
        .unwrap();
    // What the server holds and receives as bytes: parsing them is server work.
    let file_bytes = ServerRegistration::<Suite>::finish(fin.message).serialize();
    let params = ServerLoginParameters {
        context: Some(CONTEXT),
        identifiers: ids,
    };
    let mut server_time = Duration::ZERO;
    for _ in 0..n {
        let login = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let ke1 = login.message.serialize();
        let t = Instant::now();
        let file = ServerRegistration::<Suite>::deserialize(&file_bytes).unwrap();
        let request = opaque_ke::CredentialRequest::<Suite>::deserialize(&ke1).unwrap();
        let ke2 = ServerLogin::start(
            &mut OsRng,
            &setup,
            Some(file),
            request,
            &cred,
            params.clone(),
        )
        .unwrap();
        // The server also serializes its state (sealed login state) and KE2.
        let state = ke2.state.serialize();
        let ke2_bytes = ke2.message.serialize();
        server_time += t.elapsed();
        let response = CredentialResponse::<Suite>::deserialize(&ke2_bytes).unwrap();
        let done = login
            .state
            .finish(
                &mut OsRng,
                b"pw",
                response,
                ClientLoginFinishParameters::new(Some(CONTEXT), ids, Some(&ksf)),
            )
            .unwrap();
        let ke3 = done.message.serialize();
        let t = Instant::now();
        let st = ServerLogin::<Suite>::deserialize(&state).unwrap();
        let fin = opaque_ke::CredentialFinalization::<Suite>::deserialize(&ke3).unwrap();
        st.finish(fin, params.clone()).unwrap();
        server_time += t.elapsed();
    }
    let per = server_time.as_secs_f64() / n as f64;
    println!(
        "{}",
        serde_json::json!({ "phase": "micro", "recoveries": n, "server_us_per_recovery": per * 1e6, "ceiling_per_sec_one_core": 1.0 / per })
    );
}

struct Account {
    agent: ureq::Agent,
    base: String,
    auth: String,
    account: AccountId,
    vault_id: String,
}

impl Account {
    fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(&self, path: &str, body: &B) -> R {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .send_json(body)
            .expect("request");
        assert_eq!(
            r.status().as_u16(),
            200,
            "{path}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        r.body_mut().read_json().expect("json")
    }

    fn register(&self) {
        let ksf = cheap_ksf();
        let cred = self.account.credential_id();
        let ids = Identifiers {
            client: Some(&cred),
            server: Some(self.vault_id.as_bytes()),
        };
        let reg = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let r: RegisterStartResponse = self.post(
            "/v1/register/start",
            &RegisterStartRequest {
                registration_request: reg.message.serialize().to_vec().into(),
            },
        );
        let resp = RegistrationResponse::<Suite>::deserialize(&r.registration_response.0).unwrap();
        let fin = reg
            .state
            .finish(
                &mut OsRng,
                b"pw",
                resp,
                ClientRegistrationFinishParameters::new(ids, Some(&ksf)),
            )
            .unwrap();
        let _: RegisterFinishResponse = self.post(
            "/v1/register/finish",
            &RegisterFinishRequest {
                registration_upload: fin.message.serialize().to_vec().into(),
                sealed_secret: vec![7u8; 80].into(),
            },
        );
    }

    /// One full recovery; returns its latency.
    fn recover(&self, ksf: &Argon2<'static>) -> Duration {
        let t = Instant::now();
        let cred = self.account.credential_id();
        let ids = Identifiers {
            client: Some(&cred),
            server: Some(self.vault_id.as_bytes()),
        };
        let login = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let s: RecoverStartResponse = self.post(
            "/v1/recover/start",
            &RecoverStartRequest {
                credential_request: login.message.serialize().to_vec().into(),
            },
        );
        let resp = CredentialResponse::<Suite>::deserialize(&s.credential_response.0).unwrap();
        let done = login
            .state
            .finish(
                &mut OsRng,
                b"pw",
                resp,
                ClientLoginFinishParameters::new(Some(CONTEXT), ids, Some(ksf)),
            )
            .unwrap();
        let f: RecoverFinishResponse = self.post(
            "/v1/recover/finish",
            &RecoverFinishRequest {
                login_state: s.login_state,
                credential_finalization: done.message.serialize().to_vec().into(),
            },
        );
        assert!(!f.encrypted_secret.0.is_empty());
        t.elapsed()
    }
}

fn token(secret: &[u8], vault_id: &str, sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims =
        serde_json::json!({ "iss": "bench", "sub": sub, "aud": vault_id, "exp": now + 3600 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Closed loop: `clients` threads recover back to back for `secs`.
fn closed_loop(accounts: &[Arc<Account>], clients: usize, secs: f64) -> (f64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let handles: Vec<_> = accounts[..clients]
        .iter()
        .map(|a| {
            let (a, stop, lat) = (a.clone(), stop.clone(), lat.clone());
            std::thread::spawn(move || {
                let ksf = cheap_ksf();
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    mine.push(a.recover(&ksf));
                }
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = Arc::try_unwrap(lat).unwrap().into_inner().unwrap();
    l.sort();
    (l.len() as f64 / elapsed, l)
}

/// Open loop at `rate` recoveries/s: latency counted from the scheduled time.
fn open_loop(accounts: &[Arc<Account>], rate: f64, secs: f64) -> (f64, Vec<Duration>) {
    let total = (rate * secs) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now() + Duration::from_millis(50);
    let handles: Vec<_> = accounts
        .iter()
        .map(|a| {
            let (a, next, lat) = (a.clone(), next.clone(), lat.clone());
            std::thread::spawn(move || {
                let ksf = cheap_ksf();
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    a.recover(&ksf);
                    mine.push(at.elapsed());
                }
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = Arc::try_unwrap(lat).unwrap().into_inner().unwrap();
    l.sort();
    (l.len() as f64 / elapsed, l)
}

/// CPU seconds the server process has used so far.
fn server_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

fn load(base: &str, secret: &str, vault_id: &str, secs: f64, pid: u32) {
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .expect("base64url secret");
    let max_clients = 32;
    let accounts: Vec<Arc<Account>> = (0..max_clients)
        .map(|i| {
            let sub = format!("load-{i}-{}", std::process::id());
            Arc::new(Account {
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into(),
                base: base.to_string(),
                auth: format!("Bearer {}", token(&secret, vault_id, &sub)),
                account: AccountId::new("bench", sub),
                vault_id: vault_id.to_string(),
            })
        })
        .collect();
    for a in &accounts {
        a.register();
    }
    let mut peak = (0.0f64, 0usize);
    for clients in [1, 2, 4, 8, 16, 32] {
        let cpu0 = server_cpu(pid);
        let (tput, l) = closed_loop(&accounts, clients, secs);
        let cpu = server_cpu(pid) - cpu0;
        println!(
            "{}",
            serde_json::json!({ "phase": "closed", "clients": clients, "per_sec": tput, "p50_ms": pct(&l, 0.5), "p99_ms": pct(&l, 0.99),
                                 "server_cpu_us_per_recovery": cpu * 1e6 / l.len().max(1) as f64 })
        );
        if tput > peak.0 {
            peak = (tput, clients);
        }
    }
    let half = peak.0 / 2.0;
    let (tput, l) = open_loop(&accounts, half, secs.max(5.0));
    println!(
        "{}",
        serde_json::json!({ "phase": "half", "target_per_sec": half, "per_sec": tput, "p50_ms": pct(&l, 0.5), "p99_ms": pct(&l, 0.99), "peak_per_sec": peak.0, "peak_clients": peak.1 })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("micro") => micro(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000)),
        Some("load") if args.len() >= 7 => load(
            &args[2],
            &args[3],
            &args[4],
            args[5].parse().unwrap_or(5.0),
            args[6].parse().unwrap_or(0),
        ),
        _ => {
            eprintln!(
                "usage: vault_load micro [N] | vault_load load URL HS_SECRET_B64URL VAULT_ID SECS SERVER_PID"
            );
            std::process::exit(2);
        }
    }
}
