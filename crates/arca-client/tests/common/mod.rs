//! Starts the real `arca-vault` for the SDK to talk to (shared helper in
//! `testsupport/vault_process.rs`).
#![allow(dead_code)]

#[path = "../../../../testsupport/vault_process.rs"]
mod vault_process;

pub use vault_process::*;

/// A client of `server` signed in as `sub`.
pub fn client(server: &Server, sub: &str) -> arca_client::VaultClient {
    arca_client::VaultClient::new(&server.base, &token(sub)).unwrap()
}
