//! Forget: remove snapshots, by id or by a retention policy. Only the
//! snapshot objects go; the data they alone used is freed by `prune`.
//!
//! The policy works like restic's `forget --keep-*`: snapshots are grouped by
//! host and backed-up path, and within a group, newest first, a snapshot is
//! kept if it is one of the `last` newest, or the newest of one of the
//! `hourly` / `daily` / `weekly` / `monthly` / `yearly` most recent hours,
//! days, ISO weeks (Monday first), months or years that have snapshots. Time
//! periods are in UTC.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectName;
use crate::lock::LockKind;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, snapshot_path};
use crate::time::civil;

/// Which snapshots to keep. A rule of 0 keeps nothing by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The rules as (count, period key of a unix time).
    fn rules(&self) -> [(u32, Period); 5] {
        [
            (self.hourly, |t| t.div_euclid(3600)),
            (self.daily, days),
            // 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Monday.
            (self.weekly, |t| (days(t) + 3).div_euclid(7)),
            (self.monthly, |t| {
                let (y, m, _) = civil(days(t));
                y * 12 + m as i64
            }),
            (self.yearly, |t| civil(days(t)).0),
        ]
    }

    /// The snapshots (oldest first, as listed) this policy keeps, by index.
    fn keep(&self, snapshots: &[(ObjectName, Snapshot)]) -> HashSet<usize> {
        let mut groups: BTreeMap<(&str, &[u8]), Vec<usize>> = BTreeMap::new();
        for (i, (_, s)) in snapshots.iter().enumerate() {
            groups
                .entry((s.hostname.as_str(), s.source.as_slice()))
                .or_default()
                .push(i);
        }
        let mut keep = HashSet::new();
        for members in groups.values() {
            let mut left = self.last;
            let mut rules: Vec<(u32, Period, Option<i64>)> =
                self.rules().iter().map(|&(n, f)| (n, f, None)).collect();
            // Newest first.
            for &i in members.iter().rev() {
                let time = snapshots[i].1.time;
                let mut kept = false;
                if left > 0 {
                    left -= 1;
                    kept = true;
                }
                for (n, period, last) in rules.iter_mut() {
                    let p = period(time);
                    if *n > 0 && *last != Some(p) {
                        *n -= 1;
                        *last = Some(p);
                        kept = true;
                    }
                }
                if kept {
                    keep.insert(i);
                }
            }
        }
        keep
    }
}

/// The period (hour, day, week...) a unix time falls in, as a number.
type Period = fn(i64) -> i64;

fn days(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// What `forget` removed (or, in a dry run, would remove) and kept.
#[derive(Debug, Default)]
pub struct ForgetSummary {
    pub removed: Vec<(ObjectName, Snapshot)>,
    /// Named snapshots that could not be read, removed all the same.
    pub removed_unreadable: Vec<ObjectName>,
    pub kept: Vec<(ObjectName, Snapshot)>,
}

impl Repository {
    /// Removes the snapshots named by `ids` (unique id prefixes), or, with
    /// no ids, those `policy` does not keep. With `dry_run` nothing is
    /// removed. Snapshots that cannot be read are never removed by a policy.
    pub fn forget(
        &self,
        ids: &[String],
        policy: &KeepPolicy,
        dry_run: bool,
    ) -> Result<ForgetSummary> {
        let remove: HashSet<ObjectName> = match (ids.is_empty(), policy.is_empty()) {
            (false, true) => self.resolve_ids(ids)?,
            (true, false) => {
                let all = self.snapshots()?;
                let keep = policy.keep(&all);
                all.iter()
                    .enumerate()
                    .filter(|(i, _)| !keep.contains(i))
                    .map(|(_, (name, _))| *name)
                    .collect()
            }
            (true, true) => {
                return Err(Error::Invalid(
                    "nothing to forget: name snapshots, or give a policy such as --keep-last 7 \
                     --keep-daily 30"
                        .into(),
                ));
            }
            (false, false) => {
                return Err(Error::Invalid(
                    "give snapshot ids or a --keep-* policy, not both".into(),
                ));
            }
        };
        // A shared lock: forgetting frees nothing by itself, but a prune
        // (exclusive) must not run on a snapshot list changing under it.
        let _lock = (!dry_run)
            .then(|| self.lock(LockKind::Shared))
            .transpose()?;
        let mut summary = ForgetSummary::default();
        let list = self.list_snapshots()?;
        for (name, snap) in list.readable {
            if remove.contains(&name) {
                if !dry_run {
                    self.delete_snapshot(&name)?;
                }
                summary.removed.push((name, snap));
            } else {
                summary.kept.push((name, snap));
            }
        }
        for (name, _) in list.unreadable {
            if remove.contains(&name) {
                if !dry_run {
                    self.delete_snapshot(&name)?;
                }
                summary.removed_unreadable.push(name);
            }
        }
        Ok(summary)
    }

    /// Deletes a snapshot object; one already gone (another forget got
    /// there first) counts as deleted.
    fn delete_snapshot(&self, name: &ObjectName) -> Result<()> {
        match self.storage().delete(&snapshot_path(name)) {
            Err(Error::Storage {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Snapshot names for id prefixes; unreadable snapshots can be named
    /// too (forgetting is how a damaged one is let go).
    fn resolve_ids(&self, ids: &[String]) -> Result<HashSet<ObjectName>> {
        let list = self.list_snapshots()?;
        let names: Vec<ObjectName> = list
            .readable
            .iter()
            .map(|(n, _)| *n)
            .chain(list.unreadable.iter().map(|(n, _)| *n))
            .collect();
        ids.iter()
            .map(|q| {
                let p = q.to_ascii_lowercase();
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::Invalid(format!(
                        "{q:?} is not a snapshot id: forget takes ids (or unique prefixes) from \
                         `arca snapshots`"
                    )));
                }
                let mut found = names.iter().filter(|n| n.to_hex().starts_with(&p));
                match (found.next(), found.next()) {
                    (Some(n), None) => Ok(*n),
                    (None, _) => Err(Error::SnapshotNotFound { query: q.clone() }),
                    (Some(_), Some(_)) => Err(Error::AmbiguousSnapshot { query: q.clone() }),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobId;

    fn snap(time: i64, host: &str) -> (ObjectName, Snapshot) {
        let mut name = [0u8; 32];
        name[..8].copy_from_slice(&time.to_be_bytes());
        name[8] = host.len() as u8;
        (
            ObjectName(name),
            Snapshot {
                time,
                time_nsec: 0,
                hostname: host.into(),
                username: "u".into(),
                source: b"/data".to_vec(),
                tree: BlobId([0; 32]),
                parent: None,
                program_version: "t".into(),
                files: 0,
                dirs: 0,
                bytes: 0,
            },
        )
    }

    fn kept(policy: KeepPolicy, snaps: &[(ObjectName, Snapshot)]) -> Vec<i64> {
        let keep = policy.keep(snaps);
        let mut times: Vec<i64> = keep.iter().map(|&i| snaps[i].1.time).collect();
        times.sort();
        times
    }

    const DAY: i64 = 86_400;

    #[test]
    fn policies_keep_the_newest_of_each_period() {
        // Two snapshots a day (03:00 and 15:00) for 40 days from 2026-01-01.
        let start = 1_767_225_600; // 2026-01-01 00:00 UTC, a Thursday
        let snaps: Vec<_> = (0..80)
            .map(|i| {
                snap(
                    start + (i / 2) * DAY + 3 * 3600 + (i % 2) * 12 * 3600,
                    "phone",
                )
            })
            .collect();
        let newest = snaps[79].1.time;
        assert_eq!(
            kept(
                KeepPolicy {
                    last: 3,
                    ..Default::default()
                },
                &snaps
            ),
            vec![snaps[77].1.time, snaps[78].1.time, newest]
        );
        // 3 days: the 15:00 snapshot of each of the last three days.
        let daily = kept(
            KeepPolicy {
                daily: 3,
                ..Default::default()
            },
            &snaps,
        );
        assert_eq!(daily, vec![newest - 2 * DAY, newest - DAY, newest]);
        // Weeks start on Monday: 2026-01-05 is the first Monday. Day 39 is
        // Monday 2026-02-09; the weeks before end on Sundays 02-08 and 02-01.
        let weekly = kept(
            KeepPolicy {
                weekly: 3,
                ..Default::default()
            },
            &snaps,
        );
        let sunday = |d: i64| start + d * DAY + 15 * 3600;
        assert_eq!(weekly, vec![sunday(31), sunday(38), newest]);
        // Months: the newest of January and of February.
        let monthly = kept(
            KeepPolicy {
                monthly: 5,
                ..Default::default()
            },
            &snaps,
        );
        assert_eq!(monthly, vec![sunday(30), newest]);
        // Rules add up; a snapshot kept by two rules counts once.
        let both = kept(
            KeepPolicy {
                last: 1,
                daily: 2,
                yearly: 1,
                ..Default::default()
            },
            &snaps,
        );
        assert_eq!(both, vec![newest - DAY, newest]);
    }

    #[test]
    fn each_host_and_path_is_its_own_group() {
        let snaps = vec![
            snap(1000, "phone"),
            snap(2000, "tablet"),
            snap(3000, "phone"),
            snap(4000, "phone"),
        ];
        let keep = kept(
            KeepPolicy {
                last: 1,
                ..Default::default()
            },
            &snaps,
        );
        assert_eq!(keep, vec![2000, 4000]);
    }
}
