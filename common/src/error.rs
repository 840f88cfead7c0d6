use std::fmt;

/// Everything that can go wrong between a workq client and Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No connection could be taken from the pool (Redis unreachable, or the pool is exhausted).
    #[error("redis connection pool: {0}")]
    Pool(#[from] deadpool::managed::PoolError<redis::RedisError>),
    /// The Redis URL, another setting or the Redis server is unusable: which, and why.
    #[error("configuration: {0}")]
    Config(crate::ConfigError),
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
    /// A work request (or a query, queue name or id) was built with contradictory or
    /// out-of-range settings, or the scripts refused it: which field, and why.
    #[error("invalid work request: {0}")]
    InvalidRequest(crate::InvalidRequest),
    /// This attempt no longer holds its job (its lease ran out and another worker took the
    /// job over, or the job is gone): what it tried to record was refused.
    #[error("refused: {0}")]
    Fenced(String),
    /// A script answered in a shape this version does not understand.
    #[error("unexpected reply from Redis: {0}")]
    Protocol(String),
    /// A write was applied on the Redis primary but did not reach the copies the
    /// [`Durability`](crate::Durability) setting asks for in time: it exists, and may be
    /// lost on failover. (An enqueue is idempotent by id: enqueueing the same requests
    /// again waits for the copies again, and stores nothing twice.)
    #[error("not durable: {0}")]
    NotDurable(crate::NotDurable),
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
    /// True when retrying later can succeed: Redis is unreachable, timed out, dropped the
    /// connection, is still loading its data set, is failing over (`READONLY`,
    /// `MASTERDOWN`, `TRYAGAIN`), is busy running a script, or is at `maxmemory` (`OOM`,
    /// which clears once memory is freed). Never true for a [configuration
    /// problem](Self::is_config).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis(e) => is_transient_redis(e),
            Error::Pool(deadpool::managed::PoolError::Backend(e)) => is_transient_redis(e),
            Error::Pool(_) => true,
            Error::PartlyEnqueued { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// True when waiting cannot help: Redis refused workq's credentials (`NOAUTH`,
    /// `WRONGPASS`, a failed `AUTH`), its ACL user lacks a permission (`NOPERM`), the
    /// URL's database index is out of range, Redis does not know a command workq needs,
    /// the TLS handshake failed on a certificate (or the port does not speak TLS), or a
    /// setting is unusable ([`Error::Config`]). Fix the configuration.
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_)) || self.config_hint().is_some()
    }

    /// For a Redis error that [`is_config`](Self::is_config), what to fix.
    pub fn config_hint(&self) -> Option<&'static str> {
        match self {
            Error::Redis(e) | Error::Pool(deadpool::managed::PoolError::Backend(e)) => {
                config_problem(e)
            }
            _ => None,
        }
    }

    /// For a configuration problem, a message naming the Redis at `url` (without its
    /// password), the error and what to fix.
    pub fn config_message(&self, url: &str) -> Option<String> {
        let at = crate::connect::redact(url);
        match self {
            Error::Config(m) => Some(format!("Redis at {at}: {m}")),
            _ => self
                .config_hint()
                .map(|fix| format!("Redis at {at} refused workq: {self}; {fix}")),
        }
    }

    /// An [`Error::InvalidRequest`] about `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidRequest(crate::InvalidRequest::new(field, message))
    }

    /// An [`Error::Config`] about `setting`.
    pub fn config(setting: &'static str, message: impl Into<String>) -> Self {
        Error::Config(crate::ConfigError::new(setting, message))
    }

    pub(crate) fn protocol(what: impl fmt::Display) -> Self {
        Error::Protocol(what.to_string())
    }
}

/// The server errors inside `e` as (code, detail): one for a plain server error, each
/// command's for a failed pipeline or transaction.
fn server_errors(e: &redis::RedisError) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = e
        .clone()
        .into_server_errors()
        .map(|errs| {
            errs.iter()
                .map(|(_, s)| (s.code().to_owned(), s.details().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(code) = e.code() {
        out.push((code.to_owned(), e.detail().unwrap_or("").to_owned()));
    }
    out
}

/// What to fix, when a Redis error is one that waiting cannot heal.
fn config_problem(e: &redis::RedisError) -> Option<&'static str> {
    use redis::ErrorKind;
    if e.kind() == ErrorKind::AuthenticationFailed {
        return Some("check the user name and password in the Redis URL");
    }
    if e.kind() == ErrorKind::InvalidClientConfig {
        return Some("check the Redis URL");
    }
    if let Some(fix) = crate::tls::problem(&e.to_string()) {
        return Some(fix);
    }
    if e.to_string().contains("refused to switch database") {
        return Some("the database index in the Redis URL is out of range (see the server's `databases` setting)");
    }
    server_errors(e)
        .iter()
        .find_map(|(code, detail)| server_config_problem(code, detail))
}

fn server_config_problem(code: &str, detail: &str) -> Option<&'static str> {
    match code {
        "WRONGPASS" => Some("check the user name and password in the Redis URL"),
        "NOAUTH" => Some(NOAUTH),
        "NOPERM" => Some("the Redis user's ACL refuses a command, key or channel workq needs (FCALL, FUNCTION LOAD, INFO, PING, SADD, SUBSCRIBE, and the workq:* keys and channels)"),
        // Redis closes an unauthenticated connection that sends a long command.
        _ if detail.contains("unauthenticated") => Some(NOAUTH),
        _ if detail.contains("DB index") => Some("the database index in the Redis URL is out of range (see the server's `databases` setting)"),
        _ if detail.starts_with("unknown command") => Some("this Redis does not know a command workq needs: workq needs Redis 7.0 or later, with FCALL and FUNCTION not renamed"),
        _ => None,
    }
}

const NOAUTH: &str = "this Redis requires a password: give it in the URL (redis://:PASSWORD@host:port, or redis://USER:PASSWORD@host:port)";

fn is_transient_redis(e: &redis::RedisError) -> bool {
    use redis::RetryMethod;
    if config_problem(e).is_some() {
        return false;
    }
    if server_errors(e).iter().any(|(code, _)| {
        matches!(
            code.as_str(),
            "OOM" | "READONLY" | "MASTERDOWN" | "LOADING" | "BUSY" | "TRYAGAIN"
        )
    }) {
        return true;
    }
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

#[cfg(test)]
mod tests {
    use redis::{make_extension_error, ErrorKind, RedisError, ServerErrorKind};

    use super::*;

    fn ext(code: &str, detail: &str) -> Error {
        Error::Redis(make_extension_error(code.into(), Some(detail.into())))
    }

    fn known(kind: ServerErrorKind, detail: &str) -> Error {
        let e: RedisError = (ErrorKind::Server(kind), "server error", detail.to_owned()).into();
        Error::Redis(e)
    }

    #[test]
    fn errors_that_waiting_cannot_heal_are_configuration_errors() {
        let auth: RedisError = (
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )
            .into();
        let db: RedisError = (
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
            "DB index is out of range".to_owned(),
        )
            .into();
        for e in [
            Error::Redis(auth.clone()),
            Error::Pool(deadpool::managed::PoolError::Backend(auth)),
            ext("NOAUTH", "Authentication required."),
            ext(
                "WRONGPASS",
                "invalid username-password pair or user is disabled.",
            ),
            known(
                ServerErrorKind::NoPerm,
                "this user has no permissions to run the 'fcall' command",
            ),
            Error::Pool(deadpool::managed::PoolError::Backend(db)),
            known(
                ServerErrorKind::ResponseError,
                "unknown command 'FCALL', with args beginning with: ",
            ),
        ] {
            assert!(e.is_config(), "{e}");
            assert!(!e.is_transient(), "{e}");
            let msg = e.config_message("redis://:s3cret@h:1").expect("a message");
            assert!(
                msg.contains("redis://***@h:1") && !msg.contains("s3cret"),
                "{msg}"
            );
        }
    }

    #[test]
    fn outages_and_a_full_redis_are_transient() {
        let io: RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        for e in [
            Error::Redis(io),
            ext("OOM", "command not allowed when used memory > 'maxmemory'."),
            known(
                ServerErrorKind::BusyLoading,
                "Redis is loading the dataset in memory",
            ),
            known(
                ServerErrorKind::ReadOnly,
                "You can't write against a read only replica.",
            ),
            known(ServerErrorKind::MasterDown, "Link with MASTER is down"),
            Error::Pool(deadpool::managed::PoolError::Timeout(
                deadpool::managed::TimeoutType::Create,
            )),
        ] {
            assert!(e.is_transient(), "{e}");
            assert!(!e.is_config(), "{e}");
        }
        // A script error is neither: it will fail the same way again, but is no setting.
        let script = known(ServerErrorKind::ResponseError, "user_script:1: boom");
        assert!(!script.is_transient() && !script.is_config());
    }
}
