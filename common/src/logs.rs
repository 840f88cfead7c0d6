//! Logging set-up for workq's binaries (feature `logs`): `workq-worker`, `workq` and the
//! test suite's worker process read the same environment the same way.
//!
//! - `WORKQ_LOG`: the filter (for example `info` or `workq_worker=debug,info`); unset,
//!   the binary's default level and above.
//! - `WORKQ_LOG_FORMAT`: `json` for one JSON object per line (the event's fields, its
//!   span and the spans it is in: a worker's attempt span carries queue, id, kind and
//!   attempt), `text` (the default) for plain lines.
//!
//! A value that does not parse is reported on stderr and the default used instead: a typo
//! never silences the logs.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Standard output (what `workq-worker` does: its logs are its output).
    Stdout,
    /// Standard error (leaves stdout to the program's output, as `workq`'s and the test
    /// worker's are).
    Stderr,
}

/// Installs the subscriber `WORKQ_LOG` and `WORKQ_LOG_FORMAT` describe, logging at
/// `default` and above when `WORKQ_LOG` is not set; problems are reported on stderr
/// prefixed by `program`.
pub fn init_from_env(program: &str, default: tracing::Level, output: Output) {
    let fallback = || Targets::new().with_default(default);
    let mut problems = Vec::new();
    let filter = match std::env::var("WORKQ_LOG") {
        Err(std::env::VarError::NotPresent) => fallback(),
        Err(e) => {
            problems.push(format!("WORKQ_LOG is unusable ({e})"));
            fallback()
        }
        Ok(s) => s.parse::<Targets>().unwrap_or_else(|e| {
            problems.push(format!("WORKQ_LOG '{s}' does not parse ({e})"));
            fallback()
        }),
    };
    let json = match std::env::var("WORKQ_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(std::env::VarError::NotPresent) => false,
        Ok(other) => {
            problems.push(format!(
                "WORKQ_LOG_FORMAT '{other}' is neither json nor text; writing text"
            ));
            false
        }
        Err(e) => {
            problems.push(format!("WORKQ_LOG_FORMAT is unusable ({e}); writing text"));
            false
        }
    };
    let registry = tracing_subscriber::registry().with(filter);
    let text = tracing_subscriber::fmt::layer().with_ansi(false);
    match (json, output) {
        (true, Output::Stdout) => registry.with(text.json().with_current_span(true)).init(),
        (true, Output::Stderr) => registry
            .with(
                text.json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
        (false, Output::Stdout) => registry.with(text).init(),
        (false, Output::Stderr) => registry.with(text.with_writer(std::io::stderr)).init(),
    }
    let level = default.as_str().to_ascii_lowercase();
    for p in problems {
        if p.starts_with("WORKQ_LOG_FORMAT") {
            eprintln!("{program}: {p}");
        } else {
            eprintln!("{program}: {p}; logging at {level} and above instead");
        }
    }
}
