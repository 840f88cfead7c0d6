//! Reading the values scripts reply with: integers, arrays, byte strings, optional
//! milliseconds, each a protocol error when Redis answers in another shape.

use std::time::Duration;

use redis::{ParsingError, Value};

use crate::{Error, Millis, Result};

/// A reply parser's [`Error::Protocol`] as `redis::FromRedisValue` reports it.
pub(super) fn parsing(e: Error) -> ParsingError {
    match e {
        Error::Protocol(what) => what.into(),
        other => other.to_string().into(),
    }
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::protocol(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(Error::protocol(format!("expected an array, got {other:?}"))),
    }
}

pub(super) fn ints(v: Value) -> Result<Vec<i64>> {
    array(v)?.iter().map(int).collect()
}

pub(super) fn opt_ms(v: &Value) -> Result<Option<Millis>> {
    let i = int(v)?;
    Ok(u64::try_from(i).ok())
}

pub(super) fn bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        other => Err(Error::protocol(format!("expected a string, got {other:?}"))),
    }
}
