//! End-to-end behaviour of the `arca` binary on real folders.

mod common;

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use filetime::FileTime;

const GIB: u64 = 1 << 30;

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// A tree with everything that tends to break backup tools.
fn awkward_tree(src: &Path) {
    write(&src.join("a/b/c/deep.txt"), b"deep file\n");
    write(&src.join("a/empty-file"), b"");
    fs::create_dir_all(src.join("a/empty-dir")).unwrap();
    write(&src.join("with space.txt"), b"spaces");
    write(&src.join("new\nline"), b"newline in name");
    let odd = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe.bin");
    write(&src.join(odd), &noise(70_000, 1));
    write(&src.join("media/photo.jpg"), &noise(3_000_000, 2));
    write(
        &src.join("db/messages.txt"),
        &b"hello, how are you? ".repeat(200_000),
    );
    symlink("../with space.txt", src.join("a/rel-link")).unwrap();
    symlink("/nonexistent/target", src.join("dangling")).unwrap();
    fs::set_permissions(
        src.join("media/photo.jpg"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::set_permissions(src.join("a/b"), fs::Permissions::from_mode(0o750)).unwrap();
    // A 1 GiB sparse file with data in three places.
    let big = File::create(src.join("big.sparse")).unwrap();
    big.set_len(GIB).unwrap();
    use std::os::unix::fs::FileExt;
    big.write_all_at(b"start", 0).unwrap();
    big.write_all_at(&noise(100_000, 3), GIB / 2).unwrap();
    big.write_all_at(b"end", GIB - 3).unwrap();
    drop(big);
    // Distinct, fixed mtimes (including a symlink's and a directory's own).
    let mut t = 1_600_000_000;
    let mut paths = Vec::new();
    collect(src, &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in paths {
        t += 1;
        let ft = FileTime::from_unix_time(t, 123_456_789);
        filetime::set_symlink_file_times(&p, ft, ft).unwrap();
    }
}

/// Moves the mtime of everything under `dir` `secs` seconds into the past.
fn age(dir: &Path, secs: i64) {
    let mut paths = Vec::new();
    collect(dir, &mut paths);
    for p in paths {
        let md = fs::symlink_metadata(&p).unwrap();
        let t = FileTime::from_unix_time(md.mtime() - secs, md.mtime_nsec() as u32);
        filetime::set_symlink_file_times(&p, t, t).unwrap();
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            collect(&p, out);
        }
        out.push(p);
    }
}

#[test]
fn round_trip_restores_identical_contents_and_metadata() {
    let env = Env::init();
    let src = env.path("src");
    awkward_tree(&src);
    let first = env.backup(&src);
    assert_eq!(first["files_new"], 8);
    assert!(first["skipped"].as_array().unwrap().is_empty());
    // The 1 GiB of zeros deduplicates to almost nothing.
    assert!(first["bytes_added"].as_u64().unwrap() < 20 << 20, "{first}");

    let out = env.path("out");
    let r = env.restore("latest", &out);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&src, &out);
    let big = fs::metadata(out.join("big.sparse")).unwrap();
    assert!(
        big.blocks() * 512 < 64 << 20,
        "restored sparse file is sparse"
    );

    // A second backup reads nothing and stores nothing.
    let again = env.backup(&src);
    assert_eq!(again["files_unmodified"], 8);
    assert_eq!(again["bytes_read"], 0);
    assert_eq!(again["bytes_added"], 0);
    assert_eq!(again["parent"], first["snapshot"]);

    // A sub-path restore brings back only that part, at its path.
    let part = env.path("part");
    let r = env.run(&[
        "restore",
        "latest",
        "--target",
        part.to_str().unwrap(),
        "--include",
        "a/b",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        fs::read(part.join("a/b/c/deep.txt")).unwrap(),
        b"deep file\n"
    );
    assert!(!part.join("media").exists());

    let ls = env.json(&["ls", "latest", "a"]);
    let paths: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"a/b/c/deep.txt") && paths.contains(&"a/empty-dir"),
        "{paths:?}"
    );
}

#[test]
fn nothing_readable_reaches_the_repository() {
    let env = Env::init();
    let marker = b"ARCA-MARKER-5f0c2e";
    let src = env.path("src-ARCA-MARKER-5f0c2e");
    let mut text_file = b"chat log: ".to_vec();
    for _ in 0..5000 {
        text_file.extend_from_slice(marker);
        text_file.extend_from_slice(b" lorem ipsum\n");
    }
    write(&src.join("ARCA-MARKER-5f0c2e-dir/notes.txt"), &text_file);
    let mut blob = noise(300_000, 9);
    blob[150_000..150_000 + marker.len()].copy_from_slice(marker);
    write(&src.join("raw.bin"), &blob);
    symlink("ARCA-MARKER-5f0c2e-target", src.join("link")).unwrap();
    env.backup(&src);
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim().as_bytes();
    for (name, bytes) in env.objects() {
        assert!(!name.contains("MARKER"), "{name}");
        let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!found(marker), "marker in {name}");
        assert!(!found(b"notes.txt"), "file name in {name}");
        assert!(
            hostname.len() < 4 || !found(hostname),
            "host name in {name}"
        );
        assert_eq!(&bytes[..5], b"ARCA\x01", "{name} starts with the header");
    }
}

#[test]
fn wrong_or_malformed_key_is_refused_with_a_clear_message() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("f"), b"data");
    env.backup(&src);
    let other = Env::init();
    let out = env.path("out");
    for args in [
        vec!["restore", "latest", "--target", out.to_str().unwrap()],
        vec!["check"],
        vec!["snapshots"],
        vec!["backup", src.to_str().unwrap()],
    ] {
        let r = env
            .cmd()
            .env("ARCA_RECOVERY_KEY", &other.key)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        let err = text(&r.stderr);
        assert!(
            err.contains("this recovery key does not open repository"),
            "{err}"
        );
        assert!(
            !err.contains(&other.key) && !err.contains(&env.key),
            "no key in errors"
        );
    }
    assert!(!out.exists(), "nothing restored");

    let mut typo = env.key.clone();
    typo.replace_range(5..6, "g");
    let r = env
        .cmd()
        .env("ARCA_RECOVERY_KEY", &typo)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("invalid character 'g' at position 6"),
        "{}",
        text(&r.stderr)
    );

    // The key also works from a file, in upper case, in groups on lines.
    let keyfile = env.path("key.txt");
    fs::write(&keyfile, env.key.to_uppercase().replace('-', "\n")).unwrap();
    let r = env
        .cmd()
        .env_remove("ARCA_RECOVERY_KEY")
        .args([
            "snapshots",
            "--recovery-key-file",
            keyfile.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
}

#[test]
fn missing_newer_and_occupied_repositories_are_explained() {
    let env = Env::init();
    let r = env
        .cmd()
        .env("ARCA_REPO", env.path("nowhere"))
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("no arca repository at"),
        "{}",
        text(&r.stderr)
    );

    let r = env
        .cmd()
        .args(["init", "--recovery-key-only"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains("not empty"), "{}", text(&r.stderr));

    let config = env.repo.join("config");
    let mut bytes = fs::read(&config).unwrap();
    bytes[4] = 2;
    fs::write(&config, bytes).unwrap();
    let r = env.run(&["snapshots"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("newer than this arca"),
        "{}",
        text(&r.stderr)
    );
}

/// Every restored file must equal its source; missing files are allowed.
fn assert_no_wrong_bytes(src: &Path, out: &Path) {
    if !out.exists() {
        return;
    }
    let (a, b) = (snapshot_of(src), snapshot_of(out));
    for (name, entry) in &b {
        if let Some(orig) = a.get(name) {
            if orig.is_file() {
                assert_eq!(
                    orig.content(),
                    entry.content(),
                    "wrong bytes in {}",
                    text(name)
                );
            }
        } else {
            panic!("unexpected file {}", text(name));
        }
    }
}

#[test]
fn damaged_objects_are_reported_and_never_restored() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("text.txt"), &b"some message text ".repeat(50_000));
    write(&src.join("photo.jpg"), &noise(2_500_000, 4));
    write(&src.join("dir/voice.opus"), &noise(400_000, 5));
    env.backup(&src);
    let originals = env.objects();
    assert!(originals.len() >= 4, "config, index, snapshot and packs");
    let mut case = 0;
    for (name, bytes) in &originals {
        let path = env.repo.join(name);
        let damages: Vec<(&str, Vec<u8>)> = vec![
            ("flip in header", flip(bytes, 1)),
            ("flip in middle", flip(bytes, bytes.len() / 2)),
            ("flip at end", flip(bytes, bytes.len() - 1)),
            ("truncated", bytes[..bytes.len() * 2 / 3].to_vec()),
        ];
        for (what, damaged) in damages {
            case += 1;
            fs::write(&path, &damaged).unwrap();
            let r = env.run(&["check", "--read-data"]);
            assert_eq!(r.status.code(), Some(1), "check missed {what} of {name}");
            assert!(
                text(&r.stderr).contains("error"),
                "{what} {name}: {}",
                text(&r.stderr)
            );
            if name != "config" {
                let err = text(&r.stderr);
                assert!(
                    !err.contains("does not open"),
                    "{what} of {name} is not a wrong key: {err}"
                );
            }
            let out = env.path(&format!("out{case}"));
            let r = env.restore("latest", &out);
            if r.status.success() {
                assert_same_tree(&src, &out);
            } else {
                assert_no_wrong_bytes(&src, &out);
            }
            fs::write(&path, bytes).unwrap();
        }
    }
    let r = env.run(&["check", "--read-data"]);
    assert!(
        r.status.success(),
        "repaired repository checks clean: {}",
        text(&r.stderr)
    );
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

#[test]
fn a_killed_backup_leaves_a_repository_that_checks_and_continues() {
    let env = Env::init();
    let src = env.path("src");
    for i in 0..40 {
        write(
            &src.join(format!("media/{i:02}.mp4")),
            &noise(8 << 20, 100 + i),
        );
    }
    // Kill once after the first pack lands, once after the first index.
    for wait_for in ["data", "index"] {
        let mut child = env.cmd().args(["backup", "-q"]).arg(&src).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let dir = env.repo.join(wait_for);
            let started = fs::read_dir(&dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if started || Instant::now() > deadline {
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the backup was killed before it finished ({wait_for})"
        );
        let r = env.run(&["check", "--read-data"]);
        assert!(r.status.success(), "check after kill: {}", text(&r.stderr));
        let snaps = env.json(&["snapshots"]);
        assert_eq!(
            snaps.as_array().unwrap().len(),
            0,
            "no snapshot from a killed run"
        );
    }
    let done = env.backup(&src);
    assert_eq!(done["files_new"], 40);
    let out = env.path("out");
    let r = env.restore("latest", &out);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_same_tree(&src, &out);
    let r = env.run(&["check", "--read-data"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
}

#[test]
fn two_devices_backing_up_at_once_do_not_corrupt_the_repository() {
    let env = Env::init();
    let (a, b) = (env.path("phone-a"), env.path("phone-b"));
    for i in 0..12 {
        let shared = noise(3 << 20, 200 + i);
        write(&a.join(format!("shared/{i}")), &shared);
        write(&b.join(format!("shared/{i}")), &shared);
        write(&a.join(format!("own/{i}")), &noise(1 << 20, 300 + i));
        write(&b.join(format!("own/{i}")), &noise(1 << 20, 400 + i));
    }
    let spawn = |src: &Path| env.cmd().args(["backup", "-q", "--json"]).arg(src).output();
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| spawn(&a).unwrap());
        let hb = s.spawn(|| spawn(&b).unwrap());
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(
        ra.status.success() && rb.status.success(),
        "{} {}",
        text(&ra.stderr),
        text(&rb.stderr)
    );
    let r = env.run(&["check", "--read-data"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    for (src, out) in [(&a, &ra), (&b, &rb)] {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let target = env.path(&format!(
            "restored-{}",
            &v["snapshot"].as_str().unwrap()[..8]
        ));
        let r = env.restore(v["snapshot"].as_str().unwrap(), &target);
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert_same_tree(src, &target);
    }
}

#[test]
fn incremental_backup_after_a_one_percent_change_uploads_about_one_percent() {
    let env = Env::init();
    let src = env.path("src");
    let db = src.join("msgstore.db");
    write(&db, &noise(60 << 20, 7));
    for i in 0..40 {
        write(
            &src.join(format!("Media/{i}.jpg")),
            &noise(1 << 20, 500 + i),
        );
    }
    // Files modified within a second of a backup's start are re-read by the
    // next backup (a change in the same timestamp tick could go unseen);
    // a phone's photos are older than that.
    age(&src, 60);
    env.backup(&src);
    let total: u64 = 100 << 20;
    // A day of chatting: 600 KiB of new rows appended, two pages updated in
    // place, one new 300 KiB photo. About 1 % of the data.
    let mut f = fs::OpenOptions::new().append(true).open(&db).unwrap();
    use std::io::Write;
    f.write_all(&noise(600 << 10, 8)).unwrap();
    drop(f);
    let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&noise(4096, 10), 10 << 20).unwrap();
    f.write_all_at(&noise(4096, 11), 40 << 20).unwrap();
    write(&src.join("Media/new.jpg"), &noise(300 << 10, 12));
    let incr = env.backup(&src);
    let added = incr["bytes_added"].as_u64().unwrap();
    assert_eq!(incr["files_unmodified"], 40);
    assert_eq!(incr["files_changed"], 1);
    assert_eq!(incr["files_new"], 1);
    let pct = added as f64 * 100.0 / total as f64;
    assert!(
        pct > 0.8 && pct < 3.0,
        "incremental uploaded {pct:.2} % ({added} bytes)"
    );
}

#[test]
fn unreadable_files_are_named_and_exit_code_is_3() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("ok.txt"), b"fine");
    write(&src.join("secret.txt"), b"no access");
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = env.cmd();
    if is_root() {
        // Root reads anything: run as nobody, on folders nobody can use.
        for p in [env.dir.path(), &src, &env.repo] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(&env.repo)
            .status()
            .unwrap();
        fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", ARCA])
            .env("ARCA_REPO", &env.repo)
            .env("ARCA_RECOVERY_KEY", &env.key);
    }
    let r = cmd.args(["backup"]).arg(&src).output().unwrap();
    assert_eq!(r.status.code(), Some(3), "{}", text(&r.stderr));
    let err = text(&r.stderr);
    assert!(
        err.contains("secret.txt") && err.contains("could not read"),
        "{err}"
    );
    let ls = env.json(&["ls", "latest"]);
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ok.txt"]);
}

#[test]
fn restore_onto_a_full_disk_fails_clearly_and_writes_no_wrong_bytes() {
    if !is_root() {
        eprintln!("restore_onto_a_full_disk: needs root to mount a small tmpfs; not run");
        return;
    }
    let env = Env::init();
    let src = env.path("src");
    for i in 0..4 {
        write(&src.join(format!("{i}.bin")), &noise(1 << 20, 600 + i));
    }
    env.backup(&src);
    let mnt = env.path("small-disk");
    fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let r = env.restore("latest", &mnt.join("out"));
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("no space left"), "{err}");
    assert_no_wrong_bytes(&src, &mnt.join("out"));
}

#[test]
fn sqlite_database_changes_upload_only_the_changed_pages() {
    let env = Env::init();
    let src = env.path("src");
    // A 64 MiB "database": SQLite header (4096-byte pages), then pages.
    let mut db = noise(64 << 20, 13);
    db[..16].copy_from_slice(b"SQLite format 3\0");
    db[16..18].copy_from_slice(&4096u16.to_be_bytes());
    write(&src.join("msgstore.db"), &db);
    env.backup(&src);
    // A day of chatting: 40 pages rewritten all over the file, 8 appended.
    for i in 0..40u64 {
        let at = ((i * 7919 + 13) % 16384) as usize * 4096;
        db[at..at + 4096].copy_from_slice(&noise(4096, 1000 + i));
    }
    db.extend_from_slice(&noise(8 * 4096, 2000));
    write(&src.join("msgstore.db"), &db);
    let incr = env.backup(&src);
    let added = incr["bytes_added"].as_u64().unwrap();
    // 48 changed pages in at most 48 page groups of 16 KiB, plus metadata.
    assert!(
        added < 48 * 16384 + 200_000,
        "uploaded {added} bytes for 48 changed pages"
    );
    let out = env.path("out");
    assert!(env.restore("latest", &out).status.success());
    assert_eq!(fs::read(out.join("msgstore.db")).unwrap(), db);
}

#[test]
fn help_and_version_succeed_and_usage_errors_exit_1() {
    for args in [&["--help"][..], &["--version"], &["restore", "--help"]] {
        let r = Command::new(ARCA).args(args).output().unwrap();
        assert_eq!(r.status.code(), Some(0), "{args:?}: {}", text(&r.stderr));
        assert!(!r.stdout.is_empty(), "{args:?} prints to stdout");
    }
    for args in [
        &["bogus"][..],
        &["restore"],
        &["backup", "--no-such-flag", "x"],
    ] {
        let r = Command::new(ARCA).args(args).output().unwrap();
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        let err = text(&r.stderr);
        assert!(
            err.contains("error:") && err.contains("Usage:"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_recovery_key_that_is_not_utf8_is_named_as_the_problem() {
    let env = Env::init();
    let r = env
        .cmd()
        .env(
            "ARCA_RECOVERY_KEY",
            std::ffi::OsStr::from_bytes(b"0001-\xff\xfe-0203"),
        )
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(err.contains("ARCA_RECOVERY_KEY is not UTF-8 text"), "{err}");
}

#[test]
fn restore_into_a_folder_with_files_needs_overwrite() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("notes.txt"), b"from the backup");
    env.backup(&src);
    let out = env.path("out");
    write(&out.join("notes.txt"), b"edited since");
    let r = env.restore("latest", &out);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("is not empty") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"edited since");

    let r = env.run(&[
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"from the backup");
}

#[test]
fn stray_files_in_the_repository_are_warnings_except_to_check() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("f"), b"data");
    env.backup(&src);
    fs::write(env.repo.join("snapshots/.DS_Store"), b"Bud1").unwrap();
    let r = env.run(&["snapshots"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("warning: ignored snapshots/.DS_Store"),
        "{}",
        text(&r.stderr)
    );
    let out = env.path("out");
    assert!(env.restore("latest", &out).status.success());
    let r = env.run(&["check"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains(".DS_Store"), "{}", text(&r.stderr));
}

#[test]
fn set_id_bits_come_back_only_with_their_owner() {
    let env = Env::init();
    let src = env.path("src");
    write(&src.join("tool"), b"#!/bin/sh\n");
    if is_root() {
        std::os::unix::fs::chown(src.join("tool"), Some(65534), Some(65534)).unwrap();
    }
    fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    env.backup(&src);
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    if !is_root() {
        let out = env.path("out");
        assert!(env.restore("latest", &out).status.success());
        assert_eq!(mode(&out.join("tool")), 0o755, "set-uid bit dropped");
        return;
    }
    // Root restores the owner, so the set-uid bit is its owner's again.
    let out = env.path("out");
    assert!(env.restore("latest", &out).status.success());
    let md = fs::metadata(out.join("tool")).unwrap();
    assert_eq!((md.uid(), mode(&out.join("tool"))), (65534, 0o4755));

    // Anyone else gets a file they own: a set-uid bit would run as them.
    for p in [env.dir.path(), &env.repo] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
    }
    Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&env.repo)
        .status()
        .unwrap();
    let out = env.path("as-nobody");
    let r = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", ARCA])
        .args(["restore", "latest", "--target"])
        .arg(&out)
        .env("ARCA_REPO", &env.repo)
        .env("ARCA_RECOVERY_KEY", &env.key)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(mode(&out.join("tool")), 0o755);
}
