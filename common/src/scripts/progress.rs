//! `progress.lua`: stores the progress of a running attempt, fenced by its token, and
//! tells watchers (the event carries the progress itself when it is at most 4 KiB).
//!
//! - `KEYS[1]`: the queue prefix `workq:{<queue>}:`.
//! - `ARGV`: id, token, data (MessagePack).
//! - Reply: 1 stored, 0 refused (the job is no longer this attempt's): [`ProgressReply`].

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{int, parsing, Script, Scripts};
use crate::{QueueKeys, Result};

/// The arguments of one `progress` call.
#[derive(Debug)]
pub struct ProgressArgs<'a> {
    /// The job.
    pub id: &'a str,
    /// The attempt number it was claimed with (the fencing token).
    pub token: u32,
    /// The progress (MessagePack).
    pub data: &'a [u8],
}

impl ProgressArgs<'_> {
    /// The `FCALL` command (no I/O).
    pub fn cmd(&self, keys: &QueueKeys) -> Cmd {
        let mut cmd = Script::Progress.fcall(keys);
        cmd.arg(self.id).arg(self.token).arg(self.data);
        cmd
    }
}

/// The reply of `progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressReply {
    /// Stored (`false`: the attempt is no longer the job's, fenced out).
    pub stored: bool,
}

impl ProgressReply {
    /// Parses the reply; anything but an integer is an [`crate::Error::Protocol`].
    pub fn parse(v: Value) -> Result<Self> {
        Ok(ProgressReply {
            stored: int(&v)? == 1,
        })
    }
}

impl FromRedisValue for ProgressReply {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        Self::parse(v).map_err(parsing)
    }
}

impl Scripts {
    /// Stores the progress of a running attempt; `false` when the attempt is no longer
    /// the job's (fenced out).
    pub async fn progress<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        id: &str,
        token: u32,
        data: &[u8],
    ) -> Result<bool> {
        let cmd = ProgressArgs { id, token, data }.cmd(keys);
        Ok(ProgressReply::parse(self.call(con, &cmd).await?)?.stored)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn progress_cmd_sends_id_token_data() {
        let cmd = ProgressArgs {
            id: "A",
            token: 4,
            data: &[0x81, 0xa1, b'p', 5],
        }
        .cmd(&keys());
        let mut want = head(Script::Progress);
        want.extend(["A".to_owned(), "4".to_owned()]);
        want.push(String::from_utf8_lossy(&[0x81, 0xa1, b'p', 5]).into_owned());
        assert_eq!(args(&cmd), want);
    }

    #[test]
    fn progress_reply_parses() {
        assert!(
            ProgressReply::parse(Value::Int(1))
                .expect("valid reply")
                .stored
        );
        assert!(
            !ProgressReply::from_redis_value(Value::Int(0))
                .expect("valid reply")
                .stored
        );
    }

    #[test]
    fn progress_reply_malformed_is_protocol() {
        for bad in [Value::Nil, bulk("1"), int_array(&[1])] {
            assert!(is_protocol(&ProgressReply::parse(bad.clone())), "{bad:?}");
            assert!(ProgressReply::from_redis_value(bad).is_err());
        }
    }
}
