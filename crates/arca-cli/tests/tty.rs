//! What a person at a terminal sees and answers: `arca` runs under
//! `script` (util-linux), which gives it a pseudo-terminal, and the test
//! types each answer once its prompt has appeared. The vault is the one
//! `arca` embeds, so no server is needed.

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ARCA, text};

const PASSWORD: &str = "purple tiger stapler";

/// One `arca` run on a terminal.
struct Tty {
    child: Child,
    stdin: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of the screen earlier `expect`s consumed.
    seen: usize,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tty {
    fn run(data: &Path, repo: &Path, env: &[(&str, &str)], args: &[&str]) -> Tty {
        let mut line = quote(ARCA);
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let mut child = Command::new("script")
            .args(["--quiet", "--return", "--command", &line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("ARCA_REPO", repo)
            .env("ARCA_DATA_DIR", data)
            .env_remove("ARCA_RECOVERY_KEY")
            .env_remove("ARCA_PASSWORD")
            .env_remove("ARCA_NEW_PASSWORD")
            .env_remove("ARCA_VAULT")
            .env_remove("ARCA_VAULT_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Tty {
            stdin: child.stdin.take(),
            child,
            screen,
            seen: 0,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until `text` appears after what earlier calls consumed.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let screen = self.screen.lock().unwrap();
                if let Some(at) = screen[self.seen..]
                    .windows(text.len())
                    .position(|w| w == text.as_bytes())
                {
                    self.seen += at + text.len();
                    return;
                }
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("never saw {text:?}; the terminal shows:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `line` and Enter.
    fn answer(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the exit; returns the exit code and the whole screen.
    fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        // The reader thread may still hold the last bytes.
        std::thread::sleep(Duration::from_millis(200));
        let screen = self.screen();
        (status.code().unwrap_or(-1), format!("{screen}{err}"))
    }
}

struct Scratch {
    _dir: tempfile::TempDir,
    data: PathBuf,
    repo: PathBuf,
    src: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("chat.txt"), b"hello from the terminal").unwrap();
        Scratch {
            data: dir.path().join("data"),
            repo: dir.path().join("repo"),
            src,
            _dir: dir,
        }
    }

    fn tty(&self, args: &[&str]) -> Tty {
        Tty::run(&self.data, &self.repo, &[], args)
    }

    /// `arca` without a terminal.
    fn plain(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        Command::new(ARCA)
            .args(args)
            .env("ARCA_REPO", &self.repo)
            .env("ARCA_DATA_DIR", &self.data)
            .env_remove("ARCA_RECOVERY_KEY")
            .env_remove("ARCA_PASSWORD")
            .env_remove("ARCA_VAULT")
            .env_remove("ARCA_VAULT_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn init_asks_for_a_good_password_twice_and_offers_the_recovery_key() {
    let s = Scratch::new();
    let mut t = s.tty(&["init"]);
    t.expect("new password: ");
    t.answer("abc");
    t.expect("too short");
    t.expect("new password: ");
    t.answer("password1");
    t.expect("weak (it is one of the most common passwords)");
    t.expect("new password again: ");
    t.answer("password2");
    t.expect("the two passwords differ");
    t.expect("new password: ");
    t.answer(PASSWORD);
    t.expect("new password again: ");
    t.answer(PASSWORD);
    t.expect("Show the 64-digit recovery key now");
    t.expect("[y/N] ");
    t.answer("y");
    t.expect("Your recovery key:");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("it protects nothing if this machine is lost"),
        "the embedded vault is not protection: {screen}"
    );
    let key = screen
        .split_whitespace()
        .find(|w| w.len() == 79 && w.matches('-').count() == 15)
        .unwrap_or_else(|| panic!("no recovery key shown: {screen}"));
    // Typed passwords are never echoed.
    assert!(!screen.contains(PASSWORD), "{screen}");

    // The key shown is the repository's.
    std::fs::remove_dir_all(s.data.join("keys")).unwrap();
    let r = s.plain(
        &[("ARCA_RECOVERY_KEY", key)],
        &["backup", s.src.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
}

#[test]
fn a_wrong_password_is_asked_again_and_the_last_guess_needs_a_yes() {
    let s = Scratch::new();
    let r = s.plain(&[("ARCA_PASSWORD", PASSWORD)], &["init"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    // A new device: the key store is gone, the (embedded) vault remains.
    std::fs::remove_dir_all(s.data.join("keys")).unwrap();

    let mut t = s.tty(&["snapshots"]);
    for left in (1..=9).rev() {
        t.expect("password: ");
        t.answer("not my password");
        t.expect(&format!("wrong password: {left} attempt"));
    }
    t.expect("this is the last password attempt");
    t.expect("Try the password once more? [y/N] ");
    t.answer("n");
    let (code, screen) = t.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("stopped before the last attempt"),
        "{screen}"
    );

    // Nothing was spent: the right password still opens it, and resets.
    let r = s.plain(&[("ARCA_PASSWORD", PASSWORD)], &["snapshots"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
}

#[test]
fn removing_the_password_asks_first() {
    let s = Scratch::new();
    let r = s.plain(&[("ARCA_PASSWORD", PASSWORD)], &["init"]);
    assert!(r.status.success(), "{}", text(&r.stderr));

    let mut t = s.tty(&["password", "remove"]);
    t.expect("Remove the password? [y/N] ");
    t.answer("");
    let (code, screen) = t.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("nothing was changed"), "{screen}");
    let info = s.plain(&[], &["--json", "info"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["key_escrow"]["mode"], "password", "{info}");

    let mut t = s.tty(&["password", "remove"]);
    t.expect("Remove the password? [y/N] ");
    t.answer("yes");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Password removed"), "{screen}");
    let info = s.plain(&[], &["--json", "info"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["key_escrow"]["mode"], "recovery-key-only", "{info}");
}
