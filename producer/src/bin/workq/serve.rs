//! `workq serve --http ADDR`: one exporter for the queues (what `workq metrics` prints, at
//! `/metrics`), `/healthz`, and the dashboard (pages at `/`, the JSON API under `/api`;
//! see `dashboard/`). Queue state belongs to Redis, not to a worker, so it is exported
//! here once per deployment (several exporters may run for availability; the alert rules
//! take `max` over them), and it stays visible with no worker running.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workq_producer::WorkManager;

use crate::dashboard::{self, Auth};
use crate::BoxError;

/// `workq serve`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 9464 is this project's; port 0 picks one and
    /// prints it). An address other than loopback needs --token or --basic-auth.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    http: String,
    /// Require this token for the dashboard (`Authorization: Bearer TOKEN`, or
    /// `/login?token=TOKEN` for a session cookie); /metrics and /healthz stay open.
    #[arg(
        long,
        env = "WORKQ_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Require these HTTP Basic credentials for the dashboard; /metrics and /healthz
    /// stay open.
    #[arg(
        long,
        env = "WORKQ_DASHBOARD_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    basic_auth: Option<String>,
    /// Serve only /metrics and /healthz (the exporter as before the dashboard): no
    /// pages, no API, so no authentication is needed on any address.
    #[arg(long, conflicts_with_all = ["token", "basic_auth"])]
    no_dashboard: bool,
    /// A host name the dashboard answers to besides loopback ones (repeat for more: a
    /// reverse proxy's public name, or this machine's). Requests whose `Host` names
    /// another are refused (421), against DNS rebinding. Without it, and with a token or
    /// credentials, any host is answered.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
}

/// Serves until SIGTERM or SIGINT. Each scrape of `/metrics` reads Redis then (a bounded
/// number of commands per queue); a Redis that does not answer gives `workq_redis_up 0`.
pub(crate) async fn run(wm: WorkManager, args: ServeArgs) -> Result<ExitCode, BoxError> {
    let auth = Auth {
        token: args.token.filter(|t| !t.is_empty()),
        basic: args.basic_auth.filter(|b| !b.is_empty()),
        allowed_hosts: args.allowed_hosts,
    };
    if auth.basic.as_ref().is_some_and(|b| !b.contains(':')) {
        eprintln!("workq serve: --basic-auth (WORKQ_DASHBOARD_BASIC_AUTH) must be USER:PASSWORD");
        return Ok(ExitCode::from(2));
    }
    let addr = args.http.as_str();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve HTTP on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    if !args.no_dashboard
        && !local.ip().is_loopback()
        && auth.token.is_none()
        && auth.basic.is_none()
    {
        eprintln!(
            "workq serve: refusing to serve the dashboard on {local}, which is not a loopback \
             address, without authentication: give --token TOKEN (or WORKQ_DASHBOARD_TOKEN) or \
             --basic-auth USER:PASSWORD (or WORKQ_DASHBOARD_BASIC_AUTH), listen on 127.0.0.1, or \
             give --no-dashboard to serve only /metrics and /healthz"
        );
        return Ok(ExitCode::from(2));
    }
    // Tests (and operators who asked for port 0) read the address from this line.
    if args.no_dashboard {
        eprintln!("workq serve: listening on http://{local} (/metrics, /healthz)");
    } else {
        eprintln!("workq serve: listening on http://{local} (/metrics, /healthz, dashboard at /)");
    }
    let stop = CancellationToken::new();
    let app = Arc::new(dashboard::App::new(
        wm,
        auth,
        !args.no_dashboard,
        stop.clone(),
    )?);
    // The charts' history is sampled only when there are charts.
    let sampler =
        (!args.no_dashboard).then(|| tokio::spawn(dashboard::history::sample(Arc::clone(&app))));
    let server = tokio::spawn(dashboard::serve(listener, app));
    wait_for_a_signal().await?;
    stop.cancel();
    server.await?;
    if let Some(sampler) = sampler {
        sampler.await?;
    }
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
