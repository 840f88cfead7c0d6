use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workq_common::record::Ext;
use workq_common::{
    Backoff, BackoffPolicy, Data, Error, Job, QueueKeys, Result, WorkId, DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
};

/// Longest tag accepted.
const MAX_TAG_LEN: usize = 256;

/// A unit of work to run once (WorkManager's `OneTimeWorkRequest`). Build it with
/// [`OneTimeWorkRequest::builder`].
#[derive(Clone, Debug)]
pub struct OneTimeWorkRequest {
    pub(crate) id: WorkId,
    pub(crate) queue: QueueKeys,
    pub(crate) kind: String,
    pub(crate) input: Data,
    pub(crate) delay: Duration,
    pub(crate) at: Option<SystemTime>,
    pub(crate) ext: Ext,
}

impl OneTimeWorkRequest {
    /// Starts a request to run the job `input` (its type names the kind).
    pub fn builder<J: Job>(input: J) -> OneTimeWorkRequestBuilder {
        OneTimeWorkRequestBuilder {
            id: None,
            queue: DEFAULT_QUEUE.to_owned(),
            kind: J::KIND.to_owned(),
            input: Data::encode(&input),
            delay: Duration::ZERO,
            at: None,
            tags: Vec::new(),
            backoff: None,
            max_attempts: None,
            timeout: None,
        }
    }

    /// Starts a request from a kind name and input bytes that are already MessagePack, for
    /// tools that do not have the Rust type at hand.
    pub fn builder_raw(kind: impl Into<String>, input: Data) -> OneTimeWorkRequestBuilder {
        OneTimeWorkRequestBuilder {
            id: None,
            queue: DEFAULT_QUEUE.to_owned(),
            kind: kind.into(),
            input: Ok(input),
            delay: Duration::ZERO,
            at: None,
            tags: Vec::new(),
            backoff: None,
            max_attempts: None,
            timeout: None,
        }
    }

    /// The id the work will have.
    pub fn id(&self) -> WorkId {
        self.id
    }

    /// The queue it goes to.
    pub fn queue(&self) -> &str {
        self.queue.name()
    }

    /// Its kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Its encoded input.
    pub fn input(&self) -> &Data {
        &self.input
    }

    /// Its tags.
    pub fn tags(&self) -> &[String] {
        &self.ext.tags
    }
}

/// Builder for [`OneTimeWorkRequest`]; every setting is optional.
#[derive(Debug)]
#[must_use = "call build() to get the request"]
pub struct OneTimeWorkRequestBuilder {
    id: Option<WorkId>,
    queue: String,
    kind: String,
    input: Result<Data>,
    delay: Duration,
    at: Option<SystemTime>,
    tags: Vec<String>,
    backoff: Option<Backoff>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
}

impl OneTimeWorkRequestBuilder {
    /// Uses this id instead of a fresh one, so that retrying an enqueue whose reply was
    /// lost cannot create a second job.
    pub fn id(mut self, id: WorkId) -> Self {
        self.id = Some(id);
        self
    }

    /// The queue (default `"default"`). A queue is one Redis Cluster slot.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Runs no earlier than this long after Redis receives the request (Redis' clock, so a
    /// producer with a wrong clock still schedules correctly).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Runs no earlier than this absolute time. It is the caller's clock that says what
    /// the time means; prefer [`initial_delay`](Self::initial_delay) for relative delays.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.at = Some(at);
        self
    }

    /// Adds a tag, for queries and cancel-by-tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// How retries are spaced: `initial` after the first failure, growing by `policy`,
    /// capped at the default cap (5 hours) unless [`max_backoff`](Self::max_backoff) says
    /// otherwise. Default: exponential from 30 s.
    pub fn backoff(mut self, policy: BackoffPolicy, initial: Duration) -> Self {
        let max = self
            .backoff
            .map_or(workq_common::DEFAULT_BACKOFF.max, |b| b.max);
        self.backoff = Some(Backoff {
            policy,
            initial,
            max,
        });
        self
    }

    /// The longest delay between attempts.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        let mut b = self.backoff.unwrap_or(workq_common::DEFAULT_BACKOFF);
        b.max = max;
        self.backoff = Some(b);
        self
    }

    /// Attempts before the work ends FAILED (default 10).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// How long one attempt may run before it is stopped and retried with backoff.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the settings and encodes the input.
    pub fn build(self) -> Result<OneTimeWorkRequest> {
        let invalid = |msg: String| Err(Error::InvalidRequest(msg));
        let input = self.input?;
        if self.kind.is_empty() {
            return invalid("the kind must not be empty".into());
        }
        for t in &self.tags {
            if t.is_empty() || t.len() > MAX_TAG_LEN {
                return invalid(format!("tag '{t}' must be 1 to {MAX_TAG_LEN} bytes"));
            }
        }
        if let Some(n) = self.max_attempts {
            if n == 0 || n > MAX_ATTEMPTS_LIMIT {
                return invalid(format!(
                    "max_attempts is {n}; it must be 1 to {MAX_ATTEMPTS_LIMIT}"
                ));
            }
        }
        if let Some(b) = self.backoff {
            if b.initial.is_zero() || b.max < b.initial {
                return invalid(format!(
                    "backoff initial delay {:?} must be above zero and at most the cap {:?}",
                    b.initial, b.max
                ));
            }
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return invalid("timeout must be above zero".into());
        }
        if let Some(at) = self.at {
            if at.duration_since(UNIX_EPOCH).is_err() {
                return invalid("run_at is before 1970".into());
            }
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let ext = Ext {
            tags: self.tags,
            max_attempts: self.max_attempts,
            backoff: self.backoff.map(|b| {
                let policy = match b.policy {
                    BackoffPolicy::Linear => 0,
                    BackoffPolicy::Exponential => 1,
                };
                (policy, ms(b.initial), ms(b.max))
            }),
            timeout_ms: self.timeout.map(ms),
            ..Ext::default()
        };
        Ok(OneTimeWorkRequest {
            id: self.id.unwrap_or_default(),
            queue: QueueKeys::new(&self.queue)?,
            kind: self.kind,
            input,
            delay: self.delay,
            at: self.at,
            ext,
        })
    }
}
