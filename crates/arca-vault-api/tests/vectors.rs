//! Protocol test vectors: a whole registration and recovery with seeded
//! randomness must produce exactly these bytes (BLAKE3 of each message), so
//! an update of opaque-ke, argon2 or curve25519-dalek can never silently
//! change the wire format or make stored registrations unusable. The same
//! values are printed in docs/vault-protocol.md.

use arca_vault_api::{AccountId, CONTEXT, Suite, ksf, response_key};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, Identifiers, ServerLogin, ServerLoginParameters,
    ServerRegistration, ServerSetup,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn h(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

#[test]
fn seeded_registration_and_recovery_transcript() {
    let mut rng = ChaCha20Rng::seed_from_u64(20261127);
    let setup = ServerSetup::<Suite>::new(&mut rng);
    let account = AccountId::new("chat-app", "user-42");
    let cred = account.credential_id();
    assert_eq!(cred, b"arca-account-v1\0chat-app\0user-42");
    let vault_id = b"vault-vectors";
    let ids = Identifiers {
        client: Some(&cred),
        server: Some(vault_id),
    };
    let password = b"correct horse battery staple";
    let ksf = ksf();

    let reg = ClientRegistration::<Suite>::start(&mut rng, password).unwrap();
    let reg_resp = ServerRegistration::<Suite>::start(&setup, reg.message.clone(), &cred).unwrap();
    let fin = reg
        .state
        .finish(
            &mut rng,
            password,
            reg_resp.message.clone(),
            ClientRegistrationFinishParameters::new(ids, Some(&ksf)),
        )
        .unwrap();
    let file = ServerRegistration::<Suite>::finish(fin.message.clone());

    let login = ClientLogin::<Suite>::start(&mut rng, password).unwrap();
    let params = ServerLoginParameters {
        context: Some(CONTEXT),
        identifiers: ids,
    };
    let ke2 = ServerLogin::start(
        &mut rng,
        &setup,
        Some(file.clone()),
        login.message.clone(),
        &cred,
        params.clone(),
    )
    .unwrap();
    let done = login
        .state
        .finish(
            &mut rng,
            password,
            ke2.message.clone(),
            ClientLoginFinishParameters::new(Some(CONTEXT), ids, Some(&ksf)),
        )
        .unwrap();
    let server_done = ke2.state.finish(done.message.clone(), params).unwrap();
    assert_eq!(done.session_key, server_done.session_key);
    assert_eq!(
        done.export_key, fin.export_key,
        "export key is stable across logins"
    );

    let got = [
        ("registration request", h(&reg.message.serialize())),
        ("registration response", h(&reg_resp.message.serialize())),
        ("registration upload", h(&fin.message.serialize())),
        ("export key", h(&fin.export_key)),
        ("KE1", h(&login.message.serialize())),
        ("KE2", h(&ke2.message.serialize())),
        ("KE3", h(&done.message.serialize())),
        ("session key", h(&done.session_key)),
        (
            "response key",
            h(response_key(&done.session_key).expose_secret()),
        ),
    ];
    let expected = [
        ("registration request", "316d14b8603591eaf1c8faa454c80e48"),
        ("registration response", "8f1b248f847ba98c5a313da3aea56bf3"),
        ("registration upload", "4767f053e347fa886498e5871599a751"),
        ("export key", "c70a2c92cdad7f5e898bfcdf9b3450cf"),
        ("KE1", "45d5ef0e4e3813103b32f7938db3457d"),
        ("KE2", "a80664cdfe17bbef76bd81ebccb0009f"),
        ("KE3", "a262c132709a6ff8745f82f7ebdd3e6e"),
        ("session key", "9115f83cdb03582b336b728c088698a3"),
        ("response key", "83db8c51ebe8748569ca661b48b52ee7"),
    ];
    for ((name, value), (ename, evalue)) in got.iter().zip(expected) {
        assert_eq!(*name, ename);
        assert_eq!(value, evalue, "{name}");
    }
    assert_eq!(fin.message.serialize().len(), 192);
}
