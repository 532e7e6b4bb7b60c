//! Where a range query is cut: at multiples of `split_queries_by_interval`
//! since the Unix epoch (so UTC midnights for 24h), keeping every metric
//! evaluation point in exactly one piece.

/// Pieces of a log query over `[start, end)`: `[start, b1)`, `[b1, b2)`, …
pub(crate) fn log_splits(start: i64, end: i64, interval: i64) -> Vec<(i64, i64)> {
    if interval <= 0 || end <= start {
        return vec![(start, end)];
    }
    let mut pieces = Vec::new();
    let mut from = start;
    while from < end {
        let boundary = next_boundary(from, interval);
        let to = boundary.min(end);
        pieces.push((from, to));
        from = to;
    }
    pieces
}

/// Pieces of a metric range query evaluated at `start + k·step ≤ end`:
/// each piece `(s, e)` holds the points in `[s, e]`, all on the query's
/// grid and before the next interval boundary; the next piece starts one
/// step later.
pub(crate) fn metric_splits(start: i64, end: i64, step: i64, interval: i64) -> Vec<(i64, i64)> {
    if interval <= 0 || step <= 0 || end <= start {
        return vec![(start, end)];
    }
    let mut pieces = Vec::new();
    let mut from = start;
    while from <= end {
        let boundary = next_boundary(from, interval);
        // The last grid point before the boundary.
        let last = from + (boundary - 1 - from) / step * step;
        if last >= end {
            pieces.push((from, end));
            break;
        }
        pieces.push((from, last));
        from = last + step;
    }
    pieces
}

/// The first multiple of `interval` after `time`.
fn next_boundary(time: i64, interval: i64) -> i64 {
    (time.div_euclid(interval) + 1).saturating_mul(interval)
}

/// The last point of the grid `origin + k·step` at or before `time`.
pub(crate) fn grid_floor(origin: i64, step: i64, time: i64) -> i64 {
    origin + (time - origin).div_euclid(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    #[test]
    fn log_pieces_meet_at_midnight() {
        let day = 24 * H;
        let start = 10 * day + 20 * H;
        assert_eq!(
            log_splits(start, start + 30 * H, day),
            [
                (start, 11 * day),
                (11 * day, 12 * day),
                (12 * day, start + 30 * H)
            ]
        );
        assert_eq!(log_splits(5, 5, day), [(5, 5)]);
        assert_eq!(log_splits(5, 9, 0), [(5, 9)]);
    }

    #[test]
    fn metric_pieces_keep_every_point_once() {
        let day = 24 * H;
        for (start, end, step) in [
            (
                10 * day + 20 * H + 7,
                13 * day + 3 * H,
                7 * 60 * 1_000_000_000,
            ),
            (10 * day, 12 * day, H),
            (10 * day - 1, 10 * day + 1, 1),
            (3, 3 + 5 * H, 17_000_000_000),
        ] {
            let expected: Vec<i64> = (0..)
                .map(|k| start + k * step)
                .take_while(|t| *t <= end)
                .collect();
            let pieces = metric_splits(start, end, step, day);
            let mut got = Vec::new();
            for (index, (s, e)) in pieces.iter().enumerate() {
                assert!((s - start) % step == 0, "piece {index} starts on the grid");
                if index + 1 < pieces.len() {
                    assert_eq!(
                        s.div_euclid(day),
                        e.div_euclid(day),
                        "piece {index} within one day"
                    );
                }
                got.extend((0..).map(|k| s + k * step).take_while(|t| t <= e));
            }
            assert_eq!(got, expected, "{start} {end} {step}");
        }
    }

    #[test]
    fn grid_floor_rounds_down_onto_the_grid() {
        assert_eq!(grid_floor(10, 5, 24), 20);
        assert_eq!(grid_floor(10, 5, 25), 25);
        assert_eq!(grid_floor(10, 5, 9), 5);
    }
}
