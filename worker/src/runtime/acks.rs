//! The ack loop: records finished attempts in batches (one script call per queue with
//! whatever has accumulated while the previous call was in flight). Through a Redis outage
//! it keeps retrying each ack until that job's lease would have ended; after that the
//! reaper will run the job again anyway.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use workq_common::internal::scripts::{scripts, Ack};
use workq_common::internal::Pooled as Connection;
use workq_common::Result;

use super::held::Unsendable;
use super::queue::Queue;
use super::{PendingAck, Shared};
use crate::outage::Outage;

const BATCH: usize = 1000;

/// Acks waiting to be sent, per queue (indexed like `Shared::queues`), each with whether
/// a try has failed already.
type Pending = Vec<Vec<(Ack, bool)>>;

pub(super) async fn ack_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<PendingAck>) {
    let mut pending: Pending = shared.queues.iter().map(|_| Vec::new()).collect();
    let mut count = 0;
    let mut con: Option<Connection> = None;
    let mut outage = Outage::new("ack").counting(&shared.metrics, "ack");
    loop {
        if count == 0 {
            match rx.recv().await {
                Some(a) => {
                    pending[a.queue].push((a.ack, false));
                    count += 1;
                }
                None => return,
            }
        }
        while count < BATCH {
            match rx.try_recv() {
                Ok(a) => {
                    pending[a.queue].push((a.ack, false));
                    count += 1;
                }
                Err(_) => break,
            }
        }
        give_up_on_expired(&shared, &mut pending);
        count = pending.iter().map(Vec::len).sum();
        if count == 0 {
            continue;
        }
        let res = send(&shared, &mut con, &mut pending).await;
        count = pending.iter().map(Vec::len).sum();
        match res {
            Ok(()) => outage.recovered(),
            Err(e) => {
                con = None;
                for p in pending.iter_mut().flatten() {
                    p.1 = true;
                }
                tokio::time::sleep(outage.failed(&e)).await;
            }
        }
    }
}

/// Sends the acks queue by queue, removing each batch from `pending` once Redis took it.
async fn send(shared: &Shared, con: &mut Option<Connection>, pending: &mut Pending) -> Result<()> {
    let con = shared.kept(con).await?;
    for (q, batch) in pending.iter_mut().enumerate() {
        if batch.is_empty() {
            continue;
        }
        let queue = &shared.queues[q];
        let (acks, retried): (Vec<Ack>, Vec<bool>) = std::mem::take(batch).into_iter().unzip();
        let timer = shared.metrics.calls.ack.start_timer();
        let applied = match scripts()
            .ack(
                &mut **con,
                &queue.keys,
                &shared.cfg.worker_id,
                &shared.cfg.retention,
                &acks,
            )
            .await
        {
            Ok(a) => {
                drop(timer);
                a
            }
            Err(e) => {
                *batch = acks.into_iter().zip(retried).collect();
                return Err(e);
            }
        };
        let key = queue.keys.prefix();
        super::confirm(shared, con, key, "ack", &shared.metrics.not_durable.ack).await;
        queue
            .held
            .settle(acks.iter().map(|ack| (&*ack.id, ack.token)));
        for ((ack, retried), ok) in acks.iter().zip(retried).zip(applied) {
            if !ok {
                if retried {
                    // A reply lost to a timeout may have been applied the first time.
                    tracing::debug!(id = %ack.id, "retried ack refused (likely applied before)");
                } else {
                    fenced(queue, ack);
                }
            }
        }
    }
    Ok(())
}

/// Drops the acks that cannot be recorded any more: those of jobs a heartbeat found lost
/// (fenced), and those that Redis failed to take (an outage) until their lease ended
/// (see [`HeldJobs::expire`](super::held::HeldJobs::expire)).
fn give_up_on_expired(shared: &Shared, pending: &mut Pending) {
    let now = Instant::now();
    for (queue, batch) in shared.queues.iter().zip(pending) {
        if batch.is_empty() {
            continue;
        }
        let dropped = queue
            .held
            .expire(batch, now, |(ack, tried)| (&*ack.id, ack.token, *tried));
        for ((ack, _), why) in dropped {
            match why {
                Unsendable::Fenced => fenced(queue, &ack),
                Unsendable::Expired => {
                    tracing::warn!(id = %ack.id, "gave up recording an outcome: Redis could not be reached before this attempt's lease ended; another attempt runs the job (or will)");
                }
            }
        }
    }
}

/// Reports an outcome that will not be recorded because its attempt was fenced out.
fn fenced(queue: &Queue, ack: &Ack) {
    queue.metrics.acks_refused.inc();
    tracing::warn!(id = %ack.id, attempt = ack.token, "outcome not recorded: fenced (this attempt's lease ended, and another attempt owns the job now)");
}
