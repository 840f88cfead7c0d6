//! Request metadata (a small string map stored with the job, read by its worker and in
//! `WorkInfo`) and the trace context it carries with the `otel` features: the worker's
//! attempt span continues the trace the job was enqueued in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use workq_producer::{BackoffPolicy, Error, OneTimeWorkRequest, WorkState};
use workq_tests::jobs::{Meta, MetaWorker};

use crate::fixture::TestContext;

#[tokio::test]
async fn metadata_reaches_the_worker_and_work_info_across_a_retry() {
    let mut ctx = TestContext::with_worker(|b| b.register(MetaWorker)).await;
    let req = OneTimeWorkRequest::builder(Meta { retry_first: true })
        .metadata("tenant", "acme")
        .metadata_map([("request-id", "r-42"), ("note", "caf\u{e9} \u{2615}")])
        .backoff(BackoffPolicy::Linear, Duration::from_millis(1))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded, "{:?}", info.last_error);
    // Read on the second attempt: the retry's script rewrote the header in between.
    assert_eq!(info.run_attempt_count, 2);
    let seen: BTreeMap<String, String> = info.output_as().unwrap().unwrap();
    assert_eq!(&seen, req.metadata());
    assert_eq!(seen.len(), 3);
    assert_eq!(&info.metadata, req.metadata());
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_request_with_bad_metadata_is_refused_naming_the_field() {
    let too_many = (0..17).map(|i| (format!("k{i}"), "v"));
    for bad in [
        OneTimeWorkRequest::builder(Meta { retry_first: false }).metadata("a key", "v"),
        OneTimeWorkRequest::builder(Meta { retry_first: false }).metadata("k", "v".repeat(513)),
        OneTimeWorkRequest::builder(Meta { retry_first: false }).metadata_map(too_many),
    ] {
        let err = bad.build().unwrap_err();
        let Error::InvalidRequest(e) = &err else {
            panic!("not InvalidRequest: {err}")
        };
        assert_eq!(e.field(), "metadata", "{err}");
        assert!(err.to_string().contains("metadata"), "{err}");
    }
}

/// The producer span is the remote parent of the attempt span of each job enqueued in it,
/// enqueued alone (`enqueue.lua`) or in a chain (`enqueue_graph.lua`).
#[tokio::test]
async fn an_attempt_span_continues_the_trace_its_job_was_enqueued_in() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("workq-tests")));
    // The default for this thread only; the test's runtime is current_thread, so the
    // worker's tasks run on this thread and see it too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut ctx = TestContext::with_worker(|b| b.register(MetaWorker)).await;

    let alone = OneTimeWorkRequest::builder(Meta { retry_first: false })
        .metadata("tenant", "acme")
        .build()
        .unwrap();
    let chained = OneTimeWorkRequest::builder(Meta { retry_first: false })
        .build()
        .unwrap();
    async {
        ctx.wm.enqueue(alone.clone()).await.unwrap();
        ctx.wm
            .begin_with([chained.clone()])
            .enqueue()
            .await
            .unwrap();
    }
    .instrument(tracing::info_span!("produce"))
    .await;
    for id in [alone.id(), chained.id()] {
        let info = ctx.finished(id).await;
        assert_eq!(info.state, WorkState::Succeeded, "{:?}", info.last_error);
        assert!(info.metadata["traceparent"].starts_with("00-"), "{info:?}");
        let seen: BTreeMap<String, String> = info.output_as().unwrap().unwrap();
        assert_eq!(seen, info.metadata);
    }
    assert_eq!(ctx.info(alone.id()).await.metadata["tenant"], "acme");
    // Every attempt span has closed once the worker has stopped.
    ctx.stop_worker().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let producer = spans
        .iter()
        .find(|s| s.name == "produce")
        .expect("the producer span was exported");
    let jobs: Vec<_> = spans.iter().filter(|s| s.name == "job").collect();
    let ids: BTreeSet<String> = jobs
        .iter()
        .flat_map(|s| &s.attributes)
        .filter(|kv| kv.key.as_str() == "id")
        .map(|kv| kv.value.to_string())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([alone.id().to_string(), chained.id().to_string()]),
        "one attempt span per job"
    );
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        assert_eq!(
            job.span_context.trace_id(),
            producer.span_context.trace_id(),
            "one trace"
        );
        assert_eq!(job.parent_span_id, producer.span_context.span_id());
        assert!(job.parent_span_is_remote);
    }
}
