//! `arca`: the command-line face of arca's encrypted backups. Thin: parses
//! arguments, finds the key, shows progress, prints human or JSON output.

mod key;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arca_repo::{
    BackupOptions, BackupProgress, CheckOptions, NodeKind, Repository, RestoreOptions,
    RestoreProgress, Storage,
};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::output::{Progress, format_time, human_bytes};

/// Exit code of a backup that finished but could not read some files.
const EXIT_PARTIAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "End-to-end encrypted, deduplicated backups",
    long_about = "End-to-end encrypted, deduplicated backups.\n\n\
        The repository holds only ciphertext; the key is your 64-digit recovery key."
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
    /// Create a new repository and show its recovery key once.
    Init {
        /// Protect the backup key only by the 64-digit recovery key you write
        /// down (password protection through the vault comes in a later
        /// version; today this is the only mode).
        #[arg(long)]
        recovery_key_only: bool,
    },
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
    /// Verify the repository's structure (and with --read-data, every byte).
    Check {
        /// Also download every pack and verify every blob.
        #[arg(long)]
        read_data: bool,
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
    let path = repo_path(cli)?;
    let storage = Storage::local(&path, false).map_err(|e| e.to_string())?;
    let key = key::read_recovery_key(cli.recovery_key_file.as_deref())?;
    Repository::open(storage, &key).map_err(|e| e.to_string())
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
            recovery_key_only: _,
        } => init(cli),
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
    }
}

fn init(cli: &Cli) -> Result<u8, String> {
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
    let storage = Storage::local(&path, true).map_err(|e| e.to_string())?;
    let key = arca_crypto::BackupKey::generate();
    Repository::init(storage, &key).map_err(|e| e.to_string())?;
    let shown = key.to_recovery_key();
    let location = std::path::absolute(&path).unwrap_or(path);
    if cli.json {
        println!(
            "{}",
            json!({ "repository": location.display().to_string(), "recovery_key": shown.expose() })
        );
    } else {
        println!("Created repository {}", location.display());
        println!();
        println!("Your recovery key (shown only this once):");
        println!();
        println!("    {}", shown.expose());
        println!();
        println!("Write it down and keep it somewhere safe. It is the only way to restore");
        println!("this backup: arca cannot recover it for you, and without it the backup");
        println!("is unreadable. Anyone who has it can read the backup.");
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
            "checked {} snapshots, {} index files, {} packs, {} blobs, {} trees{}",
            report.snapshots,
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
