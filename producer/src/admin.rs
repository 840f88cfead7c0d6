//! An operator's actions (`admin.lua`) and listings: pause and resume a queue, retry,
//! run now, delete and purge jobs, and list a queue's jobs page by page with a cursor.
//! Every call is bounded: by the ids it is given, or by a page (at most
//! [`MAX_PAGE`] jobs, and for finished states at most [`MAX_PAGE`] entries of the queue's
//! `done` index looked at); the whole-queue operations ([`WorkManager::retry_all_failed`],
//! [`WorkManager::purge`]) are loops of such calls, which may be interrupted between any
//! two of them without harm.

use std::collections::HashMap;

use redis::AsyncCommands;
use workq_common::internal::scripts::{scripts, AdminOp, PurgeStep};
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkInfo, WorkState};

pub use workq_common::internal::scripts::AdminStatus;

use crate::queries::{read_infos, ID_CHUNK};
use crate::WorkManager;

/// Most jobs in one page of a listing, and most entries of `done` one page looks at.
pub const MAX_PAGE: usize = 1000;
/// The page size of a listing that sets none.
pub const DEFAULT_PAGE: usize = 50;

/// Which of a queue's jobs a listing walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobFilter {
    /// ENQUEUED and due now (the backlog), soonest due first.
    Ready,
    /// ENQUEUED and due later (delayed, backing off, a periodic job's next run).
    Scheduled,
    /// RUNNING.
    Running,
    /// BLOCKED (waiting for parents in a chain).
    Blocked,
    /// Retained SUCCEEDED.
    Succeeded,
    /// Retained FAILED.
    Failed,
    /// Retained CANCELLED.
    Cancelled,
    /// Every retained finished job.
    Finished,
}

impl JobFilter {
    /// Parses `ready`, `scheduled`, `running`, `blocked`, `succeeded`, `failed`,
    /// `cancelled` or `finished`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ready" => JobFilter::Ready,
            "scheduled" => JobFilter::Scheduled,
            "running" => JobFilter::Running,
            "blocked" => JobFilter::Blocked,
            "succeeded" => JobFilter::Succeeded,
            "failed" => JobFilter::Failed,
            "cancelled" => JobFilter::Cancelled,
            "finished" => JobFilter::Finished,
            _ => {
                return Err(Error::invalid(
                    "state",
                    format!("unknown job state '{s}': use ready, scheduled, running, blocked, succeeded, failed, cancelled or finished"),
                ))
            }
        })
    }
}

/// One page of a queue's jobs: what [`WorkManager::list_jobs`] walks.
///
/// ```no_run
/// # async fn f(wm: workq_producer::WorkManager) -> workq_producer::Result<()> {
/// use workq_producer::{JobFilter, JobListing};
/// let mut listing = JobListing::new("emails", JobFilter::Failed).newest_first().limit(20);
/// loop {
///     let page = wm.list_jobs(&listing).await?;
///     for job in &page.jobs {
///         println!("{} {:?}", job.id, job.last_error);
///     }
///     match page.next {
///         Some(cursor) => listing = listing.after(cursor),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobListing {
    queue: String,
    filter: JobFilter,
    newest_first: bool,
    limit: usize,
    kind: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
}

impl JobListing {
    /// The jobs of `queue` that `filter` selects, oldest first, [`DEFAULT_PAGE`] a page.
    pub fn new(queue: impl Into<String>, filter: JobFilter) -> Self {
        JobListing {
            queue: queue.into(),
            filter,
            newest_first: false,
            limit: DEFAULT_PAGE,
            kind: None,
            tag: None,
            cursor: None,
        }
    }

    /// Newest first: latest due first for ENQUEUED jobs, latest to be pruned first for
    /// finished ones (RUNNING and BLOCKED jobs come in no particular order).
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// At most `n` jobs a page (1 to [`MAX_PAGE`]; more is [`MAX_PAGE`]).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.clamp(1, MAX_PAGE);
        self
    }

    /// Only jobs of this kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only jobs with this tag (walks the tag's index instead of the state's: the state
    /// filter then applies to what it finds).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The page after the one whose [`JobPage::next`] was `cursor`.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// A page of jobs.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs, in the listing's order. Fewer than the limit, or none, does not mean
    /// the end: a page of a finished state looks at a bounded number of entries.
    pub jobs: Vec<WorkInfo>,
    /// The cursor of the next page ([`JobListing::after`]); None at the end. Jobs that
    /// change state between pages may be skipped or seen twice.
    pub next: Option<String>,
}

/// A cursor: a position in the listing's list of indexes, and one within that index.
fn parse_cursor(c: Option<&str>) -> Result<(usize, u64)> {
    let Some(c) = c else { return Ok((0, 0)) };
    let bad = || {
        Error::invalid(
            "cursor",
            format!("'{c}' is not a cursor a listing returned"),
        )
    };
    let (a, b) = c.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn matches(info: &WorkInfo, l: &JobListing, now: std::time::SystemTime) -> bool {
    let state_ok = match l.filter {
        JobFilter::Ready => {
            info.state == WorkState::Enqueued && info.next_due_at.is_none_or(|d| d <= now)
        }
        JobFilter::Scheduled => {
            info.state == WorkState::Enqueued && info.next_due_at.is_some_and(|d| d > now)
        }
        JobFilter::Running => info.state == WorkState::Running,
        JobFilter::Blocked => info.state == WorkState::Blocked,
        JobFilter::Succeeded => info.state == WorkState::Succeeded,
        JobFilter::Failed => info.state == WorkState::Failed,
        JobFilter::Cancelled => info.state == WorkState::Cancelled,
        JobFilter::Finished => info.state.is_finished(),
    };
    state_ok
        && l.kind.as_ref().is_none_or(|k| &info.kind == k)
        && l.tag.as_ref().is_none_or(|t| info.tags.contains(t))
}

/// Where a whole-queue operation has got to: pass the same one to each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkCursor {
    start: u64,
    done: bool,
    /// Jobs the operation has changed so far.
    pub changed: u64,
}

impl BulkCursor {
    /// A new operation, from the start.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether the operation has gone through the whole queue.
    pub fn finished(&self) -> bool {
        self.done
    }
}

impl WorkManager {
    /// Pauses a queue: from their next claim, workers take nothing from it; attempts
    /// running finish, producers keep enqueueing, and maintenance (expired leases,
    /// pruning) goes on. Whether it was running before.
    pub async fn pause_queue(&self, queue: &str) -> Result<bool> {
        self.pause_flag(queue, AdminOp::Pause).await
    }

    /// Resumes a paused queue, waking its workers. Whether it was paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        self.pause_flag(queue, AdminOp::Resume).await
    }

    /// Pause or resume: whether it changed anything.
    async fn pause_flag(&self, queue: &str, op: AdminOp<'static>) -> Result<bool> {
        let keys = QueueKeys::new(queue)?;
        let (keys, op) = (&keys, &op);
        self.redis()
            .run(|mut con| async move { scripts().admin_flag(&mut con, keys, op).await })
            .await
    }

    /// Retries FAILED or CANCELLED jobs: each back to ENQUEUED and due now (BLOCKED if a
    /// parent in its chain has not succeeded), with its attempts counted from zero again
    /// for `max_attempts` and backoff (the attempt number, its fencing token, keeps
    /// growing, and the last error stays until the next attempt); the descendants that
    /// ended because it failed or was cancelled come back BLOCKED. Per id, in order.
    pub async fn retry_work(&self, ids: &[WorkId]) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::Retry(ids)).await
    }

    /// Makes ENQUEUED jobs that are due later (delayed, backing off, a periodic job's
    /// next run) due now. Per id: [`AdminStatus::AlreadyDue`] for one due already,
    /// [`AdminStatus::WrongState`] for one not ENQUEUED.
    pub async fn run_work_now(&self, ids: &[WorkId]) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::RunNow(ids)).await
    }

    /// Deletes jobs: the record and every index entry, as if never enqueued (a unique
    /// name forgets them). A RUNNING job is left alone ([`AdminStatus::WrongState`])
    /// unless `force`: then its worker's next heartbeat finds the lease lost and its
    /// result is refused. The descendants in a chain of a job that had not finished end
    /// CANCELLED ("parent <id> was cancelled"). No event is written for a deleted job.
    pub async fn delete_work(&self, ids: &[WorkId], force: bool) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::Delete { force, ids })
            .await
    }

    /// Runs `op` on the ids, grouped by the queue each is in, `ID_CHUNK` per call.
    async fn per_queue(
        &self,
        ids: &[WorkId],
        op: impl for<'a> Fn(&'a [String]) -> AdminOp<'a>,
    ) -> Result<Vec<AdminStatus>> {
        let mut out = vec![AdminStatus::NotFound; ids.len()];
        let mut queues: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, info) in self.get_work_infos(ids).await?.into_iter().enumerate() {
            if let Some(info) = info {
                queues.entry(info.queue).or_default().push(i);
            }
        }
        let keep_failed = self.keep_failed();
        for (queue, at) in queues {
            let keys = QueueKeys::new(&queue)?;
            for chunk in at.chunks(ID_CHUNK) {
                let names: Vec<String> = chunk.iter().map(|&i| ids[i].to_string()).collect();
                let keys = &keys;
                let op = op(&names);
                let op = &op;
                let st =
                    self.redis()
                        .run(|mut con| async move {
                            scripts().admin(&mut con, keys, keep_failed, op).await
                        })
                        .await?;
                for (&i, s) in chunk.iter().zip(st) {
                    out[i] = s;
                }
            }
        }
        Ok(out)
    }

    /// One step of retrying every FAILED job of a queue: looks at up to [`MAX_PAGE`]
    /// entries of the queue's finished jobs, retries the FAILED ones among them, and
    /// moves `cursor` on; returns how many it retried. Call until
    /// [`BulkCursor::finished`]; [`retry_all_failed`](Self::retry_all_failed) does.
    pub async fn retry_failed_step(&self, queue: &str, cursor: &mut BulkCursor) -> Result<u64> {
        if cursor.done {
            return Ok(0);
        }
        let keys = QueueKeys::new(queue)?;
        let start = cursor.start;
        let (ids, more): (Vec<String>, bool) = {
            let keys = &keys;
            self.redis()
                .run(|mut con| async move {
                    let end = start + MAX_PAGE as u64 - 1;
                    let ids: Vec<String> = con
                        .zrange(keys.done(), start as isize, end as isize)
                        .await?;
                    let total: u64 = con.zcard(keys.done()).await?;
                    Ok((ids, total > end + 1))
                })
                .await?
        };
        let infos = self.infos_in(&keys, &ids).await?;
        let failed: Vec<String> = infos
            .iter()
            .flatten()
            .filter(|i| i.state == WorkState::Failed)
            .map(|i| i.id.to_string())
            .collect();
        let mut retried = 0u64;
        if !failed.is_empty() {
            let keep_failed = self.keep_failed();
            let keys = &keys;
            let op = &AdminOp::Retry(&failed);
            let st = self
                .redis()
                .run(
                    |mut con| async move { scripts().admin(&mut con, keys, keep_failed, op).await },
                )
                .await?;
            retried = st.iter().filter(|s| **s == AdminStatus::Done).count() as u64;
        }
        // Retried jobs left `done`: the ones looked at and kept are before the next start.
        cursor.start = start + ids.len() as u64 - retried;
        cursor.changed += retried;
        cursor.done = !more;
        Ok(retried)
    }

    /// Retries every FAILED job of a queue ([`retry_work`](Self::retry_work)), in bounded
    /// steps; how many.
    pub async fn retry_all_failed(&self, queue: &str) -> Result<u64> {
        let mut cursor = BulkCursor::new();
        while !cursor.finished() {
            self.retry_failed_step(queue, &mut cursor).await?;
        }
        Ok(cursor.changed)
    }

    /// One step of purging a queue's finished jobs in `state` (SUCCEEDED, FAILED or
    /// CANCELLED; None for all three): deletes those among up to [`MAX_PAGE`] entries of
    /// its finished jobs and moves `cursor` on; returns how many it deleted.
    pub async fn purge_step(
        &self,
        queue: &str,
        state: Option<WorkState>,
        cursor: &mut BulkCursor,
    ) -> Result<u64> {
        if let Some(s) = state.filter(|s| !s.is_finished()) {
            return Err(Error::invalid(
                "state",
                format!(
                    "only finished jobs are purged (succeeded, failed, cancelled), not {}",
                    s.as_str()
                ),
            ));
        }
        if cursor.done {
            return Ok(0);
        }
        let keys = QueueKeys::new(queue)?;
        let op = AdminOp::Purge {
            state,
            start: cursor.start,
            count: MAX_PAGE as u64,
        };
        let (keys, op) = (&keys, &op);
        let step: PurgeStep = self
            .redis()
            .run(|mut con| async move { scripts().purge_step(&mut con, keys, op).await })
            .await?;
        cursor.start = step.next;
        cursor.changed += step.deleted;
        cursor.done = !step.more;
        Ok(step.deleted)
    }

    /// Purges a queue's finished jobs in `state` (None: all finished jobs) now, whatever
    /// their retention, in bounded steps; how many.
    pub async fn purge(&self, queue: &str, state: Option<WorkState>) -> Result<u64> {
        let mut cursor = BulkCursor::new();
        while !cursor.finished() {
            self.purge_step(queue, state, &mut cursor).await?;
        }
        Ok(cursor.changed)
    }

    /// One page of a queue's jobs (see [`JobListing`]).
    pub async fn list_jobs(&self, listing: &JobListing) -> Result<JobPage> {
        let keys = QueueKeys::new(&listing.queue)?;
        let (index, pos) = parse_cursor(listing.cursor.as_deref())?;
        let limit = listing.limit;
        // Redis' clock, for the filters that split ENQUEUED jobs by due time.
        let now_ms = match listing.filter {
            JobFilter::Ready | JobFilter::Scheduled => Some(self.redis_now().await?),
            _ => None,
        };
        let (ids, next) = {
            let keys = &keys;
            self.redis()
                .run(|mut con| async move {
                    page_ids(&mut con, keys, listing, index, pos, limit, now_ms).await
                })
                .await?
        };
        let infos = self.infos_in(&keys, &ids).await?;
        let now = workq_common::system_time(now_ms.unwrap_or(0));
        let jobs = infos
            .into_iter()
            .flatten()
            .filter(|i| matches(i, listing, now))
            .take(limit)
            .collect();
        Ok(JobPage { jobs, next })
    }

    /// The jobs of one queue with these ids (None for an id not there or not a job id).
    async fn infos_in(&self, keys: &QueueKeys, ids: &[String]) -> Result<Vec<Option<WorkInfo>>> {
        let parsed: Vec<WorkId> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        let (keys, parsed) = (std::slice::from_ref(keys), &parsed);
        self.redis()
            .run(|con| async move { read_infos(con, keys, parsed).await })
            .await
    }

    /// How many jobs of a queue `filter` selects, from the indexes' sizes (the finished
    /// states from the counts the scripts keep).
    pub async fn count_jobs(&self, queue: &str, filter: JobFilter) -> Result<u64> {
        let s = self.queue_stats(queue).await?;
        Ok(match filter {
            JobFilter::Ready => s.ready,
            JobFilter::Scheduled => s.scheduled,
            JobFilter::Running => s.running,
            JobFilter::Blocked => s.blocked,
            JobFilter::Succeeded => s.retained_succeeded,
            JobFilter::Failed => s.retained_failed,
            JobFilter::Cancelled => s.retained_cancelled,
            JobFilter::Finished => s.finished,
        })
    }
}

/// The ids of one page, and the next page's cursor. The indexes a listing walks, in
/// order: the tag's set (with a tag); else the lanes' timelines (ready, scheduled: the
/// plain lane, then the others by name), the workers' held sets (running: the workers
/// by name), `blocked`, or `done` (finished states).
async fn page_ids(
    con: &mut workq_common::internal::Conn,
    q: &QueueKeys,
    l: &JobListing,
    index: usize,
    pos: u64,
    limit: usize,
    now_ms: Option<u64>,
) -> Result<(Vec<String>, Option<String>)> {
    // A set, walked with SSCAN: pos is its cursor.
    async fn scan(
        con: &mut workq_common::internal::Conn,
        key: String,
        pos: u64,
        limit: usize,
    ) -> Result<(Vec<String>, u64)> {
        let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(key)
            .arg(pos)
            .arg("COUNT")
            .arg(limit)
            .query_async(con)
            .await?;
        Ok((ids, next))
    }
    // Sets walked one after another: the page ends where the current one's scan ends.
    async fn scan_sets(
        con: &mut workq_common::internal::Conn,
        sets: Vec<String>,
        index: usize,
        pos: u64,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>)> {
        let Some(key) = sets.get(index) else {
            return Ok((Vec::new(), None));
        };
        let (ids, next) = scan(con, key.clone(), pos, limit).await?;
        let cursor = if next != 0 {
            Some(format!("{index}:{next}"))
        } else if index + 1 < sets.len() {
            Some(format!("{}:0", index + 1))
        } else {
            None
        };
        Ok((ids, cursor))
    }
    if let Some(tag) = &l.tag {
        return scan_sets(con, vec![q.tag(tag)], index, pos, limit).await;
    }
    match l.filter {
        JobFilter::Ready | JobFilter::Scheduled => {
            let mut lanes: Vec<String> = con.smembers(q.lanes()).await?;
            lanes.retain(|x| x != workq_common::internal::keys::PAUSE_MARKER);
            lanes.sort();
            lanes.insert(0, String::new());
            let Some(lane) = lanes.get(index) else {
                return Ok((Vec::new(), None));
            };
            let now = now_ms.unwrap_or(0);
            let (lo, hi) = if l.filter == JobFilter::Ready {
                ("-inf".to_owned(), now.to_string())
            } else {
                (format!("({now}"), "+inf".to_owned())
            };
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(q.due_in(lane));
            if l.newest_first {
                cmd.arg(&hi).arg(&lo).arg("BYSCORE").arg("REV");
            } else {
                cmd.arg(&lo).arg(&hi).arg("BYSCORE");
            }
            cmd.arg("LIMIT").arg(pos).arg(limit);
            let ids: Vec<String> = cmd.query_async(con).await?;
            let cursor = if ids.len() == limit {
                Some(format!("{index}:{}", pos + limit as u64))
            } else if index + 1 < lanes.len() {
                Some(format!("{}:0", index + 1))
            } else {
                None
            };
            Ok((ids, cursor))
        }
        JobFilter::Running => {
            let mut workers: Vec<String> = con.zrange(q.leases(), 0, -1).await?;
            workers.sort();
            let sets = workers.iter().map(|w| q.held(w)).collect();
            scan_sets(con, sets, index, pos, limit).await
        }
        JobFilter::Blocked => scan_sets(con, vec![q.blocked()], index, pos, limit).await,
        _ => {
            // Finished: `done` by rank, a bounded number of entries looked at; the page
            // keeps the ones in the state (and of the kind) asked for.
            let end = pos + limit as u64 - 1;
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(q.done()).arg(pos).arg(end);
            if l.newest_first {
                cmd.arg("REV");
            }
            let ids: Vec<String> = cmd.query_async(con).await?;
            let total: u64 = con.zcard(q.done()).await?;
            let cursor = (total > end + 1).then(|| format!("0:{}", end + 1));
            Ok((ids, cursor))
        }
    }
}
