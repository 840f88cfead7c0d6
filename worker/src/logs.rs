//! Logging set-up for worker binaries (feature `cli`): the `workq-worker` binary and the
//! test suite's worker process read the same `WORKQ_LOG` filter the same way.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Standard output (what `workq-worker` does: its logs are its output).
    Stdout,
    /// Standard error (leaves stdout to a protocol, as the test worker's is).
    Stderr,
}

/// Installs a plain-text subscriber filtered by the `WORKQ_LOG` environment variable (for
/// example `info` or `workq_worker=debug,info`), logging at `default` and above when it
/// is not set. A filter that does not parse is reported on stderr, prefixed by `program`,
/// and the default is used instead: a typo never silences the logs.
pub fn init_from_env(program: &str, default: tracing::Level, output: Output) {
    let fallback = || Targets::new().with_default(default);
    let (filter, bad) = match std::env::var("WORKQ_LOG") {
        Err(std::env::VarError::NotPresent) => (fallback(), None),
        Err(e) => (fallback(), Some(format!("WORKQ_LOG is unusable ({e})"))),
        Ok(s) => match s.parse::<Targets>() {
            Ok(f) => (f, None),
            Err(e) => (
                fallback(),
                Some(format!("WORKQ_LOG '{s}' does not parse ({e})")),
            ),
        },
    };
    let layer = tracing_subscriber::fmt::layer().with_ansi(false);
    match output {
        Output::Stdout => tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .init(),
        Output::Stderr => tracing_subscriber::registry()
            .with(layer.with_writer(std::io::stderr))
            .with(filter)
            .init(),
    }
    if let Some(bad) = bad {
        let level = default.as_str().to_ascii_lowercase();
        eprintln!("{program}: {bad}; logging at {level} and above instead");
    }
}
