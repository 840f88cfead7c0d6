//! `workq`: enqueue, watch, inspect and cancel work from the command line.
//!
//! ```text
//! workq [--redis URL] info ID
//! workq [--redis URL] stats [QUEUE]
//! workq [--redis URL] cancel ID | --tag TAG
//! workq [--redis URL] watch [--queue Q] [--follow ID]
//! workq [--redis URL] demo-enqueue --ids-file F [--count-id ID] [--count-to N]
//!                                  [--step-ms MS] [--delay-ms MS] [--small N]
//! workq new-id
//! workq functions
//! workq [--redis URL] verify --ids-file F [--attempts-of-first N] [--wait-secs S]
//! ```
//! `--redis` defaults to `$REDIS_URL`, then `redis://127.0.0.1:6379`. `--help` prints the
//! usage and exits 0; an unknown command, flag or extra argument is an error (exit 2)
//! before Redis is reached; `info` and `cancel` of an id that does not exist exit 1.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use workq_common::demo::{Count, Noop};
use workq_producer::{
    BackoffPolicy, CancelStatus, OneTimeWorkRequest, WorkId, WorkInfo, WorkManager, WorkState,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: workq [--redis URL] <info ID | stats [QUEUE] | cancel ID|--tag TAG | \
watch [--queue Q] [--follow ID] | demo-enqueue --ids-file F [--count-id ID] [--count-to N] \
[--step-ms MS] [--delay-ms MS] [--small N] | verify --ids-file F [--attempts-of-first N] \
[--wait-secs S] | new-id | functions>  (--help: this text)";

/// Each command: its name, the `--flags` it takes (each with a value) and how many bare
/// words (ids, queue names) it takes at most.
const COMMANDS: [(&str, &[&str], usize); 8] = [
    ("info", &[], 1),
    ("stats", &[], 1),
    ("cancel", &["tag"], 1),
    ("watch", &["queue", "follow"], 0),
    (
        "demo-enqueue",
        &[
            "ids-file", "count-id", "count-to", "step-ms", "delay-ms", "small",
        ],
        0,
    ),
    ("verify", &["ids-file", "attempts-of-first", "wait-secs"], 0),
    ("new-id", &[], 0),
    ("functions", &[], 0),
];

/// Flags after the subcommand: `--name value` pairs and bare words.
struct Flags {
    named: HashMap<String, String>,
    words: Vec<String>,
}

impl Flags {
    /// Parses the arguments of `cmd`, refusing a command, flag or word it does not take.
    fn parse(cmd: &str, args: &[String]) -> Result<Self, String> {
        let (_, known, max_words) = COMMANDS
            .iter()
            .find(|(name, ..)| *name == cmd)
            .ok_or_else(|| format!("unknown command '{cmd}'\n{USAGE}"))?;
        let mut named = HashMap::new();
        let mut words = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if !known.contains(&name) {
                    return Err(format!("{cmd} takes no flag --{name}\n{USAGE}"));
                }
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                named.insert(name.to_owned(), v.clone());
            } else {
                words.push(a.clone());
            }
        }
        if words.len() > *max_words {
            return Err(format!(
                "{cmd} takes at most {max_words} argument(s) besides its flags, got {words:?}\n{USAGE}"
            ));
        }
        Ok(Flags { named, words })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.named.get(name).map(String::as_str)
    }

    fn num(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("--{name} {v}: {e}")),
        }
    }
}

fn ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn describe(i: &WorkInfo) -> String {
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
            ms(t) as i128 - ms(SystemTime::now()) as i128
        );
    }
    if let Some(e) = &i.last_error {
        s += &format!(" last_error={e:?}");
    }
    s
}

async fn info(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    let id: WorkId = f.words.first().ok_or("info needs an id")?.parse()?;
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

async fn stats(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    let queues = match f.words.first() {
        Some(q) => vec![q.clone()],
        None => wm.queues().await?,
    };
    for q in queues {
        let s = wm.queue_stats(&q).await?;
        let mut counters: Vec<_> = s.counters.into_iter().collect();
        counters.sort();
        let counters: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{q}: enqueued={} running={} finished_retained={} | {}",
            s.enqueued,
            s.running,
            s.finished,
            counters.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cancel(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    if let Some(tag) = f.get("tag") {
        let s = wm.cancel_all_work_by_tag(tag).await?;
        println!(
            "cancelled {} waiting, asked {} running to stop, {} already finished",
            s.cancelled, s.requested, s.already_finished
        );
    } else {
        let id: WorkId = f
            .words
            .first()
            .ok_or("cancel needs an id or --tag")?
            .parse()?;
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
async fn watch(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    let queue = f.get("queue").unwrap_or(workq_producer::DEFAULT_QUEUE);
    let follow: Option<WorkId> = f.get("follow").map(str::parse).transpose()?;
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

/// The seed scenario: a counting job with an initial delay and the tag `worker_test`,
/// plus small jobs. Writes all ids to the file, the counting job first.
async fn demo_enqueue(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    let file = f.get("ids-file").ok_or("demo-enqueue needs --ids-file")?;
    let count_id: WorkId = match f.get("count-id") {
        Some(id) => id.parse()?,
        None => WorkId::new(),
    };
    let count = OneTimeWorkRequest::builder(Count {
        to: f.num("count-to", 20)? as u32,
        step_ms: f.num("step-ms", 250)?,
    })
    .id(count_id)
    .initial_delay(Duration::from_millis(f.num("delay-ms", 3000)?))
    .tag("worker_test")
    .backoff(BackoffPolicy::Linear, Duration::from_secs(1))
    .max_attempts(5)
    .build()?;
    let mut ids = vec![wm.enqueue(count).await?.id];
    println!("enqueued the counting job {} (tag worker_test)", ids[0]);
    let small = f.num("small", 10_000)?;
    let reqs = (0..small)
        .map(|i| OneTimeWorkRequest::builder(Noop { i }).build())
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    for chunk in reqs.chunks(1000) {
        ids.extend(wm.enqueue_many(chunk.to_vec()).await?.iter().map(|e| e.id));
    }
    println!("enqueued {small} small jobs in {:?}", t.elapsed());
    let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
    std::fs::write(file, text)?;
    println!("producer exits; the work goes on without it");
    Ok(ExitCode::SUCCESS)
}

/// Checks that every job in the file SUCCEEDED (waiting up to --wait-secs for stragglers)
/// and that the first one took the expected number of attempts.
async fn verify(wm: &WorkManager, f: &Flags) -> Result<ExitCode, BoxError> {
    let file = f.get("ids-file").ok_or("verify needs --ids-file")?;
    let ids = std::fs::read_to_string(file)?
        .lines()
        .map(str::parse)
        .collect::<Result<Vec<WorkId>, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(f.num("wait-secs", 0)?);
    let infos = loop {
        let infos = wm.get_work_infos(&ids).await?;
        let done = infos
            .iter()
            .all(|i| i.as_ref().is_none_or(|i| i.state.is_finished()));
        if done || Instant::now() >= deadline {
            break infos;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut by_state: HashMap<String, usize> = HashMap::new();
    for i in &infos {
        let k = i
            .as_ref()
            .map_or("LOST".to_owned(), |i| i.state.to_string());
        *by_state.entry(k).or_default() += 1;
    }
    let mut summary: Vec<_> = by_state.iter().collect();
    summary.sort();
    println!("summary of {} jobs: {summary:?}", ids.len());
    let mut ok = by_state.get("SUCCEEDED") == Some(&ids.len());
    if let Some(Some(first)) = infos.first() {
        println!("counting job: {}", describe(first));
        if let Some(want) = f.get("attempts-of-first") {
            let want: u32 = want.parse()?;
            if first.run_attempt_count != want {
                println!("expected the counting job on attempt {want}");
                ok = false;
            }
        }
    }
    if ok {
        println!("OK: every job SUCCEEDED, none lost");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAILED: not every job SUCCEEDED");
        Ok(ExitCode::from(1))
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, BoxError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut rest = args.as_slice();
    if rest.first().map(String::as_str) == Some("--redis") {
        redis = rest.get(1).ok_or("--redis needs a value")?.clone();
        rest = &rest[2..];
    }
    let (cmd, rest) = rest.split_first().ok_or(USAGE)?;
    // Everything about the command line is checked before Redis is reached.
    let flags = Flags::parse(cmd, rest)?;
    if cmd == "new-id" {
        println!("{}", WorkId::new());
        return Ok(ExitCode::SUCCESS);
    }
    if cmd == "functions" {
        // The function library, for `redis-cli -x FUNCTION LOAD` (producers in other
        // languages; see docs/wire-format.md).
        // A reader that stops early (`| head`) is not an error.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        return match out
            .write_all(workq_common::scripts::scripts().library().as_bytes())
            .and_then(|()| out.flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("workq functions: {e}");
                Ok(ExitCode::FAILURE)
            }
            _ => Ok(ExitCode::SUCCESS),
        };
    }
    let wm = WorkManager::connect(&redis).await?;
    match cmd.as_str() {
        "info" => info(&wm, &flags).await,
        "stats" => stats(&wm, &flags).await,
        "cancel" => cancel(&wm, &flags).await,
        "watch" => watch(&wm, &flags).await,
        "demo-enqueue" => demo_enqueue(&wm, &flags).await,
        "verify" => verify(&wm, &flags).await,
        other => Err(format!("unknown command '{other}'").into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Warnings (a Redis that would evict keys or has AOF off) go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::WARN)
        .init();
    match run(std::env::args().skip(1).collect()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("workq: {e}");
            ExitCode::from(2)
        }
    }
}
