//! Capped exponential backoff with random jitter, for every loop that retries Redis (the
//! worker's loops, a producer's watch streams), so that a fleet does not retry in
//! lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that start at `first`, double up to `cap`, and each carry up to 25 % more, drawn
/// at random.
#[derive(Debug)]
pub struct RetryDelay {
    first: Duration,
    cap: Duration,
    next: Duration,
    /// Randomly keyed per value (std seeds `RandomState` from the OS), so jitter differs
    /// between processes, loops and tries.
    random: RandomState,
    tries: u64,
}

impl RetryDelay {
    /// Delays from `first` (at least 1 ms) up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.max(Duration::from_millis(1));
        RetryDelay {
            first,
            cap: cap.max(first),
            next: first,
            random: RandomState::new(),
            tries: 0,
        }
    }

    /// The delay before the next try; the one after is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        self.tries += 1;
        let mut h = self.random.build_hasher();
        h.write_u64(self.tries);
        let share = (h.finish() % 1024) as f64 / 4096.0; // 0 to 25 %
        d + d.mul_f64(share)
    }

    /// After a success: the next delay is the first again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_at_most_a_quarter_more() {
        let mut r = RetryDelay::new(Duration::from_millis(50), Duration::from_millis(400));
        let bases = [50, 100, 200, 400, 400];
        let mut seen = Vec::new();
        for base in bases {
            let d = r.next_delay();
            let base = Duration::from_millis(base);
            assert!(d >= base && d <= base + base / 4, "{d:?} for {base:?}");
            seen.push(d);
        }
        r.reset();
        let d = r.next_delay();
        assert!(d >= Duration::from_millis(50) && d <= Duration::from_micros(62_500));
        // Not one fixed share for every try (the old jitter was nearly constant).
        let mut r = RetryDelay::new(Duration::from_secs(1), Duration::from_secs(1));
        let shares: std::collections::HashSet<Duration> = (0..20).map(|_| r.next_delay()).collect();
        assert!(shares.len() > 1, "{shares:?}");
    }
}
