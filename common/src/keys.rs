//! The Redis key schema. Every key of a queue starts with `workq:{<queue>}:`; the braces
//! are a Cluster hash tag, so one queue lives in one slot and each script touches one slot.
//!
//! What each key holds is stated once, in the key table of `docs/wire-format.md`
//! (section "Keys"); this module names them ([`suffix`]), and the Lua library takes the same
//! names from here (`KEY.jobs`, ..., prepended by [`crate::scripts`]). Tests in
//! `scripts/mod.rs` fail when a key the scripts touch, or one named here, is missing from
//! that table.

use crate::{Error, Result};

/// The suffixes of a queue's keys, after its prefix `workq:{<queue>}:`. [`HELD`](suffix::HELD)
/// and [`TAG`](suffix::TAG) are followed by a worker id or a tag, and a lane other than
/// the plain one is [`DUE`](suffix::DUE), `:` and the lane.
pub mod suffix {
    /// Records by id.
    pub const JOBS: &str = "jobs";
    /// ENQUEUED ids by due time, in the plain lane (`due:<lane>` for the others).
    pub const DUE: &str = "due";
    /// Lanes other than the plain one.
    pub const LANES: &str = "lanes";
    /// BLOCKED ids.
    pub const BLOCKED: &str = "blocked";
    /// Workers by lease end.
    pub const LEASES: &str = "leases";
    /// Worker id → presence.
    pub const WORKERS: &str = "workers";
    /// Stop reasons of RUNNING jobs asked to stop.
    pub const CANCEL: &str = "cancel";
    /// Progress of RUNNING jobs.
    pub const PROGRESS: &str = "progress";
    /// Unique work names.
    pub const UNIQUE: &str = "unique";
    /// Finished ids by prune time.
    pub const DONE: &str = "done";
    /// Counters.
    pub const STATS: &str = "stats";
    /// The events stream.
    pub const EVENTS: &str = "events";
    /// Present while somebody watches.
    pub const WATCH: &str = "watch";
    /// The wake-up channel.
    pub const WAKE: &str = "wake";
    /// Followed by a worker id: the RUNNING jobs it holds.
    pub const HELD: &str = "held:";
    /// Followed by a tag: the ids carrying it.
    pub const TAG: &str = "tag:";

    /// Every suffix, in the order above.
    pub const ALL: [&str; 16] = [
        JOBS, DUE, LANES, BLOCKED, LEASES, WORKERS, CANCEL, PROGRESS, UNIQUE, DONE, STATS, EVENTS,
        WATCH, WAKE, HELD, TAG,
    ];
}

/// A member of a queue's `lanes` set that is no lane (lanes are empty or start with `x`,
/// `@` or `#`): present while the queue is paused (`admin.lua`), so that a claim, which
/// reads `lanes` anyway, learns it without another command.
pub const PAUSE_MARKER: &str = "!";

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
        self.key(suffix::JOBS)
    }
    /// ENQUEUED ids by due time, in the plain lane.
    pub fn due(&self) -> String {
        self.key(suffix::DUE)
    }
    /// ENQUEUED ids by due time, in `lane` ("" is the plain lane).
    pub fn due_in(&self, lane: &str) -> String {
        if lane.is_empty() {
            self.due()
        } else {
            self.key(&format!("{}:{lane}", suffix::DUE))
        }
    }
    /// Lanes other than the plain one.
    pub fn lanes(&self) -> String {
        self.key(suffix::LANES)
    }
    /// BLOCKED ids.
    pub fn blocked(&self) -> String {
        self.key(suffix::BLOCKED)
    }
    /// Worker id → presence, `<last seen ms>|<labels>|<kinds>|<host>|<slots>`.
    pub fn workers(&self) -> String {
        self.key(suffix::WORKERS)
    }
    /// Progress of RUNNING jobs.
    pub fn progress(&self) -> String {
        self.key(suffix::PROGRESS)
    }
    /// Unique work names.
    pub fn unique(&self) -> String {
        self.key(suffix::UNIQUE)
    }
    /// Workers by lease end.
    pub fn leases(&self) -> String {
        self.key(suffix::LEASES)
    }
    /// Ids of the RUNNING jobs `worker` holds.
    pub fn held(&self, worker: &str) -> String {
        self.key(&format!("{}{worker}", suffix::HELD))
    }
    /// Stop reasons of RUNNING jobs asked to stop.
    pub fn cancel(&self) -> String {
        self.key(suffix::CANCEL)
    }
    /// Finished ids by prune time.
    pub fn done(&self) -> String {
        self.key(suffix::DONE)
    }
    /// Ids with `tag`.
    pub fn tag(&self, tag: &str) -> String {
        self.key(&format!("{}{tag}", suffix::TAG))
    }
    /// Counters.
    pub fn stats(&self) -> String {
        self.key(suffix::STATS)
    }
    /// The events stream.
    pub fn events(&self) -> String {
        self.key(suffix::EVENTS)
    }
    /// Present while somebody watches.
    pub fn watch(&self) -> String {
        self.key(suffix::WATCH)
    }
    /// The wake-up channel.
    pub fn wake(&self) -> String {
        self.key(suffix::WAKE)
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
