//! [`QueueWatch`]: one queue's state changes, read from its events stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, FromRedisValue};
use workq_common::internal::retry::RetryDelay;
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkState};

use crate::connection::Dedicated;

/// How long the `watch` marker lives without a refresh; scripts write events only while
/// it exists, so nobody pays for events nobody reads.
pub(crate) const WATCH_TTL: Duration = Duration::from_secs(60);
pub(crate) const WATCH_REFRESH: Duration = Duration::from_secs(15);
const BLOCK: Duration = Duration::from_secs(1);

/// One state change of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkEvent {
    /// The job.
    pub id: WorkId,
    /// The state it entered.
    pub state: WorkState,
    /// Its attempt count at that moment.
    pub attempt: u32,
    /// The running attempt reported progress (the state is RUNNING).
    pub progress: bool,
    /// The progress reported, when it was small enough (4 KiB) to travel with the event.
    pub progress_data: Option<Vec<u8>>,
    /// The stream entry's id (Redis time in ms and a sequence number).
    pub entry: String,
}

/// A queue's state changes, read from its capped events stream. Every change made after
/// [`WorkManager::watch_queue`](crate::WorkManager::watch_queue) returned arrives in order.
/// A dropped connection is re-established and reading resumes after the last entry seen,
/// so a Redis restart loses no event unless the stream was trimmed past it meanwhile.
pub struct QueueWatch {
    /// Its own connection: `XREAD BLOCK` holds up whoever shares one.
    con: Dedicated,
    keys: QueueKeys,
    last: String,
    refreshed: Instant,
    buf: VecDeque<WorkEvent>,
}

impl std::fmt::Debug for QueueWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWatch")
            .field("queue", &self.keys.name())
            .field("last", &self.last)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl QueueWatch {
    /// The queue watched.
    pub fn queue(&self) -> &str {
        self.keys.name()
    }

    /// Starts reading after the last event the stream holds when the marker is set (in
    /// the same transaction, so no event written after it is skipped), or from `from_ms`
    /// (Redis time, ms) when given: a watch that finds a queue late still reads it from
    /// its own start.
    pub(crate) async fn start(
        mut con: Dedicated,
        keys: QueueKeys,
        from_ms: Option<u64>,
    ) -> Result<Self> {
        let k = &keys;
        let ((), newest): ((), redis::Value) = con
            .run(|mut con| async move {
                Ok(redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(k.watch())
                    .arg(1)
                    .arg("PX")
                    .arg(workq_common::time::ms(WATCH_TTL))
                    .cmd("XREVRANGE")
                    .arg(k.events())
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut con)
                    .await?)
            })
            .await?;
        let last = match from_ms {
            // Everything from that millisecond on: after the last id of the one before.
            Some(ms) => match ms.checked_sub(1) {
                Some(before) => format!("{before}-{}", u64::MAX),
                None => "0-0".to_owned(),
            },
            None => {
                let newest: Vec<(String, redis::Value)> = FromRedisValue::from_redis_value(newest)?;
                newest
                    .into_iter()
                    .next()
                    .map_or_else(|| "0-0".to_owned(), |(id, _)| id)
            }
        };
        Ok(QueueWatch {
            con,
            keys,
            last,
            refreshed: Instant::now(),
            buf: VecDeque::new(),
        })
    }

    /// The next event, waiting for one. Transient Redis failures are retried with backoff
    /// (up to 2 s between tries, jittered); other errors are returned.
    pub async fn next(&mut self) -> Result<WorkEvent> {
        let mut delay = RetryDelay::new(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            if let Some(ev) = self.buf.pop_front() {
                return Ok(ev);
            }
            match self.read().await {
                Ok(()) => delay.reset(),
                // The connection was dropped (see `Dedicated::run`): the next read takes a
                // fresh one.
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(delay.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the first event matching `pred`, skipping the others.
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&WorkEvent) -> bool,
    ) -> Result<WorkEvent> {
        loop {
            let ev = self.next().await?;
            if pred(&ev) {
                return Ok(ev);
            }
        }
    }

    async fn read(&mut self) -> Result<()> {
        let keys = &self.keys;
        if self.refreshed.elapsed() >= WATCH_REFRESH {
            self.con
                .run(|mut con| async move {
                    let _: () = con
                        .pset_ex(keys.watch(), 1, workq_common::time::ms(WATCH_TTL))
                        .await?;
                    Ok(())
                })
                .await?;
            self.refreshed = Instant::now();
        }
        let last = self.last.as_str();
        let reply: Option<StreamReadReply> = self
            .con
            .run(|mut con| async move {
                let opts = StreamReadOptions::default()
                    .count(256)
                    .block(usize::try_from(workq_common::time::ms(BLOCK)).unwrap_or(usize::MAX));
                Ok(con.xread_options(&[keys.events()], &[last], &opts).await?)
            })
            .await?;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let field = |name: &str| -> Result<String> {
                    entry
                        .map
                        .get(name)
                        .map(String::from_redis_value_ref)
                        .transpose()?
                        .ok_or_else(|| Error::Protocol(format!("event without '{name}'")))
                };
                let (ids, states, attempts) = (field("j")?, field("s")?, field("a")?);
                let data: Option<Vec<u8>> = entry
                    .map
                    .get("p")
                    .map(Vec::<u8>::from_redis_value_ref)
                    .transpose()?;
                for ((id, s), a) in ids
                    .split(',')
                    .zip(states.split(','))
                    .zip(attempts.split(','))
                {
                    // "P": a progress report of a RUNNING job.
                    let progress = s == "P";
                    let state = if progress {
                        Some(WorkState::Running)
                    } else {
                        s.parse::<u8>().ok().and_then(WorkState::from_code)
                    };
                    let (Ok(id), Some(state), Ok(attempt)) =
                        (id.parse::<WorkId>(), state, a.parse::<u32>())
                    else {
                        continue; // a job with a foreign id: not ours to report
                    };
                    self.buf.push_back(WorkEvent {
                        id,
                        state,
                        attempt,
                        progress,
                        progress_data: data.clone(),
                        entry: entry.id.clone(),
                    });
                }
                self.last = entry.id;
            }
        }
        Ok(())
    }
}
