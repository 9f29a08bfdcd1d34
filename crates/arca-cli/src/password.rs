//! Reading passwords: a hidden prompt on a terminal, else an environment
//! variable; and the rules a new password must meet.

use std::io::{BufRead as _, IsTerminal, Write as _};
use std::os::unix::ffi::OsStringExt;

use zeroize::Zeroizing;

/// Environment variable holding the password (non-interactive use).
pub const ENV_PASSWORD: &str = "ARCA_PASSWORD";
/// Environment variable holding the new password for `arca password change`.
pub const ENV_NEW_PASSWORD: &str = "ARCA_NEW_PASSWORD";
/// Shortest password accepted.
pub const MIN_LEN: usize = 6;

/// Whether prompts can be shown and answered.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The password from `env`, or a hidden prompt on a terminal.
pub fn read(env: &str, prompt: &str) -> Result<Zeroizing<String>, String> {
    if let Some(v) = std::env::var_os(env) {
        return String::from_utf8(v.into_vec())
            .map(Zeroizing::new)
            .map_err(|e| {
                drop(Zeroizing::new(e.into_bytes()));
                format!("{env} is not UTF-8 text: set it to the password")
            });
    }
    if interactive() {
        return rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| format!("cannot read the password from the terminal: {e}"));
    }
    Err(format!(
        "no password: set {env}, or run on a terminal to be asked"
    ))
}

/// A new password: from `env` (checked, no confirmation), or typed twice
/// at a prompt (asked again while it is refused or the two differ).
pub fn read_new(env: &str, what: &str) -> Result<Zeroizing<String>, String> {
    if std::env::var_os(env).is_some() {
        let pw = read(env, "")?;
        check(&pw).map_err(|e| format!("{env}: {e}"))?;
        warn_if_weak(&pw);
        return Ok(pw);
    }
    if !interactive() {
        return Err(format!(
            "no {what}: set {env}, or run on a terminal to be asked"
        ));
    }
    for _ in 0..5 {
        let pw = read(env, &format!("{what}: "))?;
        if let Err(e) = check(&pw) {
            eprintln!("{e}");
            continue;
        }
        warn_if_weak(&pw);
        let again = read(env, &format!("{what} again: "))?;
        if *again != *pw {
            eprintln!("the two passwords differ: type the same password twice");
            continue;
        }
        return Ok(pw);
    }
    Err("no password set: too many attempts".into())
}

/// The rule a new password must meet.
pub fn check(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_LEN || !pw.chars().any(char::is_alphabetic) {
        return Err(format!(
            "the password is too short or has no letter: use at least {MIN_LEN} characters \
             including a letter (a few words are easy to remember and hard to guess)"
        ));
    }
    Ok(())
}

/// Why a password that meets the rule is still easy to guess, if it is.
/// The vault allows only 10 guesses, so this warns rather than refuses.
pub fn weakness(pw: &str) -> Option<&'static str> {
    const COMMON: &[&str] = &[
        "password", "passwort", "qwerty", "azerty", "letmein", "welcome", "iloveyou", "admin",
        "monkey", "dragon", "sunshine", "princess", "football", "baseball", "master", "secret",
        "abc", "abcdef", "qwertz", "hello", "login", "backup", "arca",
    ];
    let lower = pw.to_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || "!?.".contains(c));
    if COMMON.contains(&stem) {
        return Some("it is one of the most common passwords");
    }
    if pw.chars().count() < 10 {
        return Some("it is shorter than 10 characters");
    }
    let distinct: std::collections::BTreeSet<char> = lower.chars().collect();
    if distinct.len() <= 3 {
        return Some("it repeats the same few characters");
    }
    None
}

fn warn_if_weak(pw: &str) {
    if let Some(why) = weakness(pw) {
        eprintln!(
            "warning: this password is weak ({why}): anyone who gets the sign-in token has \
             10 guesses; a longer password (a few unrelated words) is safer"
        );
    }
}

/// Asks a yes/no question on the terminal; `false` unless the answer is yes.
pub fn confirm(question: &str) -> Result<bool, String> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_need_six_characters_and_a_letter() {
        assert!(check("abc12").is_err());
        assert!(check("123456789").is_err());
        assert!(check("abc123").is_ok());
        assert!(check("Ünïcödé").is_ok());
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(weakness("password1").is_some());
        assert!(weakness("Qwerty!").is_some());
        assert!(weakness("abc123").is_some());
        assert!(weakness("aaaaaaaaaaaa").is_some());
        assert_eq!(weakness("purple tiger stapler"), None);
    }
}
