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

pub(crate) fn run_peer(dir: &str, script: &str, args: &[String]) -> Result<Value, BoxError> {
    let out = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "node {script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
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
