//! Test support: real `redis-server` processes on free ports, and real worker processes
//! whose stdout lines the tests wait on. Nothing here is mocked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

pub mod cluster;
pub mod jobs;
pub mod netns;
mod node;
mod process;
pub mod prom_server;
pub mod prometheus;
pub mod sentinel;
mod server;
pub mod tls;

pub use cluster::RedisCluster;
pub use netns::{Host, Hosts};
pub use process::{faketime_env, WorkerProcess};
pub use sentinel::SentinelSetup;
pub use server::{free_port, Persistence, RedisServer};
pub use tls::{ClientAuth, OtherCa, TlsCluster, TlsSentinel, TlsServer};

use std::time::Duration;

/// The `redis-cli ACL SETUSER ...` commands of the README's "ACL users" section, as
/// argument lists (without `redis-cli`, shell quotes removed), so that the tests use the
/// very rules the README gives.
pub fn readme_acl_rules() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let mut rules = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("redis-cli ACL SETUSER ") {
            continue;
        }
        let mut text = line.to_owned();
        while text.ends_with('\\') {
            text.pop();
            text.push(' ');
            text.push_str(lines.next().unwrap_or_default());
        }
        rules.push(
            text.split_whitespace()
                .skip(1)
                .map(|t| t.trim_matches('\'').to_owned())
                .collect(),
        );
    }
    rules
}

/// Every wait in the tests is for an event; this only turns a hang into a failure.
pub const HANG: Duration = Duration::from_secs(120);

/// The `redis-server` the fixtures start: `$WORKQ_TEST_REDIS_SERVER` when set (another
/// build or version, e.g. the Redis 7.4 of `tests/compat.sh`), else `redis-server` from
/// `PATH`.
pub fn redis_server_bin() -> std::ffi::OsString {
    std::env::var_os("WORKQ_TEST_REDIS_SERVER").unwrap_or_else(|| "redis-server".into())
}

/// Installs a log subscriber once (RUST_LOG-style filter from `WORKQ_TEST_LOG`).
pub fn init_logs() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter: tracing_subscriber::filter::Targets = std::env::var("WORKQ_TEST_LOG")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| "warn".parse().expect("filter"));
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .with(filter)
            .try_init();
    });
}
