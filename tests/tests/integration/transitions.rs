//! The job lifecycle as a table: a job is put in each state, one transition is applied by
//! calling the scripts through their typed wrappers (`workq_common::internal::scripts`), and the
//! keys are checked: the record's state and attempts, and which of `due`, `blocked`,
//! `held:<worker>`, `done` and `cancel` hold the id. Transitions that do not apply to a
//! state (an ack of a job not running, a release of one not held) must change nothing.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use workq_common::internal::record::{self, Ext, Record};
use workq_common::internal::scripts::{
    scripts, Ack, AckOutcome, CancelStatus, ClaimArgs, GraphJob, NewJob, Retention,
};
use workq_common::internal::QueueKeys;
use workq_common::WorkState;
use workq_producer::WorkId;
use workq_tests::jobs::Nop;
use workq_tests::RedisServer;

const WORKER: &str = "w1";
const RETENTION: Retention = Retention::new(Duration::from_secs(3600), Duration::from_secs(3600));

/// The state a row starts its job in.
#[derive(Clone, Copy, Debug)]
enum Start {
    Enqueued,
    Running,
    Blocked,
    Succeeded,
    Failed,
    Cancelled,
}

/// The transition a row applies.
#[derive(Clone, Copy, Debug)]
enum Action {
    AckSuccess,
    AckFailure,
    AckRetry,
    /// The worker's lease runs out and another worker's claim reaps it.
    LeaseLost,
    Release,
    Cancel,
    /// Cancel, then the attempt's ack (a success): the cancel wins.
    CancelThenAck,
    /// The job's parent (a chain of two, the job BLOCKED on it) is claimed and acked.
    ParentSucceeds,
    ParentFails,
    ParentRetries,
    /// The job's parent is cancelled while it waits.
    ParentCancelled,
}

/// Where the job is afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Keys {
    due: bool,
    blocked: bool,
    held: bool,
    done: bool,
    cancel: bool,
}

const DUE: Keys = Keys {
    due: true,
    blocked: false,
    held: false,
    done: false,
    cancel: false,
};
const BLOCKED: Keys = Keys {
    blocked: true,
    ..NONE
};
const DONE: Keys = Keys { done: true, ..NONE };
const NONE: Keys = Keys {
    due: false,
    blocked: false,
    held: false,
    done: false,
    cancel: false,
};

/// One row: from a state, an action, the state, attempts and keys expected.
struct Row {
    from: Start,
    action: Action,
    state: WorkState,
    attempts: u32,
    keys: Keys,
}

const fn row(from: Start, action: Action, state: WorkState, attempts: u32, keys: Keys) -> Row {
    Row {
        from,
        action,
        state,
        attempts,
        keys,
    }
}

fn table() -> Vec<Row> {
    use Action::*;
    use Start::*;
    use WorkState as S;
    let mut rows = vec![
        // A running job: every way its attempt can end.
        row(Running, AckSuccess, S::Succeeded, 1, DONE),
        row(Running, AckFailure, S::Failed, 1, DONE),
        // Back in its lane after the backoff (the due time is checked below).
        row(Running, AckRetry, S::Enqueued, 1, DUE),
        // The attempt counts; due again at once.
        row(Running, LeaseLost, S::Enqueued, 1, DUE),
        // Handed back: due at once, the attempt kept.
        row(Running, Release, S::Enqueued, 1, DUE),
        // Asked to stop: it keeps running until its worker acks.
        row(
            Running,
            Cancel,
            S::Running,
            1,
            Keys {
                held: true,
                cancel: true,
                ..NONE
            },
        ),
        row(Running, CancelThenAck, S::Cancelled, 1, DONE),
        // Waiting jobs are cancelled at once.
        row(Enqueued, Cancel, S::Cancelled, 0, DONE),
        row(Blocked, Cancel, S::Cancelled, 0, DONE),
        // A chain: the child follows its parent.
        row(Blocked, ParentSucceeds, S::Enqueued, 0, DUE),
        row(Blocked, ParentFails, S::Failed, 0, DONE),
        row(Blocked, ParentRetries, S::Blocked, 0, BLOCKED),
        row(Blocked, ParentCancelled, S::Cancelled, 0, DONE),
    ];
    // What does not apply changes nothing.
    for action in [AckSuccess, AckFailure, AckRetry, LeaseLost, Release] {
        rows.push(row(Enqueued, action, S::Enqueued, 0, DUE));
        rows.push(row(Blocked, action, S::Blocked, 0, BLOCKED));
    }
    for (from, state) in [
        (Succeeded, S::Succeeded),
        (Failed, S::Failed),
        (Cancelled, S::Cancelled),
    ] {
        for action in [AckSuccess, AckFailure, AckRetry, LeaseLost, Release, Cancel] {
            let attempts = u32::from(!matches!(from, Cancelled));
            rows.push(row(from, action, state, attempts, DONE));
        }
    }
    rows
}

fn nop_record(state: WorkState, ext: &Ext) -> Vec<u8> {
    let input = workq_common::Data::encode(&Nop { i: 1 }).unwrap();
    record::encode_new(state, "nop", ext, input.as_bytes()).unwrap()
}

/// The job a row is about, and its chain parent if it has one.
struct Subject {
    id: String,
    parent: Option<String>,
    /// Its current attempt number (the token an ack or release carries).
    token: u32,
}

async fn enqueue(con: &mut MultiplexedConnection, keys: &QueueKeys, id: &str) {
    let rec = nop_record(WorkState::Enqueued, &Ext::default());
    let job = NewJob {
        id,
        delay_ms: 0,
        at_ms: 0,
        record: &rec,
    };
    scripts().enqueue(con, keys, "", &[job]).await.unwrap();
}

/// A chain parent → child: the parent ENQUEUED, the child BLOCKED on it.
async fn enqueue_chain(con: &mut MultiplexedConnection, keys: &QueueKeys) -> (String, String) {
    let (parent, child) = (WorkId::new().to_string(), WorkId::new().to_string());
    let p = nop_record(
        WorkState::Enqueued,
        &Ext {
            children: vec![child.clone()],
            ..Ext::default()
        },
    );
    let c = nop_record(
        WorkState::Blocked,
        &Ext {
            parents: vec![parent.clone()],
            pending_parents: Some(1),
            ..Ext::default()
        },
    );
    let job = |id, record| GraphJob {
        job: NewJob {
            id,
            delay_ms: 0,
            at_ms: 0,
            record,
        },
        lane: "",
    };
    let jobs = [job(parent.as_str(), &p), job(child.as_str(), &c)];
    scripts()
        .enqueue_graph(con, keys, None, RETENTION.failed, &jobs)
        .await
        .unwrap();
    (parent, child)
}

/// Claims what is due for `worker`, with `lease`; `limit` 0 only does maintenance (the
/// reaper among it).
async fn claim(
    con: &mut MultiplexedConnection,
    keys: &QueueKeys,
    worker: &str,
    limit: usize,
    lease: Duration,
) -> Vec<String> {
    let args = ClaimArgs {
        limit,
        lease,
        worker,
        keep_failed: RETENTION.failed,
        maintenance_limit: 100,
        labels: "",
        presence: false,
        kinds: "",
        memory_pressure: false,
        presence_tail: "",
    };
    let reply = scripts().claim(con, keys, &args).await.unwrap();
    reply.jobs.into_iter().map(|j| j.id).collect()
}

async fn ack(
    con: &mut MultiplexedConnection,
    keys: &QueueKeys,
    id: &str,
    token: u32,
    outcome: AckOutcome,
) -> bool {
    let a = Ack {
        id: id.into(),
        token,
        outcome,
        message: String::new(),
        output: Vec::new(),
        next_runs: (0, 0),
    };
    scripts()
        .ack(con, keys, WORKER, &RETENTION, &[a])
        .await
        .unwrap()[0]
}

async fn cancel(con: &mut MultiplexedConnection, keys: &QueueKeys, id: &str) -> CancelStatus {
    scripts()
        .cancel(con, keys, RETENTION.failed, "stop", &[id.to_owned()])
        .await
        .unwrap()[0]
}

/// Puts a fresh job of queue `keys` in state `from`.
async fn setup(con: &mut MultiplexedConnection, keys: &QueueKeys, from: Start) -> Subject {
    let id = WorkId::new().to_string();
    let lease = Duration::from_secs(60);
    let mut subject = Subject {
        id: id.clone(),
        parent: None,
        token: 0,
    };
    match from {
        Start::Enqueued => enqueue(con, keys, &id).await,
        Start::Blocked => {
            let (parent, child) = enqueue_chain(con, keys).await;
            subject.id = child;
            subject.parent = Some(parent);
        }
        Start::Cancelled => {
            enqueue(con, keys, &id).await;
            assert_eq!(cancel(con, keys, &id).await, CancelStatus::Cancelled);
        }
        Start::Running | Start::Succeeded | Start::Failed => {
            enqueue(con, keys, &id).await;
            assert_eq!(
                claim(con, keys, WORKER, 10, lease).await,
                std::slice::from_ref(&id)
            );
            subject.token = 1;
            let outcome = match from {
                Start::Succeeded => Some(AckOutcome::Succeeded),
                Start::Failed => Some(AckOutcome::Failed),
                _ => None,
            };
            if let Some(outcome) = outcome {
                assert!(ack(con, keys, &id, 1, outcome).await);
            }
        }
    }
    subject
}

/// Applies `action` to the subject; returns whether the scripts said they applied it.
async fn apply(
    con: &mut MultiplexedConnection,
    keys: &QueueKeys,
    s: &Subject,
    action: Action,
) -> bool {
    let token = s.token.max(1);
    match action {
        Action::AckSuccess => ack(con, keys, &s.id, token, AckOutcome::Succeeded).await,
        Action::AckFailure => ack(con, keys, &s.id, token, AckOutcome::Failed).await,
        Action::AckRetry => ack(con, keys, &s.id, token, AckOutcome::Retry).await,
        Action::LeaseLost => {
            // The lease ends now: the worker's entry in `leases` is moved into the past
            // (as time would), and another worker's claim reaps it.
            let _: () = con.zadd(keys.leases(), WORKER, 1).await.unwrap();
            claim(con, keys, "w2", 0, Duration::from_secs(60)).await;
            true
        }
        Action::Release => {
            let held = [(s.id.clone(), token)];
            scripts()
                .release(con, keys, WORKER, RETENTION.failed, "shutdown", &held)
                .await
                .unwrap()[0]
        }
        Action::Cancel => cancel(con, keys, &s.id).await != CancelStatus::AlreadyFinished,
        Action::CancelThenAck => {
            assert_eq!(cancel(con, keys, &s.id).await, CancelStatus::Requested);
            ack(con, keys, &s.id, token, AckOutcome::Succeeded).await
        }
        Action::ParentSucceeds | Action::ParentFails | Action::ParentRetries => {
            let parent = s.parent.as_deref().expect("a chain");
            let lease = Duration::from_secs(60);
            assert_eq!(claim(con, keys, WORKER, 10, lease).await, [parent]);
            let outcome = match action {
                Action::ParentSucceeds => AckOutcome::Succeeded,
                Action::ParentFails => AckOutcome::Failed,
                _ => AckOutcome::Retry,
            };
            ack(con, keys, parent, 1, outcome).await
        }
        Action::ParentCancelled => {
            let parent = s.parent.as_deref().expect("a chain");
            cancel(con, keys, parent).await == CancelStatus::Cancelled
        }
    }
}

/// Where the job is.
async fn keys_of(con: &mut MultiplexedConnection, keys: &QueueKeys, id: &str) -> Keys {
    let due: Option<f64> = con.zscore(keys.due(), id).await.unwrap();
    let done: Option<f64> = con.zscore(keys.done(), id).await.unwrap();
    Keys {
        due: due.is_some(),
        blocked: con.sismember(keys.blocked(), id).await.unwrap(),
        held: con.sismember(keys.held(WORKER), id).await.unwrap(),
        done: done.is_some(),
        cancel: con.hexists(keys.cancel(), id).await.unwrap(),
    }
}

/// Whether the row's action applies to its state (the script says so, or refuses).
fn applies(r: &Row) -> bool {
    use Action::*;
    match r.from {
        Start::Running => true,
        Start::Enqueued => matches!(r.action, Cancel),
        Start::Blocked => matches!(
            r.action,
            Cancel | ParentSucceeds | ParentFails | ParentRetries | ParentCancelled
        ),
        // A reaper's claim reports nothing per job: it "applies" to every state.
        _ => false,
    }
}

#[tokio::test]
async fn every_state_and_transition_leaves_the_keys_the_table_says() {
    let redis = RedisServer::start();
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut failures = Vec::new();
    for (n, r) in table().iter().enumerate() {
        // A queue per row, so that rows never see each other's jobs or leases.
        let keys = QueueKeys::new(&format!("t{n}")).unwrap();
        let subject = setup(&mut con, &keys, r.from).await;
        let before: f64 = redis::cmd("TIME")
            .query_async::<(u64, u64)>(&mut con)
            .await
            .map(|(s, us)| (s * 1000 + us / 1000) as f64)
            .unwrap();
        let applied = apply(&mut con, &keys, &subject, r.action).await;
        let what = format!("row {n}: {:?} + {:?}", r.from, r.action);
        if !matches!(r.action, Action::LeaseLost) && applied != applies(r) {
            failures.push(format!("{what}: applied = {applied}"));
        }
        let rec: Option<Vec<u8>> = con.hget(keys.jobs(), &subject.id).await.unwrap();
        let Some(rec) = rec else {
            failures.push(format!("{what}: the record is gone"));
            continue;
        };
        let header = Record::decode(rec).unwrap().header;
        if (header.state, header.attempts) != (r.state, r.attempts) {
            failures.push(format!(
                "{what}: {:?} attempt {}, expected {:?} attempt {}",
                header.state, header.attempts, r.state, r.attempts
            ));
        }
        let found = keys_of(&mut con, &keys, &subject.id).await;
        if found != r.keys {
            failures.push(format!("{what}: {found:?}, expected {:?}", r.keys));
        }
        // Details the keys alone do not show.
        let due: Option<f64> = con.zscore(keys.due(), &subject.id).await.unwrap();
        match (r.from, r.action) {
            (Start::Running, Action::AckRetry) => {
                // The default backoff: 30 s after the first attempt.
                let due = due.unwrap_or(0.0);
                if !(before + 29_000.0..before + 31_000.0).contains(&due) {
                    failures.push(format!("{what}: due {due}, expected about {before} + 30 s"));
                }
            }
            (Start::Running, Action::LeaseLost | Action::Release)
            | (Start::Blocked, Action::ParentSucceeds)
                if due.is_none_or(|d| d > before + 1000.0) =>
            {
                failures.push(format!("{what}: due {due:?}, expected now"));
            }
            _ => {}
        }
        let error = header.ext.error.unwrap_or_default();
        let expected_error = match (r.from, r.action) {
            (Start::Running, Action::LeaseLost) => "lease expired: worker w1 lost during attempt 1",
            (Start::Running, Action::Release) => "shutdown",
            (Start::Running, Action::Cancel) => "",
            (Start::Running, Action::CancelThenAck) | (_, Action::Cancel) if applies(r) => "stop",
            (Start::Blocked, Action::ParentFails) => "failed",
            (Start::Blocked, Action::ParentCancelled) => "was cancelled",
            _ => "",
        };
        if !error.ends_with(expected_error) {
            failures.push(format!(
                "{what}: error {error:?}, expected {expected_error:?}"
            ));
        }
        if matches!(r.from, Start::Running) && r.state != WorkState::Running {
            // The attempt's trailer is folded into the header when it ends.
            if header.ext.worker.as_deref() != Some(WORKER) || header.ext.started_ms.is_none() {
                failures.push(format!(
                    "{what}: the attempt's worker and start are not kept"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
