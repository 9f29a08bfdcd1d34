//! The vault over HTTPS with its built-in rustls listener.

mod common;

use std::process::Command;

use common::*;

#[test]
fn recovery_over_tls_with_a_trusted_certificate() {
    let v = VaultDir::new();
    let (cert, key) = (v.dir.path().join("cert.pem"), v.dir.path().join("key.pem"));
    // A minimal openssl config, so the certificate is a leaf (not a CA).
    let cnf = v.dir.path().join("openssl.cnf");
    std::fs::write(&cnf, "[req]\ndistinguished_name=dn\n[dn]\n").unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-config"])
        .arg(&cnf)
        .args([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
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
    let mut config = std::fs::read_to_string(&v.config).unwrap();
    config.push_str(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    std::fs::write(&v.config, config).unwrap();

    let server = v.start();
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let pem = std::fs::read(&cert).unwrap();
    let trusted: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                    ureq::tls::Certificate::from_pem(&pem).unwrap(),
                ]))
                .build(),
        )
        .build()
        .into();
    let c = Client::with_agent(&server, "tls-user", trusted);
    c.register("over tls please", b"tls secret");
    assert_eq!(c.recover("over tls please").unwrap(), b"tls secret");

    // A client that does not trust the certificate gets no answer at all.
    let untrusted = agent().get(&format!("{}/healthz", server.base)).call();
    assert!(untrusted.is_err(), "an untrusted certificate is refused");
    // Plain HTTP to the TLS port is not served either.
    let plain = server.base.replace("https://", "http://");
    assert!(agent().get(&format!("{plain}/healthz")).call().is_err());
}
