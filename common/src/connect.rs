//! Connecting to Redis: a deadpool pool of multiplexed connections with explicit timeouts,
//! to one server (`redis://`) or to the primary that Redis Sentinel names
//! (`redis+sentinel://`), which each new connection asks for again, so that a pool
//! follows a failover, or to a Redis Cluster (`redis+cluster://`), each pooled
//! connection then being a cluster connection (one socket per node, following MOVED and
//! ASK).

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, Cmd, RedisError, RedisFuture, Value};

use crate::{Error, Result};

/// How to reach Redis.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`,
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]`, or
    /// `redis+cluster://[user:password@]host:port[,host:port...]` (seed nodes);
    /// `rediss://`, `rediss+sentinel://` (TLS to the primary; sentinels are asked in
    /// plain TCP) and `rediss+cluster://` (TLS to every node) with the cargo feature `tls`.
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
        if let Some(rest) = cluster_rest(&self.url) {
            return cluster_client(rest, self, tls.as_ref())
                .map(|c| Target::Cluster(Box::new(c)))
                .map_err(|why| {
                    Error::config(
                        "url",
                        format!("invalid Cluster URL '{}': {why}", redact(&self.url)),
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
            // Plain pub/sub in a Cluster reaches every node's subscribers, whichever node
            // published: any seed that answers will do.
            Target::Cluster(_) => self.cluster_seed().await,
        }
    }

    /// Whether the URL names a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        cluster_rest(&self.url).is_some()
    }

    /// The first seed of a `redis+cluster://` URL that answers a PING, as a client.
    async fn cluster_seed(&self) -> Result<redis::Client> {
        let tls = crate::tls::load(&self.url, self.tls.as_ref())?;
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let rest = cluster_rest(&self.url).unwrap_or("");
        let (userinfo, hosts) = split_userinfo(rest);
        let mut why = Vec::new();
        for h in hosts.split(',').filter(|h| !h.is_empty()) {
            let client = crate::tls::client(&format!("{scheme}://{userinfo}{h}"), tls.as_ref())?;
            let pinged = async {
                let mut con = client
                    .get_multiplexed_async_connection_with_config(&self.connection_config())
                    .await?;
                redis::cmd("PING").query_async::<()>(&mut con).await
            };
            match pinged.await {
                Ok(()) => return Ok(client),
                Err(e) => why.push(format!("{h}: {e}")),
            }
        }
        Err(unavailable(format!("no Cluster seed answers ({})", why.join("; "))).into())
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
    /// A Redis Cluster, from its seed nodes.
    Cluster(Box<ClusterClient>),
}

/// `user:password@` (or "") and the rest of a URL after its scheme.
fn split_userinfo(rest: &str) -> (String, &str) {
    match rest.rfind('@') {
        Some(at) => (format!("{}@", &rest[..at]), &rest[at + 1..]),
        None => (String::new(), rest),
    }
}

/// The part of a `redis+cluster://` or `rediss+cluster://` URL after its scheme.
fn cluster_rest(url: &str) -> Option<&str> {
    ["redis+cluster://", "rediss+cluster://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
}

/// A cluster client for `user:password@h1:p1,h2:p2` (the part after `redis+cluster://`),
/// over TLS to every node when `tls` is given.
fn cluster_client(
    rest: &str,
    cfg: &RedisConfig,
    tls: Option<&crate::tls::Tls>,
) -> std::result::Result<ClusterClient, String> {
    let (userinfo, hosts) = split_userinfo(rest);
    if hosts.contains('/') {
        return Err("a Cluster has one database: no /db in the URL".into());
    }
    let seeds: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            let scheme = if tls.is_some() { "rediss" } else { "redis" };
            format!("{scheme}://{userinfo}{h}")
        })
        .collect();
    if seeds.is_empty() {
        return Err("no seed node (redis+cluster://host:port[,host:port...])".into());
    }
    let builder = ClusterClient::builder(seeds)
        .connection_timeout(cfg.connect_timeout)
        .response_timeout(cfg.response_timeout);
    crate::tls::cluster(builder, tls)
        .build()
        .map_err(|e| e.to_string())
}

/// A connection from the pool: to one server, or to a Cluster (which routes each
/// command to the node of its key, and a pipeline to the node of its first key).
#[derive(Clone)]
pub enum Conn {
    /// One server (or Sentinel's primary).
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl Conn {
    /// Whether this is a Cluster connection (whose pipelines must stay in one slot).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Sends `cmd`, which names no key, to the primary that owns `key` (on one server:
    /// to it). `WAIT` and `INFO` about a queue go this way.
    pub async fn query_at<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> std::result::Result<T, RedisError> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let v = c
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(v)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
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
    type Type = Conn;
    type Error = RedisError;

    async fn create(&self) -> std::result::Result<Conn, RedisError> {
        let conn_cfg = self.cfg.connection_config();
        match &self.target {
            Target::Server(c) => c
                .get_multiplexed_async_connection_with_config(&conn_cfg)
                .await
                .map(Conn::Single),
            Target::Cluster(c) => c.get_async_connection().await.map(Conn::Cluster),
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
                Ok(Conn::Single(con))
            }
        }
    }

    async fn recycle(&self, con: &mut Conn, _: &Metrics) -> RecycleResult<RedisError> {
        match &self.target {
            // A cluster connection follows the topology by itself.
            Target::Server(_) | Target::Cluster(_) => {
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
async fn is_primary<C: ConnectionLike>(con: &mut C) -> std::result::Result<bool, RedisError> {
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
        for url in [
            "rediss://h:1",
            "rediss+sentinel://h:1/m",
            "rediss+cluster://h:1,h:2",
        ] {
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
