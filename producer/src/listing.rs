//! Listing a queue's jobs page by page with a cursor, and counting them. Every page is
//! bounded: at most [`MAX_PAGE`] jobs, and for the states without an index of their own
//! (finished states, periodic work) at most [`MAX_PAGE`] entries looked at.

use redis::AsyncCommands;
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkInfo, WorkState};

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
    /// Periodic work (ENQUEUED between its runs, or RUNNING), whatever its due time. The
    /// queue keeps no index of periodic jobs, so a page looks at up to the page's limit
    /// of the queue's waiting or running jobs and keeps the periodic ones: with a large
    /// backlog, periodic jobs take many (mostly empty) pages to find.
    Periodic,
}

impl JobFilter {
    /// Parses `ready`, `scheduled`, `running`, `blocked`, `succeeded`, `failed`,
    /// `cancelled`, `finished` or `periodic`.
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
            "periodic" => JobFilter::Periodic,
            _ => {
                return Err(Error::invalid(
                    "state",
                    format!("unknown job state '{s}': use ready, scheduled, running, blocked, succeeded, failed, cancelled, finished or periodic"),
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
    unique_name: Option<String>,
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
            unique_name: None,
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

    /// Only the work of this unique name (walks the name's jobs instead of the state's
    /// index: the state filter then applies to what it finds).
    pub fn unique_name(mut self, name: impl Into<String>) -> Self {
        self.unique_name = Some(name.into());
        self
    }

    /// The queue it lists.
    pub fn queue(&self) -> &str {
        &self.queue
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
        JobFilter::Periodic => info.schedule.is_some(),
    };
    state_ok
        && l.kind.as_ref().is_none_or(|k| &info.kind == k)
        && l.tag.as_ref().is_none_or(|t| info.tags.contains(t))
        && l.unique_name
            .as_ref()
            .is_none_or(|n| info.unique_name.as_ref() == Some(n))
}
impl WorkManager {
    /// One page of a queue's periodic work: [`list_jobs`](Self::list_jobs) with
    /// [`JobFilter::Periodic`] (whatever filter `listing` has). Each job's
    /// [`WorkInfo::schedule`], [`next_due_at`](WorkInfo::next_due_at) and
    /// [`last_run`](WorkInfo::last_run) say when it runs and how its last period ended.
    pub async fn list_periodic(&self, listing: &JobListing) -> Result<JobPage> {
        let mut l = listing.clone();
        l.filter = JobFilter::Periodic;
        self.list_jobs(&l).await
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
        let (ids, next) = if let Some(name) = &listing.unique_name {
            // The name's jobs (a chain may have many), a page at a time by position.
            let all = self.unique_ids(&keys, std::slice::from_ref(name)).await?;
            let start = usize::try_from(pos).unwrap_or(usize::MAX).min(all.len());
            let end = start.saturating_add(limit).min(all.len());
            let next = (end < all.len()).then(|| format!("0:{end}"));
            (
                all[start..end].iter().map(|i| i.to_string()).collect(),
                next,
            )
        } else {
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
    /// How many jobs of a queue `filter` selects, from the indexes' sizes (the finished
    /// states from the counts the scripts keep). [`JobFilter::Periodic`] has no index: it
    /// is counted by walking the queue's waiting and running jobs, [`MAX_PAGE`] a call.
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
            JobFilter::Periodic => {
                // No index to count from: counted page by page (bounded per call).
                let mut listing = JobListing::new(queue, filter).limit(MAX_PAGE);
                let mut n = 0u64;
                loop {
                    let page = self.list_jobs(&listing).await?;
                    n += page.jobs.len() as u64;
                    match page.next {
                        Some(c) => listing = listing.after(c),
                        None => break n,
                    }
                }
            }
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
    // Cursors number the sets from `first` (indexes before it belong to other walks).
    async fn scan_sets(
        con: &mut workq_common::internal::Conn,
        sets: Vec<String>,
        first: usize,
        index: usize,
        pos: u64,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>)> {
        let Some(key) = index.checked_sub(first).and_then(|i| sets.get(i)) else {
            return Ok((Vec::new(), None));
        };
        let (ids, next) = scan(con, key.clone(), pos, limit).await?;
        let cursor = if next != 0 {
            Some(format!("{index}:{next}"))
        } else if index + 1 < first + sets.len() {
            Some(format!("{}:0", index + 1))
        } else {
            None
        };
        Ok((ids, cursor))
    }
    // The held sets of the workers holding jobs, by worker id.
    async fn held_sets(
        con: &mut workq_common::internal::Conn,
        q: &QueueKeys,
    ) -> Result<Vec<String>> {
        let mut workers: Vec<String> = con.zrange(q.leases(), 0, -1).await?;
        workers.sort();
        Ok(workers.iter().map(|w| q.held(w)).collect())
    }
    // The lanes, the plain one first, then the others by name.
    async fn lanes_of(
        con: &mut workq_common::internal::Conn,
        q: &QueueKeys,
    ) -> Result<Vec<String>> {
        let mut lanes: Vec<String> = con.smembers(q.lanes()).await?;
        lanes.retain(|x| x != workq_common::internal::keys::PAUSE_MARKER);
        lanes.sort();
        lanes.insert(0, String::new());
        Ok(lanes)
    }
    if let Some(tag) = &l.tag {
        return scan_sets(con, vec![q.tag(tag)], 0, index, pos, limit).await;
    }
    match l.filter {
        JobFilter::Ready | JobFilter::Scheduled => {
            let lanes = lanes_of(con, q).await?;
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
            let sets = held_sets(con, q).await?;
            scan_sets(con, sets, 0, index, pos, limit).await
        }
        JobFilter::Blocked => scan_sets(con, vec![q.blocked()], 0, index, pos, limit).await,
        JobFilter::Periodic => {
            // Every lane's timeline by rank, whatever the due time; then the held sets.
            let lanes = lanes_of(con, q).await?;
            if let Some(lane) = lanes.get(index) {
                let end = pos + limit as u64 - 1;
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(q.due_in(lane)).arg(pos).arg(end);
                if l.newest_first {
                    cmd.arg("REV");
                }
                let ids: Vec<String> = cmd.query_async(con).await?;
                let cursor = if ids.len() == limit {
                    format!("{index}:{}", end + 1)
                } else {
                    format!("{}:0", index + 1)
                };
                return Ok((ids, Some(cursor)));
            }
            let sets = held_sets(con, q).await?;
            scan_sets(con, sets, lanes.len(), index, pos, limit).await
        }
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
