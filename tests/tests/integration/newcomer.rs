//! What a newcomer meets first: the README's examples, the names they import, and what
//! the values they print look like.

use workq_producer::{EnqueueStatus, GraphStatus, WorkId};
use workq_worker::WorkResult;

/// The part of an example file that the README quotes: everything after its `//!` header.
fn quoted(file: &str) -> &str {
    let mut rest = file;
    while let Some(line_end) = rest.find('\n') {
        if !rest.starts_with("//!") {
            break;
        }
        rest = &rest[line_end + 1..];
    }
    rest.trim_start_matches('\n')
}

#[test]
fn the_readmes_producer_and_worker_are_the_example_files_the_compiler_checks() {
    let readme = include_str!("../../../README.md");
    for (name, file) in [
        (
            "producer/examples/readme_producer.rs",
            include_str!("../../../producer/examples/readme_producer.rs"),
        ),
        (
            "worker/examples/readme_worker.rs",
            include_str!("../../../worker/examples/readme_worker.rs"),
        ),
    ] {
        let block = format!("```rust,no_run\n{}```", quoted(file));
        assert!(
            readme.contains(&block),
            "README.md does not quote {name} as it is:\n{block}"
        );
    }
}

#[test]
fn work_results_are_plain_values_and_only_encoding_an_output_can_fail() {
    let plain: [WorkResult; 3] = [
        WorkResult::success(),
        WorkResult::failure("why"),
        WorkResult::retry(),
    ];
    assert_eq!(plain[2], WorkResult::Retry);
    let with_output: workq_worker::Result<WorkResult> = WorkResult::success_with(&3u32);
    assert!(matches!(with_output, Ok(WorkResult::Success(Some(_)))));
}

#[test]
fn what_users_name_is_exported_by_the_crate_they_use() {
    // The type of a WorkInfo field, from the producer crate; WorkInfo from the worker's.
    let schedule: Option<workq_producer::Schedule> = None;
    let info: Option<workq_worker::WorkInfo> = None;
    assert!(schedule.is_none() && info.is_none());
    // What Metrics::registry() returns, encoded with the re-exported prometheus crate.
    let registry: fn(&workq_worker::Metrics) -> &workq_worker::prometheus::Registry =
        workq_worker::Metrics::registry;
    let _ = registry;
    use workq_worker::prometheus::Encoder;
    let mut out = Vec::new();
    workq_worker::prometheus::TextEncoder::new()
        .encode(
            &workq_worker::prometheus::Registry::new().gather(),
            &mut out,
        )
        .unwrap();
}

#[test]
fn a_work_id_debugs_as_its_string_and_enqueued_is_one_name() {
    let id = WorkId::new();
    assert_eq!(format!("{id:?}"), id.to_string());
    // "It was enqueued" has one name, for single jobs and for chains.
    assert_eq!(format!("{:?}", EnqueueStatus::Enqueued), "Enqueued");
    assert_eq!(format!("{:?}", GraphStatus::Enqueued), "Enqueued");
}

#[tokio::test]
async fn pruning_one_queue_leaves_the_finished_work_of_others() {
    let ctx = crate::fixture::TestContext::without_watch().await;
    let wm = &ctx.wm;
    let mut ids = Vec::new();
    for queue in ["example-query", "someone-elses"] {
        let req = workq_producer::OneTimeWorkRequest::builder(workq_tests::jobs::Nop { i: 1 })
            .queue(queue)
            .initial_delay(std::time::Duration::from_secs(3600))
            .build()
            .unwrap();
        let id = wm.enqueue(req).await.unwrap().id;
        // Cancelled: finished, and prunable by pruneWork.
        wm.cancel_work_by_id(id).await.unwrap();
        ids.push(id);
    }
    // What the query example now does.
    assert_eq!(wm.prune_work_in("example-query").await.unwrap(), 1);
    assert!(wm.get_work_info(ids[0]).await.unwrap().is_none());
    let kept = wm.get_work_info(ids[1]).await.unwrap().expect("not pruned");
    assert_eq!(kept.state, workq_producer::WorkState::Cancelled);
}
