//! The worker's HTTP endpoint (feature `http`, on when the builder was given an address):
//! `/metrics` in Prometheus' text format (the runtime's registry, plus the process
//! collector), `/healthz` and `/readyz` (see health.rs). It runs on the runtime's tokio
//! runtime, from before the loops start until after they have stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workq_common::http::{ready_handler, serve, Response};
use workq_common::{Error, Result};

use super::Shared;

/// Binds `addr`: a taken or forbidden address is a configuration error, returned by
/// `run()` before anything else starts.
pub(super) async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config("http", format!("cannot serve HTTP on {addr}: {e}")))
}

/// Serves `listener` until `stop` is cancelled.
pub(super) fn start(
    shared: &Arc<Shared>,
    listener: TcpListener,
    stop: CancellationToken,
) -> JoinHandle<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    let process = process_registry();
    let shared = Arc::clone(shared);
    let handler = ready_handler(move |path: &str| match path {
        "/metrics" => metrics(&shared, &process),
        "/healthz" => match shared.health.problem() {
            None => Response::text(200, "ok\n"),
            Some(p) => Response::text(503, format!("{p}\n")),
        },
        "/readyz" => match shared.health.not_ready() {
            None => Response::text(200, "ready\n"),
            Some(p) => Response::text(503, format!("{p}\n")),
        },
        _ => Response::not_found(path),
    });
    tokio::spawn(serve(listener, handler, stop))
}

fn metrics(shared: &Shared, process: &Registry) -> Response {
    let mut families = shared.metrics.registry().gather();
    families.extend(process.gather());
    let mut body = Vec::new();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => Response::new(200, prometheus::TEXT_FORMAT, body),
        Err(e) => Response::text(500, format!("cannot encode the metrics: {e}\n")),
    }
}

/// The process collector (CPU, memory, file descriptors: read from /proc, so Linux only),
/// in a registry of its own: the runtime's registry stays free of it, so that a service
/// can merge that one into its own, which may have a process collector already.
fn process_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let collector = prometheus::process_collector::ProcessCollector::for_self();
        if let Err(e) = registry.register(Box::new(collector)) {
            tracing::warn!(error = %e, "no process metrics");
        }
    }
    registry
}
