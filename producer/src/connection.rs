//! The producer's way to Redis. Every call of a [`WorkManager`](crate::WorkManager) goes
//! through [`Connection::run`], which holds the one rule about connections: the
//! connection is kept between calls and dropped after a transient error, so that the next
//! call takes a fresh one. Nothing else in the producer touches the pool.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use workq_common::internal::Conn;
use workq_common::internal::Pool;
use workq_common::internal::RedisConfig;
use workq_common::Result;

/// A connection of the pool, checked out.
type Pooled = workq_common::internal::Pooled;

/// The pool and the connection that every call of one manager (and of its clones) shares.
/// Cheap to clone; clones share both.
#[derive(Clone)]
pub(crate) struct Connection {
    pool: Pool,
    /// A pooled connection kept checked out: it multiplexes every call of this client, and
    /// keeping it skips the pool's health-check PING on each call.
    shared: Arc<Mutex<Option<Pooled>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl Connection {
    /// Builds the pool and takes its first connection, which checks that Redis answers
    /// (`PING`) and is 7.0 or later (an `Error::Config` for an older one), and warns (in
    /// the log) when Redis would evict keys or has AOF off, if this user may read `INFO`.
    pub(crate) async fn open(cfg: &RedisConfig) -> Result<Self> {
        let pool = workq_common::internal::connect(cfg)?;
        let mut con = pool.get().await?;
        let _: () = redis::cmd("PING").query_async(&mut *con).await?;
        workq_common::internal::server::check_version(&mut *con).await?;
        workq_common::internal::server::warn_about_durability(&mut *con).await;
        Ok(Connection {
            pool,
            shared: Arc::new(Mutex::new(Some(con))),
        })
    }

    /// Builds the pool without connecting (the first call connects).
    #[cfg(test)]
    pub(crate) fn lazy(cfg: &RedisConfig) -> Result<Self> {
        Ok(Connection {
            pool: workq_common::internal::connect(cfg)?,
            shared: Arc::new(Mutex::new(None)),
        })
    }

    /// Runs one call on the shared connection (`call` gets a clone of it: clones multiplex
    /// one socket), taking a connection from the pool if there is none. After a transient
    /// error (see `Error::is_transient`) the connection is forgotten, so the next call
    /// takes a fresh one instead of waiting on a dead socket. A script a call sends loads
    /// workq's function library when Redis answers "Function not found"
    /// (`Scripts::call`), on this same connection.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let r = async {
            let con = self.shared_connection().await?;
            call(con).await
        }
        .await;
        if failed_transiently(&r) {
            self.lock().take();
        }
        r
    }

    async fn shared_connection(&self) -> Result<Conn> {
        let cached = self.lock().as_ref().map(|c| (**c).clone());
        if let Some(con) = cached {
            return Ok(con);
        }
        let pooled = self.pool.get().await?;
        let con = (*pooled).clone();
        *self.lock() = Some(pooled);
        Ok(con)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Pooled>> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection that only its holder uses, for blocking reads (`XREAD BLOCK` would
    /// hold up every call sharing its socket). It connects on its first call.
    pub(crate) fn dedicated(&self) -> Dedicated {
        Dedicated {
            pool: self.pool.clone(),
            con: None,
        }
    }

    /// A connection taken out of the pool for good: the caller owns it, and it closes
    /// when dropped.
    pub(crate) async fn detached(&self) -> Result<Conn> {
        Ok(Pooled::take(self.pool.get().await?))
    }
}

/// A connection of the pool kept by one holder (see [`Connection::dedicated`]), under the
/// same rule as the shared one: dropped after a transient error, taken again on the next
/// call.
pub(crate) struct Dedicated {
    pool: Pool,
    con: Option<Pooled>,
}

impl Dedicated {
    /// Runs one call on this connection (`call` gets a clone of it, which nobody else has).
    pub(crate) async fn run<T, F, Fut>(&mut self, call: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let r = async {
            let con = match &self.con {
                Some(c) => (**c).clone(),
                None => (**self.con.insert(self.pool.get().await?)).clone(),
            };
            call(con).await
        }
        .await;
        if failed_transiently(&r) {
            self.con = None;
        }
        r
    }
}

fn failed_transiently<T>(r: &Result<T>) -> bool {
    r.as_ref().is_err_and(|e| e.is_transient())
}

/// Runs the reads that `build` adds to a pipeline in one transaction (`MULTI`/`EXEC`), so
/// that they see one moment. Redis at `maxmemory` refuses to queue any command in a
/// transaction, reads too: there the reads run as a plain pipeline instead, so lookups and
/// stats keep answering (a job that changes state between two of its reads can then show
/// the new state with the old due time, or the reverse).
pub(crate) async fn read_together<T: redis::FromRedisValue>(
    con: &mut Conn,
    build: impl Fn(&mut redis::Pipeline),
) -> Result<T> {
    let mut pipe = redis::pipe();
    build(pipe.atomic());
    match pipe.query_async(con).await {
        Err(e) if is_oom(&e) => {
            let mut pipe = redis::pipe();
            build(&mut pipe);
            Ok(pipe.query_async(con).await?)
        }
        other => Ok(other?),
    }
}

/// Redis' refusal at `maxmemory` (of a command, or of a transaction because of one).
fn is_oom(e: &redis::RedisError) -> bool {
    e.code().is_some_and(|c| c == "OOM" || c == "EXECABORT")
        || e.detail().is_some_and(|d| d.contains("maxmemory"))
        || e.to_string().contains("OOM")
}
