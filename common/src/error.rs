use std::fmt;

/// Everything that can go wrong between a workq client and Redis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No connection could be taken from the pool (Redis unreachable, or the pool is exhausted).
    #[error("redis connection pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// The Redis URL or another setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A payload (input or output) is larger than the configured limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// What was too large ("input of kind 'x'", "output").
        what: String,
        /// Its encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A value could not be encoded as MessagePack.
    #[error("could not encode {what} as MessagePack: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        source: rmp_serde::encode::Error,
    },
    /// Stored bytes could not be decoded into the requested type.
    #[error("could not decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The deserializer's error.
        source: rmp_serde::decode::Error,
    },
    /// A stored record is not in workq's format.
    #[error("invalid record: {0}")]
    Record(String),
    /// A work request was built with contradictory or out-of-range settings.
    #[error("invalid work request: {0}")]
    InvalidRequest(String),
    /// This attempt no longer holds its job (its lease ran out and another worker took the
    /// job over, or the job is gone): what it tried to record was refused.
    #[error("refused: {0}")]
    Fenced(String),
    /// A script answered in a shape this version does not understand.
    #[error("unexpected reply from Redis: {0}")]
    Protocol(String),
    /// `enqueue_many` stored some of its requests and not others (their batches went in
    /// separate script calls, and some failed). Calling again with the same requests is
    /// safe: what was stored is reported as existing.
    #[error("enqueue stored {stored} of {} requests; request {first_not_stored} and the others not stored may be retried: {source}", .statuses.len())]
    PartlyEnqueued {
        /// How many requests were stored.
        stored: usize,
        /// Index of the first request not stored.
        first_not_stored: usize,
        /// Per request, in order: what enqueue did, or `None` when its batch failed (not
        /// stored, or unknown if the reply was lost).
        statuses: Vec<Option<crate::scripts::EnqueueStatus>>,
        /// Why the failed batches failed (the first such error).
        source: Box<Error>,
    },
}

/// `Result` with workq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redis::ParsingError> for Error {
    fn from(e: redis::ParsingError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl Error {
    /// True when the failure is about reaching Redis (connection refused or dropped, a
    /// timeout, Redis still loading its data set), so retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis(e) => is_transient_redis(e),
            Error::Pool(_) => true,
            Error::PartlyEnqueued { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    pub(crate) fn protocol(what: impl fmt::Display) -> Self {
        Error::Protocol(what.to_string())
    }
}

fn is_transient_redis(e: &redis::RedisError) -> bool {
    use redis::RetryMethod;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.retry_method(),
            RetryMethod::Reconnect
                | RetryMethod::ReconnectFromInitialConnections
                | RetryMethod::WaitAndRetry
                | RetryMethod::RetryImmediately
        )
}
