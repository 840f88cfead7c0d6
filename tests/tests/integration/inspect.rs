//! What an operator reads about jobs and workers through the library: a job's bounded
//! error history, the workers of a queue (host, labels, kinds, busy and total slots),
//! periodic work with how its last period ended, and a listing by unique name.

use std::collections::HashSet;
use std::time::Duration;

use workq_producer::{
    BackoffPolicy, ExistingWorkPolicy, JobFilter, JobListing, OneTimeWorkRequest,
    PeriodicWorkRequest, Schedule, WorkId, WorkState,
};
use workq_tests::jobs::{Fail, Nop, Probe, Sleep};

use crate::fixture::TestContext;

#[tokio::test]
async fn a_job_keeps_the_errors_of_its_last_five_failed_attempts_oldest_first() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .max_attempts(7)
    .backoff(BackoffPolicy::Linear, Duration::from_millis(1))
    .build()
    .unwrap();
    let id = req.id();
    ctx.wm.enqueue(req).await.unwrap();
    let info = ctx.finished(id).await;
    ctx.stop_worker().await;
    assert_eq!(info.state, WorkState::Failed, "{info:?}");
    let attempts: Vec<u32> = info.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [3, 4, 5, 6, 7], "the last five, oldest first");
    for e in &info.errors {
        assert_eq!(e.message, format!("attempt {} broke", e.attempt));
    }
    assert!(
        info.errors.windows(2).all(|w| w[0].at <= w[1].at),
        "in the order they happened: {:?}",
        info.errors
    );
    assert_eq!(info.last_error.as_deref(), Some("attempt 7 broke"));
}

#[tokio::test]
async fn a_queue_lists_its_workers_with_host_labels_kinds_and_busy_and_total_slots() {
    let mut ctx =
        TestContext::with_worker(|b| b.worker_id("w-inspect").labels(["gpu"]).concurrency(3)).await;
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    let id = req.id();
    ctx.wm.enqueue(req).await.unwrap();
    ctx.reaches(id, WorkState::Running).await;
    let workers = ctx.wm.list_workers("default").await.unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    let w = &workers[0];
    assert_eq!(w.id, "w-inspect");
    assert_eq!(w.queue, "default");
    assert_eq!(w.labels, ["gpu"]);
    assert!(w.kinds.iter().any(|k| k == "sleep"), "{:?}", w.kinds);
    assert_eq!((w.busy, w.slots), (1, Some(3)));
    assert!(w.live);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(w.host.as_deref(), Some(host.trim()));
    ctx.wm.cancel_work_by_id(id).await.unwrap();
    ctx.finished(id).await;
    let w = &ctx.wm.list_workers("default").await.unwrap()[0];
    assert_eq!(w.busy, 0, "nothing held once the job ended");
    ctx.stop_worker().await;
}

#[tokio::test]
async fn periodic_work_is_listed_among_other_jobs_with_its_schedule_and_last_run() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    // Plenty of other waiting work around it, so that the listing has to page.
    let others: Vec<OneTimeWorkRequest> = (0..25)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .initial_delay(Duration::from_secs(3600))
                .build()
                .unwrap()
        })
        .collect();
    ctx.wm.enqueue_many(others).await.unwrap();
    let req = PeriodicWorkRequest::builder(
        Probe {
            note: "tick".into(),
            fail_first: false,
        },
        Duration::from_secs(3600),
    )
    .build()
    .unwrap();
    let id = req.id();
    ctx.wm.enqueue_periodic(req).await.unwrap();
    // Its first period's run happens at once; it then waits for the next period.
    ctx.reaches(id, WorkState::Running).await;
    ctx.reaches(id, WorkState::Enqueued).await;

    let mut listing = JobListing::new("default", JobFilter::Periodic).limit(10);
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let page = ctx.wm.list_periodic(&listing).await.unwrap();
        pages += 1;
        found.extend(page.jobs);
        match page.next {
            Some(c) => listing = listing.after(c),
            None => break,
        }
    }
    assert!(
        pages >= 3,
        "26 waiting jobs, 10 looked at a page: {pages} pages"
    );
    let ids: Vec<WorkId> = found.iter().map(|i| i.id).collect();
    assert_eq!(ids, [id], "only the periodic job");
    let p = &found[0];
    assert_eq!(
        p.schedule,
        Some(Schedule::Interval {
            interval: Duration::from_secs(3600),
            flex: Duration::from_secs(3600)
        })
    );
    assert!(p.next_due_at.is_some());
    let last = p.last_run.as_ref().expect("its first period ran");
    assert_eq!(last.outcome, WorkState::Succeeded);
    assert_eq!(
        ctx.wm
            .count_jobs("default", JobFilter::Periodic)
            .await
            .unwrap(),
        1
    );
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_listing_by_unique_name_finds_that_names_work_only() {
    let ctx = TestContext::new().await;
    let mut named = HashSet::new();
    for name in ["nightly", "hourly"] {
        let req = OneTimeWorkRequest::builder(Nop { i: 1 })
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        if name == "nightly" {
            named.insert(req.id());
        }
        ctx.wm
            .enqueue_unique_work(name, ExistingWorkPolicy::Keep, req)
            .await
            .unwrap();
    }
    let plain = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    ctx.wm.enqueue(plain).await.unwrap();
    let listing = JobListing::new("default", JobFilter::Scheduled).unique_name("nightly");
    let page = ctx.wm.list_jobs(&listing).await.unwrap();
    let ids: HashSet<WorkId> = page.jobs.iter().map(|i| i.id).collect();
    assert_eq!(ids, named);
    assert_eq!(page.next, None);
    assert_eq!(page.jobs[0].unique_name.as_deref(), Some("nightly"));
    // The state filter applies to what the name has: none of it is ready.
    let ready = JobListing::new("default", JobFilter::Ready).unique_name("nightly");
    assert!(ctx.wm.list_jobs(&ready).await.unwrap().jobs.is_empty());
}
