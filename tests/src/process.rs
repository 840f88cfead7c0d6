//! Real worker processes whose stdout lines the tests wait on, and the environment that
//! shifts a process' clock.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

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
