//! `admin.lua`: an operator's actions on one queue, each bounded by its ids (or, for a
//! purge, by the entries it looks at):
//!
//! - `retry`: a FAILED or CANCELLED job back to ENQUEUED and due now (BLOCKED while a
//!   parent in its chain has not succeeded); its attempts count from zero again for
//!   `max_attempts` and backoff, while the attempt number (the fencing token) keeps
//!   growing; its descendants that ended because of it ("parent <id> failed" / "was
//!   cancelled") come back BLOCKED. Counted `operator_retried`.
//! - `run_now`: an ENQUEUED job due later (delayed, backing off, periodic work's next run)
//!   due now.
//! - `delete`: a job and its index entries, gone; a RUNNING one only when forced (its
//!   worker's heartbeat then finds the lease lost, and its ack is refused); the
//!   descendants of a job that had not finished end CANCELLED. Counted `deleted`.
//! - `purge`: finished jobs of one state (or all three) from `done`, looking at `count`
//!   entries from rank `start`. Counted `purged`.
//! - `pause` / `resume`: the queue's pause marker ([`crate::keys::PAUSE_MARKER`] in
//!   `lanes`): a claim takes nothing from a paused queue (its maintenance goes on);
//!   resuming wakes the workers.
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: op, keep_failed_ms (for descendants cancelled by a delete); then for retry
//!   and run_now the ids; for delete `1` (force) or `0`, then the ids; for purge the
//!   state code (-1 for every finished state), start, count.
//! - Reply: pause/resume `[1]` when it changed, `[0]` when it already was; retry, run_now
//!   and delete one code per id ([`AdminStatus`]); purge `[deleted, next start, more]`.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Cmd;

use super::{ints, ms, Script, Scripts};
use crate::{Error, QueueKeys, Result, WorkState};

/// One call of `admin`.
#[derive(Debug)]
pub enum AdminOp<'a> {
    /// Pause the queue.
    Pause,
    /// Resume the queue.
    Resume,
    /// Retry these FAILED or CANCELLED jobs.
    Retry(&'a [String]),
    /// Make these ENQUEUED jobs due now.
    RunNow(&'a [String]),
    /// Delete these jobs (RUNNING ones too when `force`).
    Delete {
        /// Delete RUNNING jobs too.
        force: bool,
        /// The jobs.
        ids: &'a [String],
    },
    /// Delete finished jobs in `state` (None: any finished state), looking at `count`
    /// entries of `done` from rank `start`.
    Purge {
        /// SUCCEEDED, FAILED or CANCELLED; None for all three.
        state: Option<WorkState>,
        /// The rank in `done` to start at (0, then the reply's `next`).
        start: u64,
        /// How many entries to look at.
        count: u64,
    },
}

impl AdminOp<'_> {
    /// The `FCALL` command (no I/O); `keep_failed` is the retention of descendants a
    /// delete cancels.
    pub fn cmd(&self, keys: &QueueKeys, keep_failed: Duration) -> Cmd {
        let mut cmd = Script::Admin.fcall(keys);
        let name = match self {
            AdminOp::Pause => "pause",
            AdminOp::Resume => "resume",
            AdminOp::Retry(_) => "retry",
            AdminOp::RunNow(_) => "run_now",
            AdminOp::Delete { .. } => "delete",
            AdminOp::Purge { .. } => "purge",
        };
        cmd.arg(name).arg(ms(keep_failed));
        match self {
            AdminOp::Pause | AdminOp::Resume => {}
            AdminOp::Retry(ids) | AdminOp::RunNow(ids) => {
                cmd.arg(*ids);
            }
            AdminOp::Delete { force, ids } => {
                cmd.arg(if *force { "1" } else { "0" }).arg(*ids);
            }
            AdminOp::Purge {
                state,
                start,
                count,
            } => {
                let code = state.map_or(-1, |s| i64::from(s.code()));
                cmd.arg(code).arg(*start).arg(*count);
            }
        }
        cmd
    }
}

/// What a retry, run-now or delete did to one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdminStatus {
    /// No job with this id in the queue.
    NotFound,
    /// Done: retried, due now, or deleted.
    Done,
    /// Not in a state the operation applies to: a retry of a job that is not FAILED or
    /// CANCELLED, a run-now of one not waiting on its timeline, a delete of a RUNNING job
    /// without force.
    WrongState,
    /// Run now: it was due already.
    AlreadyDue,
}

/// One purge call's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeStep {
    /// Jobs deleted.
    pub deleted: u64,
    /// The rank to start the next call at.
    pub next: u64,
    /// Whether `done` has entries past those looked at.
    pub more: bool,
}

fn statuses(codes: Vec<i64>) -> Vec<AdminStatus> {
    codes
        .into_iter()
        .map(|c| match c {
            1 => AdminStatus::Done,
            2 => AdminStatus::WrongState,
            3 => AdminStatus::AlreadyDue,
            _ => AdminStatus::NotFound,
        })
        .collect()
}

impl Scripts {
    /// Runs one admin operation; the per-id statuses (empty for pause, resume and purge:
    /// see [`Scripts::admin_flag`] and [`Scripts::purge_step`]).
    pub async fn admin<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        keep_failed: Duration,
        op: &AdminOp<'_>,
    ) -> Result<Vec<AdminStatus>> {
        let codes = ints(self.call(con, &op.cmd(keys, keep_failed)).await?)?;
        Ok(statuses(codes))
    }

    /// Pause or resume: whether it changed anything.
    pub async fn admin_flag<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        op: &AdminOp<'_>,
    ) -> Result<bool> {
        let codes = ints(self.call(con, &op.cmd(keys, Duration::ZERO)).await?)?;
        Ok(codes.first() == Some(&1))
    }

    /// One purge call.
    pub async fn purge_step<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        op: &AdminOp<'_>,
    ) -> Result<PurgeStep> {
        let codes = ints(self.call(con, &op.cmd(keys, Duration::ZERO)).await?)?;
        match codes[..] {
            [deleted, next, more] => Ok(PurgeStep {
                deleted: u64::try_from(deleted).unwrap_or(0),
                next: u64::try_from(next).unwrap_or(0),
                more: more == 1,
            }),
            _ => Err(Error::Protocol(format!("purge reply {codes:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn admin_cmds_send_the_op_then_its_arguments() {
        let ids = ["A".to_owned(), "B".to_owned()];
        let ms1 = Duration::from_millis(1);
        let cases: [(AdminOp<'_>, &[&str]); 6] = [
            (AdminOp::Pause, &["pause", "1"]),
            (AdminOp::Resume, &["resume", "1"]),
            (AdminOp::Retry(&ids), &["retry", "1", "A", "B"]),
            (AdminOp::RunNow(&ids), &["run_now", "1", "A", "B"]),
            (
                AdminOp::Delete {
                    force: true,
                    ids: &ids,
                },
                &["delete", "1", "1", "A", "B"],
            ),
            (
                AdminOp::Purge {
                    state: Some(WorkState::Failed),
                    start: 5,
                    count: 100,
                },
                &["purge", "1", "3", "5", "100"],
            ),
        ];
        for (op, want) in cases {
            assert_eq!(args(&op.cmd(&keys(), ms1)), expected(Script::Admin, want));
        }
        let all = AdminOp::Purge {
            state: None,
            start: 0,
            count: 1,
        };
        assert_eq!(
            args(&all.cmd(&keys(), ms1)),
            expected(Script::Admin, &["purge", "1", "-1", "0", "1"])
        );
    }

    #[test]
    fn statuses_map_their_codes() {
        assert_eq!(
            statuses(vec![0, 1, 2, 3, 9]),
            [
                AdminStatus::NotFound,
                AdminStatus::Done,
                AdminStatus::WrongState,
                AdminStatus::AlreadyDue,
                AdminStatus::NotFound
            ]
        );
    }
}
