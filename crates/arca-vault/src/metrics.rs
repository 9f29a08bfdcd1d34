//! Prometheus metrics in the text exposition format: requests and latency
//! by route, guesses counted, lockouts, store errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Route {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<&'static str, Route>>,
    guesses: AtomicU64,
    lockouts: AtomicU64,
    store_errors: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let r = routes.entry(route).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum += seconds;
    }

    pub fn guess_counted(&self) {
        self.guesses.fetch_add(1, Ordering::Relaxed);
    }
    pub fn lockout(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP arca_vault_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE arca_vault_requests_total counter\n");
        for (name, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "arca_vault_requests_total{{route=\"{name}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP arca_vault_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE arca_vault_request_duration_seconds histogram\n");
        for (name, r) in routes.iter() {
            for (b, n) in BUCKETS.iter().zip(r.buckets) {
                let _ = writeln!(
                    out,
                    "arca_vault_request_duration_seconds_bucket{{route=\"{name}\",le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "arca_vault_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "arca_vault_request_duration_seconds_sum{{route=\"{name}\"}} {}",
                r.sum
            );
            let _ = writeln!(
                out,
                "arca_vault_request_duration_seconds_count{{route=\"{name}\"}} {}",
                r.count
            );
        }
        for (name, help, v) in [
            (
                "arca_vault_guesses_counted_total",
                "Password guesses counted (recover-start).",
                &self.guesses,
            ),
            (
                "arca_vault_lockouts_total",
                "Escrowed secrets destroyed after too many guesses.",
                &self.lockouts,
            ),
            (
                "arca_vault_store_errors_total",
                "Record store failures.",
                &self.store_errors,
            ),
        ] {
            counter(&mut out, name, help, v.load(Ordering::Relaxed));
        }
        out
    }
}

/// Appends one Prometheus counter with its help and type lines.
pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}
