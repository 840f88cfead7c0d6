//! Wake-ups: a pub/sub subscription to every served queue's `wake` channel, where enqueue
//! (and requeue) scripts publish. A message makes that queue's claim loop look again right
//! away; after a reconnect every loop looks once, in case a message was missed.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::Shared;
use crate::outage::Outage;

pub(super) async fn wake_loop(
    shared: Arc<Shared>,
    client: redis::Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut outage = Outage::new("wake");
    loop {
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            for q in &shared.queues {
                ps.subscribe(q.wake()).await?;
            }
            Ok::<_, redis::RedisError>(ps)
        }
        .await;
        match subscribed {
            Ok(ps) => {
                outage.recovered();
                for n in &shared.wake {
                    n.notify_one();
                }
                let mut messages = ps.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(m) => {
                                if let Some(q) = shared.queues.iter().position(|k| k.wake() == m.get_channel_name()) {
                                    shared.wake[q].notify_one();
                                }
                            }
                            None => break, // connection lost: resubscribe
                        },
                        _ = stop.changed() => return,
                    }
                }
            }
            Err(e) => {
                shared
                    .metrics
                    .redis_errors
                    .with_label_values(&["wake"])
                    .inc();
                let wait = outage.failed(&e.into());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}
