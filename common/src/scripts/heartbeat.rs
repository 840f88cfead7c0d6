//! `heartbeat.lua`: extends the lease of one worker, which covers every job it holds, and
//! reports on those jobs. Jobs Redis says it holds but it does not list, claimed before
//! `known_until`, are jobs whose claim reply never reached it (a connection lost
//! mid-claim): they are handed back at once, or its lease would keep them forever. A
//! worker that holds nothing calls this too, with no jobs, for exactly that reason.
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: worker, lease_ms (at least 1), known_until_ms, keep_failed_ms, labels (its
//!   presence, `<labels>|<kinds>|<host>|<slots>`); then per job: id, token (every job
//!   the worker holds in the queue, in one call: a job left out would look like one whose
//!   claim reply was lost).
//! - Reply: per job, 1 held, 2 held and cancellation requested, 0 lost (taken over after
//!   the lease ran out, or gone): [`HeartbeatReply`].

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{ints, ms, parsing, Script, Scripts};
use crate::{Millis, QueueKeys, Result};

/// Arguments of [`Scripts::heartbeat`].
#[derive(Debug)]
pub struct HeartbeatArgs<'a> {
    /// The worker.
    pub worker: &'a str,
    /// Lease length.
    pub lease: Duration,
    /// Redis time up to which the worker has seen every claim reply: jobs Redis says it
    /// holds, claimed by then but not listed in `held`, are handed back (their claim reply
    /// never reached it).
    pub known_until: Millis,
    /// Retention for jobs that end FAILED on the way.
    pub keep_failed: Duration,
    /// The worker's presence as claims record it, `<labels>|<kinds>|<host>|<slots>`
    /// (labels and kinds sorted, comma-separated), for stats.
    pub labels: &'a str,
    /// The (id, token) pairs it holds.
    pub held: &'a [(String, u32)],
}

impl HeartbeatArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Heartbeat.fcall(keys);
        cmd.arg(self.worker)
            .arg(ms(self.lease).max(1))
            .arg(self.known_until)
            .arg(ms(self.keep_failed))
            .arg(self.labels);
        for (id, token) in self.held {
            cmd.arg(id.as_str()).arg(*token);
        }
        cmd
    }
}

/// Heartbeat verdict for one held job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Still held (the worker's lease was extended).
    Extended,
    /// Held, and cancellation was requested: stop the job.
    CancelRequested,
    /// The job is no longer ours (re-claimed after our lease ran out, or gone): abandon it.
    Lost,
}

/// The reply of `heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Per held job, in the call's order.
    pub statuses: Vec<LeaseStatus>,
}

impl HeartbeatReply {
    /// Parses the reply; anything but an array of integers is an [`crate::Error::Protocol`]
    /// (a code other than 1 and 2 is [`LeaseStatus::Lost`]).
    pub fn parse(v: Value) -> Result<Self> {
        Ok(HeartbeatReply {
            statuses: ints(v)?
                .into_iter()
                .map(|c| match c {
                    1 => LeaseStatus::Extended,
                    2 => LeaseStatus::CancelRequested,
                    _ => LeaseStatus::Lost,
                })
                .collect(),
        })
    }
}

impl FromRedisValue for HeartbeatReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Extends a worker's lease and checks the jobs it believes it holds.
    pub async fn heartbeat<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        args: &HeartbeatArgs<'_>,
    ) -> Result<Vec<LeaseStatus>> {
        Ok(HeartbeatReply::parse(self.call(con, &args.cmd(keys)).await?)?.statuses)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn heartbeat_cmd_sends_held_pairs() {
        let held = [("A".to_owned(), 1), ("B".to_owned(), 7)];
        let cmd = HeartbeatArgs {
            worker: "w1",
            lease: Duration::ZERO,
            known_until: 123,
            keep_failed: Duration::from_millis(5),
            labels: "gpu|email",
            held: &held,
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(
                Script::Heartbeat,
                &["w1", "1", "123", "5", "gpu|email", "A", "1", "B", "7"]
            )
        );
    }

    #[test]
    fn heartbeat_reply_parses() {
        let r = HeartbeatReply::parse(int_array(&[1, 2, 0, 9])).expect("valid reply");
        assert_eq!(
            r.statuses,
            [
                LeaseStatus::Extended,
                LeaseStatus::CancelRequested,
                LeaseStatus::Lost,
                LeaseStatus::Lost
            ]
        );
        assert_eq!(
            HeartbeatReply::from_redis_value(int_array(&[1])).expect("valid reply"),
            HeartbeatReply {
                statuses: vec![LeaseStatus::Extended]
            }
        );
    }

    #[test]
    fn heartbeat_reply_malformed_is_protocol() {
        for bad in [Value::Nil, Value::Okay, Value::Array(vec![Value::Nil])] {
            assert!(is_protocol(&HeartbeatReply::parse(bad.clone())), "{bad:?}");
            assert!(HeartbeatReply::from_redis_value(bad).is_err());
        }
    }
}
