//! Chains and unique work (WorkManager's `WorkContinuation`, `enqueueUniqueWork`). A chain
//! is stored in one script call: its first jobs ENQUEUED, the rest BLOCKED until all their
//! parents succeed; see `enqueue_graph.lua`. Periodic work, unique or not, is stored the
//! same way (`periodic.rs`).

use workq_common::internal::record;
use workq_common::internal::scripts::{scripts, GraphJob, GraphStatus, UniquePolicy};
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkState};

use crate::{OneTimeWorkRequest, WorkManager};

#[cfg(test)]
mod tests;

/// Most jobs in one chain.
pub const MAX_CHAIN: usize = 1000;

/// What to do when unique work of the same name is unfinished (WorkManager's
/// `ExistingWorkPolicy`). The name is free again once its work has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// The result of enqueueing a chain, unique work or periodic work.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
            .ok_or_else(|| Error::invalid("chain", "combine needs at least one chain"))?;
        for c in chains {
            if c.unique.is_some() && out.unique.is_some() {
                return Err(Error::invalid(
                    "chain",
                    "combine: at most one chain may be unique work",
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
            return Err(Error::invalid("chain", "a chain needs at least one job"));
        }
        if self.nodes.len() > MAX_CHAIN {
            return Err(Error::invalid(
                "chain",
                format!(
                    "a chain of {} jobs is over the limit of {MAX_CHAIN}",
                    self.nodes.len()
                ),
            ));
        }
        let queue = self.nodes[0].req.queue.clone();
        if let Some(other) = self.nodes.iter().find(|n| n.req.queue != queue) {
            return Err(Error::invalid(
                "chain",
                format!(
                    "a chain lives in one queue: '{}' and '{}' differ",
                    queue.name(),
                    other.req.queue.name()
                ),
            ));
        }
        if self.nodes.len() > 1 && self.nodes.iter().any(|n| n.req.ext.is_periodic()) {
            return Err(Error::invalid(
                "chain",
                "periodic work cannot be part of a chain",
            ));
        }
        let limit = self.wm.max_payload();
        for n in &self.nodes {
            n.req.check_size(limit)?;
        }
        let ids: Vec<String> = self.nodes.iter().map(|n| n.req.id.to_string()).collect();
        let mut children: Vec<Vec<String>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &p in &n.parents {
                children[p].push(ids[i].clone());
            }
        }
        #[cfg(feature = "otel")]
        {
            let trace = crate::otel::current();
            for n in &mut self.nodes {
                crate::otel::inject(&mut n.req.ext.metadata, &trace);
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

    /// Stores the chain, as unique work `name` when given, with its policy.
    pub(crate) async fn store(
        mut self,
        unique: Option<(String, UniquePolicy)>,
    ) -> Result<WorkOutcome> {
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
                job: n.req.new_job(&ids[i], &records[i]),
                lane: &lanes[i],
            })
            .collect();
        self.wm.register_queue(&queue).await?;
        let unique = unique
            .as_ref()
            .map(|(name, policy)| (name.as_str(), *policy));
        let keep_failed = self.wm.keep_failed();
        let durability = self.wm.durability();
        let (_, status, ids) = self
            .wm
            .redis()
            .run(|mut con| async move {
                let out = scripts()
                    .enqueue_graph(&mut con, &queue, unique, keep_failed, &jobs)
                    .await?;
                durability
                    .confirm(&mut con, queue.prefix(), "enqueue")
                    .await?;
                Ok(out)
            })
            .await?;
        Ok(WorkOutcome {
            status,
            ids: ids.iter().filter_map(|i| i.parse().ok()).collect(),
        })
    }
}
