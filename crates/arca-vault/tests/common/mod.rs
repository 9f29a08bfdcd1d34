//! Starts the real `arca-vault` binary on a loopback port and talks to it
//! over HTTP like a client would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use arca_vault_api::client::{self, ClientError};
use arca_vault_api::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const VAULT: &str = env!("CARGO_BIN_EXE_arca-vault");
pub const VAULT_ID: &str = "vault-test-1";
pub const TENANT: &str = "chat-app";
/// The HS256 secret of the test tenant (development tokens).
pub const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

/// A vault's folder: config, seal key, data.
pub struct VaultDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl VaultDir {
    /// A key-file-sealed vault with limits off, initialised.
    pub fn new() -> Self {
        Self::with_seal("[seal]\nkind = \"key-file\"\npath = \"seal.key\"\n", true)
    }

    pub fn with_seal(seal: &str, init: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vault.toml");
        let secret = URL_SAFE_NO_PAD.encode(HS_SECRET);
        std::fs::write(
            &config,
            format!(
                "vault_id = \"{VAULT_ID}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
                 [rate_limit]\nper_ip_per_minute = 0\nper_account_per_minute = 0\n\
                 {seal}\n\
                 [[tenants]]\nid = \"{TENANT}\"\nalgorithm = \"HS256\"\nkeys = [\"{secret}\"]\n"
            ),
        )
        .unwrap();
        let v = Self { dir, config };
        if init {
            let out = v.init();
            assert!(
                out.status.success(),
                "init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        v
    }

    pub fn init(&self) -> std::process::Output {
        Command::new(VAULT)
            .args(["init", "--config"])
            .arg(&self.config)
            .output()
            .unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/records.sqlite")
    }

    /// Starts `arca-vault serve`; waits until it listens.
    pub fn start(&self) -> Server {
        self.start_with_env(&[])
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(VAULT)
            .args(["serve", "--config"])
            .arg(&self.config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("arca-vault listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("vault did not start: {line:?} {err}")
            })
            .to_string();
        Server { child, base }
    }
}

pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HS256 token for `sub` with the given audience and lifetime.
pub fn token_for(sub: &str, aud: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({ "iss": TENANT, "sub": sub, "aud": aud, "exp": now + exp_in });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(HS_SECRET),
    )
    .unwrap()
}

pub fn token(sub: &str) -> String {
    token_for(sub, VAULT_ID, 3600)
}

/// The result of one HTTP call: status and JSON body.
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Reply {
    pub fn ok<T: DeserializeOwned>(self) -> T {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_value(self.body).unwrap()
    }
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// A client of one server for one account.
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    pub account: AccountId,
    agent: ureq::Agent,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Client {
    pub fn new(server: &Server, user: &str) -> Self {
        Self {
            base: server.base.clone(),
            token: Some(token(user)),
            account: AccountId::new(TENANT, user),
            agent: agent(),
        }
    }

    /// A client that talks through `agent` (for example one that trusts a
    /// test certificate).
    pub fn with_agent(server: &Server, user: &str, agent: ureq::Agent) -> Self {
        Self {
            agent,
            ..Self::new(server, user)
        }
    }

    pub fn call<B: Serialize>(&self, method: &str, path: &str, body: Option<&B>) -> Reply {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut resp = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call().unwrap()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call().unwrap()
            }
            (_, b) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(b.map(|b| serde_json::to_value(b).unwrap()))
                    .unwrap()
            }
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply { status, body }
    }

    /// Registers `password` escrowing `secret`.
    pub fn register(&self, password: &str, secret: &[u8]) {
        let (state, req) = client::register_start(password.as_bytes()).unwrap();
        let r: RegisterStartResponse = self
            .call(
                "POST",
                "/v1/register/start",
                Some(&RegisterStartRequest {
                    registration_request: req.into(),
                }),
            )
            .ok();
        let (upload, wrap) = client::register_finish(
            state,
            password.as_bytes(),
            &r.registration_response.0,
            &self.account,
            VAULT_ID,
        )
        .unwrap();
        let r: RegisterFinishResponse = self
            .call(
                "POST",
                "/v1/register/finish",
                Some(&RegisterFinishRequest {
                    registration_upload: upload.into(),
                    sealed_secret: wrap.wrap(secret).into(),
                }),
            )
            .ok();
        assert!(r.max_attempts > 0);
    }

    /// Recover step 1 only: the reply of recover/start.
    pub fn start_recover(&self, password: &str) -> (client::RecoveryState, Reply) {
        let (state, req) = client::recover_start(password.as_bytes()).unwrap();
        let reply = self.call(
            "POST",
            "/v1/recover/start",
            Some(&RecoverStartRequest {
                credential_request: req.into(),
            }),
        );
        (state, reply)
    }

    /// Finishes a started recovery; `Ok(secret)` or the client/vault error.
    pub fn finish_recover(
        &self,
        state: client::RecoveryState,
        password: &str,
        start: RecoverStartResponse,
    ) -> Result<Vec<u8>, String> {
        let fin = match client::recover_finish(
            state,
            password.as_bytes(),
            &start.credential_response.0,
            &self.account,
            VAULT_ID,
        ) {
            Ok(f) => f,
            Err(ClientError::WrongPassword) => return Err("wrong_password".into()),
            Err(e) => return Err(e.to_string()),
        };
        let reply = self.call(
            "POST",
            "/v1/recover/finish",
            Some(&RecoverFinishRequest {
                login_state: start.login_state,
                credential_finalization: fin.finalization.clone().into(),
            }),
        );
        if reply.status != 200 {
            return Err(reply.code().to_string());
        }
        let r: RecoverFinishResponse = reply.ok();
        client::open_recovered(&fin, &r.encrypted_secret.0)
            .map(|s| s.to_vec())
            .map_err(|e| e.to_string())
    }

    /// A whole recovery.
    pub fn recover(&self, password: &str) -> Result<Vec<u8>, String> {
        let (state, reply) = self.start_recover(password);
        if reply.status != 200 {
            return Err(reply.code().to_string());
        }
        self.finish_recover(state, password, reply.ok())
    }

    pub fn status(&self) -> StatusResponse {
        self.call::<()>("GET", "/v1/status", None).ok()
    }
}

pub fn softhsm_module() -> Option<&'static str> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}
