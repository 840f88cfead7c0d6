//! `workq`: enqueue, watch, inspect and cancel work from the command line.
//!
//! ```text
//! workq info ID
//! workq stats [QUEUE]
//! workq cancel ID | --tag TAG
//! workq watch [--queue Q] [--follow ID]
//! workq demo-enqueue --ids-file F [--count-id ID] [--count-to N] [--step-ms MS]
//!                    [--delay-ms MS] [--small N]
//! workq verify --ids-file F [--attempts-of-first N] [--wait-secs S]
//! workq metrics
//! workq serve [--http ADDR]
//! workq jobs [--queue Q] [--state S] [--kind K] [--tag T] [--newest] [--limit N]
//!            [--after CURSOR] [--json]
//! workq pause QUEUE | resume QUEUE
//! workq retry ID.. [--json] | retry-failed QUEUE [--json]
//! workq run-now ID.. [--json]
//! workq delete ID.. [--force] [--yes] [--json]
//! workq purge QUEUE [--state succeeded|failed|cancelled|finished] [--yes] [--json]
//! workq new-id
//! workq functions
//! ```
//! `--redis URL` is accepted before or after the command and defaults to `$REDIS_URL`,
//! then `redis://127.0.0.1:6379`. For a `rediss://` URL, `--tls-ca FILE` (`$WORKQ_TLS_CA`)
//! is the CA to trust instead of the system's roots, and `--tls-cert FILE --tls-key FILE`
//! (`$WORKQ_TLS_CERT`, `$WORKQ_TLS_KEY`) a client certificate, all PEM. `--help` (also after a command) prints the usage and
//! exits 0. Exit codes: 0 done; 1 `info` or `cancel` of an id that does not exist,
//! `retry`, `run-now` or `delete` of one that does not or is in a state the command does
//! not apply to, a destructive command not confirmed, or `verify` found a job that did
//! not succeed; 2 a usage error (unknown command, flag or
//! extra argument: refused before Redis is reached) or an error from Redis. Built with the
//! `cli` feature (`cargo build -p workq-producer --features cli`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use workq_common::logs::Output;
use workq_common::time::{epoch_ms, now_ms};
use workq_producer::{CancelStatus, TlsConfig, WorkId, WorkInfo, WorkManager, WorkState};

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
    /// Show one job: state, kind, queue, attempts, tags, worker, due time, last error.
    Info {
        /// The job's id.
        id: WorkId,
    },
    /// Counts of every queue, or of one.
    Stats {
        /// Only this queue.
        queue: Option<String>,
    },
    /// Cancel a job, or every job with a tag.
    Cancel {
        /// The job's id.
        #[arg(required_unless_present = "tag", conflicts_with = "tag")]
        id: Option<WorkId>,
        /// Cancel every job with this tag instead.
        #[arg(long)]
        tag: Option<String>,
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
    /// Serve the queues' metrics over HTTP (`/metrics`, `/healthz`) until SIGTERM: one
    /// exporter per deployment.
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
    NewId,
    /// Print the Lua function library, for `redis-cli -x FUNCTION LOAD` (producers in
    /// other languages; see docs/wire-format.md).
    Functions,
}

pub(crate) fn describe(i: &WorkInfo) -> String {
    let mut s = format!(
        "{} {} kind={} queue={} attempts={}/{}",
        i.id, i.state, i.kind, i.queue, i.run_attempt_count, i.max_attempts
    );
    if !i.tags.is_empty() {
        s += &format!(" tags={}", i.tags.join(","));
    }
    if let Some(w) = &i.worker {
        s += &format!(" worker={w}");
    }
    if let Some(t) = i.next_due_at {
        s += &format!(
            " due_in_ms={}",
            i128::from(epoch_ms(t)) - i128::from(now_ms())
        );
    }
    if let Some(e) = &i.last_error {
        s += &format!(" last_error={e:?}");
    }
    s
}

async fn info(wm: &WorkManager, id: WorkId) -> Result<ExitCode, BoxError> {
    match wm.get_work_info(id).await? {
        Some(i) => {
            println!("{}", describe(&i));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("{id} not found (never enqueued, or pruned after retention)");
            Ok(ExitCode::from(1))
        }
    }
}

async fn stats(wm: &WorkManager, queue: Option<String>) -> Result<ExitCode, BoxError> {
    let queues = match queue {
        Some(q) => vec![q],
        None => wm.queues().await?,
    };
    for q in queues {
        let s = wm.queue_stats(&q).await?;
        let mut counters: Vec<_> = s.counters.into_iter().collect();
        counters.sort();
        let counters: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{q}: enqueued={} (ready={} scheduled={} oldest_ready_age_ms={}) running={} \
             finished_retained={} (succeeded={} failed={} cancelled={}) | {}",
            s.enqueued,
            s.ready,
            s.scheduled,
            s.oldest_ready_age_ms
                .map_or("-".to_owned(), |a| a.to_string()),
            s.running,
            s.finished,
            s.retained_succeeded,
            s.retained_failed,
            s.retained_cancelled,
            counters.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cancel(
    wm: &WorkManager,
    id: Option<WorkId>,
    tag: Option<String>,
) -> Result<ExitCode, BoxError> {
    if let Some(tag) = tag {
        let s = wm.cancel_all_work_by_tag(&tag).await?;
        println!(
            "cancelled {} waiting, asked {} running to stop, {} already finished",
            s.cancelled, s.requested, s.already_finished
        );
    } else {
        let id = id.ok_or("cancel needs an id or --tag")?;
        match wm.cancel_work_by_id(id).await? {
            CancelStatus::NotFound => {
                println!("{id} not found (never enqueued, or pruned after retention)");
                return Ok(ExitCode::from(1));
            }
            st => println!("{id}: {st:?}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every state change of the followed job, and once a second how many jobs
/// entered each state.
async fn watch(
    wm: &WorkManager,
    queue: &str,
    follow: Option<WorkId>,
) -> Result<ExitCode, BoxError> {
    let mut w = wm.watch_queue(queue).await?;
    println!("watching queue {queue}");
    let mut totals: HashMap<WorkState, u64> = HashMap::new();
    let mut printed = totals.clone();
    let mut last = Instant::now();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(1), w.next()).await;
        if let Ok(ev) = ev {
            let ev = ev?;
            *totals.entry(ev.state).or_default() += 1;
            if follow.is_none_or(|id| id == ev.id) {
                println!("[watch] {} -> {} (attempt {})", ev.id, ev.state, ev.attempt);
            }
        }
        if last.elapsed() >= Duration::from_secs(1) && totals != printed {
            let line: Vec<String> = WorkState::ALL
                .iter()
                .filter_map(|s| totals.get(s).map(|n| format!("{s}={n}")))
                .collect();
            println!("[watch] transitions so far: {}", line.join(" "));
            printed = totals.clone();
            last = Instant::now();
        }
    }
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
mod exporter;
mod json;
mod serve;

use demo::DemoArgs;

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let wm = match cli.command {
        Command::NewId => {
            println!("{}", WorkId::new());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Functions => return Ok(functions()),
        _ => {
            let mut b = WorkManager::builder(&cli.redis);
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
        Command::Info { id } => info(&wm, id).await,
        Command::Serve(args) => serve::run(wm, args).await,
        Command::Metrics => {
            print!("{}", exporter::render(&wm).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { queue } => stats(&wm, queue).await,
        Command::Cancel { id, tag } => cancel(&wm, id, tag).await,
        Command::Watch { queue, follow } => watch(&wm, &queue, follow).await,
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
        Command::NewId | Command::Functions => Ok(ExitCode::SUCCESS),
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
