//! The enqueue scripts as the last line for producers in other languages (raw `FCALL`, per
//! docs/wire-format.md): every argument of a call is checked before the first write, a
//! refused call stores nothing and names the job and the field, and tags are indexed from
//! the records.

use redis::aio::MultiplexedConnection;
use workq_common::internal::record::{self, Ext};
use workq_common::internal::scripts::scripts;
use workq_producer::{Error, OneTimeWorkRequest, WorkId, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::RedisServer;

use crate::fixture::TestContext;

const PREFIX: &str = "workq:{default}:";

pub(crate) fn nop_record(ext: &Ext) -> Vec<u8> {
    let input = workq_common::Data::encode(&Nop { i: 1 }).unwrap();
    record::encode_new(WorkState::Enqueued, "nop", ext, input.as_bytes()).unwrap()
}

/// A record of kind "nop" whose ext map is `ext` as given (MessagePack that `Ext` would not
/// write), as another producer might write it.
fn raw_ext(ext: &[u8]) -> Vec<u8> {
    let mut rec = vec![
        record::HEADER_EXT,
        record::FORMAT_VERSION,
        0,
        0,
        record::HEADER_STAMP,
    ];
    rec.extend_from_slice(&[0; 8]);
    rec.extend_from_slice(b"\xa3nop");
    rec.extend_from_slice(ext);
    rec.extend_from_slice(
        workq_common::Data::encode(&Nop { i: 1 })
            .unwrap()
            .as_bytes(),
    );
    rec
}

async fn raw(redis: &RedisServer) -> MultiplexedConnection {
    redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// One job of a raw enqueue call.
#[derive(Clone)]
struct Raw {
    id: Vec<u8>,
    due: Vec<u8>,
    record: Vec<u8>,
}

impl Raw {
    fn good() -> Self {
        Raw {
            id: WorkId::new().to_string().into_bytes(),
            due: b"0".to_vec(),
            record: nop_record(&Ext::default()),
        }
    }
}

async fn fcall_enqueue(
    con: &mut MultiplexedConnection,
    lane: &str,
    jobs: &[Raw],
    pairs: &[(&str, &str)],
) -> redis::RedisResult<Vec<i64>> {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(format!("{}_enqueue", scripts().library_name()))
        .arg(1)
        .arg(PREFIX)
        .arg(jobs.len())
        .arg(lane);
    for j in jobs {
        cmd.arg(&j.id).arg(&j.due).arg(&j.record);
    }
    for (i, t) in pairs {
        cmd.arg(*i).arg(*t);
    }
    cmd.query_async(con).await
}

/// Every key of the queue: a refused call must leave none.
async fn queue_keys(con: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("workq:{default}:*")
        .query_async(con)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn every_bad_argument_refuses_the_whole_enqueue_naming_the_job_and_the_field() {
    let ctx = TestContext::without_watch().await;
    let mut con = raw(&ctx.redis).await;
    // The library is loaded by the first call that finds it missing; load it up front so
    // that the first case is not also the first call.
    scripts().load(&mut con).await.unwrap();
    let with = |f: &dyn Fn(&mut Raw)| {
        let mut r = Raw::good();
        f(&mut r);
        r
    };
    let tagged = |tags: &[&str]| {
        nop_record(&Ext {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Ext::default()
        })
    };
    let mut bad_version = nop_record(&Ext::default());
    bad_version[1] = 2;
    let mut running = nop_record(&Ext::default());
    running[2] = 1;
    let expedited = nop_record(&Ext {
        expedited: Some(true),
        ..Ext::default()
    });
    let zero_attempts = nop_record(&Ext {
        max_attempts: Some(0),
        ..Ext::default()
    });
    let with_output = nop_record(&Ext {
        output_len: Some(3),
        ..Ext::default()
    });
    let huge = {
        let input = workq_common::Data::from_bytes(vec![0xc0; 10 << 20]);
        record::encode_new(
            WorkState::Enqueued,
            "nop",
            &Ext::default(),
            input.as_bytes(),
        )
        .unwrap()
    };
    let bad_kind = |kind: &str| {
        record::encode_new(WorkState::Enqueued, kind, &Ext::default(), &[0xc0]).unwrap()
    };
    let with_metadata = |entries: Vec<(String, String)>| {
        nop_record(&Ext {
            metadata: entries.into_iter().collect(),
            ..Ext::default()
        })
    };
    let entry = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let many: Vec<_> = (0..17).map(|i| entry(&format!("k{i}"), "v")).collect();
    let bulky: Vec<_> = (0..9)
        .map(|i| entry(&format!("k{i}"), &"v".repeat(500)))
        .collect();
    // (case, the bad job (second of three), lane, tag pairs, words the error must hold)
    type Case<'a> = (&'a str, Raw, &'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "due nan",
            with(&|r| r.due = b"nan".to_vec()),
            "",
            vec![],
            vec!["job 2", "due", "not a number"],
        ),
        (
            "due text",
            with(&|r| r.due = b"soon".to_vec()),
            "",
            vec![],
            vec!["job 2", "due", "not a number"],
        ),
        (
            "due inf",
            with(&|r| r.due = b"inf".to_vec()),
            "",
            vec![],
            vec!["job 2", "due"],
        ),
        (
            "due 1e400",
            with(&|r| r.due = b"1e400".to_vec()),
            "",
            vec![],
            vec!["job 2", "due"],
        ),
        (
            "due fraction",
            with(&|r| r.due = b"1.5".to_vec()),
            "",
            vec![],
            vec!["job 2", "due", "whole"],
        ),
        (
            "due in 300 years",
            with(&|r| r.due = b"9999999999999".to_vec()),
            "",
            vec![],
            vec!["job 2", "due", "100 years"],
        ),
        (
            "delay of 300 years",
            with(&|r| r.due = b"-9460800000000".to_vec()),
            "",
            vec![],
            vec!["job 2", "due", "100 years"],
        ),
        (
            "lower-case id",
            with(&|r| r.id = WorkId::new().to_string().to_lowercase().into_bytes()),
            "",
            vec![],
            vec!["job 2", "id", "ULID"],
        ),
        (
            "id with a comma",
            with(&|r| r.id = b"01JD3Q7ZJ4K8YB0N2XW5R6V9T,".to_vec()),
            "",
            vec![],
            vec!["job 2", "id", "\\x2c"],
        ),
        (
            "id with NUL",
            with(&|r| r.id = b"01JD3Q7ZJ4K8YB0N2XW5R6V9T\0".to_vec()),
            "",
            vec![],
            vec!["job 2", "id", "\\x00"],
        ),
        (
            "empty id",
            with(&|r| r.id = Vec::new()),
            "",
            vec![],
            vec!["job 2", "id"],
        ),
        (
            "format version 2",
            with(&|r| r.record = bad_version.clone()),
            "",
            vec![],
            vec!["job 2", "record", "format v1"],
        ),
        (
            "state RUNNING",
            with(&|r| r.record = running.clone()),
            "",
            vec![],
            vec!["job 2", "record", "state"],
        ),
        (
            "garbage record",
            with(&|r| r.record = b"\xc1garbage".to_vec()),
            "",
            vec![],
            vec!["job 2", "record"],
        ),
        (
            "10 MB record",
            with(&|r| r.record = huge.clone()),
            "",
            vec![],
            vec!["job 2", "record", "over the limit"],
        ),
        (
            "empty kind",
            with(&|r| r.record = bad_kind("")),
            "",
            vec![],
            vec!["job 2", "kind"],
        ),
        (
            "kind with a comma",
            with(&|r| r.record = bad_kind("a,b")),
            "",
            vec![],
            vec!["job 2", "kind"],
        ),
        (
            "kind with a space",
            with(&|r| r.record = bad_kind("a b")),
            "",
            vec![],
            vec!["job 2", "kind"],
        ),
        (
            "expedited record in the plain lane",
            with(&|r| r.record = expedited.clone()),
            "",
            vec![],
            vec!["job 2", "lane"],
        ),
        (
            "max attempts 0",
            with(&|r| r.record = zero_attempts.clone()),
            "",
            vec![],
            vec!["job 2", "ext.m"],
        ),
        (
            "output length set by the producer",
            with(&|r| r.record = with_output.clone()),
            "",
            vec![],
            vec!["job 2", "ext.o"],
        ),
        (
            "a tag pair for job 7 of 3",
            Raw::good(),
            "",
            vec![("7", "t")],
            vec!["job index", "7"],
        ),
        (
            "a tag pair the record does not carry",
            with(&|r| r.record = tagged(&["a"])),
            "",
            vec![("2", "b")],
            vec!["job 2", "tags", "ext.t"],
        ),
        (
            "an empty tag",
            with(&|r| r.record = tagged(&[""])),
            "",
            vec![],
            vec!["job 2", "ext.t"],
        ),
        (
            "metadata of 17 entries",
            with(&|r| r.record = with_metadata(many.clone())),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata", "17 entries"],
        ),
        (
            "metadata of over 4 KiB",
            with(&|r| r.record = with_metadata(bulky.clone())),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata", "4096"],
        ),
        (
            "a metadata key with a space",
            with(&|r| r.record = with_metadata(vec![entry("a key", "v")])),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata keys"],
        ),
        (
            "a metadata key of 65 bytes",
            with(&|r| r.record = with_metadata(vec![entry(&"k".repeat(65), "v")])),
            "",
            vec![],
            vec!["job 2", "ext.M", "64 bytes"],
        ),
        (
            "a metadata value of 513 bytes",
            with(&|r| r.record = with_metadata(vec![entry("k", &"v".repeat(513))])),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata value", "512"],
        ),
        (
            "a metadata value that is a number",
            with(&|r| r.record = raw_ext(b"\x81\xa1M\x81\xa1k\x01")),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata value"],
        ),
        (
            "a metadata value that is not UTF-8",
            with(&|r| r.record = raw_ext(b"\x81\xa1M\x81\xa1k\xa1\xff")),
            "",
            vec![],
            vec!["job 2", "ext.M", "UTF-8"],
        ),
        (
            "metadata that is an array",
            with(&|r| r.record = raw_ext(b"\x81\xa1M\x91\xa1a")),
            "",
            vec![],
            vec!["job 2", "ext.M", "metadata keys"],
        ),
        (
            "metadata that is a string",
            with(&|r| r.record = raw_ext(b"\x81\xa1M\xa1a")),
            "",
            vec![],
            vec!["job 2", "ext.M", "map of strings"],
        ),
    ];
    for (case, bad, lane, pairs, words) in cases {
        let jobs = [Raw::good(), bad, Raw::good()];
        let before = queue_keys(&mut con).await;
        let err = fcall_enqueue(&mut con, lane, &jobs, &pairs)
            .await
            .expect_err(case);
        let msg = err.to_string();
        assert!(msg.contains("workq: refused"), "{case}: {msg}");
        for w in words {
            assert!(msg.contains(w), "{case}: '{w}' missing from: {msg}");
        }
        assert!(
            !msg.contains("script:"),
            "{case}: a Lua error, not a refusal: {msg}"
        );
        assert_eq!(
            queue_keys(&mut con).await,
            before,
            "{case}: the refused call wrote"
        );
        // Nothing of the call was stored: the good jobs enqueue afterwards as new.
        let good = [jobs[0].clone(), jobs[2].clone()];
        assert_eq!(
            fcall_enqueue(&mut con, "", &good, &[]).await.unwrap()[1..],
            [1, 1],
            "{case}"
        );
    }
    // Ids checked by their last characters when the rest matches an id already checked
    // are still refused for a bad one there.
    let first = Raw::good();
    for tail in [&b",A"[..], b"a1", b"\xff1", b"U1"] {
        let mut bad = first.clone();
        bad.id.truncate(24);
        bad.id.extend_from_slice(tail);
        let err = fcall_enqueue(&mut con, "", &[first.clone(), bad], &[])
            .await
            .expect_err("a bad tail");
        assert!(
            err.to_string().contains("job 2") && err.to_string().contains(": id:"),
            "{err}"
        );
    }
    let _ = &ctx.wm;
}

#[tokio::test]
async fn a_refused_graph_stores_nothing_and_leaves_the_unique_work_it_would_replace() {
    let ctx = TestContext::without_watch().await;
    let old = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_unique_work("n", workq_producer::ExistingWorkPolicy::Keep, old.clone())
        .await
        .unwrap();
    let mut con = raw(&ctx.redis).await;
    let before = queue_keys(&mut con).await;
    // REPLACE with a two-job graph whose second job is due "nan": the old work must not be
    // cancelled by a call that then fails.
    let a = WorkId::new().to_string();
    let b = WorkId::new().to_string();
    let ext = |parents: Vec<String>, children: Vec<String>| Ext {
        pending_parents: (!parents.is_empty()).then_some(parents.len() as u32),
        parents,
        children,
        unique_name: Some("n".into()),
        ..Ext::default()
    };
    let input = workq_common::Data::encode(&Nop { i: 2 }).unwrap();
    let ra = record::encode_new(
        WorkState::Enqueued,
        "nop",
        &ext(vec![], vec![b.clone()]),
        input.as_bytes(),
    )
    .unwrap();
    let rb = record::encode_new(
        WorkState::Blocked,
        "nop",
        &ext(vec![a.clone()], vec![]),
        input.as_bytes(),
    )
    .unwrap();
    let call = |due_b: &'static str| {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(format!("{}_enqueue_graph", scripts().library_name()))
            .arg(1)
            .arg(PREFIX)
            .arg("n")
            .arg("REPLACE")
            .arg(60_000)
            .arg(2)
            .arg(&a)
            .arg(0)
            .arg(&ra)
            .arg("")
            .arg(0)
            .arg(&b)
            .arg(due_b)
            .arg(&rb)
            .arg("")
            .arg(0);
        cmd
    };
    let err = call("nan")
        .query_async::<redis::Value>(&mut con)
        .await
        .expect_err("a graph with a bad due");
    assert!(
        err.to_string().contains("job 2") && err.to_string().contains("due"),
        "{err}"
    );
    assert_eq!(queue_keys(&mut con).await, before);
    let kept = ctx.wm.get_work_info(old.id()).await.unwrap().unwrap();
    assert_eq!(kept.state, WorkState::Enqueued, "the old work was touched");
    // The same graph with a good due replaces it.
    let _: redis::Value = call("0").query_async(&mut con).await.unwrap();
    let replaced = ctx.wm.get_work_info(old.id()).await.unwrap().unwrap();
    assert_eq!(replaced.state, WorkState::Cancelled);
}

#[tokio::test]
async fn tags_are_indexed_from_the_record_so_queries_and_work_info_agree() {
    let ctx = TestContext::without_watch().await;
    let mut con = raw(&ctx.redis).await;
    scripts().load(&mut con).await.unwrap();
    let mut job = Raw::good();
    job.due = b"-3600000".to_vec();
    job.record = nop_record(&Ext {
        tags: vec!["billing".into()],
        ..Ext::default()
    });
    // No tag pairs: the record alone says which tags the job has.
    assert_eq!(
        fcall_enqueue(&mut con, "", &[job.clone()], &[])
            .await
            .unwrap()[1..],
        [1]
    );
    let _: () = redis::cmd("SADD")
        .arg("workq:queues")
        .arg("default")
        .query_async(&mut con)
        .await
        .unwrap();
    let id: WorkId = std::str::from_utf8(&job.id).unwrap().parse().unwrap();
    let found: Vec<WorkId> = ctx
        .wm
        .get_work_infos_by_tag("billing")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(found, [id]);
    let info = ctx.wm.get_work_info(id).await.unwrap().unwrap();
    assert_eq!(info.tags, ["billing"]);
}

#[tokio::test]
async fn the_rust_producer_refuses_what_the_scripts_would_before_sending() {
    let far = std::time::Duration::from_secs(200 * 365 * 24 * 3600);
    let err = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(far)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest(_)) && err.to_string().contains("100 years"),
        "{err}"
    );
    for kind in ["a,b", "a#b", "a b", ""] {
        let err = OneTimeWorkRequest::builder_raw(kind, workq_common::Data::encode(&1).unwrap())
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{kind}: {err}");
    }
    let err = workq_producer::WorkManager::builder("redis://127.0.0.1:1")
        .max_payload(workq_common::limits::MAX_INPUT_BYTES + 1)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test]
async fn enqueue_many_that_fails_part_way_says_which_requests_were_stored() {
    let ctx = TestContext::without_watch().await;
    let mut con = raw(&ctx.redis).await;
    // Queue b's jobs hash is, wrongly, a string: its batch fails, queue a's is stored.
    let _: () = redis::cmd("SET")
        .arg("workq:{b}:jobs")
        .arg("not a hash")
        .query_async(&mut con)
        .await
        .unwrap();
    let req = |q: &str| {
        OneTimeWorkRequest::builder(Nop { i: 1 })
            .queue(q)
            .build()
            .unwrap()
    };
    let reqs = vec![req("a"), req("b"), req("a")];
    let err = ctx.wm.enqueue_many(reqs.clone()).await.unwrap_err();
    let Error::PartlyEnqueued {
        stored,
        first_not_stored,
        statuses,
        source,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((*stored, *first_not_stored), (2, 1), "{err}");
    use workq_producer::EnqueueStatus::{Enqueued, Existed};
    assert_eq!(statuses, &[Some(Enqueued), None, Some(Enqueued)]);
    assert!(source.to_string().contains("WRONGTYPE"), "{source}");
    assert!(err.to_string().contains("request 1"), "{err}");
    // Retrying the same requests once the fault is gone stores just the missing one.
    let _: () = redis::cmd("DEL")
        .arg("workq:{b}:jobs")
        .query_async(&mut con)
        .await
        .unwrap();
    let again: Vec<_> = ctx
        .wm
        .enqueue_many(reqs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(again, [Existed, Enqueued, Existed]);
}

#[tokio::test]
async fn metadata_another_producer_wrote_reads_back_an_empty_map_too_after_a_script_rewrote_it() {
    let ctx = TestContext::without_watch().await;
    let mut con = raw(&ctx.redis).await;
    scripts().load(&mut con).await.unwrap();
    let _: () = redis::cmd("SADD")
        .arg("workq:queues")
        .arg("default")
        .query_async(&mut con)
        .await
        .unwrap();
    // {"M": {"k": "v"}} and {"M": {}}, due in an hour.
    let mut some = Raw::good();
    some.record = raw_ext(b"\x81\xa1M\x81\xa1k\xa1v");
    let mut empty = Raw::good();
    empty.record = raw_ext(b"\x81\xa1M\x80");
    for j in [&mut some, &mut empty] {
        j.due = b"-3600000".to_vec();
    }
    assert_eq!(
        fcall_enqueue(&mut con, "", &[some.clone(), empty.clone()], &[])
            .await
            .unwrap()[1..],
        [1, 1]
    );
    let id = |j: &Raw| -> WorkId { std::str::from_utf8(&j.id).unwrap().parse().unwrap() };
    let info = ctx.wm.get_work_info(id(&some)).await.unwrap().unwrap();
    assert_eq!(info.metadata, [("k".to_owned(), "v".to_owned())].into());
    // Cancelling rewrites the header in Lua, where cmsgpack packs an empty map as [].
    for j in [&some, &empty] {
        ctx.wm.cancel_work_by_id(id(j)).await.unwrap();
    }
    let info = ctx.wm.get_work_info(id(&empty)).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Cancelled);
    assert!(info.metadata.is_empty());
    let info = ctx.wm.get_work_info(id(&some)).await.unwrap().unwrap();
    assert_eq!(info.metadata.len(), 1);
}
