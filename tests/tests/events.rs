//! Every file in `events/` is parsed here, so the samples cannot rot: execution inputs as the
//! state machine's input (a deployment request), task inputs as the state a phase receives,
//! trigger events by their function's own parser, API requests as API Gateway HTTP API
//! (payload 2.0) events.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;
use shared::contracts::{DeploymentRequest, ExecutionState};
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_event_file_parses_as_what_its_name_says() {
    let mut all = vec![];
    files(&events_dir(), &mut all);
    assert!(all.len() >= 8, "expected the sample events, found {all:?}");
    for path in all {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let value = json(&path);
        match (parent, name.as_str()) {
            ("events", n) if n.starts_with("execution-input") => {
                let req: DeploymentRequest = serde_json::from_value(value)
                    .unwrap_or_else(|e| panic!("{name}: not a deployment request: {e}"));
                req.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            ("tasks", "request-approval.json") => {
                // The AwaitApproval state's payload: the state and Step Functions' task token.
                let token = value["task_token"].as_str().unwrap_or_default();
                assert!(!token.is_empty(), "{name}: task_token");
                let state = ExecutionState::from_value(value["state"].clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(state.request.approval_timeout_seconds.is_some(), "{name}");
            }
            ("tasks", n) => {
                let state =
                    ExecutionState::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
                let needs_progress = n != "deploy-green.json";
                assert_eq!(state.progress.is_some(), needs_progress, "{name}");
                assert_eq!(state.error.is_some(), n == "rollback.json", "{name}");
                let function = n.trim_end_matches(".json");
                let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../functions")
                    .join(function);
                assert!(crate_dir.is_dir(), "{name} names no function in functions/");
            }
            ("triggers", n) => trigger(n, value),
            ("api", _) => {
                let req: ApiGatewayV2httpRequest = serde_json::from_value(value)
                    .unwrap_or_else(|e| panic!("{name}: not an HTTP API event: {e}"));
                let caller = req
                    .request_context
                    .authorizer
                    .as_ref()
                    .and_then(|a| a.iam.as_ref())
                    .and_then(|i| i.user_arn.as_deref());
                assert!(
                    caller.is_some_and(|a| a.starts_with("arn:aws:")),
                    "{name}: requestContext.authorizer.iam.userArn is the recorded deployer"
                );
                let method = req.request_context.http.method.as_str().to_string();
                let route_key = req.route_key.clone().unwrap_or_default();
                assert!(
                    route_key.starts_with(&format!("{method} /")),
                    "{name}: {route_key}"
                );
                if let Some(body) = &req.body {
                    serde_json::from_str::<Value>(body)
                        .unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"));
                }
            }
            _ => panic!(
                "{}: no test parses this kind of event; add it to events.rs",
                path.display()
            ),
        }
    }
}

/// A trigger sample, parsed as its function parses it, is the kind its name says.
fn trigger(name: &str, value: Value) {
    use alarm_trigger::{AlarmValue, Delivery};
    use ecr_push_trigger::ImageAction;
    use execution_status::ExecutionStatus;
    let fail = |e: shared::error::PhaseError| -> ! { panic!("{name}: {e}") };
    match name {
        n if n.starts_with("ecr-") => {
            let action = ecr_push_trigger::parse(value).unwrap_or_else(|e| fail(e));
            match (n, action) {
                ("ecr-push.json", ImageAction::Push(p)) => {
                    assert_eq!(
                        (p.repository.as_str(), p.tag.as_str()),
                        ("checkout", "1.3.0")
                    );
                }
                ("ecr-push-latest.json", ImageAction::Skip(r)) => {
                    assert!(r.contains("latest"), "{r}")
                }
                ("ecr-delete.json", ImageAction::Skip(r)) => {
                    assert!(r.contains("only pushes deploy"), "{r}")
                }
                (n, other) => panic!("{n}: unexpected {other:?}"),
            }
        }
        n if n.starts_with("alarm-") => {
            let alarm = alarm_trigger::parse(value).unwrap_or_else(|e| fail(e));
            let expected = match n {
                "alarm-state-change.json" => (AlarmValue::Alarm, Delivery::EventBridge),
                "alarm-lambda-action.json" => (AlarmValue::Alarm, Delivery::LambdaAction),
                "alarm-ok.json" => (AlarmValue::Ok, Delivery::EventBridge),
                other => panic!("{other}: no expectation for this alarm sample"),
            };
            assert_eq!((alarm.state, alarm.delivery), expected, "{n}");
            assert_eq!(alarm.name, "checkout-dev-green-5xx", "{n}");
            assert!(!alarm.reason.is_empty(), "{n}");
        }
        n if n.starts_with("execution-") => {
            let change = execution_status::parse(value).unwrap_or_else(|e| fail(e));
            let expected = match n {
                "execution-aborted.json" => ExecutionStatus::Aborted,
                "execution-succeeded.json" => ExecutionStatus::Succeeded,
                other => panic!("{other}: no expectation for this execution sample"),
            };
            assert_eq!(change.status, expected, "{n}");
            let request = change
                .request()
                .unwrap_or_else(|e| fail(e))
                .unwrap_or_else(|| panic!("{n}: the sample carries its input"));
            request.validate().unwrap_or_else(|e| fail(e));
            assert_eq!(change.name, "checkout-dev-1-3-0-7f5b2640fe6f", "{n}");
        }
        other => panic!("triggers/{other}: no trigger parses this sample; add it to events.rs"),
    }
}

#[test]
fn the_full_example_spells_out_the_defaults() {
    let full: DeploymentRequest =
        serde_json::from_value(json(&events_dir().join("execution-input.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    let minimal: DeploymentRequest =
        serde_json::from_value(json(&events_dir().join("execution-input-minimal.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.steps, minimal.steps);
    assert_eq!(full.timings, minimal.timings);
    assert_eq!(full.thresholds, minimal.thresholds);
}
