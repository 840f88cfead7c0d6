//! Time as workq stores it: whole milliseconds in a `u64` ([`Millis`]), since the Unix
//! epoch for instants (records, sorted-set scores, Redis' clock) or as a span for delays,
//! leases and retentions. Every conversion to and from `Duration` and `SystemTime` goes
//! through these functions, so each saturates the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, or a span of milliseconds, as stored in records and
/// used as sorted-set scores.
pub type Millis = u64;

/// A span in whole milliseconds, saturating at `u64::MAX` (some 584 million years).
pub fn ms(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An instant as milliseconds since the epoch: 0 for an instant before it, saturating far
/// in the future.
pub fn epoch_ms(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map_or(0, ms)
}

/// This machine's clock, in milliseconds since the epoch (Redis' clock decides due times;
/// this is for what a client shows or logs).
pub fn now_ms() -> Millis {
    epoch_ms(SystemTime::now())
}

/// A span of stored milliseconds.
pub fn duration(ms: Millis) -> Duration {
    Duration::from_millis(ms)
}

/// Stored milliseconds since the epoch as a [`SystemTime`].
pub fn system_time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_and_saturate() {
        assert_eq!(ms(Duration::from_micros(2_999)), 2);
        assert_eq!(ms(Duration::MAX), u64::MAX);
        assert_eq!(epoch_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(epoch_ms(system_time(1_700_000_000_123)), 1_700_000_000_123);
        assert_eq!(duration(1_500), Duration::from_millis(1_500));
        assert!(now_ms() > 1_700_000_000_000);
    }
}
