//! `claim.lua`: claims due jobs for one worker from the lanes it can serve (expedited
//! lanes first, then the others, each group in due order across its lanes; a lane that
//! needs labels only if the worker has them all), taking over the jobs of workers whose
//! lease ran out on the way (the attempt counts; the job is due again at once, or
//! finished past max attempts), and pruning finished jobs past retention. It also
//! records, when asked, when this worker last looked for work, for stats. A due job of a
//! kind the worker does not run is not claimed: it moves, still ENQUEUED, to its kind lane
//! (`<lane>#<kind>`, `kinds.lua`).
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: limit (at most [`MAX_CLAIM`]), lease_ms (at least 1), worker id,
//!   keep_failed_ms, maintenance_limit, labels (sorted, comma-separated, `''` for none),
//!   presence (1 to record it, 0 not to), kinds the worker runs (sorted, comma-separated;
//!   `''` for any), memory pressure (1 when Redis is near `maxmemory`: prune the oldest
//!   finished jobs ahead of their retention), and the rest of the presence,
//!   `<host>|<slots>` (`''` or absent for none: workers before it sent nine arguments).
//! - Reply: `[now_ms, next_wake_ms | -1, oldest_due_ms | -1, newest_due_ms | -1, id1,
//!   record1, id2, record2, ...]`: next_wake is the earliest due time in a lane it serves,
//!   prune time, or lease end of another worker; oldest_due and newest_due are the
//!   earliest and latest due times of the jobs claimed (every claimed job was due between
//!   them), the first job of the reply being due at oldest_due and, when newest_due is
//!   given (it is not when more jobs were due than claimed), the last at newest_due; each
//!   record is RUNNING with its new attempt number: [`ClaimReply`].

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{array, bytes, ms, opt_ms, parsing, Script, Scripts, MAX_CLAIM};
use crate::{Error, Millis, QueueKeys, Result};

/// Arguments of [`Scripts::claim`].
#[derive(Debug)]
pub struct ClaimArgs<'a> {
    /// Most jobs to claim (0 to only do maintenance).
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
    /// Who claims (stored with the job while it runs).
    pub worker: &'a str,
    /// Retention for jobs the reaper fails.
    pub keep_failed: Duration,
    /// Most expired leases and prunable jobs handled per call.
    pub maintenance_limit: usize,
    /// The worker's labels, sorted, comma-separated ("" for none).
    pub labels: &'a str,
    /// Record the worker's presence (for stats) with this call; workers do it every few
    /// seconds rather than on every claim.
    pub presence: bool,
    /// The kinds the worker runs, sorted, comma-separated ("" claims any kind): a due job
    /// of another kind is passed on to its kind lane instead of being claimed.
    pub kinds: &'a str,
    /// Redis is near its `maxmemory`: prune the oldest finished jobs ahead of their
    /// retention.
    pub memory_pressure: bool,
    /// What the presence carries after the kinds, `<host>|<slots>` ("" for nothing).
    pub presence_tail: &'a str,
}

impl ClaimArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Claim.fcall(keys);
        cmd.arg(self.limit.min(MAX_CLAIM))
            .arg(ms(self.lease).max(1))
            .arg(self.worker)
            .arg(ms(self.keep_failed))
            .arg(self.maintenance_limit)
            .arg(self.labels)
            .arg(u8::from(self.presence))
            .arg(self.kinds)
            .arg(u8::from(self.memory_pressure))
            .arg(self.presence_tail);
        cmd
    }
}

/// What claim returned.
#[derive(Debug)]
pub struct ClaimReply {
    /// Redis' clock when the script ran.
    pub now_ms: Millis,
    /// When to look again: the next due time, or the end of another worker's lease
    /// (whose jobs are taken over then), whichever is first.
    pub next_due_ms: Option<Millis>,
    /// The due time of the most overdue job claimed (none when nothing was claimed).
    pub oldest_due_ms: Option<Millis>,
    /// The latest due time of the jobs claimed, that of the reply's last job (none when
    /// nothing was claimed, or when more jobs were due than claimed: then it was not read).
    pub newest_due_ms: Option<Millis>,
    /// Claimed jobs (already marked RUNNING with their new attempt number).
    pub jobs: Vec<ClaimedJob>,
}

/// One claimed job.
#[derive(Debug)]
pub struct ClaimedJob {
    /// Its id.
    pub id: String,
    /// Its record.
    pub record: Vec<u8>,
}

impl ClaimReply {
    /// Parses the reply; a shape other than the one above is an [`Error::Protocol`]. A
    /// claimed id that is not UTF-8 is logged and left out (to its lease), not an error.
    pub fn parse(v: Value) -> Result<Self> {
        let mut items = array(v)?.into_iter();
        let mut head = || {
            items
                .next()
                .ok_or_else(|| Error::protocol("short claim reply"))
        };
        let now_ms = opt_ms(&head()?)?.unwrap_or(0);
        let next_due_ms = opt_ms(&head()?)?;
        let oldest_due_ms = opt_ms(&head()?)?;
        let newest_due_ms = opt_ms(&head()?)?;
        let mut jobs = Vec::with_capacity(items.len() / 2);
        while let Some(id) = items.next() {
            let Some(record) = items.next() else {
                return Err(Error::protocol("claim reply has an id without a record"));
            };
            // The script claims only ids that are ULIDs; should one not be text, it is
            // left out here rather than failing its batch-mates' claim with it.
            match String::from_utf8(bytes(id)?) {
                Ok(id) => jobs.push(ClaimedJob {
                    id,
                    record: bytes(record)?,
                }),
                Err(e) => tracing::error!(
                    id = %String::from_utf8_lossy(e.as_bytes()),
                    "claimed a job whose id is not UTF-8; left to its lease"
                ),
            }
        }
        Ok(ClaimReply {
            now_ms,
            next_due_ms,
            oldest_due_ms,
            newest_due_ms,
            jobs,
        })
    }
}

impl FromRedisValue for ClaimReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Claims up to `limit` due jobs (including jobs whose lease ran out, which count a lost
    /// attempt), and prunes finished jobs past retention.
    pub async fn claim<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        args: &ClaimArgs<'_>,
    ) -> Result<ClaimReply> {
        ClaimReply::parse(self.call(con, &args.cmd(keys)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn claim_args() -> ClaimArgs<'static> {
        ClaimArgs {
            limit: 5000,
            lease: Duration::from_millis(0),
            worker: "w1",
            keep_failed: Duration::from_secs(60),
            maintenance_limit: 100,
            labels: "eu,gpu",
            presence: true,
            kinds: "email,render",
            memory_pressure: false,
            presence_tail: "box|8",
        }
    }

    #[test]
    fn claim_cmd_caps_limit_and_lease() {
        let cmd = claim_args().cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(
                Script::Claim,
                &[
                    "1000",
                    "1",
                    "w1",
                    "60000",
                    "100",
                    "eu,gpu",
                    "1",
                    "email,render",
                    "0",
                    "box|8"
                ]
            )
        );
        let cmd = ClaimArgs {
            limit: 0,
            lease: Duration::from_secs(30),
            presence: false,
            memory_pressure: true,
            labels: "",
            kinds: "",
            presence_tail: "",
            ..claim_args()
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(
                Script::Claim,
                &["0", "30000", "w1", "60000", "100", "", "0", "", "1", ""]
            )
        );
    }

    #[test]
    fn claim_reply_parses() {
        let v = Value::Array(vec![
            Value::Int(1000),
            Value::Int(-1),
            Value::Int(900),
            Value::Int(950),
            bulk("A"),
            Value::BulkString(vec![0x95, 1]),
            Value::BulkString(vec![0xff]),
            bulk("not text: left out"),
            bulk("B"),
            bulk("rb"),
        ]);
        let r = ClaimReply::parse(v).expect("valid reply");
        assert_eq!(r.now_ms, 1000);
        assert_eq!(r.next_due_ms, None);
        assert_eq!(r.oldest_due_ms, Some(900));
        assert_eq!(r.newest_due_ms, Some(950));
        let jobs: Vec<(&str, &[u8])> = r
            .jobs
            .iter()
            .map(|j| (j.id.as_str(), j.record.as_slice()))
            .collect();
        assert_eq!(jobs, [("A", &[0x95, 1][..]), ("B", b"rb")]);
        let r = ClaimReply::from_redis_value(int_array(&[1, 2, -1, -1])).expect("valid reply");
        assert_eq!(
            (
                r.next_due_ms,
                r.oldest_due_ms,
                r.newest_due_ms,
                r.jobs.len()
            ),
            (Some(2), None, None, 0)
        );
    }

    #[test]
    fn claim_reply_malformed_is_protocol() {
        for bad in [
            Value::Nil,
            int_array(&[1, 2]),
            int_array(&[1, 2, 3]),
            Value::Array(vec![Value::Int(1), Value::Int(2), bulk("3")]),
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3), bulk("A")]),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3),
                Value::Int(4),
                bulk("r"),
            ]),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3),
                Value::Int(4),
                bulk("A"),
                Value::Nil,
            ]),
        ] {
            assert!(is_protocol(&ClaimReply::parse(bad.clone())), "{bad:?}");
            assert!(ClaimReply::from_redis_value(bad).is_err());
        }
    }
}
