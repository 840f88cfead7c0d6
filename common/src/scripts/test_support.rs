//! Helpers for the scripts' unit tests, which need no Redis.

use redis::{Arg, Cmd, Value};

use crate::QueueKeys;

/// The queue the tests' commands are for.
pub(super) fn keys() -> QueueKeys {
    QueueKeys::new("q").expect("a valid queue name")
}

/// A command's arguments, as bytes.
pub(super) fn raw_args(cmd: &Cmd) -> Vec<Vec<u8>> {
    cmd.args_iter()
        .map(|a| match a {
            Arg::Simple(b) => b.to_vec(),
            _ => b"<not a plain argument>".to_vec(),
        })
        .collect()
}

/// A command's arguments as text (bytes that are not UTF-8 written lossily).
pub(super) fn args(cmd: &Cmd) -> Vec<String> {
    raw_args(cmd)
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

/// The arguments every script's command starts with.
pub(super) fn head(script: crate::scripts::Script) -> Vec<String> {
    vec![
        "FCALL".to_owned(),
        crate::scripts::scripts().function(script).to_owned(),
        "2".to_owned(),
        "workq:{q}:".to_owned(),
        "workq:{q}:jobs".to_owned(),
    ]
}

/// `head(script)` followed by `rest`.
pub(super) fn expected(script: crate::scripts::Script, rest: &[&str]) -> Vec<String> {
    let mut all = head(script);
    all.extend(rest.iter().map(|s| (*s).to_owned()));
    all
}

pub(super) fn int_array(v: &[i64]) -> Value {
    Value::Array(v.iter().map(|&i| Value::Int(i)).collect())
}

pub(super) fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// True when `r` is an `Error::Protocol`.
pub(super) fn is_protocol<T>(r: &crate::Result<T>) -> bool {
    matches!(r, Err(crate::Error::Protocol(_)))
}
