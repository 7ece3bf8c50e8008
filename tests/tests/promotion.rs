//! End to end on the local stack: a version pushed to ECR deploys to DEV, is promoted to PRD
//! through the gates (refused while evidence is missing), and waits for approval with green
//! ready and no traffic; approval lets traffic move, rejection and timeout end NOT_DEPLOYED
//! with blue still serving everything. The real handlers, state machine (with its task token
//! and timeout) and SDK clients. Each test uses its own service, so they run in parallel.
//! Evidence counts only from the recorder the service lists (CI's role), for the pushed
//! image; a promotion by the promotion role records the GitHub user behind the run, who may
//! not approve it.

use local_stack::{
    ApiResponse, CI_TESTS, Environment, LocalStack, PROMOTION_GH_ALICE, ecr_push_event,
};
use serde_json::{Value, json};
use shared::domain::{ApprovalState, Color, DeploymentStatus, Phase, TrafficSplit};
use shared::ports::DeploymentStore;
use std::time::Duration;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const CAROL: &str = "arn:aws:iam::123456789012:user/carol";
const TIMEOUT: Duration = Duration::from_secs(120);

fn timings() -> Value {
    json!({"step_wait_seconds": 1, "verification_seconds": 2, "verification_interval_seconds": 1,
           "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
           "health_poll_seconds": 1, "health_timeout_seconds": 6})
}

fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e:#}"))
}

fn api(s: &LocalStack, method: &str, path: &str, body: Value, caller: &str) -> ApiResponse {
    ok(
        &format!("{method} {path}"),
        s.api(method, path, Some(&body), caller),
    )
}

struct Promoted {
    prd: Environment,
    deployment_id: String,
    execution_arn: String,
}

/// v1.3.0 pushed, deployed to DEV by the push, refused for PRD without evidence, then promoted
/// by `promoter` once CI recorded it; returns when the PRD deployment waits for approval.
async fn promoted_to_prd(
    s: &LocalStack,
    service: &str,
    approval_timeout: u64,
    promoter: &str,
) -> Promoted {
    let dev = ok("dev", s.environment(service, "dev", "1.2.0"));
    let prd = ok("prd", s.environment(service, "prd", "1.2.0"));
    ok("register dev", s.register(&dev, timings(), ALICE));
    ok(
        "register prd",
        s.register_with(
            &prd,
            timings(),
            json!({"approval": {"required": true, "timeout_seconds": approval_timeout}}),
            ALICE,
        ),
    );
    let image = ok("push", s.push_image(service, "1.3.0"));
    let pushed = ok(
        "ecr push",
        s.invoke(
            "ecr-push-trigger",
            &ecr_push_event(service, "1.3.0", &image.digest),
        ),
    );
    let dev_arn = pushed.payload["environments"][0]["execution_arn"]
        .as_str()
        .unwrap_or_else(|| panic!("the push started nothing: {}", pushed.payload))
        .to_string();
    let end = ok("dev", s.wait(&dev_arn, TIMEOUT).await);
    assert_eq!(end.status, "SUCCEEDED", "dev: {end:?}");

    let promote = json!({"version": "1.3.0", "from": "dev"});
    let promotions = format!("/services/{service}/environments/prd/promotions");
    let refused = api(s, "POST", &promotions, promote.clone(), ALICE);
    assert_eq!(refused.status, 412, "{}", refused.body);
    let failed: Vec<&str> = refused.body["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["passed"] == false)
        .filter_map(|g| g["gate"].as_str())
        .collect();
    assert_eq!(
        failed,
        ["integration_tests", "performance", "compliance"],
        "{}",
        refused.body
    );

    // a person who is not the service's listed recorder cannot vouch for it
    let forged = api(
        s,
        "POST",
        &format!("/services/{service}/environments/dev/versions/1.3.0/evidence"),
        json!({"kind": "integration", "passed": 156, "total": 156, "image_digest": image.digest}),
        ALICE,
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.body["error"], "RecorderNotAllowed");
    for evidence in [
        json!({"kind": "integration", "passed": 156, "total": 156, "image_digest": image.digest}),
        json!({"kind": "performance", "p99_ms": 87.0, "image_digest": image.digest}),
        json!({"kind": "compliance", "controls_passed": 23, "controls_total": 23, "image_digest": image.digest}),
    ] {
        let path = format!("/services/{service}/environments/dev/versions/1.3.0/evidence");
        let r = api(s, "POST", &path, evidence, CI_TESTS);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let accepted = api(s, "POST", &promotions, promote, promoter);
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(accepted.body["awaiting_approval"], true);
    let scan = accepted.body["promotion"]["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gate"] == "image_scan"))
        .map(|g| g["detail"].clone());
    assert_eq!(
        scan,
        Some(json!("0 CRITICAL (1 HIGH)")),
        "moto's scan finds one HIGH"
    );
    let deployment_id = accepted.body["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let execution_arn = accepted.body["execution_arn"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // green is deployed and healthy, the execution waits, no traffic has moved
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let r = s.store.deployment(&deployment_id).await.ok().flatten();
        if r.as_ref()
            .is_some_and(|r| r.phase == Phase::AwaitingApproval)
        {
            break;
        }
        assert!(!r.as_ref().is_some_and(|r| r.phase.is_terminal()), "{r:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never waited for approval"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        ok("split", s.split(&prd).await),
        TrafficSplit::all_on(Color::Blue)
    );
    // the notification topic was told that a person is needed
    let history = ok(
        "history",
        s.sfn
            .get_execution_history()
            .execution_arn(&execution_arn)
            .max_results(1000)
            .send()
            .await,
    );
    let published = history.events().iter().any(|e| {
        e.task_succeeded_event_details()
            .is_some_and(|d| d.resource_type() == "sns" && d.resource() == "publish")
    });
    assert!(
        published,
        "no SNS publish succeeded before the approval wait"
    );
    // what the approver is asked: the image by digest, who deployed, the checklist and the
    // upstream deployment
    let message = history
        .events()
        .iter()
        .filter_map(|e| e.task_scheduled_event_details())
        .filter(|d| d.resource_type() == "sns" && d.resource() == "publish")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.parameters()).ok())
        .find_map(|p| p["Message"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no SNS publish was scheduled"));
    let input = ok(
        "execution",
        s.sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await,
    );
    let digest = serde_json::from_str::<serde_json::Value>(input.input().unwrap_or("{}"))
        .ok()
        .and_then(|i| i["image_digest"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("the execution input has no digest"));
    let mut expected_lines = vec![];
    if promoter == PROMOTION_GH_ALICE {
        expected_lines
            .push("Triggered by: github:alice (may not approve or reject it)".to_string());
    }
    for expected in expected_lines.into_iter().chain([
        format!("Approval needed: {service} v1.3.0 to PRD"),
        format!("Digest:   {digest}"),
        format!("Deployer: {promoter}"),
        "✓ Same image succeeded upstream".to_string(),
        "✓ Integration tests: 156/156 passed".to_string(),
        "Upstream: deployment ".to_string(),
        format!("bluegreen approve {deployment_id} --service {service} --env prd"),
    ]) {
        assert!(
            message.contains(&expected),
            "{expected:?} not in:\n{message}"
        );
    }
    Promoted {
        prd,
        deployment_id,
        execution_arn,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_promotion_deploys_the_same_image_to_prd() {
    let s = ok("stack", LocalStack::start().await);
    // the promote workflow's role, run by GitHub user alice
    let p = promoted_to_prd(&s, "pay-approve", 300, PROMOTION_GH_ALICE).await;
    let r = ok("record", s.store.deployment(&p.deployment_id).await)
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        (r.deployer.as_str(), r.triggered_by.as_deref()),
        (PROMOTION_GH_ALICE, Some("github:alice"))
    );
    // alice, who triggered the run, cannot approve what it started
    let own = api(
        &s,
        "POST",
        &format!(
            "/services/{}/environments/prd/deployments/{}/approve",
            p.prd.service, p.deployment_id
        ),
        json!({}),
        ALICE,
    );
    assert_eq!(own.status, 403, "the deployer cannot approve: {}", own.body);
    assert_eq!(own.body["error"], "ApproverStartedIt", "{}", own.body);

    let approved = api(
        &s,
        "POST",
        &format!(
            "/services/{}/environments/prd/deployments/{}/approve",
            p.prd.service, p.deployment_id
        ),
        json!({"comment": "CHG-1234"}),
        CAROL,
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let end = ok("wait", s.wait(&p.execution_arn, TIMEOUT).await);
    assert_eq!(end.status, "SUCCEEDED", "{end:?}");
    let r = ok("record", s.store.deployment(&p.deployment_id).await)
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(r.status, DeploymentStatus::Succeeded);
    let a = r.approval.unwrap_or_else(|| panic!("no approval recorded"));
    assert_eq!(
        (a.state, a.decided_by.as_deref()),
        (ApprovalState::Approved, Some(CAROL))
    );
    assert_eq!(
        a.task_token, None,
        "the delivered task token (a capability to resume the execution) stays in the table"
    );
    assert!(
        r.image.contains("@sha256:"),
        "pinned by digest: {}",
        r.image
    );
    assert_eq!(r.gates.map(|g| g.iter().all(|g| g.passed)), Some(true));
    assert_eq!(
        ok("split", s.split(&p.prd).await),
        TrafficSplit::all_on(Color::Green)
    );
    assert!(
        r.image_pushed_at.is_some(),
        "the push time travels with the release"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_promotion_ends_not_deployed_with_blue_untouched() {
    let s = ok("stack", LocalStack::start().await);
    let p = promoted_to_prd(&s, "pay-reject", 300, ALICE).await;
    let rejected = api(
        &s,
        "POST",
        &format!(
            "/services/{}/environments/prd/deployments/{}/reject",
            p.prd.service, p.deployment_id
        ),
        json!({"reason": "error budget spent"}),
        CAROL,
    );
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    let end = ok("wait", s.wait(&p.execution_arn, TIMEOUT).await);
    assert_eq!(
        (end.status.as_str(), end.error.as_deref()),
        ("FAILED", Some("BlueGreen.NotDeployed")),
        "{end:?}"
    );
    let r = ok("record", s.store.deployment(&p.deployment_id).await)
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(r.status, DeploymentStatus::NotDeployed);
    assert_eq!(
        r.reason.as_deref(),
        Some(format!("rejected by {CAROL}: error budget spent").as_str())
    );
    assert_eq!(
        ok("split", s.split(&p.prd).await),
        TrafficSplit::all_on(Color::Blue)
    );
    let env = ok("env", s.store.environment("pay-reject", "prd").await)
        .unwrap_or_else(|| panic!("no environment state"));
    assert_eq!(env.active_deployment, None, "the lock is released");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_that_times_out_ends_not_deployed() {
    let s = ok("stack", LocalStack::start().await);
    // long enough that request-approval (a cold start locally) stores its token well before it
    let p = promoted_to_prd(&s, "pay-timeout", 8, ALICE).await;
    let end = ok("wait", s.wait(&p.execution_arn, TIMEOUT).await);
    assert_eq!(
        (end.status.as_str(), end.error.as_deref()),
        ("FAILED", Some("BlueGreen.NotDeployed")),
        "{end:?}"
    );
    let r = ok("record", s.store.deployment(&p.deployment_id).await)
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(r.status, DeploymentStatus::NotDeployed);
    assert_eq!(
        r.reason.as_deref(),
        Some("approval timed out after 8s; Green never received traffic")
    );
    assert_eq!(
        r.approval
            .as_ref()
            .map(|a| (a.state, a.task_token.is_some())),
        Some((ApprovalState::TimedOut, false)),
        "timed out, its task token dropped"
    );
    assert_eq!(
        ok("split", s.split(&p.prd).await),
        TrafficSplit::all_on(Color::Blue)
    );
    // a late approval is refused: nothing is waiting any more
    let late = api(
        &s,
        "POST",
        &format!(
            "/services/{}/environments/prd/deployments/{}/approve",
            p.prd.service, p.deployment_id
        ),
        json!({}),
        CAROL,
    );
    assert_eq!(late.status, 409, "{}", late.body);
}
