//! Connecting to Redis: a deadpool pool of multiplexed connections with explicit timeouts,
//! to one server (`redis://`) or to the primary that Redis Sentinel names
//! (`redis+sentinel://`), which each new connection asks for again, so that a pool
//! follows a failover.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use crate::{Error, Result};

/// How to reach Redis.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]`;
    /// `rediss://` and `rediss+sentinel://` for TLS (to the primary; sentinels are asked
    /// in plain TCP), with the cargo feature `tls`.
    pub url: String,
    /// Certificates for a `rediss` URL (default: the system's roots, no client
    /// certificate).
    pub tls: Option<crate::TlsConfig>,
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
            tls: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// Where the URL points; an `Error::Config` (setting `url`) for one that does not
    /// parse, (setting `tls`) for TLS settings or certificates that cannot be used.
    fn target(&self) -> Result<Target> {
        let tls = crate::tls::load(&self.url, self.tls.as_ref())?;
        let sentinel = ["redis+sentinel://", "rediss+sentinel://"];
        if let Some(rest) = sentinel.iter().find_map(|p| self.url.strip_prefix(p)) {
            let sentinel = Sentinel::parse(rest).map(|s| Sentinel { tls, ..s });
            return sentinel.map(Target::Sentinel).map_err(|why| {
                Error::config(
                    "url",
                    format!("invalid Sentinel URL '{}': {why}", redact(&self.url)),
                )
            });
        }
        crate::tls::client(&self.url, tls.as_ref())
            .map(Target::Server)
            .map_err(|e| {
                Error::config(
                    "url",
                    format!("invalid Redis URL '{}': {e}", redact(&self.url)),
                )
            })
    }

    /// Checks the URL without connecting.
    pub fn check(&self) -> Result<()> {
        self.target().map(|_| ())
    }

    /// A client for connections outside the pool (pub/sub), to the server the URL names
    /// or, through Sentinel, to the primary now (ask again after a failover).
    pub async fn client(&self) -> Result<redis::Client> {
        match self.target()? {
            Target::Server(c) => Ok(c),
            Target::Sentinel(s) => Ok(s.primary(self).await?.0),
        }
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }
}

/// Where a Redis URL points.
#[derive(Clone, Debug)]
enum Target {
    /// One server.
    Server(redis::Client),
    /// The primary Sentinel names.
    Sentinel(Sentinel),
}

/// A `redis+sentinel://` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sentinel {
    /// `host:port` of each sentinel, asked in this order.
    sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under.
    master: String,
    /// `user:password@` for the primary (sentinels are asked without credentials).
    userinfo: String,
    /// The database index.
    db: u32,
    /// TLS to the primary (`rediss+sentinel://`).
    tls: Option<crate::tls::Tls>,
}

impl Sentinel {
    fn parse(rest: &str) -> std::result::Result<Self, String> {
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (format!("{}@", &rest[..at]), &rest[at + 1..]),
            None => (String::new(), rest),
        };
        let mut parts = rest.split('/');
        let hosts = parts.next().unwrap_or("");
        let master = parts.next().unwrap_or("");
        let db = match parts.next() {
            None | Some("") => 0,
            Some(d) => d
                .parse()
                .map_err(|_| format!("the database index '{d}' is not a number"))?,
        };
        if parts.next().is_some() {
            return Err("expected redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]".into());
        }
        let sentinels: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    h.to_owned()
                } else {
                    format!("{h}:26379")
                }
            })
            .collect();
        if sentinels.is_empty() {
            return Err("no sentinel address".into());
        }
        if master.is_empty() {
            return Err("no master name (redis+sentinel://host:port/<master name>)".into());
        }
        Ok(Sentinel {
            sentinels,
            master: master.to_owned(),
            userinfo,
            db,
            tls: None,
        })
    }

    /// Asks the sentinels, in order, where the primary is; returns a client for it and
    /// its address.
    async fn primary(
        &self,
        cfg: &RedisConfig,
    ) -> std::result::Result<(redis::Client, String), RedisError> {
        let mut why = Vec::new();
        for s in &self.sentinels {
            let asked = async {
                let client = redis::Client::open(format!("redis://{s}"))?;
                let mut con = client
                    .get_multiplexed_async_connection_with_config(&cfg.connection_config())
                    .await?;
                let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.master)
                    .query_async(&mut con)
                    .await?;
                Ok::<_, RedisError>(addr)
            };
            match asked.await {
                Ok(Some((host, port))) => {
                    let addr = format!("{host}:{port}");
                    let scheme = if self.tls.is_some() {
                        "rediss"
                    } else {
                        "redis"
                    };
                    let url = format!("{scheme}://{}{addr}/{}", self.userinfo, self.db);
                    return Ok((crate::tls::client(&url, self.tls.as_ref())?, addr));
                }
                Ok(None) => why.push(format!("{s}: does not know '{}'", self.master)),
                Err(e) => why.push(format!("{s}: {e}")),
            }
        }
        Err(unavailable(format!(
            "no sentinel named a primary for '{}' ({})",
            self.master,
            why.join("; ")
        )))
    }
}

/// A transient error (Redis treats it as I/O: the pool and the callers retry).
fn unavailable(message: String) -> RedisError {
    std::io::Error::new(std::io::ErrorKind::NotConnected, message).into()
}

/// Makes the pool's connections: to the server, or to the primary Sentinel names now.
#[derive(Debug)]
pub struct Manager {
    target: Target,
    cfg: RedisConfig,
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> std::result::Result<MultiplexedConnection, RedisError> {
        let conn_cfg = self.cfg.connection_config();
        match &self.target {
            Target::Server(c) => {
                c.get_multiplexed_async_connection_with_config(&conn_cfg)
                    .await
            }
            Target::Sentinel(s) => {
                let (client, addr) = s.primary(&self.cfg).await?;
                let mut con = client
                    .get_multiplexed_async_connection_with_config(&conn_cfg)
                    .await?;
                // A sentinel may name the old primary for a moment during a failover.
                if !is_primary(&mut con).await? {
                    return Err(unavailable(format!(
                        "Sentinel named {addr} the primary of '{}', but it is a replica (a failover in progress)",
                        s.master
                    )));
                }
                Ok(con)
            }
        }
    }

    async fn recycle(
        &self,
        con: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        match &self.target {
            Target::Server(_) => {
                let _: () = redis::cmd("PING").query_async(con).await?;
                Ok(())
            }
            // A primary demoted by a failover still answers, as a replica: the pool drops
            // its connections, and the next ones go to the new primary.
            Target::Sentinel(_) => {
                if is_primary(con).await? {
                    Ok(())
                } else {
                    Err(managed::RecycleError::message("no longer the primary"))
                }
            }
        }
    }
}

/// Whether the server at the end of `con` is a primary (`ROLE`).
async fn is_primary(con: &mut MultiplexedConnection) -> std::result::Result<bool, RedisError> {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(con).await?;
    Ok(matches!(role.first(), Some(redis::Value::BulkString(b)) if b.as_slice() == b"master"))
}

/// The pool of multiplexed connections.
pub type Pool = managed::Pool<Manager>;
/// A connection taken from the [`Pool`].
pub type Pooled = managed::Object<Manager>;

/// Builds the pool. No connection is made until the first use.
pub fn connect(cfg: &RedisConfig) -> Result<Pool> {
    let manager = Manager {
        target: cfg.target()?,
        cfg: cfg.clone(),
    };
    Pool::builder(manager)
        .max_size(cfg.pool_size.max(1))
        .runtime(deadpool::Runtime::Tokio1)
        .create_timeout(Some(cfg.connect_timeout + cfg.response_timeout))
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

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_without_the_feature_get_a_clear_error() {
        for url in ["rediss://h:1", "rediss+sentinel://h:1/m"] {
            let err = RedisConfig::new(url).check().unwrap_err();
            assert!(err.to_string().contains("`tls` cargo feature"), "{err}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_urls_parse() {
        RedisConfig::new("rediss://h:1").check().unwrap();
        match RedisConfig::new("rediss+sentinel://h:1/m")
            .target()
            .unwrap()
        {
            Target::Sentinel(s) => assert!(s.tls.is_some()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sentinel_urls_parse_with_credentials_several_sentinels_and_a_database() {
        let s = Sentinel::parse("u:p@10.0.0.1:5000,10.0.0.2/mymaster/3").unwrap();
        assert_eq!(
            s,
            Sentinel {
                sentinels: vec!["10.0.0.1:5000".into(), "10.0.0.2:26379".into()],
                master: "mymaster".into(),
                userinfo: "u:p@".into(),
                db: 3,
                tls: None,
            }
        );
        assert_eq!(Sentinel::parse("h:1/m").unwrap().db, 0);
        for bad in ["", "h:1", "h:1/", "/m", "h:1/m/x", "h:1/m/0/extra"] {
            assert!(Sentinel::parse(bad).is_err(), "{bad:?}");
        }
        let err = RedisConfig::new("redis+sentinel://:secret@h:1")
            .check()
            .unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
