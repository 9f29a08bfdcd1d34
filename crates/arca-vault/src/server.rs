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

/// A vault served from a background thread of this process (see
/// [`spawn`]). Dropping it stops the server and waits for the thread.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`, for an HTTP client.
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Stops serving; in-flight requests finish first.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `config`'s vault in this process, over plain HTTP on loopback
/// (`config.listen` and `config.tls` are ignored: only this process is
/// meant to talk to it), from a background thread with its own tokio
/// runtime. For apps and the `arca` CLI that embed the vault when no
/// remote one is configured; clients still speak HTTP to it, so every code
/// path is the one a remote vault exercises.
///
/// Returns once the vault listens. Initialise it first with [`init`].
pub fn spawn(config: Config) -> Result<InProcess, String> {
    let state = build(&config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the in-process vault's runtime: {e}"))?;
    // Bound here, not on the thread, so a bind failure is returned.
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("cannot listen on 127.0.0.1 for the in-process vault: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state, config.max_body_bytes);
    let thread = std::thread::Builder::new()
        .name("arca-vault".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "in-process vault cannot listen");
                        return;
                    }
                };
                let service = app.into_make_service_with_connect_info::<crate::tls::Peer>();
                let stopped = async {
                    let _ = rx.await;
                };
                if let Err(e) = axum::serve(listener, service)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "in-process vault stopped");
                }
            });
        })
        .map_err(|e| format!("cannot start the in-process vault's thread: {e}"))?;
    Ok(InProcess {
        url: format!("http://{addr}"),
        shutdown: Some(tx),
        thread: Some(thread),
    })
}
