//! Evaluate: reads the deployment's alarms and both colors' metrics for the window since the
//! last step or check (whole metric periods CloudWatch has published), records the verdict with
//! its numbers and the window judged in the ledger, and either lets the plan go on or fails with
//! a named error that sends the state machine to rollback. When no complete period is published
//! yet, it judges nothing and asks the state machine to evaluate again after a wait.

use serde_json::Value;
use shared::contracts::{ExecutionState, NextAction, Progress};
use shared::domain::{
    Breach, EvaluationInput, EvaluationKind, LedgerEntry, MetricsCompleteness, NextStep, Phase,
    PlanPosition, TrafficSplit, WindowReadiness, evaluate, evaluation_window, metrics_completeness,
    next_step,
};
use shared::error::PhaseError;
use shared::ports::MetricsWindow;
use time::OffsetDateTime;
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

pub async fn handle(deps: &Deps, input: Value) -> Result<ExecutionState, PhaseError> {
    let state = ExecutionState::from_value(input)?;
    let span = tracing::info_span!("evaluate", deployment_id = %state.deployment_id);
    run(deps, state).instrument(span).await
}

async fn run(deps: &Deps, mut state: ExecutionState) -> Result<ExecutionState, PhaseError> {
    let mut progress = state.progress()?.clone();
    let req = &state.request;
    let id = state.deployment_id.clone();

    // A rollback started elsewhere (an alarm, a person) ends the plan here.
    let record = shared::ports::recorded(deps.store.as_ref(), &id).await?;
    if !matches!(record.phase, Phase::ShiftingTraffic | Phase::Verifying) {
        return Err(PhaseError::Aborted(format!(
            "deployment {id} is {}; not evaluating",
            record.phase
        )));
    }

    let step_index = progress
        .step_index
        .ok_or_else(|| PhaseError::Internal("evaluate ran before any traffic step".into()))?;
    let now = deps.clock.now();
    let fallback_start = now.unix_timestamp() - req.timings.step_wait_seconds.max(60) as i64;
    let since =
        OffsetDateTime::from_unix_timestamp(progress.window_start.unwrap_or(fallback_start))
            .map_err(|e| PhaseError::Internal(format!("window start: {e}")))?;
    let window = match evaluation_window(since, now, &req.timings) {
        WindowReadiness::Ready(w) => w,
        WindowReadiness::NotYet { wait_seconds } => {
            tracing::info!(
                step = step_index,
                wait_seconds,
                "no complete published metric period since the window start; evaluating later"
            );
            return Ok(not_yet(state, progress, wait_seconds));
        }
    };
    let target = progress.target_color;
    let metrics = deps
        .access
        .signals(&req.reach(&state.deployment_id))
        .await?
        .color_metrics(&MetricsWindow {
            load_balancer: req.traffic.target()?.load_balancer_dimension(),
            target: req.traffic.target_group(target).clone(),
            baseline: (progress.target_weight < 100)
                .then(|| req.traffic.target_group(target.other()).clone()),
            start: window.start,
            end: window.end,
            period_seconds: window.period_seconds,
        })
        .await?;
    match metrics_completeness(
        &window,
        metrics.target_last_reported,
        progress.metrics_waits,
    ) {
        MetricsCompleteness::Complete => {}
        MetricsCompleteness::NotYet { wait_seconds } => {
            tracing::info!(
                step = step_index,
                window_end = %window.end,
                wait_seconds,
                "the new color's last datapoint is not published yet; evaluating later"
            );
            progress.metrics_waits += 1;
            return Ok(not_yet(state, progress, wait_seconds));
        }
        MetricsCompleteness::MissingTakenAsNoTraffic => tracing::warn!(
            step = step_index,
            window_end = %window.end,
            waits = progress.metrics_waits,
            "the new color's last datapoint never came; judging that period as no traffic"
        ),
    }
    let (target_metrics, baseline_metrics) = (metrics.target, metrics.baseline);
    let alarms = deps
        .access
        .signals(&req.reach(&state.deployment_id))
        .await?
        .alarm_states(&req.alarms)
        .await?;
    let verdict = evaluate(&EvaluationInput {
        target: target_metrics,
        baseline: baseline_metrics,
        alarms: &alarms,
        thresholds: &req.thresholds,
        remembered_baseline_p99_ms: progress.baseline_p99_ms,
    });

    let (kind, verification_index) = if progress.verifying {
        (
            EvaluationKind::Verification,
            progress.verification_evaluations + 1,
        )
    } else {
        (EvaluationKind::Step, 0)
    };
    let split = TrafficSplit::with_percent_on(target, progress.target_weight)
        .map_err(|e| PhaseError::Internal(format!("progress weight: {e}")))?;
    deps.store
        .record_evaluation(&LedgerEntry {
            deployment_id: id.to_string(),
            kind,
            step_index,
            verification_index,
            split,
            target_color: target,
            window_start: window.start,
            window_end: window.end,
            target: target_metrics,
            baseline: baseline_metrics,
            alarms: alarms.clone(),
            evaluation: verdict.clone(),
        })
        .await?;
    tracing::info!(
        step = step_index,
        verification = verification_index,
        outcome = ?verdict.outcome,
        requests = target_metrics.requests,
        errors_5xx = target_metrics.errors_5xx,
        error_rate_percent = verdict.error_rate_percent,
        p99_ms = verdict.target_p99_ms,
        baseline_p99_ms = verdict.baseline_p99_ms,
        "evaluated"
    );

    let step = next_step(
        &verdict,
        PlanPosition {
            target_weight: progress.target_weight,
            verifying: progress.verifying,
            verifications_passed: progress.verification_evaluations,
            verifications_needed: req.timings.verification_evaluations(),
        },
    );
    let (next, wait_seconds, begins_verifying, passed) = match step {
        NextStep::RollBack(breach) => {
            let at = match kind {
                EvaluationKind::Step => format!("at {}% ({split})", progress.target_weight),
                EvaluationKind::Verification => {
                    format!("during verification check {verification_index}")
                }
            };
            let message = format!("{} on {}: {}", at, target.title(), verdict.summary());
            return Err(match breach {
                Breach::Alarm => PhaseError::AlarmBreached(message),
                Breach::Threshold => PhaseError::ThresholdBreached(message),
            });
        }
        NextStep::Shift => (
            NextAction::Shift,
            0,
            false,
            progress.verification_evaluations,
        ),
        NextStep::Verify {
            begins_verifying,
            verifications_passed,
        } => (
            NextAction::Evaluate,
            req.timings.verification_interval_seconds,
            begins_verifying,
            verifications_passed,
        ),
        NextStep::Finalize {
            begins_verifying,
            verifications_passed,
        } => (
            NextAction::Finalize,
            0,
            begins_verifying,
            verifications_passed,
        ),
    };
    progress.baseline_p99_ms = verdict.baseline_p99_ms;
    progress.window_start = Some(window.end.unix_timestamp());
    progress.metrics_waits = 0;
    if begins_verifying {
        deps.store
            .transition(&id, Phase::Verifying, None, None)
            .await
            .map_err(|e| PhaseError::Aborted(format!("not verifying: {e}")))?;
        progress.verifying = true;
    }
    progress.verification_evaluations = passed;
    progress.next = next;
    progress.wait_seconds = wait_seconds;
    state.progress = Some(progress);
    Ok(state)
}

/// The window cannot be judged yet: nothing is recorded, and the state machine waits and
/// evaluates again (Route -> WaitBeforeEvaluate -> Evaluate). Lambdas never sleep.
fn not_yet(mut state: ExecutionState, mut progress: Progress, wait_seconds: u64) -> ExecutionState {
    progress.next = NextAction::Evaluate;
    progress.wait_seconds = wait_seconds;
    state.progress = Some(progress);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{AlarmStatus, CheckOutcome, ColorMetrics, Outcome};
    use shared::fakes::sample::{self, World};
    use shared::ports::DeploymentStore as _;
    use time::macros::datetime;

    fn deps(w: &World) -> Deps {
        w.phase_deps()
    }

    async fn world_at(phase: Phase) -> World {
        let w = World::default();
        let _ = w.store.begin(&sample::record(Phase::DeployingGreen)).await;
        if phase != Phase::DeployingGreen {
            let _ = w
                .store
                .transition(sample::DEPLOYMENT_ID, Phase::ShiftingTraffic, None, None)
                .await;
        }
        if phase == Phase::Verifying {
            let _ = w
                .store
                .transition(sample::DEPLOYMENT_ID, Phase::Verifying, None, None)
                .await;
        }
        w
    }

    fn at_step(index: u32, weight: u16) -> shared::contracts::Progress {
        let mut p = sample::progress(Some(index), weight);
        p.window_start = Some(time::macros::datetime!(2025-01-03 10:00:03 UTC).unix_timestamp());
        p
    }

    fn next(out: &ExecutionState) -> (NextAction, u64) {
        let p = out
            .progress
            .as_ref()
            .unwrap_or_else(|| panic!("no progress"));
        (p.next, p.wait_seconds)
    }

    #[tokio::test]
    async fn a_healthy_step_moves_on_and_records_the_numbers() {
        let w = world_at(Phase::ShiftingTraffic).await;
        let out = handle(&deps(&w), sample::state_with(&at_step(1, 25)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next(&out), (NextAction::Shift, 0));
        let ledger = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert_eq!(ledger.len(), 1);
        let e = &ledger[0];
        assert_eq!((e.split.blue(), e.split.green()), (75, 25));
        assert_eq!((e.target.requests, e.baseline.p99_ms), (1000, Some(42.0)));
        assert_eq!(e.evaluation.outcome, Outcome::Pass);
        assert_eq!(e.alarms[0].status, AlarmStatus::Ok);
        // the window runs from the shift to now, for the two target groups behind the listener
        let windows = w
            .signals
            .windows
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        assert_eq!(
            windows[0].load_balancer,
            "app/bg-checkout-dev/50dc6c495c0c9188"
        );
        assert_eq!(windows[0].target, sample::tg(sample::GREEN_TG));
        assert_eq!(windows[0].baseline, Some(sample::tg(sample::BLUE_TG)));
        assert_eq!((windows[0].end - windows[0].start).whole_seconds(), 1);
    }

    /// The sample state with production metric timings (60 s periods, 60 s delay), green's
    /// window starting at `since`, the clock at 10:00:05.
    fn production_timings_since(p: &shared::contracts::Progress, since: OffsetDateTime) -> Value {
        let mut p = p.clone();
        p.window_start = Some(since.unix_timestamp());
        let mut v = sample::state_with(&p);
        v["request"]["timings"]["metrics_period_seconds"] = 60.into();
        v["request"]["timings"]["metrics_delay_seconds"] = 60.into();
        v["request"]["timings"]["verification_interval_seconds"] = 60.into();
        v
    }

    fn windows_asked(w: &World) -> Vec<(OffsetDateTime, OffsetDateTime, u64)> {
        w.signals
            .windows
            .lock()
            .map(|w| {
                w.iter()
                    .map(|w| (w.start, w.end, w.period_seconds))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_window_is_whole_published_minutes_and_the_ledger_records_it() {
        // GIVEN green took 25 % at 09:57:30; it is 10:00:05, metrics are published 60 s late
        let w = world_at(Phase::ShiftingTraffic).await;
        let input = production_timings_since(&at_step(1, 25), datetime!(2025-01-03 09:57:30 UTC));

        // WHEN
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // THEN 09:58-09:59 is judged: not the partial minute of the shift, not the minute
        // still being published, never up to "now"
        let (start, end) = (
            datetime!(2025-01-03 09:58:00 UTC),
            datetime!(2025-01-03 09:59:00 UTC),
        );
        assert_eq!(windows_asked(&w), vec![(start, end, 60)]);
        let ledger = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert_eq!(
            ledger
                .iter()
                .map(|e| (e.window_start, e.window_end))
                .collect::<Vec<_>>(),
            vec![(start, end)]
        );
        // the next window starts where this one ended
        assert_eq!(
            out.progress.and_then(|p| p.window_start),
            Some(end.unix_timestamp())
        );
    }

    #[tokio::test]
    async fn no_complete_published_minute_yet_is_not_yet_and_judges_nothing() {
        // GIVEN green took 25 % at 09:59:30: at 10:00:05 only a partial minute has passed
        let w = world_at(Phase::ShiftingTraffic).await;
        let input = production_timings_since(&at_step(1, 25), datetime!(2025-01-03 09:59:30 UTC));

        // WHEN
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // THEN evaluate again once 10:00-10:01 is published (10:02:00), through the state
        // machine's wait; nothing is read or recorded
        assert_eq!(next(&out), (NextAction::Evaluate, 115));
        assert!(windows_asked(&w).is_empty());
        assert_eq!(
            w.store
                .ledger(sample::DEPLOYMENT_ID)
                .await
                .map(|l| l.len())
                .unwrap_or(9),
            0
        );
        assert_eq!(
            out.progress.and_then(|p| p.window_start),
            Some(datetime!(2025-01-03 09:59:30 UTC).unix_timestamp())
        );
    }

    #[tokio::test]
    async fn a_missing_last_datapoint_is_not_yet_not_no_traffic() {
        // GIVEN green's last minute (09:58-09:59) is not in CloudWatch yet; the minute before
        // holds too few requests to judge, so taking the gap as "no traffic" would pass unjudged
        let w = world_at(Phase::ShiftingTraffic).await;
        *w.signals
            .unpublished_periods
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = 1;
        w.signals.set_target(ColorMetrics {
            requests: 20,
            errors_5xx: 0,
            p99_ms: Some(45.0),
        });
        let since = datetime!(2025-01-03 09:56:30 UTC);
        let input = production_timings_since(&at_step(1, 25), since);

        // WHEN
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // THEN nothing is judged: evaluate again in one period, same window start
        assert_eq!(next(&out), (NextAction::Evaluate, 60));
        let ledger = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert!(ledger.is_empty(), "{ledger:?}");
        let p = out
            .progress
            .clone()
            .unwrap_or_else(|| panic!("no progress"));
        assert_eq!(
            (p.window_start, p.metrics_waits),
            (Some(since.unix_timestamp()), 1)
        );

        // WHEN a minute later the datapoints are in
        *w.signals
            .unpublished_periods
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = 0;
        w.signals.set_target(ColorMetrics {
            requests: 1500,
            errors_5xx: 0,
            p99_ms: Some(45.0),
        });
        w.clock.advance(60);
        let out = handle(&deps(&w), serde_json::to_value(out).unwrap_or_default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // THEN the whole window is judged and recorded, through 10:00
        assert_eq!(next(&out), (NextAction::Shift, 0));
        let ledger = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert_eq!(
            ledger
                .iter()
                .map(|e| (e.window_start, e.window_end, e.target.requests))
                .collect::<Vec<_>>(),
            vec![(
                datetime!(2025-01-03 09:57:00 UTC),
                datetime!(2025-01-03 10:00:00 UTC),
                1500
            )]
        );
        assert_eq!(ledger[0].evaluation.error_rate_check, CheckOutcome::Pass);
        assert_eq!(out.progress.map(|p| p.metrics_waits), Some(0));
    }

    #[tokio::test]
    async fn a_datapoint_that_never_comes_is_no_traffic_after_the_late_waits() {
        // GIVEN green served nothing in its last minute (ALB then reports no datapoint)
        let w = world_at(Phase::ShiftingTraffic).await;
        *w.signals
            .unpublished_periods
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = 1;
        let mut input =
            production_timings_since(&at_step(1, 25), datetime!(2025-01-03 09:56:30 UTC));
        let mut seen = vec![];
        for _ in 0..=shared::domain::MAX_LATE_METRICS_WAITS {
            let out = handle(&deps(&w), input)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            seen.push(next(&out));
            input = serde_json::to_value(out).unwrap_or_default();
            w.clock.advance(60);
        }
        // THEN it waits twice, then judges the window as it is
        assert_eq!(
            seen,
            vec![
                (NextAction::Evaluate, 60),
                (NextAction::Evaluate, 60),
                (NextAction::Shift, 0)
            ]
        );
        assert_eq!(
            w.store
                .ledger(sample::DEPLOYMENT_ID)
                .await
                .map(|l| l.len())
                .unwrap_or(0),
            1
        );
    }

    #[tokio::test]
    async fn eight_percent_errors_fail_with_the_numbers() {
        let w = world_at(Phase::ShiftingTraffic).await;
        w.signals.set_target(ColorMetrics {
            requests: 500,
            errors_5xx: 40,
            p99_ms: Some(48.0),
        });
        let err = handle(&deps(&w), sample::state_with(&at_step(1, 25)))
            .await
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert_eq!(err.error_type(), "BlueGreen.ThresholdBreached");
        assert_eq!(
            err.to_string(),
            "at 25% (Blue: 75% | Green: 25%) on Green: error rate 8.00% (40 of 500 requests returned 5xx) exceeds 1.00%"
        );
        let ledger = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert_eq!(ledger[0].evaluation.outcome, Outcome::Fail);
    }

    #[tokio::test]
    async fn an_alarm_in_alarm_is_alarm_breached() {
        let w = world_at(Phase::Verifying).await;
        w.signals.set_alarm(
            sample::ALARM,
            AlarmStatus::Alarm,
            "Threshold Crossed: 5xx > 5%",
        );
        let mut p = at_step(3, 100);
        p.verifying = true;
        p.verification_evaluations = 1;
        let err = handle(&deps(&w), sample::state_with(&p))
            .await
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert_eq!(err.error_type(), "BlueGreen.AlarmBreached");
        assert!(
            err.to_string().starts_with(
                "during verification check 2 on Green: alarm checkout-dev-green-5xx is in ALARM"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn verification_runs_the_window_then_finalizes() {
        // 3 s window every 1 s = 3 verification checks after the 100% step check
        let w = world_at(Phase::ShiftingTraffic).await;
        let d = deps(&w);
        let mut input = sample::state_with(&at_step(3, 100));
        let mut seen = vec![];
        loop {
            let out = handle(&d, input).await.unwrap_or_else(|e| panic!("{e}"));
            seen.push(next(&out));
            if next(&out).0 == NextAction::Finalize {
                break;
            }
            assert!(seen.len() < 10, "never finalized");
            input = serde_json::to_value(out).unwrap_or_default();
            w.clock.advance(1);
        }
        assert_eq!(
            seen,
            vec![
                (NextAction::Evaluate, 1),
                (NextAction::Evaluate, 1),
                (NextAction::Evaluate, 1),
                (NextAction::Finalize, 0)
            ]
        );
        assert_eq!(
            w.store.record(sample::DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::Verifying)
        );
        // At 100 % blue serves nothing: no window asks for its metrics.
        let baselines: Vec<_> = w
            .signals
            .windows
            .lock()
            .map(|w| w.iter().map(|w| w.baseline.clone()).collect())
            .unwrap_or_default();
        assert_eq!(baselines, vec![None; 4]);
        let kinds: Vec<_> = w
            .store
            .ledger(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default()
            .iter()
            .map(|e| (e.kind, e.verification_index))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EvaluationKind::Step, 0),
                (EvaluationKind::Verification, 1),
                (EvaluationKind::Verification, 2),
                (EvaluationKind::Verification, 3)
            ]
        );
    }

    #[tokio::test]
    async fn at_100_percent_the_remembered_baseline_is_used() {
        let w = world_at(Phase::ShiftingTraffic).await;
        w.signals.set_baseline(ColorMetrics::default());
        w.signals.set_target(ColorMetrics {
            requests: 5000,
            errors_5xx: 0,
            p99_ms: Some(200.0),
        });
        let mut p = at_step(3, 100);
        p.baseline_p99_ms = Some(42.0);
        let err = handle(&deps(&w), sample::state_with(&p)).await.err();
        assert_eq!(
            err.map(|e| e.error_type()),
            Some("BlueGreen.ThresholdBreached")
        );
    }

    #[tokio::test]
    async fn a_rolled_back_deployment_is_not_evaluated_and_retries_do_not_duplicate() {
        let w = world_at(Phase::ShiftingTraffic).await;
        let d = deps(&w);
        for _ in 0..2 {
            handle(&d, sample::state_with(&at_step(0, 10)))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            w.store
                .ledger(sample::DEPLOYMENT_ID)
                .await
                .map(|l| l.len())
                .unwrap_or(0),
            1
        );
        let _ = w
            .store
            .transition(
                sample::DEPLOYMENT_ID,
                Phase::RollingBack,
                None,
                Some("alarm"),
            )
            .await;
        let err = handle(&d, sample::state_with(&at_step(1, 25))).await.err();
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Aborted"));
    }
}
