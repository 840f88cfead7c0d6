//! What `/healthz` and `/readyz` report: whether every loop of the runtime still runs
//! (health), and whether this process is doing its job (readiness: start-up checks
//! passed, every queue's last claim call succeeded, and shutdown has not begun).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::Shared;

/// Liveness and readiness, set by the loops, read by the HTTP endpoint.
#[derive(Debug)]
pub(crate) struct Health {
    /// Start-up checks passed (Redis answered; the queues are registered).
    started: AtomicBool,
    /// Per queue: its claim loop's latest call succeeded (so the function library is
    /// loaded and Redis accepts workq's calls).
    claiming: Vec<AtomicBool>,
    /// Shutdown began: the loops are meant to end from now on.
    stopping: AtomicBool,
    /// Loops that ended while the runtime was not shutting down (a panic, a bug).
    ended: Mutex<Vec<&'static str>>,
}

impl Health {
    pub(crate) fn new(queues: usize) -> Self {
        Health {
            started: AtomicBool::new(false),
            claiming: (0..queues).map(|_| AtomicBool::new(false)).collect(),
            stopping: AtomicBool::new(false),
            ended: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// Queue `q`'s claim loop's latest call succeeded or failed.
    pub(crate) fn claiming(&self, q: usize, ok: bool) {
        if let Some(c) = self.claiming.get(q) {
            c.store(ok, Ordering::Relaxed);
        }
    }

    pub(crate) fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// None when every loop runs, else the loops that ended unexpectedly.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn problem(&self) -> Option<String> {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        (!ended.is_empty()).then(|| format!("loops ended unexpectedly: {}", ended.join(", ")))
    }

    /// None when ready, else why not.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn not_ready(&self) -> Option<String> {
        if self.stopping.load(Ordering::Relaxed) {
            return Some("shutting down".into());
        }
        if let Some(p) = self.problem() {
            return Some(p);
        }
        if !self.started.load(Ordering::Relaxed) {
            return Some("starting: Redis has not answered the start-up checks yet".into());
        }
        if self.claiming.iter().any(|c| !c.load(Ordering::Relaxed)) {
            return Some(
                "not claiming: a queue's latest claim call failed or none was made yet".into(),
            );
        }
        None
    }
}

/// Records `name` as ended unexpectedly when dropped before shutdown began (the loop
/// returned early, panicked, or was aborted).
struct Watch {
    shared: Arc<Shared>,
    name: &'static str,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let health = &self.shared.health;
        if !health.stopping.load(Ordering::Relaxed) {
            tracing::error!(loop_ = self.name, "a runtime loop ended unexpectedly");
            health
                .ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.name);
        }
    }
}

/// Spawns the loop `name`, which reports to `/healthz` if it ends before shutdown.
pub(crate) fn spawn_watched(
    shared: &Arc<Shared>,
    name: &'static str,
    run: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let watch = Watch {
        shared: Arc::clone(shared),
        name,
    };
    tokio::spawn(async move {
        let _watch = watch;
        run.await;
    })
}
