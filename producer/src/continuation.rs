//! Chains and unique work (WorkManager's `WorkContinuation`, `enqueueUniqueWork`), and
//! periodic work. A chain is stored in one script call: its first jobs ENQUEUED, the rest
//! BLOCKED until all their parents succeed; see `enqueue_graph.lua`.

use std::time::{SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use workq_common::record;
use workq_common::scripts::{scripts, GraphJob, GraphStatus, NewJob, UniquePolicy};
use workq_common::{Error, Millis, QueueKeys, Result, WorkId, WorkState};

use crate::request::PeriodicWorkRequest;
use crate::{OneTimeWorkRequest, WorkManager};

/// Most jobs in one chain.
pub const MAX_CHAIN: usize = 1000;

/// What to do when unique work of the same name is unfinished (WorkManager's
/// `ExistingWorkPolicy`). The name is free again once its work has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingWorkPolicy {
    /// Keep the existing work; the new request is dropped.
    Keep,
    /// Cancel the existing work (waiting or running) and enqueue the new one.
    Replace,
    /// Make the new work a child of the existing work's last jobs: it runs when they have
    /// succeeded. If they failed or were cancelled, the new work fails or is cancelled too.
    Append,
    /// Like `Append`, but when the existing work failed or was cancelled, start a fresh
    /// chain instead.
    AppendOrReplace,
}

/// What to do when unique periodic work of the same name exists (WorkManager's
/// `ExistingPeriodicWorkPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingPeriodicWorkPolicy {
    /// Keep the existing periodic work.
    Keep,
    /// Keep its id and schedule, take the new kind, input and options (a run in progress
    /// finishes with the old ones).
    Update,
    /// Cancel it and enqueue the new one.
    CancelAndReenqueue,
}

impl ExistingWorkPolicy {
    fn script_policy(self) -> UniquePolicy {
        match self {
            ExistingWorkPolicy::Keep => UniquePolicy::Keep,
            ExistingWorkPolicy::Replace => UniquePolicy::Replace,
            ExistingWorkPolicy::Append => UniquePolicy::Append,
            ExistingWorkPolicy::AppendOrReplace => UniquePolicy::AppendOrReplace,
        }
    }
}

impl ExistingPeriodicWorkPolicy {
    fn script_policy(self) -> UniquePolicy {
        match self {
            ExistingPeriodicWorkPolicy::Keep => UniquePolicy::Keep,
            ExistingPeriodicWorkPolicy::Update => UniquePolicy::Update,
            ExistingPeriodicWorkPolicy::CancelAndReenqueue => UniquePolicy::CancelAndReenqueue,
        }
    }
}

/// The result of enqueueing a chain, unique work or periodic work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkOutcome {
    /// What happened.
    pub status: GraphStatus,
    /// The jobs concerned: the new ones, or the existing ones the policy kept or updated.
    pub ids: Vec<WorkId>,
}

/// A checked chain, ready for the enqueue script.
#[derive(Debug)]
struct Built {
    queue: QueueKeys,
    ids: Vec<String>,
    records: Vec<Vec<u8>>,
    lanes: Vec<String>,
}

#[derive(Clone, Debug)]
struct Node {
    req: OneTimeWorkRequest,
    parents: Vec<usize>,
}

/// A chain of work being built (WorkManager's `WorkContinuation`): `begin_with` the first
/// jobs, `then` the next ones, and `enqueue`. Each job in a `then` runs once every job of
/// the previous step has succeeded, with their outputs merged into its input.
#[derive(Clone, Debug)]
#[must_use = "call enqueue() to store the chain"]
pub struct WorkContinuation {
    wm: WorkManager,
    nodes: Vec<Node>,
    leaves: Vec<usize>,
    unique: Option<(String, ExistingWorkPolicy)>,
}

impl WorkManager {
    /// Starts a chain with jobs that run in parallel.
    pub fn begin_with(
        &self,
        reqs: impl IntoIterator<Item = OneTimeWorkRequest>,
    ) -> WorkContinuation {
        let nodes: Vec<Node> = reqs
            .into_iter()
            .map(|req| Node {
                req,
                parents: Vec::new(),
            })
            .collect();
        WorkContinuation {
            wm: self.clone(),
            leaves: (0..nodes.len()).collect(),
            nodes,
            unique: None,
        }
    }

    /// Starts a chain that is unique work `name`.
    pub fn begin_unique_work(
        &self,
        name: &str,
        policy: ExistingWorkPolicy,
        reqs: impl IntoIterator<Item = OneTimeWorkRequest>,
    ) -> WorkContinuation {
        let mut c = self.begin_with(reqs);
        c.unique = Some((name.to_owned(), policy));
        c
    }

    /// Enqueues one request as unique work `name` (WorkManager's `enqueueUniqueWork`).
    /// Race-free: of many producers doing this at once with `Keep`, one enqueues.
    pub async fn enqueue_unique_work(
        &self,
        name: &str,
        policy: ExistingWorkPolicy,
        req: OneTimeWorkRequest,
    ) -> Result<WorkOutcome> {
        self.begin_unique_work(name, policy, [req]).enqueue().await
    }

    /// Enqueues periodic work.
    pub async fn enqueue_periodic(&self, req: PeriodicWorkRequest) -> Result<WorkOutcome> {
        self.enqueue_periodic_as(None, req).await
    }

    /// Enqueues periodic work as unique work `name` (WorkManager's
    /// `enqueueUniquePeriodicWork`).
    pub async fn enqueue_unique_periodic_work(
        &self,
        name: &str,
        policy: ExistingPeriodicWorkPolicy,
        req: PeriodicWorkRequest,
    ) -> Result<WorkOutcome> {
        self.enqueue_periodic_as(Some((name, policy.script_policy())), req)
            .await
    }

    async fn enqueue_periodic_as(
        &self,
        unique: Option<(&str, UniquePolicy)>,
        req: PeriodicWorkRequest,
    ) -> Result<WorkOutcome> {
        let PeriodicWorkRequest { mut req, cron } = req;
        if let Some(cron) = cron {
            // Cron times are absolute: count them from Redis' clock, not this machine's.
            let now = self.redis_now().await?;
            let first = cron.next_after(now).ok_or_else(|| {
                Error::InvalidRequest(format!("cron '{}' never fires", cron.as_str()))
            })?;
            req.at = Some(UNIX_EPOCH + std::time::Duration::from_millis(first));
            req.ext.next_period_ms = cron.next_after(first);
        }
        match unique {
            None => {
                let out = self.enqueue(req).await?;
                Ok(WorkOutcome {
                    status: match out.status {
                        workq_common::scripts::EnqueueStatus::Enqueued => GraphStatus::Enqueued,
                        workq_common::scripts::EnqueueStatus::Existed => GraphStatus::Existed,
                    },
                    ids: vec![out.id],
                })
            }
            Some((name, policy)) => {
                let c = WorkContinuation {
                    wm: self.clone(),
                    nodes: vec![Node {
                        req,
                        parents: Vec::new(),
                    }],
                    leaves: vec![0],
                    unique: None,
                };
                c.store(Some((name.to_owned(), policy))).await
            }
        }
    }

    async fn redis_now(&self) -> Result<Millis> {
        let mut con: MultiplexedConnection = self.connection().await?;
        let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await?;
        Ok(s * 1000 + us / 1000)
    }
}

impl WorkContinuation {
    /// Adds jobs that run, in parallel, once every job of the previous step succeeded.
    pub fn then(mut self, reqs: impl IntoIterator<Item = OneTimeWorkRequest>) -> Self {
        let parents = std::mem::take(&mut self.leaves);
        for req in reqs {
            self.nodes.push(Node {
                req,
                parents: parents.clone(),
            });
            self.leaves.push(self.nodes.len() - 1);
        }
        self
    }

    /// Joins chains: what follows (`then`) waits for the last jobs of all of them
    /// (WorkManager's `WorkContinuation.combine`). At most one of them may be unique work.
    pub fn combine(chains: impl IntoIterator<Item = WorkContinuation>) -> Result<Self> {
        let mut chains = chains.into_iter();
        let mut out = chains
            .next()
            .ok_or_else(|| Error::InvalidRequest("combine needs at least one chain".into()))?;
        for c in chains {
            if c.unique.is_some() && out.unique.is_some() {
                return Err(Error::InvalidRequest(
                    "combine: at most one chain may be unique work".into(),
                ));
            }
            let base = out.nodes.len();
            out.nodes.extend(c.nodes.into_iter().map(|mut n| {
                n.parents.iter_mut().for_each(|p| *p += base);
                n
            }));
            out.leaves.extend(c.leaves.into_iter().map(|l| l + base));
            out.unique = out.unique.or(c.unique);
        }
        Ok(out)
    }

    /// The ids the chain's jobs will have, in the order they were added.
    pub fn ids(&self) -> Vec<WorkId> {
        self.nodes.iter().map(|n| n.req.id).collect()
    }

    /// Stores the chain in one step: all of it or none of it. Enqueueing the same chain
    /// (the same ids) again changes nothing.
    pub async fn enqueue(self) -> Result<WorkOutcome> {
        let unique = self
            .unique
            .clone()
            .map(|(name, policy)| (name, policy.script_policy()));
        self.store(unique).await
    }

    /// Checks the chain and writes each job's edges into its options (parents `P`, pending
    /// parents `p`, children `k`) with the unique name; returns what the enqueue script
    /// takes: the queue, the ids, the records and the lanes, in the order of the jobs.
    fn build(&mut self, name: Option<String>) -> Result<Built> {
        if self.nodes.is_empty() {
            return Err(Error::InvalidRequest(
                "a chain needs at least one job".into(),
            ));
        }
        if self.nodes.len() > MAX_CHAIN {
            return Err(Error::InvalidRequest(format!(
                "a chain of {} jobs is over the limit of {MAX_CHAIN}",
                self.nodes.len()
            )));
        }
        let queue = self.nodes[0].req.queue.clone();
        if let Some(other) = self.nodes.iter().find(|n| n.req.queue != queue) {
            return Err(Error::InvalidRequest(format!(
                "a chain lives in one queue: '{}' and '{}' differ",
                queue.name(),
                other.req.queue.name()
            )));
        }
        if self.nodes.len() > 1 && self.nodes.iter().any(|n| n.req.ext.is_periodic()) {
            return Err(Error::InvalidRequest(
                "periodic work cannot be part of a chain".into(),
            ));
        }
        let limit = self.wm.max_payload();
        for n in &self.nodes {
            if n.req.input.len() > limit {
                return Err(Error::PayloadTooLarge {
                    what: format!("input of job {} (kind '{}')", n.req.id, n.req.kind),
                    size: n.req.input.len(),
                    limit,
                });
            }
        }
        let ids: Vec<String> = self.nodes.iter().map(|n| n.req.id.to_string()).collect();
        let mut children: Vec<Vec<String>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &p in &n.parents {
                children[p].push(ids[i].clone());
            }
        }
        let mut records = Vec::with_capacity(self.nodes.len());
        let mut lanes = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let ext = &mut n.req.ext;
            ext.parents = n.parents.iter().map(|&p| ids[p].clone()).collect();
            ext.pending_parents = (!n.parents.is_empty()).then_some(n.parents.len() as u32);
            ext.children = std::mem::take(&mut children[i]);
            ext.unique_name = name.clone();
            let state = if n.parents.is_empty() {
                WorkState::Enqueued
            } else {
                WorkState::Blocked
            };
            records.push(record::encode_new(
                state,
                &n.req.kind,
                ext,
                n.req.input.as_bytes(),
            )?);
            lanes.push(ext.lane());
        }
        Ok(Built {
            queue,
            ids,
            records,
            lanes,
        })
    }

    async fn store(mut self, unique: Option<(String, UniquePolicy)>) -> Result<WorkOutcome> {
        let name = unique.as_ref().map(|(n, _)| n.clone());
        let Built {
            queue,
            ids,
            records,
            lanes,
        } = self.build(name)?;
        let jobs: Vec<GraphJob<'_>> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| GraphJob {
                job: NewJob {
                    id: &ids[i],
                    delay_ms: u64::try_from(n.req.delay.as_millis()).unwrap_or(u64::MAX),
                    at_ms: n.req.at.map_or(0, at_ms),
                    record: &records[i],
                },
                lane: &lanes[i],
            })
            .collect();
        let keys: QueueKeys = queue;
        self.wm.register_queue(&keys).await?;
        let unique = unique
            .as_ref()
            .map(|(name, policy)| (name.as_str(), *policy));
        let res = async {
            let mut con = self.wm.connection().await?;
            scripts()
                .enqueue_graph(&mut con, &keys, unique, self.wm.keep_failed(), &jobs)
                .await
        }
        .await;
        let (_, status, ids) = self.wm.checked(res)?;
        Ok(WorkOutcome {
            status,
            ids: ids.iter().filter_map(|i| i.parse().ok()).collect(),
        })
    }
}

fn at_ms(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::time::Duration;

    use serde::{Deserialize, Serialize};
    use workq_common::record::Record;
    use workq_common::{Data, Job};

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Step {
        n: u32,
    }
    impl Job for Step {
        const KIND: &'static str = "step";
    }

    fn wm() -> WorkManager {
        WorkManager::unconnected(1024)
    }

    fn step(n: u32) -> OneTimeWorkRequest {
        OneTimeWorkRequest::builder(Step { n }).build().unwrap()
    }

    fn refused(mut c: WorkContinuation) -> String {
        match c.build(None) {
            Err(Error::InvalidRequest(msg)) => msg,
            Err(e) => panic!("expected InvalidRequest, got {e:?}"),
            Ok(b) => panic!("expected InvalidRequest, built {b:?}"),
        }
    }

    fn id(r: &OneTimeWorkRequest) -> String {
        r.id().to_string()
    }

    /// The options stored with job `i` of a built chain, decoded from its record.
    fn stored(built: &Built, i: usize) -> (WorkState, record::Ext) {
        let r = Record::decode(built.records[i].clone()).unwrap();
        (r.header.state, r.header.ext)
    }

    #[test]
    fn each_step_waits_for_every_job_of_the_step_before() {
        let (a, b, c, d, e) = (step(1), step(2), step(3), step(4), step(5));
        let mut chain = wm()
            .begin_with([a.clone(), b.clone()])
            .then([c.clone()])
            .then([d.clone(), e.clone()]);
        assert_eq!(chain.ids(), [a.id(), b.id(), c.id(), d.id(), e.id()]);
        let built = chain.build(None).unwrap();
        assert_eq!(built.queue.name(), "default");
        assert_eq!(built.ids, [id(&a), id(&b), id(&c), id(&d), id(&e)]);

        for root in 0..2 {
            let (state, ext) = stored(&built, root);
            assert_eq!(state, WorkState::Enqueued);
            assert!(ext.parents.is_empty());
            assert_eq!(ext.pending_parents, None);
            assert_eq!(ext.children, [id(&c)]);
        }
        let (state, ext) = stored(&built, 2);
        assert_eq!(state, WorkState::Blocked);
        assert_eq!(ext.parents, [id(&a), id(&b)]);
        assert_eq!(ext.pending_parents, Some(2));
        assert_eq!(ext.children, [id(&d), id(&e)]);
        for leaf in 3..5 {
            let (state, ext) = stored(&built, leaf);
            assert_eq!(state, WorkState::Blocked);
            assert_eq!(ext.parents, [id(&c)]);
            assert_eq!(ext.pending_parents, Some(1));
            assert!(ext.children.is_empty());
        }
        assert!((0..5).all(|i| stored(&built, i).1.unique_name.is_none()));
    }

    #[test]
    fn combined_chains_join_at_the_last_jobs_of_each() {
        let (a1, a2, b1, join) = (step(1), step(2), step(3), step(4));
        let wm = wm();
        let a = wm.begin_with([a1.clone()]).then([a2.clone()]);
        let b = wm.begin_with([b1.clone()]);
        let mut chain = WorkContinuation::combine([a, b])
            .unwrap()
            .then([join.clone()]);
        let built = chain.build(None).unwrap();
        assert_eq!(built.ids, [id(&a1), id(&a2), id(&b1), id(&join)]);
        assert_eq!(stored(&built, 0).1.children, [id(&a2)]);
        assert_eq!(stored(&built, 1).1.parents, [id(&a1)]);
        assert_eq!(stored(&built, 1).1.children, [id(&join)]);
        assert_eq!(stored(&built, 2).0, WorkState::Enqueued);
        assert_eq!(stored(&built, 2).1.children, [id(&join)]);
        let (state, ext) = stored(&built, 3);
        assert_eq!(state, WorkState::Blocked);
        assert_eq!(ext.parents, [id(&a2), id(&b1)]);
        assert_eq!(ext.pending_parents, Some(2));
    }

    #[test]
    fn combine_refuses_nothing_and_two_unique_chains() {
        let msg = match WorkContinuation::combine([]) {
            Err(Error::InvalidRequest(msg)) => msg,
            other => panic!("{other:?}"),
        };
        assert_eq!(msg, "combine needs at least one chain");
        let wm = wm();
        let u1 = wm.begin_unique_work("one", ExistingWorkPolicy::Keep, [step(1)]);
        let u2 = wm.begin_unique_work("two", ExistingWorkPolicy::Keep, [step(2)]);
        match WorkContinuation::combine([u1, u2]) {
            Err(Error::InvalidRequest(msg)) => {
                assert_eq!(msg, "combine: at most one chain may be unique work")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_job_of_unique_work_carries_its_name() {
        let mut chain = wm()
            .begin_unique_work("nightly", ExistingWorkPolicy::Append, [step(1)])
            .then([step(2)]);
        assert_eq!(
            chain.unique,
            Some(("nightly".to_owned(), ExistingWorkPolicy::Append))
        );
        let built = chain.build(Some("nightly".into())).unwrap();
        for i in 0..2 {
            assert_eq!(stored(&built, i).1.unique_name.as_deref(), Some("nightly"));
        }
    }

    #[test]
    fn each_job_waits_in_the_lane_of_its_own_options() {
        let gpu = OneTimeWorkRequest::builder(Step { n: 1 })
            .require_label("gpu")
            .require_label("eu")
            .build()
            .unwrap();
        let fast = OneTimeWorkRequest::builder(Step { n: 2 })
            .expedited()
            .build()
            .unwrap();
        let built = wm()
            .begin_with([gpu, fast])
            .then([step(3)])
            .build(None)
            .unwrap();
        assert_eq!(built.lanes, ["@eu,gpu", "x", ""]);
    }

    #[test]
    fn an_empty_chain_is_refused() {
        assert_eq!(
            refused(wm().begin_with([])),
            "a chain needs at least one job"
        );
    }

    #[test]
    fn a_chain_over_the_limit_is_refused() {
        let msg = refused(wm().begin_with((0..=MAX_CHAIN as u32).map(step)));
        assert_eq!(
            msg,
            format!(
                "a chain of {} jobs is over the limit of {MAX_CHAIN}",
                MAX_CHAIN + 1
            )
        );
        assert!(wm()
            .begin_with((0..MAX_CHAIN as u32).map(step))
            .build(None)
            .is_ok());
    }

    #[test]
    fn a_chain_across_queues_is_refused() {
        let other = OneTimeWorkRequest::builder(Step { n: 2 })
            .queue("emails")
            .build()
            .unwrap();
        assert_eq!(
            refused(wm().begin_with([step(1)]).then([other])),
            "a chain lives in one queue: 'default' and 'emails' differ"
        );
    }

    #[test]
    fn a_periodic_job_in_a_chain_is_refused_but_alone_it_builds() {
        let periodic = |n| {
            PeriodicWorkRequest::builder(Step { n }, Duration::from_secs(60))
                .build()
                .unwrap()
                .req
        };
        assert_eq!(
            refused(wm().begin_with([step(1)]).then([periodic(2)])),
            "periodic work cannot be part of a chain"
        );
        assert!(wm().begin_with([periodic(3)]).build(None).is_ok());
    }

    #[test]
    fn an_input_over_the_manager_s_limit_is_refused() {
        let big = OneTimeWorkRequest::builder_raw("blob", Data::from_bytes(vec![0; 2048]))
            .build()
            .unwrap();
        let big_id = big.id();
        match wm().begin_with([step(1)]).then([big]).build(None) {
            Err(Error::PayloadTooLarge { what, size, limit }) => {
                assert_eq!(what, format!("input of job {big_id} (kind 'blob')"));
                assert_eq!((size, limit), (2048, 1024));
            }
            other => panic!("{other:?}"),
        }
    }
}
