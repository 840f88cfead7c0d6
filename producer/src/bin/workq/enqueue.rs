//! `workq enqueue` (one job from the command line, its input given as JSON and stored as
//! MessagePack, as a Rust producer would) and `workq prune`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::json;
use workq_producer::{
    Data, EnqueueStatus, ExistingWorkPolicy, GraphStatus, OneTimeWorkRequest, WorkManager,
};

use crate::BoxError;

/// `workq enqueue`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    /// The job's kind (what a worker registered for it).
    kind: String,
    /// The input, as JSON (stored as MessagePack).
    #[arg(long, default_value = "null", value_name = "JSON")]
    input: String,
    /// The queue.
    #[arg(long, default_value = workq_producer::DEFAULT_QUEUE)]
    queue: String,
    /// Due after this long: 1500ms, 30s, 5m, 2h, 1d.
    #[arg(long, value_name = "DURATION", conflicts_with = "at")]
    delay: Option<String>,
    /// Due at this time: Unix seconds, or RFC 3339 in UTC (2026-12-24T18:00:00Z).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// A tag (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Attempts before it ends FAILED.
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// Enqueue as unique work of this name.
    #[arg(long, value_name = "NAME")]
    unique: Option<String>,
    /// With --unique: keep, replace, append or append-or-replace.
    #[arg(
        long,
        default_value = "keep",
        requires = "unique",
        value_name = "POLICY"
    )]
    policy: String,
    /// One JSON document: {"id", "status"}.
    #[arg(long)]
    json: bool,
}

/// A duration such as `1500ms`, `30s`, `5m`, `2h`, `1d` (a bare number is seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (use e.g. 1500ms, 30s, 5m, 2h, 1d)"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{s}' is too long"))
}

/// Unix seconds, or `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC; `+00:00` also taken).
pub(crate) fn parse_time(s: &str) -> Result<SystemTime, String> {
    let bad = || {
        format!("'{s}' is not a time: give Unix seconds or RFC 3339 in UTC (2026-12-24T18:00:00Z)")
    };
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let t = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .ok_or_else(bad)?;
    let (date, time) = t.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |v: &str| v.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (whole, frac) = time.split_once('.').unwrap_or((time, ""));
    let h: Vec<&str> = whole.split(':').collect();
    let ([y, mo, da], [hh, mi, ss]) = (d.as_slice(), h.as_slice()) else {
        return Err(bad());
    };
    let (y, mo, da, hh, mi, ss) = (num(y)?, num(mo)?, num(da)?, num(hh)?, num(mi)?, num(ss)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || hh > 23 || mi > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mi * 60 + ss;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    let ms = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
        f.parse::<u64>().map_err(|_| bad())?
    };
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms))
}

fn policy(s: &str) -> Result<ExistingWorkPolicy, String> {
    Ok(match s {
        "keep" => ExistingWorkPolicy::Keep,
        "replace" => ExistingWorkPolicy::Replace,
        "append" => ExistingWorkPolicy::Append,
        "append-or-replace" => ExistingWorkPolicy::AppendOrReplace,
        _ => {
            return Err(format!(
                "--policy {s}: use keep, replace, append or append-or-replace"
            ))
        }
    })
}

/// Enqueues one job; prints its id (exit 0), or with `--unique` and the keep policy, the
/// id of the work that was kept.
pub(crate) async fn enqueue(wm: &WorkManager, a: EnqueueArgs) -> Result<ExitCode, BoxError> {
    let input: serde_json::Value =
        serde_json::from_str(&a.input).map_err(|e| format!("--input is not JSON: {e}"))?;
    let mut b = OneTimeWorkRequest::builder_raw(&a.kind, Data::encode(&input)?).queue(&a.queue);
    if let Some(d) = &a.delay {
        b = b.initial_delay(parse_duration(d)?);
    }
    if let Some(t) = &a.at {
        b = b.run_at(parse_time(t)?);
    }
    for t in &a.tags {
        b = b.tag(t);
    }
    if let Some(n) = a.max_attempts {
        b = b.max_attempts(n);
    }
    let req = b.build()?;
    let (ids, status) = match &a.unique {
        Some(name) => {
            let out = wm
                .enqueue_unique_work(name, policy(&a.policy)?, req)
                .await?;
            let st = match out.status {
                GraphStatus::Enqueued => "enqueued",
                GraphStatus::Kept => "kept",
                GraphStatus::Existed => "existed",
                GraphStatus::Updated => "updated",
                _ => "done",
            };
            (out.ids, st)
        }
        None => {
            let out = wm.enqueue(req).await?;
            let st = match out.status {
                EnqueueStatus::Enqueued => "enqueued",
                _ => "existed",
            };
            (vec![out.id], st)
        }
    };
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    if a.json {
        println!("{}", json!({ "ids": ids, "status": status }));
    } else {
        for id in &ids {
            println!("{id}");
        }
        if status != "enqueued" {
            eprintln!("workq enqueue: {status}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `workq prune --queue Q` (or every queue): deletes the finished jobs now, whatever their
/// retention.
pub(crate) async fn prune(
    wm: &WorkManager,
    queue: Option<String>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let n = match &queue {
        Some(q) => wm.prune_work_in(q).await?,
        None => wm.prune_work().await?,
    };
    if json {
        println!("{}", json!({ "queue": queue, "pruned": n }));
    } else {
        println!("pruned {n} finished jobs");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5 weeks").unwrap_err().contains("unit"));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        let t = |s: &str| parse_time(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_millis());
        assert_eq!(t("2026-12-24T18:00:00Z"), Ok(1_798_135_200_000));
        assert_eq!(t("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(t("2000-03-01T00:00:00+00:00"), Ok(951_868_800_000));
        assert_eq!(t("1798135200"), Ok(1_798_135_200_000));
        assert!(t("2026-13-01T00:00:00Z").is_err());
        assert!(t("2026-12-24T18:00:00+01:00").is_err(), "UTC only");
    }
}
