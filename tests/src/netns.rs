//! Separate hosts on one machine: network namespaces joined by veth pairs to a bridge in
//! the root namespace, with a `redis-server` running in one of them. Needs root (it runs
//! `ip netns add`); [`Hosts::start`] says why when it cannot, so that a test can skip.
//!
//! The hosts are one for Redis, one for a producer and `workers` for workers, on a /24
//! of 10.213.0.0/16 picked per run (one no root-namespace address uses yet). The bridge
//! holds the subnet's `.1` in the root namespace, so the test process itself reaches every
//! host (it watches Redis and scrapes workers' endpoints from there). Every name carries
//! the test process' pid and a per-fixture letter, so parallel runs do not clash.
//!
//! [`Hosts::cut`] sets a host's bridge-side veth down: its packets are dropped silently,
//! in both directions, like a pulled cable (nobody gets a reset or an error, only
//! timeouts); [`Hosts::heal`] sets it up again. On drop (a panicking test too) every
//! process left in the namespaces is SIGKILLed, then the veths, the namespaces and the
//! bridge are deleted.
//!
//! Processes are started with `ip netns exec <ns> <program>`, which execs the program
//! without forking: the child's pid is the program's, so signals reach it.

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::node::{wait_for, TempDir};
use crate::{WorkerProcess, HANG};

/// The port Redis listens on in its namespace (any port is free there).
pub const REDIS_PORT: u16 = 6390;

/// One of the fixture's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Runs `redis-server`.
    Redis,
    /// For producers.
    Producer,
    /// Worker host `i` (from 0).
    Worker(usize),
}

/// The namespaces, links and bridge of one run, and the Redis in them; torn down on drop.
#[derive(Debug)]
pub struct Hosts {
    /// `wq<pid><letter>`: every name of this fixture starts with it.
    prefix: String,
    /// The third octet of 10.213.x.0/24.
    subnet: u8,
    workers: usize,
    redis: Option<Child>,
    redis_log: Arc<Mutex<Vec<String>>>,
    /// Created namespaces, for the teardown.
    namespaces: Vec<String>,
    /// Bridge-side veths, for the teardown.
    links: Vec<String>,
    bridge: Option<String>,
    /// Last: Redis' directory goes once everything else is.
    dir: TempDir,
}

/// Runs `ip <args>`; the error is its stderr (or why it could not run).
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}); it is in Debian's iproute2"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip <args>`, failing the test if it fails.
fn ip_ok(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// A /24 of 10.213.0.0/16 that no root-namespace address is in, starting the search at
/// one derived from the pid.
fn pick_subnet() -> u8 {
    let used = ip(&["-o", "-4", "addr", "show"]).unwrap_or_else(|e| panic!("{e}"));
    let start = std::process::id() % 254;
    (0..254)
        .map(|k| ((start + k) % 254 + 1) as u8)
        .find(|o| !used.contains(&format!(" 10.213.{o}.")))
        .expect("every 10.213.x.0/24 is in use in the root namespace")
}

impl Hosts {
    /// Builds the hosts (Redis, producer and `workers` worker hosts) and starts Redis,
    /// reachable from the root namespace. `Err` says why network namespaces cannot be
    /// made here (not root, no permission, no `ip`): the caller skips. Any later failure
    /// fails the test.
    pub fn start(workers: usize) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let letter = char::from(b'a' + (N.fetch_add(1, Ordering::Relaxed) % 26) as u8);
        let prefix = format!("wq{}{letter}", std::process::id());
        let mut hosts = Hosts {
            subnet: 0,
            workers,
            redis: None,
            redis_log: Arc::default(),
            namespaces: Vec::new(),
            links: Vec::new(),
            bridge: None,
            dir: TempDir::new("netns"),
            prefix,
        };
        // The first namespace decides whether this machine lets us: skip if not.
        let first = hosts.ns(Host::Redis);
        ip(&["netns", "add", &first])?;
        hosts.namespaces.push(first);
        hosts.subnet = pick_subnet();
        let bridge = format!("{}br", hosts.prefix);
        ip_ok(&["link", "add", &bridge, "type", "bridge"]);
        hosts.bridge = Some(bridge.clone());
        let gateway = format!("{}/24", hosts.gateway());
        ip_ok(&["addr", "add", &gateway, "dev", &bridge]);
        ip_ok(&["link", "set", &bridge, "up"]);
        let mut all = vec![Host::Redis, Host::Producer];
        all.extend((0..workers).map(Host::Worker));
        for (i, host) in all.into_iter().enumerate() {
            hosts.plug(i, host, &bridge);
        }
        hosts.start_redis();
        Ok(hosts)
    }

    /// Makes `host`'s namespace (but Redis', made first) and its veth pair `<prefix>h<i>`
    /// (on the bridge) / `<prefix>n<i>` (in the namespace, with its address), all up.
    fn plug(&mut self, i: usize, host: Host, bridge: &str) {
        let ns = self.ns(host);
        if !self.namespaces.contains(&ns) {
            ip_ok(&["netns", "add", &ns]);
            self.namespaces.push(ns.clone());
        }
        let outer = format!("{}h{i}", self.prefix);
        let inner = format!("{}n{i}", self.prefix);
        ip_ok(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ]);
        self.links.push(outer.clone());
        ip_ok(&["link", "set", &outer, "master", bridge, "up"]);
        let addr = format!("{}/24", self.addr(host));
        ip_ok(&["-n", &ns, "addr", "add", &addr, "dev", &inner]);
        ip_ok(&["-n", &ns, "link", "set", &inner, "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
    }

    /// Starts `redis-server` in the Redis namespace, bound to its address only, and waits
    /// until the root namespace gets a PONG from it through the bridge.
    fn start_redis(&mut self) {
        let addr = self.addr(Host::Redis).to_string();
        let mut child = self
            .command(Host::Redis, "redis-server")
            .args(["--port", &REDIS_PORT.to_string(), "--bind", &addr])
            // Bound to a non-loopback address without a password: let clients in.
            .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .args(["--logfile", "", "--daemonize", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server in its namespace: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        self.redis = Some(child);
        let (tx, rx) = mpsc::channel();
        let log = Arc::clone(&self.redis_log);
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut ready = Some(tx);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        if rx.recv_timeout(HANG).is_err() {
            panic!(
                "redis-server did not start in namespace {}: {:#?}",
                self.ns(Host::Redis),
                self.redis_log()
            );
        }
        let url = self.redis_url();
        wait_for(
            Duration::from_secs(10),
            "Redis in its namespace to answer the root namespace through the bridge",
            || {
                let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
                let mut con = client
                    .get_connection_with_timeout(Duration::from_secs(1))
                    .map_err(|e| e.to_string())?;
                redis::cmd("PING")
                    .query::<String>(&mut con)
                    .map_err(|e| e.to_string())
            },
        );
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: Host) -> String {
        match host {
            Host::Redis => format!("{}-redis", self.prefix),
            Host::Producer => format!("{}-producer", self.prefix),
            Host::Worker(i) => format!("{}-worker{i}", self.prefix),
        }
    }

    /// The address of `host`: .2 Redis, .3 the producer, .11, .12, ... the workers.
    pub fn addr(&self, host: Host) -> Ipv4Addr {
        let last = match host {
            Host::Redis => 2,
            Host::Producer => 3,
            Host::Worker(i) => {
                assert!(i < self.workers, "there are {} worker hosts", self.workers);
                11 + i as u8
            }
        };
        Ipv4Addr::new(10, 213, self.subnet, last)
    }

    /// The bridge's address in the root namespace (the test process' own, there).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 1)
    }

    /// `redis://<Redis host's address>:<REDIS_PORT>`, from any host and the root
    /// namespace.
    pub fn redis_url(&self) -> String {
        format!("redis://{}:{REDIS_PORT}", self.addr(Host::Redis))
    }

    /// `ip netns exec <host's namespace> <program>`, to add arguments to and run.
    pub fn command(&self, host: Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host)]).arg(program);
        cmd
    }

    fn exec_args(&self, host: Host, bin: &Path, args: &[String]) -> Vec<String> {
        let mut all = vec!["netns".to_owned(), "exec".to_owned(), self.ns(host)];
        all.push(bin.to_str().expect("a UTF-8 binary path").to_owned());
        all.extend(args.iter().cloned());
        all
    }

    /// Spawns `bin args` on `host` as a [`WorkerProcess`] (stdout awaited by the test).
    pub fn spawn(
        &self,
        host: Host,
        bin: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> WorkerProcess {
        WorkerProcess::spawn(Path::new("ip"), &self.exec_args(host, bin, args), env)
    }

    /// Like [`spawn`](Self::spawn), keeping stderr too
    /// ([`WorkerProcess::spawn_capturing`]).
    pub fn spawn_capturing(
        &self,
        host: Host,
        bin: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> WorkerProcess {
        WorkerProcess::spawn_capturing(Path::new("ip"), &self.exec_args(host, bin, args), env)
    }

    fn outer_link(&self, host: Host) -> String {
        let i = match host {
            Host::Redis => 0,
            Host::Producer => 1,
            Host::Worker(w) => 2 + w,
        };
        format!("{}h{i}", self.prefix)
    }

    /// Cuts `host` off the network: its bridge-side veth goes down, and every packet to
    /// or from it is dropped without a word.
    pub fn cut(&self, host: Host) {
        ip_ok(&["link", "set", &self.outer_link(host), "down"]);
    }

    /// Plugs `host` back in (its bridge-side veth up again, forwarding at once: the
    /// bridge runs no STP).
    pub fn heal(&self, host: Host) {
        ip_ok(&["link", "set", &self.outer_link(host), "up"]);
    }

    /// Whether a TCP connection from the root namespace to `host:port` succeeds within
    /// `within`.
    pub fn reachable(&self, host: Host, port: u16, within: Duration) -> bool {
        TcpStream::connect_timeout(&(self.addr(host), port).into(), within).is_ok()
    }

    /// Redis' log so far.
    pub fn redis_log(&self) -> Vec<String> {
        self.redis_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The pids of the processes in namespace `ns`.
    fn pids(ns: &str) -> Vec<String> {
        ip(&["netns", "pids", ns])
            .map(|out| out.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Some(mut c) = self.redis.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Whatever the test left running in its hosts (a namespace outlives its deletion
        // while a process is in it, and so do its links).
        for ns in &self.namespaces {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let pids = Self::pids(ns);
                if pids.is_empty() || Instant::now() >= deadline {
                    if !pids.is_empty() {
                        eprintln!("netns fixture: processes {pids:?} still in {ns}");
                    }
                    break;
                }
                for pid in pids {
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Deleting one end of a veth pair deletes the other.
        for link in &self.links {
            let _ = ip(&["link", "del", link]);
        }
        for ns in &self.namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("netns fixture: {e}");
            }
        }
        if let Some(bridge) = &self.bridge {
            if let Err(e) = ip(&["link", "del", bridge]) {
                eprintln!("netns fixture: {e}");
            }
        }
    }
}
