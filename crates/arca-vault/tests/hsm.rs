//! The PKCS#11 seal against a real SoftHSM2 token in a temporary folder.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const TOKEN: &str = "arca-test-token";
const PIN: &str = "918273";

/// Creates a SoftHSM2 token under `dir` and returns its SOFTHSM2_CONF path.
fn softhsm_token(dir: &Path) -> String {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "5647382910",
        ])
        .output()
        .expect("softhsm2-util is installed (.ci/run installs softhsm2)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf.display().to_string()
}

fn hsm_vault() -> (VaultDir, String) {
    let module = softhsm_module().expect("SoftHSM2's PKCS#11 module is installed");
    let v = VaultDir::with_seal(
        &format!(
            "[seal]\nkind = \"pkcs11\"\nmodule = \"{module}\"\ntoken_label = \"{TOKEN}\"\npin_env = \"TEST_HSM_PIN\"\n"
        ),
        false,
    );
    let conf = softhsm_token(v.dir.path());
    (v, conf)
}

fn init_with(v: &VaultDir, conf: &str, pin: &str) -> std::process::Output {
    Command::new(VAULT)
        .args(["init", "--config"])
        .arg(&v.config)
        .env("SOFTHSM2_CONF", conf)
        .env("TEST_HSM_PIN", pin)
        .output()
        .unwrap()
}

#[test]
fn softhsm_seal_round_trip_and_restart() {
    let (v, conf) = hsm_vault();
    let out = init_with(&v, &conf, PIN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The sealed file holds nothing readable, and the key stays in the token.
    let sealed = std::fs::read(v.dir.path().join("data/vault.sealed")).unwrap();
    assert!(sealed.len() > 100);

    let env = [("SOFTHSM2_CONF", conf.as_str()), ("TEST_HSM_PIN", PIN)];
    let server = v.start_with_env(&env);
    let c = Client::new(&server, "hsm-user");
    c.register("hsm password", b"hsm-sealed vault key");
    drop(server);
    // A restart unseals the same secrets from the HSM: old records still open.
    let server = v.start_with_env(&env);
    let c = Client::new(&server, "hsm-user");
    assert_eq!(c.recover("hsm password").unwrap(), b"hsm-sealed vault key");

    // init refuses to overwrite an initialised vault.
    let again = init_with(&v, &conf, PIN);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn a_wrong_token_pin_fails_with_a_clear_message() {
    let (v, conf) = hsm_vault();
    let out = init_with(&v, &conf, "000000");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rejected the PIN"), "{err}");

    assert!(init_with(&v, &conf, PIN).status.success());
    let out = Command::new(VAULT)
        .args(["serve", "--config"])
        .arg(&v.config)
        .env("SOFTHSM2_CONF", &conf)
        .env("TEST_HSM_PIN", "111111")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rejected the PIN"), "{err}");
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let v = VaultDir::new();
    let key = v.dir.path().join("seal.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(VAULT)
        .args(["serve", "--config"])
        .arg(&v.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );
}
