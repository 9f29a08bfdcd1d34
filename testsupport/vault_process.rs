//! Test support shared by crates whose tests need a running vault
//! (`arca-client`, `arca-cli`): starts the real `arca-vault` binary on a
//! loopback port and mints tokens of its test tenant. Included with
//! `#[path = ...] mod vault_process;` so no crate has to depend on it.
//!
//! Cargo gives `CARGO_BIN_EXE_*` only for the package's own binaries, so the
//! vault binary is found through `ARCA_VAULT_BIN`, or built once per test
//! process with `cargo build -p arca-vault` into the same target directory
//! (then it is usually already up to date).
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const VAULT_ID: &str = "vault-process-test";
pub const TENANT: &str = "chat-app";
/// The HS256 secret of the test tenant (development tokens).
pub const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-shared-test";

/// The `arca-vault` binary.
pub fn vault_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("ARCA_VAULT_BIN") {
        Some(p) => PathBuf::from(p),
        None => build_vault(),
    })
}

fn build_vault() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "-p",
            "arca-vault",
            "--bin",
            "arca-vault",
        ])
        .arg("--message-format=json")
        .arg("--target-dir")
        .arg(&target_dir);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building arca-vault failed (set ARCA_VAULT_BIN to use a built one):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exe = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "arca-vault" {
            if let Some(path) = msg["executable"].as_str() {
                exe = Some(PathBuf::from(path));
            }
        }
    }
    exe.expect("cargo reported no arca-vault executable")
}

/// A vault's folder: config, seal key, data.
pub struct VaultDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl VaultDir {
    /// A key-file-sealed vault with rate limits off, initialised.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vault.toml");
        let secret = URL_SAFE_NO_PAD.encode(HS_SECRET);
        std::fs::write(
            &config,
            format!(
                "vault_id = \"{VAULT_ID}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
                 [rate_limit]\nper_ip_per_minute = 0\nper_account_per_minute = 0\n\
                 [seal]\nkind = \"key-file\"\npath = \"seal.key\"\n\
                 [[tenants]]\nid = \"{TENANT}\"\nalgorithm = \"HS256\"\nkeys = [\"{secret}\"]\n"
            ),
        )
        .unwrap();
        let out = Command::new(vault_bin())
            .args(["init", "--config"])
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", vault_bin().display()));
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir, config }
    }

    /// Appends to the config (before `start`).
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
    }

    /// Starts `arca-vault serve`; waits until it listens.
    pub fn start(&self) -> Server {
        // The log goes to a file: a pipe nobody reads could fill and stall
        // the vault.
        let log = self.dir.path().join("vault.log");
        let mut child = Command::new(vault_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("arca-vault listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "vault did not start: {line:?} {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        };
        Server {
            base: base.to_string(),
            child,
            _stdout: stdout,
        }
    }
}

/// A running vault; killed on drop.
pub struct Server {
    pub base: String,
    child: Child,
    /// Kept open so a late write to stdout does not hit a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Stops the vault now (it stays stopped).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token of the test tenant with these claims added.
pub fn token_with(claims: serde_json::Value) -> String {
    let mut all = serde_json::json!({ "iss": TENANT, "aud": VAULT_ID, "exp": now() + 3600 });
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &all,
        &jsonwebtoken::EncodingKey::from_secret(HS_SECRET),
    )
    .unwrap()
}

/// A valid token for user `sub`.
pub fn token(sub: &str) -> String {
    token_with(serde_json::json!({ "sub": sub }))
}
