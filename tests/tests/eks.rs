//! The EKS platform end to end on the local stack: the real state machine and handlers, EKS
//! DescribeCluster through the SDK, and the Kubernetes API stand-in (HTTPS with its own CA,
//! EKS bearer tokens, Deployments rolled out into the target groups in moto).

use local_stack::{Environment, LocalStack, deployment_name};
use serde_json::{Value, json};
use shared::domain::{Color, DeploymentStatus, Phase, Platform, TrafficSplit};
use shared::ports::DeploymentStore;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);
const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/bluegreen-ci-tests/e2e";

fn timings() -> Value {
    json!({"step_wait_seconds": 1, "verification_seconds": 3, "verification_interval_seconds": 1,
           "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
           "health_poll_seconds": 1, "health_timeout_seconds": 30})
}

async fn stack() -> LocalStack {
    LocalStack::start()
        .await
        .unwrap_or_else(|e| panic!("local stack: {e:#}"))
}

fn env(s: &LocalStack, name: &str) -> Environment {
    s.eks_environment("infra-agent", name, name, "1.2.0")
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

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_release_rolls_green_pods_out_then_shifts_and_finalizes() {
    let s = stack().await;
    let env = env(&s, "e2e-eks-ok");
    assert_eq!(env.compute["platform"], "eks", "{}", env.compute);
    let (id, arn) = deploy(&s, &env, "1.3.0").await;
    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(end.status, "SUCCEEDED", "{end:?}");
    assert_eq!(
        s.split(&env).await.ok(),
        Some(TrafficSplit::all_on(Color::Green))
    );
    let record = s
        .store
        .deployment(&id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, DeploymentStatus::Succeeded);
    let ready = record
        .readiness
        .unwrap_or_else(|| panic!("no readiness recorded"));
    assert_eq!(ready.platform, Platform::Eks);
    assert_eq!((ready.running, ready.desired), (3, 3));
    assert!(ready.healthy_targets >= 3, "{ready:?}");
    assert!(
        ready.revision.starts_with("infra-agent-green-"),
        "the ReplicaSet of the new pods: {}",
        ready.revision
    );
    assert_eq!(
        shared::report::phase1(&record_for_report(&s, &id).await, &ready)[2],
        "  ✓ Pods deployed: 3/3 ready (".to_string() + &ready.revision + ")"
    );
    // the Deployment was patched by the controller, annotated with the release
    let state = s
        .control_state("eks/state")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let green = state["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["namespace"] == "e2e-eks-ok" && d["name"] == "infra-agent-green")
        .unwrap_or_else(|| panic!("no green Deployment: {state}"));
    assert_eq!(green["generation"], 2, "patched once: {green}");
}

async fn record_for_report(s: &LocalStack, id: &str) -> shared::domain::DeploymentRecord {
    s.store
        .deployment(id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no record"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_pulled_fails_before_traffic_and_troubleshoot_shows_why() {
    let s = stack().await;
    let env = env(&s, "e2e-eks-pull");
    let namespace = env.compute["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let green = env.compute["green_deployment"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.control(
        "eks/scenario",
        json!({"namespace": namespace, "deployment": green, "mode": "image-pull-backoff"}),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    s.register(&env, timings(), CALLER)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (id, arn) = deploy(&s, &env, "1.3.1").await;
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
        s.store
            .steps(&id)
            .await
            .map(|st| st.is_empty())
            .unwrap_or(false),
        "no traffic moved"
    );
    let record = record_for_report(&s, &id).await;
    assert_eq!(record.phase, Phase::Failed);
    let reason = record.reason.clone().unwrap_or_default();
    assert!(reason.contains("ImagePullBackOff"), "{reason}");
    assert!(
        !reason.contains("health check timeout"),
        "failed at once, not after the health timeout: {reason}"
    );

    let path = format!(
        "/services/{}/environments/{}/deployments/{id}/troubleshoot",
        env.service, env.environment
    );
    let t = s
        .api("GET", &path, None, CALLER)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(t.status, 200, "{}", t.body);
    let green_view = &t.body["compute"][0];
    assert_eq!(green_view["platform"], "eks", "{}", t.body);
    assert_eq!(green_view["color"], "green");
    let units = green_view["units"].to_string();
    assert!(units.contains("ImagePullBackOff"), "{units}");
    let events = green_view["events"].to_string();
    assert!(events.contains("Back-off pulling image"), "{events}");
    let next = t.body["next_steps"].to_string();
    for step in [
        "kubectl get pods -n",
        "kubectl logs -n",
        "kubectl describe pod -n",
        "--sort-by='.lastTimestamp'",
    ] {
        assert!(next.contains(step), "{step} missing from {next}");
    }
}
