//! What the chain builder accepts and refuses, and the edges it writes into each job's
//! options.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_common::internal::record::Record;
use workq_common::{Data, Job};

use super::*;
use crate::PeriodicWorkRequest;

#[derive(Serialize, Deserialize)]
struct Step {
    n: u32,
}
impl Job for Step {
    const KIND: &'static str = "step";
}

fn wm() -> WorkManager {
    WorkManager::unconnected(1024)
}

fn step(n: u32) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Step { n }).build().unwrap()
}

fn refused(mut c: WorkContinuation) -> String {
    match c.build(None) {
        Err(Error::InvalidRequest(msg)) => msg.to_string(),
        Err(e) => panic!("expected InvalidRequest, got {e:?}"),
        Ok(b) => panic!("expected InvalidRequest, built {b:?}"),
    }
}

fn id(r: &OneTimeWorkRequest) -> String {
    r.id().to_string()
}

/// The options stored with job `i` of a built chain, decoded from its record.
fn stored(built: &Built, i: usize) -> (WorkState, record::Ext) {
    let r = Record::decode(built.records[i].clone()).unwrap();
    (r.header.state, r.header.ext)
}

#[test]
fn each_step_waits_for_every_job_of_the_step_before() {
    let (a, b, c, d, e) = (step(1), step(2), step(3), step(4), step(5));
    let mut chain = wm()
        .begin_with([a.clone(), b.clone()])
        .then([c.clone()])
        .then([d.clone(), e.clone()]);
    assert_eq!(chain.ids(), [a.id(), b.id(), c.id(), d.id(), e.id()]);
    let built = chain.build(None).unwrap();
    assert_eq!(built.queue.name(), "default");
    assert_eq!(built.ids, [id(&a), id(&b), id(&c), id(&d), id(&e)]);

    for root in 0..2 {
        let (state, ext) = stored(&built, root);
        assert_eq!(state, WorkState::Enqueued);
        assert!(ext.parents.is_empty());
        assert_eq!(ext.pending_parents, None);
        assert_eq!(ext.children, [id(&c)]);
    }
    let (state, ext) = stored(&built, 2);
    assert_eq!(state, WorkState::Blocked);
    assert_eq!(ext.parents, [id(&a), id(&b)]);
    assert_eq!(ext.pending_parents, Some(2));
    assert_eq!(ext.children, [id(&d), id(&e)]);
    for leaf in 3..5 {
        let (state, ext) = stored(&built, leaf);
        assert_eq!(state, WorkState::Blocked);
        assert_eq!(ext.parents, [id(&c)]);
        assert_eq!(ext.pending_parents, Some(1));
        assert!(ext.children.is_empty());
    }
    assert!((0..5).all(|i| stored(&built, i).1.unique_name.is_none()));
}

#[test]
fn combined_chains_join_at_the_last_jobs_of_each() {
    let (a1, a2, b1, join) = (step(1), step(2), step(3), step(4));
    let wm = wm();
    let a = wm.begin_with([a1.clone()]).then([a2.clone()]);
    let b = wm.begin_with([b1.clone()]);
    let mut chain = WorkContinuation::combine([a, b])
        .unwrap()
        .then([join.clone()]);
    let built = chain.build(None).unwrap();
    assert_eq!(built.ids, [id(&a1), id(&a2), id(&b1), id(&join)]);
    assert_eq!(stored(&built, 0).1.children, [id(&a2)]);
    assert_eq!(stored(&built, 1).1.parents, [id(&a1)]);
    assert_eq!(stored(&built, 1).1.children, [id(&join)]);
    assert_eq!(stored(&built, 2).0, WorkState::Enqueued);
    assert_eq!(stored(&built, 2).1.children, [id(&join)]);
    let (state, ext) = stored(&built, 3);
    assert_eq!(state, WorkState::Blocked);
    assert_eq!(ext.parents, [id(&a2), id(&b1)]);
    assert_eq!(ext.pending_parents, Some(2));
}

#[test]
fn combine_refuses_nothing_and_two_unique_chains() {
    let msg = match WorkContinuation::combine([]) {
        Err(Error::InvalidRequest(msg)) => msg.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(msg, "combine needs at least one chain");
    let wm = wm();
    let u1 = wm.begin_unique_work("one", ExistingWorkPolicy::Keep, [step(1)]);
    let u2 = wm.begin_unique_work("two", ExistingWorkPolicy::Keep, [step(2)]);
    match WorkContinuation::combine([u1, u2]) {
        Err(Error::InvalidRequest(msg)) => {
            assert_eq!(
                msg.to_string(),
                "combine: at most one chain may be unique work"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_job_of_unique_work_carries_its_name() {
    let mut chain = wm()
        .begin_unique_work("nightly", ExistingWorkPolicy::Append, [step(1)])
        .then([step(2)]);
    assert_eq!(
        chain.unique,
        Some(("nightly".to_owned(), ExistingWorkPolicy::Append))
    );
    let built = chain.build(Some("nightly".into())).unwrap();
    for i in 0..2 {
        assert_eq!(stored(&built, i).1.unique_name.as_deref(), Some("nightly"));
    }
}

#[test]
fn each_job_waits_in_the_lane_of_its_own_options() {
    let gpu = OneTimeWorkRequest::builder(Step { n: 1 })
        .require_label("gpu")
        .require_label("eu")
        .build()
        .unwrap();
    let fast = OneTimeWorkRequest::builder(Step { n: 2 })
        .expedited()
        .build()
        .unwrap();
    let built = wm()
        .begin_with([gpu, fast])
        .then([step(3)])
        .build(None)
        .unwrap();
    assert_eq!(built.lanes, ["@eu,gpu", "x", ""]);
}

#[test]
fn an_empty_chain_is_refused() {
    assert_eq!(
        refused(wm().begin_with([])),
        "a chain needs at least one job"
    );
}

#[test]
fn a_chain_over_the_limit_is_refused() {
    let msg = refused(wm().begin_with((0..=MAX_CHAIN as u32).map(step)));
    assert_eq!(
        msg,
        format!(
            "a chain of {} jobs is over the limit of {MAX_CHAIN}",
            MAX_CHAIN + 1
        )
    );
    assert!(wm()
        .begin_with((0..MAX_CHAIN as u32).map(step))
        .build(None)
        .is_ok());
}

#[test]
fn a_chain_across_queues_is_refused() {
    let other = OneTimeWorkRequest::builder(Step { n: 2 })
        .queue("emails")
        .build()
        .unwrap();
    assert_eq!(
        refused(wm().begin_with([step(1)]).then([other])),
        "a chain lives in one queue: 'default' and 'emails' differ"
    );
}

#[test]
fn a_periodic_job_in_a_chain_is_refused_but_alone_it_builds() {
    let periodic = |n| {
        PeriodicWorkRequest::builder(Step { n }, Duration::from_secs(60))
            .build()
            .unwrap()
            .req
    };
    assert_eq!(
        refused(wm().begin_with([step(1)]).then([periodic(2)])),
        "periodic work cannot be part of a chain"
    );
    assert!(wm().begin_with([periodic(3)]).build(None).is_ok());
}

#[test]
fn an_input_over_the_manager_s_limit_is_refused() {
    let big = OneTimeWorkRequest::builder_raw("blob", Data::from_bytes(vec![0; 2048]))
        .build()
        .unwrap();
    let big_id = big.id();
    match wm().begin_with([step(1)]).then([big]).build(None) {
        Err(Error::PayloadTooLarge { what, size, limit }) => {
            assert_eq!(what, format!("input of job {big_id} (kind 'blob')"));
            assert_eq!((size, limit), (2048, 1024));
        }
        other => panic!("{other:?}"),
    }
}
