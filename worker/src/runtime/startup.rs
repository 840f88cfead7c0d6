//! Start-up: the checks made once Redis answers, and how a configuration error that
//! waiting cannot heal stops the runtime.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use workq_common::internal::keys;
use workq_common::internal::scripts::scripts;
use workq_common::{Error, Result};

use super::Shared;
use crate::outage::Outage;

impl Shared {
    /// Reports an error met before the first successful call of a loop: when it is a
    /// configuration problem, the runtime stops and `run` returns it as `Error::Config`.
    /// Returns whether it was one.
    pub(crate) fn startup_error(&self, e: &Error) -> bool {
        let Some(msg) = e.config_message(&self.cfg.redis.url) else {
            return false;
        };
        self.startup_failed.send_if_modified(|m| {
            if m.is_none() {
                *m = Some(msg);
                true
            } else {
                false
            }
        });
        true
    }
}

/// Registers the queues, warns about Redis settings that can lose jobs, and loads the
/// function library (calls load it too when they find it missing, but Redis refuses
/// `FUNCTION LOAD` at maxmemory, so it is best loaded while there is room). Retries until
/// Redis answers; the loops do not wait for it. A configuration error (a wrong password,
/// an ACL that refuses these commands, a database index out of range, a Redis without
/// functions) stops the runtime.
pub(super) async fn startup_checks(shared: Arc<Shared>, stop: CancellationToken) {
    let mut outage = Outage::new("startup").counting(&shared.metrics, "startup");
    loop {
        let res: Result<String> = async {
            let mut con = shared.pool.get().await?;
            let names: Vec<&str> = shared.queues.iter().map(|q| q.keys.name()).collect();
            let mut pipe = redis::pipe();
            // (Presence in `workers` is written by claims and heartbeats, with Redis' time.)
            pipe.cmd("SADD").arg(keys::QUEUES).arg(&names).ignore();
            let (info,): (String,) = pipe.cmd("INFO").query_async(&mut *con).await?;
            Ok(info)
        }
        .await;
        match res {
            Ok(info) => {
                outage.recovered();
                shared.health.started();
                *shared.run_id.lock().unwrap_or_else(|p| p.into_inner()) =
                    workq_common::internal::server::info_field(&info, "run_id").map(str::to_owned);
                warn_about_durability(&info);
                let loaded = match shared.pool.get().await {
                    Ok(mut con) => scripts().load(&mut *con).await,
                    Err(e) => Err(e.into()),
                };
                match loaded {
                    Err(e) if shared.startup_error(&e) => {}
                    Err(e) => tracing::warn!("could not load workq's function library at start (claims will try again): {e}"),
                    Ok(()) => {}
                }
                return;
            }
            Err(e) if shared.startup_error(&e) => return,
            Err(e) => {
                tokio::select! {
                    _ = tokio::time::sleep(outage.failed(&e)) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

fn warn_about_durability(info: &str) {
    for w in workq_common::internal::server::durability_warnings(info) {
        tracing::warn!("{w}");
    }
}
