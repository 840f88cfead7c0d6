//! Real worker processes whose stdout lines the tests wait on, and the environment that
//! shifts a process' clock.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::HANG;

/// Environment that makes a process see its clock shifted by `offset` (libfaketime syntax,
/// e.g. "-600s"), preloading libfaketime into the process itself so that killing the
/// process kills what runs the code.
pub fn faketime_env(offset: &str) -> Vec<(String, String)> {
    let lib = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is missing; tests/run.sh installs it (Debian package faketime)");
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_RESET".into(), "1".into()),
    ]
}

/// A worker process (the `test-worker` binary) whose stdout lines can be awaited.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Its stderr (its logs), when spawned with [`WorkerProcess::spawn_capturing`].
    stderr: Option<Stderr>,
}

/// A process' stderr lines: those not yet awaited, and all of them.
#[derive(Debug)]
struct Stderr {
    lines: mpsc::Receiver<String>,
    all: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    /// Spawns `bin` with `args` and extra environment variables.
    pub fn spawn(bin: &Path, args: &[String], env: &[(String, String)]) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        WorkerProcess {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: None,
        }
    }

    /// Like [`spawn`](Self::spawn), but keeps the process' stderr (its logs) for
    /// [`wait_stderr`](Self::wait_stderr) and [`stderr_seen`](Self::stderr_seen) (each
    /// line is also copied to the test's stderr).
    pub fn spawn_capturing(bin: &Path, args: &[String], env: &[(String, String)]) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        let all: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&all);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[worker] {line}");
                keep.lock().unwrap().push(line.clone());
                let _ = etx.send(line);
            }
        });
        WorkerProcess {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: Some(Stderr { lines: erx, all }),
        }
    }

    /// Waits for the next stderr line containing every one of `parts` and returns it
    /// (the process must have been spawned with [`spawn_capturing`](Self::spawn_capturing)).
    pub fn wait_stderr(&mut self, parts: &[&str]) -> String {
        let err = self.stderr.as_ref().expect("spawned with spawn_capturing");
        loop {
            match err.lines.recv_timeout(HANG) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "no stderr line with {parts:?} ({e}); stderr so far: {:#?}",
                    err.all.lock().unwrap()
                ),
            }
        }
    }

    /// Every stderr line so far (after [`wait`](Self::wait) or
    /// [`exit_within`](Self::exit_within): all of them).
    pub fn stderr_seen(&self) -> Vec<String> {
        self.stderr
            .as_ref()
            .map(|e| e.all.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Waits for the process to exit, at most `limit` (a hang guard: past it the process
    /// is killed and the test fails), and returns its exit code (None if killed by a
    /// signal). Reads its remaining output first.
    pub fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let c = self.child.take().expect("process runs");
        let pid = c.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait_with_output().map(|o| o.status.code()));
        });
        match rx.recv_timeout(limit) {
            Ok(code) => {
                while let Ok(line) = self.lines.recv_timeout(HANG) {
                    self.seen.push(line);
                }
                if let Some(e) = &self.stderr {
                    while e.lines.recv_timeout(HANG).is_ok() {}
                }
                code.expect("wait")
            }
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                let stderr = self.stderr_seen();
                panic!(
                    "process {pid} did not exit within {limit:?}; stdout: {:#?}; stderr: {stderr:#?}",
                    self.lines_seen(),
                );
            }
        }
    }

    /// Waits for the next stdout line starting with `prefix` and returns it.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line starting with {prefix:?} ({e}); lines so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (e.g. "KILL", "TERM").
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the process to exit and returns its exit code (None if killed).
    pub fn wait(&mut self) -> Option<i32> {
        let c = self.child.take()?;
        let out = c.wait_with_output().expect("wait");
        // Keep reading what it printed before it exited, up to the end of its stdout (the
        // reader thread may still be forwarding lines when the exit is noticed).
        while let Ok(line) = self.lines.recv_timeout(HANG) {
            self.seen.push(line);
        }
        out.status.code()
    }

    /// Every line seen so far.
    pub fn lines_seen(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
