//! The SDK's password flows against the real vault.

mod common;

use arca_client::{ClientError, VaultClient};
use common::*;

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn enroll_then_recover_returns_the_same_key() {
    let v = VaultDir::new();
    let server = v.start();
    let c = client(&server, "alice");
    assert_eq!(c.vault_id().unwrap(), VAULT_ID);
    assert_eq!(c.account().user, "alice");
    assert!(!c.status().unwrap().registered);

    let key = c.enroll(PASSWORD).unwrap();
    let s = c.status().unwrap();
    assert!(s.registered && !s.locked, "{s:?}");
    assert_eq!(s.attempts_left, s.max_attempts);

    // A fresh client (a new device) with the same account gets it back.
    let other_device = client(&server, "alice");
    assert_eq!(other_device.recover(PASSWORD).unwrap(), key);
    assert_eq!(other_device.attempts_left().unwrap(), 10, "success resets");

    // Another user of the same app has nothing.
    assert_eq!(
        client(&server, "bob").recover(PASSWORD).unwrap_err(),
        ClientError::NotEnrolled
    );
}

#[test]
fn wrong_passwords_count_down_then_everything_is_locked() {
    let v = VaultDir::new();
    let server = v.start();
    let c = client(&server, "carol");
    c.enroll(PASSWORD).unwrap();
    for left in (0..10).rev() {
        let e = c.recover("not the password").unwrap_err();
        assert_eq!(
            e,
            ClientError::WrongPassword {
                attempts_left: left
            }
        );
        assert!(!e.retryable());
        assert!(e.to_string().contains("wrong password"), "{e}");
    }
    assert_eq!(
        c.recover("not the password").unwrap_err(),
        ClientError::Locked
    );
    // The key is gone: the right password cannot bring it back.
    let e = c.recover(PASSWORD).unwrap_err();
    assert_eq!(e, ClientError::Locked);
    assert!(!e.retryable());
    assert!(e.to_string().contains("recovery key"), "{e}");
    let s = c.status().unwrap();
    assert!(s.locked && s.attempts_left == 0, "{s:?}");
}

#[test]
fn change_password_keeps_the_key() {
    let v = VaultDir::new();
    let server = v.start();
    let c = client(&server, "dave");
    let key = c.enroll("old password").unwrap();
    assert_eq!(
        c.change_password("old password", "new password").unwrap(),
        key
    );
    assert!(matches!(
        c.recover("old password").unwrap_err(),
        ClientError::WrongPassword { .. }
    ));
    assert_eq!(c.recover("new password").unwrap(), key);

    // A wrong old password changes nothing.
    assert!(matches!(
        c.change_password("old password", "third").unwrap_err(),
        ClientError::WrongPassword { .. }
    ));
    assert_eq!(c.recover("new password").unwrap(), key);
}

#[test]
fn removed_password_is_not_enrolled() {
    let v = VaultDir::new();
    let server = v.start();
    let c = client(&server, "erin");
    c.enroll(PASSWORD).unwrap();
    c.remove_password().unwrap();
    assert!(!c.status().unwrap().registered);
    let e = c.recover(PASSWORD).unwrap_err();
    assert_eq!(e, ClientError::NotEnrolled);
    assert!(
        !e.retryable() && e.to_string().contains("recovery key"),
        "{e}"
    );
    assert_eq!(c.remove_password().unwrap_err(), ClientError::NotEnrolled);

    // Enrolling again works and makes a new key.
    let key = c.enroll(PASSWORD).unwrap();
    assert_eq!(c.recover(PASSWORD).unwrap(), key);
}

#[test]
fn a_stopped_vault_is_unreachable_and_retryable() {
    let v = VaultDir::new();
    let mut server = v.start();
    // One client that already knows the vault, one that never reached it.
    let knows = client(&server, "frank");
    let key = knows.enroll(PASSWORD).unwrap();
    let fresh = client(&server, "frank");
    server.stop();

    let unreachable = |e: ClientError| {
        assert!(matches!(e, ClientError::VaultUnreachable(_)), "{e:?}");
        assert!(e.retryable());
        assert!(e.to_string().contains("try again"), "{e}");
    };
    unreachable(knows.recover(PASSWORD).unwrap_err());
    unreachable(fresh.recover(PASSWORD).unwrap_err());
    unreachable(knows.status().unwrap_err());
    unreachable(knows.enroll("x").unwrap_err());
    unreachable(knows.enroll_key(&key, "x").unwrap_err());
    unreachable(knows.change_password(PASSWORD, "x").unwrap_err());
    unreachable(knows.remove_password().unwrap_err());
    unreachable(fresh.vault_id().unwrap_err());

    // Nothing changed while it was down.
    let server = v.start();
    let again = client(&server, "frank");
    assert_eq!(again.recover(PASSWORD).unwrap(), key);
}

#[test]
fn rejected_tokens_count_nothing() {
    let v = VaultDir::new();
    let server = v.start();
    let c = client(&server, "grace");
    c.enroll(PASSWORD).unwrap();

    let other_vault = token_with(serde_json::json!({ "sub": "grace", "aud": "another-vault" }));
    let expired = token_with(serde_json::json!({ "sub": "grace", "exp": 1_000_000 }));
    for token in [other_vault, expired] {
        let bad = VaultClient::new(&server.base, &token).unwrap();
        for e in [
            bad.recover(PASSWORD).unwrap_err(),
            bad.status().unwrap_err(),
            bad.enroll("taken over").unwrap_err(),
            bad.remove_password().unwrap_err(),
        ] {
            assert!(matches!(e, ClientError::TokenRejected(_)), "{e:?}");
            assert!(
                !e.retryable() && e.to_string().contains("sign in again"),
                "{e}"
            );
        }
    }
    // Nothing was counted, replaced or deleted.
    let s = c.status().unwrap();
    assert_eq!(s.attempts_used, 0, "{s:?}");
    assert!(c.recover(PASSWORD).is_ok());

    // A token without a user is refused before anything is sent.
    let no_sub = token_with(serde_json::json!({}));
    assert!(matches!(
        VaultClient::new(&server.base, &no_sub).unwrap_err(),
        ClientError::TokenRejected(_)
    ));
}

#[test]
fn debug_shows_no_token() {
    let token = token("heidi");
    let c = VaultClient::new("http://127.0.0.1:9", &token).unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("heidi") && !shown.contains(&token),
        "{shown}"
    );
}

#[test]
fn a_wrong_vault_address_is_not_retryable() {
    // Something answers, but not the API: retrying will not fix the address.
    let v = VaultDir::new();
    let server = v.start();
    let c = VaultClient::new(&format!("{}/nothing", server.base), &token("ivan")).unwrap();
    let e = c.status().unwrap_err();
    assert!(!e.retryable(), "{e:?}");
}

#[test]
fn tls_with_a_trusted_certificate() {
    let v = VaultDir::new();
    let (cert, key) = (v.dir.path().join("cert.pem"), v.dir.path().join("key.pem"));
    // A minimal openssl config, so the certificate is a leaf (not a CA).
    let cnf = v.dir.path().join("openssl.cnf");
    std::fs::write(&cnf, "[req]\ndistinguished_name=dn\n[dn]\n").unwrap();
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-config"])
        .arg(&cnf)
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v.append_config(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let server = v.start();
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let pem = std::fs::read(&cert).unwrap();
    let c = VaultClient::with_tls_roots(&server.base, &token("judy"), &pem).unwrap();
    let k = c.enroll(PASSWORD).unwrap();
    assert_eq!(c.recover(PASSWORD).unwrap(), k);

    // Without trusting the certificate there is no connection, and no guess.
    let untrusted = VaultClient::new(&server.base, &token("judy")).unwrap();
    assert!(matches!(
        untrusted.recover(PASSWORD).unwrap_err(),
        ClientError::VaultUnreachable(_)
    ));
    assert_eq!(c.status().unwrap().attempts_used, 0);
}
