//! The shared core of workq: the model ([`WorkState`], [`Backoff`], [`WorkInfo`],
//! [`Retention`], the status enums), the errors ([`Error`], with [`InvalidRequest`] and
//! [`ConfigError`] saying which setting was at fault), cron schedules ([`cron`]), the limits
//! producers and scripts share ([`limits`]) and time as workq stores it ([`time`]).
//!
//! The wire format of a stored job, the Redis key schema, the Lua scripts that make every
//! state change atomic and the connection pool are workq's own, shared by its crates and
//! not part of this API; docs/wire-format.md is their specification, for producers in
//! other languages.
//!
//! Producers (`workq-producer`) and workers (`workq-worker`) both build on this crate; a
//! service that only defines job types depends on this crate alone:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use workq_common::Job;
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail {
//!     to: String,
//! }
//!
//! impl Job for SendEmail {
//!     const KIND: &'static str = "send_email";
//! }
//! ```

mod connect;
pub mod cron;
mod data;
#[cfg(feature = "demo")]
pub mod demo;
mod durability;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod id;
mod info;
mod invalid;
mod keys;
pub mod limits;
#[cfg(feature = "logs")]
pub mod logs;
mod model;
mod record;
mod retry;
mod scripts;
mod server;
pub mod time;
mod tls;

pub use data::Data;
pub use durability::{Durability, NotDurable};
pub use error::{Error, Result};
pub use id::WorkId;
pub use info::{AttemptError, LastRun, Schedule, WorkInfo};
pub use invalid::{ConfigError, InvalidRequest};
pub use model::{
    Backoff, BackoffPolicy, CancelStatus, EnqueueStatus, GraphStatus, Job, Retention, WorkState,
    DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, MAX_ATTEMPTS_LIMIT,
};
pub use tls::TlsConfig;

pub use time::{system_time, Millis};

use keys::QueueKeys;

/// workq's own plumbing, shared by `workq-producer`, `workq-worker` and the test suite:
/// the record codec, the key schema, the scripts' typed wrappers, the connection pool,
/// the server checks and the retry delay. Not part of the API (hidden from the docs, no
/// compatibility promise): depend on the producer and worker crates instead.
#[doc(hidden)]
pub mod internal {
    pub use crate::connect::{connect, Conn, Pool, Pooled, RedisConfig};
    pub use crate::keys::QueueKeys;

    /// The connection pool (see [`crate::internal`]).
    pub mod connect {
        pub use crate::connect::*;
    }
    /// The key schema (see [`crate::internal`]).
    pub mod keys {
        pub use crate::keys::*;
    }
    /// The record codec (see [`crate::internal`]).
    pub mod record {
        pub use crate::record::*;
    }
    /// The retry delay (see [`crate::internal`]).
    pub mod retry {
        pub use crate::retry::*;
    }
    /// The scripts' typed wrappers (see [`crate::internal`]).
    pub mod scripts {
        pub use crate::scripts::*;
    }
    /// The server checks (see [`crate::internal`]).
    pub mod server {
        pub use crate::server::*;
    }
}
