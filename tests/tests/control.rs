//! End to end for the control plane on the local stack: the HTTP API and the ECR-push and
//! alarm triggers, through the real handlers, the real state machine and the real SDK clients.
//! Each test provisions its own environment (or service), so they run in parallel.

use local_stack::{ApiResponse, Environment, LocalStack, alarm_event, ecr_push_event};
use serde_json::{Value, json};
use shared::domain::{Color, DeploymentStatus, TrafficSplit};
use shared::ports::DeploymentStore;
use std::time::Duration;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const BOB: &str = "arn:aws:iam::123456789012:user/bob";
const TIMEOUT: Duration = Duration::from_secs(120);

fn timings(step_wait_seconds: u64) -> Value {
    json!({"step_wait_seconds": step_wait_seconds, "verification_seconds": 2, "verification_interval_seconds": 1,
           "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
           "health_poll_seconds": 1, "health_timeout_seconds": 6})
}

async fn stack() -> LocalStack {
    LocalStack::start()
        .await
        .unwrap_or_else(|e| panic!("local stack: {e:#}"))
}

fn registered(s: &LocalStack, service: &str, name: &str, step_wait_seconds: u64) -> Environment {
    let env = s
        .environment(service, name, "1.2.0")
        .unwrap_or_else(|e| panic!("provision {name}: {e:#}"));
    s.register(&env, timings(step_wait_seconds), ALICE)
        .unwrap_or_else(|e| panic!("register {name}: {e:#}"));
    env
}

/// `/services/<service>/environments/<environment>`: where every route of an environment is.
fn at(env: &Environment) -> String {
    format!("/services/{}/environments/{}", env.service, env.environment)
}

fn post_deployment(s: &LocalStack, env: &Environment, version: &str) -> ApiResponse {
    let body = json!({
        "version": version,
        "image": format!("{}:{version}", env.image_repository),
    });
    let path = format!("{}/deployments", at(env));
    s.api("POST", &path, Some(&body), ALICE)
        .unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
}

fn accepted(r: &ApiResponse) -> (String, String) {
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let arn = r.body["execution_arn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty() && !arn.is_empty(), "{}", r.body);
    (id, arn)
}

/// Waits until the deployment has written the step carrying `green` percent to the new color.
async fn wait_for_step(s: &LocalStack, id: &str, percent: u16) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let steps = s.store.steps(id).await.unwrap_or_default();
        if steps
            .iter()
            .any(|st| st.split.weight_of(st.target_color) == percent)
        {
            return;
        }
        let phase = s.store.deployment(id).await.ok().flatten().map(|r| r.phase);
        assert!(
            !phase.is_some_and(|p| p.is_terminal()),
            "{id} ended before {percent}%: {phase:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never reached {percent}%"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn of_100_concurrent_starts_exactly_one_is_accepted_and_the_lock_frees_when_it_ends() {
    let s = stack().await;
    let env = registered(&s, "checkout", "ctl-lock", 60);
    let from = epoch_seconds();
    let responses: Vec<ApiResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| scope.spawn(|| post_deployment(&s, &env, "1.3.0")))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("request thread panicked"))
            })
            .collect()
    });
    // The functions run several instances at once, as on Lambda: the calls really overlapped.
    let overlap = s
        .max_overlap("api", from, epoch_seconds())
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("100 concurrent starts: at most {overlap} API invocations ran at the same moment");
    assert!(
        overlap >= 2,
        "the 100 starts were served one at a time (overlap {overlap}): run the local stack's functions concurrently"
    );
    let winners: Vec<&ApiResponse> = responses.iter().filter(|r| r.status == 202).collect();
    let mut bodies: Vec<String> = vec![];
    for w in &winners {
        // each accepted deployment, and how it stands now (an early end frees the lock)
        let id = w.body["deployment_id"].as_str().unwrap_or_default();
        let record = s.store.deployment(id).await.ok().flatten();
        bodies.push(format!(
            "{id}: {:?}",
            record.map(|r| (r.phase, r.reason, r.started_at, r.finished_at))
        ));
    }
    assert_eq!(
        winners.len(),
        1,
        "statuses: {:?} accepted: {bodies:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let (id, arn) = accepted(winners[0]);
    let refused: Vec<&ApiResponse> = responses.iter().filter(|r| r.status == 409).collect();
    assert_eq!(refused.len(), 99);
    for r in refused {
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&id),
            "409 must name the running deployment: {message}"
        );
    }

    // it ends (here: a person rolls it back), and the lock is free again
    let rollback = s
        .api(
            "POST",
            &format!("{}/deployments/{id}/rollback", at(&env)),
            Some(&json!({"confirm": true})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(rollback.status, 200, "{}", rollback.body);
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Stopped by the API, or ended a moment earlier by its own rollback (its phase saw the
    // person's rollback and was caught), which then found the person's outcome and kept it.
    let ended_by_its_rollback = end.status == "FAILED"
        && matches!(
            end.error.as_deref(),
            Some("BlueGreen.RolledBack" | "BlueGreen.DeploymentFailed")
        );
    // The emulator adds one ending AWS does not have: a stop that lands while a task is failing
    // ends FAILED with that task's error (moto's interpreter sets the error over the stopped
    // state), here the phase refusing to move a deployment the person already ended (also
    // deploy-green, when the person's rollback landed before it began).
    let stopped_while_its_phase_refused =
        end.status == "FAILED" && end.error.as_deref() == Some("BlueGreen.Aborted");
    assert!(
        end.status == "ABORTED" || ended_by_its_rollback || stopped_while_its_phase_refused,
        "{end:?}"
    );
    let record = s
        .store
        .deployment(&id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no record of {id}"));
    assert!(
        record.phase.is_terminal() && record.phase != shared::domain::Phase::Succeeded,
        "rolled back, whichever rollback finished it: {:?} {:?}",
        record.phase,
        record.reason
    );
    let next = post_deployment(&s, &env, "1.3.1");
    let (next_id, _) = accepted(&next);
    assert_ne!(next_id, id);
    wait_for_step(&s, &next_id, 10).await;
    let cleanup = s
        .api(
            "POST",
            &format!("{}/deployments/{next_id}/rollback", at(&env)),
            Some(&json!({"confirm": true})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cleanup.status, 200, "{}", cleanup.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_push_ten_times_starts_one_deployment_and_latest_starts_none() {
    let s = stack().await;
    // pushes of the `payments` repository deploy payments to dev (the default)
    let env = registered(&s, "payments", "dev", 1);
    // a digest of its own per run, so the test also holds against a stack that ran it before
    let stamp = format!(
        "{:016x}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
    );
    let digest = format!("sha256:{stamp}{}", "7d".repeat(24));
    let push = ecr_push_event("payments", "2.4.0", &digest);
    // EventBridge may deliver the same event more than once, at the same time.
    let from = epoch_seconds();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| s.invoke("ecr-push-trigger", &push)))
            .collect();
        for h in handles {
            let out = h
                .join()
                .unwrap_or_else(|_| panic!("delivery thread panicked"))
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(out.error_type, None, "{}", out.payload);
        }
    });
    let overlap = s
        .max_overlap("ecr-push-trigger", from, epoch_seconds())
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("10 simultaneous deliveries: at most {overlap} ran at the same moment");
    assert!(overlap >= 2, "the deliveries did not overlap ({overlap})");
    let latest = s
        .invoke(
            "ecr-push-trigger",
            &ecr_push_event("payments", "latest", &digest),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(latest.error_type, None, "{}", latest.payload);

    let started = s
        .executions_named(&format!("payments-dev-2-4-0-{}", &stamp[..12]))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(started.len(), 1, "{started:?}");
    let arn = format!(
        "{}:{}",
        s.state_machine_arn.replace(":stateMachine:", ":execution:"),
        started[0]
    );
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(end.status, "SUCCEEDED", "{end:?}");
    let record = s
        .store
        .deployment(&started[0])
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.version, "2.4.0");
    assert_eq!(record.image_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Green))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_during_the_25_percent_step_restores_blue_at_once_and_nothing_shifts_after() {
    let s = stack().await;
    let env = registered(&s, "checkout", "ctl-alarm", 15);
    let (id, arn) = accepted(&post_deployment(&s, &env, "1.3.0"));
    wait_for_step(&s, &id, 25).await;
    assert_eq!(s.split(&env).await.ok().map(|x| x.green()), Some(25));

    let alarm = &env.alarm_names[0];
    let out = s
        .invoke(
            "alarm-trigger",
            &alarm_event(alarm, "ALARM", "Threshold Crossed: 5xx rate 7.9% > 5%"),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out.error_type, None, "{}", out.payload);
    // restored within that one invocation
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );

    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Stopped by the trigger (the error and cause it sends are pinned by the adapter's tests;
    // the emulator does not keep them).
    assert_eq!(end.status, "ABORTED", "{end:?}");
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
        reason.starts_with(&format!("alarm {alarm}")) && reason.contains("Threshold Crossed"),
        "{reason}"
    );
    // nothing shifts afterwards
    tokio::time::sleep(Duration::from_secs(2)).await;
    let greens: Vec<u16> = s
        .store
        .steps(&id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|st| st.split.green())
        .collect();
    assert_eq!(greens, vec![10, 25]);
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );
    let state = s
        .store
        .environment("checkout", "ctl-alarm")
        .await
        .ok()
        .flatten();
    assert_eq!(
        state.and_then(|e| e.active_deployment),
        None,
        "the lock is released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_rollback_needs_confirmation_and_records_who_and_why() {
    let s = stack().await;
    let env = registered(&s, "checkout", "ctl-manual", 15);
    let (id, arn) = accepted(&post_deployment(&s, &env, "1.3.0"));
    wait_for_step(&s, &id, 10).await;

    let path = format!("{}/deployments/{id}/rollback", at(&env));
    let unconfirmed = s
        .api("POST", &path, Some(&json!({})), BOB)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    let message = unconfirmed.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Rollback will shift all traffic to Blue (v1.2.0)"),
        "{message}"
    );
    assert_eq!(
        s.split(&env).await.ok().map(|x| x.green()),
        Some(10),
        "nothing changed"
    );

    let confirmed = s
        .api(
            "POST",
            &path,
            Some(&json!({"confirm": true, "reason": "customers report errors"})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
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
        reason.contains(BOB) && reason.contains("customers report errors"),
        "{reason}"
    );
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(end.status, "ABORTED", "{end:?}");

    // and the API reports it
    let shown = s
        .api(
            "GET",
            &format!("{}/deployments/{id}", at(&env)),
            None,
            ALICE,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.to_string().contains("ROLLED_BACK"),
        "{}",
        shown.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_rolls_back_to_its_standby_after_a_release() {
    let s = stack().await;
    let env = registered(&s, "checkout", "ctl-env", 1);
    let (id, arn) = accepted(&post_deployment(&s, &env, "1.3.0"));
    assert_eq!(
        s.wait(&arn, TIMEOUT)
            .await
            .map(|e| e.status)
            .ok()
            .as_deref(),
        Some("SUCCEEDED")
    );
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Green))
    );

    let path = &format!("{}/rollback", at(&env));
    let unconfirmed = s
        .api("POST", path, Some(&json!({})), BOB)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(
        unconfirmed.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Rollback will shift all traffic to Blue (v1.2.0)"),
        "{}",
        unconfirmed.body
    );
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Green))
    );

    let done = s
        .api(
            "POST",
            path,
            Some(&json!({"confirm": true, "reason": "v1.3.0 breaks checkout"})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Blue))
    );
    let state = s
        .store
        .environment("checkout", "ctl-env")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no state"));
    assert_eq!(state.active_color, Some(Color::Blue));
    assert_eq!(
        (
            state.active_version.as_deref(),
            state.standby_version.as_deref()
        ),
        (Some("1.2.0"), Some("1.3.0"))
    );
    assert_eq!(state.active_deployment, None);

    // history, newest first: the rollback, then the release
    let history = s
        .api("GET", &format!("{}/deployments", at(&env)), None, ALICE)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(history.status, 200, "{}", history.body);
    let text = history.body.to_string();
    assert!(text.contains(BOB) && text.contains(&id), "{text}");
    let metrics = s
        .api("GET", "/services/checkout/metrics?days=1", None, ALICE)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics.body.to_string().contains("ctl-env"),
        "{}",
        metrics.body
    );
}

/// Now, in seconds since the epoch (the router's clock for invocations).
fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Issue 17 finding 4: a caller allowed only its own service's paths (team A: payments) sends
/// another service's deployment id (checkout's) under them. Every route answers 404, as for an
/// id that does not exist, and nothing about checkout's deployment changes.
#[tokio::test(flavor = "multi_thread")]
async fn another_services_deployment_id_under_ones_own_path_is_not_found_and_changes_nothing() {
    let s = stack().await;
    let env = registered(&s, "checkout", "ctl-scope", 15);
    let (id, arn) = accepted(&post_deployment(&s, &env, "1.3.0"));
    wait_for_step(&s, &id, 10).await;
    let before = s.store.deployment(&id).await.ok().flatten();
    let split = s.split(&env).await.ok();
    assert_eq!(split.map(|x| x.green()), Some(10));

    let theirs = format!("/services/payments/environments/ctl-scope/deployments/{id}");
    let attempts = [
        ("GET", theirs.clone(), None),
        ("GET", format!("{theirs}/troubleshoot"), None),
        (
            "POST",
            format!("{theirs}/rollback"),
            Some(json!({"confirm": true, "reason": "not yours"})),
        ),
        ("POST", format!("{theirs}/approve"), Some(json!({}))),
        (
            "POST",
            format!("{theirs}/reject"),
            Some(json!({"reason": "not yours"})),
        ),
    ];
    for (method, path, body) in attempts {
        let r = s
            .api(method, &path, body.as_ref(), BOB)
            .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(r.body["error"], "NotFound", "{}", r.body);
    }
    // a body naming another service is refused by name before anything is read
    let named = s
        .api(
            "POST",
            &format!("{}/rollback", at(&env)),
            Some(&json!({"service": "payments", "confirm": true})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(named.status, 400, "{}", named.body);
    assert_eq!(named.body["error"], "ScopeOutsidePath", "{}", named.body);

    // nothing changed: same traffic, same record, the execution still runs
    assert_eq!(s.split(&env).await.ok(), split);
    let after = s.store.deployment(&id).await.ok().flatten();
    assert_eq!(
        after
            .as_ref()
            .map(|r| (r.status, r.phase, r.reason.clone())),
        before
            .as_ref()
            .map(|r| (r.status, r.phase, r.reason.clone()))
    );

    // cleanup through checkout's own path
    let cleanup = s
        .api(
            "POST",
            &format!("{}/deployments/{id}/rollback", at(&env)),
            Some(&json!({"confirm": true})),
            BOB,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cleanup.status, 200, "{}", cleanup.body);
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(end.status, "ABORTED", "{end:?}");
}
