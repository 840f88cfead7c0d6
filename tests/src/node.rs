//! What the multi-process fixtures (cluster, sentinel, TLS) share: a `redis-server`
//! child killed on drop, short-timeout blocking connections for inspecting it, and a
//! poll-until-true with a deadline.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::FromRedisValue;

use crate::HANG;

/// How often the fixtures look again at a condition they wait for.
const POLL: Duration = Duration::from_millis(25);

/// Polls `f` until it returns `Some`, failing the test with `what` (and the last reason
/// given) after `within`.
pub(crate) fn wait_for<T>(
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        match f() {
            Ok(v) => return v,
            Err(why) if started.elapsed() >= within => {
                panic!("timed out after {within:?} waiting for {what}: {why}")
            }
            Err(why) => {
                if why != last {
                    tracing::debug!("{:?} waiting for {what}: {why}", started.elapsed());
                    last = why;
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Like [`wait_for`] with the suite's [`HANG`] limit.
pub(crate) fn wait_until<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    wait_for(HANG, what, f)
}

/// A blocking connection to `127.0.0.1:port` whose connect, reads and writes give up
/// after two seconds, so that a dead or frozen node is an error, not a hang.
pub(crate) fn connect(port: u16) -> Result<redis::Connection, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .map_err(|e| format!("client for port {port}: {e}"))?;
    let timeout = Duration::from_secs(2);
    let con = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| format!("connect to port {port}: {e}"))?;
    con.set_read_timeout(Some(timeout))
        .and_then(|()| con.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("timeouts on port {port}: {e}"))?;
    Ok(con)
}

/// Runs `cmd` on a fresh connection to `port`.
pub(crate) fn query<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let mut con = connect(port)?;
    cmd.query(&mut con)
        .map_err(|e| format!("{cmd:?} on port {port}: {e}"))
}

/// The value of `field` in an INFO-style `field:value` text.
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// `INFO <section>` of the server on `port`.
pub(crate) fn info(port: u16, section: &str) -> Result<String, String> {
    query(port, redis::cmd("INFO").arg(section))
}

/// The `role` of the server on `port` as INFO replication gives it ("master"/"slave").
pub(crate) fn role(port: u16) -> Result<String, String> {
    let info = info(port, "replication")?;
    info_field(&info, "role")
        .map(str::to_owned)
        .ok_or_else(|| format!("no role in INFO replication of port {port}"))
}

/// A port that is free now, whose `port + offset` is a valid port and free too (a
/// cluster node also listens on its bus port, port + 10000). The listeners are handed
/// back so that the caller can keep them until it has picked all the ports it needs.
pub(crate) fn free_port_pair(offset: u16) -> (u16, Vec<TcpListener>) {
    for _ in 0..1000 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        let Some(other) = port.checked_add(offset) else {
            continue;
        };
        if offset == 0 {
            return (port, vec![l]);
        }
        if let Ok(l2) = TcpListener::bind(("127.0.0.1", other)) {
            return (port, vec![l, l2]);
        }
    }
    panic!("found no free port p with p + {offset} free too");
}

/// A `redis-server` child (a server or a sentinel), its stdout kept as its log, SIGKILLed
/// on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) port: u16,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Runs `redis-server` with `args` in `dir` (its working directory); does not wait.
    pub(crate) fn spawn(port: u16, dir: &Path, args: &[OsString]) -> Self {
        let mut child = match Command::new(crate::redis_server_bin())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot run redis-server ({e}); tests/run.sh installs it"),
        };
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        Proc {
            port,
            child: Some(child),
            log,
        }
    }

    /// Waits until this process answers on its port (for plain-TCP ones): `INFO server`
    /// must give its own `process_id`, not just any PONG, as another test's server may
    /// hold the port this one was given and failed to bind (seen: a Sentinel setup whose
    /// "replica" was someone else's server). False if it exited first.
    pub(crate) fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + HANG;
        while Instant::now() < deadline {
            if !self.running() {
                return false;
            }
            if self.answers_as_itself(info(self.port, "server").ok().as_deref()) {
                return true;
            }
            std::thread::sleep(POLL);
        }
        false
    }

    /// Whether `info` (an `INFO server` reply) comes from this process.
    pub(crate) fn answers_as_itself(&self, info: Option<&str>) -> bool {
        let pid = self.child.as_ref().map(|c| c.id().to_string());
        info.and_then(|i| info_field(i, "process_id"))
            .map(str::to_owned)
            == pid
            && pid.is_some()
    }

    /// Whether the process still runs.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs the process and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A SIGSTOPped process only dies of SIGKILL once continued on some kernels.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its stdout and stderr lines so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Removes a fixture's temp dir on drop (declared after its processes, so it goes last).
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        TempDir(crate::server::temp_dir(tag))
    }

    /// A subdirectory, created.
    pub(crate) fn sub(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        std::fs::create_dir_all(&d).expect("fixture subdir");
        d
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `OsString` arguments from anything printable.
pub(crate) fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}
