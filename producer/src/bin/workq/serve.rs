//! `workq serve --http ADDR`: one exporter for the queues (what `workq metrics` prints, at
//! `/metrics`), and `/healthz`. Queue state belongs to Redis, not to a worker, so it is
//! exported here once per deployment (several exporters may run for availability; the
//! alert rules take `max` over them), and it stays visible with no worker running.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workq_common::http::{serve as serve_http, Handler, Response};
use workq_producer::WorkManager;

use crate::{exporter, BoxError};

/// `workq serve`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 9464 is this project's; port 0 picks one and
    /// prints it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    http: String,
}

/// Serves until SIGTERM or SIGINT. Each scrape of `/metrics` reads Redis then (a bounded
/// number of commands per queue); a Redis that does not answer gives `workq_redis_up 0`.
pub(crate) async fn run(wm: WorkManager, args: ServeArgs) -> Result<ExitCode, BoxError> {
    let addr = args.http.as_str();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve HTTP on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    // Tests (and operators who asked for port 0) read the address from this line.
    eprintln!("workq serve: listening on http://{local} (/metrics, /healthz)");
    let handler: Handler = Arc::new(move |path: &str| {
        let wm = wm.clone();
        let path = path.to_owned();
        Box::pin(async move {
            match path.as_str() {
                "/metrics" => match exporter::render(&wm).await {
                    Ok(page) => Response::new(200, prometheus::TEXT_FORMAT, page),
                    Err(e) => Response::text(500, format!("cannot encode the metrics: {e}\n")),
                },
                "/healthz" => Response::text(200, "ok\n"),
                _ => Response::not_found(&path),
            }
        })
    });
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve_http(listener, handler, stop.clone()));
    wait_for_a_signal().await?;
    stop.cancel();
    server.await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_a_signal() -> Result<(), BoxError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
