//! Record stores: a compare-and-swap map from account to sealed record.
//!
//! The trait is what a replicated backend (etcd: a transaction comparing
//! `mod_revision`/a version key) implements too. `SqliteStore` is the
//! embedded one: WAL mode, `synchronous=FULL`, and a single writer thread
//! that commits concurrent writes in one transaction (group commit), so a
//! counted guess is on disk before its caller sees `Ok(true)` while many
//! guesses share one fsync.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::record::Row;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record store: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A durable map `account -> (version, sealed record)` with compare-and-swap.
pub trait Store: Send + Sync + 'static {
    fn get(&self, account: &[u8]) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send;

    /// Replaces the row if its current version is `expected` (`None`: no row)
    /// with `new` (`None`: delete). `Ok(false)` if another writer got there
    /// first. `Ok(true)` means the change is committed, and with `durable`
    /// also on stable storage (it survives an OS crash or power loss).
    fn compare_and_swap(
        &self,
        account: &[u8],
        expected: Option<u64>,
        new: Option<Row>,
        durable: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Appends the backend's own Prometheus metrics to `out`.
    fn render_metrics(&self, _out: &mut String) {}
}

/// Group-commit counters of the SQLite writer.
#[derive(Default)]
struct Commits {
    writes: AtomicU64,
    commits: AtomicU64,
    synced: AtomicU64,
}

struct WriteOp {
    durable: bool,
    account: Vec<u8>,
    expected: Option<u64>,
    new: Option<Row>,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    writes: std::sync::mpsc::Sender<Vec<WriteOp>>,
    /// Writes gathered on the async side until the runtime has run every
    /// other ready task (see [`SqliteStore::compare_and_swap`]).
    pending: Arc<Mutex<Vec<WriteOp>>>,
    reader: Arc<Mutex<Connection>>,
    commits: Arc<Commits>,
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = open_conn(path)?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                 account BLOB PRIMARY KEY,
                 version INTEGER NOT NULL,
                 sealed  BLOB NOT NULL
             ) WITHOUT ROWID;",
        )?;
        let reader = open_conn(path)?;
        let (tx, rx) = std::sync::mpsc::channel::<Vec<WriteOp>>();
        let commits = Arc::new(Commits::default());
        let counters = commits.clone();
        std::thread::Builder::new()
            .name("arca-vault-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, &counters))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            writes: tx,
            pending: Arc::new(Mutex::new(Vec::new())),
            reader: Arc::new(Mutex::new(reader)),
            commits,
        })
    }
}

/// Hands the pending group to the writer thread, at the latest when
/// dropped.
struct Flush {
    pending: Arc<Mutex<Vec<WriteOp>>>,
    writes: std::sync::mpsc::Sender<Vec<WriteOp>>,
}

impl Flush {
    fn send(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.is_empty() {
            // A send error drops the batch: its callers see "stopped".
            let _ = self.writes.send(batch);
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.send();
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &WriteOp) -> Result<bool, rusqlite::Error> {
    let changed = match (op.expected, &op.new) {
        (None, Some(row)) => tx
            .prepare_cached(
                "INSERT INTO records (account, version, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO NOTHING",
            )?
            .execute(params![op.account, row.version as i64, row.sealed])?,
        (Some(v), Some(row)) => tx
            .prepare_cached(
                "UPDATE records SET version = ?1, sealed = ?2 WHERE account = ?3 AND version = ?4",
            )?
            .execute(params![
                row.version as i64,
                row.sealed,
                op.account,
                v as i64
            ])?,
        (Some(v), None) => tx
            .prepare_cached("DELETE FROM records WHERE account = ?1 AND version = ?2")?
            .execute(params![op.account, v as i64])?,
        (None, None) => 0,
    };
    Ok(changed == 1)
}

fn writer_loop(
    mut conn: Connection,
    rx: std::sync::mpsc::Receiver<Vec<WriteOp>>,
    counters: &Commits,
) {
    let mut synchronous_full = true;
    while let Ok(mut batch) = rx.recv() {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|op| op.durable);
        let result = (|| -> Result<Vec<bool>, rusqlite::Error> {
            if durable != synchronous_full {
                conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
                synchronous_full = durable;
            }
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(batch.len());
            for op in &batch {
                out.push(apply(&tx, op)?);
            }
            tx.commit()?;
            Ok(out)
        })();
        match result {
            Ok(outcomes) => {
                counters
                    .writes
                    .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
                if durable {
                    counters.synced.fetch_add(1, Ordering::Relaxed);
                }
                for (op, ok) in batch.into_iter().zip(outcomes) {
                    let _ = op.reply.send(Ok(ok));
                }
            }
            Err(e) => {
                for op in batch {
                    let _ = op.reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}

impl Store for SqliteStore {
    async fn get(&self, account: &[u8]) -> Result<Option<Row>, StoreError> {
        // A primary-key lookup in a WAL database takes microseconds and never
        // waits for the writer: done in place, it is cheaper than a hand-off
        // to a blocking thread.
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        conn.prepare_cached("SELECT version, sealed FROM records WHERE account = ?1")?
            .query_row(params![account], |r| {
                Ok(Row {
                    version: r.get::<_, i64>(0)? as u64,
                    sealed: r.get(1)?,
                })
            })
            .optional()
            .map_err(StoreError::from)
    }

    async fn compare_and_swap(
        &self,
        account: &[u8],
        expected: Option<u64>,
        new: Option<Row>,
        durable: bool,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let op = WriteOp {
            durable,
            account: account.to_vec(),
            expected,
            new,
            reply,
        };
        // Group commit: the first write of a group spawns a task that
        // yields once. tokio defers a yielded task until its worker has no
        // other ready task and parks (polling I/O), or at the latest until
        // its periodic maintenance tick (every 61 task polls on the
        // multi-thread runtime), so every write the requests in between make
        // joins the same transaction and fsync, and the writer thread is
        // woken once per group instead of once per write (on a busy core
        // each wake-up is a context switch and every fsync a device round
        // trip). A full group goes at once. Outside a runtime the write goes
        // alone.
        let stopped = || StoreError::Backend("the writer thread stopped".into());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let (first, full) = {
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    pending.push(op);
                    (pending.len() == 1, pending.len() >= MAX_BATCH)
                };
                let flush = || Flush {
                    pending: self.pending.clone(),
                    writes: self.writes.clone(),
                };
                if full {
                    drop(flush());
                } else if first {
                    let flush = flush();
                    rt.spawn(async move {
                        tokio::task::yield_now().await;
                        // Sends when dropped: here, or if the runtime drops
                        // this task before it runs (shutting down), so a
                        // group is never stranded.
                        drop(flush);
                    });
                }
            }
            Err(_) => self.writes.send(vec![op]).map_err(|_| stopped())?,
        }
        answer.await.map_err(|_| stopped())?
    }

    fn render_metrics(&self, out: &mut String) {
        for (name, help, v) in [
            (
                "arca_vault_store_writes_total",
                "Record writes committed by the SQLite store.",
                &self.commits.writes,
            ),
            (
                "arca_vault_store_commits_total",
                "SQLite transactions committed (each holds a group of writes).",
                &self.commits.commits,
            ),
            (
                "arca_vault_store_synced_commits_total",
                "SQLite commits flushed to stable storage (fsync).",
                &self.commits.synced,
            ),
        ] {
            crate::metrics::counter(out, name, help, v.load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compare_and_swap_lets_exactly_one_writer_win() {
        exactly_one_writer_wins().await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn compare_and_swap_lets_exactly_one_writer_win_on_one_thread() {
        exactly_one_writer_wins().await;
    }

    fn row(v: u64) -> Row {
        Row {
            version: v,
            sealed: vec![v as u8; 10],
        }
    }

    fn counters(store: &SqliteStore) -> (u64, u64, u64) {
        let c = &store.commits;
        (
            c.writes.load(Ordering::Relaxed),
            c.commits.load(Ordering::Relaxed),
            c.synced.load(Ordering::Relaxed),
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_tick_of_writes_is_one_commit_synced_if_any_write_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("v.db")).unwrap();
        let group = |durable_one: bool| {
            let tasks: Vec<_> = (0..20u8)
                .map(|i| {
                    let s = store.clone();
                    let durable = durable_one && i == 7;
                    tokio::spawn(async move {
                        let account = [durable_one as u8, i];
                        s.compare_and_swap(&account, None, Some(row(1)), durable)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            async move {
                for t in tasks {
                    assert!(t.await.unwrap());
                }
            }
        };
        group(true).await;
        assert_eq!(counters(&store), (20, 1, 1));
        group(false).await;
        assert_eq!(
            counters(&store),
            (40, 2, 1),
            "a lazy-only group skips the fsync"
        );
        assert_eq!(store.get(&[1, 7]).await.unwrap(), Some(row(1)));
    }

    #[test]
    fn a_group_whose_runtime_is_dropped_is_still_committed_and_later_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("v.db")).unwrap();
        let first = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        first.block_on(async {
            // Poll the write once (it joins a group and schedules the
            // flush), then give up on it before the flush task runs.
            let mut write = std::pin::pin!(store.compare_and_swap(b"a", None, Some(row(1)), true));
            let polled = std::future::poll_fn(|cx| {
                let _ = write.as_mut().poll(cx);
                std::task::Poll::Ready(())
            });
            polled.await;
        });
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        second.block_on(async {
            let later = store.compare_and_swap(b"b", None, Some(row(1)), true);
            let done = tokio::time::timeout(std::time::Duration::from_secs(10), later)
                .await
                .expect("a later write must not wait for a stranded group");
            assert!(done.unwrap());
            assert_eq!(store.get(b"a").await.unwrap(), Some(row(1)));
        });
    }

    async fn exactly_one_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("v.db")).unwrap();
        assert!(
            store
                .compare_and_swap(b"a", None, Some(row(1)), true)
                .await
                .unwrap()
        );
        assert!(
            !store
                .compare_and_swap(b"a", None, Some(row(1)), true)
                .await
                .unwrap()
        );
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.compare_and_swap(b"a", Some(1), Some(row(2)), true)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += t.await.unwrap() as u32;
        }
        assert_eq!(wins, 1);
        assert_eq!(store.get(b"a").await.unwrap(), Some(row(2)));
        assert!(
            store
                .compare_and_swap(b"a", Some(2), None, true)
                .await
                .unwrap()
        );
        assert_eq!(store.get(b"a").await.unwrap(), None);
    }
}
