//! The BullMQ peer: its scripts, run against the same Redis, and the ratios.

use serde_json::Value;

use crate::BoxError;

pub(crate) fn redis_port(url: &str) -> Result<String, BoxError> {
    let info = redis::Client::open(url)?.get_connection_info().clone();
    match info.addr() {
        redis::ConnectionAddr::Tcp(_, port) => Ok(port.to_string()),
        _ => Err("--bullmq needs a TCP Redis URL".into()),
    }
}

/// Runs a Node peer script in `dir`; its last line of output, as JSON.
pub(crate) fn run_peer(dir: &str, script: &str, args: &[String]) -> Result<Value, BoxError> {
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script).args(args).current_dir(dir);
    last_json(cmd, &format!("node {script}"))
}

/// Runs one of the bullmq-rs peer's binaries (`bench`, `latency`), built in `dir` by
/// `cargo build --release`; its last line of output, as JSON.
pub(crate) fn run_rust_peer(dir: &str, bin: &str, args: &[String]) -> Result<Value, BoxError> {
    // Absolute: the command runs in `dir`, where a relative path would not resolve.
    let path = std::fs::canonicalize(dir)
        .map_err(|e| format!("--bullmq-rs {dir}: {e}"))?
        .join("target/release")
        .join(bin);
    let mut cmd = std::process::Command::new(&path);
    cmd.args(args).current_dir(dir);
    last_json(cmd, &path.display().to_string())
}

fn last_json(mut cmd: std::process::Command, what: &str) -> Result<Value, BoxError> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let last = line.lines().last().ok_or("the peer printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

pub(crate) fn ratio(a: &Value, ka: &str, b: &Value, kb: &str) -> Option<f64> {
    let (x, y) = (a.get(ka)?.as_f64()?, b.get(kb)?.as_f64()?);
    (y != 0.0).then(|| (x / y * 100.0).round() / 100.0)
}

/// The median of some numbers (`None` for none).
pub(crate) fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some(((xs[n / 2 - 1] + xs[n / 2]) / 2.0 * 100.0).round() / 100.0),
    }
}
