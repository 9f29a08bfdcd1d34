//! `arca`: the command-line face of arca's encrypted backups. Thin: parses
//! arguments, finds the key, shows progress, prints human or JSON output.

mod binding;
mod key;
mod output;
mod password;
mod store;
mod vault;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arca_repo::{
    BackupOptions, BackupProgress, CheckOptions, KeepPolicy, NodeKind, ObjectName, PruneOptions,
    PruneSummary, Repository, RestoreOptions, RestoreProgress, Snapshot, Storage,
};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::binding::{Binding, Mode};
use crate::output::{Progress, format_time, human_bytes};
use crate::store::KeyStore;

/// Exit code of a backup that finished but could not read some files.
const EXIT_PARTIAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "End-to-end encrypted, deduplicated backups",
    long_about = "End-to-end encrypted, deduplicated backups.\n\n\
        The repository holds only ciphertext. Its key is protected by a password held in \
        a Backup Key Vault (which allows 10 guesses), and by the 64-digit recovery key; \
        this device keeps it in a local key store so daily backups need neither.\n\n\
        Environment: ARCA_REPO, ARCA_VAULT and ARCA_VAULT_TOKEN (a remote vault), \
        ARCA_PASSWORD and ARCA_NEW_PASSWORD (non-interactive use), ARCA_RECOVERY_KEY, \
        ARCA_DATA_DIR (key store and embedded vault; default ~/.local/share/arca)."
)]
struct Cli {
    /// Repository folder.
    #[arg(
        long,
        short = 'r',
        env = "ARCA_REPO",
        global = true,
        value_name = "PATH"
    )]
    repo: Option<PathBuf>,

    /// Read the recovery key from this file (otherwise ARCA_RECOVERY_KEY, or a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    recovery_key_file: Option<PathBuf>,

    /// The Backup Key Vault holding the password backup (an https:// URL;
    /// the sign-in token comes from ARCA_VAULT_TOKEN). Without it, arca
    /// runs a vault in-process with its data under the data directory.
    #[arg(long, env = "ARCA_VAULT", global = true, value_name = "URL")]
    vault: Option<String>,

    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,

    /// No progress display.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new repository protected by a password (or, with
    /// --recovery-key-only, by the 64-digit recovery key alone).
    Init {
        /// No password: the backup key is protected only by the 64-digit
        /// recovery key, shown once, which every command then needs
        /// (ARCA_RECOVERY_KEY, --recovery-key-file, or a prompt).
        #[arg(long)]
        recovery_key_only: bool,
        /// In password mode, also show the 64-digit recovery key now
        /// (on a terminal arca asks; `arca key show` shows it later).
        #[arg(long)]
        show_recovery_key: bool,
    },
    /// The backup key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The password that protects the backup key in the vault.
    Password {
        #[command(subcommand)]
        command: PasswordCommand,
    },
    /// Show the repository's id, creation time and how its key is protected.
    Info,
    /// Back up a folder (or a file) as a new snapshot.
    Backup {
        path: PathBuf,
        /// Compare against this snapshot instead of the latest of the same folder.
        #[arg(long, value_name = "SNAPSHOT")]
        parent: Option<String>,
    },
    /// List snapshots.
    Snapshots,
    /// List the files in a snapshot.
    Ls {
        /// Snapshot id (or a unique prefix) or `latest`.
        snapshot: String,
        /// Only this path inside the snapshot.
        path: Option<String>,
    },
    /// Restore a snapshot, or part of one, into a folder.
    Restore {
        /// Snapshot id (or a unique prefix) or `latest`.
        snapshot: String,
        /// Folder to restore into (created if missing).
        #[arg(long, value_name = "DIR")]
        target: PathBuf,
        /// Restore only this path of the snapshot.
        #[arg(long, value_name = "PATH")]
        include: Option<String>,
        /// Restore into a folder that already holds files, replacing those
        /// the snapshot also has (each replaced whole, never edited in place).
        #[arg(long)]
        overwrite: bool,
    },
    /// Remove snapshots, by id or by a retention policy. Their data is
    /// freed by `prune` (or --prune).
    Forget {
        /// Snapshot ids (or unique prefixes) to remove.
        ids: Vec<String>,
        /// Keep the N newest snapshots (per host and folder).
        #[arg(long, value_name = "N")]
        keep_last: Option<u32>,
        /// Keep the newest snapshot of each of the N most recent hours that have one.
        #[arg(long, value_name = "N")]
        keep_hourly: Option<u32>,
        /// ... of each of the N most recent days (UTC).
        #[arg(long, value_name = "N")]
        keep_daily: Option<u32>,
        /// ... of each of the N most recent weeks (Monday to Sunday).
        #[arg(long, value_name = "N")]
        keep_weekly: Option<u32>,
        /// ... of each of the N most recent months.
        #[arg(long, value_name = "N")]
        keep_monthly: Option<u32>,
        /// ... of each of the N most recent years.
        #[arg(long, value_name = "N")]
        keep_yearly: Option<u32>,
        /// Show what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune afterwards, freeing the data only removed snapshots used.
        #[arg(long)]
        prune: bool,
    },
    /// Delete the data no snapshot uses any more (needs the repository to
    /// itself: no backup, restore or check may run meanwhile).
    Prune {
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rewrite a pack when at least this share of it is unused (0-100;
        /// 100 only deletes wholly unused packs).
        #[arg(long, value_name = "PERCENT", default_value_t = 25,
              value_parser = clap::value_parser!(u8).range(0..=100))]
        repack_unused: u8,
    },
    /// Remove the locks a crashed arca left behind (stale after 30 minutes
    /// without a refresh), or with --all every lock.
    Unlock {
        /// Remove every lock: only when no arca process uses the repository.
        #[arg(long)]
        all: bool,
    },
    /// Verify the repository's structure (and with --read-data, every byte).
    Check {
        /// Also download every pack and verify every blob.
        #[arg(long)]
        read_data: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print the 64-digit recovery key (after unlocking the repository).
    Show,
}

#[derive(Subcommand)]
enum PasswordCommand {
    /// Protect the backup key of a --recovery-key-only repository (or one
    /// whose password was removed) with a password in the vault, so that a
    /// new device can restore with the password. The recovery key (or this
    /// device's key store) unlocks it first; the password comes from
    /// ARCA_PASSWORD or a prompt.
    Add,
    /// Change the password (the current one is needed; the key, the
    /// recovery key and the repository stay the same). The new password
    /// comes from ARCA_NEW_PASSWORD or a prompt.
    Change,
    /// Delete the password backup from the vault: afterwards the backup
    /// opens only from this device's key store or with the recovery key.
    Remove {
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// Keeps glibc from holding freed chunk and pack buffers: without a fixed
/// mmap threshold, glibc raises it after the first large free and keeps
/// later megabyte-sized buffers in per-thread arenas, doubling peak memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator tunables; it is called first
    // thing in main, before any other thread exists, and with documented
    // parameters and in-range values. Failure (return 0) leaves defaults.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too: clap prints them to stdout
            // and they are not failures. Usage errors go to stderr and exit
            // 1 like every other arca failure (clap's own exit would be 2).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if cli.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn repo_path(cli: &Cli) -> Result<PathBuf, String> {
    let path = cli
        .repo
        .clone()
        .ok_or("no repository given: pass --repo PATH or set ARCA_REPO")?;
    if path.to_string_lossy().contains("://") {
        return Err(format!(
            "{}: only local folders are supported as repositories in this version",
            path.display()
        ));
    }
    Ok(path)
}

fn open(cli: &Cli) -> Result<Repository, String> {
    Ok(unlock(cli)?.0)
}

/// Opens the repository with the first key source that has one: this
/// device's key store, an explicit recovery key, the password through the
/// vault, or a recovery key prompt.
fn unlock(cli: &Cli) -> Result<(Repository, arca_crypto::BackupKey), String> {
    unlock_with(cli, true)
}

/// [`unlock`]; without `use_password` the vault is not asked (for
/// `password add`, whose repository has no password yet).
fn unlock_with(
    cli: &Cli,
    use_password: bool,
) -> Result<(Repository, arca_crypto::BackupKey), String> {
    let path = repo_path(cli)?;
    let storage = Storage::local(&path, false).map_err(|e| e.to_string())?;
    // The key store is optional: without a data directory the other
    // sources still work.
    let data = store::data_dir().ok();
    if let Some(data) = &data
        && let Some(found) = KeyStore::new(data).open(&storage)?
    {
        return Ok(found);
    }
    let recovery_key_given =
        cli.recovery_key_file.is_some() || std::env::var_os(key::ENV_RECOVERY_KEY).is_some();
    if use_password
        && !recovery_key_given
        && let Some(data) = &data
    {
        let use_vault = cli.vault.is_some()
            || std::env::var_os(password::ENV_PASSWORD).is_some()
            || vault::embedded_exists(data);
        if use_vault {
            let v = vault::connect(cli.vault.as_deref(), None, data, false)?;
            let (repo, key) = vault::open_with_password(&v, &storage)?;
            // A password recovery sets this device up: from now on it backs
            // up without the password or the vault.
            let saved = KeyStore::new(data).save(&repo.config().id, &key)?;
            if !cli.json {
                eprintln!(
                    "unlocked with the password; this device keeps the key in {}",
                    saved.display()
                );
            }
            return Ok((repo, key));
        }
    }
    let key = key::read_recovery_key(cli.recovery_key_file.as_deref())?;
    let repo = Repository::open(storage, &key).map_err(|e| e.to_string())?;
    Ok((repo, key))
}

/// Prints what the repository skipped while reading (such as a damaged
/// snapshot or a stray file): it may be why something is missing.
fn print_warnings(repo: &Repository) {
    for w in repo.take_warnings() {
        eprintln!("warning: {w}");
    }
}

fn show_progress(cli: &Cli) -> bool {
    !cli.quiet && !cli.json && std::io::stderr().is_terminal()
}

fn run(cli: &Cli) -> Result<u8, String> {
    match &cli.command {
        Command::Init {
            recovery_key_only,
            show_recovery_key,
        } => init(cli, *recovery_key_only, *show_recovery_key),
        Command::Key {
            command: KeyCommand::Show,
        } => key_show(cli),
        Command::Password {
            command: PasswordCommand::Add,
        } => password_add(cli),
        Command::Password {
            command: PasswordCommand::Change,
        } => password_change(cli),
        Command::Password {
            command: PasswordCommand::Remove { yes },
        } => password_remove(cli, *yes),
        Command::Info => info(cli),
        Command::Backup { path, parent } => backup(cli, path, parent.clone()),
        Command::Snapshots => snapshots(cli),
        Command::Ls { snapshot, path } => ls(cli, snapshot, path.as_deref()),
        Command::Restore {
            snapshot,
            target,
            include,
            overwrite,
        } => restore(cli, snapshot, target, include.clone(), *overwrite),
        Command::Check { read_data } => check(cli, *read_data),
        Command::Forget {
            ids,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            dry_run,
            prune,
        } => {
            let policy = KeepPolicy {
                last: keep_last.unwrap_or(0),
                hourly: keep_hourly.unwrap_or(0),
                daily: keep_daily.unwrap_or(0),
                weekly: keep_weekly.unwrap_or(0),
                monthly: keep_monthly.unwrap_or(0),
                yearly: keep_yearly.unwrap_or(0),
            };
            let given = [
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
            ];
            if given.iter().any(|k| k.is_some()) && policy.is_empty() {
                return Err(
                    "every --keep-* is 0: that would remove all snapshots. Name them instead \
                     (`arca forget ID...`)"
                        .into(),
                );
            }
            forget(cli, ids, &policy, *dry_run, *prune)
        }
        Command::Prune {
            dry_run,
            repack_unused,
        } => {
            let repo = open(cli)?;
            prune(cli, &repo, *dry_run, *repack_unused)
        }
        Command::Unlock { all } => {
            let repo = open(cli)?;
            let n = repo.unlock(*all).map_err(|e| e.to_string())?;
            if cli.json {
                println!("{}", json!({ "locks_removed": n }));
            } else {
                println!("removed {n} lock(s)");
            }
            Ok(0)
        }
    }
}

fn init(cli: &Cli, recovery_key_only: bool, show_recovery_key: bool) -> Result<u8, String> {
    let path = repo_path(cli)?;
    if path.exists()
        && path
            .read_dir()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty: choose an empty or new folder for the repository",
            path.display()
        ));
    }
    let key = arca_crypto::BackupKey::generate();
    // Password mode: the key is escrowed before the repository exists, so
    // a failure (vault down, weak password refused) leaves nothing behind.
    let (binding, vault, data) = if recovery_key_only {
        (Binding::recovery_key_only(), None, None)
    } else {
        let data = store::data_dir()?;
        let v = vault::connect(cli.vault.as_deref(), None, &data, true)?;
        let binding = escrow(&v, &key, ", or pass --recovery-key-only")?;
        (binding, Some(v), Some(data))
    };
    let created = (|| {
        let storage = Storage::local(&path, true).map_err(|e| e.to_string())?;
        Repository::init_with_extensions(storage, &key, vec![binding.to_extension()?])
            .map_err(|e| e.to_string())
    })();
    let repo = match created {
        Ok(r) => r,
        Err(e) => {
            // Do not leave a password backup for a repository that does
            // not exist: it would block the next init on this account.
            if let Some(v) = &vault {
                let _ = v.client.remove_password();
            }
            return Err(e);
        }
    };
    let key_file = match &data {
        Some(d) => Some(KeyStore::new(d).save(&repo.config().id, &key)?),
        None => None,
    };
    let location = std::path::absolute(&path).unwrap_or(path);
    let show = recovery_key_only
        || show_recovery_key
        || (!cli.json
            && password::interactive()
            && password::confirm(
                "Show the 64-digit recovery key now, to write it down? It opens the backup \
                 if the password is ever lost",
            )?);
    let shown = key.to_recovery_key();
    let embedded = vault.as_ref().is_some_and(vault::Vault::is_embedded);
    if cli.json {
        let mut out = json!({
            "repository": location.display().to_string(),
            "mode": if recovery_key_only { "recovery-key-only" } else { "password" },
        });
        if let Some(v) = &vault {
            out["vault"] = json!(v.location);
            out["vault_id"] = json!(binding.vault_id);
            out["account"] = json!(account_name(v));
        }
        if let Some(f) = &key_file {
            out["key_store"] = json!(f.display().to_string());
        }
        if show {
            out["recovery_key"] = json!(shown.expose());
        }
        println!("{out}");
        return Ok(0);
    }
    println!("Created repository {}", location.display());
    if let (Some(v), Some(f)) = (&vault, &key_file) {
        println!();
        if embedded {
            println!("The backup key is protected by your password in the vault built into");
            println!(
                "arca, on this machine ({}).",
                vault::Vault::embedded_dir(data.as_deref().unwrap_or(&location)).display()
            );
            println!();
            println!("WARNING: that vault is on the same machine as this device's key store,");
            println!("so it protects nothing if this machine is lost or stolen. Real protection");
            println!("needs the vault on other hardware than the backup: run `arca-vault` on");
            println!("a server and pass --vault URL (with ARCA_VAULT_TOKEN). Until then, the");
            println!("64-digit recovery key is what restores this backup on another machine.");
        } else {
            println!("The backup key is protected by your password in the backup key vault");
            println!("{} (account {}).", v.location, account_name(v));
            println!("After 10 wrong passwords the vault destroys it for good.");
        }
        println!();
        println!("This device keeps the key in {}:", f.display());
        println!("backups from here need neither the password nor the vault.");
    }
    println!();
    if show {
        if recovery_key_only {
            println!("Your recovery key (shown only this once):");
        } else {
            println!("Your recovery key:");
        }
        println!();
        println!("    {}", shown.expose());
        println!();
        if recovery_key_only {
            println!("Write it down and keep it somewhere safe. It is the only way to restore");
            println!("this backup: arca cannot recover it for you, and without it the backup");
            println!("is unreadable. Anyone who has it can read the backup.");
        } else {
            println!("Write it down and keep it somewhere safe: it opens the backup if the");
            println!("password is lost. Anyone who has it can read the backup.");
        }
    } else {
        println!("Run `arca key show` to see the 64-digit recovery key and write it down:");
        println!("it opens the backup if the password is lost.");
    }
    Ok(0)
}

/// Escrows `key` under a new password (ARCA_PASSWORD or a prompt) for the
/// vault account, refusing an account that already holds another key.
/// `also` ends the refusal's list of ways out.
fn escrow(v: &vault::Vault, key: &arca_crypto::BackupKey, also: &str) -> Result<Binding, String> {
    let status = v.client.status().map_err(vault::client_error)?;
    if status.registered {
        return Err(format!(
            "the account {} already has a password backup in this vault (another \
             repository's key): a new one would replace it. Use another account (sign-in \
             token){}{also}",
            account_name(v),
            if also.is_empty() {
                ", or run `arca password remove` for that repository first"
            } else {
                ", run `arca password remove` for that repository first"
            }
        ));
    }
    let pw = password::read_new(password::ENV_PASSWORD, "new password")?;
    v.client.enroll_key(key, &pw).map_err(vault::client_error)?;
    drop(pw);
    let vault_id = v.client.vault_id().map_err(vault::client_error)?;
    let account = v.client.account();
    Ok(Binding::password(
        vault_id,
        &v.location,
        &account.tenant,
        &account.user,
    ))
}

fn account_name(v: &vault::Vault) -> String {
    let a = v.client.account();
    format!("{}/{}", a.tenant, a.user)
}

fn key_show(cli: &Cli) -> Result<u8, String> {
    let (_repo, key) = unlock(cli)?;
    let shown = key.to_recovery_key();
    if cli.json {
        println!("{}", json!({ "recovery_key": shown.expose() }));
    } else {
        println!("{}", shown.expose());
        eprintln!("This is the 64-digit recovery key: anyone who has it can read the backup.");
    }
    Ok(0)
}

/// The repository's binding, refusing those without a password.
fn password_binding(repo: &Repository) -> Result<Binding, String> {
    match Binding::current(repo)? {
        Some(b) if b.mode == Mode::Password => Ok(b),
        _ => Err(
            "this repository has no password: its 64-digit recovery key opens it \
             (`arca password add` sets one)"
                .into(),
        ),
    }
}

fn password_add(cli: &Cli) -> Result<u8, String> {
    let (repo, key) = unlock_with(cli, false)?;
    if let Some(b) = Binding::current(&repo)?
        && b.mode == Mode::Password
    {
        return Err(format!(
            "this repository already has a password in the vault {} (account {}): use \
             `arca password change`",
            b.vault_url.as_deref().unwrap_or("?"),
            b.account()
        ));
    }
    let data = store::data_dir()?;
    let v = vault::connect(cli.vault.as_deref(), None, &data, true)?;
    let binding = escrow(&v, &key, "")?;
    if let Err(e) = binding.record(&repo) {
        // Do not leave a password backup the repository does not know of:
        // it would block the next `password add` on this account.
        let _ = v.client.remove_password();
        return Err(format!(
            "cannot record the password in the repository ({e}): nothing was changed"
        ));
    }
    let key_file = KeyStore::new(&data).save(&repo.config().id, &key)?;
    if cli.json {
        println!(
            "{}",
            json!({
                "password": "added",
                "vault": v.location,
                "vault_id": binding.vault_id,
                "account": account_name(&v),
                "key_store": key_file.display().to_string(),
            })
        );
    } else {
        println!(
            "Password added: the backup key is now also protected by your password in the \
             vault {} (account {}).",
            v.location,
            account_name(&v)
        );
        if v.is_embedded() {
            println!(
                "WARNING: that is the vault built into arca, on this machine: it protects \
                 nothing if this machine is lost. Keep the 64-digit recovery key."
            );
        } else {
            println!("After 10 wrong passwords the vault destroys it for good.");
        }
        println!(
            "This device keeps the key in {}: backups from here need neither the \
             password nor the recovery key.",
            key_file.display()
        );
        println!("The 64-digit recovery key still opens the backup.");
    }
    Ok(0)
}

fn password_change(cli: &Cli) -> Result<u8, String> {
    let (repo, key) = unlock(cli)?;
    let binding = password_binding(&repo)?;
    let data = store::data_dir()?;
    let v = vault::connect(cli.vault.as_deref(), Some(&binding), &data, false)?;
    let escrowed = vault::recover(&v, "current password: ")?;
    if escrowed != key {
        return Err(format!(
            "the vault's password backup for {} is not this repository's key (it was \
             replaced for another repository): nothing was changed",
            account_name(&v)
        ));
    }
    let new = password::read_new(password::ENV_NEW_PASSWORD, "new password")?;
    v.client
        .enroll_key(&key, &new)
        .map_err(vault::client_error)?;
    if cli.json {
        println!("{}", json!({ "password": "changed" }));
    } else {
        println!("Password changed: the old password no longer opens this backup.");
        println!("The backup key and the 64-digit recovery key are unchanged.");
    }
    Ok(0)
}

fn password_remove(cli: &Cli, yes: bool) -> Result<u8, String> {
    let (repo, _key) = unlock(cli)?;
    let binding = password_binding(&repo)?;
    let data = store::data_dir()?;
    let v = vault::connect(cli.vault.as_deref(), Some(&binding), &data, false)?;
    if !yes {
        if !password::interactive() {
            return Err(
                "removing the password needs confirmation: pass --yes (make sure you have \
                 the 64-digit recovery key first: `arca key show`)"
                    .into(),
            );
        }
        eprintln!(
            "After this, the backup opens only from this device's key store or with the \
             64-digit recovery key (`arca key show`): on a new device the password no longer \
             helps."
        );
        if !password::confirm("Remove the password?")? {
            return Err("nothing was changed".into());
        }
    }
    match v.client.remove_password() {
        Ok(()) => {}
        Err(arca_client::ClientError::NotEnrolled) => {
            return Err(format!(
                "the vault has no password backup for {}: there is nothing to remove",
                account_name(&v)
            ));
        }
        Err(e) => return Err(vault::client_error(e)),
    }
    if let Err(e) = Binding::recovery_key_only().record(&repo) {
        eprintln!(
            "warning: the vault no longer holds the key, but recording that in the \
             repository failed ({e}): `arca info` may still say \"password\""
        );
    }
    if cli.json {
        println!("{}", json!({ "password": "removed" }));
    } else {
        println!("Password removed: the vault no longer holds this backup's key.");
        println!("Keep the 64-digit recovery key: on a new device it is the only way in.");
    }
    Ok(0)
}

fn info(cli: &Cli) -> Result<u8, String> {
    let repo = open(cli)?;
    let config = repo.config();
    let binding = Binding::current(&repo)?;
    if cli.json {
        println!(
            "{}",
            json!({
                "id": hex::encode(config.id),
                "created": format_time(config.created),
                "key_escrow": binding,
            })
        );
        return Ok(0);
    }
    println!("repository {}", repo.storage().location());
    println!("id:       {}", hex::encode(config.id));
    println!("created:  {} UTC", format_time(config.created));
    match binding {
        Some(b) if b.mode == Mode::Password => {
            println!("key:      password in the backup key vault");
            println!(
                "vault:    {} (id {})",
                b.vault_url.as_deref().unwrap_or("?"),
                b.vault_id.as_deref().unwrap_or("?")
            );
            println!("account:  {}", b.account());
        }
        _ => println!("key:      64-digit recovery key only"),
    }
    Ok(0)
}

fn backup(cli: &Cli, path: &std::path::Path, parent: Option<String>) -> Result<u8, String> {
    let repo = open(cli)?;
    let progress = Arc::new(BackupProgress::default());
    let display = show_progress(cli).then(|| Progress::backup(progress.clone()));
    let opts = BackupOptions {
        parent,
        workers: 0,
        progress: Some(progress),
    };
    let result = repo.backup(path, &opts);
    drop(display);
    print_warnings(&repo);
    let summary = result.map_err(|e| e.to_string())?;
    for s in &summary.skipped {
        eprintln!("warning: could not read {}: {}", s.path, s.error);
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        println!("snapshot {} saved", &summary.snapshot[..8]);
        println!(
            "files:  {} new, {} changed, {} unmodified",
            summary.files_new, summary.files_changed, summary.files_unmodified
        );
        println!("dirs:   {}", summary.dirs);
        println!(
            "read:   {} of {}",
            human_bytes(summary.bytes_read),
            human_bytes(summary.bytes_total)
        );
        println!(
            "added:  {} (after deduplication and compression)",
            human_bytes(summary.bytes_added)
        );
        println!("took:   {:.1} s", summary.duration_secs);
    }
    if summary.skipped.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "{} file(s) could not be read and are not in this snapshot",
            summary.skipped.len()
        );
        Ok(EXIT_PARTIAL)
    }
}

fn snapshots(cli: &Cli) -> Result<u8, String> {
    let repo = open(cli)?;
    let list = repo.snapshots();
    print_warnings(&repo);
    let list = list.map_err(|e| e.to_string())?;
    if cli.json {
        let items: Vec<_> = list
            .iter()
            .map(|(name, s)| {
                json!({
                    "id": name.to_hex(),
                    "time": format_time(s.time),
                    "hostname": s.hostname,
                    "source": s.source_display(),
                    "files": s.files,
                    "dirs": s.dirs,
                    "bytes": s.bytes,
                    "parent": s.parent.map(|p| p.to_hex()),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(0);
    }
    if list.is_empty() {
        println!("no snapshots yet: run `arca backup PATH`");
        return Ok(0);
    }
    println!(
        "{:<10} {:<20} {:<16} {:>8} {:>10}  source",
        "id", "time (UTC)", "host", "files", "size"
    );
    for (name, s) in &list {
        println!(
            "{:<10} {:<20} {:<16} {:>8} {:>10}  {}",
            name.short(),
            format_time(s.time),
            s.hostname,
            s.files,
            human_bytes(s.bytes),
            s.source_display()
        );
    }
    println!("{} snapshot(s)", list.len());
    Ok(0)
}

fn ls(cli: &Cli, query: &str, sub: Option<&str>) -> Result<u8, String> {
    let repo = open(cli)?;
    let entries = repo.list_files(query, sub);
    print_warnings(&repo);
    let entries = entries.map_err(|e| e.to_string())?;
    if cli.json {
        let items: Vec<_> = entries
            .iter()
            .map(|(path, node)| {
                let (kind, size) = match &node.kind {
                    NodeKind::File { size, .. } => ("file", *size),
                    NodeKind::Dir { .. } => ("dir", 0),
                    NodeKind::Symlink { .. } => ("symlink", 0),
                };
                json!({ "path": path, "type": kind, "size": size, "mode": node.mode, "mtime": node.mtime })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for (path, node) in &entries {
            let (tag, size) = match &node.kind {
                NodeKind::File { size, .. } => ('-', human_bytes(*size)),
                NodeKind::Dir { .. } => ('d', String::new()),
                NodeKind::Symlink { .. } => ('l', String::new()),
            };
            println!("{tag} {:04o} {:>10}  {path}", node.mode, size);
        }
    }
    Ok(0)
}

fn restore(
    cli: &Cli,
    query: &str,
    target: &std::path::Path,
    include: Option<String>,
    overwrite: bool,
) -> Result<u8, String> {
    let repo = open(cli)?;
    let progress = Arc::new(RestoreProgress::default());
    let display = show_progress(cli).then(|| Progress::restore(progress.clone()));
    let opts = RestoreOptions {
        include,
        overwrite,
        workers: 0,
        progress: Some(progress),
    };
    let result = repo.restore(query, target, &opts);
    drop(display);
    print_warnings(&repo);
    let summary = result.map_err(|e| e.to_string())?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} in {:.1} s",
            &summary.snapshot[..8],
            target.display(),
            summary.files,
            summary.dirs,
            summary.symlinks,
            human_bytes(summary.bytes),
            summary.duration_secs
        );
    }
    Ok(0)
}

fn snapshot_json(name: &ObjectName, s: &Snapshot) -> serde_json::Value {
    json!({
        "id": name.to_hex(),
        "time": format_time(s.time),
        "hostname": s.hostname,
        "source": s.source_display(),
    })
}

fn forget(
    cli: &Cli,
    ids: &[String],
    policy: &KeepPolicy,
    dry_run: bool,
    then_prune: bool,
) -> Result<u8, String> {
    if dry_run && then_prune {
        return Err(
            "--dry-run cannot show what --prune would free before the snapshots are gone: \
             check the list with `arca forget ... --dry-run`, then forget and run \
             `arca prune --dry-run`"
                .into(),
        );
    }
    let repo = open(cli)?;
    let result = repo.forget(ids, policy, dry_run);
    print_warnings(&repo);
    let summary = result.map_err(|e| e.to_string())?;
    let verb = if dry_run { "would remove" } else { "removed" };
    if !cli.json {
        // Before pruning: whatever prune says, these are gone.
        for (name, s) in &summary.removed {
            println!(
                "{verb} snapshot {}  {}  {}  {}",
                name.short(),
                format_time(s.time),
                s.hostname,
                s.source_display()
            );
        }
        for name in &summary.removed_unreadable {
            println!("{verb} snapshot {} (it could not be read)", name.short());
        }
        println!(
            "{} snapshot(s) {verb}, {} kept",
            summary.removed.len() + summary.removed_unreadable.len(),
            summary.kept.len()
        );
    }
    let pruned = then_prune.then(|| run_prune(&repo, false, 25));
    if cli.json {
        let list = |l: &[(ObjectName, Snapshot)]| -> Vec<serde_json::Value> {
            l.iter().map(|(n, s)| snapshot_json(n, s)).collect()
        };
        let (prune, prune_error) = match &pruned {
            Some(Ok(p)) => (Some(p), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        println!(
            "{}",
            json!({
                "dry_run": dry_run,
                "removed": list(&summary.removed),
                "removed_unreadable": summary.removed_unreadable.iter().map(|n| n.to_hex()).collect::<Vec<_>>(),
                "kept": list(&summary.kept),
                "prune": prune,
                "prune_error": prune_error,
            })
        );
        if let Some(e) = prune_error {
            eprintln!("error: the snapshots were removed, but prune failed: {e}");
            return Ok(1);
        }
        return Ok(0);
    }
    match pruned {
        Some(p) => print_prune(&p.map_err(|e| format!("the snapshots were removed, but {e}"))?),
        None if !dry_run && !summary.removed.is_empty() => {
            println!("run `arca prune` to free the data only those snapshots used")
        }
        None => {}
    }
    Ok(0)
}

fn run_prune(repo: &Repository, dry_run: bool, repack_unused: u8) -> Result<PruneSummary, String> {
    let result = repo.prune(&PruneOptions {
        dry_run,
        repack_unused: f64::from(repack_unused) / 100.0,
    });
    print_warnings(repo);
    result.map_err(|e| e.to_string())
}

fn prune(cli: &Cli, repo: &Repository, dry_run: bool, repack_unused: u8) -> Result<u8, String> {
    let s = run_prune(repo, dry_run, repack_unused)?;
    if cli.json {
        println!("{}", serde_json::to_string(&s).map_err(|e| e.to_string())?);
    } else {
        print_prune(&s);
    }
    Ok(0)
}

fn print_prune(s: &PruneSummary) {
    let (delete, rewrite) = if s.dry_run {
        ("would delete", "would rewrite")
    } else {
        ("deleted", "rewrote")
    };
    println!(
        "{delete} {} unused pack(s) and {} left by interrupted backups; {rewrite} {} pack(s) \
         into {}; {} unused blob(s) dropped",
        s.packs_deleted, s.unindexed_deleted, s.packs_repacked, s.packs_written, s.blobs_removed
    );
    println!(
        "data: {} in {} pack(s) before, {} in {} after{}",
        human_bytes(s.bytes_before),
        s.packs_before,
        human_bytes(s.bytes_after),
        s.packs_after,
        if s.dry_run { " (estimated)" } else { "" }
    );
}

fn check(cli: &Cli, read_data: bool) -> Result<u8, String> {
    let repo = open(cli)?;
    let report = repo
        .check(&CheckOptions { read_data })
        .map_err(|e| e.to_string())?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "checked {} snapshots, {} settings, {} index files, {} packs, {} blobs, {} trees{}",
            report.snapshots,
            report.settings,
            report.index_files,
            report.packs,
            report.blobs,
            report.trees,
            if read_data {
                format!(", read {} packs", report.packs_read)
            } else {
                String::new()
            }
        );
        for n in &report.notes {
            println!("note: {n}");
        }
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if report.is_ok() {
        if !cli.json {
            println!("no errors found");
        }
        Ok(0)
    } else {
        eprintln!(
            "{} error(s): the repository is damaged; restore what you can and make a new backup",
            report.errors.len()
        );
        Ok(1)
    }
}
