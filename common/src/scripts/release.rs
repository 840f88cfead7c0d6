//! `release.lua`: hands running jobs back at once (graceful shutdown), instead of waiting
//! for the lease to run out. The attempt already counted stays counted, so the fencing
//! token keeps increasing, but a handed-back job is never failed for running out of
//! attempts.
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: worker, keep_failed_ms, reason; then per job: id, token.
//! - Reply: per job, 1 handed back (or cancelled, if that was requested), 0 not held:
//!   [`ReleaseReply`].

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{ints, ms, parsing, Script, Scripts};
use crate::{QueueKeys, Result};

/// The arguments of one `release` call.
#[derive(Debug)]
pub struct ReleaseArgs<'a> {
    /// The worker that holds the jobs.
    pub worker: &'a str,
    /// Retention for jobs that end CANCELLED on the way.
    pub keep_failed: Duration,
    /// Why they are handed back (recorded as the attempt's error).
    pub reason: &'a str,
    /// The (id, token) pairs to hand back.
    pub held: &'a [(String, u32)],
}

impl ReleaseArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Release.fcall(keys);
        cmd.arg(self.worker)
            .arg(ms(self.keep_failed))
            .arg(self.reason);
        for (id, token) in self.held {
            cmd.arg(id.as_str()).arg(*token);
        }
        cmd
    }
}

/// The reply of `release`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseReply {
    /// Per job, in the call's order: handed back (`false`: the worker did not hold it).
    pub released: Vec<bool>,
}

impl ReleaseReply {
    /// Parses the reply; anything but an array of integers is an [`crate::Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        Ok(ReleaseReply {
            released: ints(v)?.into_iter().map(|c| c == 1).collect(),
        })
    }
}

impl FromRedisValue for ReleaseReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Hands jobs `worker` holds back, due now.
    pub async fn release<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        worker: &str,
        keep_failed: Duration,
        reason: &str,
        held: &[(String, u32)],
    ) -> Result<Vec<bool>> {
        let cmd = ReleaseArgs {
            worker,
            keep_failed,
            reason,
            held,
        }
        .cmd(keys);
        Ok(ReleaseReply::parse(self.call(con, &cmd).await?)?.released)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn release_cmd_sends_reason_and_held_pairs() {
        let held = [("A".to_owned(), 2)];
        let cmd = ReleaseArgs {
            worker: "w1",
            keep_failed: Duration::from_secs(1),
            reason: "shutting down",
            held: &held,
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(Script::Release, &["w1", "1000", "shutting down", "A", "2"])
        );
    }

    #[test]
    fn release_reply_parses() {
        let r = ReleaseReply::parse(int_array(&[1, 0])).expect("valid reply");
        assert_eq!(r.released, [true, false]);
        let r = ReleaseReply::from_redis_value(int_array(&[])).expect("valid reply");
        assert!(r.released.is_empty());
    }

    #[test]
    fn release_reply_malformed_is_protocol() {
        for bad in [Value::Nil, bulk("1"), Value::Array(vec![bulk("x")])] {
            assert!(is_protocol(&ReleaseReply::parse(bad.clone())), "{bad:?}");
            assert!(ReleaseReply::from_redis_value(bad).is_err());
        }
    }
}
