//! The Lua scripts, one per state change, and their typed wrappers: one module per script
//! beside its `.lua` file, which owns the script's whole contract (its `KEYS`, `ARGV` and
//! reply, stated once in the module's documentation), its arguments type, the pure
//! function that builds the `FCALL` command, and its reply type.
//!
//! The scripts are the functions of one Redis function library (`FUNCTION LOAD`, Redis
//! 7.0 or later): constants taken from this crate (so that defaults such as the backoff,
//! the limits, the state codes, the format version, the record's header markers and the
//! key names live in one place), then the shared sources of [`SHARED`] by topic (key
//! names and the clock, the record codec, batched writes and events, the job lifecycle,
//! pruning, the reaper, the checks of new work, kind lanes, the per-call context), then
//! each script of [`Script::ALL`] as one function. Loaded once, the helpers are built
//! once, where a script
//! sent with `EVALSHA` would build them all again on every call. Each call touches one
//! queue (one Cluster slot) and handles a whole batch.
//!
//! The library's name carries a hash of the whole library, so that processes of different
//! versions sharing one Redis each call their own functions. A call that finds its
//! function missing (a new Redis, a restart without persistence, `FUNCTION FLUSH`) loads
//! the library and tries once more ([`Scripts::call`]).

use redis::aio::ConnectionLike;
use redis::{Cmd, Value};

use crate::{Error, QueueKeys, Result};

mod ack;
mod admin;
mod cancel;
mod claim;
mod enqueue;
mod enqueue_graph;
mod heartbeat;
mod library;
mod progress;
mod prune;
mod release;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod test_support;
mod values;

pub use crate::model::{CancelStatus, EnqueueStatus, GraphStatus, Retention};
pub use ack::{Ack, AckArgs, AckOutcome, AckReply};
pub use admin::{AdminOp, AdminStatus, PurgeStep};
pub use cancel::{CancelArgs, CancelReply};
pub use claim::{ClaimArgs, ClaimReply, ClaimedJob};
pub use enqueue::{EnqueueArgs, EnqueueReply, NewJob};
pub use enqueue_graph::{EnqueueGraphArgs, GraphJob, GraphReply, UniquePolicy};
pub use heartbeat::{HeartbeatArgs, HeartbeatReply, LeaseStatus};
pub use library::{scripts, Scripts, SHARED};
pub use progress::{ProgressArgs, ProgressReply};
pub use prune::{PruneArgs, PruneReply};
pub use release::{ReleaseArgs, ReleaseReply};
use values::{array, bytes, int, ints, ms, opt_ms, parsing};

/// Most jobs a single claim call hands out (the script caps it too).
pub const MAX_CLAIM: usize = 1000;

/// Entries kept in a queue's events stream (approximately: `XADD MAXLEN ~`).
pub const EVENTS_MAXLEN: usize = 10_000;

/// Declares [`Script`] from the one list of scripts: variant, name (which is also the
/// `.lua` file's name and the function's suffix), whether it may run when Redis is out
/// of memory, and whether it reads Redis' clock (`begin()` then sets `now`).
macro_rules! script_list {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, allow_oom: $oom:literal, clock: $clock:literal;)*) => {
        /// One script of the library. Those that end work or shrink the data set carry
        /// `allow-oom`, so that a Redis at `maxmemory` keeps draining while new work
        /// (enqueue, progress) is refused with Redis' OOM error.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Script {
            $($(#[$doc])* $variant,)*
        }

        impl Script {
            /// Every script, in the order the library registers them.
            pub const ALL: &'static [Script] = &[$(Script::$variant),*];

            /// Its name: script `x` is `x.lua`, and the function `<library name>_x`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Script::$variant => $name,)*
                }
            }

            /// Its Lua body (a function of `KEYS` and `ARGV`).
            pub fn source(self) -> &'static str {
                match self {
                    $(Script::$variant => include_str!(concat!($name, ".lua")),)*
                }
            }

            /// Whether it carries the `allow-oom` flag.
            pub fn allow_oom(self) -> bool {
                match self {
                    $(Script::$variant => $oom,)*
                }
            }

            /// Whether it starts by reading Redis' clock (`TIME`) into `now`; the two
            /// that need no time (prune, progress) spare the call.
            pub fn clock(self) -> bool {
                match self {
                    $(Script::$variant => $clock,)*
                }
            }
        }
    };
}

script_list! {
    /// [`enqueue`](Scripts::enqueue): independent jobs.
    Enqueue = "enqueue", allow_oom: false, clock: true;
    /// [`enqueue_graph`](Scripts::enqueue_graph): chains and unique work.
    EnqueueGraph = "enqueue_graph", allow_oom: false, clock: true;
    /// [`progress`](Scripts::progress): a running attempt's progress.
    Progress = "progress", allow_oom: false, clock: false;
    /// [`prune`](Scripts::prune): finished jobs, now.
    Prune = "prune", allow_oom: true, clock: false;
    /// [`claim`](Scripts::claim): due jobs for a worker, and maintenance.
    Claim = "claim", allow_oom: true, clock: true;
    /// [`ack`](Scripts::ack): finished attempts.
    Ack = "ack", allow_oom: true, clock: true;
    /// [`heartbeat`](Scripts::heartbeat): a worker's lease and the jobs it holds.
    Heartbeat = "heartbeat", allow_oom: true, clock: true;
    /// [`release`](Scripts::release): jobs handed back.
    Release = "release", allow_oom: true, clock: true;
    /// [`cancel`](Scripts::cancel): jobs by id.
    Cancel = "cancel", allow_oom: true, clock: true;
    /// [`admin`](Scripts::admin): an operator's retry, run now, delete, purge, pause and
    /// resume. `allow-oom`: deleting and purging are how an operator makes room in a full
    /// Redis, and a retry rewrites a record that exists.
    Admin = "admin", allow_oom: true, clock: true;
}

impl Script {
    /// `FCALL <function> 2 <queue prefix> <queue's jobs key>`, to which a script's command
    /// builder adds its arguments. Every script takes `KEYS[1]`, the queue's prefix
    /// `workq:{<queue>}:`, from which begin() (call.lua) derives the queue's other keys.
    /// `KEYS[2]`, the `jobs` hash, is there for Redis Cluster: the prefix names no key, so
    /// while the queue's slot migrates, Redis would send a call that declares it alone to
    /// the importing node (`ASK`) to run against the keys not moved yet; with a second
    /// declared key the call gets `TRYAGAIN` until the slot has moved, and is re-sent.
    fn fcall(self, keys: &QueueKeys) -> Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(scripts().function(self))
            .arg(2)
            .arg(keys.prefix())
            .arg(keys.jobs());
        cmd
    }
}

impl Scripts {
    /// Loads the library unless Redis has it already (a library of the same name has the
    /// same source). Calls load it themselves when they find it missing, and workers when
    /// they start; producers do not load it when they connect (a restricted producer may
    /// not be allowed `FUNCTION LOAD`, and Redis refuses it at `maxmemory`). A user not
    /// allowed to load it gets an `Error::Config` that says who can.
    pub async fn load<C: ConnectionLike>(&self, con: &mut C) -> Result<()> {
        let loaded: redis::RedisResult<Value> = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(&self.library)
            .query_async(con)
            .await;
        match loaded {
            Ok(_) => Ok(()),
            Err(e) if e.detail().is_some_and(|d| d.contains("already exists")) => Ok(()),
            Err(e) if e.detail().is_some_and(|d| d.contains("unknown command")) => {
                Err(Error::config("server", format!(
                    "workq needs Redis 7.0 or later (its scripts are a Redis function library); this server refused FUNCTION LOAD: {e}"
                )))
            }
            Err(e) if e.code() == Some("NOPERM") => Err(Error::config("function_library", format!(
                "workq's function library {} is not loaded in this Redis, and this user may not load it ({e}): a worker whose user may (`+function|load`, as the README's ACL users) loads it when it starts, or an administrator with `workq functions | redis-cli -x FUNCTION LOAD`",
                self.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a script's command, loading the library first if Redis does not have it, and
    /// returns the reply as Redis gave it (each script's reply type parses it).
    pub async fn call<C: ConnectionLike>(&self, con: &mut C, cmd: &Cmd) -> Result<Value> {
        match cmd.query_async(con).await {
            Err(e)
                if e.detail()
                    .is_some_and(|d| d.starts_with("Function not found")) =>
            {
                self.load(con).await?;
                Ok(cmd.query_async(con).await?)
            }
            other => Ok(other?),
        }
    }
}

/// An enqueue script's refusal of its arguments ("workq: refused: ...") is a bad request,
/// not a Redis failure.
fn refused(e: Error) -> Error {
    match &e {
        Error::Redis(r) => match r.detail() {
            Some(d) if d.starts_with("workq: refused: ") => Error::InvalidRequest(
                crate::InvalidRequest::refused(&d["workq: refused: ".len()..]),
            ),
            _ => e,
        },
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::library::{constants, with_markers};
    use super::*;
    use crate::record::FORMAT_VERSION;

    #[test]
    fn every_script_is_listed_once_and_registered() {
        let lib = scripts();
        let mut names: Vec<&str> = Script::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Script::ALL.len());
        for (i, &s) in Script::ALL.iter().enumerate() {
            assert_eq!(s as usize, i, "Script::ALL is in declaration order");
            let f = lib.function(s);
            assert_eq!(f, format!("{}_{}", lib.library_name(), s.name()));
            assert!(lib.library().contains(&format!("function_name = '{f}'")));
            assert!(!s.source().is_empty());
        }
    }

    #[test]
    fn library_starts_with_the_constants_from_rust() {
        let lib = scripts().library();
        assert!(lib.starts_with(&format!("#!lua name={}\n", scripts().library_name())));
        let head = constants();
        assert!(lib.contains(&head));
        assert!(head.contains(
            "local ENQUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, BLOCKED = 0, 1, 2, 3, 4, 5\n"
        ));
        assert!(head.contains(&format!("local FORMAT_VERSION = {FORMAT_VERSION}\n")));
        // The header markers are numbers in the library, not locals.
        assert!(!lib.contains("HEADER_") && !head.contains("HEADER_"));
        assert!(lib.contains("== 0x95") && with_markers("HEADER_STAMP") == "0xcf");
        assert!(head.contains("local KEY = { jobs = 'jobs', due = 'due', "));
        assert!(head.contains(", held = 'held:', tag = 'tag:' }\n"));
        // The shared sources do not repeat them by hand.
        for (_, lua) in SHARED {
            assert!(!lua.contains("local ENQUEUED"));
            assert!(!lua.contains("local FORMAT_VERSION"));
            assert!(!lua.contains("local KEY ") && !lua.contains("local HEADER_"));
        }
    }

    #[test]
    fn allow_oom_only_on_scripts_that_end_work_or_shrink_data() {
        let lib = scripts().library();
        for &s in Script::ALL {
            let flags = if s.allow_oom() { "'allow-oom'" } else { "" };
            assert!(lib.contains(&format!(
                "function_name = '{}', flags = {{{flags}}}",
                scripts().function(s)
            )));
        }
        assert!(!Script::Enqueue.allow_oom() && !Script::EnqueueGraph.allow_oom());
        assert!(!Script::Progress.allow_oom());
        assert!(Script::Claim.allow_oom() && Script::Ack.allow_oom());
    }

    #[test]
    fn refusals_are_invalid_requests_and_other_errors_pass_through() {
        let refusal = redis::make_extension_error(
            "ERR".into(),
            Some("workq: refused: job 1 (x): id: must be a ULID".into()),
        );
        match refused(Error::Redis(refusal)) {
            Error::InvalidRequest(what) => {
                assert_eq!(what.to_string(), "job 1 (x): id: must be a ULID");
                assert_eq!((what.job(), what.field()), (Some(1), "id"));
            }
            other => panic!("{other:?}"),
        }
        let oom = redis::make_extension_error("OOM".into(), Some("command not allowed".into()));
        assert!(matches!(refused(Error::Redis(oom)), Error::Redis(_)));
        assert!(matches!(refused(Error::protocol("x")), Error::Protocol(_)));
    }

    #[test]
    fn parsing_keeps_the_protocol_message() {
        let e = parsing(Error::protocol("short claim reply"));
        assert!(e.to_string().contains("short claim reply"));
    }
}
