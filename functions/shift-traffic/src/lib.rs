//! Shift traffic: moves the listener to the plan's next step (one write carrying both target
//! groups, read back and verified) after re-checking that the deployment is still live and the
//! new color has healthy targets.

use serde_json::Value;
use shared::contracts::{ExecutionState, NextAction};
use shared::domain::{ApprovalState, Phase, StepRecord, TrafficSplit};
use shared::error::PhaseError;
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

pub async fn handle(deps: &Deps, input: Value) -> Result<ExecutionState, PhaseError> {
    let state = ExecutionState::from_value(input)?;
    let span = tracing::info_span!("shift_traffic", deployment_id = %state.deployment_id);
    run(deps, state).instrument(span).await
}

async fn run(deps: &Deps, mut state: ExecutionState) -> Result<ExecutionState, PhaseError> {
    let mut progress = state.progress()?.clone();
    let req = &state.request;
    let index = progress.step_index.map_or(0, |i| i + 1);
    let weight = req.steps.get(index as usize).ok_or_else(|| {
        PhaseError::Internal(format!(
            "no step {index} in plan {:?}: the plan is already complete",
            req.steps.steps()
        ))
    })?;
    let target = progress.target_color;

    // Never send traffic to a target group without healthy targets.
    let health = deps
        .access
        .targets(&req.reach(&state.deployment_id))
        .await?
        .target_health(req.traffic.target_group(target))
        .await?;
    if health.healthy == 0 {
        return Err(PhaseError::HealthCheckFailed(format!(
            "{} has no healthy targets ({} registered); not shifting {weight}% to it{}",
            target.title(),
            health.registered,
            health
                .problems
                .first()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        )));
    }

    // An environment that needs approval gets no traffic until a person approved.
    if req.approval_timeout_seconds.is_some() {
        let record = shared::ports::recorded(deps.store.as_ref(), &state.deployment_id).await?;
        let approval = record.approval.as_ref().map(|a| a.state);
        if approval != Some(ApprovalState::Approved) {
            return Err(PhaseError::Aborted(format!(
                "deployment {} is not approved ({}); not shifting {weight}% to {}",
                state.deployment_id,
                approval.map_or("approval never requested", ApprovalState::as_str),
                target.title()
            )));
        }
    }

    // The deployment must still be live: a rollback that started meanwhile wins.
    deps.store
        .transition(
            &state.deployment_id,
            Phase::ShiftingTraffic,
            Some(weight),
            None,
        )
        .await
        .map_err(|e| PhaseError::Aborted(format!("not shifting traffic: {e}")))?;

    let split = TrafficSplit::with_percent_on(target, weight)
        .map_err(|e| PhaseError::Internal(format!("step {weight}%: {e}")))?;
    deps.access
        .router(&req.reach(&state.deployment_id))
        .await?
        .set_split(&req.forward_target()?, split)
        .await
        .map_err(|e| PhaseError::traffic_write(e, format!("shifting to {split}")))?;
    // A rollback that began while we wrote must not be overridden: hand over to rollback,
    // which restores the active color again.
    let after = deps.store.deployment(&state.deployment_id).await?;
    if let Some(phase) = after
        .map(|r| r.phase)
        .filter(|p| *p != Phase::ShiftingTraffic)
    {
        return Err(PhaseError::Aborted(format!(
            "deployment {} moved to {phase} while shifting to {split}; rolling back",
            state.deployment_id
        )));
    }
    let now = deps.clock.now();
    deps.store
        .record_step(&StepRecord {
            deployment_id: state.deployment_id.to_string(),
            step_index: index,
            split,
            target_color: target,
            shifted_at: now,
        })
        .await?;
    tracing::info!(
        step = index,
        blue = split.blue(),
        green = split.green(),
        "traffic shifted"
    );

    progress.step_index = Some(index);
    progress.target_weight = weight;
    progress.window_start = Some(now.unix_timestamp());
    progress.next = NextAction::Evaluate;
    progress.wait_seconds = req.timings.step_wait_seconds;
    state.progress = Some(progress);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fakes::sample::{self, World};
    use shared::ports::DeploymentStore as _;

    fn deps(w: &World) -> Deps {
        w.phase_deps()
    }

    async fn begun(w: &World, phase: Phase) {
        let _ = w.store.begin(&sample::record(phase)).await;
    }

    fn input(step_index: Option<u32>) -> Value {
        sample::state_with(&sample::progress(step_index, 0))
    }

    #[tokio::test]
    async fn an_environment_that_needs_approval_gets_no_traffic_until_approved() {
        use shared::domain::{ApprovalDecision, ApprovalState};
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        let mut needs = input(None);
        needs["request"]["approval_timeout_seconds"] = serde_json::json!(3600);
        let d = deps(&w);

        // never requested, then pending: refused, nothing written
        for _ in 0..2 {
            let err = handle(&d, needs.clone()).await;
            assert!(matches!(err, Err(PhaseError::Aborted(_))), "{err:?}");
            let _ = w
                .store
                .await_approval(
                    sample::DEPLOYMENT_ID,
                    "tok",
                    3600,
                    time::macros::datetime!(2025-01-03 10:05:00 UTC),
                )
                .await;
        }
        assert!(w.router.writes().is_empty());

        // approved: the first step goes out
        w.store
            .decide_approval(
                sample::DEPLOYMENT_ID,
                &ApprovalDecision {
                    state: ApprovalState::Approved,
                    by: "arn:aws:iam::123456789012:user/carol".into(),
                    at: time::macros::datetime!(2025-01-03 10:05:00 UTC),
                    comment: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        handle(&d, needs).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.router.split().green(), 10);
    }

    #[tokio::test]
    async fn walks_the_plan_10_25_50_100_with_verified_splits() {
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        let d = deps(&w);
        let mut step = None;
        for expected in [10u16, 25, 50, 100] {
            let out = handle(&d, input(step))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let p = out.progress.unwrap_or_else(|| panic!("no progress"));
            assert_eq!(
                (p.target_weight, p.next, p.wait_seconds),
                (expected, NextAction::Evaluate, 2)
            );
            assert_eq!(w.router.split().green(), expected);
            assert_eq!(w.router.split().blue(), 100 - expected);
            step = p.step_index;
        }
        let steps = w
            .store
            .steps(sample::DEPLOYMENT_ID)
            .await
            .unwrap_or_default();
        assert_eq!(
            steps.iter().map(|s| s.split.green()).collect::<Vec<_>>(),
            vec![10, 25, 50, 100]
        );
        assert_eq!(
            w.store
                .record(sample::DEPLOYMENT_ID)
                .map(|r| r.target_weight),
            Some(100)
        );
    }

    #[tokio::test]
    async fn a_retry_of_the_same_step_writes_the_same_split_and_no_new_step() {
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        let d = deps(&w);
        for _ in 0..2 {
            handle(&d, input(Some(0)))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            w.router
                .writes()
                .iter()
                .map(|s| s.green())
                .collect::<Vec<_>>(),
            vec![25, 25]
        );
        assert_eq!(
            w.store
                .steps(sample::DEPLOYMENT_ID)
                .await
                .map(|s| s.len())
                .unwrap_or(0),
            1
        );
    }

    #[tokio::test]
    async fn never_shifts_to_a_color_without_healthy_targets() {
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        w.targets.set(&sample::tg(sample::GREEN_TG), 2, 0);
        let err = handle(&deps(&w), input(None)).await.err();
        assert_eq!(
            err.map(|e| e.error_type()),
            Some("BlueGreen.HealthCheckFailed")
        );
        assert!(w.router.writes().is_empty());
    }

    #[tokio::test]
    async fn a_rolling_back_deployment_is_not_shifted() {
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        let _ = w
            .store
            .transition(
                sample::DEPLOYMENT_ID,
                Phase::RollingBack,
                None,
                Some("alarm"),
            )
            .await;
        let err = handle(&deps(&w), input(Some(1))).await.err();
        assert_eq!(
            err.as_ref().map(|e| e.error_type()),
            Some("BlueGreen.Aborted")
        );
        assert!(
            err.map(|e| e.to_string().contains("ROLLING_BACK"))
                .unwrap_or(false)
        );
        assert!(w.router.writes().is_empty());
    }

    #[tokio::test]
    async fn a_rollback_that_starts_during_the_write_wins() {
        // GIVEN a rollback begins while the listener is being written
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        let store = w.store.clone();
        *w.router
            .during_write
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(move || {
            if let Some(r) = store
                .records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(sample::DEPLOYMENT_ID)
            {
                r.phase = Phase::RollingBack;
            }
        }));
        // WHEN the shift finishes its write
        let err = handle(&deps(&w), input(None)).await.err();
        // THEN it hands over to rollback instead of recording the step as done
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Aborted"));
        assert!(
            w.store
                .steps(sample::DEPLOYMENT_ID)
                .await
                .map(|s| s.is_empty())
                .unwrap_or(false)
        );
    }

    #[tokio::test]
    async fn throttled_write_is_retryable_and_past_the_last_step_is_an_error() {
        let w = World::default();
        begun(&w, Phase::DeployingGreen).await;
        w.router
            .fail_next_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(shared::error::AdapterError::Transient("Throttling".into()));
        let err = handle(&deps(&w), input(None)).await.err();
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Retryable"));
        let err = handle(&deps(&w), input(Some(3))).await.err();
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Internal"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use shared::domain::Color;

        fn plans() -> impl Strategy<Value = Vec<u32>> {
            prop::collection::btree_set(1u32..100, 0..8).prop_map(|s| {
                let mut v: Vec<u32> = s.into_iter().collect();
                v.push(100);
                v
            })
        }

        fn fail(e: impl std::fmt::Display) -> TestCaseError {
            TestCaseError::fail(e.to_string())
        }

        /// Walks a plan, each step called `repeats[i]` times with the same input (a Lambda
        /// retry), the next step's input as a passing evaluation hands it back.
        async fn walk(
            steps: Vec<u32>,
            repeats: Vec<u8>,
            target: Color,
        ) -> Result<(), TestCaseError> {
            let w = World::default();
            let active = target.other();
            let mut record = sample::record(Phase::DeployingGreen);
            record.active_color = Some(active);
            record.target_color = Some(target);
            w.store.begin(&record).await.map_err(fail)?;
            *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
                TrafficSplit::all_on(active);
            let mut progress = sample::progress(None, 0);
            progress.active_color = active;
            progress.target_color = target;
            let mut input = sample::state_with(&progress);
            input["request"]["steps"] = serde_json::json!(steps);
            let d = deps(&w);
            let mut calls = 0;
            for (i, &weight) in steps.iter().enumerate() {
                let first = handle(&d, input.clone()).await.map_err(fail)?;
                calls += 1;
                for _ in 1..repeats.get(i).copied().unwrap_or(1) {
                    let again = handle(&d, input.clone()).await.map_err(fail)?;
                    calls += 1;
                    prop_assert_eq!(&again, &first, "a retry of step {} answered differently", i);
                }
                // Weights: one write per call, each in range, summing to 100, this step's
                // weight on the target color.
                let writes = w.router.writes();
                prop_assert_eq!(writes.len(), calls);
                for s in &writes {
                    prop_assert_eq!(u32::from(s.blue()) + u32::from(s.green()), 100);
                    prop_assert!(s.blue() <= 999 && s.green() <= 999);
                }
                prop_assert_eq!(
                    writes.last().map(|s| s.weight_of(target)),
                    Some(weight as u16)
                );
                // History: exactly one row per step so far, in order; retries add none and
                // rewrite none.
                let rows = w.store.steps(sample::DEPLOYMENT_ID).await.map_err(fail)?;
                let got: Vec<(u32, u16)> = rows
                    .iter()
                    .map(|r| (r.step_index, r.split.weight_of(target)))
                    .collect();
                let want: Vec<(u32, u16)> = steps[..=i]
                    .iter()
                    .enumerate()
                    .map(|(j, &s)| (j as u32, s as u16))
                    .collect();
                prop_assert_eq!(got, want);
                input = serde_json::to_value(&first).map_err(fail)?;
                input["progress"]["next"] = serde_json::json!("shift");
            }
            // Past the last step: an error, and nothing written.
            let n = w.router.writes().len();
            prop_assert!(handle(&d, input).await.is_err());
            prop_assert_eq!(w.router.writes().len(), n);
            prop_assert_eq!(
                w.store
                    .record(sample::DEPLOYMENT_ID)
                    .map(|r| r.target_weight),
                Some(100)
            );
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Any plan, towards either color, with any step retried: every listener write is
            /// integral weights summing to 100 with the plan's step on the target, a retry
            /// answers the same and the step history holds exactly one row per step.
            /// Whatever the step and however many targets are registered: with none healthy on
            /// the target color, no weight is written and no step recorded; the error names
            /// the health check.
            #[test]
            fn never_shifts_to_a_target_group_without_healthy_targets(
                step in 0usize..4,
                registered in 0u32..20,
            ) {
                let rt = tokio::runtime::Builder::new_current_thread().build().map_err(fail)?;
                rt.block_on(async {
                    let w = World::default();
                    w.store
                        .begin(&sample::record(Phase::DeployingGreen))
                        .await
                        .map_err(fail)?;
                    w.targets.set(&sample::tg(sample::GREEN_TG), registered, 0);
                    let progress = sample::progress(step.checked_sub(1).map(|s| s as u32), 0);
                    let err = handle(&deps(&w), sample::state_with(&progress)).await.err();
                    prop_assert_eq!(
                        err.map(|e| e.error_type()),
                        Some("BlueGreen.HealthCheckFailed")
                    );
                    prop_assert!(w.router.writes().is_empty());
                    prop_assert!(w.store.steps(sample::DEPLOYMENT_ID).await.map_err(fail)?.is_empty());
                    Ok(())
                })?;
            }

            #[test]
            fn any_plan_with_retries_writes_valid_splits_and_one_history_row_per_step(
                steps in plans(),
                repeats in prop::collection::vec(1u8..=3, 8),
                to_blue in any::<bool>(),
            ) {
                let target = if to_blue { Color::Blue } else { Color::Green };
                let rt = tokio::runtime::Builder::new_current_thread().build().map_err(fail)?;
                rt.block_on(walk(steps, repeats, target))?;
            }
        }
    }
}
