//! Forget and prune through the `arca` binary: retention policies, freed
//! space, what stays restorable, and prune waiting for other users.

mod common;

use std::fs;
use std::path::Path;

use arca_repo::{LockKind, Repository, Storage};
use common::{Env, assert_same_tree, text};

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    arca_crypto::fill_random(&mut v);
    v
}

fn data_bytes(env: &Env) -> u64 {
    env.objects()
        .iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .map(|(_, b)| b.len() as u64)
        .sum()
}

/// Three snapshots of `src`: `photo` replaced after the first, `note`
/// added before the third.
fn three_backups(env: &Env, src: &Path) {
    fs::create_dir_all(src).unwrap();
    fs::write(src.join("photo"), random(3 << 20)).unwrap();
    fs::write(src.join("db"), random(2 << 20)).unwrap();
    env.backup(src);
    fs::write(src.join("photo"), random(3 << 20)).unwrap();
    env.backup(src);
    fs::write(src.join("note"), b"remember the milk").unwrap();
    env.backup(src);
}

#[test]
fn forget_keep_last_then_prune_frees_space_and_the_kept_snapshot_restores() {
    let env = Env::init();
    let src = env.path("src");
    three_backups(&env, &src);
    let before = data_bytes(&env);

    let plan = env.json(&["forget", "--keep-last", "1", "--dry-run"]);
    assert_eq!(plan["removed"].as_array().unwrap().len(), 2, "{plan}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);

    let r = env.run(&["forget", "--keep-last", "0"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("would remove all snapshots"),
        "{}",
        text(&r.stderr)
    );

    let done = env.json(&["forget", "--keep-last", "1", "--prune"]);
    assert_eq!(done["removed"].as_array().unwrap().len(), 2, "{done}");
    // The first pack held the first photo (unused now) and the db (used):
    // it is rewritten with the db alone.
    assert_eq!(done["prune"]["packs_repacked"], 1, "{done}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
    // The first photo is gone from storage; the second one and the db stay.
    let after = data_bytes(&env);
    assert!(
        before - after > 3 << 20 && after > 5 << 20,
        "{before} -> {after}"
    );

    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["errors"].as_array().unwrap().len(), 0, "{check}");
    let out = env.path("restored");
    let r = env.restore("latest", &out);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&src, &out);

    let again = env.json(&["prune"]);
    assert_eq!(again["packs_deleted"], 0, "{again}");
    assert_eq!(again["packs_repacked"], 0, "{again}");
}

#[test]
fn prune_waits_for_a_running_backup_and_names_it() {
    let env = Env::init();
    let src = env.path("src");
    three_backups(&env, &src);
    let id = env.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.json(&["forget", &id]);

    // Another arca holds the repository (as a backup does while it runs).
    let key = arca_crypto::RecoveryKey::parse(&env.key).unwrap();
    let repo = Repository::open(Storage::local(&env.repo, false).unwrap(), &key).unwrap();
    let held = repo.lock(LockKind::Shared).unwrap();
    let objects = env.objects();
    let r = env.run(&["prune"]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(err.contains("locked") && err.contains("pid"), "{err}");
    assert!(env.objects() == objects, "prune changed something");

    drop(held);
    let done = env.json(&["prune"]);
    assert!(done["packs_repacked"].as_u64().unwrap() >= 1, "{done}");
}
