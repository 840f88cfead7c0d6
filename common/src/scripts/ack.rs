//! `ack.lua`: records the outcome of finished attempts, fenced by the claim token (the
//! attempt number). A job whose cancellation was requested ends CANCELLED whatever the
//! code.
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: worker, keep_succeeded_ms, keep_failed_ms, n; then per job: id, token,
//!   result. result is empty for a success with no output (the common case), otherwise
//!   MessagePack `[code, message, output, next_due_ms, following_due_ms]` with code `S`
//!   succeeded, `F` failed (terminal), `R` retry with backoff (Err, panic, timeout,
//!   retry); the output goes under a `str` header, since Redis' cmsgpack reads no `bin`.
//!   The due times are the next two periods of periodic work (0 otherwise).
//! - Reply: per job, 1 applied, 0 refused (stale token: the job was taken over, or is
//!   gone): [`AckReply`].

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{ints, ms, parsing, Retention, Script, Scripts};
use crate::{Error, Millis, QueueKeys, Result};

/// How an attempt ended, for [`Scripts::ack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// SUCCEEDED.
    Succeeded,
    /// FAILED, no retry.
    Failed,
    /// Retry with backoff (or FAILED when out of attempts).
    Retry,
}

impl AckOutcome {
    /// The result's code as the script reads it.
    fn code(self) -> &'static str {
        match self {
            AckOutcome::Succeeded => "S",
            AckOutcome::Failed => "F",
            AckOutcome::Retry => "R",
        }
    }
}

/// One finished attempt.
#[derive(Clone, Debug)]
pub struct Ack {
    /// The job's id.
    pub id: Arc<str>,
    /// The attempt number it was claimed with (the fencing token).
    pub token: u32,
    /// How it ended.
    pub outcome: AckOutcome,
    /// The error or stop reason; empty for none.
    pub message: String,
    /// Output bytes (MessagePack); empty for none.
    pub output: Vec<u8>,
    /// Periodic work: when the next period's run is due, and the one after (0 otherwise).
    pub next_runs: (Millis, Millis),
}

impl Ack {
    /// Writes the result argument into `out` (emptied first): nothing for a plain
    /// success, else MessagePack `[code, message, output, next_due, following_due]`.
    fn write_result(&self, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        if self.outcome == AckOutcome::Succeeded
            && self.message.is_empty()
            && self.output.is_empty()
            && self.next_runs == (0, 0)
        {
            return Ok(());
        }
        let enc = |e: rmp::encode::ValueWriteError| Error::Record(e.to_string());
        let output_len = u32::try_from(self.output.len())
            .map_err(|_| Error::Record(format!("output of {} bytes", self.output.len())))?;
        rmp::encode::write_array_len(out, 5).map_err(enc)?;
        rmp::encode::write_str(out, self.outcome.code()).map_err(enc)?;
        rmp::encode::write_str(out, &self.message).map_err(enc)?;
        // Redis' cmsgpack reads no `bin` type: the bytes go under a `str` header (a Lua
        // string holds any bytes).
        rmp::encode::write_str_len(out, output_len).map_err(enc)?;
        out.extend_from_slice(&self.output);
        rmp::encode::write_uint(out, self.next_runs.0).map_err(enc)?;
        rmp::encode::write_uint(out, self.next_runs.1).map_err(enc)?;
        Ok(())
    }
}

/// The arguments of one `ack` call.
#[derive(Debug)]
pub struct AckArgs<'a> {
    /// The worker that ran the attempts.
    pub worker: &'a str,
    /// How long the jobs that finish stay queryable.
    pub retention: &'a Retention,
    /// The finished attempts.
    pub acks: &'a [Ack],
}

impl AckArgs<'_> {
    /// The `FCALL` command (no I/O); fails only if a result cannot be encoded.
    pub fn cmd(&self, keys: &QueueKeys) -> Result<Cmd> {
        let mut cmd = Script::Ack.fcall(keys);
        cmd.arg(self.worker)
            .arg(ms(self.retention.succeeded))
            .arg(ms(self.retention.failed))
            .arg(self.acks.len());
        let mut result = Vec::new();
        for a in self.acks {
            a.write_result(&mut result)?;
            cmd.arg(&*a.id).arg(a.token).arg(result.as_slice());
        }
        Ok(cmd)
    }
}

/// The reply of `ack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckReply {
    /// Per attempt, in the call's order: recorded (`false`: the fencing check refused it).
    pub applied: Vec<bool>,
}

impl AckReply {
    /// Parses the reply; anything but an array of integers is an [`Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        Ok(AckReply {
            applied: ints(v)?.into_iter().map(|c| c == 1).collect(),
        })
    }
}

impl FromRedisValue for AckReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Records finished attempts of `worker`; `false` for each one the fencing check
    /// refused.
    pub async fn ack<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        worker: &str,
        retention: &Retention,
        acks: &[Ack],
    ) -> Result<Vec<bool>> {
        let cmd = AckArgs {
            worker,
            retention,
            acks,
        }
        .cmd(keys)?;
        Ok(AckReply::parse(self.call(con, &cmd).await?)?.applied)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;
    use super::*;

    fn ack(outcome: AckOutcome, message: &str, output: &[u8], next_runs: (u64, u64)) -> Ack {
        Ack {
            id: "01J0000000000000000000000A".into(),
            token: 3,
            outcome,
            message: message.into(),
            output: output.to_vec(),
            next_runs,
        }
    }

    #[test]
    fn ack_cmd_plain_success_sends_an_empty_result() {
        let retention = Retention {
            succeeded: Duration::from_secs(1),
            failed: Duration::from_secs(2),
        };
        let acks = [ack(AckOutcome::Succeeded, "", b"", (0, 0))];
        let cmd = AckArgs {
            worker: "w1",
            retention: &retention,
            acks: &acks,
        }
        .cmd(&keys())
        .expect("encodable");
        assert_eq!(
            args(&cmd),
            expected(
                Script::Ack,
                &[
                    "w1",
                    "1000",
                    "2000",
                    "1",
                    "01J0000000000000000000000A",
                    "3",
                    ""
                ]
            )
        );
    }

    #[test]
    fn ack_cmd_encodes_other_results_as_msgpack() {
        let retention = Retention::default();
        let acks = [
            ack(AckOutcome::Retry, "boom", b"", (0, 0)),
            ack(AckOutcome::Succeeded, "", &[0x81, 0xa1, b'a', 1], (0, 0)),
            ack(AckOutcome::Failed, "", b"", (200, 300)),
        ];
        let cmd = AckArgs {
            worker: "w1",
            retention: &retention,
            acks: &acks,
        }
        .cmd(&keys())
        .expect("encodable");
        let a = raw_args(&cmd);
        // FCALL, function, 2, the two keys, then the arguments.
        let a = &a[1..];
        assert_eq!(a.len(), 4 + 4 + 3 * 3);
        assert_eq!(a[4], b"w1");
        assert_eq!(a[5], b"3600000");
        assert_eq!(a[6], b"604800000");
        assert_eq!(a[7], b"3");
        // [code, message, output (str header), next, following]
        assert_eq!(a[10], b"\x95\xa1R\xa4boom\xa0\x00\x00");
        assert_eq!(a[13], b"\x95\xa1S\xa0\xa4\x81\xa1a\x01\x00\x00");
        assert_eq!(a[16], b"\x95\xa1F\xa0\xa0\xcc\xc8\xcd\x01\x2c");
    }

    #[test]
    fn ack_reply_parses() {
        let r = AckReply::parse(int_array(&[1, 0, 1])).expect("valid reply");
        assert_eq!(r.applied, [true, false, true]);
        let r = AckReply::from_redis_value(int_array(&[])).expect("valid reply");
        assert!(r.applied.is_empty());
    }

    #[test]
    fn ack_reply_malformed_is_protocol() {
        for bad in [Value::Nil, Value::Int(1), Value::Array(vec![bulk("1")])] {
            assert!(is_protocol(&AckReply::parse(bad.clone())), "{bad:?}");
            assert!(AckReply::from_redis_value(bad).is_err());
        }
    }
}
