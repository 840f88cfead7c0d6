//! Durable writes, opt in: after a script that changes state, wait until replicas (and,
//! on Redis 7.2 or later, their append-only files) have the write, and say when they did
//! not in time.
//!
//! Redis replicates asynchronously: a primary that acknowledges a write and dies before
//! sending it on takes the write with it, and a replica promoted in its place does not
//! have it. [`Durability::Replicas`] sends `WAIT n timeout` on the connection that made
//! the write, [`Durability::ReplicasAof`] `WAITAOF local n timeout`; either reports how
//! many copies acknowledged. Neither makes Redis strongly consistent: a write that
//! reached `n` replicas survives the loss of its primary as long as a replica that has it
//! is the one promoted (Sentinel and Cluster prefer the most up to date one, but a
//! partition can still elect one that lacks it), and a write that did not reach them in
//! time is still applied on the primary (`WAIT` does not roll it back).

use std::fmt;
use std::time::Duration;

use crate::connect::Conn;
use crate::{Error, Result};

/// How many copies a write must reach before a call reports it done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The primary applied it (Redis' default; the write is lost if the primary dies
    /// before replicating it).
    #[default]
    Primary,
    /// At least `replicas` replicas acknowledged it within `timeout` (`WAIT`).
    Replicas {
        /// Replicas that must have the write.
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
    /// The primary's append-only file (when `local`) and at least `replicas` replicas'
    /// append-only files were fsynced with it within `timeout` (`WAITAOF`, Redis 7.2 or
    /// later, with `appendonly yes` where it is counted).
    ReplicasAof {
        /// The primary's own AOF must be fsynced too.
        local: bool,
        /// Replicas whose AOF must have the write.
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Durability {
    /// [`Durability::Replicas`].
    pub fn replicas(replicas: u32, timeout: Duration) -> Self {
        Durability::Replicas { replicas, timeout }
    }

    /// [`Durability::ReplicasAof`].
    pub fn replicas_aof(local: bool, replicas: u32, timeout: Duration) -> Self {
        Durability::ReplicasAof {
            local,
            replicas,
            timeout,
        }
    }

    /// Checks the setting: a timeout of zero would make `WAIT` block for ever.
    pub fn check(&self) -> Result<()> {
        match *self {
            Durability::Primary => Ok(()),
            Durability::Replicas { timeout, .. } | Durability::ReplicasAof { timeout, .. }
                if timeout.is_zero() =>
            {
                Err(Error::config(
                    "durability",
                    "a durability timeout must be above zero (WAIT 0 would wait for ever)",
                ))
            }
            Durability::Replicas { .. } | Durability::ReplicasAof { .. } => Ok(()),
        }
    }

    /// Waits, on `con` (the connection that made the write: `WAIT` counts its writes) and
    /// on the node that owns `key` (the queue's prefix: in a Cluster, `WAIT` must go where
    /// the write went), until the write of `what` has the copies this setting asks for;
    /// an [`Error::NotDurable`] when it did not within the timeout (the write stays
    /// applied on the primary).
    pub async fn confirm(&self, con: &mut Conn, key: &str, what: &'static str) -> Result<()> {
        let ms = |t: Duration| crate::time::ms(t).max(1);
        match *self {
            Durability::Primary => Ok(()),
            Durability::Replicas { replicas, timeout } => {
                let mut cmd = redis::cmd("WAIT");
                cmd.arg(replicas).arg(ms(timeout));
                let acked: u32 = con.query_at(key, &cmd).await?;
                if acked >= replicas {
                    return Ok(());
                }
                Err(Error::NotDurable(NotDurable {
                    what,
                    local: None,
                    replicas: acked,
                    wanted: replicas,
                    timeout,
                }))
            }
            Durability::ReplicasAof {
                local,
                replicas,
                timeout,
            } => {
                let mut cmd = redis::cmd("WAITAOF");
                cmd.arg(u8::from(local)).arg(replicas).arg(ms(timeout));
                let reply: redis::RedisResult<(u32, u32)> = con.query_at(key, &cmd).await;
                let (l, acked) = match reply {
                    Ok(r) => r,
                    Err(e) if e.detail().is_some_and(|d| d.contains("unknown command")) => {
                        return Err(Error::config(
                            "durability",
                            format!("Durability::ReplicasAof needs WAITAOF (Redis 7.2 or later); this server refused it: {e}"),
                        ))
                    }
                    Err(e) if e.detail().is_some_and(|d| d.contains("appendonly")) => {
                        return Err(Error::config(
                            "durability",
                            format!("Durability::ReplicasAof with local needs appendonly yes on the primary: {e}"),
                        ))
                    }
                    Err(e) => return Err(e.into()),
                };
                if acked >= replicas && (!local || l >= 1) {
                    return Ok(());
                }
                Err(Error::NotDurable(NotDurable {
                    what,
                    local: local.then_some(l >= 1),
                    replicas: acked,
                    wanted: replicas,
                    timeout,
                }))
            }
        }
    }
}

/// A write that the primary applied but that did not reach the copies asked for in time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotDurable {
    /// What was written ("enqueue", "ack", ...).
    pub what: &'static str,
    /// Whether the primary's AOF was fsynced (for [`Durability::ReplicasAof`] with
    /// `local`; `None` otherwise).
    pub local: Option<bool>,
    /// How many replicas acknowledged it.
    pub replicas: u32,
    /// How many were asked for.
    pub wanted: u32,
    /// How long the call waited.
    pub timeout: Duration,
}

impl fmt::Display for NotDurable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} was applied on the Redis primary but reached {} of {} replicas",
            self.what, self.replicas, self.wanted
        )?;
        if self.local == Some(false) {
            write!(f, " (and the primary's AOF was not fsynced)")?;
        }
        write!(
            f,
            " within {} ms: it exists now, and may be lost if the primary fails before it replicates",
            crate::time::ms(self.timeout)
        )
    }
}
