//! Integration tests against real redis-server processes (and, where a crash matters, real
//! worker processes). Each test starts its own Redis on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod burst;
mod clock;
mod backoff;
mod cancel;
mod crash;
mod delays;
mod enqueue;
mod fencing;
mod restart;
mod support;
