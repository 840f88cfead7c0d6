//! The shared core of workq: the model ([`WorkState`], [`Backoff`], [`WorkInfo`]), the
//! wire format of a stored job ([`record`]), the Redis key schema ([`keys`]), the Lua
//! scripts that make every state change atomic ([`scripts`]) and the connection pool
//! ([`connect()`]).
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

pub mod connect;
pub mod cron;
mod data;
#[cfg(feature = "demo")]
pub mod demo;
mod error;
mod id;
mod info;
mod invalid;
pub mod keys;
pub mod limits;
mod model;
pub mod record;
pub mod retry;
pub mod scripts;
pub mod server;
pub mod time;

pub use connect::{connect, RedisConfig};
pub use data::Data;
pub use error::{Error, Result};
pub use id::WorkId;
pub use info::{Schedule, WorkInfo};
pub use invalid::{ConfigError, InvalidRequest};
pub use keys::QueueKeys;
pub use model::{
    Backoff, BackoffPolicy, Job, WorkState, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
};

pub use time::{system_time, Millis};
