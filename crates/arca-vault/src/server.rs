//! Wiring: config -> seal -> secrets -> store -> HTTP server.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::{Config, SealConfig};
use crate::core::VaultCore;
use crate::http::{AppState, RateLimiter, router};
use crate::metrics::Metrics;
use crate::pkcs11::Pkcs11Seal;
use crate::secrets::{self, Seal};
use crate::service::Vault;
use crate::store::SqliteStore;

/// The seal the config names. With `create`, a missing key (file or HSM
/// object) is generated.
pub fn open_seal(config: &Config, create: bool) -> Result<Seal, String> {
    match &config.seal {
        SealConfig::KeyFile { path } => Seal::key_file(path, create).map_err(|e| e.to_string()),
        SealConfig::Pkcs11 {
            module,
            token_label,
            pin_env,
            key_label,
        } => {
            let pin = zeroize::Zeroizing::new(std::env::var(pin_env).map_err(|_| {
                format!(
                    "the HSM PIN is read from the environment variable {pin_env}, which is not set"
                )
            })?);
            Pkcs11Seal::open(module, token_label, &pin, key_label, create)
                .map(Seal::Pkcs11)
                .map_err(|e| e.to_string())
        }
    }
}

/// `arca-vault init`: creates and seals the vault's secrets.
pub fn init(config: &Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let seal = open_seal(config, true)?;
    secrets::create(&config.sealed_path(), &seal).map_err(|e| e.to_string())?;
    SqliteStore::open(&config.store_path()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Everything `serve` needs, unsealed and opened.
pub fn build(config: &Config) -> Result<Arc<AppState<SqliteStore>>, String> {
    let seal = open_seal(config, false)?;
    let secrets = secrets::load(&config.sealed_path(), &seal).map_err(|e| e.to_string())?;
    drop(seal);
    let store = SqliteStore::open(&config.store_path()).map_err(|e| e.to_string())?;
    let core = VaultCore::new(
        secrets.setup,
        &secrets.master,
        config.vault_id.clone(),
        config.max_attempts,
        config.login_ttl_secs as i64,
    );
    Ok(Arc::new(AppState {
        vault: Vault {
            core,
            store,
            metrics: Metrics::default(),
        },
        auth: Authenticator::new(&config.vault_id, &config.tenants)?,
        per_ip: RateLimiter::new(config.rate_limit.per_ip_per_minute),
        per_account: RateLimiter::new(config.rate_limit.per_account_per_minute),
    }))
}

/// Serves until SIGINT or SIGTERM. Prints the bound address on stdout.
pub async fn serve(config: Config) -> Result<(), String> {
    let tls = match &config.tls {
        Some(t) => Some(crate::tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let state = build(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("arca-vault listening on {scheme}://{addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, vault_id = %config.vault_id, tls = tls.is_some(), "serving");
    let app = router(state, config.max_body_bytes);
    let service = app.into_make_service_with_connect_info::<crate::tls::Peer>();
    match tls {
        Some(acceptor) => {
            let listener =
                crate::tls::TlsListener::new(listener, acceptor).map_err(|e| e.to_string())?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown())
                .await
        }
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown())
                .await
        }
    }
    .map_err(|e| e.to_string())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
