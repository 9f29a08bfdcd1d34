//! Human output: sizes, times and progress bars (on a terminal only).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arca_repo::{BackupProgress, RestoreProgress};
use indicatif::{ProgressBar, ProgressStyle};

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn format_time(secs: i64) -> String {
    arca_repo::format_utc(secs)
}

/// A progress display that updates itself until dropped.
pub struct Progress {
    bar: ProgressBar,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn backup(p: Arc<BackupProgress>) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self::start(bar, move |bar| {
            bar.set_message(format!(
                "{} files, {} read, {} added",
                p.files.load(Ordering::Relaxed),
                human_bytes(p.bytes_read.load(Ordering::Relaxed)),
                human_bytes(p.bytes_added.load(Ordering::Relaxed)),
            ));
        })
    }

    pub fn restore(p: Arc<RestoreProgress>) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self::start(bar, move |bar| {
            bar.set_length(p.bytes_total.load(Ordering::Relaxed));
            bar.set_position(p.bytes_done.load(Ordering::Relaxed));
            bar.set_message(format!("{} files", p.files_done.load(Ordering::Relaxed)));
        })
    }

    fn start(bar: ProgressBar, update: impl Fn(&ProgressBar) + Send + 'static) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, s) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                update(&b);
                b.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            bar,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times_and_sizes() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_795_791_380), "2026-11-27 14:56:20");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
