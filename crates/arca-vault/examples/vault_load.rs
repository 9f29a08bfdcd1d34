//! Load benchmark for `arca-vault` (run by `bench/vault.sh`, not a test).
//!
//! `vault_load micro N`: the ceiling, raw opaque-ke server work per full
//! recovery, in process, on the current CPU: parse the stored registration
//! and KE1, ServerLogin::start, serialize KE2 and the login state; parse
//! them and KE3 back, ServerLogin::finish. No HTTP, JSON, JWT or store.
//!
//! `vault_load load URL HS_SECRET VAULT_ID SECS SERVER_PID`: full recoveries over HTTP
//! (register once, then recover-start + recover-finish, each client with
//! its own account and keep-alive connection; all clients on one thread). Finds the peak throughput
//! over increasing concurrency, then runs open-loop at half the peak rate
//! and reports p50/p99 latency. Prints one JSON object per phase.
//!
//! The client stretches with a tiny Argon2 (8 KiB, 1 pass): key stretching is
//! client-only work that the server never sees, and the load generator
//! shares this 2-core machine with the server.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
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

/// One keep-alive HTTP/1.1 connection for one account. Requests are
/// written and responses parsed by hand: the load generator shares the
/// machine with the server, so its own per-request cost must stay small
/// (a general-purpose client on a thread per connection cost about as much
/// CPU per request as the server's HTTP stack, and set the measured peak).
struct Conn {
    stream: tokio::net::TcpStream,
    host: String,
    auth: String,
    cred: Vec<u8>,
    vault_id: String,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, auth: String, account: &AccountId, vault_id: &str) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            host: addr.to_string(),
            auth,
            cred: account.credential_id(),
            vault_id: vault_id.to_string(),
            buf: Vec::with_capacity(4096),
        }
    }

    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> R {
        let body = serde_json::to_vec(body).expect("json");
        let (status, body) = self.request("POST", path, &body).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(body));
        serde_json::from_slice(body).expect("json response")
    }

    /// One request; returns the status and the body.
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, &[u8]) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.auth,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).await.expect("send");
        // Read the head, then exactly Content-Length bytes of body.
        self.buf.clear();
        let (head_len, status, length) = loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.expect("receive");
            assert!(n > 0, "{path}: the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("utf-8 head");
                let status: u16 = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{path}: not an HTTP response: {head}"));
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .expect("content-length");
                break (end + 4, status, length);
            }
        };
        while self.buf.len() < head_len + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.expect("receive");
            assert!(n > 0, "{path}: the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        (status, &self.buf[head_len..head_len + length])
    }

    /// A counter from the vault's /metrics.
    async fn metric(&mut self, name: &str) -> f64 {
        let (status, body) = self.request("GET", "/metrics", b"").await;
        assert_eq!(status, 200, "/metrics");
        String::from_utf8_lossy(body)
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    fn ids(&self) -> Identifiers<'_> {
        Identifiers {
            client: Some(&self.cred),
            server: Some(self.vault_id.as_bytes()),
        }
    }

    async fn register(&mut self) {
        let ksf = cheap_ksf();
        let reg = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let r: RegisterStartResponse = self
            .post(
                "/v1/register/start",
                &RegisterStartRequest {
                    registration_request: reg.message.serialize().to_vec().into(),
                },
            )
            .await;
        let resp = RegistrationResponse::<Suite>::deserialize(&r.registration_response.0).unwrap();
        let fin = reg
            .state
            .finish(
                &mut OsRng,
                b"pw",
                resp,
                ClientRegistrationFinishParameters::new(self.ids(), Some(&ksf)),
            )
            .unwrap();
        let _: RegisterFinishResponse = self
            .post(
                "/v1/register/finish",
                &RegisterFinishRequest {
                    registration_upload: fin.message.serialize().to_vec().into(),
                    sealed_secret: vec![7u8; 80].into(),
                },
            )
            .await;
    }

    /// One full recovery: KE1, KE2 (counted), KE3, the escrowed secret.
    /// `login` is a KE1 prepared ahead (see [`Ke1Pool`]).
    async fn recover(&mut self, login: Ke1, ksf: &Argon2<'static>) {
        let s: RecoverStartResponse = self
            .post(
                "/v1/recover/start",
                &RecoverStartRequest {
                    credential_request: login.message.clone(),
                },
            )
            .await;
        let resp = CredentialResponse::<Suite>::deserialize(&s.credential_response.0).unwrap();
        let done = login
            .state
            .finish(
                &mut OsRng,
                b"pw",
                resp,
                ClientLoginFinishParameters::new(Some(CONTEXT), self.ids(), Some(ksf)),
            )
            .unwrap();
        let f: RecoverFinishResponse = self
            .post(
                "/v1/recover/finish",
                &RecoverFinishRequest {
                    login_state: s.login_state,
                    credential_finalization: done.message.serialize().to_vec().into(),
                },
            )
            .await;
        assert!(!f.encrypted_secret.0.is_empty());
    }
}

/// A client's first message and the state to finish it.
struct Ke1 {
    message: arca_vault_api::B64,
    state: ClientLogin<Suite>,
}

impl Ke1 {
    fn new() -> Ke1 {
        let login = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
        Ke1 {
            message: login.message.serialize().to_vec().into(),
            state: login.state,
        }
    }
}

/// KE1s prepared before a phase. Blinding the password and making the
/// ephemeral key is client-only work that needs nothing from the server;
/// on a real phone it happens on the phone. Here the load generator has one
/// core for 32 "phones" and the client side of a recovery costs more CPU
/// than the server side, so it prepares KE1s between phases and spends the
/// measured time on what needs the server's reply (KE3). When the pool runs
/// dry a KE1 is made on the spot (and counted in `ke1_inline`).
#[derive(Default)]
struct Ke1Pool {
    ready: RefCell<Vec<Ke1>>,
    inline: Cell<u64>,
}

impl Ke1Pool {
    fn fill(&self, n: usize) {
        let mut ready = self.ready.borrow_mut();
        while ready.len() < n {
            ready.push(Ke1::new());
        }
    }

    fn take(&self) -> Ke1 {
        self.ready.borrow_mut().pop().unwrap_or_else(|| {
            self.inline.set(self.inline.get() + 1);
            Ke1::new()
        })
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

type Pool = Rc<RefCell<Vec<Conn>>>;

/// Closed loop: `clients` connections recover back to back for `secs`.
async fn closed_loop(
    pool: &Pool,
    ke1s: &Rc<Ke1Pool>,
    clients: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let conns: Vec<Conn> = pool.borrow_mut().drain(..clients).collect();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let ke1s = ke1s.clone();
            tokio::task::spawn_local(async move {
                let ksf = cheap_ksf();
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    c.recover(ke1s.take(), &ksf).await;
                    mine.push(t.elapsed());
                }
                (c, mine)
            })
        })
        .collect();
    gather(pool, tasks, started).await
}

/// Open loop at `rate` recoveries/s: each recovery is due at a fixed time
/// and its latency counts from then, so time spent waiting for a free
/// connection is included.
async fn open_loop(pool: &Pool, ke1s: &Rc<Ke1Pool>, rate: f64, secs: f64) -> (f64, Vec<Duration>) {
    let total = (rate * secs) as u64;
    let next = Rc::new(Cell::new(0u64));
    let start = Instant::now() + Duration::from_millis(50);
    let conns: Vec<Conn> = pool.borrow_mut().drain(..).collect();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (next, ke1s) = (next.clone(), ke1s.clone());
            tokio::task::spawn_local(async move {
                let ksf = cheap_ksf();
                let mut mine = Vec::new();
                loop {
                    let i = next.get();
                    if i >= total {
                        break;
                    }
                    next.set(i + 1);
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                    c.recover(ke1s.take(), &ksf).await;
                    mine.push(at.elapsed());
                }
                (c, mine)
            })
        })
        .collect();
    gather(pool, tasks, start).await
}

type ClientTask = tokio::task::JoinHandle<(Conn, Vec<Duration>)>;

/// Waits for the clients, returns their connections to the pool, and gives
/// the rate since `since` and the sorted latencies.
async fn gather(pool: &Pool, tasks: Vec<ClientTask>, since: Instant) -> (f64, Vec<Duration>) {
    let mut lat = Vec::new();
    for t in tasks {
        let (c, mine) = t.await.expect("client task");
        pool.borrow_mut().push(c);
        lat.extend(mine);
    }
    let elapsed = since.elapsed().as_secs_f64();
    lat.sort();
    (lat.len() as f64 / elapsed, lat)
}

/// CPU seconds a process (`self` or a pid) has used so far.
fn cpu_secs(pid: &str) -> f64 {
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
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12
    // after the name), in USER_HZ ticks: 100 a second on Linux (x86, arm).
    (ticks(11) + ticks(12)) / 100.0
}

async fn load(base: &str, secret: &str, vault_id: &str, secs: f64, pid: u32) {
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .expect("base64url secret");
    let addr = base.strip_prefix("http://").expect("an http:// URL");
    let max_clients = 32;
    let pool: Pool = Rc::new(RefCell::new(Vec::new()));
    for i in 0..max_clients {
        let sub = format!("load-{i}-{}", std::process::id());
        let auth = format!("Bearer {}", token(&secret, vault_id, &sub));
        let mut c = Conn::open(addr, auth, &AccountId::new("bench", sub), vault_id).await;
        c.register().await;
        pool.borrow_mut().push(c);
    }
    let server = pid.to_string();
    let ke1s = Rc::new(Ke1Pool::default());
    // Enough KE1s for a phase at this rate, with room to spare.
    let prepare = |rate: f64, secs: f64| {
        ke1s.inline.set(0);
        ke1s.fill(((rate * 1.5 + 500.0) * secs) as usize);
    };
    let mut peak = (0.0f64, 0usize);
    let mut rate = 1000.0;
    let mut probe = Conn::open(
        addr,
        String::new(),
        &AccountId::new("bench", "probe"),
        vault_id,
    )
    .await;
    // VAULT_LOAD_CLIENTS=32 (a comma list) runs just those phases, for profiling.
    let phases: Vec<usize> = std::env::var("VAULT_LOAD_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8, 16, 32]);
    for clients in phases.into_iter().filter(|&c| c <= max_clients) {
        prepare(rate, secs);
        let (cpu0, own0) = (cpu_secs(&server), cpu_secs("self"));
        let writes0 = probe.metric("arca_vault_store_writes_total").await;
        let commits0 = probe.metric("arca_vault_store_commits_total").await;
        let (tput, l) = closed_loop(&pool, &ke1s, clients, secs).await;
        let (cpu, own) = (cpu_secs(&server) - cpu0, cpu_secs("self") - own0);
        let writes = probe.metric("arca_vault_store_writes_total").await - writes0;
        let commits = probe.metric("arca_vault_store_commits_total").await - commits0;
        let n = l.len().max(1) as f64;
        println!(
            "{}",
            serde_json::json!({ "phase": "closed", "clients": clients, "per_sec": tput, "p50_ms": pct(&l, 0.5), "p99_ms": pct(&l, 0.99),
                                 "server_cpu_us_per_recovery": cpu * 1e6 / n, "client_cpu_us_per_recovery": own * 1e6 / n,
                                 "writes_per_commit": writes / commits.max(1.0), "ke1_inline": ke1s.inline.get() })
        );
        rate = rate.max(tput);
        if tput > peak.0 {
            peak = (tput, clients);
        }
    }
    let half = peak.0 / 2.0;
    let secs = secs.max(5.0);
    prepare(half, secs);
    let (tput, l) = open_loop(&pool, &ke1s, half, secs).await;
    println!(
        "{}",
        serde_json::json!({ "phase": "half", "target_per_sec": half, "per_sec": tput, "p50_ms": pct(&l, 0.5), "p99_ms": pct(&l, 0.99), "peak_per_sec": peak.0, "peak_clients": peak.1,
                             "ke1_inline": ke1s.inline.get() })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("micro") => micro(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000)),
        Some("load") if args.len() >= 7 => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(
                &rt,
                load(
                    &args[2],
                    &args[3],
                    &args[4],
                    args[5].parse().unwrap_or(5.0),
                    args[6].parse().unwrap_or(0),
                ),
            );
        }
        _ => {
            eprintln!(
                "usage: vault_load micro [N] | vault_load load URL HS_SECRET_B64URL VAULT_ID SECS SERVER_PID"
            );
            std::process::exit(2);
        }
    }
}
