//! Integration tests against real redis-server processes (and, where a crash matters, real
//! worker processes). Each test starts its own Redis on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod backoff;
mod bad_input;
mod browser;
mod burst;
mod cancel;
mod chains;
mod claim_checks;
mod clock;
mod cluster;
mod cluster_core;
mod config;
mod core_edges;
mod crash;
mod dashboard;
mod delays;
mod deploy_assets;
mod deploy_files;
mod durability;
mod enqueue;
mod examples;
mod fencing;
mod fixture;
mod fixtures_ha;
mod functions;
mod handback;
mod hosts;
mod http_endpoint;
mod inspect;
mod k8s_manifests;
mod lanes;
mod least_privilege;
mod logs;
mod newcomer;
mod observe;
mod on_prometheus;
mod otel;
mod periodic;
mod progress;
mod queue_gauges;
mod restart;
mod sentinel;
mod shutdown;
mod support;
mod tls;
mod transitions;
mod unique;
mod wire_checks;
