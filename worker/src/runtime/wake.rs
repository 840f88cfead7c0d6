//! Wake-ups: a pub/sub subscription to every served queue's `wake` channel, where enqueue
//! (and requeue) scripts publish. A message makes that queue's claim loop look again right
//! away; after a reconnect every loop looks once, in case a message was missed.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::outage::Outage;

pub(super) async fn wake_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut outage = Outage::new("wake").counting(&shared.metrics, "wake");
    loop {
        // redis-rs takes no timeouts for pub/sub connections: a Redis that accepts the
        // connection and never answers would hold this forever, so the whole subscription
        // gets the connect and response timeouts, and the stop signal cuts it short.
        let limit = shared.cfg.redis.connect_timeout + shared.cfg.redis.response_timeout;
        let subscribe = async {
            // Through Sentinel, the primary of the moment.
            let client = shared.cfg.redis.client().await?;
            let mut ps = client.get_async_pubsub().await?;
            for q in &shared.queues {
                ps.subscribe(q.keys.wake()).await?;
            }
            Ok::<_, workq_common::Error>(ps)
        };
        let subscribed = tokio::select! {
            r = tokio::time::timeout(limit, subscribe) => r.unwrap_or_else(|_| {
                Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer to SUBSCRIBE within {limit:?}"),
                ))
                .into())
            }),
            () = stop.cancelled() => return,
        };
        match subscribed {
            Ok(ps) => {
                outage.recovered();
                for q in &shared.queues {
                    q.wake.notify_one();
                }
                let mut messages = ps.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(m) => {
                                if let Some(q) = shared.queues.iter().find(|q| q.keys.wake() == m.get_channel_name()) {
                                    q.wake.notify_one();
                                }
                            }
                            None => break, // connection lost: resubscribe
                        },
                        () = stop.cancelled() => return,
                    }
                }
            }
            Err(e) => {
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}
