use std::future::Future;

use serde::Serialize;
use workq_common::{Data, Job, Result};

use crate::WorkContext;

/// The error type a worker may return: any error converts into it with `?`. Returning an
/// error retries the job with backoff, recording the error's message.
pub type WorkError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one kind of work (WorkManager's `Worker`/`CoroutineWorker`).
///
/// `do_work` runs once per attempt. Return `Ok` of [`WorkResult::success`] (or
/// [`WorkResult::success_with`] an output), [`WorkResult::failure`] (terminal) or
/// [`WorkResult::retry`]; an `Err` or a panic retries with backoff too. Watch
/// [`WorkContext::cancelled`] in long jobs: it fires when the work is cancelled.
pub trait Worker: Send + Sync + 'static {
    /// The job type this worker runs; its `KIND` routes stored jobs here.
    type Job: Job;

    /// Does the work.
    fn do_work(
        &self,
        ctx: &WorkContext,
        job: Self::Job,
    ) -> impl Future<Output = Result<WorkResult, WorkError>> + Send;
}

/// How an attempt ended (WorkManager's `Result`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkResult {
    /// Done; the job ends SUCCEEDED with this output.
    Success(Option<Data>),
    /// Done and failed for good; the job ends FAILED with no further attempts.
    Failure {
        /// Why, kept as the job's last error.
        reason: String,
        /// Output to store with the failed job.
        output: Option<Data>,
    },
    /// Try again later, with the job's backoff (FAILED once attempts run out).
    Retry,
}

impl WorkResult {
    /// Success with no output: `Ok(WorkResult::success())`.
    pub fn success() -> Self {
        WorkResult::Success(None)
    }

    /// Success with output, readable through `WorkInfo::output_as`. Encoding the output
    /// as MessagePack can fail (an `Error::Encode`), so this one returns a `Result`:
    /// `Ok(WorkResult::success_with(&out)?)`.
    pub fn success_with<T: Serialize + ?Sized>(output: &T) -> Result<Self> {
        Ok(WorkResult::Success(Some(Data::encode(output)?)))
    }

    /// Terminal failure with a reason: `Ok(WorkResult::failure("why"))`.
    pub fn failure(reason: impl Into<String>) -> Self {
        WorkResult::Failure {
            reason: reason.into(),
            output: None,
        }
    }

    /// Terminal failure with a reason and output (`Err(Error::Encode)` if the output
    /// cannot be encoded, as for [`success_with`](Self::success_with)).
    pub fn failure_with<T: Serialize + ?Sized>(
        reason: impl Into<String>,
        output: &T,
    ) -> Result<Self> {
        Ok(WorkResult::Failure {
            reason: reason.into(),
            output: Some(Data::encode(output)?),
        })
    }

    /// Retry with backoff: `Ok(WorkResult::retry())`.
    pub fn retry() -> Self {
        WorkResult::Retry
    }
}
