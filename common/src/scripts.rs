//! The Lua scripts, one per state change, and typed wrappers around them.
//!
//! The scripts are the functions of one Redis function library (`FUNCTION LOAD`, Redis
//! 7.0 or later): `prelude.lua` (shared helpers), preceded by constants taken from this
//! crate so that defaults such as the backoff live in one place, then each script as one
//! function. Loaded once, the helpers are built once, where a script sent with `EVALSHA`
//! would build them all again on every call. Each call touches one queue (one Cluster
//! slot) and handles a whole batch.
//!
//! The library's name carries a hash of the whole library, so that processes of different
//! versions sharing one Redis each call their own functions. A call that finds its
//! function missing (a new Redis, a restart without persistence, `FUNCTION FLUSH`) loads
//! the library and tries once more.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Value};

use crate::{Error, Millis, QueueKeys, Result, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS};

/// Most jobs a single claim call hands out (the script caps it too).
pub const MAX_CLAIM: usize = 1000;

/// Entries kept in a queue's events stream (approximately: `XADD MAXLEN ~`).
pub const EVENTS_MAXLEN: usize = 10_000;

/// How long finished jobs stay queryable before they are pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// For SUCCEEDED jobs. Zero deletes them as they finish.
    pub succeeded: Duration,
    /// For FAILED and CANCELLED jobs.
    pub failed: Duration,
}

impl Default for Retention {
    /// One hour for successes, seven days for failures and cancellations.
    fn default() -> Self {
        Retention {
            succeeded: Duration::from_secs(3600),
            failed: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The scripts: (name, source, may run when Redis is out of memory). Those that end work
/// or shrink the data set carry `allow-oom`, so that a Redis at `maxmemory` keeps draining
/// while new work (enqueue, progress) is refused with Redis' OOM error.
const SCRIPTS: [(&str, &str, bool); 9] = [
    ("enqueue", include_str!("scripts/enqueue.lua"), false),
    (
        "enqueue_graph",
        include_str!("scripts/enqueue_graph.lua"),
        false,
    ),
    ("progress", include_str!("scripts/progress.lua"), false),
    ("prune", include_str!("scripts/prune.lua"), true),
    ("claim", include_str!("scripts/claim.lua"), true),
    ("ack", include_str!("scripts/ack.lua"), true),
    ("heartbeat", include_str!("scripts/heartbeat.lua"), true),
    ("release", include_str!("scripts/release.lua"), true),
    ("cancel", include_str!("scripts/cancel.lua"), true),
];

/// The function library and the names of its functions.
#[derive(Debug)]
pub struct Scripts {
    library: String,
    /// `workq_<hash>`; function `x` is `<name>_x`.
    name: String,
    enqueue: String,
    enqueue_graph: String,
    progress: String,
    prune: String,
    claim: String,
    ack: String,
    heartbeat: String,
    release: String,
    cancel: String,
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

impl Scripts {
    fn build() -> Scripts {
        let b = DEFAULT_BACKOFF;
        use crate::limits::*;
        let mut body = format!(
            "local DEFAULT_MAX_ATTEMPTS = {}\nlocal DEFAULT_BACKOFF = {{{}, {}, {}}}\nlocal EVENTS_MAXLEN = {}\n\
             local MAX_ATTEMPTS_LIMIT = {}\nlocal MAX_RECORD_BYTES = {}\nlocal MAX_TAG_BYTES = {}\n\
             local MAX_KIND_BYTES = {}\nlocal MAX_AHEAD_MS = {}\nlocal MAX_BATCH = {}\n{}\n{}\n{}\n",
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
            include_str!("scripts/prelude.lua"),
            include_str!("scripts/validate.lua"),
            include_str!("scripts/kinds.lua"),
        );
        // Each script becomes a function of (KEYS, ARGV), so its text reads as it would
        // under EVAL, registered under NAME_<script> with its flags. The name is a hash
        // of all of it, flags included: the same name always means the same library.
        for (script, source, allow_oom) in SCRIPTS {
            let flags = if allow_oom { "'allow-oom'" } else { "" };
            body.push_str(&format!(
                "\nredis.register_function{{function_name = 'NAME_{script}', flags = {{{flags}}}, callback = function(KEYS, ARGV)\nbegin(KEYS)\n{source}\nend}}\n"
            ));
        }
        let name = format!("workq_{:016x}", fnv1a(&body));
        let library = format!(
            "#!lua name={name}\n{}",
            body.replace(
                "function_name = 'NAME_",
                &format!("function_name = '{name}_")
            )
        );
        let f = |script: &str| format!("{name}_{script}");
        Scripts {
            enqueue: f("enqueue"),
            enqueue_graph: f("enqueue_graph"),
            progress: f("progress"),
            prune: f("prune"),
            claim: f("claim"),
            ack: f("ack"),
            heartbeat: f("heartbeat"),
            release: f("release"),
            cancel: f("cancel"),
            library,
            name,
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
                Err(Error::Config(format!(
                    "workq needs Redis 7.0 or later (its scripts are a Redis function library); this server refused FUNCTION LOAD: {e}"
                )))
            }
            Err(e) if e.code() == Some("NOPERM") => Err(Error::Config(format!(
                "workq's function library {} is not loaded in this Redis, and this user may not load it ({e}): a worker whose user may (`+function|load`, as the README's ACL users) loads it when it starts, or an administrator with `workq functions | redis-cli -x FUNCTION LOAD`",
                self.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// `FCALL <function> 1 <queue prefix>`, to which the call adds its arguments.
    fn fcall(function: &str, keys: &QueueKeys) -> Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function).arg(1).arg(keys.prefix());
        cmd
    }

    /// Runs a call, loading the library first if Redis does not have it.
    async fn run<T: FromRedisValue, C: ConnectionLike>(&self, con: &mut C, cmd: &Cmd) -> Result<T> {
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

/// One job for [`Scripts::enqueue`].
#[derive(Debug)]
pub struct NewJob<'a> {
    /// Its id.
    pub id: &'a str,
    /// Due this long after Redis' now (ignored when `at_ms` is set).
    pub delay_ms: Millis,
    /// Due at this absolute time; 0 to use the delay.
    pub at_ms: Millis,
    /// The record from [`crate::record::encode_new`] (its tags, in the record, are what
    /// the script indexes).
    pub record: &'a [u8],
}

impl NewJob<'_> {
    /// Due time as the scripts take it: one number for both forms, positive for an
    /// absolute time, zero or negative for a delay (absolute times are at least 1 ms after
    /// the epoch).
    pub fn due(&self) -> i64 {
        if self.at_ms > 0 {
            i64::try_from(self.at_ms).unwrap_or(i64::MAX)
        } else {
            -i64::try_from(self.delay_ms).unwrap_or(i64::MAX)
        }
    }
}

/// One job of a graph for [`Scripts::enqueue_graph`].
#[derive(Debug)]
pub struct GraphJob<'a> {
    /// The job (its record carries its edges in the graph).
    pub job: NewJob<'a>,
    /// The lane it waits in.
    pub lane: &'a str,
}

/// What [`Scripts::enqueue_graph`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphStatus {
    /// The graph was stored; the ids are its jobs.
    Enqueued,
    /// Unique work under the name was unfinished and the policy kept it; the ids are its.
    Kept,
    /// The graph had been stored before (a retry); nothing changed.
    Existed,
    /// The unique periodic work was updated in place; the id is its.
    Updated,
}

/// What enqueue did with one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueStatus {
    /// Stored, ENQUEUED (the same name as [`GraphStatus::Enqueued`]).
    Enqueued,
    /// A job with this id exists already; nothing changed.
    Existed,
}

/// What claim returned.
#[derive(Debug)]
pub struct ClaimReply {
    /// Redis' clock when the script ran.
    pub now_ms: Millis,
    /// When to look again: the next due time, or the end of another worker's lease
    /// (whose jobs are taken over then), whichever is first.
    pub next_due_ms: Option<Millis>,
    /// The due time of the most overdue job claimed (none when nothing was claimed).
    pub oldest_due_ms: Option<Millis>,
    /// Claimed jobs (already marked RUNNING with their new attempt number).
    pub jobs: Vec<ClaimedJob>,
}

/// One claimed job.
#[derive(Debug)]
pub struct ClaimedJob {
    /// Its id.
    pub id: String,
    /// Its record.
    pub record: Vec<u8>,
}

/// Arguments of [`Scripts::claim`].
#[derive(Debug)]
pub struct ClaimArgs<'a> {
    /// Most jobs to claim (0 to only do maintenance).
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
    /// Who claims (stored with the job while it runs).
    pub worker: &'a str,
    /// Retention for jobs the reaper fails.
    pub keep_failed: Duration,
    /// Most expired leases and prunable jobs handled per call.
    pub maintenance_limit: usize,
    /// The worker's labels, sorted, comma-separated ("" for none).
    pub labels: &'a str,
    /// Record the worker's presence (for stats) with this call; workers do it every few
    /// seconds rather than on every claim.
    pub presence: bool,
    /// The kinds the worker runs, sorted, comma-separated ("" claims any kind): a due job
    /// of another kind is passed on to its kind lane instead of being claimed.
    pub kinds: &'a str,
    /// Redis is near its `maxmemory`: prune the oldest finished jobs ahead of their
    /// retention.
    pub memory_pressure: bool,
}

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

/// One finished attempt.
#[derive(Clone, Debug)]
pub struct Ack {
    /// The job's id.
    pub id: std::sync::Arc<str>,
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

/// Arguments of [`Scripts::heartbeat`].
#[derive(Debug)]
pub struct HeartbeatArgs<'a> {
    /// The worker.
    pub worker: &'a str,
    /// Lease length.
    pub lease: Duration,
    /// Redis time up to which the worker has seen every claim reply: jobs Redis says it
    /// holds, claimed by then but not listed in `held`, are handed back (their claim reply
    /// never reached it).
    pub known_until: Millis,
    /// Retention for jobs that end FAILED on the way.
    pub keep_failed: Duration,
    /// The worker's presence as claims record it, `<labels>|<kinds>` (both sorted,
    /// comma-separated), for stats.
    pub labels: &'a str,
    /// The (id, token) pairs it holds.
    pub held: &'a [(String, u32)],
}

/// Heartbeat verdict for one held job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Still held (the worker's lease was extended).
    Extended,
    /// Held, and cancellation was requested: stop the job.
    CancelRequested,
    /// The job is no longer ours (re-claimed after our lease ran out, or gone): abandon it.
    Lost,
}

/// What cancel did with one id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelStatus {
    /// No such job in this queue.
    NotFound,
    /// It was waiting and is now CANCELLED.
    Cancelled,
    /// It is running; its worker will stop it at the next heartbeat.
    Requested,
    /// It had already finished.
    AlreadyFinished,
}

/// An enqueue script's refusal of its arguments ("workq: refused: ...") is a bad request,
/// not a Redis failure.
fn refused(e: Error) -> Error {
    match &e {
        Error::Redis(r) => match r.detail() {
            Some(d) if d.starts_with("workq: refused: ") => {
                Error::InvalidRequest(d["workq: refused: ".len()..].to_owned())
            }
            _ => e,
        },
        _ => e,
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

impl Scripts {
    /// Stores new independent jobs that wait in `lane` (idempotent by id) and wakes idle
    /// workers.
    pub async fn enqueue<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        lane: &str,
        jobs: &[NewJob<'_>],
    ) -> Result<(Millis, Vec<EnqueueStatus>)> {
        let mut inv = Self::fcall(&self.enqueue, keys);
        inv.arg(jobs.len()).arg(lane);
        for j in jobs {
            // One number for both forms: positive is an absolute time, zero or negative a
            // delay (absolute times are at least 1 ms after the epoch).
            inv.arg(j.id).arg(j.due()).arg(j.record);
        }
        let reply = ints(self.run::<Value, _>(con, &inv).await.map_err(refused)?)?;
        let (now, rest) = reply
            .split_first()
            .ok_or_else(|| Error::protocol("empty enqueue reply"))?;
        if rest.len() != jobs.len() {
            return Err(Error::protocol(format!(
                "enqueue answered for {} jobs of {}",
                rest.len(),
                jobs.len()
            )));
        }
        let statuses = rest
            .iter()
            .map(|code| match code {
                1 => Ok(EnqueueStatus::Enqueued),
                0 => Ok(EnqueueStatus::Existed),
                other => Err(Error::protocol(format!("enqueue status {other}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((u64::try_from(*now).unwrap_or(0), statuses))
    }

    /// Claims up to `limit` due jobs (including jobs whose lease ran out, which count a lost
    /// attempt), and prunes finished jobs past retention.
    pub async fn claim<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        args: &ClaimArgs<'_>,
    ) -> Result<ClaimReply> {
        let reply: Value = self
            .run(
                con,
                Self::fcall(&self.claim, keys)
                    .arg(args.limit.min(MAX_CLAIM))
                    .arg(ms(args.lease).max(1))
                    .arg(args.worker)
                    .arg(ms(args.keep_failed))
                    .arg(args.maintenance_limit)
                    .arg(args.labels)
                    .arg(u8::from(args.presence))
                    .arg(args.kinds)
                    .arg(u8::from(args.memory_pressure)),
            )
            .await?;
        let mut items = array(reply)?.into_iter();
        let mut head = || {
            items
                .next()
                .ok_or_else(|| Error::protocol("short claim reply"))
        };
        let now_ms = opt_ms(&head()?)?.unwrap_or(0);
        let next_due_ms = opt_ms(&head()?)?;
        let oldest_due_ms = opt_ms(&head()?)?;
        let mut jobs = Vec::with_capacity(items.len() / 2);
        while let Some(id) = items.next() {
            let Some(record) = items.next() else {
                return Err(Error::protocol("claim reply has an id without a record"));
            };
            // The script claims only ids that are ULIDs; should one not be text, it is
            // left out here rather than failing its batch-mates' claim with it.
            match String::from_utf8(bytes(id)?) {
                Ok(id) => jobs.push(ClaimedJob {
                    id,
                    record: bytes(record)?,
                }),
                Err(e) => tracing::error!(
                    id = %String::from_utf8_lossy(e.as_bytes()),
                    "claimed a job whose id is not UTF-8; left to its lease"
                ),
            }
        }
        Ok(ClaimReply {
            now_ms,
            next_due_ms,
            oldest_due_ms,
            jobs,
        })
    }

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
        let mut inv = Self::fcall(&self.ack, keys);
        inv.arg(worker)
            .arg(ms(retention.succeeded))
            .arg(ms(retention.failed))
            .arg(acks.len());
        let mut result = Vec::new();
        for a in acks {
            // A plain success (the common case) is an empty string; anything else is
            // MessagePack [code, message, output].
            result.clear();
            if a.outcome != AckOutcome::Succeeded
                || !a.message.is_empty()
                || !a.output.is_empty()
                || a.next_runs != (0, 0)
            {
                let code = match a.outcome {
                    AckOutcome::Succeeded => "S",
                    AckOutcome::Failed => "F",
                    AckOutcome::Retry => "R",
                };
                let enc = |e: rmp::encode::ValueWriteError| Error::Record(e.to_string());
                rmp::encode::write_array_len(&mut result, 5).map_err(enc)?;
                rmp::encode::write_str(&mut result, code).map_err(enc)?;
                rmp::encode::write_str(&mut result, &a.message).map_err(enc)?;
                // Redis' cmsgpack reads no `bin` type: the bytes go under a `str` header
                // (a Lua string holds any bytes).
                rmp::encode::write_str_len(&mut result, a.output.len() as u32).map_err(enc)?;
                result.extend_from_slice(&a.output);
                rmp::encode::write_uint(&mut result, a.next_runs.0).map_err(enc)?;
                rmp::encode::write_uint(&mut result, a.next_runs.1).map_err(enc)?;
            }
            inv.arg(&*a.id).arg(a.token).arg(result.as_slice());
        }
        Ok(ints(self.run::<Value, _>(con, &inv).await?)?
            .into_iter()
            .map(|c| c == 1)
            .collect())
    }

    /// Stores a graph of jobs (a chain), optionally as unique work `name` under `policy`
    /// (see enqueue_graph.lua).
    pub async fn enqueue_graph<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        name: &str,
        policy: &str,
        keep_failed: Duration,
        jobs: &[GraphJob<'_>],
    ) -> Result<(Millis, GraphStatus, Vec<String>)> {
        let mut inv = Self::fcall(&self.enqueue_graph, keys);
        inv.arg(name)
            .arg(policy)
            .arg(ms(keep_failed))
            .arg(jobs.len());
        for g in jobs {
            // No tags in ARGV: the script indexes those in the record.
            inv.arg(g.job.id)
                .arg(g.job.due())
                .arg(g.job.record)
                .arg(g.lane)
                .arg(0);
        }
        let mut items = array(self.run::<Value, _>(con, &inv).await.map_err(refused)?)?.into_iter();
        let mut head = || {
            items
                .next()
                .ok_or_else(|| Error::protocol("short enqueue reply"))
        };
        let now = opt_ms(&head()?)?.unwrap_or(0);
        let status = match int(&head()?)? {
            1 => GraphStatus::Enqueued,
            0 => GraphStatus::Kept,
            2 => GraphStatus::Existed,
            3 => GraphStatus::Updated,
            other => return Err(Error::protocol(format!("enqueue status {other}"))),
        };
        let ids = items
            .map(|v| {
                String::from_utf8(bytes(v)?).map_err(|_| Error::protocol("job id is not UTF-8"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((now, status, ids))
    }

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
        let r: i64 = self
            .run(
                con,
                Self::fcall(&self.progress, keys)
                    .arg(id)
                    .arg(token)
                    .arg(data),
            )
            .await?;
        Ok(r == 1)
    }

    /// Prunes up to `limit` finished jobs now, whatever their retention; returns how many.
    pub async fn prune<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        limit: usize,
    ) -> Result<usize> {
        let r: i64 = self
            .run(con, Self::fcall(&self.prune, keys).arg(limit.max(1)))
            .await?;
        Ok(usize::try_from(r).unwrap_or(0))
    }

    /// Extends a worker's lease and checks the jobs it believes it holds.
    pub async fn heartbeat<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        args: &HeartbeatArgs<'_>,
    ) -> Result<Vec<LeaseStatus>> {
        let mut inv = Self::fcall(&self.heartbeat, keys);
        inv.arg(args.worker)
            .arg(ms(args.lease).max(1))
            .arg(args.known_until)
            .arg(ms(args.keep_failed))
            .arg(args.labels);
        let held = args.held;
        for (id, token) in held {
            inv.arg(id.as_str()).arg(*token);
        }
        Ok(ints(self.run::<Value, _>(con, &inv).await?)?
            .into_iter()
            .map(|c| match c {
                1 => LeaseStatus::Extended,
                2 => LeaseStatus::CancelRequested,
                _ => LeaseStatus::Lost,
            })
            .collect())
    }

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
        let mut inv = Self::fcall(&self.release, keys);
        inv.arg(worker).arg(ms(keep_failed)).arg(reason);
        for (id, token) in held {
            inv.arg(id.as_str()).arg(*token);
        }
        Ok(ints(self.run::<Value, _>(con, &inv).await?)?
            .into_iter()
            .map(|c| c == 1)
            .collect())
    }

    /// Cancels jobs by id.
    pub async fn cancel<C: ConnectionLike>(
        &self,
        con: &mut C,
        keys: &QueueKeys,
        keep_failed: Duration,
        reason: &str,
        ids: &[String],
    ) -> Result<Vec<CancelStatus>> {
        let mut inv = Self::fcall(&self.cancel, keys);
        inv.arg(ms(keep_failed)).arg(reason);
        for id in ids {
            inv.arg(id.as_str());
        }
        Ok(ints(self.run::<Value, _>(con, &inv).await?)?
            .into_iter()
            .map(|c| match c {
                1 => CancelStatus::Cancelled,
                2 => CancelStatus::Requested,
                3 => CancelStatus::AlreadyFinished,
                _ => CancelStatus::NotFound,
            })
            .collect())
    }
}
