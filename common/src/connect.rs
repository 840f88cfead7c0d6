//! Connecting to Redis: a deadpool pool of multiplexed connections with explicit timeouts.

use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::AsyncConnectionConfig;

use crate::{Error, Result};

/// How to reach Redis.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for any reply. Scripts claim at most 1,000 jobs per call, so a
    /// healthy Redis answers well inside this.
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// Defaults for `url`: 8 connections, 2 s to connect, 5 s per reply.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// A client for connections outside the pool (pub/sub).
    pub fn client(&self) -> Result<redis::Client> {
        if self.url.starts_with("rediss://") {
            return Err(Error::config(
                "url",
                "rediss:// (TLS) is not supported yet; use redis://",
            ));
        }
        redis::Client::open(self.url.as_str()).map_err(|e| {
            Error::config(
                "url",
                format!("invalid Redis URL '{}': {e}", redact(&self.url)),
            )
        })
    }
}

/// Builds the pool. No connection is made until the first use.
pub fn connect(cfg: &RedisConfig) -> Result<Pool> {
    let client = cfg.client()?;
    let conn_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(cfg.connect_timeout))
        .set_response_timeout(Some(cfg.response_timeout));
    let manager = Manager::new_with_config(client.get_connection_info().clone(), conn_cfg)
        .map_err(|e| Error::config("url", e.to_string()))?;
    Pool::builder(manager)
        .max_size(cfg.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(cfg.connect_timeout))
        .wait_timeout(Some(cfg.response_timeout))
        // Recycling a pooled connection PINGs it: a hung Redis must not hold that forever.
        .recycle_timeout(Some(cfg.response_timeout))
        .build()
        .map_err(|e| Error::config("pool", e.to_string()))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:s3cret@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn tls_urls_get_a_clear_error() {
        let err = RedisConfig::new("rediss://h:1")
            .client()
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
    }
}
