use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workq_common::cron::CronSchedule;
use workq_common::record::Ext;
use workq_common::{
    Backoff, BackoffPolicy, Data, Error, Job, QueueKeys, Result, WorkId, DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
};

/// Longest tag or label accepted.
const MAX_TAG_LEN: usize = workq_common::limits::MAX_TAG_BYTES;

/// How a job in a chain builds its input from its own and its parents' outputs
/// (WorkManager's `InputMerger`). Inputs and outputs must be maps (structs) to merge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
            labels: Vec::new(),
            expedited: false,
            merger: InputMerger::Overwriting,
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
            labels: Vec::new(),
            expedited: false,
            merger: InputMerger::Overwriting,
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
    labels: Vec<String>,
    expedited: bool,
    merger: InputMerger,
}

impl OneTimeWorkRequestBuilder {
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
        if let Some(p) = workq_common::limits::kind_problem(&self.kind) {
            return invalid(p);
        }
        let ahead = Duration::from_millis(workq_common::limits::MAX_AHEAD_MS);
        if self.delay > ahead {
            return invalid(format!(
                "initial_delay {:?} is more than 100 years: a job due then never runs",
                self.delay
            ));
        }
        if self.at.is_some_and(|at| {
            at.duration_since(SystemTime::now())
                .is_ok_and(|d| d > ahead)
        }) {
            return invalid(
                "run_at is more than 100 years from now: a job due then never runs".into(),
            );
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
        let mut labels = self.labels;
        labels.sort();
        labels.dedup();
        for l in &labels {
            let bad = |c: char| {
                c == ',' || c == '@' || c == '#' || c == '{' || c == '}' || c.is_whitespace()
            };
            if l.is_empty() || l.len() > MAX_TAG_LEN || l.contains(bad) {
                return invalid(format!(
                    "label '{l}' must be 1 to {MAX_TAG_LEN} bytes without commas, '@', '#', braces or spaces"
                ));
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
            labels,
            expedited: self.expedited.then_some(true),
            merger: (self.merger == InputMerger::ArrayCreating).then_some(1),
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

/// Work that runs again and again (WorkManager's `PeriodicWorkRequest`): once per
/// interval, in a flex window at the end of each interval, or at the times of a cron
/// expression. It is never SUCCEEDED or FAILED: after each run it waits for the next
/// period, until it is cancelled. A failing run retries with its backoff within the period
/// without moving the schedule, and periods missed while no worker ran are run once, not
/// once each.
#[derive(Clone, Debug)]
pub struct PeriodicWorkRequest {
    pub(crate) req: OneTimeWorkRequest,
    pub(crate) cron: Option<CronSchedule>,
}

impl PeriodicWorkRequest {
    /// Runs `input` once per `interval` (at least 100 ms), by default as soon as each
    /// interval begins; see [`PeriodicWorkRequestBuilder::flex`].
    pub fn builder<J: Job>(input: J, interval: Duration) -> PeriodicWorkRequestBuilder {
        PeriodicWorkRequestBuilder {
            inner: OneTimeWorkRequest::builder(input),
            interval: Some(interval),
            flex: None,
            cron: None,
        }
    }

    /// Runs `input` at the times of a cron expression (five fields, UTC; `@hourly`,
    /// `@daily` and the like too).
    pub fn cron<J: Job>(input: J, expr: &str) -> PeriodicWorkRequestBuilder {
        PeriodicWorkRequestBuilder {
            inner: OneTimeWorkRequest::builder(input),
            interval: None,
            flex: None,
            cron: Some(expr.to_owned()),
        }
    }

    /// The id the work will have.
    pub fn id(&self) -> WorkId {
        self.req.id
    }
}

/// Builder for [`PeriodicWorkRequest`].
#[derive(Debug)]
#[must_use = "call build() to get the request"]
pub struct PeriodicWorkRequestBuilder {
    inner: OneTimeWorkRequestBuilder,
    interval: Option<Duration>,
    flex: Option<Duration>,
    cron: Option<String>,
}

impl PeriodicWorkRequestBuilder {
    /// Runs within the last `flex` of each interval rather than at its start (WorkManager's
    /// flex interval). Default: the whole interval.
    pub fn flex(mut self, flex: Duration) -> Self {
        self.flex = Some(flex);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::id`].
    pub fn id(mut self, id: WorkId) -> Self {
        self.inner = self.inner.id(id);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::queue`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.inner = self.inner.queue(queue);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::tag`].
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.inner = self.inner.tag(tag);
        self
    }

    /// Retries of a failing run, within its period. See
    /// [`OneTimeWorkRequestBuilder::backoff`].
    pub fn backoff(mut self, policy: BackoffPolicy, initial: Duration) -> Self {
        self.inner = self.inner.backoff(policy, initial);
        self
    }

    /// Attempts per run (default 10); past them the run is over and the work waits for
    /// its next period.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.inner = self.inner.max_attempts(n);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner = self.inner.timeout(timeout);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::require_label`].
    pub fn require_label(mut self, label: impl Into<String>) -> Self {
        self.inner = self.inner.require_label(label);
        self
    }

    /// Checks the settings and encodes the input.
    pub fn build(self) -> Result<PeriodicWorkRequest> {
        let mut req = self.inner.build()?;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let cron = match (self.interval, self.cron) {
            (Some(interval), None) => {
                let flex = self.flex.unwrap_or(interval);
                if interval < Duration::from_millis(100) {
                    return Err(Error::InvalidRequest(format!(
                        "periodic interval {interval:?} is under 100 ms"
                    )));
                }
                if flex.is_zero() || flex > interval {
                    return Err(Error::InvalidRequest(format!(
                        "flex {flex:?} must be above zero and at most the interval {interval:?}"
                    )));
                }
                req.ext.interval_ms = Some(ms(interval));
                req.ext.flex_ms = Some(ms(flex));
                // The first run: at the start of the first flex window, counted on Redis'
                // clock from when Redis receives the request.
                req.delay = interval - flex;
                None
            }
            (None, Some(expr)) => {
                let schedule =
                    CronSchedule::parse(&expr).map_err(|e| Error::InvalidRequest(e.to_string()))?;
                req.ext.cron = Some(schedule.as_str().to_owned());
                Some(schedule)
            }
            _ => {
                return Err(Error::InvalidRequest(
                    "a periodic request needs an interval or a cron expression".into(),
                ))
            }
        };
        Ok(PeriodicWorkRequest { req, cron })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl Job for Ping {
        const KIND: &'static str = "ping";
    }

    fn ping() -> OneTimeWorkRequestBuilder {
        OneTimeWorkRequest::builder(Ping { n: 1 })
    }

    /// The message of the `InvalidRequest` the builder gives (any other result fails).
    fn refused(b: OneTimeWorkRequestBuilder) -> String {
        match b.build() {
            Err(Error::InvalidRequest(msg)) => msg,
            Err(e) => panic!("expected InvalidRequest, got {e:?}"),
            Ok(r) => panic!("expected InvalidRequest, built {r:?}"),
        }
    }

    fn refused_periodic(b: PeriodicWorkRequestBuilder) -> String {
        match b.build() {
            Err(Error::InvalidRequest(msg)) => msg,
            Err(e) => panic!("expected InvalidRequest, got {e:?}"),
            Ok(r) => panic!("expected InvalidRequest, built {r:?}"),
        }
    }

    #[test]
    fn a_plain_request_takes_the_defaults() {
        let r = ping().build().unwrap();
        assert_eq!(r.kind(), "ping");
        assert_eq!(r.queue(), DEFAULT_QUEUE);
        assert!(r.tags().is_empty());
        assert_eq!(r.delay, Duration::ZERO);
        assert_eq!(r.at, None);
        assert_eq!(r.ext, Ext::default());
        assert_eq!(r.lane(), "");
    }

    #[test]
    fn an_empty_or_invalid_kind_is_refused() {
        for kind in ["", "a b", "a,b", "a#b", "caf\u{e9}"] {
            let msg = refused(OneTimeWorkRequest::builder_raw(
                kind,
                Data::encode(&1u8).unwrap(),
            ));
            assert!(msg.starts_with(&format!("kind '{kind}' must be")), "{msg}");
        }
        let long = "k".repeat(workq_common::limits::MAX_KIND_BYTES + 1);
        let msg = refused(OneTimeWorkRequest::builder_raw(
            long.as_str(),
            Data::encode(&1u8).unwrap(),
        ));
        assert!(msg.contains("must be 1 to"), "{msg}");
    }

    #[test]
    fn an_invalid_queue_name_is_refused() {
        for q in ["", "a b", "a{b}", "a,b"] {
            assert!(
                matches!(ping().queue(q).build(), Err(Error::InvalidRequest(_))),
                "{q:?}"
            );
        }
        assert!(ping().queue("q".repeat(65)).build().is_err());
        assert_eq!(ping().queue("emails").build().unwrap().queue(), "emails");
    }

    #[test]
    fn empty_and_overlong_tags_are_refused_and_repeated_tags_kept_once() {
        assert_eq!(
            refused(ping().tag("")),
            format!("tag '' must be 1 to {MAX_TAG_LEN} bytes")
        );
        let long = "t".repeat(MAX_TAG_LEN + 1);
        assert_eq!(
            refused(ping().tag(long.clone())),
            format!("tag '{long}' must be 1 to {MAX_TAG_LEN} bytes")
        );
        let at_limit = "t".repeat(MAX_TAG_LEN);
        let r = ping()
            .tag("a")
            .tag(at_limit.clone())
            .tag("a")
            .build()
            .unwrap();
        assert_eq!(r.tags(), ["a".to_owned(), at_limit]);
    }

    #[test]
    fn labels_with_separators_or_spaces_are_refused() {
        for bad in ["", "a,b", "a@b", "a#b", "a{b", "a}b", "a b", "a\tb"] {
            let msg = refused(ping().require_label(bad));
            assert_eq!(
                msg,
                format!(
                    "label '{bad}' must be 1 to {MAX_TAG_LEN} bytes without commas, '@', '#', braces or spaces"
                )
            );
        }
        assert!(refused(ping().require_label("l".repeat(MAX_TAG_LEN + 1))).starts_with("label '"));
    }

    #[test]
    fn labels_are_sorted_and_deduplicated_into_the_lane() {
        let r = ping()
            .require_label("gpu")
            .require_label("eu")
            .require_label("gpu")
            .build()
            .unwrap();
        assert_eq!(r.ext.labels, ["eu", "gpu"]);
        assert_eq!(r.lane(), "@eu,gpu");
        let x = ping().expedited().require_label("gpu").build().unwrap();
        assert_eq!(x.ext.expedited, Some(true));
        assert_eq!(x.lane(), "x@gpu");
        assert_eq!(ping().expedited().build().unwrap().lane(), "x");
    }

    #[test]
    fn max_attempts_must_be_1_to_the_limit() {
        assert_eq!(
            refused(ping().max_attempts(0)),
            format!("max_attempts is 0; it must be 1 to {MAX_ATTEMPTS_LIMIT}")
        );
        let over = MAX_ATTEMPTS_LIMIT + 1;
        assert_eq!(
            refused(ping().max_attempts(over)),
            format!("max_attempts is {over}; it must be 1 to {MAX_ATTEMPTS_LIMIT}")
        );
        for n in [1, MAX_ATTEMPTS_LIMIT] {
            assert_eq!(
                ping().max_attempts(n).build().unwrap().ext.max_attempts,
                Some(n)
            );
        }
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        assert_eq!(
            refused(ping().timeout(Duration::ZERO)),
            "timeout must be above zero"
        );
        let r = ping().timeout(Duration::from_millis(1500)).build().unwrap();
        assert_eq!(r.ext.timeout_ms, Some(1500));
    }

    #[test]
    fn a_backoff_of_zero_or_above_its_cap_is_refused() {
        let msg = refused(ping().backoff(BackoffPolicy::Linear, Duration::ZERO));
        assert!(
            msg.starts_with("backoff initial delay 0ns must be above zero"),
            "{msg}"
        );
        let msg = refused(
            ping()
                .backoff(BackoffPolicy::Exponential, Duration::from_secs(10))
                .max_backoff(Duration::from_secs(5)),
        );
        assert_eq!(
            msg,
            "backoff initial delay 10s must be above zero and at most the cap 5s"
        );
        // A cap set before the policy is kept; the default cap applies otherwise.
        let r = ping()
            .max_backoff(Duration::from_secs(60))
            .backoff(BackoffPolicy::Linear, Duration::from_secs(2))
            .build()
            .unwrap();
        assert_eq!(r.ext.backoff, Some((0, 2000, 60_000)));
        let r = ping()
            .backoff(BackoffPolicy::Exponential, Duration::from_millis(100))
            .build()
            .unwrap();
        assert_eq!(
            r.ext.backoff,
            Some((1, 100, workq_common::DEFAULT_BACKOFF.max.as_millis() as u64))
        );
    }

    #[test]
    fn a_delay_or_run_at_over_100_years_is_refused() {
        let ahead = Duration::from_millis(workq_common::limits::MAX_AHEAD_MS);
        let msg = refused(ping().initial_delay(ahead + Duration::from_millis(1)));
        assert!(msg.contains("is more than 100 years"), "{msg}");
        assert_eq!(ping().initial_delay(ahead).build().unwrap().delay, ahead);
        let msg = refused(ping().run_at(SystemTime::now() + ahead + Duration::from_secs(3600)));
        assert_eq!(
            msg,
            "run_at is more than 100 years from now: a job due then never runs"
        );
        assert_eq!(
            refused(ping().run_at(UNIX_EPOCH - Duration::from_secs(1))),
            "run_at is before 1970"
        );
    }

    #[test]
    fn the_array_creating_merger_is_recorded_and_overwriting_is_the_default() {
        let r = ping()
            .input_merger(InputMerger::ArrayCreating)
            .build()
            .unwrap();
        assert_eq!(r.ext.merger, Some(1));
        let r = ping()
            .input_merger(InputMerger::Overwriting)
            .build()
            .unwrap();
        assert_eq!(r.ext.merger, None);
    }

    #[test]
    fn a_periodic_interval_under_100_ms_is_refused() {
        let msg = refused_periodic(PeriodicWorkRequest::builder(
            Ping { n: 1 },
            Duration::from_millis(99),
        ));
        assert_eq!(msg, "periodic interval 99ms is under 100 ms");
        assert!(
            PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_millis(100))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn a_flex_of_zero_or_over_the_interval_is_refused() {
        let every =
            |flex| PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_secs(60)).flex(flex);
        assert_eq!(
            refused_periodic(every(Duration::ZERO)),
            "flex 0ns must be above zero and at most the interval 60s"
        );
        assert_eq!(
            refused_periodic(every(Duration::from_secs(61))),
            "flex 61s must be above zero and at most the interval 60s"
        );
        // The first run waits for the start of the first flex window.
        let p = every(Duration::from_secs(15)).build().unwrap();
        assert_eq!(p.req.ext.interval_ms, Some(60_000));
        assert_eq!(p.req.ext.flex_ms, Some(15_000));
        assert_eq!(p.req.delay, Duration::from_secs(45));
        assert!(p.cron.is_none());
        // Without a flex the window is the whole interval: due at once.
        let p = PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_secs(60))
            .build()
            .unwrap();
        assert_eq!(p.req.ext.flex_ms, Some(60_000));
        assert_eq!(p.req.delay, Duration::ZERO);
    }

    #[test]
    fn a_bad_cron_expression_is_refused_and_a_good_one_kept() {
        for bad in ["", "* * *", "61 * * * *", "@sometimes"] {
            let msg = refused_periodic(PeriodicWorkRequest::cron(Ping { n: 1 }, bad));
            assert!(!msg.is_empty(), "{bad:?}");
        }
        let p = PeriodicWorkRequest::cron(Ping { n: 1 }, "*/5 * * * *")
            .build()
            .unwrap();
        assert!(p.cron.is_some());
        assert!(p.req.ext.cron.is_some());
        assert_eq!(p.req.ext.interval_ms, None);
    }

    #[test]
    fn a_periodic_request_checks_its_one_time_settings_too() {
        let msg = refused_periodic(
            PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_secs(60)).max_attempts(0),
        );
        assert!(msg.starts_with("max_attempts is 0"), "{msg}");
        let msg = refused_periodic(
            PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_secs(60)).tag(""),
        );
        assert!(msg.starts_with("tag ''"), "{msg}");
    }
}
