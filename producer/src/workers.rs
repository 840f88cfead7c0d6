//! The workers of a queue, as their presence (the queue's `workers` hash) describes them.

use std::time::SystemTime;

use workq_common::internal::QueueKeys;
use workq_common::{system_time, Result};

use crate::WorkManager;

/// A worker counts as live (for stats, unsatisfiable lanes and [`WorkerInfo::live`]) while
/// it was seen this recently; claims and heartbeats record it every few seconds.
pub(crate) const LIVE_MS: u64 = 60_000;

/// One worker of a queue ([`WorkManager::list_workers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its id (by default `<host>:<pid>:<nonce>`).
    pub id: String,
    /// The queue it was seen on.
    pub queue: String,
    /// The machine it runs on (None for workers older than this field).
    pub host: Option<String>,
    /// Its labels.
    pub labels: Vec<String>,
    /// The kinds it runs; empty for a worker that claims any kind (one older than kind
    /// lanes).
    pub kinds: Vec<String>,
    /// The jobs of this queue it holds now.
    pub busy: u64,
    /// How many jobs it runs at once, over all its queues (None for older workers).
    pub slots: Option<u64>,
    /// When a claim or heartbeat of it last reached Redis (Redis time).
    pub last_seen: SystemTime,
    /// Seen within the last minute. Workers not seen for an hour are forgotten.
    pub live: bool,
}

/// A presence value, `<last seen ms>|<labels>|<kinds>|<host>|<slots>` (older workers wrote
/// fewer fields; docs/wire-format.md, "Keys").
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Presence {
    pub(crate) seen_ms: u64,
    pub(crate) labels: Vec<String>,
    /// None: written by a worker older than kind lanes, or with no kinds: runs any kind.
    pub(crate) kinds: Option<Vec<String>>,
    pub(crate) host: Option<String>,
    pub(crate) slots: Option<u64>,
}

impl Presence {
    pub(crate) fn parse(v: &str) -> Option<Self> {
        let mut parts = v.split('|');
        let seen_ms = parts.next()?.parse().ok()?;
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let labels = list(parts.next()?);
        let kinds = parts.next().map(list).filter(|k| !k.is_empty());
        let host = parts.next().filter(|h| !h.is_empty()).map(str::to_owned);
        let slots = parts.next().and_then(|s| s.parse().ok());
        Some(Presence {
            seen_ms,
            labels,
            kinds,
            host,
            slots,
        })
    }
}

impl WorkManager {
    /// The workers seen on `queue` in the last hour, by id: live ones (seen within a
    /// minute) and ones that stopped or died since. Two round trips: the queue's presence
    /// hash (one entry per worker), then the size of each one's held set.
    pub async fn list_workers(&self, queue: &str) -> Result<Vec<WorkerInfo>> {
        let q = QueueKeys::new(queue)?;
        let q = &q;
        self.redis()
            .run(|mut con| async move {
                let (seen, time): (Vec<(String, String)>, (u64, u64)) = redis::pipe()
                    .hgetall(q.workers())
                    .cmd("TIME")
                    .query_async(&mut con)
                    .await?;
                let now_ms = time.0 * 1000 + time.1 / 1000;
                let mut found: Vec<(String, Presence)> = seen
                    .into_iter()
                    .filter_map(|(id, v)| Presence::parse(&v).map(|p| (id, p)))
                    .collect();
                found.sort_by(|a, b| a.0.cmp(&b.0));
                let mut pipe = redis::pipe();
                for (id, _) in &found {
                    pipe.scard(q.held(id));
                }
                let busy: Vec<u64> = if found.is_empty() {
                    Vec::new()
                } else {
                    pipe.query_async(&mut con).await?
                };
                Ok(found
                    .into_iter()
                    .zip(busy)
                    .map(|((id, p), busy)| WorkerInfo {
                        id,
                        queue: q.name().to_owned(),
                        host: p.host,
                        labels: p.labels,
                        kinds: p.kinds.unwrap_or_default(),
                        busy,
                        slots: p.slots,
                        last_seen: system_time(p.seen_ms),
                        live: p.seen_ms + LIVE_MS >= now_ms,
                    })
                    .collect())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::Presence;

    #[test]
    fn presence_of_every_worker_version_parses() {
        let p = Presence::parse("1700|gpu,x|a,b|box-1|8").expect("full");
        assert_eq!(p.seen_ms, 1700);
        assert_eq!(p.labels, ["gpu", "x"]);
        assert_eq!(p.kinds, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.host.as_deref(), Some("box-1"));
        assert_eq!(p.slots, Some(8));
        // Before host and slots; before kinds; no labels.
        let p = Presence::parse("5|gpu|a").expect("three fields");
        assert_eq!((p.host, p.slots), (None, None));
        let p = Presence::parse("5|").expect("two fields");
        assert_eq!((p.labels.len(), p.kinds), (0, None));
        assert_eq!(Presence::parse("soon|x"), None);
        assert_eq!(Presence::parse(""), None);
    }
}
