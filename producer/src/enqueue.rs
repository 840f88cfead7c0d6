//! Enqueueing one-time work: [`WorkManager::enqueue`] and [`WorkManager::enqueue_many`]
//! (`enqueue.lua`), and the registration of a queue that every enqueue does first.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use redis::AsyncCommands;
use workq_common::internal::keys::{QUEUES, WATCHING};
use workq_common::internal::record;
use workq_common::internal::scripts::{scripts, EnqueueStatus, NewJob};
use workq_common::internal::Conn;
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkState};

use crate::watch::WATCH_TTL;
use crate::{OneTimeWorkRequest, WorkManager};

/// Jobs per enqueue script call.
const BATCH_JOBS: usize = 250;
/// Bytes of records per enqueue script call (a batch closes at whichever comes first).
const BATCH_BYTES: usize = 4 << 20;
/// Enqueue calls in flight at once on one multiplexed connection.
const BATCHES_IN_FLIGHT: usize = 4;

/// The result of enqueueing one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Enqueued {
    /// The work's id.
    pub id: WorkId,
    /// [`EnqueueStatus::Existed`] when a job with this id was already in the request's
    /// queue: nothing changed, which makes retrying an enqueue safe (the check is per
    /// queue: retry with the same request).
    pub status: EnqueueStatus,
}

/// Requests of one queue and one lane, sent in one script call: their queue, lane and
/// places in the call.
type Batch = (QueueKeys, String, Vec<usize>);

impl WorkManager {
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
        let reqs: Vec<OneTimeWorkRequest> = reqs.into_iter().collect();
        // The trace context this enqueue runs in goes into each request's metadata.
        #[cfg(feature = "otel")]
        let reqs = {
            let mut reqs = reqs;
            let trace = crate::otel::current();
            for r in &mut reqs {
                crate::otel::inject(&mut r.ext.metadata, &trace);
            }
            reqs
        };
        let limit = self.max_payload();
        for r in &reqs {
            r.check_size(limit)?;
        }
        let batches = batches(&reqs);
        for (keys, _, _) in &batches {
            self.register_queue(keys).await?;
        }
        let durability = self.durability();
        self.redis()
            .run(|con| async move {
                let mut wait_on = con.clone();
                // One WAIT covers every batch on one server (they went on this connection);
                // in a Cluster, one per queue, on the queue's node.
                let mut prefixes: Vec<String> = batches
                    .iter()
                    .map(|(k, _, _)| k.prefix().to_owned())
                    .collect();
                prefixes.sort();
                prefixes.dedup();
                if !wait_on.is_cluster() {
                    prefixes.truncate(1);
                }
                let out = store_batches(con, &reqs, batches).await?;
                for p in &prefixes {
                    durability.confirm(&mut wait_on, p, "enqueue").await?;
                }
                Ok(out)
            })
            .await
    }

    /// Adds the queue to `workq:queues`, once per process. When a watch follows every
    /// queue (`workq:watching`), the queue's own watch marker is set before anything is
    /// enqueued there, so that a queue new to the watch has its first events written.
    pub(crate) async fn register_queue(&self, keys: &QueueKeys) -> Result<()> {
        if self.is_registered(keys.name()) {
            return Ok(());
        }
        self.redis()
            .run(|mut con| async move {
                // (In a Cluster the two keys live in different slots, so they go one after
                // the other: the order, not the pipeline, is what the watch relies on.)
                let watching: bool = if con.is_cluster() {
                    let () = con.sadd(QUEUES, keys.name()).await?;
                    con.exists(WATCHING).await?
                } else {
                    let ((), watching): ((), bool) = redis::pipe()
                        .sadd(QUEUES, keys.name())
                        .exists(WATCHING)
                        .query_async(&mut con)
                        .await?;
                    watching
                };
                if watching {
                    let ttl = workq_common::time::ms(WATCH_TTL);
                    let _: () = con.pset_ex(keys.watch(), 1, ttl).await?;
                }
                Ok(())
            })
            .await?;
        self.set_registered(keys.name());
        Ok(())
    }
}

/// Groups the requests into batches. Batches never mix queues (a script call touches one
/// queue, one Cluster slot) or lanes, and never repeat an id (a repeat is reported as
/// existing, like any other).
fn batches(reqs: &[OneTimeWorkRequest]) -> Vec<Batch> {
    let lanes: Vec<String> = reqs.iter().map(|r| r.lane()).collect();
    let mut batches: Vec<Batch> = Vec::new();
    // (queue, lane) -> (batch, bytes)
    let mut open: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
    let mut seen: HashSet<WorkId> = HashSet::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        if !seen.insert(r.id) {
            continue;
        }
        let len = r.input.len() + r.kind.len() + 32;
        let key = (r.queue.name(), lanes[i].as_str());
        let slot = open
            .get(&key)
            .copied()
            .filter(|&(b, bytes)| batches[b].2.len() < BATCH_JOBS && bytes + len <= BATCH_BYTES);
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
    batches
}

/// Sends the batches, a few at a time on the one connection, and gathers each request's
/// status.
async fn store_batches(
    shared: Conn,
    reqs: &[OneTimeWorkRequest],
    batches: Vec<Batch>,
) -> Result<Vec<Enqueued>> {
    let mut statuses: Vec<Option<EnqueueStatus>> = vec![None; reqs.len()];
    // A request repeated in the call is reported as existing, like any other repeat.
    let mut first_of: HashMap<WorkId, usize> = HashMap::with_capacity(reqs.len());
    // Each batch is encoded only when its turn comes, so Redis starts on the first
    // while the next ones are being prepared.
    let results: Vec<Result<(Vec<usize>, Vec<EnqueueStatus>)>> = stream::iter(batches)
        .map(|(keys, lane, idx)| {
            let mut con = shared.clone();
            async move {
                let ids: Vec<String> = idx.iter().map(|&i| reqs[i].id.to_string()).collect();
                let records = idx
                    .iter()
                    .map(|&i| {
                        let r = &reqs[i];
                        record::encode_new(WorkState::Enqueued, &r.kind, &r.ext, r.input.as_bytes())
                    })
                    .collect::<Result<Vec<_>>>()?;
                let jobs: Vec<NewJob<'_>> = idx
                    .iter()
                    .zip(ids.iter().zip(&records))
                    .map(|(&i, (id, record))| reqs[i].new_job(id, record))
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
