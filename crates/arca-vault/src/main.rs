//! `arca-vault`: init, serve, and development helpers.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use arca_vault::config::{Algorithm, Config};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use ring::signature::KeyPair;

#[derive(Parser)]
#[command(
    name = "arca-vault",
    version,
    about = "The arca Backup Key Vault (OPAQUE key escrow)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and seal the vault's secrets (refuses to overwrite).
    Init {
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve the API.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Mint a development token for a tenant with a local signing key.
    Token {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// Lifetime in seconds (at most 24 h).
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
    /// Generate an Ed25519 tenant signing key (PKCS#8, mode 0600) and print
    /// its public key for the tenant's `keys`.
    TenantKey {
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Init { config } => {
            let c = Config::load(&config)?;
            arca_vault::server::init(&c)?;
            println!(
                "initialised vault {:?}: sealed secrets in {}",
                c.vault_id,
                c.sealed_path().display()
            );
            Ok(())
        }
        Command::Serve { config } => {
            let c = Config::load(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(arca_vault::server::serve(c))
        }
        Command::Token {
            config,
            tenant,
            sub,
            ttl_secs,
        } => {
            let c = Config::load(&config)?;
            let t = c
                .tenants
                .iter()
                .find(|t| t.id == tenant)
                .ok_or_else(|| format!("no tenant {tenant:?} in {}", config.display()))?;
            let (alg, key) = match t.algorithm {
                Algorithm::EdDSA => {
                    let path = t.signing_key.as_ref().ok_or_else(|| {
                        format!("tenant {tenant:?} has no signing_key: tokens come from its account system")
                    })?;
                    let der =
                        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    (
                        jsonwebtoken::Algorithm::EdDSA,
                        jsonwebtoken::EncodingKey::from_ed_der(&der),
                    )
                }
                Algorithm::HS256 => {
                    let secret = URL_SAFE_NO_PAD
                        .decode(t.keys[0].trim())
                        .map_err(|e| format!("tenant {tenant:?}: bad HS256 secret: {e}"))?;
                    (
                        jsonwebtoken::Algorithm::HS256,
                        jsonwebtoken::EncodingKey::from_secret(&secret),
                    )
                }
                Algorithm::ES256 => {
                    return Err(
                        "minting ES256 tokens is not supported: use the tenant's account system"
                            .into(),
                    );
                }
            };
            let now = arca_vault::service::now();
            let claims = serde_json::json!({
                "iss": tenant, "sub": sub, "aud": c.vault_id,
                "iat": now, "exp": now + ttl_secs.clamp(1, 24 * 3600),
            });
            let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key)
                .map_err(|e| format!("cannot sign: {e}"))?;
            println!("{token}");
            Ok(())
        }
        Command::TenantKey { out } => {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| "cannot generate a key".to_string())?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| "cannot parse the generated key".to_string())?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            f.write_all(pkcs8.as_ref())
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!("{}", URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()));
            Ok(())
        }
    }
}
