//! Conversions between protobuf timestamps and nanoseconds since the epoch.

use prost_types::Timestamp;

/// Returns the nanoseconds since the Unix epoch a protobuf timestamp denotes,
/// saturating at the bounds of `i64`; a missing timestamp is the epoch.
pub fn timestamp_to_nanos(ts: Option<&Timestamp>) -> i64 {
    match ts {
        None => 0,
        Some(ts) => ts
            .seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(ts.nanos)),
    }
}

/// Returns the protobuf timestamp for nanoseconds since the Unix epoch.
pub fn timestamp_from_nanos(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_negative() {
        for nanos in [0, 1, 1_700_000_000_123_456_789, -1, -1_500_000_000] {
            let ts = timestamp_from_nanos(nanos);
            assert!((0..1_000_000_000).contains(&ts.nanos));
            assert_eq!(timestamp_to_nanos(Some(&ts)), nanos);
        }
        assert_eq!(timestamp_to_nanos(None), 0);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let ts = Timestamp {
            seconds: i64::MAX,
            nanos: 5,
        };
        assert_eq!(timestamp_to_nanos(Some(&ts)), i64::MAX);
    }
}
