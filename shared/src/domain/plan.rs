//! The release plan: the traffic steps, the waits between them, and the thresholds that decide
//! whether a step is healthy. Everything is validated on construction.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidPlan {
    #[error("steps must not be empty; use e.g. [10, 25, 50, 100]")]
    NoSteps,
    #[error("at most {max} steps are allowed, got {got}")]
    TooManySteps { max: usize, got: usize },
    #[error("step {0}% is out of range: each step is a percentage from 1 to 100")]
    StepOutOfRange(u32),
    #[error("steps must be strictly ascending: {prev}% is followed by {next}%")]
    NotAscending { prev: u32, next: u32 },
    #[error("the last step must be 100%, got {0}%")]
    DoesNotEndAtHundred(u32),
    #[error(
        "metrics_period_seconds = {0} is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60 up to 3600 (ALB metrics: 60)"
    )]
    NotAPeriod(u64),
    #[error(
        "verification_interval_seconds = {interval} is shorter than metrics_period_seconds = {period}: each verification check needs a new complete period"
    )]
    IntervalShorterThanPeriod { interval: u64, period: u64 },
    #[error("{name} = {value} is out of range {min}..={max}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
}

/// The percentages of traffic sent to the new color, ascending and ending at 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StepPlan(Vec<u16>);

impl StepPlan {
    pub const MAX_STEPS: usize = 20;

    pub fn new(steps: &[u32]) -> Result<Self, InvalidPlan> {
        if steps.is_empty() {
            return Err(InvalidPlan::NoSteps);
        }
        if steps.len() > Self::MAX_STEPS {
            return Err(InvalidPlan::TooManySteps {
                max: Self::MAX_STEPS,
                got: steps.len(),
            });
        }
        let mut out = Vec::with_capacity(steps.len());
        let mut prev: Option<u32> = None;
        for &s in steps {
            if !(1..=100).contains(&s) {
                return Err(InvalidPlan::StepOutOfRange(s));
            }
            if let Some(p) = prev
                && s <= p
            {
                return Err(InvalidPlan::NotAscending { prev: p, next: s });
            }
            prev = Some(s);
            out.push(s as u16);
        }
        match prev {
            Some(100) => Ok(Self(out)),
            Some(last) => Err(InvalidPlan::DoesNotEndAtHundred(last)),
            None => Err(InvalidPlan::NoSteps),
        }
    }

    pub fn steps(&self) -> &[u16] {
        &self.0
    }

    pub fn get(&self, index: usize) -> Option<u16> {
        self.0.get(index).copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for StepPlan {
    fn default() -> Self {
        Self(vec![10, 25, 50, 100])
    }
}

impl<'de> Deserialize<'de> for StepPlan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<u32>::deserialize(d)?;
        StepPlan::new(&raw).map_err(serde::de::Error::custom)
    }
}

/// Durations in seconds. Defaults are the production values; local runs pass seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timings {
    /// Wait after each shift before evaluating it.
    pub step_wait_seconds: u64,
    /// Hold at 100 % before finalizing.
    pub verification_seconds: u64,
    /// Evaluate this often during verification.
    pub verification_interval_seconds: u64,
    /// Poll green's readiness this often.
    pub health_poll_seconds: u64,
    /// Give up on green becoming healthy after this long.
    pub health_timeout_seconds: u64,
    /// The CloudWatch period evaluation windows are made of. ALB metrics have 60-second
    /// resolution; shorter periods only suit high-resolution metrics (and local runs).
    pub metrics_period_seconds: u64,
    /// How long after a period ends its datapoint is taken to be published. Evaluation windows
    /// end at the last complete period at least this old.
    pub metrics_delay_seconds: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            step_wait_seconds: 120,
            verification_seconds: 600,
            verification_interval_seconds: 60,
            health_poll_seconds: 15,
            health_timeout_seconds: 900,
            metrics_period_seconds: 60,
            // ELB sends its metrics in 60-second intervals: a minute's datapoint arrives within
            // about one more interval. Later datapoints are waited for (see domain::window).
            metrics_delay_seconds: 60,
        }
    }
}

fn range(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), InvalidPlan> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(InvalidPlan::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

impl Timings {
    pub fn validate(&self) -> Result<(), InvalidPlan> {
        range(
            "step_wait_seconds",
            self.step_wait_seconds as f64,
            0.0,
            3600.0,
        )?;
        range(
            "verification_seconds",
            self.verification_seconds as f64,
            0.0,
            86_400.0,
        )?;
        let min_interval = if self.verification_seconds > 0 {
            1.0
        } else {
            0.0
        };
        range(
            "verification_interval_seconds",
            self.verification_interval_seconds as f64,
            min_interval,
            3600.0,
        )?;
        range(
            "health_poll_seconds",
            self.health_poll_seconds as f64,
            0.0,
            300.0,
        )?;
        range(
            "health_timeout_seconds",
            self.health_timeout_seconds as f64,
            0.0,
            7200.0,
        )?;
        let p = self.metrics_period_seconds;
        if !(matches!(p, 1 | 5 | 10 | 30) || (p.is_multiple_of(60) && (60..=3600).contains(&p))) {
            return Err(InvalidPlan::NotAPeriod(p));
        }
        range(
            "metrics_delay_seconds",
            self.metrics_delay_seconds as f64,
            0.0,
            900.0,
        )?;
        if self.verification_seconds > 0 && self.verification_interval_seconds < p {
            return Err(InvalidPlan::IntervalShorterThanPeriod {
                interval: self.verification_interval_seconds,
                period: p,
            });
        }
        Ok(())
    }

    /// How many evaluations the verification window needs (10 for 10 minutes every minute).
    pub fn verification_evaluations(&self) -> u32 {
        if self.verification_seconds == 0 || self.verification_interval_seconds == 0 {
            return 0;
        }
        let n = self
            .verification_seconds
            .div_ceil(self.verification_interval_seconds);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// How many readiness polls fit in the health timeout (at least one check is always made).
    pub fn max_health_polls(&self) -> u32 {
        if self.health_poll_seconds == 0 {
            return 1;
        }
        let n = self.health_timeout_seconds / self.health_poll_seconds;
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// What makes a step unhealthy. Error rate is judged absolutely; p99 latency relative to the
/// currently active color (the baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Highest acceptable 5xx rate on the new color, in percent of its requests.
    pub max_error_rate_percent: f64,
    /// Highest acceptable ratio of the new color's p99 to the baseline's p99.
    pub max_p99_ratio: f64,
    /// Latency differences below this many milliseconds are never a failure (noise floor).
    pub p99_tolerance_ms: f64,
    /// The new color must have served at least this many requests in a window to be judged.
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_error_rate_percent: 1.0,
            max_p99_ratio: 1.5,
            p99_tolerance_ms: 20.0,
            min_requests: 50,
        }
    }
}

impl Thresholds {
    pub fn validate(&self) -> Result<(), InvalidPlan> {
        range(
            "max_error_rate_percent",
            self.max_error_rate_percent,
            0.0,
            100.0,
        )?;
        range("max_p99_ratio", self.max_p99_ratio, 1.0, 100.0)?;
        range("p99_tolerance_ms", self.p99_tolerance_ms, 0.0, 60_000.0)?;
        range("min_requests", self.min_requests as f64, 0.0, 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_is_10_25_50_100() {
        assert_eq!(StepPlan::default().steps(), &[10, 25, 50, 100]);
        assert_eq!(StepPlan::new(&[10, 25, 50, 100]), Ok(StepPlan::default()));
        assert_eq!(StepPlan::new(&[100]).map(|p| p.len()), Ok(1));
    }

    #[test]
    fn invalid_plans_are_refused_with_the_reason() {
        let cases: &[(&[u32], InvalidPlan)] = &[
            (&[], InvalidPlan::NoSteps),
            (&[0, 100], InvalidPlan::StepOutOfRange(0)),
            (&[10, 101], InvalidPlan::StepOutOfRange(101)),
            (
                &[25, 10, 100],
                InvalidPlan::NotAscending { prev: 25, next: 10 },
            ),
            (
                &[50, 50, 100],
                InvalidPlan::NotAscending { prev: 50, next: 50 },
            ),
            (&[10, 50], InvalidPlan::DoesNotEndAtHundred(50)),
        ];
        for (steps, err) in cases {
            assert_eq!(StepPlan::new(steps).as_ref(), Err(err), "{steps:?}");
        }
        let many: Vec<u32> = (80..=100).collect();
        assert_eq!(
            StepPlan::new(&many),
            Err(InvalidPlan::TooManySteps { max: 20, got: 21 })
        );
        assert!(serde_json::from_str::<StepPlan>("[10, 5, 100]").is_err());
    }

    #[test]
    fn verification_evaluation_count_rounds_up() {
        let t = Timings::default();
        assert_eq!(t.verification_evaluations(), 10);
        let t = Timings {
            verification_seconds: 90,
            verification_interval_seconds: 60,
            ..Timings::default()
        };
        assert_eq!(t.verification_evaluations(), 2);
        let t = Timings {
            verification_seconds: 0,
            verification_interval_seconds: 0,
            ..Timings::default()
        };
        assert_eq!(t.verification_evaluations(), 0);
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn metrics_periods_are_cloudwatch_periods_and_checks_need_a_new_one() {
        let with = |period: u64, interval: u64| Timings {
            metrics_period_seconds: period,
            verification_interval_seconds: interval,
            ..Timings::default()
        };
        for ok in [1, 5, 10, 30, 60, 120, 3600] {
            assert_eq!(with(ok, 3600).validate(), Ok(()), "{ok}");
        }
        for bad in [0, 2, 45, 90, 7200] {
            assert_eq!(
                with(bad, 3600).validate(),
                Err(InvalidPlan::NotAPeriod(bad)),
                "{bad}"
            );
        }
        assert_eq!(
            with(60, 30).validate(),
            Err(InvalidPlan::IntervalShorterThanPeriod {
                interval: 30,
                period: 60
            })
        );
        let t = Timings::default();
        assert_eq!(
            (t.metrics_period_seconds, t.metrics_delay_seconds),
            (60, 60)
        );
        assert!(
            Timings {
                metrics_delay_seconds: 901,
                ..t
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn health_polls_fit_the_timeout() {
        let t = Timings::default();
        assert_eq!(t.max_health_polls(), 60);
        let t = Timings {
            health_poll_seconds: 0,
            ..Timings::default()
        };
        assert_eq!(t.max_health_polls(), 1);
    }

    #[test]
    fn out_of_range_timings_and_thresholds_are_named() {
        let t = Timings {
            verification_interval_seconds: 0,
            ..Timings::default()
        };
        assert!(matches!(
            t.validate(),
            Err(InvalidPlan::OutOfRange {
                name: "verification_interval_seconds",
                ..
            })
        ));
        let th = Thresholds {
            max_p99_ratio: 0.5,
            ..Thresholds::default()
        };
        assert!(matches!(
            th.validate(),
            Err(InvalidPlan::OutOfRange {
                name: "max_p99_ratio",
                ..
            })
        ));
        let th = Thresholds {
            max_error_rate_percent: f64::NAN,
            ..Thresholds::default()
        };
        assert!(th.validate().is_err());
        assert_eq!(Thresholds::default().validate(), Ok(()));
    }

    mod properties {
        use super::*;
        use crate::domain::{Color, TrafficSplit};
        use proptest::prelude::*;

        /// The plan's rules stated on their own: the first one a step list breaks, in order.
        fn first_violation(steps: &[u32]) -> Option<InvalidPlan> {
            if steps.is_empty() {
                return Some(InvalidPlan::NoSteps);
            }
            if steps.len() > StepPlan::MAX_STEPS {
                return Some(InvalidPlan::TooManySteps {
                    max: StepPlan::MAX_STEPS,
                    got: steps.len(),
                });
            }
            for (i, &s) in steps.iter().enumerate() {
                if !(1..=100).contains(&s) {
                    return Some(InvalidPlan::StepOutOfRange(s));
                }
                if i > 0 && s <= steps[i - 1] {
                    return Some(InvalidPlan::NotAscending {
                        prev: steps[i - 1],
                        next: s,
                    });
                }
            }
            steps
                .last()
                .filter(|&&l| l != 100)
                .map(|&l| InvalidPlan::DoesNotEndAtHundred(l))
        }

        /// Arbitrary lists, and lists that are valid plans (then sometimes broken by one edit),
        /// so both outcomes are exercised.
        fn step_lists() -> impl Strategy<Value = Vec<u32>> {
            let valid = prop::collection::btree_set(1u32..100, 0..22).prop_map(|s| {
                let mut v: Vec<u32> = s.into_iter().collect();
                v.push(100);
                v
            });
            prop_oneof![
                prop::collection::vec(prop_oneof![0u32..=101, any::<u32>()], 0..24),
                valid.clone(),
                (valid, any::<prop::sample::Index>(), 0u32..=101).prop_map(|(mut v, i, x)| {
                    let i = i.index(v.len());
                    v[i] = x;
                    v
                }),
            ]
        }

        proptest! {
            /// Any step list is either refused naming the first rule it breaks, or a plan that
            /// is strictly ascending, in 1..=100, at most 20 steps and ends at 100; every step
            /// of it is a split on either color whose weights are in range and sum to 100.
            #[test]
            fn any_step_list_is_a_valid_plan_or_its_first_named_violation(steps in step_lists()) {
                let plan = StepPlan::new(&steps);
                let expected = first_violation(&steps);
                prop_assert_eq!(plan.as_ref().err(), expected.as_ref());
                if let Ok(plan) = &plan {
                    let s = plan.steps();
                    prop_assert!(!s.is_empty() && s.len() <= StepPlan::MAX_STEPS);
                    prop_assert!(s.windows(2).all(|w| w[0] < w[1]));
                    prop_assert_eq!(s.last().copied(), Some(100));
                    prop_assert!(s.iter().zip(&steps).all(|(&a, &b)| u32::from(a) == b));
                    for &w in s {
                        for color in [Color::Blue, Color::Green] {
                            let split = TrafficSplit::with_percent_on(color, w)
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                            prop_assert_eq!(split.weight_of(color), w);
                            prop_assert_eq!(u32::from(split.blue()) + u32::from(split.green()), 100);
                            prop_assert!(split.blue() <= 999 && split.green() <= 999);
                        }
                    }
                }
                // The execution input's `steps` goes through serde: the same rules hold there.
                let json = serde_json::to_string(&steps).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(serde_json::from_str::<StepPlan>(&json).ok(), plan.ok());
            }
        }
    }
}
