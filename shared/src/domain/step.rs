//! What a deployment does after an evaluation's verdict: roll back, shift the next step,
//! evaluate again while verifying at 100 %, or finalize.

use super::{CheckOutcome, Evaluation, Outcome};

/// Where the plan stands when a verdict comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPosition {
    /// The share of traffic on the new color.
    pub target_weight: u16,
    /// Whether the deployment is already verifying (holding 100 %).
    pub verifying: bool,
    /// Verification evaluations passed before this one.
    pub verifications_passed: u32,
    /// Verification evaluations the plan needs at 100 % before it may finalize.
    pub verifications_needed: u32,
}

/// Which check made a failed verdict fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// A CloudWatch alarm is in ALARM.
    Alarm,
    /// The error rate or latency is over its threshold.
    Threshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The verdict failed: roll back.
    RollBack(Breach),
    /// Healthy below 100 %: the next traffic step.
    Shift,
    /// Healthy at 100 %, verification not done: evaluate again after the verification interval.
    /// `begins_verifying` when this is the first verdict at 100 % (the deployment moves to
    /// VERIFYING); `verifications_passed` counts this one when it was a verification check.
    Verify {
        begins_verifying: bool,
        verifications_passed: u32,
    },
    /// Healthy at 100 % with every verification check passed: finalize.
    Finalize {
        begins_verifying: bool,
        verifications_passed: u32,
    },
}

/// The next step after `verdict` at `at`. The first verdict at 100 % is the last step's check,
/// not a verification check: it begins verification, and only later verdicts count.
pub fn next_step(verdict: &Evaluation, at: PlanPosition) -> NextStep {
    if verdict.outcome == Outcome::Fail {
        return NextStep::RollBack(if verdict.alarms_check == CheckOutcome::Fail {
            Breach::Alarm
        } else {
            Breach::Threshold
        });
    }
    if at.target_weight < 100 {
        return NextStep::Shift;
    }
    let begins_verifying = !at.verifying;
    let verifications_passed = if at.verifying {
        at.verifications_passed + 1
    } else {
        at.verifications_passed
    };
    if verifications_passed >= at.verifications_needed {
        NextStep::Finalize {
            begins_verifying,
            verifications_passed,
        }
    } else {
        NextStep::Verify {
            begins_verifying,
            verifications_passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn verdict(outcome: Outcome, alarms: CheckOutcome) -> Evaluation {
        Evaluation {
            outcome,
            alarms_check: alarms,
            error_rate_check: CheckOutcome::Pass,
            latency_check: CheckOutcome::Pass,
            error_rate_percent: None,
            target_p99_ms: None,
            baseline_p99_ms: None,
            reasons: Vec::new(),
        }
    }

    fn at(weight: u16, verifying: bool, passed: u32, needed: u32) -> PlanPosition {
        PlanPosition {
            target_weight: weight,
            verifying,
            verifications_passed: passed,
            verifications_needed: needed,
        }
    }

    #[test]
    fn the_plan_shifts_then_verifies_then_finalizes() {
        let pass = verdict(Outcome::Pass, CheckOutcome::Pass);
        assert_eq!(next_step(&pass, at(25, false, 0, 2)), NextStep::Shift);
        assert_eq!(
            next_step(&pass, at(100, false, 0, 2)),
            NextStep::Verify {
                begins_verifying: true,
                verifications_passed: 0
            }
        );
        assert_eq!(
            next_step(&pass, at(100, true, 0, 2)),
            NextStep::Verify {
                begins_verifying: false,
                verifications_passed: 1
            }
        );
        assert_eq!(
            next_step(&pass, at(100, true, 1, 2)),
            NextStep::Finalize {
                begins_verifying: false,
                verifications_passed: 2
            }
        );
        // no verification asked for: the last step's check finalizes
        assert_eq!(
            next_step(&pass, at(100, false, 0, 0)),
            NextStep::Finalize {
                begins_verifying: true,
                verifications_passed: 0
            }
        );
    }

    #[test]
    fn a_failed_verdict_rolls_back_naming_the_breach() {
        assert_eq!(
            next_step(
                &verdict(Outcome::Fail, CheckOutcome::Fail),
                at(100, true, 5, 2)
            ),
            NextStep::RollBack(Breach::Alarm)
        );
        assert_eq!(
            next_step(
                &verdict(Outcome::Fail, CheckOutcome::Pass),
                at(10, false, 0, 2)
            ),
            NextStep::RollBack(Breach::Threshold)
        );
    }

    proptest! {
        #[test]
        fn only_a_passing_verdict_at_full_traffic_with_enough_checks_finalizes(
            weight in 0u16..=100,
            verifying in any::<bool>(),
            passed in 0u32..10,
            needed in 0u32..10,
            fail in any::<bool>(),
        ) {
            let outcome = if fail { Outcome::Fail } else { Outcome::Pass };
            let step = next_step(&verdict(outcome, CheckOutcome::Pass), at(weight, verifying, passed, needed));
            prop_assert_eq!(matches!(step, NextStep::RollBack(_)), fail);
            prop_assert_eq!(step == NextStep::Shift, !fail && weight < 100);
            if let NextStep::Finalize { verifications_passed, begins_verifying } | NextStep::Verify { verifications_passed, begins_verifying } = step {
                prop_assert_eq!(weight, 100);
                prop_assert_eq!(begins_verifying, !verifying);
                prop_assert_eq!(verifications_passed, passed + u32::from(verifying));
                prop_assert_eq!(matches!(step, NextStep::Finalize { .. }), verifications_passed >= needed);
            }
        }
    }
}
