//! Observation: queries over work (WorkManager's `WorkQuery`), streams of `WorkInfo` for a
//! job, a tag or a unique name (WorkManager's `getWorkInfo...Flow`), and pruning.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use redis::AsyncCommands;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use workq_common::keys::WATCHING;
use workq_common::retry::RetryDelay;
use workq_common::scripts::scripts;
use workq_common::{Error, QueueKeys, Result, WorkId, WorkInfo, WorkState};

use crate::watch::{QueueWatch, WorkEvent, WATCH_REFRESH, WATCH_TTL};
use crate::WorkManager;

/// Jobs pruned per script call by [`WorkManager::prune_work`].
const PRUNE_BATCH: usize = 1000;
/// Default most results of a query.
const DEFAULT_LIMIT: usize = 10_000;

/// A query over work (WorkManager's `WorkQuery`): a job matches when it matches every
/// field that is set; within a field, any value matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkQuery {
    ids: Vec<WorkId>,
    tags: Vec<String>,
    unique_names: Vec<String>,
    states: Vec<WorkState>,
    queues: Vec<String>,
    limit: Option<usize>,
}

impl WorkQuery {
    /// Work with these ids.
    pub fn from_ids(ids: impl IntoIterator<Item = WorkId>) -> Self {
        Self::default().ids(ids)
    }
    /// Work with any of these tags.
    pub fn from_tags<S: Into<String>>(tags: impl IntoIterator<Item = S>) -> Self {
        Self::default().tags(tags)
    }
    /// Work of any of these unique names.
    pub fn from_unique_work_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self::default().unique_work_names(names)
    }
    /// Work in any of these states.
    pub fn from_states(states: impl IntoIterator<Item = WorkState>) -> Self {
        Self::default().states(states)
    }
    /// Also these ids.
    pub fn ids(mut self, ids: impl IntoIterator<Item = WorkId>) -> Self {
        self.ids.extend(ids);
        self
    }
    /// Also these tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }
    /// Also these unique names.
    pub fn unique_work_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.unique_names.extend(names.into_iter().map(Into::into));
        self
    }
    /// Also these states.
    pub fn states(mut self, states: impl IntoIterator<Item = WorkState>) -> Self {
        self.states.extend(states);
        self
    }
    /// Only in this queue (repeat for several; default: every queue).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }
    /// At most this many results (default 10,000), returned oldest first (by id). A query
    /// by state picks them in the order of the state's index: ENQUEUED work soonest due
    /// first, finished work soonest pruned first, RUNNING and BLOCKED work in no
    /// particular order.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// What a watch follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchTarget {
    /// One job.
    Id(WorkId),
    /// Every job with the tag.
    Tag(String),
    /// The work of a unique name.
    UniqueName(String),
}

/// The value of a queue's `unique` hash.
#[derive(Deserialize)]
struct UniqueEntry {
    #[serde(default)]
    ids: Vec<String>,
}

impl WorkManager {
    /// The work a query matches, oldest first.
    pub async fn get_work_infos_by_query(&self, query: &WorkQuery) -> Result<Vec<WorkInfo>> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let queues: Vec<QueueKeys> = if query.queues.is_empty() {
            self.queues()
                .await?
                .iter()
                .filter_map(|n| QueueKeys::new(n).ok())
                .collect()
        } else {
            query
                .queues
                .iter()
                .map(|q| QueueKeys::new(q))
                .collect::<Result<_>>()?
        };
        let mut candidates: Vec<WorkId> = Vec::new();
        if !query.ids.is_empty() {
            candidates.extend(&query.ids);
        } else if !query.unique_names.is_empty() {
            for q in &queues {
                candidates.extend(self.unique_ids(q, &query.unique_names).await?);
            }
        } else if !query.tags.is_empty() {
            for q in &queues {
                for tag in &query.tags {
                    candidates.extend(self.tag_ids(q, tag).await?);
                }
            }
        } else if !query.states.is_empty() {
            for q in &queues {
                candidates.extend(self.ids_in_states(q, &query.states, limit).await?);
            }
        } else {
            return Err(Error::InvalidRequest(
                "an empty query matches nothing: give ids, tags, unique names or states".into(),
            ));
        }
        let mut seen = HashSet::new();
        candidates.retain(|id| seen.insert(*id));
        let queue_names: HashSet<&str> = queues.iter().map(QueueKeys::name).collect();
        let mut infos: Vec<WorkInfo> = self
            .get_work_infos(&candidates)
            .await?
            .into_iter()
            .flatten()
            .filter(|i| queue_names.contains(i.queue.as_str()))
            .filter(|i| query.ids.is_empty() || query.ids.contains(&i.id))
            .filter(|i| query.tags.is_empty() || i.tags.iter().any(|t| query.tags.contains(t)))
            .filter(|i| {
                query.unique_names.is_empty()
                    || i.unique_name
                        .as_ref()
                        .is_some_and(|n| query.unique_names.contains(n))
            })
            .filter(|i| query.states.is_empty() || query.states.contains(&i.state))
            .collect();
        infos.sort_by_key(|i| i.id);
        infos.truncate(limit);
        Ok(infos)
    }

    /// The work of a unique name (WorkManager's `getWorkInfosForUniqueWork`), oldest first.
    pub async fn get_work_infos_for_unique_work(&self, name: &str) -> Result<Vec<WorkInfo>> {
        self.get_work_infos_by_query(&WorkQuery::from_unique_work_names([name]))
            .await
    }

    /// Cancels the unfinished work of a unique name (WorkManager's `cancelUniqueWork`).
    pub async fn cancel_unique_work(&self, name: &str) -> Result<crate::CancelSummary> {
        let mut sum = crate::CancelSummary::default();
        let reason = format!("unique work '{name}' cancelled");
        for q in self.queue_keys().await? {
            let ids: Vec<String> = self
                .unique_ids(&q, &[name.to_owned()])
                .await?
                .iter()
                .map(WorkId::to_string)
                .collect();
            // One call per queue: the name's work is cancelled all at once.
            sum += self.cancel_ids(&q, &ids, &reason).await?;
        }
        Ok(sum)
    }

    /// Prunes every finished job now, whatever its retention (WorkManager's `pruneWork`);
    /// returns how many.
    pub async fn prune_work(&self) -> Result<usize> {
        let mut total = 0;
        for name in self.queues().await? {
            total += self.prune_work_in(&name).await?;
        }
        Ok(total)
    }

    /// Like [`prune_work`](Self::prune_work), in one queue only: the finished jobs of
    /// other queues stay until their retention ends.
    pub async fn prune_work_in(&self, queue: &str) -> Result<usize> {
        let keys = QueueKeys::new(queue)?;
        let mut total = 0;
        loop {
            let r = async {
                let mut con = self.connection().await?;
                scripts().prune(&mut con, &keys, PRUNE_BATCH).await
            }
            .await;
            let n = self.checked(r)?;
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }

    /// A stream of the target's `WorkInfo`, one item per state change (and per progress
    /// report) that happens after this call returns, in order, from any process. Each
    /// item has the state and attempt of that change; the other fields are read when the
    /// change arrives. A dropped Redis connection is re-established and the stream resumes
    /// after the last change it delivered.
    ///
    /// For an id already enqueued it follows that job's queue. Otherwise it follows every
    /// queue, and also queues that appear later (looked for every second, and read from
    /// the moment this call was made, so their first changes are not missed); to follow
    /// just one queue, use [`watch_in`](Self::watch_in).
    pub async fn watch(&self, target: WatchTarget) -> Result<WorkInfoStream> {
        if let WatchTarget::Id(id) = &target {
            if let Some(info) = self.get_work_info(*id).await? {
                return Ok(self.watch_queues(vec![info.queue], target).await?.0);
            }
        }
        // Announce the watch before listing the queues: a producer that adds a queue after
        // the listing sees the announcement and marks the queue watched before enqueueing.
        let since = self.announce_watching().await?;
        let mut queues = self.queues().await?;
        if !queues.iter().any(|q| q == workq_common::DEFAULT_QUEUE) {
            queues.push(workq_common::DEFAULT_QUEUE.to_owned());
        }
        let (mut stream, tx) = self.watch_queues(queues.clone(), target.clone()).await?;
        let wm = self.clone();
        stream.tasks.push(tokio::spawn(async move {
            discover(wm, queues.into_iter().collect(), since, target, tx).await;
        }));
        Ok(stream)
    }

    /// Sets `workq:watching` and returns Redis's present time in ms.
    async fn announce_watching(&self) -> Result<u64> {
        let r = async {
            let mut con = self.connection().await?;
            let ttl = u64::try_from(WATCH_TTL.as_millis()).unwrap_or(u64::MAX);
            let ((), (secs, micros)): ((), (u64, u64)) = redis::pipe()
                .pset_ex(WATCHING, 1, ttl)
                .cmd("TIME")
                .query_async(&mut con)
                .await?;
            Ok::<_, Error>(secs * 1000 + micros / 1000)
        }
        .await;
        self.checked(r)
    }

    /// Like [`watch`](Self::watch), in one queue, which need not hold any work yet.
    pub async fn watch_in(&self, queue: &str, target: WatchTarget) -> Result<WorkInfoStream> {
        Ok(self.watch_queues(vec![queue.to_owned()], target).await?.0)
    }

    async fn watch_queues(
        &self,
        queues: Vec<String>,
        target: WatchTarget,
    ) -> Result<(WorkInfoStream, mpsc::Sender<Result<WorkInfo>>)> {
        let (tx, rx) = mpsc::channel(1024);
        let mut tasks = Vec::new();
        for q in queues {
            let w = self.watch_queue(&q).await?;
            tasks.push(tokio::spawn(follow(
                self.clone(),
                w,
                target.clone(),
                tx.clone(),
            )));
        }
        // The stream ends when every task holding a sender has ended.
        Ok((WorkInfoStream { rx, tasks }, tx))
    }

    async fn unique_ids(&self, q: &QueueKeys, names: &[String]) -> Result<Vec<WorkId>> {
        let mut con = self.connection().await?;
        let r: Result<Vec<Option<Vec<u8>>>> = redis::cmd("HMGET")
            .arg(q.unique())
            .arg(names)
            .query_async(&mut con)
            .await
            .map_err(Into::into);
        let mut out = Vec::new();
        for v in self.checked(r)?.into_iter().flatten() {
            let entry: UniqueEntry = rmp_serde_decode(&v)?;
            out.extend(entry.ids.iter().filter_map(|i| i.parse::<WorkId>().ok()));
        }
        Ok(out)
    }

    async fn tag_ids(&self, q: &QueueKeys, tag: &str) -> Result<Vec<WorkId>> {
        Ok(self
            .tag_members(q, tag)
            .await?
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect())
    }

    /// Ids of jobs in these states, read from the state's index (at most `limit` each).
    async fn ids_in_states(
        &self,
        q: &QueueKeys,
        states: &[WorkState],
        limit: usize,
    ) -> Result<Vec<WorkId>> {
        let r = async {
            let mut con = self.connection().await?;
            let mut ids: Vec<String> = Vec::new();
            let end = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
            for s in states {
                match s {
                    WorkState::Enqueued => {
                        let mut lanes: Vec<String> = con.smembers(q.lanes()).await?;
                        lanes.push(String::new());
                        for lane in lanes {
                            let part: Vec<String> = con.zrange(q.due_in(&lane), 0, end).await?;
                            ids.extend(part);
                        }
                    }
                    WorkState::Running => {
                        let workers: Vec<String> = con.zrange(q.leases(), 0, -1).await?;
                        for w in workers {
                            let part: Vec<String> = con.smembers(q.held(&w)).await?;
                            ids.extend(part);
                        }
                    }
                    WorkState::Blocked => {
                        let part: Vec<String> = con
                            .srandmember_multiple(
                                q.blocked(),
                                isize::try_from(limit).unwrap_or(isize::MAX),
                            )
                            .await?;
                        ids.extend(part);
                    }
                    // Finished jobs of every state share one index: paged below.
                    WorkState::Succeeded | WorkState::Failed | WorkState::Cancelled => {}
                }
            }
            Ok::<_, Error>(ids)
        }
        .await;
        let mut ids: Vec<WorkId> = self
            .checked(r)?
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect();
        let finished: Vec<WorkState> = states.iter().copied().filter(|s| s.is_finished()).collect();
        if !finished.is_empty() {
            ids.extend(self.finished_ids(q, &finished, limit).await?);
        }
        Ok(ids)
    }

    /// Ids of up to `limit` finished jobs in these states, soonest pruned first: `done`
    /// holds every finished state, so it is read a page at a time until enough match.
    async fn finished_ids(
        &self,
        q: &QueueKeys,
        states: &[WorkState],
        limit: usize,
    ) -> Result<Vec<WorkId>> {
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        let mut start = 0usize;
        while out.len() < limit {
            let r = async {
                let mut con = self.connection().await?;
                let from = isize::try_from(start).unwrap_or(isize::MAX);
                let to = isize::try_from(start + PAGE - 1).unwrap_or(isize::MAX);
                let page: Vec<String> = con.zrange(q.done(), from, to).await?;
                Ok::<_, Error>(page)
            }
            .await;
            let page = self.checked(r)?;
            let ids: Vec<WorkId> = page.iter().filter_map(|i| i.parse().ok()).collect();
            for info in self.get_work_infos(&ids).await?.into_iter().flatten() {
                if states.contains(&info.state) && out.len() < limit {
                    out.push(info.id);
                }
            }
            if page.len() < PAGE {
                break;
            }
            start += PAGE;
        }
        Ok(out)
    }
}

fn rmp_serde_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    workq_common::Data::from_bytes(bytes.to_vec()).decode()
}

/// `WorkInfo` items of a watch. Dropping it stops the watch.
#[derive(Debug)]
pub struct WorkInfoStream {
    rx: mpsc::Receiver<Result<WorkInfo>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Stream for WorkInfoStream {
    type Item = Result<WorkInfo>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl WorkInfoStream {
    /// The next item (a convenience over `StreamExt::next`).
    pub async fn next_info(&mut self) -> Option<Result<WorkInfo>> {
        self.rx.recv().await
    }
}

impl Drop for WorkInfoStream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Most jobs whose match against a tag or name is remembered by one watch.
const MEMORY: usize = 100_000;

/// How often a watch of every queue looks for queues that appeared since.
const DISCOVER_EVERY: Duration = Duration::from_secs(1);

/// Looks for queues added after the watch started and follows each from `since`, while
/// keeping `workq:watching` alive. Its followers stop when it is aborted.
async fn discover(
    wm: WorkManager,
    mut followed: HashSet<String>,
    since: u64,
    target: WatchTarget,
    tx: mpsc::Sender<Result<WorkInfo>>,
) {
    let mut followers = tokio::task::JoinSet::new();
    let mut announced = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(DISCOVER_EVERY).await;
        if tx.is_closed() {
            return;
        }
        if announced.elapsed() >= WATCH_REFRESH && wm.announce_watching().await.is_ok() {
            announced = tokio::time::Instant::now();
        }
        // A failure here is retried at the next look; the followers report their own.
        let Ok(queues) = wm.queues().await else {
            continue;
        };
        for name in queues {
            if followed.contains(&name) {
                continue;
            }
            let Ok(keys) = QueueKeys::new(&name) else {
                followed.insert(name); // not a name workq would have created
                continue;
            };
            if let Ok(w) = QueueWatch::start(wm.pool().clone(), keys, Some(since)).await {
                followers.spawn(follow(wm.clone(), w, target.clone(), tx.clone()));
                followed.insert(name);
            }
        }
    }
}

/// The job's info, retrying a Redis that went away until it is back (the stream stays
/// open meanwhile). `None` when the stream was dropped or the error is not transient
/// (it is sent to the stream first).
async fn read_info(
    wm: &WorkManager,
    id: WorkId,
    tx: &mpsc::Sender<Result<WorkInfo>>,
) -> Option<Option<WorkInfo>> {
    let mut delay = RetryDelay::new(Duration::from_millis(50), Duration::from_secs(2));
    loop {
        match wm.get_work_info(id).await {
            Ok(info) => return Some(info),
            Err(e) if e.is_transient() && !tx.is_closed() => {
                tokio::time::sleep(delay.next_delay()).await;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return None;
            }
        }
    }
}

/// Reads one queue's events, keeps those of the target, and sends a `WorkInfo` for each.
async fn follow(
    wm: WorkManager,
    mut w: QueueWatch,
    target: WatchTarget,
    tx: mpsc::Sender<Result<WorkInfo>>,
) {
    // Per job: whether it matches, and the last snapshot seen (a job deleted on success
    // still gets its SUCCEEDED item, built from that snapshot).
    let mut known: HashMap<WorkId, (bool, Option<WorkInfo>)> = HashMap::new();
    loop {
        let ev: WorkEvent = match w.next().await {
            Ok(ev) => ev,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        if let WatchTarget::Id(id) = &target {
            if *id != ev.id {
                continue;
            }
        }
        if matches!(known.get(&ev.id), Some((false, _))) {
            continue;
        }
        let Some(snapshot) = read_info(&wm, ev.id, &tx).await else {
            return;
        };
        let previous = known.get(&ev.id).and_then(|(_, s)| s.clone());
        let Some(mut info) = snapshot.or(previous) else {
            if let WatchTarget::Id(_) = target {
                continue; // gone before it could be read: nothing to describe it with
            }
            continue;
        };
        let wanted = match &target {
            WatchTarget::Id(_) => true,
            WatchTarget::Tag(t) => info.tags.contains(t),
            WatchTarget::UniqueName(n) => info.unique_name.as_ref() == Some(n),
        };
        if known.len() >= MEMORY {
            known.clear();
        }
        known.insert(ev.id, (wanted, Some(info.clone())));
        if !wanted {
            continue;
        }
        info.state = ev.state;
        if info.schedule.is_none() {
            info.run_attempt_count = ev.attempt;
        }
        if let Some(data) = ev.progress_data {
            info.progress = Some(workq_common::Data::from_bytes(data));
        } else if ev.state != WorkState::Running {
            info.progress = None;
        }
        if tx.send(Ok(info)).await.is_err() {
            return; // the stream was dropped
        }
    }
}
