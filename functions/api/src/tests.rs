//! Handler tests on the in-memory fakes: one GIVEN/WHEN/THEN per behaviour of each route,
//! asserting the status, the body and the side effects (or their absence).

use super::*;
use aws_lambda_events::encodings::Body;
use serde_json::{Value, json};
use shared::domain::{
    AlarmState, AlarmStatus, Color, ColorMetrics, DeploymentStatus, EnvironmentState,
    EvaluationInput, EvaluationKind, LedgerEntry, Phase, StepRecord, Thresholds, TrafficSplit,
    evaluate,
};
use shared::error::AdapterError;
use shared::fakes::FakeExecutions;
use shared::fakes::sample::{self, World};
use time::macros::datetime;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
/// The stack's GitHub roles, as `CI_ROLE_ARNS` names them (the promotion role has a path).
const GITHUB_DEPLOY_ROLE: &str = "arn:aws:iam::123456789012:role/bluegreen-github-deploy";
const PROMOTION_ROLE: &str =
    "arn:aws:iam::123456789012:role/bluegreen.promotion/bluegreen-promotion";

/// `/services/checkout/environments/<env><tail>`: the routes' scope for the sample service.
fn at(env: &str, tail: &str) -> String {
    format!("/services/checkout/environments/{env}{tail}")
}

fn deps(w: &World) -> ApiDeps {
    ApiDeps {
        registry: w.registry.clone(),
        store: w.store.clone(),
        executions: w.executions.clone(),
        access: w.access.clone(),
        images: w.images.clone(),
        clock: w.clock.clone(),
        ci_roles: vec![GITHUB_DEPLOY_ROLE.into(), PROMOTION_ROLE.into()],
    }
}

/// A caller of the API as API Gateway reports it (`requestContext.authorizer.iam`).
fn as_caller(e: Ev, arn: &str) -> Ev {
    e.iam(
        json!({"accessKey": "AKIAIOSFODNN7EXAMPLE", "accountId": "123456789012",
                 "callerId": "AIDAEXAMPLE", "principalOrgId": null, "userArn": arn,
                 "userId": "AIDAEXAMPLE"}),
    )
}

async fn world() -> (World, ApiDeps) {
    let w = World::default().with_registry().await;
    let d = deps(&w);
    (w, d)
}

/// A real-shaped API Gateway HTTP API (payload 2.0) event.
struct Ev {
    v: Value,
}

fn ev(method: &str, path: &str) -> Ev {
    Ev {
        v: json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "host": "api.example.com"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "authorizer": {"iam": {
                    "accessKey": "AKIAIOSFODNN7EXAMPLE",
                    "accountId": "123456789012",
                    "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                    "principalOrgId": null,
                    "userArn": ALICE,
                    "userId": "AIDACKCEVSQ6C2EXAMPLE"
                }},
                "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "a1b2c3d4e5",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": "$default",
                "stage": "$default",
                "time": "03/Jan/2025:10:00:05 +0000",
                "timeEpoch": 1735898405000_i64
            },
            "isBase64Encoded": false
        }),
    }
}

impl Ev {
    fn body(mut self, b: &Value) -> Self {
        self.v["body"] = json!(b.to_string());
        self
    }
    fn raw_body(mut self, b: &str) -> Self {
        self.v["body"] = json!(b);
        self
    }
    fn base64(mut self) -> Self {
        self.v["isBase64Encoded"] = json!(true);
        self
    }
    fn header(mut self, k: &str, val: &str) -> Self {
        self.v["headers"][k] = json!(val);
        self
    }
    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        let m: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.v["rawQueryString"] = json!(
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        self.v["queryStringParameters"] = Value::Object(m);
        self
    }
    fn iam(mut self, iam: Value) -> Self {
        self.v["requestContext"]["authorizer"]["iam"] = iam;
        self
    }
    fn request(self) -> ApiGatewayV2httpRequest {
        serde_json::from_value(self.v).unwrap()
    }
}

struct Res {
    status: i64,
    body: Value,
    headers: aws_lambda_events::http::HeaderMap,
}

async fn send(d: &ApiDeps, e: Ev) -> Res {
    let r = handle(d, e.request()).await;
    let text = match r.body {
        Some(Body::Text(t)) => t,
        other => panic!("expected a JSON text body, got {other:?}"),
    };
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    Res {
        status: r.status_code,
        body: serde_json::from_str(&text).unwrap(),
        headers: r.headers,
    }
}

fn assert_error(r: &Res, status: i64, name: &str, needle: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"], json!(name), "{}", r.body);
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    assert_eq!(
        r.body.as_object().map(|o| o.len()),
        Some(2),
        "errors carry exactly error and message"
    );
}

fn start_body() -> Value {
    json!({"version": "1.3.0", "image": sample::IMAGE_V130})
}

// ---------------------------------------------------------------- POST /deployments

#[tokio::test]
async fn start_returns_202_and_records_the_caller_as_deployer() {
    // GIVEN checkout/dev in the registry
    let (w, d) = world().await;
    // WHEN a signed caller starts 1.3.0
    let r = send(
        &d,
        ev("POST", &at("dev", "/deployments")).body(&start_body()),
    )
    .await;
    // THEN the execution runs under a release-derived id, with alice as deployer
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = id.as_str();
    // the release, the time, and a fingerprint of API Gateway's request id
    assert!(
        id.starts_with("checkout-dev-1-3-0-1735898405000-") && id.len() == 39,
        "{id}"
    );
    assert_eq!(
        r.body,
        json!({
            "deployment_id": id,
            "execution_arn": FakeExecutions::arn(id),
            "status_url": at("dev", &format!("/deployments/{id}")),
        })
    );
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(at("dev", &format!("/deployments/{id}")).as_str())
    );
    let started = w.executions.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].1.deployer, ALICE);
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        Some(id.into())
    );
}

#[tokio::test]
async fn a_malformed_image_digest_is_a_400_naming_it_and_starts_nothing() {
    // GIVEN checkout/dev in the registry
    let (w, d) = world().await;
    // WHEN a start names a digest that is not sha256:<64 lowercase hex>
    for digest in [
        json!("sha256:ABC"),
        json!(format!("sha256:{}", "A".repeat(64))),
        json!(format!("md5:{}", "a".repeat(64))),
    ] {
        let mut body = start_body();
        body["image_digest"] = digest.clone();
        let r = send(&d, ev("POST", &at("dev", "/deployments")).body(&body)).await;
        // the value is JSON-quoted in the message, as {digest} prints it
        assert_error(
            &r,
            400,
            "InvalidRequest",
            &format!("image_digest {digest} is invalid: must be sha256:<64 lowercase hex>"),
        );
    }
    // THEN each is refused naming the field, and nothing was locked or started
    assert!(w.executions.started_names().is_empty());
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        None
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_same_202_and_starts_nothing_more() {
    let (w, d) = world().await;
    let first = send(
        &d,
        ev("POST", &at("dev", "/deployments"))
            .header("idempotency-key", "ci-run-42")
            .body(&start_body()),
    )
    .await;
    assert_eq!(first.status, 202);
    let key_id = format!(
        "ci-run-42-{}",
        requests::key_digest("checkout", "dev", "ci-run-42")
    );
    assert_eq!(first.body["deployment_id"], json!(key_id));
    // WHEN the same request is retried, before and after the execution wrote its record
    let again = send(
        &d,
        ev("POST", &at("dev", "/deployments"))
            .header("Idempotency-Key", "ci-run-42")
            .body(&start_body()),
    )
    .await;
    let mut r = sample::record(Phase::ShiftingTraffic);
    r.id = key_id.clone();
    r.execution_arn = FakeExecutions::arn(&key_id);
    w.store.records.lock().unwrap().insert(key_id.clone(), r);
    let third = send(
        &d,
        ev("POST", &at("dev", "/deployments"))
            .header("idempotency-key", "ci-run-42")
            .body(&start_body()),
    )
    .await;
    // THEN every answer is the same and only one execution exists
    assert_eq!((again.status, &again.body), (202, &first.body));
    assert_eq!((third.status, &third.body), (202, &first.body));
    assert_eq!(w.executions.started_names(), vec![key_id.clone()]);
    // a key reused for another environment is another deployment id there
    assert_ne!(
        requests::key_digest("checkout", "prd", "ci-run-42"),
        requests::key_digest("checkout", "dev", "ci-run-42")
    );
}

#[tokio::test]
async fn an_idempotency_key_used_by_another_service_lands_on_an_id_of_its_own() {
    // GIVEN checkout/dev started with key "release-7"
    let (w, d) = world().await;
    let put = json!({"repository": "team/payments"});
    let r = send(&d, ev("PUT", "/services/payments").body(&put)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for environment in ["dev", "tst"] {
        let mut env = World::environment_config();
        env.service = shared::fakes::sample::id("payments");
        env.environment = shared::fakes::sample::id(environment);
        w.registry
            .put_environment(&env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let ours = send(
        &d,
        ev("POST", &at("dev", "/deployments"))
            .header("idempotency-key", "release-7")
            .body(&start_body()),
    )
    .await;
    assert_eq!(ours.status, 202, "{}", ours.body);
    let ours_id = ours.body["deployment_id"].as_str().unwrap().to_string();
    // WHEN payments' caller sends the same key, and then checkout's id itself as its key
    // (in two environments of payments: one deployment runs per environment)
    let theirs = |env: &str, key: &str| {
        ev(
            "POST",
            &format!("/services/payments/environments/{env}/deployments"),
        )
        .header("idempotency-key", key)
        .body(&start_body())
    };
    let same_key = send(&d, theirs("dev", "release-7")).await;
    let id_as_key = send(&d, theirs("tst", &ours_id)).await;
    // THEN neither is checkout's deployment: payments' starts get ids of their own
    for r in [&same_key, &id_as_key] {
        let id = r.body["deployment_id"].as_str().unwrap_or_default();
        assert_eq!(r.status, 202, "{}", r.body);
        assert_ne!(id, ours_id);
        assert!(!ours_id.starts_with(id), "{id} prefixes {ours_id}");
    }
    assert_ne!(
        same_key.body["deployment_id"],
        id_as_key.body["deployment_id"]
    );
    // checkout's deployment is untouched: same record, still its only execution
    let checkout_runs: Vec<String> = w
        .executions
        .started_names()
        .into_iter()
        .filter(|n| *n == ours_id)
        .collect();
    assert_eq!(checkout_runs, vec![ours_id.clone()]);
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        Some(ours_id)
    );
}

#[tokio::test]
async fn start_refusals_name_the_problem_and_start_nothing() {
    let (w, d) = world().await;
    let mut named_service = start_body();
    named_service["service"] = json!("payments");
    let mut named_env = start_body();
    named_env["environment"] = json!("prd");
    let mut bad_version = start_body();
    bad_version["version"] = json!("latest");
    let mut bad_image = start_body();
    bad_image["image"] = json!("checkout");
    let cases: Vec<(Ev, i64, &str, &str)> = vec![
        (
            ev("POST", "/services/billing/environments/dev/deployments").body(&start_body()),
            404,
            "NotFound",
            "PUT /services/billing",
        ),
        (
            ev("POST", &at("prd", "/deployments")).body(&start_body()),
            404,
            "NotFound",
            "PUT /services/checkout/environments/prd",
        ),
        // a body naming a service or environment: the path is the only source of both
        (
            ev("POST", &at("dev", "/deployments")).body(&named_service),
            400,
            "ScopeOutsidePath",
            "service is taken from the path (/services/checkout/environments/dev)",
        ),
        (
            ev("POST", &at("dev", "/deployments")).body(&named_env),
            400,
            "ScopeOutsidePath",
            "environment is taken from the path",
        ),
        (
            ev("POST", &at("dev", "/deployments")).body(&bad_version),
            400,
            "InvalidRequest",
            "version \"latest\" is invalid",
        ),
        (
            ev("POST", &at("dev", "/deployments")).body(&bad_image),
            400,
            "InvalidRequest",
            "needs a tag",
        ),
        (
            ev("POST", &at("dev", "/deployments"))
                .header("idempotency-key", "has space")
                .body(&start_body()),
            400,
            "InvalidRequest",
            "Idempotency-Key",
        ),
        (
            ev("POST", &at("dev", "/deployments")).raw_body("{\"service\": "),
            400,
            "InvalidRequest",
            "not valid JSON",
        ),
        (
            ev("POST", &at("dev", "/deployments")),
            400,
            "InvalidRequest",
            "a JSON body is required",
        ),
    ];
    for (e, status, name, needle) in cases {
        assert_error(&send(&d, e).await, status, name, needle);
    }
    assert!(w.executions.started_names().is_empty());
    assert!(w.store.env("checkout", "dev").is_none());
}

#[tokio::test]
async fn a_second_start_is_409_naming_the_running_deployment() {
    let (w, d) = world().await;
    let first = send(
        &d,
        ev("POST", &at("dev", "/deployments")).body(&start_body()),
    )
    .await;
    w.clock.advance(60);
    let mut next = start_body();
    next["version"] = json!("1.3.1");
    let r = send(&d, ev("POST", &at("dev", "/deployments")).body(&next)).await;
    let running = first.body["deployment_id"].as_str().unwrap();
    assert_error(&r, 409, "Conflict", running);
    assert_eq!(w.executions.started_names(), vec![running]);
}

#[tokio::test]
async fn the_caller_comes_from_iam_and_is_required() {
    let (w, d) = world().await;
    // GIVEN no user ARN: the caller id is the deployer
    let r = send(
        &d,
        ev("POST", &at("dev", "/deployments"))
            .iam(json!({"callerId": "AROAEXAMPLE:ci-session", "accountId": "123456789012"}))
            .body(&start_body()),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        w.executions.started.lock().unwrap()[0].1.deployer,
        "AROAEXAMPLE:ci-session"
    );
    // GIVEN no IAM identity at all THEN 401 and nothing happens
    let (w, d) = world().await;
    let mut e = ev("POST", &at("dev", "/deployments")).body(&start_body());
    e.v["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert_error(&send(&d, e).await, 401, "Unauthenticated", "SigV4");
    let r = send(&d, ev("GET", "/services/checkout/metrics").iam(json!({}))).await;
    assert_error(&r, 401, "Unauthenticated", "IAM");
    assert!(w.executions.started_names().is_empty());
}

#[tokio::test]
async fn a_base64_body_is_decoded_and_a_named_stage_is_stripped() {
    let (w, d) = world().await;
    let encoded = aws_smithy_types::base64::encode(start_body().to_string());
    let mut e = ev("POST", &format!("/v1{}", at("dev", "/deployments")))
        .raw_body(&encoded)
        .base64();
    e.v["requestContext"]["stage"] = json!("v1");
    let r = send(&d, e).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        r.body["status_url"]
            .as_str()
            .unwrap()
            .starts_with("/v1/services/checkout/environments/dev/deployments/")
    );
    assert_eq!(w.executions.started_names().len(), 1);
}

// ---------------------------------------------------------------- bad input in general

#[tokio::test]
async fn unknown_routes_methods_and_oversized_bodies_are_refused() {
    let (w, d) = world().await;
    assert_error(
        &send(&d, ev("GET", "/nothing/here")).await,
        404,
        "NotFound",
        "no route GET /nothing/here",
    );
    let r = send(&d, ev("DELETE", &at("dev", "/deployments/d-1"))).await;
    assert_error(&r, 405, "MethodNotAllowed", "use GET");
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let big = format!("{{\"service\": \"{}\"}}", "x".repeat(http::MAX_BODY_BYTES));
    let r = send(&d, ev("POST", &at("dev", "/deployments")).raw_body(&big)).await;
    assert_error(&r, 413, "PayloadTooLarge", "64 KiB");
    let mut unknown = start_body();
    unknown["colour"] = json!("blue");
    let r = send(&d, ev("POST", &at("dev", "/deployments")).body(&unknown)).await;
    assert_error(&r, 400, "InvalidRequest", "unknown field `colour`");
    assert!(w.executions.started_names().is_empty());
}

#[tokio::test]
async fn aws_errors_are_502_with_a_retry_hint_and_throttling_is_503() {
    let (w, d) = world().await;
    w.executions
        .fail_next_starts
        .lock()
        .unwrap()
        .push(AdapterError::Other(
            "StartExecution: AccessDeniedException: no".into(),
        ));
    let r = send(
        &d,
        ev("POST", &at("dev", "/deployments")).body(&start_body()),
    )
    .await;
    assert_error(&r, 502, "AwsError", "retry");
    w.executions
        .fail_next_starts
        .lock()
        .unwrap()
        .push(AdapterError::Throttled(
            "StartExecution: ThrottlingException: Rate exceeded".into(),
        ));
    let r = send(
        &d,
        ev("POST", &at("dev", "/deployments")).body(&start_body()),
    )
    .await;
    assert_error(&r, 503, "Throttled", "retry");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    // the failed starts left the environment free
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        None
    );
}

// ---------------------------------------------------------------- GET /deployments/{id}

fn ledger_entry(step_index: u32, green: u16, target: ColorMetrics) -> LedgerEntry {
    let th = Thresholds::default();
    let alarms = vec![AlarmState {
        name: sample::ALARM.into(),
        status: AlarmStatus::Ok,
        reason: "Threshold not crossed".into(),
    }];
    let baseline = ColorMetrics {
        requests: 9000,
        errors_5xx: 1,
        p99_ms: Some(42.0),
    };
    let evaluation = evaluate(&EvaluationInput {
        target,
        baseline,
        alarms: &alarms,
        thresholds: &th,
        remembered_baseline_p99_ms: None,
    });
    LedgerEntry {
        deployment_id: sample::DEPLOYMENT_ID.into(),
        kind: EvaluationKind::Step,
        step_index,
        verification_index: 0,
        split: TrafficSplit::with_percent_on(Color::Green, green).unwrap(),
        target_color: Color::Green,
        window_start: datetime!(2025-01-03 10:01:00 UTC),
        window_end: datetime!(2025-01-03 10:02:00 UTC),
        target,
        baseline,
        alarms,
        evaluation,
    }
}

/// A deployment of 1.3.0 shifted to 25 % on green, with its step and evaluation recorded.
async fn shifted_to_25(w: &World) {
    w.store
        .begin(&sample::record(Phase::DeployingGreen))
        .await
        .unwrap();
    w.store
        .transition(
            sample::DEPLOYMENT_ID,
            Phase::ShiftingTraffic,
            Some(25),
            None,
        )
        .await
        .unwrap();
    let split = TrafficSplit::with_percent_on(Color::Green, 25).unwrap();
    *w.router.split.lock().unwrap() = split;
    w.store
        .record_step(&StepRecord {
            deployment_id: sample::DEPLOYMENT_ID.into(),
            step_index: 1,
            split,
            target_color: Color::Green,
            shifted_at: datetime!(2025-01-03 10:01:00 UTC),
        })
        .await
        .unwrap();
    w.store
        .record_evaluation(&ledger_entry(
            1,
            25,
            ColorMetrics {
                requests: 500,
                errors_5xx: 1,
                p99_ms: Some(45.0),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deployment_reads_with_live_weights_steps_and_ledger_numbers() {
    let (w, d) = world().await;
    shifted_to_25(&w).await;
    let r = send(
        &d,
        ev(
            "GET",
            &at("dev", &format!("/deployments/{}", sample::DEPLOYMENT_ID)),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["status"], json!("IN_PROGRESS"));
    assert_eq!(b["phase"], json!("SHIFTING_TRAFFIC"));
    assert_eq!(
        (&b["version"], &b["previous_version"]),
        (&json!("1.3.0"), &json!("1.2.0"))
    );
    assert_eq!(
        (&b["active_color"], &b["target_color"]),
        (&json!("blue"), &json!("green"))
    );
    assert_eq!(b["current_weights"], json!({"blue": 75, "green": 25}));
    assert_eq!(
        b["steps"],
        json!([{"step_index": 1, "weights": {"blue": 75, "green": 25}, "target_color": "green",
                "shifted_at": "2025-01-03T10:01:00Z"}])
    );
    let e = &b["ledger"][0];
    assert_eq!(e["window"]["start"], json!("2025-01-03T10:01:00Z"));
    assert_eq!((&e["requests"], &e["errors_5xx"]), (&json!(500), &json!(1)));
    assert_eq!(e["error_rate_percent"], json!(0.2));
    assert_eq!(e["p99_ms"], json!({"target": 45.0, "baseline": 42.0}));
    assert_eq!(e["alarms"][0]["status"], json!("OK"));
    assert_eq!(e["verdict"], json!("pass"));
    // the listener is read in the environment's account (no role here)
    assert_eq!(w.access.roles(), vec![None]);

    let r = send(&d, ev("GET", &at("dev", "/deployments/nope"))).await;
    assert_error(&r, 404, "NotFound", "deployment nope not found");
    let r = send(&d, ev("GET", &at("dev", "/deployments/b%20d"))).await;
    assert_error(&r, 400, "InvalidRequest", "deployment id");
}

// ---------------------------------------------------------------- scope by path

/// Team A (payments) is allowed its own paths only; it sends checkout's deployment id under them.
fn payments(method: &str, tail: &str) -> Ev {
    ev(
        method,
        &format!(
            "/services/payments/environments/dev/deployments/{}{tail}",
            sample::DEPLOYMENT_ID
        ),
    )
}

#[tokio::test]
async fn another_services_deployment_id_under_ones_own_path_is_not_found_and_nothing_changes() {
    // GIVEN checkout's deployment waiting for approval at 0 % (and one shifting, below)
    let (w, d) = world().await;
    w.store
        .begin(&sample::record(Phase::DeployingGreen))
        .await
        .unwrap();
    w.store
        .await_approval(
            sample::DEPLOYMENT_ID,
            "tok-1",
            3600,
            datetime!(2025-01-03 10:30:00 UTC),
        )
        .await
        .unwrap();
    let waiting = w.store.record(sample::DEPLOYMENT_ID);
    // WHEN payments' caller reads, rolls back, approves, rejects or troubleshoots it through
    // payments' paths (or checkout's id under checkout's other environment)
    let attempts = vec![
        payments("GET", ""),
        payments("GET", "/troubleshoot"),
        payments("POST", "/rollback").body(&json!({"confirm": true, "reason": "x"})),
        payments("POST", "/approve").body(&json!({"comment": "ok"})),
        payments("POST", "/reject").body(&json!({"reason": "no"})),
        ev(
            "POST",
            &at(
                "prd",
                &format!("/deployments/{}/approve", sample::DEPLOYMENT_ID),
            ),
        ),
    ];
    for e in attempts {
        let r = send(&d, e).await;
        // THEN 404, worded as for an id that does not exist, naming nothing of checkout's
        assert_error(&r, 404, "NotFound", "not found in");
        let msg = r.body["message"].as_str().unwrap_or_default();
        assert!(!msg.contains("1.3.0") && !msg.contains("AWAITING"), "{msg}");
    }
    // AND nothing changed: same record, no decision, no traffic, no execution touched
    assert_eq!(w.store.record(sample::DEPLOYMENT_ID), waiting);
    assert!(w.router.writes().is_empty());
    assert!(w.executions.stopped.lock().unwrap().is_empty());
    assert!(w.executions.resumed.lock().unwrap().is_empty());
    assert!(w.executions.failed_tasks.lock().unwrap().is_empty());
    // and through checkout's own path the same id is there
    let r = send(
        &d,
        ev(
            "GET",
            &at("dev", &format!("/deployments/{}", sample::DEPLOYMENT_ID)),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------- GET …/deployments

#[tokio::test]
async fn history_is_newest_first_and_paged() {
    let (w, d) = world().await;
    for (i, id) in ["d-1", "d-2", "d-3"].iter().enumerate() {
        let mut r = sample::record(Phase::Succeeded);
        r.id = (*id).into();
        r.started_at += time::Duration::hours(i as i64);
        w.store.records.lock().unwrap().insert((*id).into(), r);
    }
    // another service's deployments in the same environment, newer than all of checkout's
    for id in ["p-1", "p-2"] {
        let mut r = sample::record(Phase::Succeeded);
        r.id = id.into();
        r.service = "payments".into();
        r.started_at += time::Duration::hours(9);
        w.store.records.lock().unwrap().insert(id.into(), r);
    }
    let r = send(
        &d,
        ev("GET", &at("dev", "/deployments")).query(&[("limit", "2")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["deployment_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["d-3", "d-2"]);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = send(
        &d,
        ev("GET", &at("dev", "/deployments")).query(&[("cursor", &cursor)]),
    )
    .await;
    assert_eq!(r.body["deployments"][0]["deployment_id"], json!("d-1"));
    assert_eq!(r.body["next_cursor"], Value::Null);
    // payments' history is its own
    let r = send(
        &d,
        ev("GET", "/services/payments/environments/dev/deployments"),
    )
    .await;
    let ids: Vec<&str> = r.body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["deployment_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["p-1", "p-2"].into_iter().rev().collect::<Vec<_>>()
    );

    // the query cannot name a scope: the path is the only one
    for named in [("environment", "prd"), ("service", "payments")] {
        let r = send(&d, ev("GET", &at("dev", "/deployments")).query(&[named])).await;
        assert_error(&r, 400, "ScopeOutsidePath", "taken from the path");
    }
    let r = send(
        &d,
        ev("GET", &at("dev", "/deployments")).query(&[("limit", "500")]),
    )
    .await;
    assert_error(
        &r,
        400,
        "InvalidRequest",
        "limit must be a whole number from 1 to 100",
    );
}

// ---------------------------------------------------------------- POST /deployments/{id}/rollback

#[tokio::test]
async fn rollback_without_confirm_says_what_would_happen_and_changes_nothing() {
    let (w, d) = world().await;
    shifted_to_25(&w).await;
    let path = at(
        "dev",
        &format!("/deployments/{}/rollback", sample::DEPLOYMENT_ID),
    );
    for e in [
        ev("POST", &path),
        ev("POST", &path).body(&json!({"confirm": false})),
    ] {
        let r = send(&d, e).await;
        assert_error(
            &r,
            400,
            "ConfirmationRequired",
            "Rollback will shift all traffic to Blue (v1.2.0)",
        );
    }
    assert!(w.router.writes().is_empty());
    assert_eq!(
        w.store.record(sample::DEPLOYMENT_ID).map(|r| r.phase),
        Some(Phase::ShiftingTraffic)
    );
    assert!(w.executions.stopped.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_confirmed_rollback_restores_blue_and_stops_the_execution() {
    let (w, d) = world().await;
    shifted_to_25(&w).await;
    let path = at(
        "dev",
        &format!("/deployments/{}/rollback", sample::DEPLOYMENT_ID),
    );
    let r = send(
        &d,
        ev("POST", &path).body(&json!({"confirm": true, "reason": "latency spike"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reason = format!("manual rollback by {ALICE}: latency spike");
    assert_eq!(r.body["outcome"], json!("ROLLED_BACK"));
    assert_eq!(r.body["weights"], json!({"blue": 100, "green": 0}));
    assert_eq!(r.body["reason"], json!(reason));
    assert_eq!(r.body["execution_stopped"], json!(true));
    assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
    let rec = w.store.record(sample::DEPLOYMENT_ID).unwrap();
    assert_eq!(rec.status, DeploymentStatus::RolledBack);
    assert_eq!(
        w.executions.stopped.lock().unwrap().clone(),
        vec![(
            rec.execution_arn.clone(),
            "BlueGreen.RolledBack".to_string(),
            reason
        )]
    );
    // WHEN it is asked again THEN the finished deployment points at the environment rollback
    let r = send(&d, ev("POST", &path).body(&json!({"confirm": true}))).await;
    assert_error(
        &r,
        409,
        "Conflict",
        "POST /services/checkout/environments/dev/rollback",
    );
    assert_eq!(w.router.writes().len(), 1);
    let r = send(
        &d,
        ev("POST", &at("dev", "/deployments/nope/rollback")).body(&json!({"confirm": true})),
    )
    .await;
    assert_error(&r, 404, "NotFound", "nope");
    let r = send(&d, ev("POST", &path).body(&json!({"confirm": "yes"}))).await;
    assert_error(&r, 400, "InvalidRequest", "invalid type");
}

#[tokio::test]
async fn rolling_back_a_deployment_that_has_not_begun_ends_it_without_touching_traffic() {
    // GIVEN a deployment that is only requested (its first phase has not read the colors)
    let (w, d) = world().await;
    let request: shared::contracts::DeploymentRequest =
        serde_json::from_value(sample::request()).unwrap();
    let requested = request.requested_record(
        sample::DEPLOYMENT_ID,
        &shared::fakes::FakeExecutions::arn(sample::DEPLOYMENT_ID),
        datetime!(2025-01-03 10:00:00 UTC),
    );
    w.store.record_request(&requested).await.unwrap();
    let path = at(
        "dev",
        &format!("/deployments/{}/rollback", sample::DEPLOYMENT_ID),
    );
    // WHEN a person asks, THEN the confirmation says what will happen
    let r = send(&d, ev("POST", &path)).await;
    assert_error(
        &r,
        400,
        "ConfirmationRequired",
        "Rollback will stop deployment checkout-dev-1-3-0-0001 of v1.3.0 before it deploys anything; traffic is not touched.",
    );
    // AND confirmed, it ends FAILED with why, the execution is stopped, traffic untouched
    let r = send(&d, ev("POST", &path).body(&json!({"confirm": true}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], json!("FAILED"));
    assert_eq!(r.body["weights"], Value::Null);
    assert_eq!(r.body["active_color"], Value::Null);
    assert_eq!(
        r.body["reason"],
        json!(format!(
            "never got past deploying green: manual rollback by {ALICE}"
        ))
    );
    assert!(w.router.writes().is_empty());
    assert_eq!(w.executions.stopped.lock().unwrap().len(), 1);
    let rec = w.store.record(sample::DEPLOYMENT_ID).unwrap();
    assert_eq!((rec.status, rec.colors()), (DeploymentStatus::Failed, None));
}

// ---------------------------------------------------------------- POST …/environments/{env}/rollback

/// checkout/dev after 1.3.0 succeeded on green: green active, blue standby on 1.2.0.
fn released(w: &World) {
    let mut r = sample::record(Phase::Succeeded);
    r.finish(Phase::Succeeded, datetime!(2025-01-03 09:50:00 UTC), None);
    w.store.records.lock().unwrap().insert(r.id.clone(), r);
    w.store.put_env(EnvironmentState {
        service: "checkout".into(),
        environment: "dev".into(),
        active_color: Some(Color::Green),
        active_version: Some("1.3.0".into()),
        standby_version: Some("1.2.0".into()),
        active_deployment: None,
        last_deployment: Some(sample::DEPLOYMENT_ID.into()),
        updated_at: datetime!(2025-01-03 09:50:00 UTC),
    });
    *w.router.split.lock().unwrap() = TrafficSplit::all_on(Color::Green);
}

fn env_rollback(confirm: bool) -> Ev {
    ev("POST", &at("dev", "/rollback"))
        .body(&json!({"confirm": confirm, "reason": "1.3.0 corrupts carts"}))
}

#[tokio::test]
async fn an_environment_rollback_needs_confirmation_and_says_what_it_will_do() {
    let (w, d) = world().await;
    released(&w);
    let r = send(&d, env_rollback(false)).await;
    assert_error(
        &r,
        400,
        "ConfirmationRequired",
        "Rollback will shift all traffic to Blue (v1.2.0); Green (v1.3.0) becomes standby",
    );
    assert!(w.router.writes().is_empty());
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        None
    );
    assert_eq!(w.store.records.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_confirmed_environment_rollback_swaps_the_colors_and_is_recorded() {
    let (w, d) = world().await;
    released(&w);
    let r = send(&d, env_rollback(true)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = "checkout-dev-rollback-1735898405000";
    assert_eq!(r.body["deployment_id"], json!(id));
    assert_eq!(
        r.body["active"],
        json!({"color": "blue", "version": "1.2.0"})
    );
    assert_eq!(
        r.body["standby"],
        json!({"color": "green", "version": "1.3.0"})
    );
    assert_eq!(r.body["weights"], json!({"blue": 100, "green": 0}));
    let report: Vec<&str> = r.body["report"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        report.contains(&"  [100%] Blue: 100% | Green: 0%"),
        "{report:?}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.contains("Blue (Active):") && l.contains("v1.2.0")),
        "{report:?}"
    );
    // THEN traffic moved once, verified, and the environment and record say so
    assert_eq!(w.router.writes(), vec![TrafficSplit::all_on(Color::Blue)]);
    let env = w.store.env("checkout", "dev").unwrap();
    assert_eq!(
        (
            env.active_color,
            env.active_version.as_deref(),
            env.standby_version.as_deref(),
            env.active_deployment.as_deref(),
            env.last_deployment.as_deref()
        ),
        (
            Some(Color::Blue),
            Some("1.2.0"),
            Some("1.3.0"),
            None,
            Some(id)
        )
    );
    let rec = w.store.record(id).unwrap();
    assert_eq!(rec.strategy, shared::domain::Strategy::Rollback);
    assert_eq!(rec.status, DeploymentStatus::Succeeded);
    assert_eq!(
        (rec.version.as_str(), rec.previous_version.as_deref()),
        ("1.2.0", Some("1.3.0"))
    );
    assert_eq!(
        (rec.active_color, rec.target_color),
        (Some(Color::Green), Some(Color::Blue))
    );
    assert_eq!(rec.deployer, ALICE);
    assert_eq!(rec.image, sample::IMAGE_V120);
    assert_eq!(
        rec.reason.as_deref(),
        Some(format!("manual rollback by {ALICE}: 1.3.0 corrupts carts").as_str())
    );
    assert_eq!(w.store.steps(id).await.unwrap().len(), 1);
    // AND it shows in the history like any deployment
    let r = send(&d, ev("GET", &at("dev", &format!("/deployments/{id}")))).await;
    assert_eq!(r.body["current_weights"], json!({"blue": 100, "green": 0}));
}

#[tokio::test]
async fn an_environment_rollback_refuses_unhealthy_standby_running_deployments_and_no_history() {
    // GIVEN blue (the standby) has no healthy targets
    let (w, d) = world().await;
    released(&w);
    w.targets.set(&sample::tg(sample::BLUE_TG), 2, 0);
    let r = send(&d, env_rollback(true)).await;
    assert_error(
        &r,
        409,
        "Conflict",
        "Blue has no healthy targets (0/2 healthy)",
    );
    assert!(w.router.writes().is_empty());
    assert_eq!(w.store.records.lock().unwrap().len(), 1, "nothing recorded");
    assert_eq!(
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment),
        None,
        "the lock is released"
    );

    // GIVEN a deployment running
    let (w, d) = world().await;
    released(&w);
    let mut env = w.store.env("checkout", "dev").unwrap();
    env.active_deployment = Some("checkout-dev-1-4-0-1".into());
    w.store.put_env(env);
    let r = send(&d, env_rollback(true)).await;
    assert_error(
        &r,
        409,
        "Conflict",
        "POST /services/checkout/environments/dev/deployments/checkout-dev-1-4-0-1/rollback",
    );
    assert!(w.router.writes().is_empty());

    // GIVEN no finished deployment yet, or an unknown environment
    let (w, d) = world().await;
    let r = send(&d, env_rollback(true)).await;
    assert_error(&r, 409, "Conflict", "no previous version");
    let r = send(
        &d,
        ev("POST", &at("prd", "/rollback")).body(&json!({"confirm": true})),
    )
    .await;
    assert_error(&r, 404, "NotFound", "checkout/prd is not in the registry");
    // a body naming a service: refused by name, the path is the only scope
    let r = send(
        &d,
        ev("POST", &at("dev", "/rollback")).body(&json!({"service": "payments", "confirm": true})),
    )
    .await;
    assert_error(
        &r,
        400,
        "ScopeOutsidePath",
        "service is taken from the path",
    );
    assert!(w.router.writes().is_empty());
}

#[tokio::test]
async fn a_failed_traffic_write_marks_the_rollback_failed_and_frees_the_environment() {
    let (w, d) = world().await;
    released(&w);
    w.router
        .fail_next_writes
        .lock()
        .unwrap()
        .push(AdapterError::Other(
            "listener reads back Blue: 50% | Green: 50%".into(),
        ));
    let r = send(&d, env_rollback(true)).await;
    assert_error(&r, 502, "AwsError", "reads back");
    let id = "checkout-dev-rollback-1735898405000";
    let rec = w.store.record(id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Failed);
    assert!(rec.reason.unwrap().contains("reads back"));
    let env = w.store.env("checkout", "dev").unwrap();
    assert_eq!(
        (env.active_color, env.active_deployment),
        (Some(Color::Green), None),
        "the colors are unchanged and the lock released"
    );
    assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Green));
}

// ---------------------------------------------------------------- GET /metrics

#[tokio::test]
async fn metrics_summarise_each_environment_and_list_recent_failures() {
    let (w, d) = world().await;
    let rows = [
        ("d-1", "dev", Phase::Failed, 0, Some("health check timeout")),
        ("d-2", "dev", Phase::Succeeded, 10, None),
        ("p-1", "prd", Phase::Succeeded, 20, None),
    ];
    for (id, env, phase, minutes, reason) in rows {
        let mut r = sample::record(Phase::DeployingGreen);
        r.id = id.into();
        r.environment = env.into();
        r.started_at = datetime!(2025-01-02 09:00:00 UTC) + time::Duration::minutes(minutes);
        r.finish(
            phase,
            r.started_at + time::Duration::minutes(5),
            reason.map(str::to_string),
        );
        w.store.records.lock().unwrap().insert(id.into(), r);
    }
    // one outside the window
    let mut old = sample::record(Phase::Failed);
    old.id = "old".into();
    old.started_at = datetime!(2024-12-01 09:00:00 UTC);
    w.store.records.lock().unwrap().insert("old".into(), old);
    // another service's failure in the window: not checkout's metrics
    let mut theirs = sample::record(Phase::Failed);
    theirs.id = "payments-1".into();
    theirs.service = "payments".into();
    theirs.started_at = datetime!(2025-01-02 09:30:00 UTC);
    theirs.finish(
        Phase::Failed,
        theirs.started_at + time::Duration::minutes(1),
        Some("payments broke".into()),
    );
    w.store
        .records
        .lock()
        .unwrap()
        .insert(theirs.id.clone(), theirs);

    let r = send(
        &d,
        ev("GET", "/services/checkout/metrics").query(&[("days", "7")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["days"], json!(7));
    assert_eq!(
        r.body["environments"],
        json!([
            {"environment": "dev", "deployments": 2, "succeeded": 1, "failed": 1, "rolled_back": 0,
             "in_progress": 0, "not_deployed": 0, "average_duration_seconds": 300,
             "mttr_seconds": 600, "success_rate_percent": 50.0},
            {"environment": "prd", "deployments": 1, "succeeded": 1, "failed": 0, "rolled_back": 0,
             "in_progress": 0, "not_deployed": 0, "average_duration_seconds": 300,
             "mttr_seconds": null, "success_rate_percent": 100.0},
        ])
    );
    // DORA for prd: one release in 7 days, no push time known, nothing failed
    assert_eq!(
        r.body["dora"],
        json!({"environment": "prd", "deployments": 1, "deployment_frequency_per_day": 1.0 / 7.0,
               "lead_time_seconds": null, "change_failure_rate_percent": 0.0,
               "time_to_restore_seconds": null})
    );
    let dev = send(
        &d,
        ev("GET", "/services/checkout/metrics").query(&[("days", "7"), ("environment", "dev")]),
    )
    .await;
    assert_eq!(dev.body["dora"]["change_failure_rate_percent"], json!(50.0));
    assert_eq!(dev.body["dora"]["time_to_restore_seconds"], json!(600));
    let recent: Vec<(&str, &str)> = r.body["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deployment_id"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recent,
        vec![
            ("p-1", "SUCCEEDED"),
            ("d-2", "SUCCEEDED"),
            ("d-1", "FAILED")
        ]
    );
    assert_eq!(r.body["recent"][2]["reason"], json!("health check timeout"));
    assert_eq!(r.body["recent"][2]["duration_seconds"], json!(300));

    let r = send(&d, ev("GET", "/services/checkout/metrics")).await;
    assert_eq!(r.body["days"], json!(7));
    assert_eq!(r.body["service"], json!("checkout"));
    let r = send(
        &d,
        ev("GET", "/services/checkout/metrics").query(&[("service", "payments")]),
    )
    .await;
    assert_error(
        &r,
        400,
        "ScopeOutsidePath",
        "service is taken from the path",
    );
    let r = send(
        &d,
        ev("GET", "/services/checkout/metrics").query(&[("days", "91")]),
    )
    .await;
    assert_error(
        &r,
        400,
        "InvalidRequest",
        "days must be a whole number from 1 to 90",
    );
}

// ---------------------------------------------------------------- registry

#[tokio::test]
async fn services_are_registered_from_the_path() {
    let w = World::default();
    let d = deps(&w);
    let r = send(&d, ev("GET", "/services/billing")).await;
    assert_error(&r, 404, "NotFound", "PUT /services/billing");
    let r = send(
        &d,
        ev("PUT", "/services/billing").body(&json!({"repository": "team/billing"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["service"], json!("billing"));
    assert_eq!(r.body["auto_deploy"], json!(["dev"]));
    let r = send(&d, ev("GET", "/services/billing")).await;
    assert_eq!(
        (r.status, &r.body["repository"]),
        (200, &json!("team/billing"))
    );
    let refused = [
        (
            json!({"service": "billing", "repository": "team/billing"}),
            "ScopeOutsidePath",
            "taken from the path",
        ),
        (
            json!({"repository": "Team Billing"}),
            "InvalidRequest",
            "repository",
        ),
        (
            json!({"repository": "x", "extra": 1}),
            "InvalidRequest",
            "unknown field `extra`",
        ),
        (json!({"repository": 7}), "InvalidRequest", "invalid type"),
    ];
    for (body, name, needle) in refused {
        let r = send(&d, ev("PUT", "/services/other").body(&body)).await;
        assert_error(&r, 400, name, needle);
    }
    assert!(w.registry.services.lock().unwrap().get("other").is_none());
    // a repository releases one service
    let r = send(
        &d,
        ev("PUT", "/services/other").body(&json!({"repository": "team/billing"})),
    )
    .await;
    assert_error(
        &r,
        409,
        "Conflict",
        "each ECR repository releases one service",
    );
}

fn environment_body() -> Value {
    let mut v = serde_json::to_value(World::environment_config()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("service");
    o.remove("environment");
    v
}

/// Finding 2 of the security review: team A registering an environment that names team B's
/// role (in an account checkout does not list) is refused, and nothing is stored.
#[tokio::test]
async fn an_environment_naming_a_role_in_an_account_its_service_does_not_list_is_refused() {
    let (w, d) = world().await;
    let path = "/services/checkout/environments/prd";
    let mut body = environment_body();
    body["role_arn"] = json!("arn:aws:iam::555555555555:role/bluegreen-environment-search-prd");
    let r = send(&d, ev("PUT", path).body(&body)).await;
    assert_error(&r, 400, "InvalidRequest", "account \"555555555555\"");
    assert!(
        w.registry
            .environment_config("checkout", "prd")
            .await
            .unwrap()
            .is_none(),
        "stored anyway"
    );
    // the team cannot list the account itself
    let mut service = send(&d, ev("GET", "/services/checkout")).await.body;
    service["accounts"] = json!(["555555555555"]);
    service.as_object_mut().map(|o| o.remove("service"));
    let r = send(&d, ev("PUT", "/services/checkout").body(&service)).await;
    assert_error(&r, 403, "AdminRequired", "PUT /services/checkout/policy");
    // once an administrator lists the account, the same registration is accepted
    let r = send(
        &d,
        ev("PUT", "/services/checkout/policy").body(&json!({"accounts": ["555555555555"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(&d, ev("PUT", path).body(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Finding 1 of the security review: a team that may write its registry entries cannot take
/// the protection or the approval off production (nor list another account, nor loosen its
/// gates); only the admin route changes them, and a team's update keeps what it set.
#[tokio::test]
async fn only_the_admin_route_changes_protection_approval_accounts_and_gates() {
    let (w, d) = world().await;
    let path = "/services/checkout/environments/prd";
    let r = send(&d, ev("PUT", path).body(&environment_body())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = || {
        w.registry
            .environments
            .lock()
            .unwrap()
            .get(&("checkout".to_string(), "prd".to_string()))
            .cloned()
            .unwrap()
    };
    let before = stored();
    assert!(before.is_protected() && before.approval_policy().required);

    // WHEN the team sends its wiring with the protection or the approval taken off
    for (field, value, needle) in [
        ("protected", json!(false), "\"protected\":false"),
        ("approval", json!({"required": false}), "\"required\":false"),
        (
            "approval",
            json!({"required": true, "timeout_seconds": 60}),
            "\"timeout_seconds\":60",
        ),
    ] {
        let mut body = environment_body();
        body[field] = value;
        let r = send(&d, ev("PUT", path).body(&body)).await;
        // THEN it is refused, naming the admin route, and nothing changes
        assert_error(&r, 403, "AdminRequired", needle);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("PUT {path}/policy"))
        );
        assert_eq!(stored(), before);
    }
    // a new production environment cannot be born unprotected either
    let mut body = environment_body();
    body["protected"] = json!(false);
    let r = send(
        &d,
        ev("PUT", "/services/checkout/environments/production").body(&body),
    )
    .await;
    assert_error(&r, 403, "AdminRequired", "\"protected\":false");
    assert!(
        !w.registry
            .environments
            .lock()
            .unwrap()
            .contains_key(&("checkout".to_string(), "production".to_string()))
    );
    // restating the policy in force is no change
    let mut body = environment_body();
    body["protected"] = json!(true);
    let r = send(&d, ev("PUT", path).body(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored(), before, "stored exactly as before");

    // WHEN an administrator changes them
    let r = send(
        &d,
        ev("PUT", &format!("{path}/policy")).body(&json!({"approval": {"timeout_seconds": 3600}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // (what it leaves out stays: approval is still required)
    assert_eq!(
        r.body["approval"],
        json!({"required": true, "timeout_seconds": 3600})
    );
    // THEN a team's later update that does not mention them keeps them
    let mut body = environment_body();
    body["steps"] = json!([20, 100]);
    let r = send(&d, ev("PUT", path).body(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = stored();
    assert_eq!(after.steps.steps(), [20, 100]);
    assert_eq!(after.approval_policy().timeout_seconds, 3600);
    assert!(after.is_protected());

    // the admin route takes only what it governs, and only for what is registered
    let refused = [
        (
            json!({"steps": [100]}),
            400,
            "InvalidRequest",
            "unknown field \"steps\"",
        ),
        (
            json!({"protected": "no"}),
            400,
            "InvalidRequest",
            "true, false or null",
        ),
        (
            json!({"approval": {"required": true, "timeout_seconds": 0}}),
            400,
            "InvalidRequest",
            "timeout_seconds",
        ),
    ];
    for (body, status, name, needle) in refused {
        let r = send(&d, ev("PUT", &format!("{path}/policy")).body(&body)).await;
        assert_error(&r, status, name, needle);
    }
    assert_eq!(stored(), after);
    let r = send(
        &d,
        ev("PUT", "/services/checkout/environments/qa/policy").body(&json!({"protected": true})),
    )
    .await;
    assert_error(&r, 404, "NotFound", "checkout/qa is not registered");
    // null restores the default for the environment's name
    for (body, protected) in [
        (json!({"protected": false}), false),
        (json!({"protected": null}), true),
    ] {
        let r = send(&d, ev("PUT", &format!("{path}/policy")).body(&body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(stored().is_protected(), protected, "{body}");
    }

    // a service's gates: the team cannot loosen them; the admin can
    let r = send(
        &d,
        ev("PUT", "/services/checkout").body(&json!({
            "repository": "checkout",
            "promotion": {"p99_limit_ms": 60000.0}
        })),
    )
    .await;
    assert_error(&r, 403, "AdminRequired", "p99_limit_ms");
    let r = send(
        &d,
        ev("PUT", "/services/checkout/policy").body(&json!({"promotion": {"p99_limit_ms": 250.0}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(
        &d,
        ev("PUT", "/services/checkout").body(&json!({"repository": "checkout"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["promotion"]["p99_limit_ms"], json!(250.0));

    // whose evidence counts and who is whom on GitHub: the team cannot list itself; the
    // admin can
    let recorders = json!({"integration": ["arn:aws:sts::123456789012:assumed-role/dev/me"]});
    for body in [
        json!({"repository": "checkout", "evidence_recorders": {"integration": ["arn:aws:iam::123456789012:role/dev"]}}),
        json!({"repository": "checkout", "github_logins": {"arn:aws:iam::123456789012:role/dev": "nobody"}}),
    ] {
        let r = send(&d, ev("PUT", "/services/checkout").body(&body)).await;
        assert_error(
            &r,
            403,
            "AdminRequired",
            "evidence recorders and GitHub logins",
        );
    }
    let r = send(
        &d,
        ev("PUT", "/services/checkout/policy").body(&json!({"evidence_recorders": recorders})),
    )
    .await;
    assert_error(&r, 400, "InvalidRequest", "evidence_recorders.integration");
    let r = send(
        &d,
        ev("PUT", "/services/checkout/policy").body(&json!({
            "evidence_recorders": {"integration": ["arn:aws:iam::123456789012:role/ci-tests"]},
            "github_logins": {"arn:aws:iam::123456789012:user/alice": "alice-gh"}
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["evidence_recorders"]["integration"],
        json!(["arn:aws:iam::123456789012:role/ci-tests"])
    );
    let r = send(
        &d,
        ev("PUT", "/services/checkout").body(&json!({"repository": "checkout"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["github_logins"],
        json!({"arn:aws:iam::123456789012:user/alice": "alice-gh"})
    );
}

#[tokio::test]
async fn environments_are_validated_and_need_their_service() {
    let w = World::default();
    let d = deps(&w);
    let path = "/services/checkout/environments/prd";
    // GIVEN checkout is not registered THEN its environment is 404
    let r = send(&d, ev("PUT", path).body(&environment_body())).await;
    assert_error(&r, 404, "NotFound", "PUT /services/checkout first");
    let (w, d) = world().await;
    let r = send(&d, ev("GET", path)).await;
    assert_error(&r, 404, "NotFound", "checkout/prd is not registered");
    let r = send(&d, ev("PUT", path).body(&environment_body())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["service"], &r.body["environment"]),
        (&json!("checkout"), &json!("prd"))
    );
    let r = send(&d, ev("GET", path)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["traffic"]["blue_target_group_arn"],
        json!(sample::BLUE_TG)
    );
    let mut bad = environment_body();
    bad["steps"] = json!([10, 50]);
    let r = send(
        &d,
        ev("PUT", "/services/checkout/environments/tst").body(&bad),
    )
    .await;
    assert_error(&r, 400, "InvalidRequest", "the last step must be 100%");
    let mut named = environment_body();
    named["environment"] = json!("tst");
    let r = send(
        &d,
        ev("PUT", "/services/checkout/environments/tst").body(&named),
    )
    .await;
    assert_error(
        &r,
        400,
        "ScopeOutsidePath",
        "environment is taken from the path",
    );
    assert!(
        w.registry
            .environments
            .lock()
            .unwrap()
            .keys()
            .all(|(_, e)| e != "tst")
    );
}

// ---------------------------------------------------------------- the OpenAPI document

#[test]
fn the_openapi_document_describes_exactly_the_route_table() {
    let doc: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    let mut documented = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.insert((method.to_uppercase(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            assert!(
                responses.contains_key("400") || method == "get",
                "{method} {path} documents no 400"
            );
        }
    }
    let routed: std::collections::BTreeSet<(String, String)> = routes::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routed);
}

// ---------------------------------------------------------------- properties of the handler

mod properties {
    use super::*;
    use proptest::prelude::*;

    const WRITES: &[(&str, &str)] = &[
        ("POST", "/services/checkout/environments/dev/deployments"),
        (
            "POST",
            "/services/checkout/environments/dev/deployments/checkout-dev-1-3-0-0001/rollback",
        ),
        ("POST", "/services/checkout/environments/dev/rollback"),
        ("PUT", "/services/checkout"),
        ("PUT", "/services/checkout/environments/dev"),
        (
            "POST",
            "/services/checkout/environments/dev/versions/1.3.0/evidence",
        ),
        ("POST", "/services/checkout/versions/1.3.0/quarantine/clear"),
        ("POST", "/services/checkout/environments/prd/promotions"),
        (
            "POST",
            "/services/checkout/environments/dev/deployments/checkout-dev-1-3-0-0001/approve",
        ),
        (
            "POST",
            "/services/checkout/environments/dev/deployments/checkout-dev-1-3-0-0001/reject",
        ),
    ];

    fn run(route: usize, body: Vec<u8>, base64: bool) -> Result<(), TestCaseError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (w, d) = world().await;
            let services = w.registry.services.lock().unwrap().clone();
            let (method, path) = WRITES[route];
            let e = if base64 {
                ev(method, path)
                    .raw_body(&aws_smithy_types::base64::encode(&body))
                    .base64()
            } else {
                ev(method, path).raw_body(&String::from_utf8_lossy(&body))
            };
            let r = send(&d, e).await;
            prop_assert!(r.status < 500, "{method} {path}: {}", r.body);
            if r.status >= 400 {
                prop_assert!(r.body["error"].is_string() && r.body["message"].is_string());
                prop_assert!(w.executions.started_names().is_empty());
                prop_assert!(w.router.writes().is_empty());
                prop_assert!(w.store.records.lock().unwrap().is_empty());
                prop_assert!(w.store.evidence.lock().unwrap().is_empty());
                prop_assert_eq!(w.registry.services.lock().unwrap().clone(), services);
            }
            Ok(())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary bytes on any write route: a 4xx JSON error with no side effect, or a
        /// valid request; never a 5xx and never a panic.
        #[test]
        fn arbitrary_bodies_never_fail_the_handler(
            route in 0..WRITES.len(),
            body in prop::collection::vec(any::<u8>(), 0..200),
            base64 in any::<bool>(),
        ) {
            run(route, body, base64)?;
        }

        #[test]
        fn json_shaped_bodies_never_fail_the_handler(
            route in 0..WRITES.len(),
            confirm in prop_oneof![Just(json!(true)), Just(json!(false)), Just(json!(1)), Just(Value::Null)],
            service in prop::option::of(prop_oneof![Just(json!("checkout")), Just(json!("")), Just(json!(["x"])), ".{0,70}".prop_map(Value::String)]),
            extra in prop::option::of("[a-z]{1,6}"),
        ) {
            let mut body = json!({"confirm": confirm});
            // a service in any body is refused by name: the path names it
            if let Some(service) = service {
                body["service"] = service;
            }
            if let Some(k) = extra {
                body[k] = json!(1);
            }
            run(route, body.to_string().into_bytes(), false)?;
        }
    }
}

// ---------------------------------------------------------------- the sample events

#[tokio::test]
async fn every_route_has_a_sample_event_that_the_handler_accepts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/api");
    let mut covered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let req: ApiGatewayV2httpRequest = serde_json::from_value(v.clone()).unwrap();
        let method = req.request_context.http.method.as_str().to_string();
        let raw = req.raw_path.clone().unwrap_or_default();
        match routes::route(&method, &raw) {
            Matched::Found(route, _) => covered.insert(format!("{route:?}")),
            other => panic!("{}: {other:?}", path.display()),
        };
        // THEN the handler gets past routing, identity and body parsing (the fakes know
        // only checkout/dev, so lookups may still be 404 or 409)
        let (_, d) = world().await;
        let r = send(&d, Ev { v }).await;
        assert!(
            ![400, 401, 405, 413].contains(&r.status) && r.status < 500,
            "{}: {} {}",
            path.display(),
            r.status,
            r.body
        );
    }
    assert_eq!(covered.len(), routes::ROUTES.len(), "{covered:?}");
}

// ---------------------------------------------------------------- promotion and approval

mod promotion {
    use super::*;
    use shared::domain::{ApprovalState, DeploymentStatus, Phase, Quarantine};

    const BOB: &str = "arn:aws:iam::123456789012:user/bob";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER_DIGEST: &str =
        "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    /// The role checkout's CI records its evidence with, and one of its sessions.
    const CI_TESTS_ROLE: &str = "arn:aws:iam::123456789012:role/ci-tests";
    const CI_TESTS: &str = "arn:aws:sts::123456789012:assumed-role/ci-tests/gh-alice";

    /// checkout lists CI_TESTS_ROLE as the recorder of every kind of evidence.
    async fn ci_records_evidence(w: &World) {
        let mut s = w.registry.service("checkout").await.unwrap().unwrap();
        let ci = vec![CI_TESTS_ROLE.to_string()];
        s.evidence_recorders = shared::domain::EvidenceRecorders {
            integration: ci.clone(),
            e2e: ci.clone(),
            performance: ci.clone(),
            compliance: ci,
        };
        w.registry.put_service(&s).await.unwrap();
    }

    /// checkout registered in dev and prd, its CI a listed recorder; v1.3.0 succeeded in dev
    /// with a known digest.
    async fn upstream_succeeded() -> (World, ApiDeps) {
        let (w, d) = world().await;
        ci_records_evidence(&w).await;
        let mut prd = World::environment_config();
        prd.environment = shared::fakes::sample::id("prd");
        w.registry.put_environment(&prd).await.unwrap();
        let mut r = sample::record(Phase::Succeeded);
        r.id = "checkout-dev-1-3-0-aaaa".into();
        r.image_digest = Some(DIGEST.into());
        r.finished_at = Some(r.started_at + time::Duration::minutes(12));
        w.store.records.lock().unwrap().insert(r.id.clone(), r);
        (w, d)
    }

    /// Each recording is its own API request (API Gateway gives each a new request id), by
    /// CI, for the image that succeeded upstream unless the body names another.
    async fn evidence(d: &ApiDeps, body: Value) -> Res {
        evidence_by(d, body, CI_TESTS).await
    }

    async fn evidence_by(d: &ApiDeps, mut body: Value, caller: &str) -> Res {
        static REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if body.get("image_digest").is_none() {
            body["image_digest"] = json!(DIGEST);
        }
        let mut e = as_caller(
            ev("POST", &at("dev", "/versions/1.3.0/evidence")).body(&body),
            caller,
        );
        e.v["requestContext"]["requestId"] = json!(format!("req-{n}"));
        send(d, e).await
    }

    async fn all_evidence(d: &ApiDeps) {
        for body in [
            json!({"kind": "integration", "passed": 156, "total": 156}),
            json!({"kind": "performance", "p99_ms": 87.0}),
            json!({"kind": "compliance", "controls_passed": 23, "controls_total": 23}),
        ] {
            let r = evidence(d, body).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }

    async fn promote(d: &ApiDeps) -> Res {
        send(
            d,
            ev("POST", &at("prd", "/promotions")).body(&json!({"version": "1.3.0", "from": "dev"})),
        )
        .await
    }

    fn gate<'a>(body: &'a Value, name: &str) -> &'a Value {
        body["gates"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["gate"] == name))
            .unwrap_or_else(|| panic!("no gate {name} in {body}"))
    }

    #[tokio::test]
    async fn a_promotion_without_evidence_is_refused_with_the_whole_checklist_and_starts_nothing() {
        let (w, d) = upstream_succeeded().await;
        let r = promote(&d).await;
        assert_eq!(r.status, 412, "{}", r.body);
        assert_eq!(r.body["error"], "PromotionRefused");
        assert_eq!(r.body["gates"].as_array().map(Vec::len), Some(6));
        assert_eq!(gate(&r.body, "upstream_succeeded")["passed"], true);
        assert_eq!(gate(&r.body, "not_quarantined")["passed"], true);
        for failed in [
            "integration_tests",
            "performance",
            "compliance",
            "image_scan",
        ] {
            assert_eq!(gate(&r.body, failed)["passed"], false, "{failed}");
        }
        assert_eq!(
            gate(&r.body, "integration_tests")["detail"],
            "no integration test results recorded for v1.3.0 in DEV"
        );
        assert!(w.store.evidence.lock().unwrap().is_empty());
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .starts_with("v1.3.0 cannot be promoted from DEV to PRD: 4 of 6 gates failed"),
            "{}",
            r.body["message"]
        );
        assert!(w.executions.started_names().is_empty());
    }

    /// Finding 1 of the security review: production (protected by default) takes no
    /// deployment outside promotion, and a promotion only of the registered repository's
    /// image that ECR still holds under the digest that succeeded upstream.
    #[tokio::test]
    async fn a_protected_environment_takes_only_promoted_registered_images_that_ecr_holds() {
        // a direct deployment to prd, image and all, is refused and starts nothing
        let (w, d) = upstream_succeeded().await;
        let r = send(
            &d,
            ev("POST", &at("prd", "/deployments")).body(&start_body()),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error"], "ProtectedEnvironment");
        assert!(
            r.body["message"].as_str().unwrap().contains("/promotions"),
            "{}",
            r.body
        );
        assert!(w.executions.started_names().is_empty());
        assert_eq!(
            w.store
                .env("checkout", "prd")
                .and_then(|e| e.active_deployment),
            None
        );

        // every gate passed, but the image succeeded upstream from another registry
        {
            let mut records = w.store.records.lock().unwrap();
            let r = records.get_mut("checkout-dev-1-3-0-aaaa").unwrap();
            r.image = format!("docker.io/someone/checkout@{DIGEST}");
        }
        all_evidence(&d).await;
        w.images.scanned(DIGEST, &[]);
        let r = promote(&d).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error"], "ProtectedEnvironment");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("registered ECR repository checkout"),
            "{}",
            r.body
        );
        assert!(w.executions.started_names().is_empty());

        // the registered repository's image, deleted from ECR since
        {
            let mut records = w.store.records.lock().unwrap();
            let r = records.get_mut("checkout-dev-1-3-0-aaaa").unwrap();
            r.image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout@{DIGEST}");
        }
        w.images.deleted.lock().unwrap().push(DIGEST.into());
        let r = promote(&d).await;
        assert_eq!(r.status, 412, "{}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("is not in ECR repository checkout"),
            "{}",
            r.body
        );
        assert!(w.executions.started_names().is_empty());

        // back in ECR: promoted
        w.images.deleted.lock().unwrap().clear();
        let r = promote(&d).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(w.executions.started_names().len(), 1);
    }

    #[tokio::test]
    async fn with_every_gate_passed_the_same_image_is_deployed_and_waits_for_approval() {
        let (w, d) = upstream_succeeded().await;
        all_evidence(&d).await;
        w.images.scanned(DIGEST, &[("HIGH", 1)]);
        let r = promote(&d).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["awaiting_approval"], true);
        assert_eq!(
            gate(&r.body["promotion"], "image_scan")["detail"],
            "0 CRITICAL (1 HIGH)"
        );
        assert_eq!(
            gate(&r.body["promotion"], "performance")["detail"],
            "P99 87ms < 100ms"
        );
        let started = w.executions.started.lock().unwrap().clone();
        assert_eq!(started.len(), 1);
        let input = &started[0].1;
        assert_eq!(input.environment, "prd");
        assert_eq!(
            input.image.to_string(),
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout@{DIGEST}"),
            "the image is pinned by the digest that succeeded upstream"
        );
        assert_eq!(input.image_digest.as_deref(), Some(DIGEST));
        assert_eq!(input.approval_timeout_seconds, Some(24 * 3600));
        let gates = input.gates.clone().unwrap();
        assert!(
            gates.len() == 6 && gates.iter().all(|g| g.passed),
            "{gates:?}"
        );
        assert_eq!(input.deployer, ALICE);
    }

    #[tokio::test]
    async fn each_gate_refuses_on_its_own() {
        // one failing piece at a time; the other five pass
        type Break = fn(&World, &mut Vec<Value>);
        let cases: Vec<(&str, Break)> = vec![
            ("integration_tests", |_, ev| ev[0]["passed"] = json!(150)),
            ("performance", |_, ev| ev[1]["p99_ms"] = json!(140.0)),
            ("compliance", |_, ev| ev[2]["controls_passed"] = json!(22)),
            ("image_scan", |w, _| {
                w.images.scanned(DIGEST, &[("CRITICAL", 2), ("HIGH", 1)])
            }),
            ("upstream_succeeded", |w, _| {
                let mut records = w.store.records.lock().unwrap();
                for r in records.values_mut() {
                    r.status = DeploymentStatus::RolledBack;
                }
            }),
        ];
        for (name, breaks) in cases {
            let (w, d) = upstream_succeeded().await;
            w.images.scanned(DIGEST, &[]);
            let mut bodies = vec![
                json!({"kind": "integration", "passed": 156, "total": 156}),
                json!({"kind": "performance", "p99_ms": 87.0}),
                json!({"kind": "compliance", "controls_passed": 23, "controls_total": 23}),
            ];
            breaks(&w, &mut bodies);
            for b in bodies {
                assert_eq!(evidence(&d, b).await.status, 201);
            }
            let r = promote(&d).await;
            assert_eq!(r.status, 412, "{name}: {}", r.body);
            let failed: Vec<&str> = r.body["gates"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["passed"] == false)
                .map(|g| g["gate"].as_str().unwrap())
                .collect();
            // without an upstream success there is no digest to scan, nor one the evidence
            // could be for
            let expected: Vec<&str> = if name == "upstream_succeeded" {
                vec![
                    "upstream_succeeded",
                    "integration_tests",
                    "performance",
                    "compliance",
                    "image_scan",
                ]
            } else {
                vec![name]
            };
            assert_eq!(failed, expected, "{}", r.body);
            assert!(w.executions.started_names().is_empty(), "{name}");
        }
    }

    #[tokio::test]
    async fn a_quarantined_version_is_blocked_until_cleared_with_a_reason() {
        let (w, d) = upstream_succeeded().await;
        all_evidence(&d).await;
        w.images.scanned(DIGEST, &[]);
        let rolled_back = {
            let mut r = sample::record(Phase::RolledBack);
            r.environment = "tst".into();
            r.reason = Some("error rate 8.00% exceeds 1.00%".into());
            r
        };
        w.store.quarantines.lock().unwrap().insert(
            ("checkout".into(), "1.3.0".into()),
            Quarantine::of(&rolled_back, sample_time()),
        );
        let r = promote(&d).await;
        assert_eq!(r.status, 412);
        assert_eq!(gate(&r.body, "not_quarantined")["passed"], false);
        assert!(
            gate(&r.body, "not_quarantined")["detail"]
                .as_str()
                .unwrap()
                .contains("error rate 8.00%")
        );

        let clear = |reason: &str| {
            ev("POST", "/services/checkout/versions/1.3.0/quarantine/clear")
                .body(&json!({"reason": reason}))
        };
        assert_eq!(
            send(&d, clear("  ")).await.status,
            400,
            "a reason is required"
        );
        let cleared = send(&d, as_caller(clear("config flag fixed in tst"), BOB)).await;
        assert_eq!(cleared.status, 200, "{}", cleared.body);
        assert_eq!(cleared.body["quarantine"]["cleared_by"], BOB);
        assert_eq!(
            send(&d, clear("again")).await.status,
            404,
            "nothing left to clear"
        );

        let version = send(&d, ev("GET", "/services/checkout/versions/1.3.0")).await;
        assert_eq!(version.status, 200);
        assert_eq!(
            version.body["quarantine"]["clear_reason"],
            "config flag fixed in tst"
        );
        assert_eq!(version.body["evidence"].as_array().map(Vec::len), Some(3));

        let r = promote(&d).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(
            gate(&r.body["promotion"], "not_quarantined")["detail"],
            format!("quarantine cleared by {BOB}: config flag fixed in tst")
        );
    }

    fn sample_time() -> time::OffsetDateTime {
        time::macros::datetime!(2025-01-03 10:30:00 UTC)
    }

    #[tokio::test]
    async fn bad_evidence_is_refused_and_nothing_is_recorded() {
        let (w, d) = world().await;
        ci_records_evidence(&w).await;
        for (body, status) in [
            (json!({"kind": "performance"}), 400),
            (json!({"kind": "integration", "passed": 3, "total": 2}), 400),
            (json!({"kind": "smoke", "passed": 1, "total": 1}), 400),
            (
                json!({"kind": "compliance", "controls_passed": 1, "controls_total": 1, "link": "ftp://x"}),
                400,
            ),
            (
                json!({"service": "billing", "kind": "e2e", "passed": 1, "total": 1}),
                400,
            ),
        ] {
            let r = evidence(&d, body.clone()).await;
            assert_eq!(r.status, status, "{body}: {}", r.body);
        }
        // results that do not say which image they were measured on
        let no_digest = send(
            &d,
            as_caller(
                ev("POST", &at("dev", "/versions/1.3.0/evidence"))
                    .body(&json!({"kind": "e2e", "passed": 1, "total": 1})),
                CI_TESTS,
            ),
        )
        .await;
        assert_error(
            &no_digest,
            400,
            "InvalidRequest",
            "image_digest is required",
        );
        assert!(w.store.evidence.lock().unwrap().is_empty());
        let bad_version = send(
            &d,
            ev("POST", &at("dev", "/versions/latest/evidence")).body(&json!({})),
        )
        .await;
        assert_eq!(bad_version.status, 400);
    }

    #[tokio::test]
    async fn a_retried_evidence_request_is_recorded_once() {
        let (w, d) = world().await;
        ci_records_evidence(&w).await;
        let body = json!({"kind": "e2e", "passed": 40, "total": 40, "image_digest": DIGEST});
        for _ in 0..2 {
            let r = send(
                &d,
                as_caller(
                    ev("POST", &at("dev", "/versions/1.3.0/evidence"))
                        .header("idempotency-key", "ci-run-77")
                        .body(&body),
                    CI_TESTS,
                ),
            )
            .await;
            assert_eq!(r.status, 201);
        }
        assert_eq!(w.store.evidence.lock().unwrap().len(), 1);
    }

    /// Finding 7 of the security review: only a recorder the service lists for the kind may
    /// record evidence; anyone else is refused by name and nothing is stored.
    #[tokio::test]
    async fn evidence_from_a_caller_not_listed_for_its_kind_is_refused_and_not_recorded() {
        let (w, d) = upstream_succeeded().await;
        let body = json!({"kind": "integration", "passed": 156, "total": 156});
        // a person with API access, another session of another role, a user named like CI
        for caller in [
            ALICE,
            "arn:aws:sts::123456789012:assumed-role/developer/gh-alice",
            "arn:aws:iam::123456789012:user/ci-tests",
        ] {
            let r = evidence_by(&d, body.clone(), caller).await;
            assert_error(
                &r,
                403,
                "RecorderNotAllowed",
                "evidence_recorders.integration lists arn:aws:iam::123456789012:role/ci-tests",
            );
        }
        // a service that lists nobody accepts no evidence at all, not even from CI's role
        let mut s = w.registry.service("checkout").await.unwrap().unwrap();
        s.evidence_recorders.integration.clear();
        w.registry.put_service(&s).await.unwrap();
        let r = evidence(&d, body).await;
        assert_error(&r, 403, "RecorderNotAllowed", "lists nobody");
        assert!(w.store.evidence.lock().unwrap().is_empty());
        // and the gates stay shut
        w.images.scanned(DIGEST, &[]);
        assert_eq!(promote(&d).await.status, 412);
        assert!(w.executions.started_names().is_empty());
    }

    /// Finding 7: a listed recorder's results for another build, or from a recorder the
    /// service no longer lists, do not open a gate; the checklist says why.
    #[tokio::test]
    async fn evidence_for_another_image_or_from_a_removed_recorder_does_not_open_a_gate() {
        let (w, d) = upstream_succeeded().await;
        w.images.scanned(DIGEST, &[]);
        all_evidence(&d).await;
        // integration results for another build of the same version, recorded last
        let r = evidence(
            &d,
            json!({"kind": "integration", "passed": 1, "total": 2,
                   "image_digest": OTHER_DIGEST}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        // the promoted image's own results still decide
        let mut s = w.registry.service("checkout").await.unwrap().unwrap();
        // WHEN compliance's recorder is removed from the list
        s.evidence_recorders.compliance.clear();
        w.registry.put_service(&s).await.unwrap();
        let r = promote(&d).await;
        assert_eq!(r.status, 412, "{}", r.body);
        assert_eq!(
            gate(&r.body, "integration_tests")["detail"],
            "156/156 passed; ignored 1 for another image than sha256:0123456789ab"
        );
        assert_eq!(gate(&r.body, "integration_tests")["passed"], true);
        assert_eq!(gate(&r.body, "compliance")["passed"], false);
        assert_eq!(
            gate(&r.body, "compliance")["detail"],
            "no compliance evidence recorded for v1.3.0 in DEV; ignored 1 recorded by arn:aws:iam::123456789012:role/ci-tests (not in the service's evidence_recorders.compliance)"
        );
        assert!(w.executions.started_names().is_empty());
    }

    /// The sample deployment (started by ALICE) waiting for approval with token `tok-1`.
    async fn awaiting_approval() -> (World, ApiDeps) {
        let (w, d) = world().await;
        let mut r = sample::record(Phase::DeployingGreen);
        r.deployer = ALICE.into();
        w.store.begin(&r).await.unwrap();
        w.store
            .await_approval(sample::DEPLOYMENT_ID, "tok-1", 3600, sample_time())
            .await
            .unwrap();
        (w, d)
    }

    fn approve(id: &str) -> Ev {
        ev("POST", &at("dev", &format!("/deployments/{id}/approve")))
    }

    #[tokio::test]
    async fn another_person_approves_and_the_execution_resumes_with_the_approver_recorded() {
        let (w, d) = awaiting_approval().await;
        let own = send(&d, approve(sample::DEPLOYMENT_ID)).await;
        assert_eq!(own.status, 403, "the deployer cannot approve: {}", own.body);
        assert!(w.executions.resumed.lock().unwrap().is_empty());

        let r = send(
            &d,
            as_caller(
                approve(sample::DEPLOYMENT_ID).body(&json!({"comment": "CHG-1234"})),
                BOB,
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (r.body["decision"].as_str(), r.body["by"].as_str()),
            (Some("APPROVED"), Some(BOB))
        );
        assert_eq!(
            w.executions.resumed.lock().unwrap().clone(),
            vec![("tok-1".to_string(), json!({"approved_by": BOB}))]
        );
        let rec = w.store.record(sample::DEPLOYMENT_ID).unwrap();
        let a = rec.approval.unwrap();
        assert_eq!(
            (a.state, a.decided_by.as_deref(), a.comment.as_deref()),
            (ApprovalState::Approved, Some(BOB), Some("CHG-1234"))
        );

        // once decided, a rejection is refused
        let reject = send(
            &d,
            as_caller(
                ev(
                    "POST",
                    &at(
                        "dev",
                        &format!("/deployments/{}/reject", sample::DEPLOYMENT_ID),
                    ),
                )
                .body(&json!({"reason": "too late"})),
                BOB,
            ),
        )
        .await;
        assert_eq!(reject.status, 409, "{}", reject.body);
        assert!(w.executions.failed_tasks.lock().unwrap().is_empty());
    }

    /// Four eyes means two principals: the role that started a deployment cannot approve it
    /// under another session name.
    #[tokio::test]
    async fn the_deployers_role_cannot_approve_under_another_session_name() {
        let (w, d) = world().await;
        let mut r = sample::record(Phase::DeployingGreen);
        r.deployer = "arn:aws:sts::123456789012:assumed-role/ci-deployer/run-41".into();
        w.store.begin(&r).await.unwrap();
        w.store
            .await_approval(sample::DEPLOYMENT_ID, "tok-1", 3600, sample_time())
            .await
            .unwrap();
        let same_role = "arn:aws:sts::123456789012:assumed-role/ci-deployer/approver-please";
        let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), same_role)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("arn:aws:iam::123456789012:role/ci-deployer")),
            "{}",
            r.body
        );
        assert!(w.executions.resumed.lock().unwrap().is_empty());
        let other = "arn:aws:sts::123456789012:assumed-role/release-approver/carol";
        let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), other)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// A task token resumes an execution: once the decision is delivered it leaves the table,
    /// and a retry of the same decision (the answer was lost) succeeds without resending.
    #[tokio::test]
    async fn a_delivered_decision_drops_its_task_token_and_a_retry_does_not_resend() {
        let (w, d) = awaiting_approval().await;
        let token = |w: &World| {
            w.store
                .record(sample::DEPLOYMENT_ID)
                .and_then(|r| r.approval)
                .and_then(|a| a.task_token)
        };
        assert_eq!(token(&w).as_deref(), Some("tok-1"), "kept while pending");
        let first = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), BOB)).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(token(&w), None, "the delivered token stays in the table");
        let again = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), BOB)).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["decision"], "APPROVED");
        assert_eq!(w.executions.resumed.lock().unwrap().len(), 1, "resent");

        // a rejection too
        let (w, d) = awaiting_approval().await;
        let path = at(
            "dev",
            &format!("/deployments/{}/reject", sample::DEPLOYMENT_ID),
        );
        let r = send(
            &d,
            as_caller(ev("POST", &path).body(&json!({"reason": "no"})), BOB),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(token(&w), None);
    }

    #[tokio::test]
    async fn a_rejection_needs_a_reason_and_fails_the_waiting_task_with_it() {
        let (w, d) = awaiting_approval().await;
        let path = at(
            "dev",
            &format!("/deployments/{}/reject", sample::DEPLOYMENT_ID),
        );
        assert_eq!(
            send(&d, ev("POST", &path).body(&json!({}))).await.status,
            400
        );
        assert_eq!(send(&d, ev("POST", &path)).await.status, 400);
        let r = send(
            &d,
            as_caller(
                ev("POST", &path).body(&json!({"reason": "error budget spent"})),
                BOB,
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            w.executions.failed_tasks.lock().unwrap().clone(),
            vec![(
                "tok-1".to_string(),
                "BlueGreen.ApprovalRejected".to_string(),
                format!("rejected by {BOB}: error budget spent")
            )]
        );
        assert!(w.router.writes().is_empty(), "no traffic moved");
    }

    // ------------------------------------------------ the person behind CI (finding 5)

    const GH_ALICE_DEPLOY: &str =
        "arn:aws:sts::123456789012:assumed-role/bluegreen-github-deploy/gh-alice";
    const GH_ALICE_PROMOTE: &str =
        "arn:aws:sts::123456789012:assumed-role/bluegreen-promotion/gh-alice";

    #[test]
    fn the_ci_roles_are_read_from_their_variable() {
        assert_eq!(ci_roles(None), Ok(vec![]));
        assert_eq!(ci_roles(Some(" ")), Ok(vec![]));
        for both in [
            format!("{GITHUB_DEPLOY_ROLE},{PROMOTION_ROLE}"),
            format!("{GITHUB_DEPLOY_ROLE}, {PROMOTION_ROLE}"),
            format!("{GITHUB_DEPLOY_ROLE} {PROMOTION_ROLE}"),
        ] {
            assert_eq!(
                ci_roles(Some(&both)),
                Ok(vec![
                    GITHUB_DEPLOY_ROLE.to_string(),
                    PROMOTION_ROLE.to_string()
                ])
            );
        }
        for bad in [
            "bluegreen-github-deploy",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/*",
        ] {
            assert!(
                ci_roles(Some(bad)).is_err_and(|e| e.contains("CI_ROLE_ARNS")),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_ci_start_records_the_github_user_who_triggered_it() {
        // GIVEN the deploy workflow's role, assumed with session name gh-alice
        let (w, d) = world().await;
        // WHEN it starts a deployment
        let r = send(
            &d,
            as_caller(
                ev("POST", &at("dev", "/deployments")).body(&start_body()),
                GH_ALICE_DEPLOY,
            ),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
        // THEN the record and the execution input name alice as the person behind it
        let id = r.body["deployment_id"].as_str().unwrap_or_default();
        let rec = w.store.record(id).unwrap();
        assert_eq!(
            (rec.deployer.as_str(), rec.triggered_by.as_deref()),
            (GH_ALICE_DEPLOY, Some("github:alice"))
        );
        let started = w.executions.started.lock().unwrap().clone();
        assert_eq!(started[0].1.triggered_by.as_deref(), Some("github:alice"));
        let got = send(&d, ev("GET", &at("dev", &format!("/deployments/{id}")))).await;
        assert_eq!(got.body["triggered_by"], "github:alice", "{}", got.body);
        // a person's own start is theirs alone
        let (w, d) = world().await;
        let r = send(
            &d,
            ev("POST", &at("dev", "/deployments")).body(&start_body()),
        )
        .await;
        let id = r.body["deployment_id"].as_str().unwrap_or_default();
        assert_eq!(w.store.record(id).and_then(|r| r.triggered_by), None);
    }

    #[tokio::test]
    async fn a_ci_session_that_names_nobody_starts_and_promotes_nothing() {
        let (w, d) = upstream_succeeded().await;
        all_evidence(&d).await;
        w.images.scanned(DIGEST, &[]);
        for caller in [
            "arn:aws:sts::123456789012:assumed-role/bluegreen-github-deploy/deploy-dev-1234",
            "arn:aws:sts::123456789012:assumed-role/bluegreen-promotion/gh-",
            "arn:aws:sts::123456789012:assumed-role/bluegreen-promotion/promote-prd-99",
        ] {
            let r = send(
                &d,
                as_caller(
                    ev("POST", &at("dev", "/deployments")).body(&start_body()),
                    caller,
                ),
            )
            .await;
            assert_error(&r, 403, "CiActorUnknown", "role-session-name gh-<login>");
            let r = send(
                &d,
                as_caller(
                    ev("POST", &at("prd", "/promotions"))
                        .body(&json!({"version": "1.3.0", "from": "dev"})),
                    caller,
                ),
            )
            .await;
            assert_eq!(r.status, 403, "{}", r.body);
            assert_eq!(r.body["error"], "CiActorUnknown");
        }
        assert!(w.executions.started_names().is_empty());
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
    }

    #[tokio::test]
    async fn a_ci_promotion_records_the_github_user_who_triggered_it() {
        let (w, d) = upstream_succeeded().await;
        all_evidence(&d).await;
        w.images.scanned(DIGEST, &[]);
        let r = send(
            &d,
            as_caller(
                ev("POST", &at("prd", "/promotions"))
                    .body(&json!({"version": "1.3.0", "from": "dev"})),
                GH_ALICE_PROMOTE,
            ),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let started = w.executions.started.lock().unwrap().clone();
        assert_eq!(
            (
                started[0].1.deployer.as_str(),
                started[0].1.triggered_by.as_deref()
            ),
            (GH_ALICE_PROMOTE, Some("github:alice"))
        );
        let id = r.body["deployment_id"].as_str().unwrap_or_default();
        assert_eq!(
            w.store.record(id).and_then(|r| r.triggered_by).as_deref(),
            Some("github:alice")
        );
    }

    /// The sample deployment, started by the promotion role for GitHub user alice, waiting for
    /// approval with token `tok-1`.
    async fn awaiting_approval_started_by_ci() -> (World, ApiDeps) {
        let (w, d) = world().await;
        let mut r = sample::record(Phase::DeployingGreen);
        r.deployer = GH_ALICE_PROMOTE.into();
        r.triggered_by = Some("github:alice".into());
        w.store.begin(&r).await.unwrap();
        w.store
            .await_approval(sample::DEPLOYMENT_ID, "tok-1", 3600, sample_time())
            .await
            .unwrap();
        (w, d)
    }

    /// Finding 5 of the security review: the CI role is not a person. Whoever triggered the
    /// run that started a deployment cannot approve or reject it under their own principal:
    /// known by their session or user name, or by the service's github_logins.
    #[tokio::test]
    async fn the_person_behind_a_ci_run_cannot_approve_or_reject_what_it_started() {
        let (w, d) = awaiting_approval_started_by_ci().await;
        let reject = |caller: &str| {
            as_caller(
                ev(
                    "POST",
                    &at(
                        "dev",
                        &format!("/deployments/{}/reject", sample::DEPLOYMENT_ID),
                    ),
                )
                .body(&json!({"reason": "mine"})),
                caller,
            )
        };
        // alice in her approver role (session name alice), and as IAM user alice
        for alice in [
            "arn:aws:sts::123456789012:assumed-role/release-approver/alice",
            "arn:aws:sts::123456789012:assumed-role/release-approver/Alice",
            ALICE,
        ] {
            let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), alice)).await;
            assert_error(&r, 403, "ApproverStartedIt", "github:alice");
            let r = send(&d, reject(alice)).await;
            assert_error(&r, 403, "ApproverStartedIt", "github:alice");
        }
        // alice signed in through SSO, where her session is her e-mail: the service maps it
        let sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_0a1b2c/alice@example.com";
        let mut s = w.registry.service("checkout").await.unwrap().unwrap();
        s.github_logins = [(sso.to_string(), "alice".to_string())].into();
        assert_eq!(s.validate(), Ok(()));
        w.registry.put_service(&s).await.unwrap();
        let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), sso)).await;
        assert_error(&r, 403, "ApproverStartedIt", "github:alice");
        assert!(w.executions.resumed.lock().unwrap().is_empty());
        assert!(w.executions.failed_tasks.lock().unwrap().is_empty());
        assert_eq!(
            w.store
                .record(sample::DEPLOYMENT_ID)
                .and_then(|r| r.approval)
                .map(|a| a.state),
            Some(ApprovalState::Pending)
        );
        // another person approves
        let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), BOB)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(w.executions.resumed.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn approving_a_deployment_that_does_not_wait_for_approval_is_a_conflict() {
        let (w, d) = world().await;
        w.store
            .begin(&sample::record(Phase::DeployingGreen))
            .await
            .unwrap();
        let r = send(&d, as_caller(approve(sample::DEPLOYMENT_ID), BOB)).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(
            send(&d, as_caller(approve("no-such-deployment"), BOB))
                .await
                .status,
            404
        );
        assert!(w.executions.resumed.lock().unwrap().is_empty());
    }
}

// ---------------------------------------------------------------- GET /deployments/{id}/troubleshoot

#[tokio::test]
async fn troubleshoot_shows_why_green_failed_and_what_to_do_next() {
    let (w, d) = world().await;
    let mut r = sample::record(Phase::DeployingGreen);
    r.finish(
        Phase::Failed,
        datetime!(2025-01-03 10:15:00 UTC),
        Some("health check timeout: Green did not become healthy within 900s".into()),
    );
    w.store.records.lock().unwrap().insert(r.id.clone(), r);
    w.targets.set(&sample::tg(sample::GREEN_TG), 3, 1);
    w.compute.units.lock().unwrap().insert(
        "checkout-green".into(),
        vec![shared::ports::UnitReport {
            id: "arn:aws:ecs:us-east-1:123456789012:task/checkout-dev/0f1e".into(),
            state: "STOPPED".into(),
            reasons: vec!["Essential container in task exited".into()],
            ..Default::default()
        }],
    );
    let res = send(
        &d,
        ev(
            "GET",
            &at(
                "dev",
                &format!("/deployments/{}/troubleshoot", sample::DEPLOYMENT_ID),
            ),
        ),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let b = &res.body;
    assert_eq!(
        b["failure_reason"],
        "health check timeout: Green did not become healthy within 900s"
    );
    assert_eq!(
        b["target_health"][0]["color"], "green",
        "the new color first"
    );
    assert_eq!(
        (
            b["target_health"][0]["healthy"].as_u64(),
            b["target_health"][0]["registered"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        b["target_health"][0]["targets"][2]["reason"],
        "Target.FailedHealthChecks"
    );
    assert_eq!(b["compute"][0]["platform"], "ecs");
    assert_eq!(b["compute"][0]["name"], "checkout-green");
    assert_eq!(
        b["compute"][0]["units"][0]["reasons"][0],
        "Essential container in task exited"
    );
    assert!(
        b["links"]["execution"]
            .as_str()
            .unwrap()
            .contains("region=us-east-1")
    );
    let steps: Vec<&str> = b["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        steps[0].contains("Essential container in task exited"),
        "{steps:?}"
    );
    assert!(
        steps[1].contains("10.0.0.1 Target.FailedHealthChecks"),
        "{steps:?}"
    );
    assert!(steps[2].contains("Blue keeps serving v1.2.0"), "{steps:?}");
    assert!(w.router.writes().is_empty(), "read-only");
}

#[tokio::test]
async fn troubleshoot_answers_even_when_a_part_cannot_be_read() {
    let (w, d) = world().await;
    let mut r = sample::record(Phase::DeployingGreen);
    r.environment = "gone".into();
    w.store.records.lock().unwrap().insert(r.id.clone(), r);
    let res = send(
        &d,
        ev(
            "GET",
            &at(
                "gone",
                &format!("/deployments/{}/troubleshoot", sample::DEPLOYMENT_ID),
            ),
        ),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body["compute"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no longer in the registry")
    );
    assert!(
        res.body["next_steps"][0]
            .as_str()
            .unwrap()
            .contains("bluegreen status")
    );
    assert_eq!(
        send(&d, ev("GET", &at("dev", "/deployments/nope/troubleshoot")))
            .await
            .status,
        404
    );
}
