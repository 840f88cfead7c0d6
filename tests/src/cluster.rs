//! A private Redis Cluster: 6 `redis-server --cluster-enabled yes` processes (3 primaries,
//! 3 replicas) on free loopback ports, joined with `redis-cli --cluster create`, killed on
//! drop.
//!
//! Every wait is a poll of what the nodes say (CLUSTER INFO/NODES/SLOTS, INFO
//! replication) with a deadline. A fixture method that changes the cluster (failover,
//! slot migration) returns once every live node agrees on the result.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::node::{self, args, free_port_pair, query, Proc, TempDir};
use crate::server::Persistence;

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The cluster bus of a node listens on its port + this.
const BUS_OFFSET: u16 = 10000;

/// A node's failure-detection timeout: a SIGKILLed primary is replaced in a few seconds.
const NODE_TIMEOUT_MS: u32 = 1000;

/// One node as CLUSTER NODES describes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterNode {
    /// Its client port.
    pub port: u16,
    /// Its node id.
    pub id: String,
    /// Whether it is a primary.
    pub primary: bool,
    /// Whether the cluster has flagged it as failed (`fail`, not the local `fail?`).
    pub failed: bool,
    /// For a replica, its primary's id.
    pub primary_id: Option<String>,
    /// The slot ranges it serves (inclusive), without the migration markers.
    pub slots: Vec<(u16, u16)>,
}

/// A killed primary as the cluster saw it just before.
#[derive(Clone, Debug)]
struct Killed {
    slots: Vec<(u16, u16)>,
    replicas: Vec<u16>,
}

/// A running 3-primary, 3-replica cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Proc>,
    /// Each node's directory and `redis-server` arguments, in start order, for
    /// [`RedisCluster::restart_all`].
    specs: Vec<(PathBuf, Vec<OsString>)>,
    /// Ports of the nodes [`RedisCluster::kill_primary`] killed.
    killed: HashSet<u16>,
    /// What [`RedisCluster::kill_primary`] saw of each port it killed, just before.
    before_kill: HashMap<u16, Killed>,
    /// Last, so that the processes are gone before their directories are.
    dir: TempDir,
}

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (the text between the first `{` and
/// the next `}`, when not empty) or of the whole key, mod 16384.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let mut hashed = bytes;
    if let Some(open) = bytes.iter().position(|&b| b == b'{') {
        if let Some(len) = bytes[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                hashed = &bytes[open + 1..open + 1 + len];
            }
        }
    }
    crc16_xmodem(hashed) % SLOTS
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a workq queue's keys (`workq:{<queue>}:...`).
pub fn queue_slot(queue: &str) -> u16 {
    key_slot(&format!("workq:{{{queue}}}:"))
}

/// Parses CLUSTER NODES. Lines look like
/// `<id> <ip:port@bus[,hostname]> <flags> <primary-id|-> <ping> <pong> <epoch> <link> <slots...>`.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<ClusterNode>, String> {
    let mut nodes = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return Err(format!("short CLUSTER NODES line {line:?}"));
        }
        let port = f[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {line:?}"))?;
        let flags: Vec<&str> = f[2].split(',').collect();
        let mut slots = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue; // "[slot->-id]" / "[slot-<-id]": a migration in progress
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => slots.push((a, b)),
                _ => return Err(format!("bad slot range {s:?} in {line:?}")),
            }
        }
        slots.sort_unstable();
        nodes.push(ClusterNode {
            port,
            id: f[0].to_owned(),
            primary: flags.contains(&"master"),
            failed: flags.contains(&"fail"),
            primary_id: (f[3] != "-").then(|| f[3].to_owned()),
            slots,
        });
    }
    nodes.sort();
    Ok(nodes)
}

/// Parses CLUSTER SLOTS into (start, end, primary port) triples.
fn parse_cluster_slots(v: &redis::Value) -> Result<Vec<(u16, u16, u16)>, String> {
    use redis::Value;
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).map_err(|e| format!("{i}: {e}")),
        other => Err(format!("not an integer: {other:?}")),
    };
    let Value::Array(ranges) = v else {
        return Err(format!("CLUSTER SLOTS is not an array: {v:?}"));
    };
    let mut out = Vec::new();
    for r in ranges {
        let Value::Array(fields) = r else {
            return Err(format!("CLUSTER SLOTS entry is not an array: {r:?}"));
        };
        let (Some(start), Some(end), Some(Value::Array(primary))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(format!("short CLUSTER SLOTS entry: {fields:?}"));
        };
        let port = primary
            .get(1)
            .ok_or_else(|| format!("no port in {primary:?}"))?;
        out.push((int(start)?, int(end)?, int(port)?));
    }
    out.sort_unstable();
    Ok(out)
}

impl RedisCluster {
    /// Starts 6 nodes, creates the cluster with one replica per primary, and waits until
    /// every node says cluster_state:ok, sees the same 3 primaries covering all 16384
    /// slots with a replica each, and every replica's link to its primary is up.
    pub fn start() -> Self {
        Self::start_with(Persistence::None)
    }

    /// Like [`RedisCluster::start`], each node persisting as `persistence` says
    /// ([`Persistence::AofAlways`]: an append-only file fsynced on every write, which
    /// [`RedisCluster::restart_all`] reloads).
    pub fn start_with(persistence: Persistence) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(persistence) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("the Redis Cluster did not start: {last}");
    }

    fn try_start(persistence: Persistence) -> Result<Self, String> {
        let dir = TempDir::new("cluster");
        // Keep every listener until all 6 pairs are picked, so that no port comes twice.
        let mut held = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..6 {
            let (p, ls) = free_port_pair(BUS_OFFSET);
            ports.push(p);
            held.extend(ls);
        }
        drop(held);
        let aof: &[&str] = match persistence {
            Persistence::None => &["--appendonly", "no"],
            Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        };
        let specs: Vec<(PathBuf, Vec<OsString>)> = ports
            .iter()
            .map(|&p| {
                let d = dir.sub(&p.to_string());
                let mut a: Vec<OsString> = args([
                    "--port".to_owned(),
                    p.to_string(),
                    "--bind".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--dir".to_owned(),
                    d.display().to_string(),
                    "--save".to_owned(),
                    String::new(),
                    "--daemonize".to_owned(),
                    "no".to_owned(),
                    "--logfile".to_owned(),
                    String::new(),
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    d.join("nodes.conf").display().to_string(),
                    "--cluster-node-timeout".to_owned(),
                    NODE_TIMEOUT_MS.to_string(),
                    // A replica may take over however long since it last heard its primary.
                    "--cluster-replica-validity-factor".to_owned(),
                    "0".to_owned(),
                    // A replica's full sync starts at once, not after the default 5 s.
                    "--repl-diskless-sync-delay".to_owned(),
                    "0".to_owned(),
                ]);
                a.extend(args(aof.iter().copied()));
                (d, a)
            })
            .collect();
        let mut nodes: Vec<Proc> = ports
            .iter()
            .zip(&specs)
            .map(|(&p, (d, a))| Proc::spawn(p, d, a))
            .collect();
        for n in &mut nodes {
            if !n.wait_ready() {
                return Err(format!(
                    "node on port {} did not come up: {:?}",
                    n.port,
                    n.log()
                ));
            }
        }
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let c = RedisCluster {
            nodes,
            specs,
            killed: HashSet::new(),
            before_kill: HashMap::new(),
            dir,
        };
        c.wait_healthy();
        Ok(c)
    }

    /// SIGKILLs every node (none shuts down cleanly: no save), then starts each again on
    /// its port with the same arguments, so with its nodes.conf and, when started
    /// [with](RedisCluster::start_with) an append-only file, its data; returns once the
    /// cluster is healthy as after [`RedisCluster::start`] (every node cluster_state:ok,
    /// 3 primaries covering all slots, each with a replica whose link is up). Nodes
    /// killed earlier with [`RedisCluster::kill_primary`] come back too.
    pub fn restart_all(&mut self) {
        self.kill_all();
        self.start_all();
    }

    /// SIGKILLs every node (the first half of [`RedisCluster::restart_all`]).
    pub fn kill_all(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        self.killed.extend(self.nodes.iter().map(|n| n.port));
    }

    /// Starts every node again on its port with its arguments after
    /// [`RedisCluster::kill_all`] (the second half of [`RedisCluster::restart_all`]), and
    /// waits until the cluster is healthy.
    pub fn start_all(&mut self) {
        self.killed.clear();
        self.before_kill.clear();
        for (n, (d, a)) in self.nodes.iter_mut().zip(&self.specs) {
            n.kill();
            *n = Proc::spawn(n.port, d, a);
        }
        for n in &mut self.nodes {
            assert!(
                n.wait_ready(),
                "node on port {} did not come back: {:?}",
                n.port,
                n.log()
            );
        }
        self.wait_healthy();
    }

    /// Ports of the nodes not killed.
    fn live(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| !self.killed.contains(p))
    }

    /// Every node's port (killed ones too), in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis://127.0.0.1:<port>` of every live node: seed addresses for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.live()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// A blocking client for one node (it does not follow redirections).
    pub fn node_client(&self, port: u16) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client")
    }

    /// The log of the node on `port` so far.
    pub fn node_log(&self, port: u16) -> Vec<String> {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .map(Proc::log)
            .unwrap_or_default()
    }

    /// Where the cluster's files (nodes.conf per node) are.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }

    /// The topology as every live node sees it, once they all agree (waits until they
    /// do): CLUSTER NODES of each, compared without the per-node flags (`myself`,
    /// `fail?`) and the migration markers.
    pub fn topology(&self) -> Vec<ClusterNode> {
        node::wait_until("the live cluster nodes to agree on the topology", || {
            self.agreed_topology()
        })
    }

    fn agreed_topology(&self) -> Result<Vec<ClusterNode>, String> {
        let mut agreed: Option<(u16, Vec<ClusterNode>)> = None;
        for p in self.live() {
            let text: String = query(p, redis::cmd("CLUSTER").arg("NODES"))?;
            let view = parse_cluster_nodes(&text)?;
            match &agreed {
                None => agreed = Some((p, view)),
                Some((q, v)) if *v != view => {
                    return Err(format!("port {p} sees {view:?}, port {q} sees {v:?}"))
                }
                Some(_) => {}
            }
        }
        agreed
            .map(|(_, v)| v)
            .ok_or_else(|| "no live node".to_owned())
    }

    /// Checks that every live node says cluster_state:ok with all slots ok.
    fn all_ok(&self) -> Result<(), String> {
        for p in self.live() {
            let info: String = query(p, redis::cmd("CLUSTER").arg("INFO"))?;
            let state = node::info_field(&info, "cluster_state");
            let slots_ok = node::info_field(&info, "cluster_slots_ok");
            if state != Some("ok") || slots_ok != Some("16384") {
                return Err(format!(
                    "port {p}: cluster_state {state:?}, cluster_slots_ok {slots_ok:?}"
                ));
            }
        }
        Ok(())
    }

    /// Checks that the replica on `port` has its link to its primary up.
    fn link_up(port: u16) -> Result<(), String> {
        let info = node::info(port, "replication")?;
        match node::info_field(&info, "master_link_status") {
            Some("up") => Ok(()),
            other => Err(format!("port {port}: master_link_status {other:?}")),
        }
    }

    fn wait_healthy(&self) {
        node::wait_until("the new cluster to be ok everywhere", || {
            self.all_ok()?;
            let t = self.agreed_topology()?;
            let primaries: Vec<&ClusterNode> = t.iter().filter(|n| n.primary).collect();
            let covered: u32 = primaries
                .iter()
                .flat_map(|n| &n.slots)
                .map(|&(a, b)| u32::from(b) - u32::from(a) + 1)
                .sum();
            if primaries.len() != 3 || covered != u32::from(SLOTS) {
                return Err(format!("topology not complete yet: {t:?}"));
            }
            for p in &primaries {
                let replicas: Vec<&ClusterNode> = t
                    .iter()
                    .filter(|r| r.primary_id.as_deref() == Some(p.id.as_str()))
                    .collect();
                if replicas.len() != 1 {
                    return Err(format!("{} has replicas {replicas:?}", p.port));
                }
                Self::link_up(replicas[0].port)?;
            }
            Ok(())
        });
    }

    /// Ports of the live primaries (the agreed topology's masters serving slots).
    pub fn primaries(&self) -> Vec<u16> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary && !n.slots.is_empty() && !self.killed.contains(&n.port))
            .map(|n| n.port)
            .collect()
    }

    /// Ports of the live replicas.
    pub fn replicas(&self) -> Vec<u16> {
        self.topology()
            .into_iter()
            .filter(|n| !n.primary && !self.killed.contains(&n.port))
            .map(|n| n.port)
            .collect()
    }

    /// Ports of the live replicas of the primary on `primary`.
    pub fn replicas_of(&self, primary: u16) -> Vec<u16> {
        let t = self.topology();
        let Some(id) = t.iter().find(|n| n.port == primary).map(|n| n.id.clone()) else {
            return Vec::new();
        };
        t.into_iter()
            .filter(|n| n.primary_id.as_deref() == Some(id.as_str()))
            .filter(|n| !self.killed.contains(&n.port))
            .map(|n| n.port)
            .collect()
    }

    /// The node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        node::wait_until(&format!("CLUSTER MYID on port {port}"), || {
            query(port, redis::cmd("CLUSTER").arg("MYID"))
        })
    }

    /// The slot of `key` as the cluster computes it (CLUSTER KEYSLOT on a live node).
    pub fn keyslot(&self, key: &str) -> u16 {
        node::wait_until("CLUSTER KEYSLOT", || {
            let p = self.live().next().ok_or("no live node")?;
            query(p, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
        })
    }

    /// The slot map (start, end, primary port) once every live node's CLUSTER SLOTS
    /// agrees (waits until it does).
    pub fn slot_map(&self) -> Vec<(u16, u16, u16)> {
        node::wait_until("the live nodes to agree on CLUSTER SLOTS", || {
            let mut agreed: Option<Vec<(u16, u16, u16)>> = None;
            for p in self.live() {
                let v: redis::Value = query(p, redis::cmd("CLUSTER").arg("SLOTS"))?;
                let map = parse_cluster_slots(&v)?;
                match &agreed {
                    None => agreed = Some(map),
                    Some(a) if *a != map => {
                        return Err(format!("port {p} has {map:?}, another {a:?}"))
                    }
                    Some(_) => {}
                }
            }
            agreed.ok_or_else(|| "no live node".to_owned())
        })
    }

    /// The port of the primary serving `slot`, as all live nodes agree.
    pub fn owner_of_slot(&self, slot: u16) -> u16 {
        Self::owner_in(&self.slot_map(), slot)
            .unwrap_or_else(|| panic!("slot {slot} is not served by any node"))
    }

    fn owner_in(map: &[(u16, u16, u16)], slot: u16) -> Option<u16> {
        map.iter()
            .find(|&&(a, b, _)| (a..=b).contains(&slot))
            .map(|&(_, _, p)| p)
    }

    /// The port of the primary serving `key` (CLUSTER KEYSLOT, then CLUSTER SLOTS).
    pub fn owner_of_key(&self, key: &str) -> u16 {
        self.owner_of_slot(self.keyslot(key))
    }

    /// `per_primary` queue names for each primary: names whose `workq:{<name>}:` keys
    /// live on that primary, so that queues spread over the whole cluster.
    pub fn spread_queue_names(&self, per_primary: usize) -> Vec<String> {
        let map = self.slot_map();
        let owners: BTreeSet<u16> = map.iter().map(|&(_, _, p)| p).collect();
        let mut count: HashMap<u16, usize> = HashMap::new();
        let mut names = Vec::new();
        for i in 0.. {
            if owners
                .iter()
                .all(|o| count.get(o).copied().unwrap_or(0) >= per_primary)
            {
                break;
            }
            let name = format!("q{i}");
            let Some(owner) = Self::owner_in(&map, queue_slot(&name)) else {
                continue;
            };
            let c = count.entry(owner).or_insert(0);
            if *c < per_primary {
                *c += 1;
                names.push(name);
            }
        }
        names
    }

    /// SIGKILLs the primary on `port` (panics if it is not a live primary).
    pub fn kill_primary(&mut self, port: u16) {
        let t = self.topology();
        let Some(me) = t.iter().find(|n| n.port == port && n.primary) else {
            panic!("port {port} is not a primary: {t:?}");
        };
        let replicas: Vec<u16> = t
            .iter()
            .filter(|n| n.primary_id.as_deref() == Some(me.id.as_str()))
            .map(|n| n.port)
            .collect();
        let slots = me.slots.clone();
        self.before_kill.insert(port, Killed { slots, replicas });
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            n.kill();
        }
        self.killed.insert(port);
    }

    /// Waits until a replica of the [killed](Self::kill_primary) `old_primary` has taken
    /// over: it serves the old primary's slots, says role:master, every live node agrees
    /// on that and flags the old one as failed, and every live node says cluster_state:ok.
    /// Returns the new primary's port.
    pub fn wait_for_failover(&self, old_primary: u16) -> u16 {
        let Some(Killed { slots, replicas }) = self.before_kill.get(&old_primary).cloned() else {
            panic!("port {old_primary} was not killed with kill_primary");
        };
        let started = Instant::now();
        let new = node::wait_until(&format!("a replica of {old_primary} to take over"), || {
            let t = self.agreed_topology()?;
            let old = t.iter().find(|n| n.port == old_primary);
            if !old.is_some_and(|o| o.failed) {
                return Err(format!("{old_primary} not flagged failed yet: {old:?}"));
            }
            let Some(new) = t.iter().find(|n| n.primary && n.slots == slots) else {
                return Err(format!("nobody serves {slots:?} yet"));
            };
            if !replicas.contains(&new.port) {
                return Err(format!("{} serves {slots:?}, not a replica", new.port));
            }
            if node::role(new.port)? != "master" {
                return Err(format!("{} does not say role:master yet", new.port));
            }
            self.all_ok()?;
            Ok(new.port)
        });
        tracing::info!(
            "cluster failover {old_primary} -> {new} in {:?}",
            started.elapsed()
        );
        new
    }

    /// Moves `slot` from primary `from` to primary `to` the way the Redis Cluster
    /// specification's resharding does (see [`begin_migration`](Self::begin_migration),
    /// [`move_keys`](Self::move_keys), [`finish_migration`](Self::finish_migration)),
    /// and waits until every live node sees `to` as its owner.
    pub fn migrate_slot(&self, slot: u16, from: u16, to: u16) {
        self.begin_migration(slot, from, to);
        self.move_keys(slot, from, to);
        self.finish_migration(slot, to);
    }

    /// `CLUSTER SETSLOT <slot> IMPORTING <from-id>` on `to`, then `CLUSTER SETSLOT <slot>
    /// MIGRATING <to-id>` on `from`. From then until
    /// [`finish_migration`](Self::finish_migration), `from` answers -ASK for the slot's
    /// keys it no longer has.
    pub fn begin_migration(&self, slot: u16, from: u16, to: u16) {
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        Self::ok(
            to,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("IMPORTING")
                .arg(&from_id),
        );
        Self::ok(
            from,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("MIGRATING")
                .arg(&to_id),
        );
    }

    /// Moves the slot's keys from `from` to `to`: CLUSTER GETKEYSINSLOT and `MIGRATE ...
    /// KEYS` in batches until `from` has none left. Returns how many keys moved.
    pub fn move_keys(&self, slot: u16, from: u16, to: u16) -> usize {
        let mut moved = 0;
        loop {
            let keys: Vec<Vec<u8>> = Self::run(
                from,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100),
            );
            if keys.is_empty() {
                return moved;
            }
            let mut m = redis::cmd("MIGRATE");
            m.arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys);
            let reply: String = Self::run(from, &m);
            assert!(
                reply == "OK" || reply == "NOKEY",
                "MIGRATE on {from}: {reply}"
            );
            moved += keys.len();
        }
    }

    /// `CLUSTER SETSLOT <slot> NODE <to-id>` on `to` first, then on every other live
    /// primary; waits until every live node's CLUSTER SLOTS has `to` serving the slot.
    pub fn finish_migration(&self, slot: u16, to: u16) {
        let to_id = self.node_id(to);
        let set = |p: u16| {
            Self::ok(
                p,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&to_id),
            )
        };
        set(to);
        for p in self.primaries() {
            if p != to {
                set(p);
            }
        }
        node::wait_until(&format!("every node to see slot {slot} on {to}"), || {
            let owner = Self::owner_in(&self.slot_map(), slot);
            if owner == Some(to) {
                Ok(())
            } else {
                Err(format!("slot {slot} on {owner:?}"))
            }
        });
    }

    /// Runs `cmd` once on `port`; any error fails the test (the commands of a
    /// migration are not all safe to repeat).
    fn run<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> T {
        query(port, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ok(port: u16, cmd: &redis::Cmd) {
        let reply: String = Self::run(port, cmd);
        assert_eq!(reply, "OK", "{cmd:?} on {port}");
    }
}
