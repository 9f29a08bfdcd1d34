//! arca-vault: the Backup Key Vault. An OPAQUE (RFC 9807) server that
//! escrows a client-sealed backup key per account, counts every password
//! guess durably before answering, and destroys the key after too many.
//!
//! Layers: [`core`] is pure protocol logic; [`store`] persists sealed
//! records with compare-and-swap; [`service`] joins them; [`http`] is the
//! axum API; [`secrets`] and [`pkcs11`] seal the vault's own keys.

pub mod auth;
pub mod config;
pub mod core;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod pkcs11;
pub mod record;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
