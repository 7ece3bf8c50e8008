//! The decision taken after each step: alarms, the new color's 5xx rate and its p99 latency
//! against the active color's. A verdict carries every number it was based on.

use super::Thresholds;
use serde::{Deserialize, Serialize};

/// What one color served during an evaluation window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ColorMetrics {
    pub requests: u64,
    pub errors_5xx: u64,
    /// p99 of TargetResponseTime in milliseconds; `None` when CloudWatch had no data.
    pub p99_ms: Option<f64>,
}

impl ColorMetrics {
    /// 5xx as a percentage of requests; `None` without requests.
    pub fn error_rate_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors_5xx as f64 * 100.0 / self.requests as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmStatus {
    Ok,
    Alarm,
    InsufficientData,
    /// The deployment names an alarm CloudWatch does not know: treated as failing, since a
    /// safety net that does not exist must not be assumed to hold.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    pub name: String,
    pub status: AlarmStatus,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Pass,
    Fail,
    /// Not enough data to judge (too few requests, no baseline).
    NotJudged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationInput<'a> {
    /// The color receiving the new version.
    pub target: ColorMetrics,
    /// The active color, serving the previous version.
    pub baseline: ColorMetrics,
    pub alarms: &'a [AlarmState],
    pub thresholds: &'a Thresholds,
    /// The baseline p99 remembered from an earlier window, used when the active color no longer
    /// serves enough traffic to measure (at 100 % on the new color).
    pub remembered_baseline_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub alarms_check: CheckOutcome,
    pub error_rate_check: CheckOutcome,
    pub latency_check: CheckOutcome,
    pub error_rate_percent: Option<f64>,
    pub target_p99_ms: Option<f64>,
    /// The baseline actually compared against, measured now or remembered.
    pub baseline_p99_ms: Option<f64>,
    /// Human-readable reasons for every failed or unjudged check.
    pub reasons: Vec<String>,
}

impl Evaluation {
    /// The first failure reason, or a summary when it passed.
    pub fn summary(&self) -> String {
        match self.outcome {
            Outcome::Fail => self.reasons.join("; "),
            Outcome::Pass => "all checks passed".to_string(),
        }
    }
}

fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

fn ms(v: f64) -> String {
    format!("{v:.0}ms")
}

/// Decides one evaluation. Pure: the same numbers always give the same verdict.
pub fn evaluate(input: &EvaluationInput<'_>) -> Evaluation {
    let th = input.thresholds;
    let mut reasons = Vec::new();

    let mut alarms_check = CheckOutcome::Pass;
    for alarm in input.alarms {
        match alarm.status {
            AlarmStatus::Alarm => {
                alarms_check = CheckOutcome::Fail;
                reasons.push(format!(
                    "alarm {} is in ALARM: {}",
                    alarm.name, alarm.reason
                ));
            }
            AlarmStatus::Missing => {
                alarms_check = CheckOutcome::Fail;
                reasons.push(format!("alarm {} does not exist in CloudWatch", alarm.name));
            }
            AlarmStatus::Ok | AlarmStatus::InsufficientData => {}
        }
    }

    let t = input.target;
    let enough = t.requests >= th.min_requests;
    let error_rate_percent = t.error_rate_percent();
    // Below the minimum request count the rate is not trusted, unless the errors alone already
    // exceed what the threshold allows for the minimum count.
    let judged_rate = if enough {
        error_rate_percent
    } else if th.min_requests > 0 {
        Some(t.errors_5xx as f64 * 100.0 / th.min_requests as f64)
    } else {
        None
    };
    let error_rate_check = match judged_rate {
        Some(rate) if rate > th.max_error_rate_percent => {
            reasons.push(format!(
                "error rate {} ({} of {} requests returned 5xx) exceeds {}",
                pct(error_rate_percent.unwrap_or(rate)),
                t.errors_5xx,
                t.requests,
                pct(th.max_error_rate_percent)
            ));
            CheckOutcome::Fail
        }
        Some(_) if enough => CheckOutcome::Pass,
        _ => {
            reasons.push(format!(
                "error rate not judged: {} requests < minimum {}",
                t.requests, th.min_requests
            ));
            CheckOutcome::NotJudged
        }
    };

    let measured_baseline = (input.baseline.requests >= th.min_requests.max(1))
        .then_some(input.baseline.p99_ms)
        .flatten();
    let baseline_p99_ms = measured_baseline.or(input.remembered_baseline_p99_ms);
    let latency_check = match (enough, t.p99_ms, baseline_p99_ms) {
        (true, Some(p99), Some(base)) => {
            let limit = (base * th.max_p99_ratio).max(base + th.p99_tolerance_ms);
            if p99 > limit {
                reasons.push(format!(
                    "p99 latency {} exceeds {} ({}x baseline {}, tolerance {})",
                    ms(p99),
                    ms(limit),
                    th.max_p99_ratio,
                    ms(base),
                    ms(th.p99_tolerance_ms)
                ));
                CheckOutcome::Fail
            } else {
                CheckOutcome::Pass
            }
        }
        (true, None, _) => {
            reasons.push("latency not judged: no p99 data for the new color".to_string());
            CheckOutcome::NotJudged
        }
        (true, Some(_), None) => {
            reasons.push("latency not judged: no baseline p99 from the active color".to_string());
            CheckOutcome::NotJudged
        }
        (false, _, _) => CheckOutcome::NotJudged,
    };

    let failed = [alarms_check, error_rate_check, latency_check].contains(&CheckOutcome::Fail);
    if failed {
        reasons.retain(|r| !r.contains("not judged"));
    }
    Evaluation {
        outcome: if failed { Outcome::Fail } else { Outcome::Pass },
        alarms_check,
        error_rate_check,
        latency_check,
        error_rate_percent,
        target_p99_ms: t.p99_ms,
        baseline_p99_ms,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(requests: u64, errors_5xx: u64, p99_ms: Option<f64>) -> ColorMetrics {
        ColorMetrics {
            requests,
            errors_5xx,
            p99_ms,
        }
    }

    fn run(target: ColorMetrics, baseline: ColorMetrics, alarms: &[AlarmState]) -> Evaluation {
        let th = Thresholds::default();
        evaluate(&EvaluationInput {
            target,
            baseline,
            alarms,
            thresholds: &th,
            remembered_baseline_p99_ms: None,
        })
    }

    const HEALTHY_BLUE: ColorMetrics = ColorMetrics {
        requests: 9000,
        errors_5xx: 1,
        p99_ms: Some(42.0),
    };

    #[test]
    fn healthy_green_passes_with_its_numbers() {
        let e = run(m(1000, 1, Some(45.0)), HEALTHY_BLUE, &[]);
        assert_eq!(e.outcome, Outcome::Pass);
        assert_eq!(e.error_rate_percent, Some(0.1));
        assert_eq!(
            (e.target_p99_ms, e.baseline_p99_ms),
            (Some(45.0), Some(42.0))
        );
        assert!(e.reasons.is_empty(), "{:?}", e.reasons);
    }

    #[test]
    fn error_rate_threshold_edge() {
        // exactly 1.00 % passes, just above fails
        assert_eq!(
            run(m(1000, 10, Some(42.0)), HEALTHY_BLUE, &[]).error_rate_check,
            CheckOutcome::Pass
        );
        let e = run(m(1000, 11, Some(42.0)), HEALTHY_BLUE, &[]);
        assert_eq!(
            (e.outcome, e.error_rate_check),
            (Outcome::Fail, CheckOutcome::Fail)
        );
        assert_eq!(
            e.reasons,
            vec!["error rate 1.10% (11 of 1000 requests returned 5xx) exceeds 1.00%"]
        );
    }

    #[test]
    fn eight_percent_errors_fail() {
        let e = run(m(500, 40, Some(44.0)), HEALTHY_BLUE, &[]);
        assert_eq!(e.outcome, Outcome::Fail);
        assert_eq!(e.error_rate_percent, Some(8.0));
    }

    #[test]
    fn zero_requests_is_not_judged_and_does_not_fail() {
        let e = run(m(0, 0, None), HEALTHY_BLUE, &[]);
        assert_eq!(e.outcome, Outcome::Pass);
        assert_eq!(
            (e.error_rate_check, e.latency_check),
            (CheckOutcome::NotJudged, CheckOutcome::NotJudged)
        );
        assert_eq!(e.error_rate_percent, None);
        assert_eq!(
            e.reasons,
            vec!["error rate not judged: 0 requests < minimum 50"]
        );
    }

    #[test]
    fn few_requests_with_many_errors_still_fail() {
        // 10 errors in 20 requests: below the 50-request minimum, but 10/50 = 20 % > 1 %
        let e = run(m(20, 10, Some(40.0)), HEALTHY_BLUE, &[]);
        assert_eq!(e.error_rate_check, CheckOutcome::Fail);
        assert_eq!(
            e.reasons,
            vec!["error rate 50.00% (10 of 20 requests returned 5xx) exceeds 1.00%"]
        );
        // min_requests edge: 49 requests are not enough, 50 are
        assert_eq!(
            run(m(49, 0, Some(40.0)), HEALTHY_BLUE, &[]).error_rate_check,
            CheckOutcome::NotJudged
        );
        assert_eq!(
            run(m(50, 0, Some(40.0)), HEALTHY_BLUE, &[]).error_rate_check,
            CheckOutcome::Pass
        );
    }

    #[test]
    fn latency_is_judged_against_baseline_with_ratio_and_tolerance() {
        // limit = max(42 * 1.5, 42 + 20) = 63
        assert_eq!(
            run(m(1000, 0, Some(63.0)), HEALTHY_BLUE, &[]).latency_check,
            CheckOutcome::Pass
        );
        let e = run(m(1000, 0, Some(63.5)), HEALTHY_BLUE, &[]);
        assert_eq!(e.latency_check, CheckOutcome::Fail);
        assert_eq!(
            e.reasons,
            vec!["p99 latency 64ms exceeds 63ms (1.5x baseline 42ms, tolerance 20ms)"]
        );
        // tiny latencies: 2ms vs 9ms is within the 20ms noise floor
        let fast_blue = m(1000, 0, Some(2.0));
        assert_eq!(
            run(m(1000, 0, Some(9.0)), fast_blue, &[]).latency_check,
            CheckOutcome::Pass
        );
        assert_eq!(
            run(m(1000, 0, Some(22.5)), fast_blue, &[]).latency_check,
            CheckOutcome::Fail
        );
    }

    #[test]
    fn without_baseline_traffic_the_remembered_baseline_is_used() {
        let th = Thresholds::default();
        let input = EvaluationInput {
            target: m(5000, 0, Some(100.0)),
            baseline: m(0, 0, None),
            alarms: &[],
            thresholds: &th,
            remembered_baseline_p99_ms: Some(42.0),
        };
        let e = evaluate(&input);
        assert_eq!(
            (e.latency_check, e.baseline_p99_ms),
            (CheckOutcome::Fail, Some(42.0))
        );
        let e = evaluate(&EvaluationInput {
            remembered_baseline_p99_ms: None,
            ..input
        });
        assert_eq!(
            (e.outcome, e.latency_check),
            (Outcome::Pass, CheckOutcome::NotJudged)
        );
    }

    #[test]
    fn alarm_in_alarm_or_missing_fails_insufficient_data_does_not() {
        let alarm = |status| AlarmState {
            name: "checkout-dev-latency".into(),
            status,
            reason: "Threshold Crossed".into(),
        };
        let e = run(
            m(1000, 0, Some(42.0)),
            HEALTHY_BLUE,
            &[alarm(AlarmStatus::Alarm)],
        );
        assert_eq!(
            (e.outcome, e.alarms_check),
            (Outcome::Fail, CheckOutcome::Fail)
        );
        assert_eq!(
            e.summary(),
            "alarm checkout-dev-latency is in ALARM: Threshold Crossed"
        );
        let e = run(
            m(1000, 0, Some(42.0)),
            HEALTHY_BLUE,
            &[alarm(AlarmStatus::Missing)],
        );
        assert_eq!(e.outcome, Outcome::Fail);
        for ok in [AlarmStatus::Ok, AlarmStatus::InsufficientData] {
            assert_eq!(
                run(m(1000, 0, Some(42.0)), HEALTHY_BLUE, &[alarm(ok)]).outcome,
                Outcome::Pass
            );
        }
    }
}
