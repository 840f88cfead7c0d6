//! A private Sentinel setup: a primary, a replica of it, and three sentinels monitoring
//! them as "mymaster" (quorum 2), all on free loopback ports, killed on drop.
//!
//! Each sentinel has its own config file (a sentinel rewrites it), and runs with
//! `SENTINEL DEBUG INFO-PERIOD 1000 PUBLISH-PERIOD 500` (defaults 10 s and 2 s) so that a
//! failover settles in about 3 s. Every wait is a poll of what the sentinels and servers
//! say, with a deadline.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::free_port;
use crate::node::{self, args, query, Proc, TempDir};

/// The name the sentinels monitor the primary under.
pub const MASTER_NAME: &str = "mymaster";

/// How long a sentinel waits before it holds an unanswering primary down.
const DOWN_AFTER_MS: u32 = 1000;

/// A running primary, replica and three sentinels.
#[derive(Debug)]
pub struct SentinelSetup {
    /// The two data servers (the primary at start first).
    servers: Vec<Proc>,
    sentinels: Vec<Proc>,
    /// Last, so that the processes are gone before their directories are.
    dir: TempDir,
}

/// A flat `field value field value ...` reply as a map.
fn pairs(flat: Vec<String>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        m.insert(k, v);
    }
    m
}

impl SentinelSetup {
    /// Starts the primary, its replica (once in sync) and the sentinels, and waits until
    /// every sentinel knows the primary, the replica (with its link up) and the two other
    /// sentinels.
    pub fn start() -> Self {
        let dir = TempDir::new("sentinel");
        let primary = Self::spawn_server(&dir, None);
        let replica = Self::spawn_server(&dir, Some(primary.port));
        let mut s = SentinelSetup {
            servers: vec![primary, replica],
            sentinels: Vec::new(),
            dir,
        };
        let primary = s.servers[0].port;
        for i in 0..3 {
            let sentinel = s.spawn_sentinel(i, primary);
            s.sentinels.push(sentinel);
        }
        s.wait_stable(primary);
        s
    }

    /// A data server in its own subdirectory; a replica of `replica_of` if given.
    fn spawn_server(dir: &TempDir, replica_of: Option<u16>) -> Proc {
        for _ in 0..5 {
            let port = free_port();
            let d = dir.sub(&format!("server-{port}"));
            let mut a = vec![
                "--port".to_owned(),
                port.to_string(),
                "--bind".to_owned(),
                "127.0.0.1".to_owned(),
                "--dir".to_owned(),
                d.display().to_string(),
                "--save".to_owned(),
                String::new(),
                "--appendonly".to_owned(),
                "no".to_owned(),
                "--daemonize".to_owned(),
                "no".to_owned(),
                "--logfile".to_owned(),
                String::new(),
                // A replica's full sync starts at once, not after the default 5 s.
                "--repl-diskless-sync-delay".to_owned(),
                "0".to_owned(),
            ];
            if let Some(p) = replica_of {
                a.extend([
                    "--replicaof".to_owned(),
                    "127.0.0.1".to_owned(),
                    p.to_string(),
                ]);
            }
            let mut proc = Proc::spawn(port, &d, &args(a));
            if proc.wait_ready() {
                return proc;
            }
        }
        panic!("redis-server did not start for the sentinel setup");
    }

    /// Sentinel `i` with its own config file, monitoring the primary on `primary`.
    fn spawn_sentinel(&self, i: usize, primary: u16) -> Proc {
        for _ in 0..5 {
            let port = free_port();
            let d = self.dir.sub(&format!("sentinel-{i}-{port}"));
            let conf = d.join("sentinel.conf");
            let text = format!(
                "port {port}\n\
                 bind 127.0.0.1\n\
                 daemonize no\n\
                 logfile \"\"\n\
                 dir \"{dir}\"\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir = d.display()
            );
            std::fs::write(&conf, text).expect("sentinel.conf");
            let mut proc = Proc::spawn(
                port,
                &d,
                &args([conf.display().to_string(), "--sentinel".to_owned()]),
            );
            if proc.wait_ready() {
                // A sentinel INFOs each server every 10 s, and so would notice a demoted
                // primary (and turn it into a replica) up to 10 s late; hellos to the
                // other sentinels go every 2 s. Both made shorter for the tests.
                let reply: String = node::wait_until("SENTINEL DEBUG", || {
                    query(
                        port,
                        redis::cmd("SENTINEL")
                            .arg("DEBUG")
                            .arg("INFO-PERIOD")
                            .arg(1000)
                            .arg("PUBLISH-PERIOD")
                            .arg(500),
                    )
                });
                assert_eq!(reply, "OK", "SENTINEL DEBUG");
                return proc;
            }
        }
        panic!("redis-server --sentinel did not start");
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// `redis://127.0.0.1:<port>` of each sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinel_ports()
            .into_iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The name the primary is monitored under ("mymaster").
    pub fn master_name(&self) -> &'static str {
        MASTER_NAME
    }

    /// The data servers' ports (both, killed or not).
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(|s| s.port).collect()
    }

    /// The log of the server or sentinel on `port` so far.
    pub fn log(&self, port: u16) -> Vec<String> {
        self.servers
            .iter()
            .chain(&self.sentinels)
            .find(|p| p.port == port)
            .map(Proc::log)
            .unwrap_or_default()
    }

    /// The port `SENTINEL GET-MASTER-ADDR-BY-NAME` gives on sentinel `sentinel`.
    fn reported_by(sentinel: u16) -> Result<u16, String> {
        let addr: Vec<String> = query(
            sentinel,
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER_NAME),
        )?;
        addr.get(1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("sentinel {sentinel} gives the address {addr:?}"))
    }

    /// The primary's port as every sentinel reports it, once they agree.
    fn agreed_primary(&self) -> Result<u16, String> {
        let mut agreed = None;
        for s in self.sentinel_ports() {
            let p = Self::reported_by(s)?;
            match agreed {
                None => agreed = Some(p),
                Some(q) if q != p => return Err(format!("sentinels report {q} and {p}")),
                Some(_) => {}
            }
        }
        agreed.ok_or_else(|| "no sentinel".to_owned())
    }

    /// The current primary's port, as the sentinels report it (waits until they agree).
    pub fn primary(&self) -> u16 {
        node::wait_until("the sentinels to agree on the primary", || {
            self.agreed_primary()
        })
    }

    /// The ports of the running servers other than `primary` (its replicas, once settled).
    fn running_others(&mut self, primary: u16) -> Vec<u16> {
        self.servers
            .iter_mut()
            .filter(|s| s.port != primary)
            .filter_map(|s| s.running().then_some(s.port))
            .collect()
    }

    /// Waits until: every sentinel reports `primary`, which says role:master; every sentinel
    /// holds it as plain "master" (no failover in progress) and knows 2 other sentinels;
    /// every other running server is its replica with the link up, and every sentinel lists
    /// it as a replica (flags just "slave": not down, not disconnected).
    fn wait_stable(&mut self, primary: u16) {
        let replicas = self.running_others(primary);
        node::wait_until("the sentinel setup to settle", || {
            let p = self.agreed_primary()?;
            if p != primary {
                return Err(format!("sentinels report {p}, expected {primary}"));
            }
            if node::role(primary)? != "master" {
                return Err(format!("{primary} does not say role:master"));
            }
            for &r in &replicas {
                let info = node::info(r, "replication")?;
                let port = node::info_field(&info, "master_port");
                let link = node::info_field(&info, "master_link_status");
                if port != Some(&primary.to_string()) || link != Some("up") {
                    return Err(format!("{r}: master_port {port:?}, link {link:?}"));
                }
            }
            for s in self.sentinel_ports() {
                let m = pairs(query(
                    s,
                    redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME),
                )?);
                let field = |k: &str| m.get(k).map(String::as_str);
                if field("flags") != Some("master") || field("num-other-sentinels") != Some("2") {
                    return Err(format!("sentinel {s}: {m:?}"));
                }
                let listed: Vec<Vec<String>> =
                    query(s, redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME))?;
                let listed: Vec<BTreeMap<String, String>> = listed.into_iter().map(pairs).collect();
                for &r in &replicas {
                    let port = r.to_string();
                    let ok = listed.iter().any(|l| {
                        // Only what makes it a failover candidate: its own view of the
                        // link is checked above, as a sentinel refreshes a replica's INFO
                        // only every 10 s.
                        l.get("port") == Some(&port)
                            && l.get("flags").map(String::as_str) == Some("slave")
                    });
                    if !ok {
                        return Err(format!("sentinel {s} lists replicas {listed:?}"));
                    }
                }
            }
            Ok(())
        });
    }

    /// Forces a failover (`SENTINEL FAILOVER mymaster`) and waits until every sentinel
    /// reports the other server, which says role:master, and the old primary is its
    /// replica with the link up (so that the setup can fail over again). Returns the new
    /// primary's port.
    pub fn failover(&mut self) -> u16 {
        let old = self.primary();
        let started = Instant::now();
        // SENTINEL FAILOVER promotes a replica without waiting for it to catch up (it is
        // not the FAILOVER command): wait until every replica has what the primary had
        // acknowledged when this was called, so that the test's "nothing acknowledged is
        // lost" is about workq and not about the replication lag.
        self.wait_replicas_caught_up(old);
        let first = self.sentinel_ports()[0];
        let reply: String = node::wait_until("SENTINEL FAILOVER to be accepted", || {
            query(
                first,
                redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME),
            )
        });
        assert_eq!(reply, "OK", "SENTINEL FAILOVER");
        let new = self.wait_for_new_primary(old);
        self.wait_stable(new);
        tracing::info!(
            "sentinel failover {old} -> {new} in {:?}",
            started.elapsed()
        );
        new
    }

    /// Waits until every other running server, a replica of `primary` with its link up,
    /// has replicated at least the primary's `master_repl_offset` as it is now.
    fn wait_replicas_caught_up(&mut self, primary: u16) {
        let offset = |info: &str, field: &str| -> Result<u64, String> {
            node::info_field(info, field)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {field} in {info}"))
        };
        let target = node::wait_until("the primary's replication offset", || {
            offset(&node::info(primary, "replication")?, "master_repl_offset")
        });
        let replicas = self.running_others(primary);
        for r in replicas {
            node::wait_until("a replica to catch up before the failover", || {
                let info = node::info(r, "replication")?;
                let link = node::info_field(&info, "master_link_status");
                let have = offset(&info, "slave_repl_offset")?;
                if link == Some("up") && have >= target {
                    Ok(())
                } else {
                    Err(format!("{r}: link {link:?}, offset {have} of {target}"))
                }
            });
        }
    }

    /// SIGKILLs the current primary; returns its port.
    /// [`wait_for_new_primary`](Self::wait_for_new_primary) waits for the sentinels to
    /// replace it.
    pub fn kill_primary(&mut self) -> u16 {
        let old = self.primary();
        if let Some(s) = self.servers.iter_mut().find(|s| s.port == old) {
            s.kill();
        }
        old
    }

    /// Waits until every sentinel reports a primary other than `old` and that server
    /// says role:master. Returns its port.
    pub fn wait_for_new_primary(&self, old: u16) -> u16 {
        node::wait_until(&format!("the sentinels to replace {old}"), || {
            let p = self.agreed_primary()?;
            if p == old {
                return Err(format!("the sentinels still report {old}"));
            }
            if node::role(p)? != "master" {
                return Err(format!("{p} does not say role:master yet"));
            }
            Ok(p)
        })
    }
}
