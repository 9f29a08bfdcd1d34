//! The life of a password-protected backup, end to end: the real `arca`
//! binary against a real `arca-vault` process. Each "device" is a data
//! directory of its own (key store, embedded vault); deleting it is losing
//! the phone.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ARCA, assert_same_tree, text};

const PASSWORD: &str = "purple tiger stapler";

#[path = "../../../testsupport/vault_process.rs"]
mod vault_process;

use vault_process::{Server as Vault, VAULT_ID, VaultDir, token};

/// One scratch folder: the repository (the "cloud") and source tree.
struct World {
    dir: tempfile::TempDir,
    repo: PathBuf,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let src = dir.path().join("src");
        for (name, data) in [
            ("Databases/msgstore.db", b"messages ".repeat(50_000)),
            (
                "Media/Images/IMG-0001.jpg",
                (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
            ),
            ("notes/empty", Vec::new()),
        ] {
            let p = src.join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
        Self { dir, repo }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn src(&self) -> PathBuf {
        self.path("src")
    }

    /// A device: `arca` with its own data directory and nothing else set.
    fn device(&self, name: &str) -> Device {
        Device {
            data: self.path(name),
            repo: self.repo.clone(),
        }
    }
}

struct Device {
    data: PathBuf,
    repo: PathBuf,
}

impl Device {
    fn cmd(&self, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(ARCA);
        c.env("ARCA_REPO", &self.repo)
            .env("ARCA_DATA_DIR", &self.data)
            .env_remove("ARCA_RECOVERY_KEY")
            .env_remove("ARCA_PASSWORD")
            .env_remove("ARCA_NEW_PASSWORD")
            .env_remove("ARCA_VAULT")
            .env_remove("ARCA_VAULT_TOKEN")
            .stdin(Stdio::null())
            .envs(env.iter().copied());
        c
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.cmd(env).args(args).output().unwrap()
    }

    fn ok(&self, env: &[(&str, &str)], args: &[&str]) -> serde_json::Value {
        let out = self.cmd(env).arg("--json").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "arca {args:?} failed: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Everything this device stored locally (key store, caches) is gone.
    fn lose(&self) {
        if self.data.exists() {
            fs::remove_dir_all(&self.data).unwrap();
        }
    }

    fn key_files(&self) -> usize {
        fs::read_dir(self.data.join("keys")).map_or(0, |d| d.count())
    }
}

fn vault_env<'a>(vault: &'a Vault, token: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ARCA_VAULT", vault.base.as_str()),
        ("ARCA_VAULT_TOKEN", token),
    ]
}

/// Creates the repository from `phone` with the password, backs up once.
fn set_up(world: &World, phone: &Device, env: &[(&str, &str)]) -> serde_json::Value {
    let mut with_pw = env.to_vec();
    with_pw.push(("ARCA_PASSWORD", PASSWORD));
    let init = phone.ok(&with_pw, &["init", "--show-recovery-key"]);
    assert_eq!(init["mode"], "password", "{init}");
    assert!(init["recovery_key"].as_str().unwrap().len() >= 64, "{init}");
    // Daily backups: no password, no vault settings.
    phone.ok(&[], &["backup", world.src().to_str().unwrap()]);
    init
}

#[test]
fn lost_phone_restores_with_repository_vault_token_and_password_only() {
    let vault_dir = VaultDir::new();
    let vault = vault_dir.start();
    let world = World::new();
    let tok = token("alice");
    let phone = world.device("phone");
    let init = set_up(&world, &phone, &vault_env(&vault, &tok));
    assert_eq!(init["vault"], vault.base.as_str());
    assert_eq!(init["account"], "chat-app/alice");
    assert_eq!(phone.key_files(), 1);
    // Nothing the storage provider holds names the vault or the account.
    for entry in walk(&world.repo) {
        let bytes = fs::read(&entry).unwrap();
        for needle in [VAULT_ID.as_bytes(), b"alice", b"chat-app"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}",
                entry.display()
            );
        }
    }

    phone.lose();
    let new_phone = world.device("new-phone");
    let mut env = vault_env(&vault, &tok);
    env.push(("ARCA_PASSWORD", PASSWORD));
    let out = world.path("restored");
    let r = new_phone.run(
        &env,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&world.src(), &out);
    // The new phone is set up: backups work without password or vault.
    assert_eq!(new_phone.key_files(), 1);
    let again = new_phone.ok(&[], &["backup", world.src().to_str().unwrap()]);
    assert_eq!(again["bytes_added"], 0, "{again}");
    let info = new_phone.ok(&[], &["info"]);
    assert_eq!(
        info["key_escrow"]["vault_url"],
        vault.base.as_str(),
        "{info}"
    );
    assert_eq!(info["key_escrow"]["user"], "alice", "{info}");
    assert_eq!(info["key_escrow"]["mode"], "password", "{info}");
}

#[test]
fn ten_wrong_passwords_lock_for_good_and_the_recovery_key_still_opens() {
    let vault_dir = VaultDir::new();
    let vault = vault_dir.start();
    let world = World::new();
    let tok = token("bob");
    let phone = world.device("phone");
    let init = set_up(&world, &phone, &vault_env(&vault, &tok));
    let recovery_key = init["recovery_key"].as_str().unwrap().to_string();
    phone.lose();

    let thief = world.device("thief");
    for left in (0..10).rev() {
        let mut env = vault_env(&vault, &tok);
        env.push(("ARCA_PASSWORD", "wrong guess 1"));
        let r = thief.run(&env, &["snapshots"]);
        assert_eq!(r.status.code(), Some(1));
        let err = text(&r.stderr);
        if left == 0 {
            assert!(err.contains("last attempt"), "{err}");
        } else {
            assert!(err.contains(&format!("{left} attempt")), "{left}: {err}");
        }
        if left == 0 {
            // Warned before the last one is spent.
            assert!(
                err.contains("warning: this is the last password attempt"),
                "{err}"
            );
        }
    }
    // Now even the right password is refused, for good.
    let mut env = vault_env(&vault, &tok);
    env.push(("ARCA_PASSWORD", PASSWORD));
    let r = thief.run(&env, &["snapshots"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("too many wrong passwords"),
        "{}",
        text(&r.stderr)
    );
    assert_eq!(thief.key_files(), 0);

    // The written-down recovery key still opens the backup.
    let owner = world.device("owner");
    let out = world.path("restored");
    let r = owner.run(
        &[("ARCA_RECOVERY_KEY", recovery_key.as_str())],
        &["restore", "latest", "--target", out.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&world.src(), &out);
}

#[test]
fn changing_the_password_keeps_key_and_repository() {
    let vault_dir = VaultDir::new();
    let vault = vault_dir.start();
    let world = World::new();
    let tok = token("carol");
    let phone = world.device("phone");
    let env = vault_env(&vault, &tok);
    let init = set_up(&world, &phone, &env);
    let before = phone.ok(&[], &["snapshots"]);

    let mut change = env.clone();
    change.push(("ARCA_PASSWORD", PASSWORD));
    change.push(("ARCA_NEW_PASSWORD", "new horse battery"));
    phone.ok(&change, &["password", "change"]);

    let mut old = env.clone();
    old.push(("ARCA_PASSWORD", PASSWORD));
    let r = world.device("other").run(&old, &["snapshots"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("wrong password"),
        "{}",
        text(&r.stderr)
    );

    let mut new = env.clone();
    new.push(("ARCA_PASSWORD", "new horse battery"));
    let laptop = world.device("laptop");
    assert_eq!(laptop.ok(&new, &["snapshots"]), before);
    let shown = laptop.ok(&[], &["key", "show"]);
    assert_eq!(shown["recovery_key"], init["recovery_key"]);

    // A weak new password is refused before anything changes.
    let mut weak = new.clone();
    weak.push(("ARCA_NEW_PASSWORD", "12345"));
    let r = laptop.run(&weak, &["password", "change"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("at least 6 characters"),
        "{}",
        text(&r.stderr)
    );
    assert_eq!(world.device("third").ok(&new, &["snapshots"]), before);
}

#[test]
fn removing_the_password_deletes_the_vault_record() {
    let vault_dir = VaultDir::new();
    let vault = vault_dir.start();
    let world = World::new();
    let tok = token("dave");
    let phone = world.device("phone");
    let env = vault_env(&vault, &tok);
    set_up(&world, &phone, &env);

    let r = phone.run(&env, &["password", "remove"]);
    assert_eq!(r.status.code(), Some(1), "needs --yes off a terminal");
    assert!(text(&r.stderr).contains("--yes"), "{}", text(&r.stderr));
    phone.ok(&env, &["password", "remove", "--yes"]);

    // The vault has nothing left for the account: the password is useless.
    let mut with_pw = env.clone();
    with_pw.push(("ARCA_PASSWORD", PASSWORD));
    let r = world.device("new").run(&with_pw, &["snapshots"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("no password backup"),
        "{}",
        text(&r.stderr)
    );
    let client = arca_client_status(&vault, &tok);
    assert!(!client, "the vault still has a record");
    // This device still backs up from its key store.
    phone.ok(&[], &["backup", world.src().to_str().unwrap()]);
    // And the repository says how it is protected now.
    let info = phone.ok(&[], &["info"]);
    assert_eq!(info["key_escrow"]["mode"], "recovery-key-only", "{info}");
    let r = phone.run(&env, &["password", "change"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("has no password"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn a_password_added_to_a_recovery_key_only_repository_restores_a_new_device() {
    let vault_dir = VaultDir::new();
    let vault = vault_dir.start();
    let world = World::new();
    let tok = token("gina");
    let phone = world.device("phone");
    let env = vault_env(&vault, &tok);
    let init = phone.ok(&[], &["init", "--recovery-key-only"]);
    let rk = init["recovery_key"].as_str().unwrap().to_string();
    phone.ok(
        &[("ARCA_RECOVERY_KEY", &rk)],
        &["backup", world.src().to_str().unwrap()],
    );
    assert_eq!(phone.key_files(), 0);

    // Without the recovery key nothing opens, so nothing can be added.
    let mut add_env = env.clone();
    add_env.push(("ARCA_PASSWORD", PASSWORD));
    let r = phone.run(&add_env, &["password", "add"]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
    assert!(!arca_client_status(&vault, &tok));

    add_env.push(("ARCA_RECOVERY_KEY", &rk));
    let added = phone.ok(&add_env, &["password", "add"]);
    assert_eq!(added["password"], "added", "{added}");
    assert_eq!(added["account"], "chat-app/gina", "{added}");
    assert!(arca_client_status(&vault, &tok));
    let info = phone.ok(&[], &["info"]);
    assert_eq!(info["key_escrow"]["mode"], "password", "{info}");
    assert_eq!(
        info["key_escrow"]["vault_url"],
        vault.base.as_str(),
        "{info}"
    );
    // The device now keeps the key: daily backups need nothing.
    assert_eq!(phone.key_files(), 1);
    phone.ok(&[], &["backup", world.src().to_str().unwrap()]);
    let r = phone.run(&add_env, &["password", "add"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("already has a password"),
        "{}",
        text(&r.stderr)
    );

    // Lost phone: the password alone restores, and so does the recovery key.
    phone.lose();
    let mut pw_env = env.clone();
    pw_env.push(("ARCA_PASSWORD", PASSWORD));
    let out = world.path("restored");
    let r = world.device("new-phone").run(
        &pw_env,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&world.src(), &out);
    let check = world
        .device("other")
        .ok(&[("ARCA_RECOVERY_KEY", &rk)], &["check"]);
    assert_eq!(check["settings"], 1, "{check}");
}

/// Whether the vault has a password record for the token's account.
fn arca_client_status(vault: &Vault, tok: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(format!("{}/v1/status", vault.base))
        .header("Authorization", format!("Bearer {tok}"))
        .call()
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    body["registered"].as_bool().unwrap()
}

#[test]
fn vault_down_backup_works_and_a_new_device_restore_fails_cleanly() {
    let vault_dir = VaultDir::new();
    let mut vault = vault_dir.start();
    let world = World::new();
    let tok = token("erin");
    let phone = world.device("phone");
    let env = vault_env(&vault, &tok);
    set_up(&world, &phone, &env);
    let base = vault.base.clone();
    vault.stop();

    fs::write(
        world.src().join("notes/new.txt"),
        b"written while the vault is down",
    )
    .unwrap();
    let b = phone.ok(&[], &["backup", world.src().to_str().unwrap()]);
    assert_eq!(b["files_new"], 1, "{b}");

    let new_phone = world.device("new-phone");
    let out = world.path("restored");
    let r = new_phone.run(
        &[
            ("ARCA_VAULT", base.as_str()),
            ("ARCA_VAULT_TOKEN", tok.as_str()),
            ("ARCA_PASSWORD", PASSWORD),
        ],
        &["restore", "latest", "--target", out.to_str().unwrap()],
    );
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("cannot reach the backup key vault") && err.contains("try again"),
        "{err}"
    );
    assert!(!out.exists(), "nothing restored");
    assert_eq!(new_phone.key_files(), 0, "no key stored");
}

#[test]
fn embedded_vault_works_with_no_server_and_says_it_is_not_protection() {
    let world = World::new();
    let phone = world.device("phone");
    let r = phone.run(&[("ARCA_PASSWORD", PASSWORD)], &["init"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let said = text(&r.stdout);
    assert!(said.contains("other hardware than the backup"), "{said}");
    assert!(said.contains("arca key show"), "{said}");
    phone.ok(&[], &["backup", world.src().to_str().unwrap()]);

    // The key store gone, the embedded vault gives the key back.
    fs::remove_dir_all(phone.data.join("keys")).unwrap();
    let r = phone.run(&[], &["snapshots"]);
    assert_eq!(r.status.code(), Some(1), "no password, no terminal");
    assert!(
        text(&r.stderr).contains("ARCA_PASSWORD"),
        "{}",
        text(&r.stderr)
    );
    let out = world.path("restored");
    let r = phone.run(
        &[("ARCA_PASSWORD", PASSWORD)],
        &["restore", "latest", "--target", out.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&world.src(), &out);

    // A second password repository on this machine would replace the
    // first one's escrow: refused.
    let second = Device {
        data: phone.data.clone(),
        repo: world.path("repo2"),
    };
    let r = second.run(&[("ARCA_PASSWORD", PASSWORD)], &["init"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("already has a password backup"),
        "{}",
        text(&r.stderr)
    );
    assert!(!world.path("repo2").exists());

    // Passwords too short or without a letter are refused.
    let r = world.device("other").run(
        &[("ARCA_PASSWORD", "123456")],
        &["init", "--repo", world.path("repo3").to_str().unwrap()],
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("including a letter"),
        "{}",
        text(&r.stderr)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
