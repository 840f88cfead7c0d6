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
        // redis-rs takes no timeouts for pub/sub connections: a Redis that accepts the
        // connection and never answers would hold this forever, so the whole subscription
        // gets the connect and response timeouts, and the stop signal cuts it short.
        let limit = shared.cfg.redis.connect_timeout + shared.cfg.redis.response_timeout;
        let subscribe = async {
            let mut ps = client.get_async_pubsub().await?;
            for q in &shared.queues {
                ps.subscribe(q.wake()).await?;
            }
            Ok::<_, redis::RedisError>(ps)
        };
        let subscribed = tokio::select! {
            r = tokio::time::timeout(limit, subscribe) => r.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer to SUBSCRIBE within {limit:?}"),
                )
                .into())
            }),
            _ = stop.changed() => return,
        };
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
