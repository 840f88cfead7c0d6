//! One-time work: [`OneTimeWorkRequest`] and its builder.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use workq_common::internal::record::Ext;
use workq_common::internal::scripts::NewJob;
use workq_common::internal::QueueKeys;
use workq_common::{Backoff, BackoffPolicy, Data, Error, Job, Result, WorkId, DEFAULT_QUEUE};

use super::ms;

/// How a job in a chain builds its input from its own and its parents' outputs
/// (WorkManager's `InputMerger`). Inputs and outputs must be maps (structs) to merge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputMerger {
    /// Every key of every input; for a key in several, the last one wins (the job's own
    /// input first, then the parents' outputs in the order the parents were given).
    #[default]
    Overwriting,
    /// Every key of every input; a key found in several inputs becomes an array of all
    /// their values (arrays are concatenated).
    ArrayCreating,
}

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
    /// The lane it waits in (expedited and required labels).
    pub(crate) fn lane(&self) -> String {
        self.ext.lane()
    }

    /// The job as the enqueue scripts take it, with its id and its encoded record.
    pub(crate) fn new_job<'a>(&self, id: &'a str, record: &'a [u8]) -> NewJob<'a> {
        NewJob {
            id,
            delay_ms: ms(self.delay),
            // 0 means "no time": 1970 itself is sent as 1 ms after it (`build` refuses earlier).
            at_ms: self
                .at
                .map_or(0, |t| workq_common::time::epoch_ms(t).max(1)),
            record,
        }
    }

    /// Refuses an input over `limit` bytes (the manager's `max_payload`).
    pub(crate) fn check_size(&self, limit: usize) -> Result<()> {
        let size = self.input.len();
        if size > limit {
            return Err(Error::PayloadTooLarge {
                what: format!("input of job {} (kind '{}')", self.id, self.kind),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// Starts a request to run the job `input` (its type names the kind).
    pub fn builder<J: Job>(input: J) -> OneTimeWorkRequestBuilder {
        OneTimeWorkRequestBuilder::new(J::KIND.to_owned(), Data::encode(&input))
    }

    /// Starts a request from a kind name and input bytes that are already MessagePack, for
    /// tools that do not have the Rust type at hand.
    pub fn builder_raw(kind: impl Into<String>, input: Data) -> OneTimeWorkRequestBuilder {
        OneTimeWorkRequestBuilder::new(kind.into(), Ok(input))
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

    /// Its metadata (with the `otel` feature, the trace context is added when it is
    /// enqueued, not here).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.ext.metadata
    }
}

/// Builder for [`OneTimeWorkRequest`]; every setting is optional.
#[derive(Debug)]
#[must_use = "call build() to get the request"]
pub struct OneTimeWorkRequestBuilder {
    id: Option<WorkId>,
    queue: String,
    pub(super) kind: String,
    input: Result<Data>,
    pub(super) delay: Duration,
    pub(super) at: Option<SystemTime>,
    pub(super) tags: Vec<String>,
    pub(super) backoff: Option<Backoff>,
    pub(super) max_attempts: Option<u32>,
    pub(super) timeout: Option<Duration>,
    pub(super) labels: Vec<String>,
    expedited: bool,
    merger: InputMerger,
    pub(super) metadata: BTreeMap<String, String>,
}

impl OneTimeWorkRequestBuilder {
    fn new(kind: String, input: Result<Data>) -> Self {
        OneTimeWorkRequestBuilder {
            id: None,
            queue: DEFAULT_QUEUE.to_owned(),
            kind,
            input,
            delay: Duration::ZERO,
            at: None,
            tags: Vec::new(),
            backoff: None,
            max_attempts: None,
            timeout: None,
            labels: Vec::new(),
            expedited: false,
            merger: InputMerger::Overwriting,
            metadata: BTreeMap::new(),
        }
    }

    /// Runs only on a worker that has this label (WorkManager's constraints, as worker
    /// capabilities: `gpu`, `region-eu`, ...). Work no live worker can take stays ENQUEUED.
    pub fn require_label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Claimed ahead of the queue's normal work (WorkManager's `setExpedited`).
    pub fn expedited(mut self) -> Self {
        self.expedited = true;
        self
    }

    /// How the job's input is merged with its parents' outputs in a chain (default
    /// overwriting).
    pub fn input_merger(mut self, merger: InputMerger) -> Self {
        self.merger = merger;
        self
    }

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
        self.backoff = Some(Backoff::new(policy, initial, max));
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

    /// Sets a metadata entry (a later value for the same key replaces the earlier): a
    /// small string map stored with the job, which its worker reads with
    /// `WorkContext::metadata` and producers in `WorkInfo::metadata`. At most 16 entries,
    /// keys 1 to 64 bytes of printable ASCII without spaces, values at most 512 bytes,
    /// 4 KiB in all (`workq_common::limits`); `build` refuses more (field `metadata`).
    /// With the `otel` feature, `traceparent` and `tracestate` carry the trace context:
    /// a `traceparent` set here is kept as it is.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets every entry of `entries`, as [`metadata`](Self::metadata) does one.
    pub fn metadata_map<K: Into<String>, V: Into<String>>(
        mut self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.metadata
            .extend(entries.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Checks the settings and encodes the input.
    pub fn build(self) -> Result<OneTimeWorkRequest> {
        let checked = self.check();
        // An input that could not be encoded is reported first.
        let input = self.input?;
        let labels = checked?;
        let ext = Ext {
            tags: self.tags,
            max_attempts: self.max_attempts,
            backoff: self.backoff.map(Ext::stored_backoff),
            timeout_ms: self.timeout.map(ms),
            labels,
            expedited: self.expedited.then_some(true),
            merger: (self.merger == InputMerger::ArrayCreating).then_some(1),
            metadata: self.metadata,
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
