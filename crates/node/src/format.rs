//! Plain-words rendering of times and block distances for operators.
//!
//! This module owns how a timestamp or a deadline reads on a terminal (`2025-03-01 12:00:00 UTC,
//! in 3 days 2 hours`, `block 120, in 8 blocks`). It is pure: callers pass the chain's current
//! time or block, never the local clock.

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix timestamp.
pub fn utc(timestamp: u64) -> String {
    let days = (timestamp / 86_400) as i64;
    let secs = timestamp % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// A duration in the two largest units (`3 days 2 hours`, `5 minutes`, `0 seconds`).
pub fn duration_words(seconds: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, name) in UNITS {
        if rest >= size {
            let n = rest / size;
            rest %= size;
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0 seconds".to_owned()
    } else {
        parts.join(" ")
    }
}

/// `at` relative to `now`: `in 3 days 2 hours`, `5 minutes ago`, `now`.
pub fn relative_time(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", duration_words(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", duration_words(now - at)),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}

/// `2025-03-01 12:00:00 UTC (in 3 days)` for a timestamp, relative to the chain's `now`.
pub fn when(at: u64, now: u64) -> String {
    format!("{} ({})", utc(at), relative_time(at, now))
}

/// A deadline block relative to the current block: `block 120 (in 8 blocks)`, `block 100 (passed
/// 3 blocks ago)`, `block 100 (this block)`.
pub fn block_deadline(deadline: u64, current: u64) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    match deadline.cmp(&current) {
        std::cmp::Ordering::Greater => {
            let n = deadline - current;
            format!("block {deadline} (in {n} block{})", plural(n))
        }
        std::cmp::Ordering::Less => {
            let n = current - deadline;
            format!("block {deadline} (passed {n} block{} ago)", plural(n))
        }
        std::cmp::Ordering::Equal => format!("block {deadline} (this block)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn durations_and_relative_times() {
        assert_eq!(duration_words(0), "0 seconds");
        assert_eq!(duration_words(1), "1 second");
        assert_eq!(duration_words(3 * 86_400), "3 days");
        assert_eq!(duration_words(3 * 86_400 + 7_260), "3 days 2 hours");
        assert_eq!(duration_words(3_661), "1 hour 1 minute");
        assert_eq!(relative_time(100, 40), "in 1 minute");
        assert_eq!(relative_time(40, 100), "1 minute ago");
        assert_eq!(relative_time(5, 5), "now");
        assert_eq!(
            when(1_700_000_000 + 86_400, 1_700_000_000),
            "2023-11-15 22:13:20 UTC (in 1 day)"
        );
    }

    #[test]
    fn block_deadlines() {
        assert_eq!(block_deadline(120, 112), "block 120 (in 8 blocks)");
        assert_eq!(block_deadline(100, 101), "block 100 (passed 1 block ago)");
        assert_eq!(block_deadline(7, 7), "block 7 (this block)");
    }
}
