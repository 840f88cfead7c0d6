//! One attempt: decode the input, find the worker, run it under the timeout, the
//! cancellation signal and a panic guard, and turn whatever happened into an ack.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use workq_common::cron::CronSchedule;
use workq_common::internal::record::Record;
use workq_common::internal::scripts::{Ack, AckOutcome};
use workq_common::{system_time, WorkId};

use super::claim::RedisClock;
use super::{PendingAck, Shared};
use crate::context::ProgressSink;
use crate::merge;
use crate::metrics::Outcome as Label;
use crate::registry::JobFuture;
use crate::{WorkContext, WorkResult};

/// Frees the slot when the attempt ends, including when it is aborted.
struct Slot {
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.metrics.slot_freed();
        self.shared.notify_slot_freed();
    }
}

struct Outcome {
    ack: AckOutcome,
    message: String,
    output: Vec<u8>,
    label: Label,
}

impl Outcome {
    fn new(ack: AckOutcome, label: Label, message: String) -> Self {
        Outcome {
            ack,
            message,
            output: Vec::new(),
            label,
        }
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    q: usize,
    id: Arc<str>,
    rec: Record,
    permit: OwnedSemaphorePermit,
    cancel: CancellationToken,
    clock: RedisClock,
) {
    shared.metrics.slot_taken();
    let slot = Slot {
        shared: Arc::clone(&shared),
        _permit: permit,
    };
    let h = &rec.header;
    let queue = shared.queues[q].keys.name();
    // The attempt as `ctx.attempt()` counts it (within the current period, for periodic
    // work).
    let span = tracing::info_span!("job", queue, %id, kind = %h.kind, attempt = attempt_number(h));
    // Before the span is first entered: it continues the trace the job was enqueued in.
    #[cfg(feature = "otel")]
    crate::otel::continue_trace(&span, &h.ext.metadata);
    async {
        let started = Instant::now();
        let outcome = attempt(&shared, q, &id, &rec, &cancel).await;
        let km = shared.queues[q].metrics.kind(&h.kind);
        km.attempts(outcome.label).inc();
        km.duration.observe(started.elapsed().as_secs_f64());
        match outcome.ack {
            AckOutcome::Succeeded => tracing::debug!("attempt succeeded"),
            // (A cancelled job ends CANCELLED whatever the attempt returned.)
            _ if cancel.is_cancelled() => tracing::info!(outcome = outcome.label.as_str(), reason = %outcome.message, "attempt stopped"),
            // Warnings carry the job's fields themselves: the span is at INFO level, so a
            // WARN filter leaves it out.
            AckOutcome::Failed => tracing::warn!(queue, %id, kind = %h.kind, attempt = attempt_number(h), outcome = outcome.label.as_str(), reason = %outcome.message, "job failed for good"),
            AckOutcome::Retry if !h.ext.is_periodic() && attempt_number(h) >= h.ext.max_attempts() => {
                tracing::warn!(queue, %id, kind = %h.kind, attempt = attempt_number(h), outcome = outcome.label.as_str(), reason = %outcome.message, "job failed for good: out of attempts")
            }
            _ => tracing::info!(outcome = outcome.label.as_str(), reason = %outcome.message, "attempt did not succeed"),
        }
        finish(
            &shared,
            q,
            PendingAck {
                queue: q,
                ack: Ack {
                    id,
                    token: h.attempts,
                    outcome: outcome.ack,
                    message: outcome.message,
                    output: outcome.output,
                    next_runs: next_runs(&rec, clock),
                },
            },
        );
        // Only now free the slot: shutdown waits for all slots, then closes the ack
        // channel, so the ack must be queued first.
        drop(slot);
    }
    .instrument(span)
    .await
}

/// For cron work, the next two run times after now (the scripts work out interval
/// schedules themselves); (0, 0) otherwise.
fn next_runs(rec: &Record, clock: RedisClock) -> (u64, u64) {
    let Some(expr) = &rec.header.ext.cron else {
        return (0, 0);
    };
    match CronSchedule::parse(expr) {
        Ok(cron) => {
            let next = cron.next_after(clock.now_ms()).unwrap_or(0);
            (next, cron.next_after(next).unwrap_or(0))
        }
        Err(e) => {
            tracing::error!(cron = %expr, error = %e, "stored cron expression does not parse");
            (0, 0)
        }
    }
}

/// This attempt's number as `WorkContext::attempt` gives it: from 1, within the current
/// period for periodic work.
fn attempt_number(h: &workq_common::internal::record::Header) -> u32 {
    h.attempts.saturating_sub(h.ext.period_base.unwrap_or(0))
}

/// Marks the job's attempt as returned and queues its ack.
pub(super) fn finish(shared: &Shared, q: usize, ack: PendingAck) {
    shared.queues[q].held.finish(&ack.ack.id, ack.ack.token);
    shared.send_ack(ack);
}

async fn attempt(
    shared: &Shared,
    q: usize,
    id: &str,
    rec: &Record,
    cancel: &CancellationToken,
) -> Outcome {
    let h = &rec.header;
    let Ok(work_id) = id.parse::<WorkId>() else {
        return Outcome::new(
            AckOutcome::Failed,
            Label::Undecodable,
            format!("job id '{id}' is not a ULID"),
        );
    };
    let Some(registered) = shared.registry.get(&h.kind) else {
        return Outcome::new(
            AckOutcome::Failed,
            Label::UnknownKind,
            format!(
                "unknown work kind '{}': no worker registered for it (this worker runs: {})",
                h.kind,
                shared.registry.kinds().join(", ")
            ),
        );
    };
    let ctx = WorkContext {
        id: work_id,
        queue: Arc::clone(&shared.queues[q].name),
        kind: Arc::clone(&registered.kind),
        attempt: attempt_number(h),
        tags: h.ext.tags.clone(),
        metadata: h.ext.metadata.clone(),
        enqueued_at: system_time(h.enqueued_ms),
        cancel: cancel.clone(),
        progress: Arc::new(ProgressSink {
            pool: shared.pool.clone(),
            keys: shared.queues[q].keys.clone(),
            token: h.attempts,
            max: shared.cfg.max_progress,
            timing: shared.metrics.calls.progress.clone(),
        }),
    };
    // In a chain, the input is the job's own input merged with its parents' outputs.
    let merged;
    let input = match &h.ext.parent_outputs {
        None => rec.input(),
        Some(outputs) => {
            let mut inputs: Vec<&[u8]> = vec![rec.input()];
            inputs.extend(
                h.ext
                    .parents
                    .iter()
                    .filter_map(|p| outputs.get(p).map(|o| o.0.as_slice())),
            );
            merged = match merge::merge(&inputs, h.ext.merger == Some(1)) {
                Ok(m) => m,
                Err(e) => {
                    return Outcome::new(
                        AckOutcome::Failed,
                        Label::Undecodable,
                        format!("cannot merge the parents' outputs into the input: {e}"),
                    )
                }
            };
            &merged
        }
    };
    let fut = match registered.worker.start(ctx, input) {
        Ok(f) => f,
        Err(msg) => return Outcome::new(AckOutcome::Failed, Label::Undecodable, msg),
    };
    let timeout = h.ext.timeout_ms.map(workq_common::time::duration);
    let mut outcome = execute(fut, timeout, cancel, shared.cfg.cancel_grace).await;
    if outcome.output.len() > shared.cfg.max_output {
        outcome = Outcome::new(
            AckOutcome::Failed,
            Label::Failed,
            format!(
                "output is {} bytes, over the limit of {} bytes",
                outcome.output.len(),
                shared.cfg.max_output
            ),
        );
    }
    outcome
}

async fn execute(
    fut: JobFuture,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
    cancel_grace: Duration,
) -> Outcome {
    let guarded = AssertUnwindSafe(fut).catch_unwind();
    let run = async {
        match timeout {
            Some(t) => tokio::time::timeout(t, guarded).await.map_err(|_| t),
            None => Ok(guarded.await),
        }
    };
    let cancelled = async {
        cancel.cancelled().await;
        tokio::time::sleep(cancel_grace).await;
    };
    tokio::select! {
        r = run => match r {
            Ok(Ok(Ok(result))) => from_result(result),
            Ok(Ok(Err(e))) => Outcome::new(AckOutcome::Retry, Label::Error, error_chain(&*e)),
            Ok(Err(panic)) => Outcome::new(
                AckOutcome::Retry,
                Label::Panic,
                format!("panicked: {}", panic_message(&*panic)),
            ),
            Err(t) => Outcome::new(AckOutcome::Retry, Label::Timeout, format!("timed out after {t:?}")),
        },
        () = cancelled => Outcome::new(
            AckOutcome::Retry,
            Label::Cancelled,
            format!("cancelled; the attempt did not return within {cancel_grace:?}"),
        ),
    }
}

fn from_result(result: WorkResult) -> Outcome {
    match result {
        WorkResult::Success(output) => Outcome {
            ack: AckOutcome::Succeeded,
            message: String::new(),
            output: output.map(|d| d.as_bytes().to_vec()).unwrap_or_default(),
            label: Label::Succeeded,
        },
        WorkResult::Failure { reason, output } => Outcome {
            ack: AckOutcome::Failed,
            message: reason,
            output: output.map(|d| d.as_bytes().to_vec()).unwrap_or_default(),
            label: Label::Failed,
        },
        WorkResult::Retry => Outcome::new(
            AckOutcome::Retry,
            Label::Retry,
            "the worker asked to retry".to_owned(),
        ),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkError;

    #[tokio::test]
    async fn a_panic_becomes_a_retry_with_its_message() {
        let fut: JobFuture = Box::pin(async { panic!("boom {}", 7) });
        let o = execute(fut, None, &CancellationToken::new(), Duration::from_secs(1)).await;
        assert_eq!(o.ack, AckOutcome::Retry);
        assert_eq!(o.message, "panicked: boom 7");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_past_its_timeout_is_retried() {
        let fut: JobFuture = Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(WorkResult::success())
        });
        let o = execute(
            fut,
            Some(Duration::from_secs(2)),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!((o.ack, o.label), (AckOutcome::Retry, Label::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_attempt_that_ignores_the_signal_is_dropped_after_the_grace() {
        let signal = CancellationToken::new();
        let fut: JobFuture = Box::pin(async {
            std::future::pending::<()>().await;
            Ok(WorkResult::success())
        });
        let cancel = signal.clone();
        let run =
            tokio::spawn(async move { execute(fut, None, &cancel, Duration::from_secs(3)).await });
        signal.cancel();
        let o = run.await.expect("join");
        assert_eq!(o.label, Label::Cancelled);
    }

    #[test]
    fn error_messages_include_their_sources() {
        let inner = std::io::Error::other("disk full");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("saving report")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e: WorkError = Box::new(Outer(inner));
        assert_eq!(error_chain(&*e), "saving report: disk full");
    }
}
