//! The Redis key schema. Every key of a queue starts with `workq:{<queue>}:`; the braces
//! are a Cluster hash tag, so one queue lives in one slot and each script touches one slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `workq:{q}:jobs` | hash | id → record (see [`crate::record`]) |
//! | `workq:{q}:due` | sorted set | ENQUEUED ids, score = due time (ms) (the plain lane) |
//! | `workq:{q}:due:<lane>` | sorted set | the same for lane `x` (expedited), `@labels` and `x@labels` |
//! | `workq:{q}:lanes` | set | lanes other than the plain one that ever held work |
//! | `workq:{q}:blocked` | set | BLOCKED ids (waiting for parents in a chain) |
//! | `workq:{q}:workers` | hash | worker id → its labels |
//! | `workq:{q}:progress` | hash | id → latest progress of a RUNNING job |
//! | `workq:{q}:unique` | hash | unique work name → MessagePack `{ids, leaves}` |
//! | `workq:{q}:leases` | sorted set | worker id, score = end of its lease (ms); one lease covers every job the worker holds |
//! | `workq:{q}:held:<worker>` | set | ids of the RUNNING jobs the worker holds |
//! | `workq:{q}:cancel` | hash | id → stop reason, for RUNNING jobs asked to stop |
//! | `workq:{q}:done` | sorted set | finished ids, score = when they may be pruned (ms) |
//! | `workq:{q}:tag:<tag>` | set | ids carrying the tag |
//! | `workq:{q}:stats` | hash | counters (enqueued, claimed, succeeded, ...) |
//! | `workq:{q}:events` | stream | state changes, written only while `watch` exists |
//! | `workq:{q}:watch` | string | present (with a TTL) while somebody watches events |
//! | `workq:{q}:wake` | pub/sub channel | earliest new due time, wakes idle workers |
//! | `workq:queues` | set | names of queues in use (outside any queue's slot) |
//! | `workq:watching` | string | present (with a TTL) while a watch follows every queue, new ones too |

use crate::{Error, Result};

/// The set of known queue names.
pub const QUEUES: &str = "workq:queues";

/// Present while some watch follows every queue, including queues that do not exist yet: a
/// producer adding a queue then sets that queue's `watch` marker before it enqueues there,
/// so the new queue's first events are written for the watch to find.
pub const WATCHING: &str = "workq:watching";

/// The keys of one queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueKeys {
    name: String,
    prefix: String,
}

impl QueueKeys {
    /// Keys for queue `name`: 1 to 64 characters, none of them `{`, `}`, `,` or whitespace.
    pub fn new(name: &str) -> Result<Self> {
        let bad = |c: char| c == '{' || c == '}' || c == ',' || c.is_whitespace();
        if name.is_empty() || name.len() > 64 || name.contains(bad) {
            return Err(Error::invalid(
                "queue",
                format!(
                "queue name '{name}' must be 1 to 64 characters without braces, commas or spaces"
            ),
            ));
        }
        Ok(QueueKeys {
            name: name.to_owned(),
            prefix: format!("workq:{{{name}}}:"),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `workq:{q}:`, the first key of every script call.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Records by id.
    pub fn jobs(&self) -> String {
        self.key("jobs")
    }
    /// ENQUEUED ids by due time, in the plain lane.
    pub fn due(&self) -> String {
        self.key("due")
    }
    /// ENQUEUED ids by due time, in `lane` ("" is the plain lane).
    pub fn due_in(&self, lane: &str) -> String {
        if lane.is_empty() {
            self.due()
        } else {
            self.key(&format!("due:{lane}"))
        }
    }
    /// Lanes other than the plain one.
    pub fn lanes(&self) -> String {
        self.key("lanes")
    }
    /// BLOCKED ids.
    pub fn blocked(&self) -> String {
        self.key("blocked")
    }
    /// Worker id → labels.
    pub fn workers(&self) -> String {
        self.key("workers")
    }
    /// Progress of RUNNING jobs.
    pub fn progress(&self) -> String {
        self.key("progress")
    }
    /// Unique work names.
    pub fn unique(&self) -> String {
        self.key("unique")
    }
    /// Workers by lease end.
    pub fn leases(&self) -> String {
        self.key("leases")
    }
    /// Ids of the RUNNING jobs `worker` holds.
    pub fn held(&self, worker: &str) -> String {
        self.key(&format!("held:{worker}"))
    }
    /// Stop reasons of RUNNING jobs asked to stop.
    pub fn cancel(&self) -> String {
        self.key("cancel")
    }
    /// Finished ids by prune time.
    pub fn done(&self) -> String {
        self.key("done")
    }
    /// Ids with `tag`.
    pub fn tag(&self, tag: &str) -> String {
        self.key(&format!("tag:{tag}"))
    }
    /// Counters.
    pub fn stats(&self) -> String {
        self.key("stats")
    }
    /// The events stream.
    pub fn events(&self) -> String {
        self.key("events")
    }
    /// Present while somebody watches.
    pub fn watch(&self) -> String {
        self.key("watch")
    }
    /// The wake-up channel.
    pub fn wake(&self) -> String {
        self.key("wake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_queue_hash_tag() -> Result<()> {
        let k = QueueKeys::new("emails")?;
        assert_eq!(k.jobs(), "workq:{emails}:jobs");
        assert_eq!(k.tag("x"), "workq:{emails}:tag:x");
        Ok(())
    }

    #[test]
    fn names_that_would_break_the_hash_tag_are_refused() {
        for bad in ["", "a}b", "{a", "a b", "a,b"] {
            assert!(QueueKeys::new(bad).is_err(), "{bad:?}");
        }
    }
}
