//! `enqueue.lua`: stores a batch of independent jobs that wait in one lane, and wakes idle
//! workers. Idempotent by id: an id that exists is left alone and reported. All or
//! nothing: every argument of the call is checked (`validate.lua`) before the first write,
//! and one bad job refuses the whole call with an error naming it
//! (`ERR workq: refused: ...`, [`crate::Error::InvalidRequest`] here). Chains and unique
//! work go through [`enqueue_graph`](super::enqueue_graph).
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV[1]`: the number of jobs n (0 to [`MAX_BATCH`](crate::limits::MAX_BATCH));
//!   `ARGV[2]`: the lane all of them wait in (`''` plain, `x`, `@labels`, `x@labels`; it
//!   must match each record's `l` and `X`); then per job: id, due, record. Optionally
//!   after them, (job index from 1, tag) pairs, each naming a tag the job's record
//!   carries: a former way of naming tags, still accepted; the tag sets are filled from
//!   the records' `ext.t`, and this crate sends no pairs.
//! - due: see [`NewJob::due`] (> 0 an absolute time in ms, <= 0 that many ms, negated,
//!   after Redis' now).
//! - record: from [`crate::record::encode_new`]; its `enqueued_ms` is a uint64
//!   placeholder at bytes 5..13, which the script stamps with Redis time.
//! - Reply: `[now_ms, r1, ..., rn]`, `ri` 1 stored, 0 an id that existed (nothing
//!   changed): [`EnqueueReply`].
//!
//! docs/wire-format.md ("Enqueueing from another language") states the same contract for
//! producers in other languages.

use crate::EnqueueStatus;
use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{ints, parsing, refused, Script, Scripts};
use crate::{Error, Millis, QueueKeys, Result};

/// One job for [`Scripts::enqueue`].
#[derive(Debug)]
pub struct NewJob<'a> {
    /// Its id.
    pub id: &'a str,
    /// Due this long after Redis' now (ignored when `at_ms` is set).
    pub delay_ms: Millis,
    /// Due at this absolute time; 0 to use the delay.
    pub at_ms: Millis,
    /// The record from [`crate::record::encode_new`] (its tags, in the record, are what
    /// the script indexes).
    pub record: &'a [u8],
}

impl NewJob<'_> {
    /// Due time as the scripts take it: one number for both forms, positive for an
    /// absolute time, zero or negative for a delay (absolute times are at least 1 ms after
    /// the epoch).
    pub fn due(&self) -> i64 {
        if self.at_ms > 0 {
            i64::try_from(self.at_ms).unwrap_or(i64::MAX)
        } else {
            -i64::try_from(self.delay_ms).unwrap_or(i64::MAX)
        }
    }
}

/// The arguments of one `enqueue` call.
#[derive(Debug)]
pub struct EnqueueArgs<'a> {
    /// The lane every job waits in.
    pub lane: &'a str,
    /// The jobs.
    pub jobs: &'a [NewJob<'a>],
}

impl EnqueueArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Enqueue.fcall(keys);
        cmd.arg(self.jobs.len()).arg(self.lane);
        for j in self.jobs {
            cmd.arg(j.id).arg(j.due()).arg(j.record);
        }
        cmd
    }
}

/// The reply of `enqueue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueReply {
    /// Redis' clock when the script ran.
    pub now_ms: Millis,
    /// Per job, in the call's order.
    pub statuses: Vec<EnqueueStatus>,
}

impl EnqueueReply {
    /// Parses the reply; anything but `[now_ms, 0|1, ...]` is an [`Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        let reply = ints(v)?;
        let (now, rest) = reply
            .split_first()
            .ok_or_else(|| Error::protocol("empty enqueue reply"))?;
        let statuses = rest
            .iter()
            .map(|code| match code {
                1 => Ok(EnqueueStatus::Enqueued),
                0 => Ok(EnqueueStatus::Existed),
                other => Err(Error::protocol(format!("enqueue status {other}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EnqueueReply {
            now_ms: u64::try_from(*now).unwrap_or(0),
            statuses,
        })
    }
}

impl FromRedisValue for EnqueueReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Stores new independent jobs that wait in `lane` (idempotent by id) and wakes idle
    /// workers.
    pub async fn enqueue<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        lane: &str,
        jobs: &[NewJob<'_>],
    ) -> Result<(Millis, Vec<EnqueueStatus>)> {
        let cmd = EnqueueArgs { lane, jobs }.cmd(keys);
        let reply = EnqueueReply::parse(self.call(con, &cmd).await.map_err(refused)?)?;
        if reply.statuses.len() != jobs.len() {
            return Err(Error::protocol(format!(
                "enqueue answered for {} jobs of {}",
                reply.statuses.len(),
                jobs.len()
            )));
        }
        Ok((reply.now_ms, reply.statuses))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn enqueue_cmd_sends_n_lane_then_id_due_record() {
        let jobs = [
            NewJob {
                id: "01J0000000000000000000000A",
                delay_ms: 0,
                at_ms: 0,
                record: b"r1",
            },
            NewJob {
                id: "01J0000000000000000000000B",
                delay_ms: 1500,
                at_ms: 0,
                record: b"r2",
            },
            NewJob {
                id: "01J0000000000000000000000C",
                delay_ms: 1500,
                at_ms: 1_700_000_000_000,
                record: b"r3",
            },
        ];
        let cmd = EnqueueArgs {
            lane: "x@gpu",
            jobs: &jobs,
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(
                Script::Enqueue,
                &[
                    "3",
                    "x@gpu",
                    "01J0000000000000000000000A",
                    "0",
                    "r1",
                    "01J0000000000000000000000B",
                    "-1500",
                    "r2",
                    "01J0000000000000000000000C",
                    "1700000000000",
                    "r3",
                ]
            )
        );
    }

    #[test]
    fn enqueue_cmd_with_no_jobs() {
        let cmd = EnqueueArgs {
            lane: "",
            jobs: &[],
        }
        .cmd(&keys());
        assert_eq!(args(&cmd), expected(Script::Enqueue, &["0", ""]));
    }

    #[test]
    fn due_saturates() {
        let job = NewJob {
            id: "a",
            delay_ms: u64::MAX,
            at_ms: 0,
            record: b"",
        };
        assert_eq!(job.due(), -i64::MAX);
        let job = NewJob {
            at_ms: u64::MAX,
            ..job
        };
        assert_eq!(job.due(), i64::MAX);
    }

    #[test]
    fn enqueue_reply_parses() {
        let r = EnqueueReply::parse(int_array(&[1_700_000_000_000, 1, 0])).expect("valid reply");
        assert_eq!(r.now_ms, 1_700_000_000_000);
        assert_eq!(
            r.statuses,
            [EnqueueStatus::Enqueued, EnqueueStatus::Existed]
        );
        let r = EnqueueReply::from_redis_value(int_array(&[5])).expect("valid reply");
        assert_eq!((r.now_ms, r.statuses.len()), (5, 0));
    }

    #[test]
    fn enqueue_reply_malformed_is_protocol() {
        for bad in [
            int_array(&[]),
            int_array(&[1, 2]),
            Value::Int(1),
            Value::Nil,
            Value::Array(vec![Value::Int(1), bulk("1")]),
        ] {
            assert!(is_protocol(&EnqueueReply::parse(bad.clone())), "{bad:?}");
            assert!(EnqueueReply::from_redis_value(bad).is_err());
        }
    }
}
