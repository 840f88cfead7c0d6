//! What the request builders accept and refuse, and what they store.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use workq_common::internal::record::Ext;
use workq_common::{BackoffPolicy, Data, Error, Job, DEFAULT_QUEUE, MAX_ATTEMPTS_LIMIT};

use super::validate::MAX_TAG_LEN;
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
        Err(Error::InvalidRequest(msg)) => msg.to_string(),
        Err(e) => panic!("expected InvalidRequest, got {e:?}"),
        Ok(r) => panic!("expected InvalidRequest, built {r:?}"),
    }
}

fn refused_periodic(b: PeriodicWorkRequestBuilder) -> String {
    match b.build() {
        Err(Error::InvalidRequest(msg)) => msg.to_string(),
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

#[test]
fn a_refusal_names_the_setting_at_fault() {
    let field = |r: workq_common::Result<OneTimeWorkRequest>| match r {
        Err(Error::InvalidRequest(e)) => e.field().to_owned(),
        other => panic!("expected InvalidRequest, got {other:?}"),
    };
    assert_eq!(field(ping().tag("").build()), "tag");
    assert_eq!(field(ping().queue("a b").build()), "queue");
    assert_eq!(field(ping().max_attempts(0).build()), "max_attempts");
    assert_eq!(field(ping().timeout(Duration::ZERO).build()), "timeout");
    assert_eq!(field(ping().require_label("a b").build()), "label");
    match PeriodicWorkRequest::cron(Ping { n: 1 }, "0 25 * * *").build() {
        Err(Error::InvalidRequest(e)) => {
            assert_eq!(e.field(), "cron");
            assert!(matches!(
                e.cron_error(),
                Some(workq_common::cron::CronError::Field { position: 2, .. })
            ));
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn metadata_is_stored_and_bad_metadata_is_refused_naming_the_field() {
    let r = ping()
        .metadata("tenant", "acme")
        .metadata_map([("region", "eu"), ("tenant", "globex")])
        .build()
        .unwrap();
    let want: std::collections::BTreeMap<String, String> = [
        ("region".to_owned(), "eu".to_owned()),
        ("tenant".to_owned(), "globex".to_owned()),
    ]
    .into();
    assert_eq!(r.metadata(), &want);
    assert_eq!(r.ext.metadata, want);
    let field = |b: OneTimeWorkRequestBuilder| match b.build() {
        Err(Error::InvalidRequest(e)) => e.field().to_owned(),
        other => panic!("expected InvalidRequest, got {other:?}"),
    };
    let many = (0..17).map(|i| (format!("k{i}"), "v"));
    for bad in [
        ping().metadata("", "v"),
        ping().metadata("a key", "v"),
        ping().metadata("k".repeat(65), "v"),
        ping().metadata("k", "v".repeat(513)),
        ping().metadata_map(many),
        ping().metadata_map((0..9).map(|i| (format!("k{i}"), "v".repeat(500)))),
    ] {
        assert_eq!(field(bad), "metadata");
    }
    let p = PeriodicWorkRequest::builder(Ping { n: 1 }, Duration::from_secs(60))
        .metadata("k", "v".repeat(513));
    assert!(refused_periodic(p).contains("metadata"));
}
