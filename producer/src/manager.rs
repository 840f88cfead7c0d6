use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use deadpool_redis::Pool;
use futures_util::stream::{self, StreamExt};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use workq_common::keys::{QUEUES, WATCHING};
use workq_common::record::{self, Record};
use workq_common::scripts::{scripts, CancelStatus, EnqueueStatus, NewJob, Retention};
use workq_common::{Error, QueueKeys, RedisConfig, Result, WorkId, WorkInfo, WorkState};

use crate::watch::{QueueWatch, WATCH_TTL};
use crate::OneTimeWorkRequest;

/// Jobs per enqueue script call.
const BATCH_JOBS: usize = 250;
/// Bytes of records per enqueue script call (a batch closes at whichever comes first).
const BATCH_BYTES: usize = 4 << 20;
/// Enqueue calls in flight at once on one multiplexed connection.
const BATCHES_IN_FLIGHT: usize = 4;
/// Ids per query or cancel call.
const ID_CHUNK: usize = 500;

/// The result of enqueueing one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The work's id.
    pub id: WorkId,
    /// [`EnqueueStatus::Existed`] when a job with this id was already in the request's
    /// queue: nothing changed, which makes retrying an enqueue safe (the check is per
    /// queue: retry with the same request).
    pub status: EnqueueStatus,
}

/// Totals of a cancel by tag or by unique name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CancelSummary {
    /// Waiting jobs now CANCELLED (jobs cancelled with an ancestor in the same call too).
    pub cancelled: usize,
    /// Running jobs whose workers were asked to stop.
    pub requested: usize,
    /// Jobs that had finished before the call.
    pub already_finished: usize,
}

impl std::ops::AddAssign for CancelSummary {
    fn add_assign(&mut self, o: Self) {
        self.cancelled += o.cancelled;
        self.requested += o.requested;
        self.already_finished += o.already_finished;
    }
}

/// A queue's size and counters, for dashboards and the demo's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// ENQUEUED jobs (due or not), in every lane.
    pub enqueued: u64,
    /// RUNNING jobs.
    pub running: u64,
    /// BLOCKED jobs (waiting for parents in a chain).
    pub blocked: u64,
    /// Finished jobs still retained.
    pub finished: u64,
    /// ENQUEUED jobs per lane: "" plain, "x" expedited, "@labels" needing labels,
    /// "x@labels", and any of these followed by "#kind" (jobs passed on by a worker that
    /// does not run their kind).
    pub lanes: Vec<(String, u64)>,
    /// Workers seen looking for work in the last minute, with their labels.
    pub workers: Vec<(String, Vec<String>)>,
    /// ENQUEUED jobs that need labels no worker seen in the last minute has, or whose
    /// kind none of them runs: they wait until such a worker comes.
    pub unsatisfiable: u64,
    /// Cumulative counters: enqueued, claimed, succeeded, failed, cancelled, retried,
    /// lease_expired, released, pruned, pruned_early (ahead of retention, under memory
    /// pressure), kind_parked (passed on to a kind lane), periodic_runs.
    pub counters: HashMap<String, u64>,
}

/// Settings for [`WorkManager`].
#[derive(Clone, Debug)]
#[must_use = "call connect() to get the WorkManager"]
pub struct WorkManagerBuilder {
    redis: RedisConfig,
    max_payload: usize,
    retention: Retention,
}

impl WorkManagerBuilder {
    /// Connections in the pool (default 8).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.redis.pool_size = n;
        self
    }

    /// How long to wait for any Redis reply (default 5 s).
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.redis.response_timeout = t;
        self
    }

    /// Largest encoded input accepted (default 512 KiB).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How long jobs this client cancels stay queryable (default: 7 days).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Builds the pool and checks that Redis answers and is 7.0 or later (an
    /// `Error::Config` for an older one, which has no functions). It loads nothing: calls
    /// use workq's function library, and load it only if Redis does not have it, so a
    /// producer needs no more than `FCALL` and the commands its calls use (see the README's
    /// ACL rules), and connects to a Redis at `maxmemory`, which refuses `FUNCTION LOAD`.
    /// Warns (in the log) when Redis would evict keys or has AOF off, if this user may
    /// read `INFO`.
    pub async fn connect(self) -> Result<WorkManager> {
        if self.max_payload > workq_common::limits::MAX_INPUT_BYTES {
            return Err(Error::Config(format!(
                "max_payload {} is over the largest input the enqueue scripts store ({} bytes)",
                self.max_payload,
                workq_common::limits::MAX_INPUT_BYTES
            )));
        }
        let pool = workq_common::connect(&self.redis)?;
        let mut con = pool.get().await?;
        let _: () = redis::cmd("PING").query_async(&mut *con).await?;
        workq_common::server::check_version(&mut *con).await?;
        workq_common::server::warn_about_durability(&mut *con).await;
        Ok(WorkManager {
            inner: Arc::new(Inner {
                pool,
                cached: Mutex::new(Some(con)),
                max_payload: self.max_payload,
                retention: self.retention,
                registered: Mutex::new(HashSet::new()),
            }),
        })
    }
}

/// The producer's handle: enqueue, query and cancel work. Cheap to clone; clones share
/// one connection pool.
#[derive(Clone, Debug)]
pub struct WorkManager {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// A pooled connection kept checked out: it multiplexes every call of this client, and
    /// keeping it skips the pool's health-check PING on each call. Dropped after a
    /// connection error, so the next call takes a fresh one from the pool.
    cached: Mutex<Option<deadpool_redis::Connection>>,
    max_payload: usize,
    retention: Retention,
    /// Queues this process has already added to `workq:queues`.
    registered: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("pool", &self.pool.status())
            .field("max_payload", &self.max_payload)
            .field("retention", &self.retention)
            .finish()
    }
}

/// Default largest encoded input.
pub const DEFAULT_MAX_PAYLOAD: usize = 512 * 1024;

impl WorkManager {
    /// Connects with default settings. `url` is `redis://[user:password@]host:port[/db]`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Starts a configured connection.
    pub fn builder(url: &str) -> WorkManagerBuilder {
        WorkManagerBuilder {
            redis: RedisConfig::new(url),
            max_payload: DEFAULT_MAX_PAYLOAD,
            retention: Retention::default(),
        }
    }

    /// A manager that has not connected (its pool connects on first use), for unit tests
    /// of what is built before any call.
    #[cfg(test)]
    pub(crate) fn unconnected(max_payload: usize) -> WorkManager {
        let pool =
            workq_common::connect(&RedisConfig::new("redis://127.0.0.1:1")).expect("pool config");
        WorkManager {
            inner: Arc::new(Inner {
                pool,
                cached: Mutex::new(None),
                max_payload,
                retention: Retention::default(),
                registered: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Largest encoded input accepted.
    pub(crate) fn max_payload(&self) -> usize {
        self.inner.max_payload
    }

    /// Retention of jobs this client fails or cancels.
    pub(crate) fn keep_failed(&self) -> Duration {
        self.inner.retention.failed
    }

    /// The connection pool, for callers that need raw Redis access (tools, tests).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// A connection for one call (a clone of the cached multiplexed connection).
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(c) = self.cached().as_ref() {
            return Ok((**c).clone());
        }
        let obj = self.inner.pool.get().await?;
        let con = (*obj).clone();
        *self.cached() = Some(obj);
        Ok(con)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<deadpool_redis::Connection>> {
        self.inner.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passes `r` through; after a connection error, forgets the cached connection.
    pub(crate) fn checked<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_transient() {
                self.cached().take();
            }
        }
        r
    }

    /// Enqueues one request.
    pub async fn enqueue(&self, req: OneTimeWorkRequest) -> Result<Enqueued> {
        let mut out = self.enqueue_many(vec![req]).await?;
        out.pop()
            .ok_or_else(|| Error::Protocol("enqueue returned no result".into()))
    }

    /// Enqueues many requests, up to 1,000 per round trip, and returns their results in
    /// order. Every request is checked before anything is sent. The requests go in
    /// batches (one script call each, all or nothing): if some batches fail and others are
    /// stored, the error is [`Error::PartlyEnqueued`], which says which requests were
    /// stored. Calling again with the same requests (same ids) is always safe and stores
    /// only what is missing.
    pub async fn enqueue_many(
        &self,
        reqs: impl IntoIterator<Item = OneTimeWorkRequest>,
    ) -> Result<Vec<Enqueued>> {
        let r = self.try_enqueue_many(reqs.into_iter().collect()).await;
        self.checked(r)
    }

    async fn try_enqueue_many(&self, reqs: Vec<OneTimeWorkRequest>) -> Result<Vec<Enqueued>> {
        for r in &reqs {
            let size = r.input.len();
            if size > self.inner.max_payload {
                return Err(Error::PayloadTooLarge {
                    what: format!("input of job {} (kind '{}')", r.id, r.kind),
                    size,
                    limit: self.inner.max_payload,
                });
            }
        }

        // Batches never mix queues (a script call touches one queue, one Cluster slot) or
        // lanes, and never repeat an id (a repeat is reported as existing, like any other).
        let lanes: Vec<String> = reqs.iter().map(|r| r.lane()).collect();
        let mut batches: Vec<(QueueKeys, String, Vec<usize>)> = Vec::new();
        // (queue, lane) -> (batch, bytes)
        let mut open: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
        let mut seen: HashSet<WorkId> = HashSet::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            if !seen.insert(r.id) {
                continue;
            }
            let len = r.input.len() + r.kind.len() + 32;
            let key = (r.queue.name(), lanes[i].as_str());
            let slot = open.get(&key).copied().filter(|&(b, bytes)| {
                batches[b].2.len() < BATCH_JOBS && bytes + len <= BATCH_BYTES
            });
            match slot {
                Some((b, bytes)) => {
                    batches[b].2.push(i);
                    open.insert(key, (b, bytes + len));
                }
                None => {
                    batches.push((r.queue.clone(), lanes[i].clone(), vec![i]));
                    open.insert(key, (batches.len() - 1, len));
                }
            }
        }
        for (keys, _, _) in &batches {
            self.register_queue(keys).await?;
        }

        let shared = self.connection().await?;
        let mut statuses: Vec<Option<EnqueueStatus>> = vec![None; reqs.len()];
        // A request repeated in the call is reported as existing, like any other repeat.
        let mut first_of: HashMap<WorkId, usize> = HashMap::with_capacity(reqs.len());
        // Each batch is encoded only when its turn comes, so Redis starts on the first
        // while the next ones are being prepared.
        let results: Vec<Result<(Vec<usize>, Vec<EnqueueStatus>)>> = stream::iter(batches)
            .map(|(keys, lane, idx)| {
                let mut con = shared.clone();
                let reqs = &reqs;
                async move {
                    let ids: Vec<String> = idx.iter().map(|&i| reqs[i].id.to_string()).collect();
                    let records = idx
                        .iter()
                        .map(|&i| {
                            let r = &reqs[i];
                            record::encode_new(
                                WorkState::Enqueued,
                                &r.kind,
                                &r.ext,
                                r.input.as_bytes(),
                            )
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let jobs: Vec<NewJob<'_>> = idx
                        .iter()
                        .zip(ids.iter().zip(&records))
                        .map(|(&i, (id, record))| NewJob {
                            id,
                            delay_ms: u64::try_from(reqs[i].delay.as_millis()).unwrap_or(u64::MAX),
                            at_ms: reqs[i]
                                .at
                                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                                .map_or(0, |d| {
                                    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
                                }),
                            record,
                        })
                        .collect();
                    let (_, st) = scripts().enqueue(&mut con, &keys, &lane, &jobs).await?;
                    Ok::<_, Error>((idx, st))
                }
            })
            .buffered(BATCHES_IN_FLIGHT)
            .collect()
            .await;
        // Every batch ran (each is one script call, all or nothing); any that failed leaves
        // its requests unstored, or unknown when the reply was lost.
        let mut failure = None;
        for r in results {
            match r {
                Ok((idx, st)) => {
                    for (i, s) in idx.into_iter().zip(st) {
                        statuses[i] = Some(s);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        for (i, r) in reqs.iter().enumerate() {
            match first_of.get(&r.id) {
                Some(&f) => statuses[i] = statuses[f].map(|_| EnqueueStatus::Existed),
                None => {
                    first_of.insert(r.id, i);
                }
            }
        }
        if let Some(source) = failure {
            if statuses.iter().all(Option::is_none) {
                return Err(source);
            }
            return Err(Error::PartlyEnqueued {
                stored: statuses.iter().filter(|s| s.is_some()).count(),
                first_not_stored: statuses.iter().position(Option::is_none).unwrap_or(0),
                statuses,
                source: Box::new(source),
            });
        }
        Ok(reqs
            .iter()
            .zip(statuses)
            .map(|(r, status)| Enqueued {
                id: r.id,
                status: status.unwrap_or(EnqueueStatus::Existed),
            })
            .collect())
    }

    /// Adds the queue to `workq:queues`, once per process. When a watch follows every
    /// queue (`workq:watching`), the queue's own watch marker is set before anything is
    /// enqueued there, so that a queue new to the watch has its first events written.
    pub(crate) async fn register_queue(&self, keys: &QueueKeys) -> Result<()> {
        let known = self
            .inner
            .registered
            .lock()
            .map(|set| set.contains(keys.name()))
            .unwrap_or(false);
        if !known {
            let r = async {
                let mut con = self.connection().await?;
                let ((), watching): ((), bool) = redis::pipe()
                    .sadd(QUEUES, keys.name())
                    .exists(WATCHING)
                    .query_async(&mut con)
                    .await?;
                if watching {
                    let ttl = u64::try_from(WATCH_TTL.as_millis()).unwrap_or(u64::MAX);
                    let _: () = con.pset_ex(keys.watch(), 1, ttl).await?;
                }
                Ok::<_, Error>(())
            }
            .await;
            self.checked(r)?;
            if let Ok(mut set) = self.inner.registered.lock() {
                set.insert(keys.name().to_owned());
            }
        }
        Ok(())
    }

    /// Names of the queues in use.
    pub async fn queues(&self) -> Result<Vec<String>> {
        let mut con = self.connection().await?;
        let names: Result<Vec<String>> = con.smembers(QUEUES).await.map_err(Into::into);
        let mut names = self.checked(names)?;
        names.sort();
        Ok(names)
    }

    /// The work with this id, in whichever queue it lives.
    pub async fn get_work_info(&self, id: WorkId) -> Result<Option<WorkInfo>> {
        Ok(self.get_work_infos(&[id]).await?.pop().flatten())
    }

    /// Infos for many ids, in order (`None` for ids not found, or pruned after retention).
    /// A record that cannot be decoded is an error when its id is asked for alone; among
    /// others it is left out (`None`, with a warning in the log) so that it hides nothing.
    pub async fn get_work_infos(&self, ids: &[WorkId]) -> Result<Vec<Option<WorkInfo>>> {
        let r = self.try_get_work_infos(ids).await;
        self.checked(r)
    }

    async fn try_get_work_infos(&self, ids: &[WorkId]) -> Result<Vec<Option<WorkInfo>>> {
        let queues = self.queue_keys().await?;
        let mut out = vec![None; ids.len()];
        let mut con = self.connection().await?;
        for (c, chunk) in ids.chunks(ID_CHUNK).enumerate() {
            let names: Vec<String> = chunk.iter().map(WorkId::to_string).collect();
            let replies: Vec<redis::Value> = read_together(&mut con, |pipe| {
                for q in &queues {
                    pipe.cmd("HMGET").arg(q.jobs()).arg(&names);
                    pipe.cmd("ZMSCORE").arg(q.due()).arg(&names);
                    pipe.cmd("HMGET").arg(q.cancel()).arg(&names);
                    pipe.cmd("HMGET").arg(q.progress()).arg(&names);
                }
            })
            .await?;
            let mut replies = replies.into_iter();
            // Jobs waiting in a lane other than the plain one: their due times come next.
            let mut other_lanes: Vec<(usize, QueueKeys, String)> = Vec::new();
            for q in &queues {
                let (Some(recs), Some(scores), Some(cancels), Some(progress)) = (
                    replies.next(),
                    replies.next(),
                    replies.next(),
                    replies.next(),
                ) else {
                    return Err(Error::Protocol("short query reply".into()));
                };
                let recs: Vec<Option<Vec<u8>>> = redis::from_redis_value(recs)?;
                let scores: Vec<Option<f64>> = redis::from_redis_value(scores)?;
                let cancels: Vec<Option<String>> = redis::from_redis_value(cancels)?;
                let progress: Vec<Option<Vec<u8>>> = redis::from_redis_value(progress)?;
                let rows = recs.into_iter().zip(scores).zip(cancels).zip(progress);
                for (j, (((rec, score), cancel), progress)) in rows.enumerate() {
                    let Some(rec) = rec else { continue };
                    let rec = match Record::decode(rec) {
                        Ok(r) => r,
                        Err(e) => {
                            let e = Error::Record(format!(
                                "job {} in queue {}: {e}",
                                chunk[j],
                                q.name()
                            ));
                            // Asked for alone, it is the answer; among others, it must not
                            // hide them.
                            if ids.len() == 1 {
                                return Err(e);
                            }
                            tracing::warn!("left out of a lookup: {e}");
                            continue;
                        }
                    };
                    let lane = rec.header.lane();
                    if rec.header.state == WorkState::Enqueued && !lane.is_empty() {
                        other_lanes.push((c * ID_CHUNK + j, q.clone(), lane));
                    }
                    out[c * ID_CHUNK + j] = Some(WorkInfo::from_record(
                        chunk[j],
                        q.name(),
                        &rec,
                        score.map(|s| s as u64),
                        cancel,
                        progress,
                    ));
                }
            }
            if !other_lanes.is_empty() {
                let mut pipe = redis::pipe();
                for (i, q, lane) in &other_lanes {
                    pipe.zscore(q.due_in(lane), ids[*i].to_string());
                }
                let scores: Vec<Option<f64>> = pipe.query_async(&mut con).await?;
                for ((i, ..), score) in other_lanes.iter().zip(scores) {
                    if let Some(info) = out[*i].as_mut() {
                        info.next_due_at = score.map(|s| workq_common::system_time(s as u64));
                    }
                }
            }
        }
        Ok(out)
    }

    /// All retained work carrying `tag`, across queues, oldest first.
    pub async fn get_work_infos_by_tag(&self, tag: &str) -> Result<Vec<WorkInfo>> {
        let mut ids = Vec::new();
        for q in self.queue_keys().await? {
            ids.extend(self.tag_members(&q, tag).await?);
        }
        let ids: Vec<WorkId> = ids.iter().filter_map(|s| s.parse().ok()).collect();
        let mut infos: Vec<WorkInfo> = self
            .get_work_infos(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect();
        infos.sort_by_key(|i| i.id);
        Ok(infos)
    }

    /// Cancels one unit of work. Waiting work becomes CANCELLED at once; running work is
    /// stopped by its worker within one heartbeat and ends CANCELLED with no retry.
    pub async fn cancel_work_by_id(&self, id: WorkId) -> Result<CancelStatus> {
        let Some(info) = self.get_work_info(id).await? else {
            return Ok(CancelStatus::NotFound);
        };
        let keys = QueueKeys::new(&info.queue)?;
        let mut con = self.connection().await?;
        let st = scripts()
            .cancel(
                &mut con,
                &keys,
                self.inner.retention.failed,
                "cancelled by request",
                &[id.to_string()],
            )
            .await;
        Ok(self
            .checked(st)?
            .first()
            .copied()
            .unwrap_or(CancelStatus::NotFound))
    }

    /// Cancels all work carrying `tag`, in every queue.
    pub async fn cancel_all_work_by_tag(&self, tag: &str) -> Result<CancelSummary> {
        let mut sum = CancelSummary::default();
        let reason = format!("cancelled by tag '{tag}'");
        for q in self.queue_keys().await? {
            let ids = self.tag_members(&q, tag).await?;
            sum += self.cancel_ids(&q, &ids, &reason).await?;
        }
        Ok(sum)
    }

    /// Cancels these jobs of one queue, `ID_CHUNK` per script call.
    pub(crate) async fn cancel_ids(
        &self,
        q: &QueueKeys,
        ids: &[String],
        reason: &str,
    ) -> Result<CancelSummary> {
        let mut sum = CancelSummary::default();
        for chunk in ids.chunks(ID_CHUNK) {
            let st = async {
                let mut con = self.connection().await?;
                scripts()
                    .cancel(&mut con, q, self.inner.retention.failed, reason, chunk)
                    .await
            }
            .await;
            for st in self.checked(st)? {
                match st {
                    CancelStatus::Cancelled => sum.cancelled += 1,
                    CancelStatus::Requested => sum.requested += 1,
                    CancelStatus::AlreadyFinished => sum.already_finished += 1,
                    CancelStatus::NotFound => {}
                }
            }
        }
        Ok(sum)
    }

    /// Sizes and counters of one queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        let r = self.try_queue_stats(queue).await;
        self.checked(r)
    }

    async fn try_queue_stats(&self, queue: &str) -> Result<QueueStats> {
        let q = QueueKeys::new(queue)?;
        let mut con = self.connection().await?;
        type Head = (
            u64,
            u64,
            HashMap<String, u64>,
            Vec<String>,
            Vec<String>,
            HashMap<String, String>,
            (u64, u64),
        );
        let (plain, finished, counters, holders, lanes, seen, time): Head =
            read_together(&mut con, |pipe| {
                pipe.zcard(q.due())
                    .zcard(q.done())
                    .hgetall(q.stats())
                    .zrange(q.leases(), 0, -1)
                    .smembers(q.lanes())
                    .hgetall(q.workers())
                    .cmd("TIME");
            })
            .await?;
        let now_ms = time.0 * 1000 + time.1 / 1000;
        let mut pipe = redis::pipe();
        pipe.scard(q.blocked());
        for w in &holders {
            pipe.scard(q.held(w));
        }
        for lane in &lanes {
            pipe.zcard(q.due_in(lane));
        }
        let counts: Vec<u64> = pipe.query_async(&mut con).await?;
        let blocked = counts.first().copied().unwrap_or(0);
        let running = counts.iter().skip(1).take(holders.len()).sum();
        let mut per_lane = vec![(String::new(), plain)];
        per_lane.extend(
            lanes
                .iter()
                .cloned()
                .zip(counts.iter().skip(1 + holders.len()).copied()),
        );
        // Presence is "<last seen ms>|<labels>|<kinds>" (workers before kind lanes wrote
        // no kinds: they claim any kind).
        let mut workers: Vec<(String, Vec<String>)> = Vec::new();
        let mut runs: Vec<Option<Vec<String>>> = Vec::new();
        let mut seen: Vec<(String, String)> = seen.into_iter().collect();
        seen.sort();
        for (w, v) in seen {
            let mut parts = v.splitn(3, '|');
            let (Some(t), Some(labels)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(t) = t.parse::<u64>() else { continue };
            if t + 60_000 < now_ms {
                continue;
            }
            let list = |s: &str| -> Vec<String> {
                s.split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            workers.push((w, list(labels)));
            runs.push(parts.next().map(list).filter(|k| !k.is_empty()));
        }
        // A lane is "[x][@labels][#kind]": it is served by a live worker with all its
        // labels that runs its kind.
        let unsatisfiable = per_lane
            .iter()
            .filter(|(lane, _)| {
                let (lane, kind) = match lane.split_once('#') {
                    Some((l, k)) => (l, Some(k)),
                    None => (lane.as_str(), None),
                };
                let needs: Vec<&str> = lane
                    .split_once('@')
                    .map(|(_, l)| l.split(',').collect())
                    .unwrap_or_default();
                !workers.iter().zip(&runs).any(|((_, has), kinds)| {
                    needs.iter().all(|n| has.iter().any(|h| h == n))
                        && match (kind, kinds) {
                            (Some(k), Some(kinds)) => kinds.iter().any(|r| r == k),
                            _ => true,
                        }
                })
            })
            .map(|(_, n)| n)
            .sum();
        Ok(QueueStats {
            enqueued: per_lane.iter().map(|(_, n)| n).sum(),
            running,
            blocked,
            finished,
            lanes: per_lane,
            workers,
            unsatisfiable,
            counters,
        })
    }

    /// Starts watching a queue's state changes. Events that happen after this call returns
    /// are delivered in order; see [`QueueWatch`].
    pub async fn watch_queue(&self, queue: &str) -> Result<QueueWatch> {
        QueueWatch::start(self.inner.pool.clone(), QueueKeys::new(queue)?, None).await
    }

    pub(crate) async fn queue_keys(&self) -> Result<Vec<QueueKeys>> {
        self.queues()
            .await?
            .iter()
            .filter_map(|n| QueueKeys::new(n).ok())
            .map(Ok)
            .collect()
    }

    /// Members of a tag set, deduplicated (SSCAN may repeat members).
    pub(crate) async fn tag_members(&self, q: &QueueKeys, tag: &str) -> Result<Vec<String>> {
        let r = self.try_tag_members(q, tag).await;
        self.checked(r)
    }

    async fn try_tag_members(&self, q: &QueueKeys, tag: &str) -> Result<Vec<String>> {
        let mut con = self.connection().await?;
        let mut seen = HashSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(q.tag(tag))
                .arg(cursor)
                .arg("COUNT")
                .arg(ID_CHUNK)
                .query_async(&mut con)
                .await?;
            seen.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(seen.into_iter().collect())
    }
}

/// Runs the reads that `build` adds to a pipeline in one transaction (`MULTI`/`EXEC`), so
/// that they see one moment. Redis at `maxmemory` refuses to queue any command in a
/// transaction, reads too: there the reads run as a plain pipeline instead, so lookups and
/// stats keep answering (a job that changes state between two of its reads can then show
/// the new state with the old due time, or the reverse).
pub(crate) async fn read_together<T: redis::FromRedisValue>(
    con: &mut MultiplexedConnection,
    build: impl Fn(&mut redis::Pipeline),
) -> Result<T> {
    let mut pipe = redis::pipe();
    build(pipe.atomic());
    match pipe.query_async(con).await {
        Err(e) if is_oom(&e) => {
            let mut pipe = redis::pipe();
            build(&mut pipe);
            Ok(pipe.query_async(con).await?)
        }
        other => Ok(other?),
    }
}

/// Redis' refusal at `maxmemory` (of a command, or of a transaction because of one).
fn is_oom(e: &redis::RedisError) -> bool {
    e.code().is_some_and(|c| c == "OOM" || c == "EXECABORT")
        || e.detail().is_some_and(|d| d.contains("maxmemory"))
        || e.to_string().contains("OOM")
}
