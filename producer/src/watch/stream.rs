//! [`WorkInfoStream`] and the tasks behind it: one follower per queue, turning the
//! queue's events about the target into `WorkInfo`, and for a watch of every queue, one
//! task that finds queues created later.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use workq_common::internal::retry::RetryDelay;
use workq_common::internal::QueueKeys;
use workq_common::{Result, WorkId, WorkInfo, WorkState};

use super::{QueueWatch, WatchTarget, WorkEvent, WATCH_REFRESH};
use crate::WorkManager;

/// `WorkInfo` items of a watch. Dropping it stops the watch.
#[derive(Debug)]
pub struct WorkInfoStream {
    pub(super) rx: mpsc::Receiver<Result<WorkInfo>>,
    pub(super) tasks: Vec<JoinHandle<()>>,
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
pub(super) async fn discover(
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
            if let Ok(w) = wm.watch_queue_from(keys, Some(since)).await {
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
pub(super) async fn follow(
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
