//! [`WorkManager`], the producer's handle, and its settings. What it does is in one file
//! per verb: `enqueue.rs`, `chains/`, `periodic.rs`, `queries/`, `cancel.rs`, `stats.rs`,
//! `watch/`; every one of them reaches Redis through [`Connection`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workq_common::internal::scripts::Retention;
use workq_common::internal::Conn;
use workq_common::internal::RedisConfig;
use workq_common::{Durability, Error, Result, TlsConfig};

use crate::connection::Connection;

/// Default largest encoded input.
pub const DEFAULT_MAX_PAYLOAD: usize = 512 * 1024;

/// Settings for [`WorkManager`].
#[derive(Clone, Debug)]
#[must_use = "call connect() to get the WorkManager"]
pub struct WorkManagerBuilder {
    redis: RedisConfig,
    max_payload: usize,
    keep_failed: Duration,
    durability: Durability,
}

impl WorkManagerBuilder {
    /// Connections in the pool (default 8).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.redis.pool_size = n;
        self
    }

    /// How long to wait for any Redis reply (default 5 s).
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.redis.response_timeout = t;
        self
    }

    /// Certificates for a `rediss://` (or `rediss+sentinel://`) URL: a CA file instead of
    /// the system's roots, and a client certificate (default: neither). Needs the cargo
    /// feature `tls`; `connect` returns `Error::Config` (setting `tls`) for a file it
    /// cannot use, or for these settings with a `redis://` URL.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.redis.tls = Some(tls);
        self
    }

    /// Largest encoded input accepted (default 512 KiB).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How long the jobs this client ends stay queryable: those it cancels, and those it
    /// cancels or fails while applying a unique-work policy (default 7 days, as
    /// [`Retention::failed`] of a worker). The jobs workers end keep the workers'
    /// [`Retention`].
    pub fn retention(mut self, failed: Duration) -> Self {
        self.keep_failed = failed;
        self
    }

    /// How many copies the writes of this client (enqueues, chains, unique and periodic
    /// work, cancels) must reach before a call returns Ok (default
    /// [`Durability::Primary`]). With [`Durability::Replicas`] each such call waits for
    /// `WAIT` on its connection (so calls sharing the connection wait too, up to the
    /// timeout) and returns [`Error::NotDurable`] when the replicas did not acknowledge in
    /// time: the write exists on the primary and may be lost on failover.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Builds the pool and checks that Redis answers and is 7.0 or later (an
    /// `Error::Config` for an older one, which has no functions). It loads nothing: calls
    /// use workq's function library, and load it only if Redis does not have it, so a
    /// producer needs no more than `FCALL` and the commands its calls use (see the README's
    /// ACL rules), and connects to a Redis at `maxmemory`, which refuses `FUNCTION LOAD`.
    /// Warns (in the log) when Redis would evict keys or has AOF off, if this user may
    /// read `INFO`.
    pub async fn connect(self) -> Result<WorkManager> {
        if self.max_payload > workq_common::limits::MAX_INPUT_BYTES {
            return Err(Error::config(
                "max_payload",
                format!(
                    "max_payload {} is over the largest input the enqueue scripts store ({} bytes)",
                    self.max_payload,
                    workq_common::limits::MAX_INPUT_BYTES
                ),
            ));
        }
        self.durability.check()?;
        let redis = Connection::open(&self.redis).await?;
        Ok(WorkManager::with(
            redis,
            self.max_payload,
            self.keep_failed,
            self.durability,
        ))
    }
}

/// The producer's handle: enqueue, query and cancel work. Cheap to clone; clones share
/// one connection pool.
#[derive(Clone, Debug)]
pub struct WorkManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: Connection,
    max_payload: usize,
    keep_failed: Duration,
    durability: Durability,
    /// Queues this process has already added to `workq:queues`.
    registered: Mutex<HashSet<String>>,
}

impl WorkManager {
    /// Connects with default settings. `url` is `redis://[user:password@]host:port[/db]`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Starts a configured connection.
    pub fn builder(url: &str) -> WorkManagerBuilder {
        WorkManagerBuilder {
            redis: RedisConfig::new(url),
            max_payload: DEFAULT_MAX_PAYLOAD,
            keep_failed: Retention::default().failed,
            durability: Durability::Primary,
        }
    }

    fn with(
        redis: Connection,
        max_payload: usize,
        keep_failed: Duration,
        durability: Durability,
    ) -> Self {
        WorkManager {
            inner: Arc::new(Inner {
                redis,
                max_payload,
                keep_failed,
                durability,
                registered: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// A manager that has not connected (its pool connects on first use), for unit tests
    /// of what is built before any call.
    #[cfg(test)]
    pub(crate) fn unconnected(max_payload: usize) -> WorkManager {
        let redis =
            Connection::lazy(&RedisConfig::new("redis://127.0.0.1:1")).expect("pool config");
        WorkManager::with(
            redis,
            max_payload,
            Retention::default().failed,
            Durability::Primary,
        )
    }

    /// A Redis connection of its own, for tools and tests that need raw Redis access: it
    /// is not shared with this manager's calls (it leaves the pool, and closes when
    /// dropped), so blocking commands and `CONFIG` changes on it hold up nothing else.
    pub async fn connection(&self) -> Result<Conn> {
        self.inner.redis.detached().await
    }

    /// Where every call goes to Redis.
    pub(crate) fn redis(&self) -> &Connection {
        &self.inner.redis
    }

    /// Largest encoded input accepted.
    pub(crate) fn max_payload(&self) -> usize {
        self.inner.max_payload
    }

    /// Retention of jobs this client fails or cancels.
    pub(crate) fn keep_failed(&self) -> Duration {
        self.inner.keep_failed
    }

    /// How many copies this client's writes must reach.
    pub(crate) fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Whether this process has added `queue` to `workq:queues`.
    pub(crate) fn is_registered(&self, queue: &str) -> bool {
        self.inner
            .registered
            .lock()
            .map(|set| set.contains(queue))
            .unwrap_or(false)
    }

    /// Notes that this process has added `queue` to `workq:queues`.
    pub(crate) fn set_registered(&self, queue: &str) {
        if let Ok(mut set) = self.inner.registered.lock() {
            set.insert(queue.to_owned());
        }
    }
}
