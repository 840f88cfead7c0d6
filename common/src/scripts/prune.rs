//! `prune.lua`: prunes finished jobs now, whatever their retention (WorkManager's
//! `pruneWork`).
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: limit (at least 1).
//! - Reply: how many were pruned (call again while it returns the limit): [`PruneReply`].

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{int, parsing, Script, Scripts};
use crate::{QueueKeys, Result};

/// The arguments of one `prune` call.
#[derive(Clone, Copy, Debug)]
pub struct PruneArgs {
    /// Most jobs to prune.
    pub limit: usize,
}

impl PruneArgs {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Prune.fcall(keys);
        cmd.arg(self.limit.max(1));
        cmd
    }
}

/// The reply of `prune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneReply {
    /// How many jobs were pruned.
    pub pruned: usize,
}

impl PruneReply {
    /// Parses the reply; anything but an integer is an [`crate::Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        Ok(PruneReply {
            pruned: usize::try_from(int(&v)?).unwrap_or(0),
        })
    }
}

impl FromRedisValue for PruneReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Prunes up to `limit` finished jobs now, whatever their retention; returns how many.
    pub async fn prune<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        limit: usize,
    ) -> Result<usize> {
        let cmd = PruneArgs { limit }.cmd(keys);
        Ok(PruneReply::parse(self.call(con, &cmd).await?)?.pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn prune_cmd_sends_a_limit_of_at_least_one() {
        let cmd = PruneArgs { limit: 0 }.cmd(&keys());
        assert_eq!(args(&cmd), expected(Script::Prune, &["1"]));
        let cmd = PruneArgs { limit: 500 }.cmd(&keys());
        assert_eq!(args(&cmd), expected(Script::Prune, &["500"]));
    }

    #[test]
    fn prune_reply_parses() {
        assert_eq!(
            PruneReply::parse(Value::Int(3))
                .expect("valid reply")
                .pruned,
            3
        );
        assert_eq!(
            PruneReply::from_redis_value(Value::Int(-1))
                .expect("valid reply")
                .pruned,
            0
        );
    }

    #[test]
    fn prune_reply_malformed_is_protocol() {
        for bad in [Value::Nil, bulk("3"), int_array(&[3])] {
            assert!(is_protocol(&PruneReply::parse(bad.clone())), "{bad:?}");
            assert!(PruneReply::from_redis_value(bad).is_err());
        }
    }
}
