//! Queries over work (WorkManager's `WorkQuery`): candidates from ids, unique names, tags
//! or the states' indexes, then read and filtered.

use std::collections::HashSet;

use redis::AsyncCommands;
use serde::Deserialize;
use workq_common::internal::QueueKeys;
use workq_common::{Data, Error, Result, WorkId, WorkInfo, WorkState};

use crate::WorkManager;

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
            self.queue_keys().await?
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
            return Err(Error::invalid(
                "query",
                "an empty query matches nothing: give ids, tags, unique names or states",
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

    /// Ids of the unique work of these names in one queue.
    pub(crate) async fn unique_ids(&self, q: &QueueKeys, names: &[String]) -> Result<Vec<WorkId>> {
        let entries: Vec<Option<Vec<u8>>> = self
            .redis()
            .run(|mut con| async move {
                Ok(redis::cmd("HMGET")
                    .arg(q.unique())
                    .arg(names)
                    .query_async(&mut con)
                    .await?)
            })
            .await?;
        let mut out = Vec::new();
        for v in entries.into_iter().flatten() {
            let entry: UniqueEntry = Data::from_bytes(v).decode()?;
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
        let ids: Vec<String> = self
            .redis()
            .run(|mut con| async move {
                let mut ids: Vec<String> = Vec::new();
                let end = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
                for s in states {
                    match s {
                        WorkState::Enqueued => {
                            let mut lanes: Vec<String> = con.smembers(q.lanes()).await?;
                            lanes.retain(|l| l != workq_common::internal::keys::PAUSE_MARKER);
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
                        _ => {}
                    }
                }
                Ok(ids)
            })
            .await?;
        let mut ids: Vec<WorkId> = ids.iter().filter_map(|i| i.parse().ok()).collect();
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
            let from = isize::try_from(start).unwrap_or(isize::MAX);
            let to = isize::try_from(start + PAGE - 1).unwrap_or(isize::MAX);
            let page: Vec<String> = self
                .redis()
                .run(|mut con| async move { Ok(con.zrange(q.done(), from, to).await?) })
                .await?;
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
