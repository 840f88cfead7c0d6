//! One line of setup per test, in the style of redis-rs's `TestContext`: a private Redis,
//! a `WorkManager` on it, a watch on the "default" queue started before anything can
//! happen (unless made `without_watch`), and (optionally) an in-process worker runtime
//! serving "default".
//!
//! ```ignore
//! let mut ctx = TestContext::with_worker(|b| b.concurrency(8)).await;
//! ctx.wm.enqueue(req.clone()).await.unwrap();
//! let info = ctx.finished(req.id()).await;
//! ctx.stop_worker().await;
//! ```

use workq_producer::{QueueWatch, WorkId, WorkInfo, WorkManager, WorkState};
use workq_tests::RedisServer;
use workq_worker::WorkerRuntimeBuilder;

use crate::support::{self, InProcess};

/// A test's Redis, manager, queue watch and worker. Fields drop in declaration order: the
/// worker first, the server last.
pub(crate) struct TestContext {
    worker: Option<InProcess>,
    /// Events of the "default" queue since the context was made (None: made without, as
    /// a watch turns on the queue's event stream, which some tests must not have).
    watch: Option<QueueWatch>,
    /// A manager connected to `redis`.
    pub(crate) wm: WorkManager,
    /// The test's own redis-server.
    pub(crate) redis: RedisServer,
}

impl TestContext {
    /// A fresh Redis, a manager and a watch on "default"; no worker.
    pub(crate) async fn new() -> Self {
        let mut ctx = Self::without_watch().await;
        ctx.watch = Some(ctx.wm.watch_queue("default").await.unwrap());
        ctx
    }

    /// A fresh Redis and a manager, and no watch: the queue's event stream stays off.
    pub(crate) async fn without_watch() -> Self {
        let redis = RedisServer::start();
        let wm = support::manager(&redis.url()).await;
        TestContext {
            worker: None,
            watch: None,
            wm,
            redis,
        }
    }

    /// [`TestContext::new`] plus an in-process worker serving "default" with the test job
    /// kinds, configured by `configure`.
    pub(crate) async fn with_worker(
        configure: impl FnOnce(WorkerRuntimeBuilder) -> WorkerRuntimeBuilder,
    ) -> Self {
        let mut ctx = Self::new().await;
        ctx.start_worker(configure);
        ctx
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        self.redis.url()
    }

    /// Starts the in-process worker serving "default" (there is at most one per context;
    /// start more with [`InProcess::start`]).
    pub(crate) fn start_worker(
        &mut self,
        configure: impl FnOnce(WorkerRuntimeBuilder) -> WorkerRuntimeBuilder,
    ) {
        assert!(self.worker.is_none(), "the context's worker already runs");
        self.worker = Some(InProcess::start(&self.redis.url(), "default", configure));
    }

    /// Stops the in-process worker and waits for it to finish (a runtime error fails the
    /// test).
    pub(crate) async fn stop_worker(&mut self) {
        self.worker
            .take()
            .expect("the context has no worker")
            .stop()
            .await;
    }

    /// The watch on "default", started when the context was made.
    pub(crate) fn watch(&mut self) -> &mut QueueWatch {
        self.watch
            .as_mut()
            .expect("the context was made without a watch")
    }

    /// The manager and the watch together, for helpers that take both.
    pub(crate) fn wm_and_watch(&mut self) -> (&WorkManager, &mut QueueWatch) {
        let watch = self
            .watch
            .as_mut()
            .expect("the context was made without a watch");
        (&self.wm, watch)
    }

    /// Waits for `id` to reach a finished state and returns its info.
    pub(crate) async fn finished(&mut self, id: WorkId) -> WorkInfo {
        let (wm, watch) = self.wm_and_watch();
        support::finished(wm, watch, id).await
    }

    /// Waits for `id` to enter `state`; returns the attempt of that event.
    pub(crate) async fn reaches(&mut self, id: WorkId, state: WorkState) -> u32 {
        support::reaches(self.watch(), id, state).await
    }

    /// The job's info; it must exist.
    pub(crate) async fn info(&self, id: WorkId) -> WorkInfo {
        support::info(&self.wm, id).await
    }
}
