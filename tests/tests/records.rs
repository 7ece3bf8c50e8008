//! Every started execution has exactly one deployment record from its first moment, terminal
//! once the execution has ended, whichever path ends it: its first phase, the rollback phase
//! (the state machine's Catch) or the execution-status trigger (a stopped, timed-out or failed
//! execution). A property over the real handlers on the fakes, with faults injected into every
//! AWS call they make.

use execution_status::Deps as StatusDeps;
use proptest::prelude::*;
use serde_json::{Value, json};
use shared::contracts::DeploymentRequest;
use shared::domain::Phase;
use shared::fakes::FakeExecutions;
use shared::fakes::sample::{self, DEPLOYMENT_ID, World};
use shared::faults::{FaultRates, Faults, FaultyAccess, FaultyStore};
use shared::ports::{DeploymentStore, PhaseDeps};
use shared::registry::{EnvironmentConfig, ServiceConfig};
use shared::usecases::start::{StartDeps, StartRequest, start};
use std::sync::Arc;

const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:blue-green";

/// How the execution came to be.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// The API or an image push: the start use case took the lock and recorded the request.
    StartRequest,
    /// A person pasted the request into the Step Functions console: nothing recorded yet.
    Console,
}

fn rates(rate: f64) -> FaultRates {
    FaultRates {
        throttle: rate / 4.0,
        server_error: rate / 4.0,
        timeout: rate / 8.0,
        reported_failure: rate / 4.0,
        kill: rate / 8.0,
        sdk_attempts: 1,
    }
}

fn faulty(w: &World, faults: &Arc<Faults>) -> PhaseDeps {
    PhaseDeps {
        store: Arc::new(FaultyStore {
            inner: w.store.clone(),
            faults: faults.clone(),
        }),
        access: Arc::new(FaultyAccess {
            inner: w.access.clone(),
            faults: faults.clone(),
        }),
        registry: w.registry.clone(),
        clock: w.clock.clone(),
    }
}

/// Runs one invocation: its result, or `None` when a fault killed the process mid-call (the
/// fault layer then leaves the call pending forever, as a dead process never answers).
async fn invoke<T>(faults: &Faults, call: impl std::future::Future<Output = T>) -> Option<T> {
    let mut call = std::pin::pin!(call);
    std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending if faults.take_killed().is_some() => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

async fn started_by_request(w: &World) {
    let mut v = sample::request();
    for k in ["version", "image", "deployer"] {
        v.as_object_mut().map(|o| o.remove(k));
    }
    let env: EnvironmentConfig = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    use shared::ports::Registry as _;
    w.registry
        .put_environment(&env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    w.registry
        .put_service(&ServiceConfig {
            service: shared::fakes::sample::id("checkout"),
            repository: "checkout".into(),
            release_pattern: shared::registry::DEFAULT_RELEASE_PATTERN.into(),
            auto_deploy: vec![shared::fakes::sample::id("dev")],
            promotion: Default::default(),
            accounts: Vec::new(),
            evidence_recorders: Default::default(),
            github_logins: Default::default(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request: DeploymentRequest =
        serde_json::from_value(sample::request()).unwrap_or_else(|e| panic!("{e}"));
    let deps = StartDeps {
        registry: w.registry.clone(),
        store: w.store.clone(),
        executions: w.executions.clone(),
        clock: w.clock.clone(),
    };
    start(
        &deps,
        &StartRequest {
            deployment_id: shared::fakes::sample::id(DEPLOYMENT_ID),
            service: request.service.to_string(),
            environment: request.environment.to_string(),
            version: request.version.clone(),
            image: request.image.clone(),
            image_digest: None,
            deployer: request.deployer.clone(),
            triggered_by: request.triggered_by.clone(),
            gates: None,
            image_pushed_at: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The execution-status event of the ended execution.
fn status_event(status: &str, error: Option<(&str, &str)>) -> Value {
    let arn = FakeExecutions::arn(DEPLOYMENT_ID);
    json!({
        "version": "0", "id": "e-1",
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "time": "2025-01-03T10:05:00Z", "region": "us-east-1",
        "resources": [arn],
        "detail": {"executionArn": arn, "stateMachineArn": STATE_MACHINE, "name": DEPLOYMENT_ID,
                   "status": status, "startDate": 1_735_898_400_000u64, "stopDate": 1_735_898_700_000u64,
                   "input": sample::request().to_string(), "inputDetails": {"included": true},
                   "output": null, "outputDetails": null,
                   "error": error.map(|e| e.0), "cause": error.map(|e| e.1)}
    })
}

async fn one(
    origin: Origin,
    deploy_calls: u32,
    rollback_attempts: u32,
    end: &str,
    rate: f64,
    seed: u64,
) -> Result<(), TestCaseError> {
    let w = World::default();
    if matches!(origin, Origin::StartRequest) {
        started_by_request(&w).await;
    }
    let faults = Faults::new(seed, rates(rate));
    let deps = faulty(&w, &faults);

    // The execution runs: its first phase (re-run after each wait), however far it gets.
    let mut state = sample::state(sample::request());
    let mut last_error = None;
    for _ in 0..deploy_calls {
        match invoke(&faults, deploy_green::handle(&deps, state.clone())).await {
            Some(Ok(next)) => state = serde_json::to_value(&next).unwrap_or_else(|e| panic!("{e}")),
            Some(Err(e)) => last_error = Some((e.error_type().to_string(), e.to_string())),
            None => last_error = Some(("Lambda.Unknown".into(), "Runtime.ExitError".into())),
        }
    }
    // The Catch: the rollback phase, with its retries (all may fail).
    if let Some((error, message)) = &last_error {
        state["error"] = json!({"Error": error, "Cause": json!({"errorType": error, "errorMessage": message}).to_string()});
        for _ in 0..rollback_attempts {
            if let Some(Ok(_)) = invoke(&faults, rollback::handle(&deps, state.clone())).await {
                break;
            }
        }
    }
    // The execution ends; its status event reaches execution-status (three async attempts under
    // faults, then a person redrives it from the failed-events queue with faults gone).
    let status_deps = |store: Arc<dyn DeploymentStore>, access| StatusDeps {
        store,
        access,
        clock: w.clock.clone(),
        state_machine_arn: STATE_MACHINE.into(),
    };
    let event = status_event(
        end,
        last_error
            .as_ref()
            .map(|e| (e.0.as_str(), "see the record")),
    );
    let mut delivered = false;
    for _ in 0..3 {
        let d = status_deps(deps.store.clone(), deps.access.clone());
        if let Some(Ok(_)) = invoke(&faults, execution_status::handle(&d, event.clone())).await {
            delivered = true;
            break;
        }
    }
    if !delivered {
        let d = status_deps(w.store.clone(), w.access.clone());
        execution_status::handle(&d, event)
            .await
            .map_err(|e| TestCaseError::fail(format!("redriven execution-status: {e}")))?;
    }

    // Exactly one record, terminal, and the environment free.
    let ids: Vec<String> = w
        .store
        .records
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    prop_assert_eq!(&ids, &vec![DEPLOYMENT_ID.to_string()]);
    let r = w
        .store
        .record(DEPLOYMENT_ID)
        .unwrap_or_else(|| panic!("no record"));
    prop_assert!(
        r.phase.is_terminal(),
        "left in {} ({:?})",
        r.phase,
        r.reason
    );
    prop_assert!(r.finished_at.is_some());
    prop_assert_eq!(r.deployer.as_str(), "alice@example.com");
    prop_assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        None
    );
    if r.colors().is_none() {
        // It never began: nothing moved, and the record says so.
        prop_assert!(w.router.writes().is_empty());
        prop_assert_eq!(r.phase, Phase::Failed);
        let reason = r.reason.clone().unwrap_or_default();
        prop_assert!(
            reason.starts_with(shared::usecases::rollback::NEVER_STARTED),
            "reason {:?}",
            reason
        );
    } else {
        prop_assert!(
            w.router.split().sole_color().is_some(),
            "split {}",
            w.router.split()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_started_execution_ends_with_exactly_one_terminal_record(
        by_request in any::<bool>(),
        deploy_calls in 0u32..4,
        rollback_attempts in 0u32..4,
        end in prop_oneof![Just("FAILED"), Just("ABORTED"), Just("TIMED_OUT")],
        rate in 0.0f64..0.8,
        seed in any::<u64>(),
    ) {
        let origin = if by_request { Origin::StartRequest } else { Origin::Console };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(one(origin, deploy_calls, rollback_attempts, end, rate, seed))?;
    }
}

#[tokio::test]
async fn the_regression_of_issue_10_first_phase_exhausted_then_rolled_back() {
    // GIVEN a console execution whose DeployGreen failed every call (faults exhausted its
    // retries before it recorded the deployment), WHEN the Catch's rollback runs, THEN history
    // has it, FAILED, with the last error.
    let w = World::default();
    let mut state = sample::state(sample::request());
    state["error"] = json!({"Error": "BlueGreen.Retryable", "Cause": json!({"errorType": "BlueGreen.Retryable", "errorMessage": "DescribeAlarms: throttled"}).to_string()});
    rollback::handle(&w.phase_deps(), state)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = w
        .store
        .record(DEPLOYMENT_ID)
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        (r.status.as_str(), r.reason.as_deref()),
        (
            "FAILED",
            Some("never got past deploying green: DescribeAlarms: throttled")
        )
    );
}
