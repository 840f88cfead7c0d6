//! `workq`: enqueue, watch, inspect and cancel work from the command line.
//!
//! ```text
//! workq queues [--json]                       workq stats [QUEUE] [--json]
//! workq jobs [--queue Q] [--state S] [--kind K] [--tag T] [--unique NAME] [--newest]
//!            [--limit N] [--after CURSOR] [--json]
//! workq info ID [--json]                      workq workers [QUEUE] [--json]
//! workq periodic [QUEUE] [--json]             workq watch [--queue Q] [--follow ID] [--json]
//! workq enqueue KIND [--input JSON] [--queue Q] [--delay D | --at T] [--tag T].. [--max-attempts N]
//!               [--unique NAME [--policy keep|replace|append|append-or-replace]] [--json]
//! workq retry ID.. [--json]                   workq retry-failed QUEUE [--json]
//! workq run-now ID.. [--json]                 workq cancel ID | --tag TAG [--json]
//! workq delete ID.. [--force] [--yes] [--json]
//! workq purge QUEUE [--state succeeded|failed|cancelled|finished] [--yes] [--json]
//! workq prune [--queue Q] [--json]            workq pause QUEUE | resume QUEUE
//! workq metrics
//! workq serve [--http ADDR] [--token T | --basic-auth USER:PASSWORD | --no-dashboard]
//! workq functions                             workq new-id [--json]
//! workq completions bash|zsh|fish|elvish|powershell
//! workq demo-enqueue ... | verify ...         (the demo's scenario)
//! ```
//! `--redis URL` is accepted before or after the command and defaults to `$REDIS_URL`,
//! then `redis://127.0.0.1:6379`. For a `rediss://` URL, `--tls-ca FILE` (`$WORKQ_TLS_CA`)
//! is the CA to trust instead of the system's roots, and `--tls-cert FILE --tls-key FILE`
//! (`$WORKQ_TLS_CERT`, `$WORKQ_TLS_KEY`) a client certificate, all PEM. `--help` (also after a command) prints the usage and
//! exits 0. Exit codes: 0 done; 1 `info` or `cancel` of an id that does not exist,
//! `retry`, `run-now` or `delete` of one that does not or is in a state the command does
//! not apply to, a destructive command not confirmed, or `verify` found a job that did
//! not succeed; 130 `retry-failed` or `purge` stopped by Ctrl-C (between two atomic
//! steps: what was done stays done); 2 a usage error (unknown command, flag or
//! extra argument: refused before Redis is reached) or an error from Redis. Built with the
//! `cli` feature (`cargo build -p workq-producer --features cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use workq_common::logs::Output;
use workq_producer::{TlsConfig, WorkId, WorkManager};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Enqueue, watch, inspect and cancel workq jobs.
#[derive(Debug, Parser)]
#[command(name = "workq", version)]
#[command(help_template = "usage: {usage}\n\n{about-with-newline}\n{all-args}")]
struct Cli {
    /// The Redis to use (credentials in the URL are never printed).
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// For rediss://: trust this CA file (PEM) instead of the system's roots.
    #[arg(long, global = true, env = "WORKQ_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// For rediss://: present this client certificate (PEM); needs --tls-key.
    #[arg(
        long,
        global = true,
        env = "WORKQ_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(
        long,
        global = true,
        env = "WORKQ_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show one job in full: state, attempts, input and output as JSON, progress, errors,
    /// chain, schedule.
    Info {
        /// The job's id.
        id: WorkId,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Counts of every queue, or of one.
    Stats {
        /// Only this queue.
        queue: Option<String>,
        /// One JSON document: {"queues": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// A table of the queues: sizes by state, paused or not, workers.
    Queues {
        /// One JSON document: {"queues": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// The workers seen in the last hour (every queue, or one): host, busy and total
    /// slots, kinds, labels, last seen.
    Workers {
        /// Only this queue.
        queue: Option<String>,
        /// One JSON document: {"workers": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Periodic work (every queue, or one): schedule, next run, last outcome.
    Periodic {
        /// Only this queue.
        queue: Option<String>,
        /// One JSON document: {"jobs": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue one job, its input given as JSON; prints its id.
    Enqueue(enqueue::EnqueueArgs),
    /// Cancel a job, or every job with a tag.
    Cancel {
        /// The job's id.
        #[arg(required_unless_present = "tag", conflicts_with = "tag")]
        id: Option<WorkId>,
        /// Cancel every job with this tag instead.
        #[arg(long)]
        tag: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Delete the finished jobs of a queue (or of every queue) now, whatever their
    /// retention.
    Prune {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the state changes of a queue (or of one job), and once a second how many
    /// jobs entered each state.
    Watch {
        /// The queue to watch.
        #[arg(long, default_value = workq_producer::DEFAULT_QUEUE)]
        queue: String,
        /// Print only this job's state changes.
        #[arg(long, value_name = "ID")]
        follow: Option<WorkId>,
        /// One JSON line per state change.
        #[arg(long)]
        json: bool,
    },
    /// The demo's scenario: a counting job (tag worker_test) and small jobs; writes their
    /// ids to a file, the counting job first.
    DemoEnqueue(DemoArgs),
    /// Check that every job in a file SUCCEEDED, and the first one's attempt count.
    Verify {
        /// The ids, one per line (as demo-enqueue writes them).
        #[arg(long, value_name = "F")]
        ids_file: PathBuf,
        /// The attempts the first job must have taken.
        #[arg(long, value_name = "N")]
        attempts_of_first: Option<u32>,
        /// How long to wait for unfinished jobs.
        #[arg(long, default_value_t = 0, value_name = "S")]
        wait_secs: u64,
    },
    /// Print the queues' metrics once, in the Prometheus text format (what an exporter
    /// serves: sizes by state, the oldest ready job's age, workers, event counters).
    Metrics,
    /// Serve the queues' metrics (`/metrics`, `/healthz`) and the web dashboard (`/`, its
    /// JSON API under `/api`) over HTTP until SIGTERM: one exporter per deployment.
    Serve(serve::ServeArgs),
    /// List a queue's jobs by state, a page at a time.
    Jobs(admin::JobsArgs),
    /// Pause a queue: workers claim nothing from it until `resume`; enqueueing goes on.
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Retry FAILED or CANCELLED jobs (due now, attempts counted afresh).
    Retry {
        #[command(flatten)]
        ids: admin::IdsArgs,
    },
    /// Retry every FAILED job of a queue, in bounded steps.
    RetryFailed {
        /// The queue.
        queue: String,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Make delayed or backing-off jobs due now.
    RunNow {
        #[command(flatten)]
        ids: admin::IdsArgs,
    },
    /// Delete jobs (asks on a terminal; --yes elsewhere).
    Delete {
        #[command(flatten)]
        ids: admin::IdsArgs,
        /// Delete RUNNING jobs too (their workers' results are then refused).
        #[arg(long)]
        force: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Delete a queue's finished jobs now, whatever their retention (asks on a terminal;
    /// --yes elsewhere).
    Purge {
        /// The queue.
        queue: String,
        /// succeeded, failed, cancelled, or finished (all three).
        #[arg(long, default_value = "finished")]
        state: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print a new job id.
    NewId {
        /// One JSON document: {"id"}.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `workq completions bash > /etc/bash_completion.d/workq`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the Lua function library, for `redis-cli -x FUNCTION LOAD` (producers in
    /// other languages; see docs/wire-format.md).
    Functions,
}

/// Turns clap's rendering of a usage error into workq's: `workq: <what>` and the usage
/// line of the command that was being parsed.
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(what) = line.strip_prefix("error: ") {
            out.push(format!("workq: {what}"));
        } else if let Some(usage) = line.strip_prefix("Usage: ") {
            out.push(format!("usage: {usage}"));
        } else if line.starts_with("  ") {
            // what is missing, one per line
            out.push(line.to_owned());
        }
    }
    out.push("(--help lists the commands and their flags)".to_owned());
    out.join("\n")
}

mod admin;
mod dashboard;
mod demo;
mod enqueue;
mod exporter;
mod inspect;
mod json;
mod serve;
mod table;

use demo::DemoArgs;

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let wm = match cli.command {
        Command::NewId { json } => {
            if json {
                println!("{}", serde_json::json!({ "id": WorkId::new().to_string() }));
            } else {
                println!("{}", WorkId::new());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Functions => return Ok(functions()),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "workq", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {
            let mut b = WorkManager::builder(&cli.redis);
            if matches!(cli.command, Command::Serve(_)) {
                // Each of the dashboard's live queue watches holds a connection of its
                // own; the rest serve the pages, the API and /metrics.
                b = b.pool_size(dashboard::MAX_WATCHES + 8);
            }
            if cli.tls_ca.is_some() || cli.tls_cert.is_some() {
                let mut tls = TlsConfig::new();
                if let Some(ca) = &cli.tls_ca {
                    tls = tls.ca_file(ca);
                }
                if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
                    tls = tls.client_cert(cert, key);
                }
                b = b.tls(tls);
            }
            b.connect().await?
        }
    };
    match cli.command {
        Command::Info { id, json } => inspect::info(&wm, id, json).await,
        Command::Queues { json } => inspect::queues(&wm, json).await,
        Command::Workers { queue, json } => inspect::workers(&wm, queue, json).await,
        Command::Periodic { queue, json } => inspect::periodic(&wm, queue, json).await,
        Command::Enqueue(a) => enqueue::enqueue(&wm, a).await,
        Command::Prune { queue, json } => enqueue::prune(&wm, queue, json).await,
        Command::Serve(args) => serve::run(wm, args).await,
        Command::Metrics => {
            print!("{}", exporter::render(&wm).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { queue, json } => inspect::stats(&wm, queue, json).await,
        Command::Cancel { id, tag, json } => inspect::cancel(&wm, id, tag, json).await,
        Command::Watch {
            queue,
            follow,
            json,
        } => inspect::watch(&wm, &queue, follow, json).await,
        Command::DemoEnqueue(args) => demo::enqueue(&wm, args).await,
        Command::Verify {
            ids_file,
            attempts_of_first,
            wait_secs,
        } => demo::verify(&wm, &ids_file, attempts_of_first, wait_secs).await,
        Command::Jobs(a) => admin::jobs(&wm, a).await,
        Command::Pause { queue } => admin::pause(&wm, &queue, true).await,
        Command::Resume { queue } => admin::pause(&wm, &queue, false).await,
        Command::Retry { ids } => admin::retry(&wm, ids).await,
        Command::RetryFailed { queue, json } => admin::retry_failed(&wm, &queue, json).await,
        Command::RunNow { ids } => admin::run_now(&wm, ids).await,
        Command::Delete { ids, force, yes } => admin::delete(&wm, ids, force, yes).await,
        Command::Purge {
            queue,
            state,
            yes,
            json,
        } => admin::purge(&wm, &queue, &state, yes, json).await,
        Command::NewId { .. } | Command::Functions | Command::Completions { .. } => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the function library to stdout; a reader that stops early (`| head`) is not an
/// error.
fn functions() -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(
            workq_common::internal::scripts::scripts()
                .library()
                .as_bytes(),
        )
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("workq functions: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Everything about the command line is checked before Redis is reached.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", usage_error(&e));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version go to stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // Warnings (a Redis that would evict keys or has AOF off) go to stderr;
    // WORKQ_LOG and WORKQ_LOG_FORMAT as for the worker.
    workq_common::logs::init_from_env("workq", tracing::Level::WARN, Output::Stderr);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("workq: {e}");
            ExitCode::from(2)
        }
    }
}
