//! Evaluation windows: which span of CloudWatch data an evaluation judges, and whether it may
//! judge yet. A window covers whole metric periods that CloudWatch has already published: the
//! current period is partial, and ALB metrics arrive some time after their period ends.

use super::Timings;
use time::OffsetDateTime;

/// How many times an evaluation waits one more period for a late last datapoint before it takes
/// the missing datapoint as "no traffic" (ALB reports nothing for a minute without requests).
pub const MAX_LATE_METRICS_WAITS: u32 = 2;

/// A span of whole metric periods, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationWindow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub period_seconds: u64,
}

impl EvaluationWindow {
    /// The start of the window's last period: the timestamp CloudWatch gives its datapoint.
    pub fn last_period_start(&self) -> OffsetDateTime {
        self.end - time::Duration::seconds(period_i64(self.period_seconds))
    }
}

/// Whether an evaluation can judge now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowReadiness {
    Ready(EvaluationWindow),
    /// No complete, published period since `since` yet: evaluate again after this many seconds.
    NotYet {
        wait_seconds: u64,
    },
}

/// Whether the metrics read for a window can be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsCompleteness {
    /// The new color's last period has its datapoint (or waiting longer is not worth it).
    Complete,
    /// The last period's datapoint is missing and may still come: evaluate again later.
    NotYet { wait_seconds: u64 },
    /// Still missing after the late waits: the new color served nothing in that period.
    MissingTakenAsNoTraffic,
}

fn period_i64(period_seconds: u64) -> i64 {
    i64::try_from(period_seconds.max(1)).unwrap_or(i64::MAX)
}

fn floor_to(t: i64, period: i64) -> i64 {
    t.div_euclid(period) * period
}

fn ceil_to(t: i64, period: i64) -> i64 {
    let floor = floor_to(t, period);
    if floor == t { t } else { floor + period }
}

fn at(epoch: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(epoch).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The window to judge at `now` for traffic since `since` (the shift, or the end of the last
/// judged window): from the first period boundary at or after `since` to the end of the last
/// period that is complete and, after the publication delay, published. Never in the future.
pub fn evaluation_window(
    since: OffsetDateTime,
    now: OffsetDateTime,
    timings: &Timings,
) -> WindowReadiness {
    let period = period_i64(timings.metrics_period_seconds);
    let delay = i64::try_from(timings.metrics_delay_seconds).unwrap_or(i64::MAX / 2);
    let since_s = since.unix_timestamp() + i64::from(since.nanosecond() > 0);
    let start = ceil_to(since_s, period);
    let end = floor_to(now.unix_timestamp().saturating_sub(delay), period);
    if end >= start + period {
        WindowReadiness::Ready(EvaluationWindow {
            start: at(start),
            end: at(end),
            period_seconds: timings.metrics_period_seconds.max(1),
        })
    } else {
        // The first period ends at start + period and is published `delay` later.
        let ready_at = start + period + delay;
        let wait = ready_at.saturating_sub(now.unix_timestamp()).max(1);
        WindowReadiness::NotYet {
            wait_seconds: u64::try_from(wait).unwrap_or(1),
        }
    }
}

/// Judges whether a window's metrics are complete. `last_reported` is the start of the latest
/// period that has a RequestCount datapoint for the new color; `late_waits` how often this window
/// already waited for it. A missing last datapoint means "not yet published", not "no traffic",
/// until it has been waited for [`MAX_LATE_METRICS_WAITS`] periods.
pub fn metrics_completeness(
    window: &EvaluationWindow,
    last_reported: Option<OffsetDateTime>,
    late_waits: u32,
) -> MetricsCompleteness {
    if last_reported.is_some_and(|t| t >= window.last_period_start()) {
        MetricsCompleteness::Complete
    } else if late_waits < MAX_LATE_METRICS_WAITS {
        MetricsCompleteness::NotYet {
            wait_seconds: window.period_seconds,
        }
    } else {
        MetricsCompleteness::MissingTakenAsNoTraffic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn timings(delay: u64) -> Timings {
        Timings {
            metrics_delay_seconds: delay,
            ..Timings::default()
        }
    }

    fn ready(since: OffsetDateTime, now: OffsetDateTime, delay: u64) -> (i64, i64) {
        match evaluation_window(since, now, &timings(delay)) {
            WindowReadiness::Ready(w) => (w.start.unix_timestamp(), w.end.unix_timestamp()),
            other => panic!("not ready: {other:?}"),
        }
    }

    #[test]
    fn windows_cover_whole_minutes_ending_at_the_last_published_period() {
        // shifted at 10:00:30, evaluated at 10:03:20 with a 60 s publication delay:
        // 10:03:20 - 60 s = 10:02:20, so the last published complete minute ends at 10:02:00;
        // the partial minute of the shift (10:00:30-10:01:00) is left out.
        let (start, end) = ready(
            datetime!(2025-01-03 10:00:30 UTC),
            datetime!(2025-01-03 10:03:20 UTC),
            60,
        );
        assert_eq!(start, datetime!(2025-01-03 10:01:00 UTC).unix_timestamp());
        assert_eq!(end, datetime!(2025-01-03 10:02:00 UTC).unix_timestamp());
    }

    #[test]
    fn a_window_starting_on_a_boundary_keeps_its_start() {
        // verification checks continue where the last judged window ended
        let (start, end) = ready(
            datetime!(2025-01-03 10:02:00 UTC),
            datetime!(2025-01-03 10:04:05 UTC),
            60,
        );
        assert_eq!(start, datetime!(2025-01-03 10:02:00 UTC).unix_timestamp());
        assert_eq!(end, datetime!(2025-01-03 10:03:00 UTC).unix_timestamp());
    }

    #[test]
    fn the_end_is_the_last_complete_period_minus_the_delay_never_now() {
        // the old window ended at "now"; the new one ends at least `delay` before it, on a minute
        for delay in [0, 1, 59, 60, 61, 150] {
            for second in 0..60 {
                let now = datetime!(2025-01-03 10:30:00 UTC) + time::Duration::seconds(second);
                let since = datetime!(2025-01-03 10:00:00 UTC);
                let (start, end) = ready(since, now, delay);
                assert_eq!(start % 60, 0);
                assert_eq!(end % 60, 0, "delay {delay} at +{second}s");
                assert!(end <= now.unix_timestamp() - delay as i64);
                assert!(end > now.unix_timestamp() - delay as i64 - 60);
            }
        }
    }

    #[test]
    fn a_window_without_a_complete_published_period_is_not_yet() {
        // shifted at 10:00:30, 120 s step wait: at 10:02:30 only 10:01:00-10:02:00 is complete,
        // and with a 60 s delay it is published at 10:03:00: wait 30 s, judge nothing now.
        let since = datetime!(2025-01-03 10:00:30 UTC);
        assert_eq!(
            evaluation_window(since, datetime!(2025-01-03 10:02:30 UTC), &timings(60)),
            WindowReadiness::NotYet { wait_seconds: 30 }
        );
        // right after the shift the current minute is partial even with no delay
        assert_eq!(
            evaluation_window(since, datetime!(2025-01-03 10:00:45 UTC), &timings(0)),
            WindowReadiness::NotYet { wait_seconds: 75 }
        );
        // at the moment it is published it is ready
        assert_eq!(
            ready(since, datetime!(2025-01-03 10:03:00 UTC), 60),
            (
                datetime!(2025-01-03 10:01:00 UTC).unix_timestamp(),
                datetime!(2025-01-03 10:02:00 UTC).unix_timestamp()
            )
        );
    }

    #[test]
    fn a_clock_before_the_window_start_is_not_yet_never_a_future_window() {
        let since = datetime!(2025-01-03 10:05:00 UTC);
        let r = evaluation_window(since, datetime!(2025-01-03 10:04:00 UTC), &timings(60));
        assert_eq!(r, WindowReadiness::NotYet { wait_seconds: 180 });
    }

    #[test]
    fn other_periods_align_the_same_way() {
        let t = Timings {
            metrics_period_seconds: 1,
            metrics_delay_seconds: 2,
            ..Timings::default()
        };
        let since = datetime!(2025-01-03 10:00:00.400 UTC);
        match evaluation_window(since, datetime!(2025-01-03 10:00:05.900 UTC), &t) {
            WindowReadiness::Ready(w) => {
                assert_eq!(w.start, datetime!(2025-01-03 10:00:01 UTC));
                assert_eq!(w.end, datetime!(2025-01-03 10:00:03 UTC));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_last_datapoint_is_not_yet_then_no_traffic() {
        let w = EvaluationWindow {
            start: datetime!(2025-01-03 10:01:00 UTC),
            end: datetime!(2025-01-03 10:03:00 UTC),
            period_seconds: 60,
        };
        let last = Some(datetime!(2025-01-03 10:02:00 UTC));
        assert_eq!(
            metrics_completeness(&w, last, 0),
            MetricsCompleteness::Complete
        );
        // only the first minute reported: the second may still be on its way
        let first_only = Some(datetime!(2025-01-03 10:01:00 UTC));
        for (reported, waits) in [(first_only, 0), (None, 0), (first_only, 1)] {
            assert_eq!(
                metrics_completeness(&w, reported, waits),
                MetricsCompleteness::NotYet { wait_seconds: 60 },
                "{reported:?} after {waits} waits"
            );
        }
        assert_eq!(
            metrics_completeness(&w, None, MAX_LATE_METRICS_WAITS),
            MetricsCompleteness::MissingTakenAsNoTraffic
        );
    }
}
