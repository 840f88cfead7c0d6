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

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, ParsingError, Value};

use crate::keys::suffix;
use crate::record::{FORMAT_VERSION, HEADER_BARE, HEADER_EXT, HEADER_STAMP};
use crate::{Error, Millis, QueueKeys, Result, WorkState, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS};

mod ack;
mod cancel;
mod claim;
mod enqueue;
mod enqueue_graph;
mod heartbeat;
mod progress;
mod prune;
mod release;
#[cfg(test)]
mod schema_tests;

pub use crate::model::{CancelStatus, EnqueueStatus, GraphStatus, Retention};
pub use ack::{Ack, AckArgs, AckOutcome, AckReply};
pub use cancel::{CancelArgs, CancelReply};
pub use claim::{ClaimArgs, ClaimReply, ClaimedJob};
pub use enqueue::{EnqueueArgs, EnqueueReply, NewJob};
pub use enqueue_graph::{EnqueueGraphArgs, GraphJob, GraphReply, UniquePolicy};
pub use heartbeat::{HeartbeatArgs, HeartbeatReply, LeaseStatus};
pub use progress::{ProgressArgs, ProgressReply};
pub use prune::{PruneArgs, PruneReply};
pub use release::{ReleaseArgs, ReleaseReply};

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
}

impl Script {
    /// `FCALL <function> 1 <queue prefix>`, to which a script's command builder adds its
    /// arguments. Every script takes the one key `KEYS[1]`, the queue's prefix
    /// `workq:{<queue>}:`, from which begin() (call.lua) derives the queue's other keys.
    fn fcall(self, keys: &QueueKeys) -> Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(scripts().function(self)).arg(1).arg(keys.prefix());
        cmd
    }
}

/// The function library and the names of its functions.
#[derive(Debug)]
pub struct Scripts {
    library: String,
    /// `workq_<hash>`; function `x` is `<name>_x`.
    name: String,
    /// The function of each script, by its position in [`Script::ALL`].
    functions: Vec<String>,
}

/// The scripts, built once per process.
pub fn scripts() -> &'static Scripts {
    static LIBRARY: OnceLock<Scripts> = OnceLock::new();
    LIBRARY.get_or_init(Scripts::build)
}

/// FNV-1a, 64 bits: names the library after its text.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The Lua constants the library starts with, taken from this crate so that Lua never
/// repeats a value by hand: defaults, limits, the state codes, the record format version
/// ([`crate::record`]; its header markers are written into the sources as numbers, see
/// [`HEADER_MARKERS`]), and the key names ([`crate::keys::suffix`]) as the table `KEY`
/// (`KEY.jobs`, ..., `KEY.held` and `KEY.tag` ending in `:`).
fn constants() -> String {
    use crate::limits::*;
    let b = DEFAULT_BACKOFF;
    let mut lua = format!(
        "local DEFAULT_MAX_ATTEMPTS = {}\nlocal DEFAULT_BACKOFF = {{{}, {}, {}}}\nlocal EVENTS_MAXLEN = {}\n\
         local MAX_ATTEMPTS_LIMIT = {}\nlocal MAX_RECORD_BYTES = {}\nlocal MAX_TAG_BYTES = {}\n\
         local MAX_KIND_BYTES = {}\nlocal MAX_AHEAD_MS = {}\nlocal MAX_BATCH = {}\n",
        DEFAULT_MAX_ATTEMPTS,
        match b.policy {
            crate::BackoffPolicy::Linear => 0,
            crate::BackoffPolicy::Exponential => 1,
        },
        b.initial.as_millis(),
        b.max.as_millis(),
        EVENTS_MAXLEN,
        crate::MAX_ATTEMPTS_LIMIT,
        MAX_RECORD_BYTES,
        MAX_TAG_BYTES,
        MAX_KIND_BYTES,
        MAX_AHEAD_MS,
        MAX_BATCH,
    );
    // One statement, as the hand-written line had it, so that the library's local count is the same.
    let names: Vec<&str> = WorkState::ALL.iter().map(|s| s.as_str()).collect();
    let codes: Vec<String> = WorkState::ALL
        .iter()
        .map(|s| s.code().to_string())
        .collect();
    let _ = writeln!(
        lua,
        "local {} = {}\nlocal FORMAT_VERSION = {FORMAT_VERSION}",
        names.join(", "),
        codes.join(", ")
    );
    let keys: Vec<String> = suffix::ALL
        .iter()
        .map(|s| format!("{} = '{s}'", s.trim_end_matches(':')))
        .collect();
    let _ = writeln!(lua, "local KEY = {{ {} }}", keys.join(", "));
    lua
}

/// The record's header markers, which the Lua names and the library carries as numbers:
/// each name is replaced by its value when the library is built, not declared as a local.
/// The claim and ack loops test them per job, and reading a local of the library there
/// (an upvalue) costs measurably more than a constant operand (callgrind: the plain ack
/// about 3 % more instructions per job).
const HEADER_MARKERS: [(&str, u8); 3] = [
    ("HEADER_BARE", HEADER_BARE),
    ("HEADER_EXT", HEADER_EXT),
    ("HEADER_STAMP", HEADER_STAMP),
];

/// `lua` with each header marker's name written as its value.
fn with_markers(lua: &str) -> String {
    HEADER_MARKERS
        .iter()
        .fold(lua.to_owned(), |text, (name, value)| {
            text.replace(name, &format!("{value:#04x}"))
        })
}

/// The library's shared sources, in the order they are concatenated (a source may use
/// what the ones before it define). The library's name hashes all of them.
pub const SHARED: [(&str, &str); 9] = [
    ("keys.lua", include_str!("keys.lua")),
    ("record.lua", include_str!("record.lua")),
    ("writes.lua", include_str!("writes.lua")),
    ("lifecycle.lua", include_str!("lifecycle.lua")),
    ("pruning.lua", include_str!("pruning.lua")),
    ("reaper.lua", include_str!("reaper.lua")),
    ("validate.lua", include_str!("validate.lua")),
    ("kinds.lua", include_str!("kinds.lua")),
    ("call.lua", include_str!("call.lua")),
];

impl Scripts {
    fn build() -> Scripts {
        let mut body = constants();
        for (_, source) in SHARED {
            body.push_str(&with_markers(source));
            body.push('\n');
        }
        // Each script becomes a function of (KEYS, ARGV), so its text reads as it would
        // under EVAL, registered under NAME_<script> with its flags. The name is a hash
        // of all of it, flags included: the same name always means the same library.
        for &script in Script::ALL {
            let flags = if script.allow_oom() {
                "'allow-oom'"
            } else {
                ""
            };
            let _ = write!(
                body,
                "\nredis.register_function{{function_name = 'NAME_{}', flags = {{{flags}}}, callback = function(KEYS, ARGV)\nbegin(KEYS, {})\n{}\nend}}\n",
                script.name(),
                script.clock(),
                with_markers(script.source()),
            );
        }
        let name = format!("workq_{:016x}", fnv1a(&body));
        let library = format!(
            "#!lua name={name}\n{}",
            body.replace(
                "function_name = 'NAME_",
                &format!("function_name = '{name}_")
            )
        );
        let functions = Script::ALL
            .iter()
            .map(|s| format!("{name}_{}", s.name()))
            .collect();
        Scripts {
            library,
            name,
            functions,
        }
    }

    /// The library's source, for `FUNCTION LOAD` (what [`Scripts::load`] sends).
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The library's name; script `x` is the function `<name>_x`.
    pub fn library_name(&self) -> &str {
        &self.name
    }

    /// The name of `script`'s function, `<library name>_<script>`.
    pub fn function(&self, script: Script) -> &str {
        // `Script::ALL` lists the variants in declaration order (`script_list!`).
        self.functions
            .get(script as usize)
            .map_or("", String::as_str)
    }

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

/// A reply parser's [`Error::Protocol`] as `redis::FromRedisValue` reports it.
fn parsing(e: Error) -> ParsingError {
    match e {
        Error::Protocol(what) => what.into(),
        other => other.to_string().into(),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::protocol(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(Error::protocol(format!("expected an array, got {other:?}"))),
    }
}

fn ints(v: Value) -> Result<Vec<i64>> {
    array(v)?.iter().map(int).collect()
}

fn opt_ms(v: &Value) -> Result<Option<Millis>> {
    let i = int(v)?;
    Ok(u64::try_from(i).ok())
}

fn bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        other => Err(Error::protocol(format!("expected a string, got {other:?}"))),
    }
}

/// Helpers for the scripts' unit tests, which need no Redis.
#[cfg(test)]
mod test_support {
    use redis::{Arg, Cmd, Value};

    use crate::QueueKeys;

    /// The queue the tests' commands are for.
    pub(super) fn keys() -> QueueKeys {
        QueueKeys::new("q").expect("a valid queue name")
    }

    /// A command's arguments, as bytes.
    pub(super) fn raw_args(cmd: &Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .map(|a| match a {
                Arg::Simple(b) => b.to_vec(),
                _ => b"<not a plain argument>".to_vec(),
            })
            .collect()
    }

    /// A command's arguments as text (bytes that are not UTF-8 written lossily).
    pub(super) fn args(cmd: &Cmd) -> Vec<String> {
        raw_args(cmd)
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// The arguments every script's command starts with.
    pub(super) fn head(script: super::Script) -> Vec<String> {
        vec![
            "FCALL".to_owned(),
            super::scripts().function(script).to_owned(),
            "1".to_owned(),
            "workq:{q}:".to_owned(),
        ]
    }

    /// `head(script)` followed by `rest`.
    pub(super) fn expected(script: super::Script, rest: &[&str]) -> Vec<String> {
        let mut all = head(script);
        all.extend(rest.iter().map(|s| (*s).to_owned()));
        all
    }

    pub(super) fn int_array(v: &[i64]) -> Value {
        Value::Array(v.iter().map(|&i| Value::Int(i)).collect())
    }

    pub(super) fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    /// True when `r` is an `Error::Protocol`.
    pub(super) fn is_protocol<T>(r: &crate::Result<T>) -> bool {
        matches!(r, Err(crate::Error::Protocol(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
