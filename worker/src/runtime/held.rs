//! The jobs a process holds a lease on in one queue, from claim until their ack is
//! settled. A job id can come back under a newer attempt (a lease ran out, another worker
//! took the job, it came back to this one), so every call after `insert` names the
//! attempt by its fencing token, and a call whose token is not the current one touches
//! nothing: this type is the only way into the table, and that rule lives here alone.
//!
//! The lock is a std `Mutex` held for a few map operations and never across an
//! `.await`, as in mini-redis' `Db`; it is never handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use workq_common::internal::scripts::LeaseStatus;

/// One held job.
#[derive(Debug)]
struct Held {
    token: u32,
    cancel: CancellationToken,
    /// The attempt's task, once it has one (an attempt done in its first poll has none).
    abort: Option<AbortHandle>,
    /// Conservative local estimate of when the lease ends in Redis.
    lease_deadline: Instant,
    /// The attempt returned; only its ack is outstanding.
    finished: bool,
}

impl Held {
    /// Stops the attempt if it still runs.
    fn abort(&self) {
        if !self.finished {
            if let Some(a) = &self.abort {
                a.abort();
            }
        }
    }
}

/// The held jobs of one queue, by id.
#[derive(Debug, Default)]
pub(crate) struct HeldJobs {
    jobs: Mutex<HashMap<Arc<str>, Held>>,
}

/// Why an ack waiting to be sent was dropped by [`HeldJobs::expire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsendable {
    /// The job is no longer held under the ack's token (a heartbeat found it lost).
    Fenced,
    /// A try failed and the lease has ended since: another attempt runs the job (or will).
    Expired,
}

/// What a heartbeat reply changed, as indices into the jobs it listed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Renewal {
    /// Jobs whose cancellation was requested and whose signal fired now.
    pub(crate) cancelled: Vec<usize>,
    /// Jobs lost to another worker, each with whether its attempt was still running (it
    /// was aborted).
    pub(crate) lost: Vec<(usize, bool)>,
}

/// The unfinished jobs taken for handing back.
#[derive(Debug, Default)]
pub(crate) struct Unfinished {
    /// (id, token) pairs.
    pub(crate) jobs: Vec<(String, u32)>,
    /// The earliest of their lease ends: handing back is worth retrying until then.
    pub(crate) lease_ends: Option<Instant>,
}

impl HeldJobs {
    /// A poisoned lock only means a panic elsewhere mid-update; the table stays usable.
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Held>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a claimed job (from now on heartbeats cover it).
    pub(crate) fn insert(
        &self,
        id: Arc<str>,
        token: u32,
        cancel: CancellationToken,
        lease_deadline: Instant,
    ) {
        let held = Held {
            token,
            cancel,
            abort: None,
            lease_deadline,
            finished: false,
        };
        self.lock().insert(id, held);
    }

    /// Whether `id` is held under `token`: not handed back, lost or claimed again since.
    pub(crate) fn is_current(&self, id: &str, token: u32) -> bool {
        self.lock().get(id).is_some_and(|h| h.token == token)
    }

    /// Gives the attempt's task to a current job, so that hand-back and a lost lease can
    /// stop it; false (the caller aborts the task itself) when it is not current.
    pub(crate) fn attach(&self, id: &str, token: u32, abort: AbortHandle) -> bool {
        match self.lock().get_mut(id) {
            Some(h) if h.token == token => {
                h.abort = Some(abort);
                true
            }
            _ => false,
        }
    }

    /// Marks a current job's attempt as returned: only its ack is outstanding.
    pub(crate) fn finish(&self, id: &str, token: u32) {
        if let Some(h) = self.lock().get_mut(id).filter(|h| h.token == token) {
            h.finished = true;
        }
    }

    /// Attempts still running.
    pub(crate) fn running(&self) -> usize {
        self.lock().values().filter(|h| !h.finished).count()
    }

    /// Every (id, token) pair held, for a heartbeat.
    pub(crate) fn snapshot(&self) -> Vec<(String, u32)> {
        self.lock()
            .iter()
            .map(|(id, h)| (id.to_string(), h.token))
            .collect()
    }

    /// Applies a heartbeat's reply for `jobs` (a [`snapshot`](Self::snapshot)) sent at
    /// `sent`: extended leases end at `lease_ends`, requested cancellations fire, lost
    /// jobs are aborted and forgotten. Jobs no longer current are left alone.
    pub(crate) fn renew(
        &self,
        jobs: &[(String, u32)],
        statuses: impl IntoIterator<Item = LeaseStatus>,
        lease_ends: Instant,
    ) -> Renewal {
        let mut renewal = Renewal::default();
        let mut held = self.lock();
        for (i, ((id, token), st)) in jobs.iter().zip(statuses).enumerate() {
            let Some(h) = held.get_mut(id.as_str()).filter(|h| h.token == *token) else {
                continue;
            };
            match st {
                LeaseStatus::Extended => h.lease_deadline = lease_ends,
                LeaseStatus::CancelRequested => {
                    h.lease_deadline = lease_ends;
                    if !h.cancel.is_cancelled() {
                        h.cancel.cancel();
                        renewal.cancelled.push(i);
                    }
                }
                LeaseStatus::Lost => {
                    h.abort();
                    renewal.lost.push((i, !h.finished));
                    held.remove(id.as_str());
                }
            }
        }
        renewal
    }

    /// Forgets the current jobs among `acked`, whose outcomes Redis has taken.
    pub(crate) fn settle<'a>(&self, acked: impl IntoIterator<Item = (&'a str, u32)>) {
        let mut held = self.lock();
        for (id, token) in acked {
            if held.get(id).is_some_and(|h| h.token == token) {
                held.remove(id);
            }
        }
    }

    /// Drops from `pending` the acks that cannot be recorded any more, and returns them
    /// with the reason: those whose job is not current ([`Unsendable::Fenced`]), and
    /// those already tried (`ack` gives id, token and whether it was tried) whose lease
    /// has ended by `now` ([`Unsendable::Expired`]; the job is forgotten). An ack not yet
    /// tried is always kept, however late: Redis' fencing check decides, and a worker
    /// that was merely paused may still hold its job.
    pub(crate) fn expire<T>(
        &self,
        pending: &mut Vec<T>,
        now: Instant,
        ack: impl Fn(&T) -> (&str, u32, bool),
    ) -> Vec<(T, Unsendable)> {
        let mut held = self.lock();
        let mut reasons = Vec::new();
        let dropped: Vec<T> = pending
            .extract_if(.., |item| {
                let (id, token, tried) = ack(item);
                let verdict = match held.get(id) {
                    Some(h) if h.token == token => {
                        (tried && h.lease_deadline <= now).then_some(Unsendable::Expired)
                    }
                    _ => Some(Unsendable::Fenced),
                };
                if verdict == Some(Unsendable::Expired) {
                    held.remove(id);
                }
                reasons.extend(verdict);
                verdict.is_some()
            })
            .collect();
        dropped.into_iter().zip(reasons).collect()
    }

    /// Aborts the attempts still running and takes their jobs out of the table, for
    /// handing back; jobs whose attempt returned stay until their ack is settled.
    pub(crate) fn take_unfinished(&self) -> Unfinished {
        let mut taken = Unfinished::default();
        self.lock().retain(|id, h| {
            if h.finished {
                return true;
            }
            h.abort();
            taken.jobs.push((id.to_string(), h.token));
            taken.lease_ends = Some(match taken.lease_ends {
                Some(t) => t.min(h.lease_deadline),
                None => h.lease_deadline,
            });
            false
        });
        taken
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn put(held: &HeldJobs, id: &str, token: u32, lease_deadline: Instant) {
        held.insert(
            Arc::from(id),
            token,
            CancellationToken::new(),
            lease_deadline,
        );
    }

    fn table(jobs: &[(&str, u32)], lease_deadline: Instant) -> HeldJobs {
        let held = HeldJobs::default();
        for &(id, token) in jobs {
            put(&held, id, token, lease_deadline);
        }
        held
    }

    fn pending_task() -> tokio::task::JoinHandle<()> {
        tokio::spawn(std::future::pending())
    }

    #[test]
    fn a_job_is_current_only_under_its_latest_token() {
        let held = table(&[("a", 1)], Instant::now());
        assert!(held.is_current("a", 1));
        assert!(!held.is_current("a", 2), "another attempt's token");
        assert!(!held.is_current("b", 1), "a job never held");
        // Claimed again under a newer attempt: the old token is stale.
        put(&held, "a", 2, Instant::now());
        assert!(held.is_current("a", 2));
        assert!(!held.is_current("a", 1));
    }

    #[test]
    fn finishing_with_a_stale_token_changes_nothing() {
        let held = table(&[("a", 2), ("b", 1)], Instant::now());
        assert_eq!(held.running(), 2);
        held.finish("a", 1);
        assert_eq!(held.running(), 2);
        held.finish("a", 2);
        assert_eq!(held.running(), 1);
        held.finish("gone", 1);
        assert_eq!(held.running(), 1);
    }

    #[tokio::test]
    async fn a_task_attaches_only_to_a_current_job() {
        let held = table(&[("a", 3)], Instant::now());
        let task = pending_task();
        assert!(!held.attach("a", 2, task.abort_handle()));
        assert!(!held.attach("b", 3, task.abort_handle()));
        assert!(held.attach("a", 3, task.abort_handle()));
        task.abort();
    }

    #[tokio::test]
    async fn taking_the_unfinished_aborts_them_and_keeps_the_finished() {
        let now = Instant::now();
        let held = table(&[("run", 1), ("done", 1)], now + Duration::from_secs(9));
        put(&held, "soon", 4, now + Duration::from_secs(2));
        let task = pending_task();
        assert!(held.attach("run", 1, task.abort_handle()));
        held.finish("done", 1);

        let mut taken = held.take_unfinished();
        taken.jobs.sort();
        assert_eq!(taken.jobs, [("run".to_owned(), 1), ("soon".to_owned(), 4)]);
        assert_eq!(taken.lease_ends, Some(now + Duration::from_secs(2)));
        assert!(task.await.is_err_and(|e| e.is_cancelled()), "aborted");
        assert!(held.is_current("done", 1), "its ack is still to be settled");
        assert!(!held.is_current("run", 1));
        assert!(held.take_unfinished().jobs.is_empty());
    }

    #[test]
    fn a_snapshot_lists_every_job_with_its_token() {
        let held = table(&[("a", 1), ("b", 7)], Instant::now());
        held.finish("b", 7);
        let mut jobs = held.snapshot();
        jobs.sort();
        assert_eq!(jobs, [("a".to_owned(), 1), ("b".to_owned(), 7)]);
        assert!(HeldJobs::default().snapshot().is_empty());
    }

    #[tokio::test]
    async fn a_heartbeat_extends_cancels_and_forgets_the_lost() {
        let now = Instant::now();
        let held = HeldJobs::default();
        let cancel = CancellationToken::new();
        put(&held, "ext", 1, now);
        held.insert(Arc::from("cxl"), 1, cancel.clone(), now);
        put(&held, "lost", 1, now);
        put(&held, "stale", 2, now);
        let task = pending_task();
        assert!(held.attach("lost", 1, task.abort_handle()));
        let jobs: Vec<(String, u32)> = [("ext", 1), ("cxl", 1), ("lost", 1), ("stale", 1)]
            .iter()
            .map(|&(id, t)| (id.to_owned(), t))
            .collect();
        let statuses = [
            LeaseStatus::Extended,
            LeaseStatus::CancelRequested,
            LeaseStatus::Lost,
            LeaseStatus::Lost,
        ];
        let later = now + Duration::from_secs(30);
        let renewal = held.renew(&jobs, statuses, later);
        assert_eq!(
            renewal,
            Renewal {
                cancelled: vec![1],
                lost: vec![(2, true)]
            }
        );
        assert!(cancel.is_cancelled());
        assert!(task.await.is_err_and(|e| e.is_cancelled()), "aborted");
        assert!(!held.is_current("lost", 1));
        assert!(held.is_current("stale", 2), "a stale token loses nothing");

        // A second request does not fire again; the extended leases have not ended.
        let again = held.renew(
            &jobs[..2],
            [LeaseStatus::Extended, LeaseStatus::CancelRequested],
            later,
        );
        assert_eq!(again, Renewal::default());
        let mut tried: Vec<(&str, u32, bool)> = vec![("ext", 1, true), ("cxl", 1, true)];
        let before = later - Duration::from_millis(1);
        assert!(held.expire(&mut tried, before, |a| *a).is_empty());
        assert_eq!(held.expire(&mut tried, later, |a| *a).len(), 2);
    }

    #[test]
    fn settling_forgets_only_current_jobs() {
        let held = table(&[("a", 1), ("b", 2)], Instant::now());
        held.settle([("a", 1), ("b", 1), ("c", 1)]);
        assert!(!held.is_current("a", 1));
        assert!(held.is_current("b", 2));
    }

    #[test]
    fn expiry_drops_fenced_acks_and_tried_ones_past_their_lease() {
        let now = Instant::now();
        let held = table(&[("late", 1), ("fresh", 1), ("untried", 1)], now);
        put(&held, "fresh", 1, now + Duration::from_secs(5));
        let mut pending: Vec<(&str, u32, bool)> = vec![
            ("late", 1, true),
            ("fresh", 1, true),
            ("untried", 1, false),
            ("fenced", 1, false),
        ];
        let dropped = held.expire(&mut pending, now, |a| *a);
        assert_eq!(pending, [("fresh", 1, true), ("untried", 1, false)]);
        assert_eq!(
            dropped,
            [
                (("late", 1, true), Unsendable::Expired),
                (("fenced", 1, false), Unsendable::Fenced)
            ]
        );
        assert!(!held.is_current("late", 1), "an expired job is forgotten");
        assert!(held.is_current("untried", 1));
    }
}
