//! Deploy green: puts the new image on the standby color's compute and reports whether its
//! targets are healthy. The state machine calls it again after each wait until green is ready
//! or the health timeout is spent; every call is idempotent.

use serde_json::Value;
use shared::contracts::{ExecutionState, NextAction, Progress};
use shared::domain::{
    ActiveColorUnknown, AlarmStatus, Color, DeploymentRecord, DeploymentStatus, GreenReadiness,
    Phase, ReadinessCheck, ReadinessSummary, active_at_start,
};
use shared::error::PhaseError;
use shared::ports::{BeginOutcome, Release};
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

pub async fn handle(deps: &Deps, input: Value) -> Result<ExecutionState, PhaseError> {
    let state = ExecutionState::from_value(input)?;
    let span = tracing::info_span!("deploy_green", deployment_id = %state.deployment_id);
    run(deps, state).instrument(span).await
}

async fn run(deps: &Deps, mut state: ExecutionState) -> Result<ExecutionState, PhaseError> {
    let progress = match state.progress.take() {
        Some(p) => p,
        None => begin(deps, &mut state).await?,
    };
    // Once the deployment holds the environment, a refusal must still go through rollback,
    // which records why and releases the lock: it is no longer a request to reject.
    roll_out(deps, state, progress).await.map_err(|e| match e {
        PhaseError::InvalidInput(m) | PhaseError::Conflict(m) => PhaseError::Internal(m),
        other => other,
    })
}

async fn roll_out(
    deps: &Deps,
    mut state: ExecutionState,
    mut progress: Progress,
) -> Result<ExecutionState, PhaseError> {
    let req = &state.request;
    let target = progress.target_color;
    let workload = req.workload(target);
    let compute = deps
        .access
        .compute(&req.reach(&state.deployment_id), workload.platform)
        .await?;
    let image = req.image.to_string();
    let version = req.version.to_string();
    let handle = compute
        .deploy_image(
            &workload,
            &Release {
                image: &image,
                version: &version,
                deployment_id: &state.deployment_id,
            },
        )
        .await?;
    let readiness = compute.readiness(&workload, &handle).await?;
    let health = deps
        .access
        .targets(&req.reach(&state.deployment_id))
        .await?
        .target_health(req.traffic.target_group(target))
        .await?;
    progress.green_polls += 1;

    let check = ReadinessCheck {
        rollout_complete: readiness.ready,
        rollout_failed: readiness.failed.as_deref(),
        desired: readiness.desired,
        healthy_targets: health.healthy,
        checks: progress.green_polls,
        max_checks: req.timings.max_health_polls(),
    };
    let verdict = check.judge();
    let revision = readiness.revision.clone().unwrap_or(handle);
    tracing::info!(
        color = %target,
        revision = %revision,
        running = readiness.running,
        desired = readiness.desired,
        healthy_targets = health.healthy,
        registered_targets = health.registered,
        verdict = ?verdict,
        poll = progress.green_polls,
        "green readiness"
    );
    match verdict {
        GreenReadiness::Ready => {
            deps.store
                .record_readiness(
                    &state.deployment_id,
                    &ReadinessSummary {
                        platform: workload.platform,
                        revision,
                        running: readiness.running,
                        desired: readiness.desired,
                        healthy_targets: health.healthy,
                        registered_targets: health.registered,
                        checks: progress.green_polls,
                    },
                )
                .await?;
            // Environments that need a person's approval wait for it before any traffic moves.
            progress.next = match req.approval_timeout_seconds {
                Some(timeout) => {
                    state.approval_request = Some(
                        shared::report::approval_request(&state.deployment_id, req, timeout)
                            .join("\n"),
                    );
                    NextAction::AwaitApproval
                }
                None => NextAction::Shift,
            };
            progress.wait_seconds = 0;
        }
        GreenReadiness::Failed(why) => {
            return Err(PhaseError::HealthCheckFailed(format!(
                "{} ({}) cannot become ready: {why}",
                target.title(),
                workload.describe()
            )));
        }
        GreenReadiness::TimedOut => {
            let mut reasons = vec![format!(
                "{}/{} targets healthy",
                health.healthy,
                check.wanted_targets()
            )];
            reasons.extend(health.problems.iter().take(3).cloned());
            reasons.extend(readiness.reasons.iter().cloned());
            return Err(PhaseError::HealthCheckFailed(format!(
                "health check timeout: {} ({}) did not become healthy within {}s: {}",
                target.title(),
                workload.name,
                req.timings.health_timeout_seconds,
                reasons.join("; ")
            )));
        }
        GreenReadiness::Waiting => {
            progress.next = NextAction::AwaitGreen;
            progress.wait_seconds = req.timings.health_poll_seconds;
        }
    }
    state.progress = Some(progress);
    Ok(state)
}

/// First call: apply the registry to the input, decide the colors, check the alarms exist,
/// create the record and take the lock.
async fn begin(deps: &Deps, state: &mut ExecutionState) -> Result<Progress, PhaseError> {
    // Before anything can fail: the execution is in history from here on, whatever ends it.
    let requested = state.request.requested_record(
        &state.deployment_id,
        &state.execution_arn,
        state.started_at,
    );
    deps.store.record_request(&requested).await?;
    // The environment's policy, not the input, decides; the phases after this one read the
    // governed request from the execution state.
    let governed = shared::govern::govern(deps.registry.as_ref(), &mut state.request).await?;
    if !governed.replaced.is_empty() {
        tracing::warn!(
            replaced = ?governed.replaced,
            registered = governed.registered,
            "the execution input differed from the registry; the registry's values apply"
        );
    }
    let state = &*state;
    let req = &state.request;
    let requested =
        req.requested_record(&state.deployment_id, &state.execution_arn, state.started_at);
    let fwd = req.forward_target()?;

    let missing: Vec<String> = deps
        .access
        .signals(&req.reach(&state.deployment_id))
        .await?
        .alarm_states(&req.alarms)
        .await?
        .into_iter()
        .filter(|a| a.status == AlarmStatus::Missing)
        .map(|a| a.name)
        .collect();
    if !missing.is_empty() {
        return Err(PhaseError::InvalidInput(format!(
            "alarms {missing:?} do not exist in CloudWatch: create them or remove them from the request"
        )));
    }

    let split = deps
        .access
        .router(&req.reach(&state.deployment_id))
        .await?
        .current_split(&fwd)
        .await?;
    let env = deps
        .store
        .environment(&req.service, &req.environment)
        .await?;
    let recorded = env.as_ref().and_then(|e| e.active_color);
    let ours = env
        .as_ref()
        .is_some_and(|e| e.active_deployment.as_deref() == Some(state.deployment_id.as_str()));
    let active = match active_at_start(recorded, split.sole_color(), ours) {
        Ok(c) => c,
        Err(ActiveColorUnknown::ListenerDisagrees { recorded: r }) => {
            return Err(PhaseError::Conflict(format!(
                "the listener is at {split}, but {}/{} is recorded with {} active{}: restore 100% to the active color (or finish the running deployment) before deploying",
                req.service,
                req.environment,
                r.title(),
                env.as_ref()
                    .and_then(|e| e.active_deployment.as_deref())
                    .map(|d| format!(" and deployment {d} running"))
                    .unwrap_or_default()
            )));
        }
        Err(ActiveColorUnknown::Split) => {
            return Err(PhaseError::Conflict(format!(
                "cannot tell the active color: the listener is at {split} and {}/{} has no recorded state; put 100% on one color first",
                req.service, req.environment
            )));
        }
    };
    let target = active.other();
    // An image pinned by digest carries no version: the environment's record knows it.
    let previous_version = running_version(deps, state, active)
        .await?
        .or_else(|| env.as_ref().and_then(|e| e.active_version.clone()));
    let replaced_version = running_version(deps, state, target)
        .await?
        .or_else(|| env.as_ref().and_then(|e| e.standby_version.clone()));

    let record = DeploymentRecord {
        active_color: Some(active),
        target_color: Some(target),
        previous_version,
        replaced_version,
        phase: Phase::DeployingGreen,
        status: DeploymentStatus::of(Phase::DeployingGreen),
        ..requested
    };
    let (active, target) = match deps.store.begin(&record).await? {
        BeginOutcome::Started => {
            tracing::info!(active = %active, target = %target, version = %req.version, "deployment started");
            (active, target)
        }
        BeginOutcome::AlreadyStarted(existing) => match existing.colors() {
            Some(colors) if !existing.phase.is_terminal() => colors,
            // Ended meanwhile (rolled back by a person or an alarm before it began): the
            // deployment left this phase, and the rollback this leads to finds it finished and
            // changes nothing.
            _ => {
                return Err(PhaseError::Aborted(format!(
                    "deployment {} already ended ({}): {}",
                    existing.id,
                    existing.phase,
                    existing.reason.as_deref().unwrap_or("no reason recorded")
                )));
            }
        },
        BeginOutcome::Locked { by } => {
            return Err(PhaseError::Conflict(format!(
                "{}/{} already has a deployment running: {by}; wait for it to finish or roll it back",
                req.service, req.environment
            )));
        }
    };
    Ok(Progress {
        next: NextAction::AwaitGreen,
        wait_seconds: 0,
        active_color: active,
        target_color: target,
        green_polls: 0,
        step_index: None,
        target_weight: 0,
        window_start: None,
        metrics_waits: 0,
        verifying: false,
        verification_evaluations: 0,
        baseline_p99_ms: None,
    })
}

/// The version a color runs, read from its image tag.
async fn running_version(
    deps: &Deps,
    state: &ExecutionState,
    color: Color,
) -> Result<Option<String>, PhaseError> {
    let workload = state.request.workload(color);
    let image = deps
        .access
        .compute(
            &state.request.reach(&state.deployment_id),
            workload.platform,
        )
        .await?
        .current_image(&workload)
        .await
        .map_err(|e| match e {
            // The environment names a workload that is not there: refuse before anything
            // changes.
            shared::error::AdapterError::NotFound(m) => PhaseError::InvalidInput(format!(
                "{} of {} does not exist: {m}",
                workload.describe(),
                color.title()
            )),
            other => other.into(),
        })?;
    Ok(image
        .and_then(|i| shared::domain::ImageRef::parse(&i).ok())
        .and_then(|i| {
            i.tag()
                .and_then(|t| shared::domain::Version::parse(t).ok())
                .map(|v| v.to_string())
                .or_else(|| i.tag().map(str::to_string))
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::TrafficSplit;
    use shared::fakes::sample::{self, World};
    use shared::ports::Registry;

    fn deps(w: &World) -> Deps {
        w.phase_deps()
    }

    fn ok(r: Result<ExecutionState, PhaseError>) -> ExecutionState {
        r.unwrap_or_else(|e| panic!("{}: {e}", e.error_type()))
    }

    #[tokio::test]
    async fn first_call_deploys_to_the_standby_color_and_records_the_deployment() {
        // GIVEN blue active on 1.2.0 and green healthy
        let w = World::default();
        // WHEN deploy-green runs
        let out = ok(handle(&deps(&w), sample::state(sample::request())).await);
        // THEN green runs 1.3.0, the record says blue -> green from 1.2.0, and the plan moves on
        let p = out
            .progress
            .clone()
            .unwrap_or_else(|| panic!("no progress"));
        assert_eq!(
            (p.active_color, p.target_color),
            (Color::Blue, Color::Green)
        );
        assert_eq!(p.next, NextAction::Shift);
        assert_eq!(
            w.compute.image_of("checkout-green").as_deref(),
            Some(sample::IMAGE_V130)
        );
        assert_eq!(
            w.compute.image_of("checkout-blue").as_deref(),
            Some(sample::IMAGE_V120)
        );
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.previous_version.as_deref(), Some("1.2.0"));
        assert_eq!(r.replaced_version.as_deref(), Some("1.2.0"));
        assert_eq!(r.phase, Phase::DeployingGreen);
        let ready = r
            .readiness
            .unwrap_or_else(|| panic!("readiness not recorded"));
        assert_eq!(
            (
                ready.running,
                ready.desired,
                ready.healthy_targets,
                ready.checks
            ),
            (2, 2, 2, 1)
        );
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some(sample::DEPLOYMENT_ID.into())
        );
        assert!(
            w.router.writes().is_empty(),
            "deploy-green must never move traffic"
        );
    }

    /// Finding 1 of the security review: a direct StartExecution decides nothing the registry
    /// decides. Its missing approval is added, its protected environment refuses it before
    /// anything is deployed or locked, and an unregistered environment acts in the controller's
    /// account only.
    #[tokio::test]
    async fn the_registry_not_the_execution_input_decides_approval_and_protection() {
        // GIVEN dev registered as needing approval, and an input that does not ask for it
        let w = World::default().with_registry().await;
        let mut env = World::environment_config();
        env.approval = Some(shared::domain::ApprovalPolicy {
            required: true,
            timeout_seconds: 900,
        });
        w.registry.put_environment(&env).await.unwrap();
        let out = ok(handle(&deps(&w), sample::state(sample::request())).await);
        // THEN green, once ready, waits for a person, for the registry's timeout
        assert_eq!(
            out.progress.as_ref().map(|p| p.next),
            Some(NextAction::AwaitApproval)
        );
        assert_eq!(out.request.approval_timeout_seconds, Some(900));

        // GIVEN prd (protected by default) registered, and an input that is no promotion
        let w = World::default().with_registry().await;
        let mut prd = World::environment_config();
        prd.environment = shared::fakes::sample::id("prd");
        w.registry.put_environment(&prd).await.unwrap();
        let mut req = sample::request();
        req["environment"] = "prd".into();
        let before = w.compute.image_of("checkout-green");
        let e = handle(&deps(&w), sample::state(req)).await.unwrap_err();
        // THEN it is refused by name before any deployment or lock; history says why
        assert_eq!(e.error_type(), "BlueGreen.InvalidInput");
        assert!(e.to_string().contains("checkout/prd is protected"), "{e}");
        assert_eq!(w.compute.image_of("checkout-green"), before);
        assert_eq!(
            w.store
                .env("checkout", "prd")
                .and_then(|e| e.active_deployment),
            None
        );
        assert!(w.store.record(sample::DEPLOYMENT_ID).is_some());

        // GIVEN an unregistered environment and an input naming a role
        let w = World::default();
        let mut req = sample::request();
        req["role_arn"] = "arn:aws:iam::555555555555:role/another-team".into();
        let e = handle(&deps(&w), sample::state(req)).await.unwrap_err();
        assert!(e.to_string().contains("not in the registry"), "{e}");
        assert!(
            w.access.roles().is_empty(),
            "no call was made with the role"
        );
    }

    #[tokio::test]
    async fn the_environment_role_is_used_for_every_aws_call_outside_the_table() {
        let w = World::default().with_registry().await;
        let mut env = World::environment_config();
        env.role_arn = Some(shared::fakes::sample::id(
            "arn:aws:iam::210987654321:role/bluegreen-prd",
        ));
        w.registry.put_environment(&env).await.unwrap();
        // the input names another role: the registry's applies
        let mut req = sample::request();
        req["role_arn"] = "arn:aws:iam::210987654321:role/somebody-elses".into();
        ok(handle(&deps(&w), sample::state(req)).await);
        let roles = w.access.roles();
        assert!(!roles.is_empty());
        assert!(
            roles
                .iter()
                .all(|r| r.as_deref() == Some("arn:aws:iam::210987654321:role/bluegreen-prd")),
            "{roles:?}"
        );
        // every session acts for this deployment's registry key and is named after it
        let reaches = w.access.reaches.lock().unwrap().clone();
        assert!(
            reaches.iter().all(|r| (
                r.service.as_str(),
                r.environment.as_str(),
                r.on_behalf_of.as_str()
            ) == ("checkout", "dev", sample::DEPLOYMENT_ID)),
            "{reaches:?}"
        );
        let record = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(
            record.role_arn.as_deref(),
            Some("arn:aws:iam::210987654321:role/bluegreen-prd")
        );
    }

    #[tokio::test]
    async fn running_twice_changes_nothing_more() {
        let w = World::default();
        let first = ok(handle(&deps(&w), sample::state(sample::request())).await);
        let mut input = sample::state(sample::request());
        input["progress"] = serde_json::to_value(first.progress.clone()).unwrap_or_default();
        let _ = ok(handle(&deps(&w), sample::state(sample::request())).await);
        let _ = ok(handle(&deps(&w), input).await);
        assert_eq!(w.compute.deploys.lock().map(|d| d.len()).unwrap_or(0), 1);
        assert_eq!(w.store.records.lock().map(|r| r.len()).unwrap_or(0), 1);
    }

    #[tokio::test]
    async fn green_not_ready_asks_to_wait_then_times_out_with_the_reasons() {
        let w = World::default();
        w.compute
            .never_ready("checkout-green", "rollout IN_PROGRESS: 0/2 tasks running");
        w.targets.set(&sample::tg(sample::GREEN_TG), 2, 0);
        let d = deps(&w);
        let mut input = sample::state(sample::request());
        // health_timeout 3s / poll 1s = 3 polls
        for poll in 1..=2 {
            let out = ok(handle(&d, input.clone()).await);
            let p = out
                .progress
                .clone()
                .unwrap_or_else(|| panic!("no progress"));
            assert_eq!(
                (p.next, p.wait_seconds, p.green_polls),
                (NextAction::AwaitGreen, 1, poll)
            );
            input = serde_json::to_value(out).unwrap_or_default();
        }
        let err = handle(&d, input)
            .await
            .err()
            .unwrap_or_else(|| panic!("third poll should time out"));
        assert_eq!(err.error_type(), "BlueGreen.HealthCheckFailed");
        let msg = err.to_string();
        assert!(msg.contains("0/2 targets healthy"), "{msg}");
        assert!(msg.contains("Target.FailedHealthChecks"), "{msg}");
        assert!(msg.contains("rollout IN_PROGRESS"), "{msg}");
        assert!(w.router.writes().is_empty());
    }

    #[tokio::test]
    async fn a_workload_that_does_not_exist_is_refused_before_anything_changes() {
        let w = World::default();
        let mut input = sample::state(sample::request());
        input["request"]["compute"]["green_service"] = "checkout-gren".into();
        let err = handle(&deps(&w), input)
            .await
            .err()
            .unwrap_or_else(|| panic!("a missing service must be refused"));
        assert_eq!(err.error_type(), "BlueGreen.InvalidInput", "{err}");
        assert!(
            err.to_string()
                .contains("service checkout-gren in cluster checkout-dev of Green does not exist"),
            "{err}"
        );
        assert!(w.router.writes().is_empty());
        assert!(
            w.compute
                .deploys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
        );
        let lock = w
            .store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment);
        assert_eq!(lock, None, "the environment was not taken");
    }

    #[tokio::test]
    async fn a_rollout_that_cannot_succeed_fails_on_the_first_poll_before_any_traffic_moves() {
        let w = World::default();
        w.compute.fail_rollout(
            "checkout-green",
            "pod checkout-green-5c6b7f9d8e-zt9wd container app is ImagePullBackOff",
        );
        w.targets.set(&sample::tg(sample::GREEN_TG), 2, 0);
        let err = handle(&deps(&w), sample::state(sample::request()))
            .await
            .err()
            .unwrap_or_else(|| panic!("the first poll should fail"));
        assert_eq!(err.error_type(), "BlueGreen.HealthCheckFailed");
        let msg = err.to_string();
        assert!(
            msg.contains("Green (service checkout-green in cluster checkout-dev) cannot become ready: pod checkout-green-5c6b7f9d8e-zt9wd container app is ImagePullBackOff"),
            "{msg}"
        );
        assert!(w.router.writes().is_empty());
    }

    #[tokio::test]
    async fn a_deployment_a_person_ended_before_it_began_is_aborted_not_an_internal_error() {
        let w = World::default();
        let mut ended = sample::record(Phase::DeployingGreen);
        ended.finish(
            Phase::RolledBack,
            time::macros::datetime!(2025-01-03 10:00:30 UTC),
            Some("rolled back by bob@example.com".into()),
        );
        w.store
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ended.id.clone(), ended);
        let err = handle(&deps(&w), sample::state(sample::request()))
            .await
            .err()
            .unwrap_or_else(|| panic!("an ended deployment must not begin"));
        assert_eq!(err.error_type(), "BlueGreen.Aborted", "{err}");
        assert!(
            err.to_string().contains("already ended (ROLLED_BACK)"),
            "{err}"
        );
        assert!(
            w.compute
                .deploys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_second_deployment_is_refused_naming_the_running_one() {
        let w = World::default();
        ok(handle(&deps(&w), sample::state(sample::request())).await);
        let mut other = sample::state(sample::request());
        other["deployment_id"] = "checkout-dev-1-3-0-0002".into();
        other["execution_arn"] =
            "arn:aws:states:us-east-1:123456789012:execution:blue-green:checkout-dev-1-3-0-0002"
                .into();
        let err = handle(&deps(&w), other)
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(err.error_type(), "BlueGreen.Conflict");
        assert!(err.to_string().contains(sample::DEPLOYMENT_ID), "{err}");
    }

    #[tokio::test]
    async fn a_platform_refusal_after_the_lock_is_taken_goes_to_rollback_not_rejection() {
        // GIVEN the green service disappeared between the checks and the deploy
        let w = World::default();
        let d = deps(&w);
        let first = ok(handle(&d, sample::state(sample::request())).await);
        w.compute
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove("checkout-green");
        // WHEN the next readiness poll runs
        let err = handle(&d, serde_json::to_value(first).unwrap_or_default())
            .await
            .err();
        // THEN it is not a BlueGreen.InvalidInput/Conflict (which end without rollback)
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Internal"));
    }

    #[tokio::test]
    async fn a_split_listener_without_records_is_refused() {
        let w = World::default();
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::new(60, 40).unwrap_or_else(|e| panic!("{e}"));
        let err = handle(&deps(&w), sample::state(sample::request()))
            .await
            .err();
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Conflict"));
        assert_only_requested(&w);
    }

    /// A refused execution is in history as requested (the execution-status trigger ends it
    /// with the refusal), and nothing else changed: no lock, no traffic, no image.
    fn assert_only_requested(w: &World) {
        let records = w
            .store
            .records
            .lock()
            .map(|r| r.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        assert_eq!(
            records
                .iter()
                .map(|r| (r.id.as_str(), r.phase, r.colors()))
                .collect::<Vec<_>>(),
            vec![(sample::DEPLOYMENT_ID, Phase::Requested, None)]
        );
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.compute.image_of("checkout-green").as_deref(),
            Some(sample::IMAGE_V120)
        );
    }

    #[tokio::test]
    async fn missing_alarms_and_bad_input_change_nothing_but_the_request_record() {
        let w = World::default();
        let mut req = sample::request();
        req["alarms"] = serde_json::json!(["no-such-alarm"]);
        let err = handle(&deps(&w), sample::state(req)).await.err();
        assert_eq!(
            err.as_ref().map(|e| e.error_type()),
            Some("BlueGreen.InvalidInput")
        );
        assert_only_requested(&w);
        // input that is not a deployment request cannot be recorded at all
        let w = World::default();
        let mut req = sample::request();
        req["image"] = "not an image".into();
        let err = handle(&deps(&w), sample::state(req)).await.err();
        assert_eq!(
            err.as_ref().map(|e| e.error_type()),
            Some("BlueGreen.InvalidInput")
        );
        assert!(
            w.store
                .records
                .lock()
                .map(|r| r.is_empty())
                .unwrap_or(false)
        );
        assert!(
            w.compute
                .deploys
                .lock()
                .map(|d| d.is_empty())
                .unwrap_or(false)
        );
    }

    #[tokio::test]
    async fn after_a_release_the_next_one_goes_to_the_other_color() {
        // GIVEN green is active (the previous release finalized)
        let w = World::default();
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::all_on(Color::Green);
        let out = ok(handle(&deps(&w), sample::state(sample::request())).await);
        let p = out.progress.unwrap_or_else(|| panic!("no progress"));
        assert_eq!(
            (p.active_color, p.target_color),
            (Color::Green, Color::Blue)
        );
        assert_eq!(
            w.compute.image_of("checkout-blue").as_deref(),
            Some(sample::IMAGE_V130)
        );
    }
}
