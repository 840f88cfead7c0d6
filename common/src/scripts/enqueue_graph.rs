//! `enqueue_graph.lua`: stores a graph of jobs (a chain: its roots ENQUEUED, the others
//! BLOCKED on their parents), optionally as unique work under a name and a
//! [`UniquePolicy`]. All or nothing: every job is checked (`validate.lua`, and the graph's
//! edges) before the first write; a refusal is `ERR workq: refused: ...`
//! ([`crate::Error::InvalidRequest`] here).
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: name (`''` for none, at most [`MAX_TAG_BYTES`](crate::limits::MAX_TAG_BYTES)),
//!   policy (with a name: [`UniquePolicy::as_str`]; ignored without one, and this crate
//!   sends `''`), keep_failed_ms, n (0 to [`MAX_BATCH`](crate::limits::MAX_BATCH)); then
//!   per job: id, due (as [`NewJob::due`]), record, lane, ntags, then ntags tags (each
//!   among the record's `ext.t`: the tag sets are filled from the records, and this crate
//!   sends ntags 0).
//! - Records carry their in-graph edges in ext: `P` (parent ids), `p` (how many), `k`
//!   (child ids). A root is ENQUEUED, any other job BLOCKED; a leaf has no children.
//!   `UPDATE` and `CANCEL_AND_REENQUEUE` take a single (periodic) job.
//! - Reply: `[now_ms, status, ids...]`: status 1 enqueued (the graph's ids), 0 kept the
//!   existing unfinished work (its ids), 2 this graph was enqueued before (a retry), 3
//!   updated the existing periodic work (its id): [`GraphReply`].

use crate::GraphStatus;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{array, bytes, int, ms, opt_ms, parsing, refused, NewJob, Script, Scripts};
use crate::{Error, Millis, QueueKeys, Result};

/// One job of a graph for [`Scripts::enqueue_graph`].
#[derive(Debug)]
pub struct GraphJob<'a> {
    /// The job (its record carries its edges in the graph).
    pub job: NewJob<'a>,
    /// The lane it waits in.
    pub lane: &'a str,
}

/// What to do when unique work of the same name is unfinished (the producer's
/// `ExistingWorkPolicy` and `ExistingPeriodicWorkPolicy`, as the script names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniquePolicy {
    /// Keep the existing work; the new graph is dropped.
    Keep,
    /// Cancel the existing work and store the new graph.
    Replace,
    /// Make the new graph's roots children of the existing work's leaves.
    Append,
    /// `Append`, or `Replace` when the existing work failed or was cancelled.
    AppendOrReplace,
    /// Unique periodic work: update the existing job in place.
    Update,
    /// Unique periodic work: cancel the existing job and store the new one.
    CancelAndReenqueue,
}

impl UniquePolicy {
    /// The policy as the script reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            UniquePolicy::Keep => "KEEP",
            UniquePolicy::Replace => "REPLACE",
            UniquePolicy::Append => "APPEND",
            UniquePolicy::AppendOrReplace => "APPEND_OR_REPLACE",
            UniquePolicy::Update => "UPDATE",
            UniquePolicy::CancelAndReenqueue => "CANCEL_AND_REENQUEUE",
        }
    }
}

/// The arguments of one `enqueue_graph` call.
#[derive(Debug)]
pub struct EnqueueGraphArgs<'a> {
    /// The unique work name and its policy, if the graph is unique work.
    pub unique: Option<(&'a str, UniquePolicy)>,
    /// Retention for jobs that end FAILED or CANCELLED on the way (replaced work).
    pub keep_failed: Duration,
    /// The jobs.
    pub jobs: &'a [GraphJob<'a>],
}

impl EnqueueGraphArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let (name, policy) = self
            .unique
            .map_or(("", ""), |(name, policy)| (name, policy.as_str()));
        let mut cmd = Script::EnqueueGraph.fcall(keys);
        cmd.arg(name)
            .arg(policy)
            .arg(ms(self.keep_failed))
            .arg(self.jobs.len());
        for g in self.jobs {
            // No tags in ARGV: the script indexes those in the record.
            cmd.arg(g.job.id)
                .arg(g.job.due())
                .arg(g.job.record)
                .arg(g.lane)
                .arg(0);
        }
        cmd
    }
}

/// The reply of `enqueue_graph`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphReply {
    /// Redis' clock when the script ran.
    pub now_ms: Millis,
    /// What it did.
    pub status: GraphStatus,
    /// The jobs concerned (see [`GraphStatus`]).
    pub ids: Vec<String>,
}

impl GraphReply {
    /// Parses the reply; anything but `[now_ms, 0..=3, ids...]` is an [`Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        let mut items = array(v)?.into_iter();
        let mut head = || {
            items
                .next()
                .ok_or_else(|| Error::protocol("short enqueue reply"))
        };
        let now_ms = opt_ms(&head()?)?.unwrap_or(0);
        let status = match int(&head()?)? {
            1 => GraphStatus::Enqueued,
            0 => GraphStatus::Kept,
            2 => GraphStatus::Existed,
            3 => GraphStatus::Updated,
            other => return Err(Error::protocol(format!("enqueue status {other}"))),
        };
        let ids = items
            .map(|v| {
                String::from_utf8(bytes(v)?).map_err(|_| Error::protocol("job id is not UTF-8"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GraphReply {
            now_ms,
            status,
            ids,
        })
    }
}

impl FromRedisValue for GraphReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Stores a graph of jobs (a chain), optionally as unique work under a name and a
    /// policy.
    pub async fn enqueue_graph<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        unique: Option<(&str, UniquePolicy)>,
        keep_failed: Duration,
        jobs: &[GraphJob<'_>],
    ) -> Result<(Millis, GraphStatus, Vec<String>)> {
        let cmd = EnqueueGraphArgs {
            unique,
            keep_failed,
            jobs,
        }
        .cmd(keys);
        let reply = GraphReply::parse(self.call(con, &cmd).await.map_err(refused)?)?;
        Ok((reply.now_ms, reply.status, reply.ids))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn graph() -> [GraphJob<'static>; 2] {
        [
            GraphJob {
                job: NewJob {
                    id: "01J0000000000000000000000A",
                    delay_ms: 10,
                    at_ms: 0,
                    record: b"root",
                },
                lane: "",
            },
            GraphJob {
                job: NewJob {
                    id: "01J0000000000000000000000B",
                    delay_ms: 0,
                    at_ms: 42,
                    record: b"child",
                },
                lane: "@gpu",
            },
        ]
    }

    #[test]
    fn enqueue_graph_cmd_unique() {
        let jobs = graph();
        let cmd = EnqueueGraphArgs {
            unique: Some(("nightly", UniquePolicy::AppendOrReplace)),
            keep_failed: Duration::from_secs(2),
            jobs: &jobs,
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(
                Script::EnqueueGraph,
                &[
                    "nightly",
                    "APPEND_OR_REPLACE",
                    "2000",
                    "2",
                    "01J0000000000000000000000A",
                    "-10",
                    "root",
                    "",
                    "0",
                    "01J0000000000000000000000B",
                    "42",
                    "child",
                    "@gpu",
                    "0",
                ]
            )
        );
    }

    #[test]
    fn enqueue_graph_cmd_without_a_name_sends_empty_name_and_policy() {
        let cmd = EnqueueGraphArgs {
            unique: None,
            keep_failed: Duration::ZERO,
            jobs: &[],
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(Script::EnqueueGraph, &["", "", "0", "0"])
        );
    }

    #[test]
    fn unique_policies_as_the_script_names_them() {
        let all = [
            (UniquePolicy::Keep, "KEEP"),
            (UniquePolicy::Replace, "REPLACE"),
            (UniquePolicy::Append, "APPEND"),
            (UniquePolicy::AppendOrReplace, "APPEND_OR_REPLACE"),
            (UniquePolicy::Update, "UPDATE"),
            (UniquePolicy::CancelAndReenqueue, "CANCEL_AND_REENQUEUE"),
        ];
        let source = Script::EnqueueGraph.source();
        for (policy, name) in all {
            assert_eq!(policy.as_str(), name);
            assert!(source.contains(&format!("{name} = true")), "{name}");
        }
    }

    #[test]
    fn graph_reply_parses() {
        let v = Value::Array(vec![
            Value::Int(7),
            Value::Int(0),
            bulk("01J0000000000000000000000A"),
        ]);
        let r = GraphReply::parse(v.clone()).expect("valid reply");
        assert_eq!(
            r,
            GraphReply {
                now_ms: 7,
                status: GraphStatus::Kept,
                ids: vec!["01J0000000000000000000000A".into()],
            }
        );
        assert_eq!(GraphReply::from_redis_value(v).expect("valid reply"), r);
        for (code, status) in [
            (1, GraphStatus::Enqueued),
            (2, GraphStatus::Existed),
            (3, GraphStatus::Updated),
        ] {
            let r = GraphReply::parse(int_array(&[1, code])).expect("valid reply");
            assert_eq!((r.status, r.ids.len()), (status, 0));
        }
    }

    #[test]
    fn graph_reply_malformed_is_protocol() {
        for bad in [
            int_array(&[]),
            int_array(&[1]),
            int_array(&[1, 4]),
            Value::Nil,
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(3)]),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(1),
                Value::BulkString(vec![0xff]),
            ]),
        ] {
            assert!(is_protocol(&GraphReply::parse(bad.clone())), "{bad:?}");
            assert!(GraphReply::from_redis_value(bad).is_err());
        }
    }
}
