//! End to end on the local stack: the real state machine definition in moto's interpreter,
//! the real handlers under `cargo lambda watch`, the real SDK clients against the emulator.
//! Each test provisions its own environment, so they run in parallel.

use local_stack::{Environment, LocalStack, deployment_name};
use serde_json::{Value, json};
use shared::domain::{
    CheckOutcome, Color, DeploymentStatus, EvaluationKind, Outcome, Phase, TrafficSplit,
};
use shared::ports::DeploymentStore;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn timings() -> Value {
    json!({"step_wait_seconds": 1, "verification_seconds": 3, "verification_interval_seconds": 1,
           "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
           "health_poll_seconds": 1, "health_timeout_seconds": 4})
}

async fn stack() -> LocalStack {
    LocalStack::start()
        .await
        .unwrap_or_else(|e| panic!("local stack: {e:#}"))
}

fn env(s: &LocalStack, name: &str) -> Environment {
    s.environment("checkout", name, "1.2.0")
        .unwrap_or_else(|e| panic!("provision {name}: {e:#}"))
}

async fn deploy(s: &LocalStack, env: &Environment, version: &str) -> (String, String) {
    let id = deployment_name(&env.service, &env.environment, version);
    let arn = s
        .start_deployment(&id, &env.request(version, "e2e@example.com", timings()))
        .await
        .unwrap_or_else(|e| panic!("start: {e:#}"));
    (id, arn)
}

async fn greens_written(s: &LocalStack, id: &str) -> Vec<u16> {
    let steps = s.store.steps(id).await.unwrap_or_else(|e| panic!("{e}"));
    for st in &steps {
        assert_eq!(
            u32::from(st.split.blue()) + u32::from(st.split.green()),
            100
        );
    }
    steps.iter().map(|st| st.split.green()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_release_walks_every_step_verifies_and_finalizes_on_green() {
    let s = stack().await;
    let env = env(&s, "e2e-ok");
    let (id, arn) = deploy(&s, &env, "1.3.0").await;
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(end.status, "SUCCEEDED", "{end:?}");

    // the listener ends fully on green, and every step was written as planned
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Green))
    );
    assert_eq!(greens_written(&s, &id).await, vec![10, 25, 50, 100]);

    // the ledger: one passing check per step with its numbers, then the verification window
    let ledger = s.store.ledger(&id).await.unwrap_or_else(|e| panic!("{e}"));
    let steps: Vec<_> = ledger
        .iter()
        .filter(|e| e.kind == EvaluationKind::Step)
        .collect();
    assert_eq!(
        steps.iter().map(|e| e.split.green()).collect::<Vec<_>>(),
        vec![10, 25, 50, 100]
    );
    let checks = ledger
        .iter()
        .filter(|e| e.kind == EvaluationKind::Verification)
        .count();
    assert_eq!(checks, 3);
    for e in &ledger {
        assert_eq!(e.evaluation.outcome, Outcome::Pass, "{e:?}");
        assert!(e.target.requests > 0, "no green requests measured: {e:?}");
        assert!(e.evaluation.error_rate_percent.is_some());
        assert_eq!(e.alarms.len(), env.alarm_names.len());
    }
    assert!(
        steps[0].baseline.p99_ms.is_some(),
        "blue's p99 is the baseline"
    );

    // history: one row with everything an operator asks for
    let page = s
        .store
        .history(&env.service, "e2e-ok", 10, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = page
        .items
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} not in history"));
    assert_eq!(row.status, DeploymentStatus::Succeeded);
    assert_eq!(
        (row.version.as_str(), row.previous_version.as_deref()),
        ("1.3.0", Some("1.2.0"))
    );
    assert_eq!(
        (row.active_color, row.target_color),
        (Some(Color::Blue), Some(Color::Green))
    );
    assert_eq!(row.deployer, "e2e@example.com");
    assert!(row.duration_seconds.is_some() && row.finished_at.is_some());
    let ready = row
        .readiness
        .clone()
        .unwrap_or_else(|| panic!("readiness not recorded"));
    assert_eq!((ready.running, ready.desired), (2, 2));
    assert!(ready.healthy_targets >= 2);

    // the environment: green active on 1.3.0, blue standby on 1.2.0, lock released
    let state = s
        .store
        .environment("checkout", "e2e-ok")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no env"));
    assert_eq!(state.active_color, Some(Color::Green));
    assert_eq!(
        (
            state.active_version.as_deref(),
            state.standby_version.as_deref()
        ),
        (Some("1.3.0"), Some("1.2.0"))
    );
    assert_eq!(state.active_deployment, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn green_answering_8_percent_5xx_from_25_percent_is_rolled_back_with_the_numbers() {
    let s = stack().await;
    let env = env(&s, "e2e-5xx");
    s.traffic_profile(&env.green_target_group_arn, 0.08, 48.0, 25)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (id, arn) = deploy(&s, &env, "1.3.1").await;
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        (end.status.as_str(), end.error.as_deref()),
        ("FAILED", Some("BlueGreen.RolledBack"))
    );

    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );
    assert_eq!(
        greens_written(&s, &id).await,
        vec![10, 25],
        "no step after the failed one"
    );
    let record = s
        .store
        .deployment(&id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, DeploymentStatus::RolledBack);
    let reason = record.reason.unwrap_or_default();
    assert!(
        reason.contains("at 25%") && reason.contains("error rate 8.0"),
        "{reason}"
    );
    let ledger = s.store.ledger(&id).await.unwrap_or_else(|e| panic!("{e}"));
    let last = ledger.last().unwrap_or_else(|| panic!("empty ledger"));
    assert_eq!(
        (last.evaluation.outcome, last.evaluation.error_rate_check),
        (Outcome::Fail, CheckOutcome::Fail)
    );
    let state = s
        .store
        .environment("checkout", "e2e-5xx")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no env"));
    assert_eq!(
        (state.active_color, state.active_deployment),
        (Some(Color::Blue), None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_during_verification_rolls_back() {
    let s = stack().await;
    let env = env(&s, "e2e-alarm");
    let mut input = env.request("1.3.0", "e2e@example.com", timings());
    input["timings"]["verification_seconds"] = json!(30);
    input["timings"]["verification_interval_seconds"] = json!(1);
    let id = deployment_name("checkout", "e2e-alarm", "1.3.0");
    let arn = s
        .start_deployment(&id, &input)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // wait for verification, then fire the alarm
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let phase = s
            .store
            .deployment(&id)
            .await
            .ok()
            .flatten()
            .map(|r| r.phase);
        if phase == Some(Phase::Verifying) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached verification ({phase:?})"
        );
        assert!(
            !phase.is_some_and(|p| p.is_terminal()),
            "ended before verification: {phase:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alarm = &env.alarm_names[0];
    s.set_alarm(
        alarm,
        "ALARM",
        "Threshold Crossed: 5xx rate > 5% for 2 datapoints",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        end.error.as_deref(),
        Some("BlueGreen.RolledBack"),
        "{end:?}"
    );

    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );
    let record = s
        .store
        .deployment(&id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, DeploymentStatus::RolledBack);
    let reason = record.reason.unwrap_or_default();
    assert!(
        reason.contains(&format!("alarm {alarm} is in ALARM")) && reason.contains("verification"),
        "{reason}"
    );
    let ledger = s.store.ledger(&id).await.unwrap_or_else(|e| panic!("{e}"));
    let last = ledger.last().unwrap_or_else(|| panic!("empty ledger"));
    assert_eq!(
        (last.kind, last.evaluation.alarms_check),
        (EvaluationKind::Verification, CheckOutcome::Fail)
    );
    s.set_alarm(alarm, "OK", "reset by the test")
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn green_never_healthy_fails_without_ever_sending_it_traffic() {
    let s = stack().await;
    let env = env(&s, "e2e-unhealthy");
    s.never_healthy(&env.cluster, &env.green_service)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (id, arn) = deploy(&s, &env, "1.3.0").await;
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        end.error.as_deref(),
        Some("BlueGreen.DeploymentFailed"),
        "{end:?}"
    );

    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );
    assert!(
        greens_written(&s, &id).await.is_empty(),
        "traffic was shifted to an unhealthy green"
    );
    assert!(
        s.store
            .ledger(&id)
            .await
            .map(|l| l.is_empty())
            .unwrap_or(false)
    );
    let record = s
        .store
        .deployment(&id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, DeploymentStatus::Failed);
    let reason = record.reason.unwrap_or_default();
    assert!(
        reason.contains("health check timeout") && reason.contains("Target.FailedHealthChecks"),
        "{reason}"
    );
    let state = s
        .store
        .environment("checkout", "e2e-unhealthy")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no env"));
    assert_eq!(
        (state.active_color, state.active_deployment),
        (Some(Color::Blue), None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deployment_of_the_same_environment_is_refused_naming_the_first() {
    let s = stack().await;
    let env = env(&s, "e2e-lock");
    let (first, first_arn) = deploy(&s, &env, "1.3.0").await;
    // wait until the first holds the lock
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while s.store.deployment(&first).await.ok().flatten().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first deployment never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, second_arn) = deploy(&s, &env, "1.3.1").await;
    let second = s
        .wait(&second_arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        second.error.as_deref(),
        Some("BlueGreen.Rejected"),
        "{second:?}"
    );
    let cause = second.cause.unwrap_or_default();
    assert!(
        cause.contains("BlueGreen.Conflict") && cause.contains(&first),
        "{cause}"
    );
    let end = s
        .wait(&first_arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        end.status, "SUCCEEDED",
        "the refused start must not disturb the running one: {end:?}"
    );
}
