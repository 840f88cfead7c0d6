//! Looking work up: by id ([`WorkManager::get_work_info`], `get_work_infos`), by tag, and
//! by [`WorkQuery`](crate::WorkQuery) (`work_query.rs`); and the list of queues.

use std::collections::HashSet;

use redis::AsyncCommands;
use workq_common::internal::keys::QUEUES;
use workq_common::internal::record::Record;
use workq_common::internal::Conn;
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkInfo, WorkState};

use crate::connection::read_together;
use crate::WorkManager;

mod work_query;

pub use work_query::WorkQuery;

/// Ids per query or cancel call.
pub(crate) const ID_CHUNK: usize = 500;

impl WorkManager {
    /// Names of the queues in use.
    pub async fn queues(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .redis()
            .run(|mut con| async move { Ok(con.smembers(QUEUES).await?) })
            .await?;
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
        let queues = self.queue_keys().await?;
        self.redis().run(|con| read_infos(con, &queues, ids)).await
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

    /// The keys of the queues in use (names workq would not have created left out).
    pub(crate) async fn queue_keys(&self) -> Result<Vec<QueueKeys>> {
        Ok(self
            .queues()
            .await?
            .iter()
            .filter_map(|n| QueueKeys::new(n).ok())
            .collect())
    }

    /// Members of a tag set, deduplicated (SSCAN may repeat members).
    pub(crate) async fn tag_members(&self, q: &QueueKeys, tag: &str) -> Result<Vec<String>> {
        self.redis()
            .run(|mut con| async move {
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
            })
            .await
    }
}

/// Reads the jobs with these ids from every queue, `ID_CHUNK` ids per transaction.
pub(crate) async fn read_infos(
    mut con: Conn,
    queues: &[QueueKeys],
    ids: &[WorkId],
) -> Result<Vec<Option<WorkInfo>>> {
    let mut out = vec![None; ids.len()];
    for (c, chunk) in ids.chunks(ID_CHUNK).enumerate() {
        let names: Vec<String> = chunk.iter().map(WorkId::to_string).collect();
        // One transaction for every queue on one server; in a Cluster, where each queue
        // is a slot of its own, one per queue.
        let groups: Vec<&[QueueKeys]> = if con.is_cluster() {
            queues.chunks(1).collect()
        } else {
            vec![queues]
        };
        let mut replies: Vec<redis::Value> = Vec::with_capacity(queues.len() * 4);
        for group in groups {
            replies.extend(
                read_together::<Vec<redis::Value>>(&mut con, |pipe| {
                    for q in group {
                        pipe.cmd("HMGET").arg(q.jobs()).arg(&names);
                        pipe.cmd("ZMSCORE").arg(q.due()).arg(&names);
                        pipe.cmd("HMGET").arg(q.cancel()).arg(&names);
                        pipe.cmd("HMGET").arg(q.progress()).arg(&names);
                    }
                })
                .await?,
            );
        }
        let mut replies = replies.into_iter();
        // Jobs waiting in a lane other than the plain one: their due times come next.
        let mut other_lanes: Vec<(usize, QueueKeys, String)> = Vec::new();
        for q in queues {
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
                        let e =
                            Error::Record(format!("job {} in queue {}: {e}", chunk[j], q.name()));
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
            let scores: Vec<Option<f64>> = if con.is_cluster() {
                // Each queue a slot: one command each (rare: jobs in other lanes).
                let mut scores = Vec::with_capacity(other_lanes.len());
                for (i, q, lane) in &other_lanes {
                    scores.push(con.zscore(q.due_in(lane), ids[*i].to_string()).await?);
                }
                scores
            } else {
                let mut pipe = redis::pipe();
                for (i, q, lane) in &other_lanes {
                    pipe.zscore(q.due_in(lane), ids[*i].to_string());
                }
                pipe.query_async(&mut con).await?
            };
            for ((i, ..), score) in other_lanes.iter().zip(scores) {
                if let Some(info) = out[*i].as_mut() {
                    info.next_due_at = score.map(|s| workq_common::system_time(s as u64));
                }
            }
        }
    }
    Ok(out)
}
