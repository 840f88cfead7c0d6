//! Checks of the Redis server that producers and workers share: its version (workq
//! needs Redis 7.0 for its function library) and the settings that can lose jobs.
//!
//! Both are written to work for a user with few permissions: the version comes from
//! `HELLO`, which Redis answers for every authenticated user whatever its ACL, and the
//! settings from `INFO`, which a restricted user may not be allowed (then they are
//! skipped, with a debug log).

use redis::aio::ConnectionLike;
use redis::Value;

use crate::{Error, Result};

/// The server's version from `HELLO` (no arguments: the protocol is left as it is).
/// `None` when the reply has no version (a server that is not Redis, or an error other
/// than an unknown command).
pub async fn version<C: ConnectionLike>(con: &mut C) -> Result<Option<String>> {
    let reply: redis::RedisResult<Value> = redis::cmd("HELLO").query_async(con).await;
    let fields = match reply {
        Ok(Value::Map(pairs)) => pairs,
        Ok(Value::Array(items)) => {
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Ok(_) => return Ok(None),
        // Before 6.0 Redis has no HELLO: older than workq needs.
        Err(e) if e.detail().is_some_and(|d| d.contains("unknown command")) => {
            return Ok(Some("older than 6.0".to_owned()))
        }
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
            return Err(e.into())
        }
        Err(e) => {
            tracing::debug!("HELLO refused ({e}); the Redis version is not checked");
            return Ok(None);
        }
    };
    Ok(fields.into_iter().find_map(|(k, v)| match (k, v) {
        (Value::BulkString(k), Value::BulkString(v)) if k == b"version" => {
            String::from_utf8(v).ok()
        }
        (Value::SimpleString(k), Value::SimpleString(v)) if k == "version" => Some(v),
        _ => None,
    }))
}

/// `Error::Config` when `version` is older than 7.0.
pub fn require_functions(version: &str) -> Result<()> {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if version.starts_with("older") || major.is_some_and(|m| m < 7) {
        return Err(Error::config("server", format!(
            "workq needs Redis 7.0 or later (its scripts are a Redis function library); this server is Redis {version}"
        )));
    }
    Ok(())
}

/// Checks that the server is Redis 7.0 or later (`Error::Config` if not); a server
/// whose version cannot be read passes.
pub async fn check_version<C: ConnectionLike>(con: &mut C) -> Result<()> {
    match version(con).await? {
        Some(v) => require_functions(&v),
        None => Ok(()),
    }
}

/// Logs a warning for each setting in `INFO` that can lose jobs. A user not allowed
/// `INFO` skips the check (debug log); other failures are logged at debug level too: the
/// check is advice, never a reason to fail.
pub async fn warn_about_durability<C: ConnectionLike>(con: &mut C) {
    let info: redis::RedisResult<String> = redis::cmd("INFO").query_async(con).await;
    match info {
        Ok(info) => {
            for w in durability_warnings(&info) {
                tracing::warn!("{w}");
            }
        }
        Err(e) => tracing::debug!("INFO refused ({e}); Redis' durability settings are not checked"),
    }
}

/// A field of `INFO` output (`name:value` lines), trimmed.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// What in `INFO` output can lose jobs, or stop workq from working at all.
pub fn durability_warnings(info: &str) -> Vec<String> {
    let field = |name: &str| info_field(info, name);
    let mut out = Vec::new();
    if let Some(v) = field("redis_version") {
        if require_functions(v).is_err() {
            out.push(format!(
                "Redis {v} has no functions: workq needs Redis 7.0 or later, and every claim will fail"
            ));
        }
    }
    let policy = field("maxmemory_policy").unwrap_or("noeviction");
    if policy != "noeviction" {
        out.push(format!(
            "Redis has maxmemory-policy {policy}: under memory pressure it evicts keys, which drops jobs; set maxmemory-policy noeviction"
        ));
    }
    if field("aof_enabled") == Some("0") {
        out.push(
            "Redis has AOF off: a Redis crash loses jobs written since its last snapshot; run it with appendonly yes and appendfsync everysec".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_and_missing_aof_are_warned_about() {
        let risky = "# Memory\r\nmaxmemory:100\r\nmaxmemory_policy:allkeys-lru\r\n# Persistence\r\naof_enabled:0\r\n";
        let w = durability_warnings(risky);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("allkeys-lru"));
        let safe = "redis_version:7.0.15\r\nmaxmemory_policy:noeviction\r\naof_enabled:1\r\n";
        assert!(durability_warnings(safe).is_empty());
    }

    #[test]
    fn a_redis_older_than_7_is_warned_about() {
        let old = "redis_version:6.2.14\r\nmaxmemory_policy:noeviction\r\naof_enabled:1\r\n";
        let w = durability_warnings(old);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("6.2.14") && w[0].contains("7.0"), "{w:?}");
    }

    #[test]
    fn versions_before_7_are_refused_and_later_ones_pass() {
        for old in ["6.2.14", "5.0.7", "older than 6.0"] {
            let e = require_functions(old).err();
            assert!(
                e.as_ref().is_some_and(|e| e.to_string().contains("7.0")),
                "{old}: {e:?}"
            );
        }
        for new in ["7.0.15", "7.2.4", "8.0.0"] {
            assert!(require_functions(new).is_ok(), "{new}");
        }
    }
}
