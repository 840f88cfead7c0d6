use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use workq_common::Job;

use crate::{WorkContext, WorkError, WorkResult, Worker};

pub(crate) type JobFuture = Pin<Box<dyn Future<Output = Result<WorkResult, WorkError>> + Send>>;

/// A worker with its job type erased, so workers of every kind share one table.
pub(crate) trait ErasedWorker: Send + Sync {
    /// Decodes the input and starts the attempt; `Err` carries why the input is unusable.
    fn start(&self, ctx: WorkContext, input: &[u8]) -> Result<JobFuture, String>;
}

struct Erased<W>(Arc<W>);

impl<W: Worker> ErasedWorker for Erased<W> {
    fn start(&self, ctx: WorkContext, input: &[u8]) -> Result<JobFuture, String> {
        let job: W::Job = rmp_serde::from_slice(input).map_err(|e| {
            format!(
                "undecodable input for kind '{}' ({} bytes): {e}",
                W::Job::KIND,
                input.len()
            )
        })?;
        let worker = Arc::clone(&self.0);
        Ok(Box::pin(async move { worker.do_work(&ctx, job).await }))
    }
}

/// A registered worker and its kind's name, shared with every attempt's context.
pub(crate) struct Registered {
    pub(crate) kind: Arc<str>,
    pub(crate) worker: Arc<dyn ErasedWorker>,
}

/// Workers by kind.
#[derive(Default)]
pub(crate) struct Registry {
    by_kind: HashMap<String, Registered>,
}

impl Registry {
    pub(crate) fn register<W: Worker>(&mut self, worker: W) -> Option<()> {
        let kind = W::Job::KIND;
        self.by_kind
            .insert(
                kind.to_owned(),
                Registered {
                    kind: Arc::from(kind),
                    worker: Arc::new(Erased(Arc::new(worker))),
                },
            )
            .map(|_| ())
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Registered> {
        self.by_kind.get(kind)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// Registered kinds, sorted, for messages.
    pub(crate) fn kinds(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.by_kind.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }
}
