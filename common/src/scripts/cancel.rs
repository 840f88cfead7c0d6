//! `cancel.lua`: cancels jobs by id. Waiting and blocked jobs end CANCELLED now (with
//! their descendants in a chain); a running job gets a stop reason in `cancel`, its worker
//! learns it at its next heartbeat, and the job then ends CANCELLED with no retry.
//! Periodic work stops for good.
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: keep_failed_ms, reason; then the ids.
//! - Reply: per id, 0 unknown, 1 cancelled, 2 cancellation requested, 3 already finished:
//!   [`CancelReply`].

use crate::CancelStatus;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{ints, ms, parsing, Script, Scripts};
use crate::{QueueKeys, Result};

/// The arguments of one `cancel` call.
#[derive(Debug)]
pub struct CancelArgs<'a> {
    /// How long the cancelled jobs stay queryable.
    pub keep_failed: Duration,
    /// The stop reason recorded with them.
    pub reason: &'a str,
    /// The jobs.
    pub ids: &'a [String],
}

impl CancelArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Cancel.fcall(keys);
        cmd.arg(ms(self.keep_failed)).arg(self.reason);
        for id in self.ids {
            cmd.arg(id.as_str());
        }
        cmd
    }
}

/// The reply of `cancel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelReply {
    /// Per id, in the call's order.
    pub statuses: Vec<CancelStatus>,
}

impl CancelReply {
    /// Parses the reply; anything but an array of integers is an [`crate::Error::Protocol`]
    /// (a code other than 1 to 3 is [`CancelStatus::NotFound`]).
    pub fn parse(v: Value) -> Result<Self> {
        Ok(CancelReply {
            statuses: ints(v)?
                .into_iter()
                .map(|c| match c {
                    1 => CancelStatus::Cancelled,
                    2 => CancelStatus::Requested,
                    3 => CancelStatus::AlreadyFinished,
                    _ => CancelStatus::NotFound,
                })
                .collect(),
        })
    }
}

impl FromRedisValue for CancelReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Cancels jobs by id.
    pub async fn cancel<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        keep_failed: Duration,
        reason: &str,
        ids: &[String],
    ) -> Result<Vec<CancelStatus>> {
        let cmd = CancelArgs {
            keep_failed,
            reason,
            ids,
        }
        .cmd(keys);
        Ok(CancelReply::parse(self.call(con, &cmd).await?)?.statuses)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn cancel_cmd_sends_reason_then_ids() {
        let ids = ["A".to_owned(), "B".to_owned()];
        let cmd = CancelArgs {
            keep_failed: Duration::from_millis(1),
            reason: "cancelled by tag",
            ids: &ids,
        }
        .cmd(&keys());
        assert_eq!(
            args(&cmd),
            expected(Script::Cancel, &["1", "cancelled by tag", "A", "B"])
        );
    }

    #[test]
    fn cancel_reply_parses() {
        let r = CancelReply::parse(int_array(&[0, 1, 2, 3, 4])).expect("valid reply");
        assert_eq!(
            r.statuses,
            [
                CancelStatus::NotFound,
                CancelStatus::Cancelled,
                CancelStatus::Requested,
                CancelStatus::AlreadyFinished,
                CancelStatus::NotFound
            ]
        );
        let r = CancelReply::from_redis_value(int_array(&[3])).expect("valid reply");
        assert_eq!(r.statuses, [CancelStatus::AlreadyFinished]);
    }

    #[test]
    fn cancel_reply_malformed_is_protocol() {
        for bad in [
            Value::Nil,
            Value::Int(0),
            Value::Array(vec![Value::Double(1.0)]),
        ] {
            assert!(is_protocol(&CancelReply::parse(bad.clone())), "{bad:?}");
            assert!(CancelReply::from_redis_value(bad).is_err());
        }
    }
}
