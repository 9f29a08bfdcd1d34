//! Helpers for tests that drive the real `arca` binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ARCA: &str = env!("CARGO_BIN_EXE_arca");

/// A scratch folder with one repository and its recovery key.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub key: String,
}

impl Env {
    /// A new, initialised repository.
    pub fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let out = Command::new(ARCA)
            .args(["--json", "init", "--recovery-key-only", "--repo"])
            .arg(&repo)
            .env_remove("ARCA_RECOVERY_KEY")
            .env("ARCA_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = v["recovery_key"].as_str().unwrap().to_string();
        Self { dir, repo, key }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `arca` with this repository and key in its environment, and a
    /// data directory (key store, embedded vault) of its own.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(ARCA);
        c.env("ARCA_REPO", &self.repo)
            .env("ARCA_RECOVERY_KEY", &self.key)
            .env("ARCA_DATA_DIR", self.path("data"))
            .env_remove("ARCA_VAULT")
            .env_remove("ARCA_VAULT_TOKEN")
            .env_remove("ARCA_PASSWORD");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd().arg("--json").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "arca {args:?} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn backup(&self, src: &Path) -> serde_json::Value {
        self.json(&["backup", src.to_str().unwrap()])
    }

    pub fn restore(&self, snapshot: &str, target: &Path) -> Output {
        self.run(&["restore", snapshot, "--target", target.to_str().unwrap()])
    }

    /// Every stored object, as (relative path, bytes).
    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.repo.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&self.repo).unwrap().display().to_string();
                    out.push((rel, fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    pub fn repo_size(&self) -> u64 {
        self.objects().iter().map(|(_, b)| b.len() as u64).sum()
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a user would compare between two trees: names, kinds, contents,
/// permission bits, mtimes (files, dirs, symlinks) and link targets.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    kind: char,
    mode: u32,
    mtime: (i64, i64),
    content: Vec<u8>,
}

pub fn snapshot_of(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Entry>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let (kind, content) = if md.is_symlink() {
            (
                'l',
                fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
            )
        } else if md.is_dir() {
            walk(root, &p, out);
            ('d', Vec::new())
        } else {
            (
                'f',
                blake3::hash(&fs::read(&p).unwrap()).as_bytes().to_vec(),
            )
        };
        let mode = if md.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        out.insert(
            rel,
            Entry {
                kind,
                mode,
                mtime: (md.mtime(), md.mtime_nsec()),
                content,
            },
        );
    }
}

impl Entry {
    pub fn is_file(&self) -> bool {
        self.kind == 'f'
    }
    pub fn content(&self) -> &[u8] {
        &self.content
    }
}

/// Asserts that two trees are identical as [`snapshot_of`] sees them.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (x, y) = (snapshot_of(a), snapshot_of(b));
    let names = |m: &BTreeMap<Vec<u8>, Entry>| m.keys().map(|k| text(k)).collect::<Vec<_>>();
    assert_eq!(names(&x), names(&y), "different names");
    for (k, v) in &x {
        assert_eq!(Some(v), y.get(k), "{} differs", text(k));
    }
}

/// Deterministic pseudorandom bytes (incompressible).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
