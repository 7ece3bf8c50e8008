//! The state machine definition keeps the invariants the handlers rely on: every Task retries
//! Lambda service errors and catches to Rollback; Rollback retries harder and fails loudly;
//! every function it names exists; the Route choices match the phases' `next` values.

use serde_json::Value;
use shared::contracts::{DeploymentRequest, NextAction};
use shared::domain::{ApprovalPolicy, MAX_LATE_METRICS_WAITS, StepPlan, Timings};
use shared::error::{ExecutionError, PhaseError};
use std::collections::BTreeSet;
use std::path::Path;

const LAMBDA_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn definition() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachine/blue-green.asl.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn states(def: &Value) -> Vec<(String, Value)> {
    def["States"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn kebab(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn every_task_retries_lambda_errors_and_catches_to_rollback() {
    let def = definition();
    let mut tasks = 0;
    for (name, state) in states(&def) {
        if state["Type"] != "Task" || name == "NotifyApproval" {
            continue;
        }
        tasks += 1;
        let retried: BTreeSet<String> = state["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| strings(&r["ErrorEquals"]))
            .collect();
        for e in LAMBDA_ERRORS {
            assert!(retried.contains(e), "{name} does not retry {e}");
        }
        let catches = state["Catch"].as_array().cloned().unwrap_or_default();
        let last = catches
            .last()
            .unwrap_or_else(|| panic!("{name} has no Catch"));
        assert_eq!(
            strings(&last["ErrorEquals"]),
            vec!["States.ALL"],
            "{name}: the last Catch must take everything"
        );
        if name == "Rollback" {
            assert_eq!(last["Next"], "RollbackFailed");
            let attempts: u64 = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["MaxAttempts"].as_u64())
                .sum();
            assert!(attempts >= 10, "Rollback retries only {attempts} times");
            // Throttling and 5xx get the longest budget: the chaos test found 10 attempts
            // spent (RollbackFailed, traffic possibly split) at 50 % faults per call.
            // So do a hung or crashed invocation (Step Functions reports a function timeout
            // and a crash as Lambda.Unknown) and the task's own timeout: a rollback is
            // idempotent, and nothing else will restore the traffic.
            let hard = |error: &str| {
                state["Retry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| strings(&r["ErrorEquals"]).contains(&error.to_string()))
                    .and_then(|r| r["MaxAttempts"].as_u64())
                    .unwrap_or(0)
            };
            for error in ["BlueGreen.Retryable", "Lambda.Unknown", "States.Timeout"] {
                let n = hard(error);
                assert!(n >= 30, "Rollback retries {error} only {n} times");
            }
            assert!(
                retried.contains("States.ALL"),
                "Rollback must retry every error"
            );
        } else {
            assert_eq!(
                last["Next"], "Rollback",
                "{name} does not catch to Rollback"
            );
            assert_eq!(
                last["ResultPath"], "$.error",
                "{name}: the error must reach Rollback at $.error"
            );
        }
    }
    assert_eq!(tasks, 6);
    // the one non-Lambda task: a notification that cannot be sent never ends a deployment
    let notify = &def["States"]["NotifyApproval"];
    assert_eq!(notify["Resource"], "${SnsPublishArn}");
    assert_eq!(notify["Parameters"]["TopicArn"], "${NotificationTopicArn}");
    assert!(notify["ResultPath"].is_null() && notify.get("ResultPath").is_some());
    assert_eq!(notify["Next"], "AwaitApproval");
    assert_eq!(notify["Catch"][0]["Next"], "AwaitApproval");
    assert_eq!(notify["Catch"][0]["ResultPath"], "$.error");
    assert_eq!(def["States"]["RollbackFailed"]["Type"], "Fail");
}

#[test]
fn every_function_named_is_a_crate_and_tasks_pass_the_whole_state() {
    let def = definition();
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    for (name, state) in states(&def) {
        if state["Type"] != "Task" || name == "NotifyApproval" {
            continue;
        }
        let waits_for_token = name == "AwaitApproval";
        let resource = if waits_for_token {
            "${LambdaInvokeWaitForTaskTokenArn}"
        } else {
            "${LambdaInvokeArn}"
        };
        assert_eq!(state["Resource"], resource, "{name}");
        let fname = state["Parameters"]["FunctionName"]
            .as_str()
            .unwrap_or_default();
        let sub = fname
            .strip_prefix("${")
            .and_then(|s| s.strip_suffix("FunctionArn}"))
            .unwrap_or_else(|| panic!("{name}: {fname}"));
        assert!(
            functions.join(kebab(sub)).join("Cargo.toml").is_file(),
            "{name}: no crate functions/{}",
            kebab(sub)
        );
        if waits_for_token {
            // the state and the token go to the function; the state passes through unchanged
            assert_eq!(state["Parameters"]["Payload"]["state.$"], "$", "{name}");
            assert_eq!(
                state["Parameters"]["Payload"]["task_token.$"],
                "$$.Task.Token"
            );
            assert!(state["ResultPath"].is_null() && state.get("ResultPath").is_some());
            assert_eq!(
                state["TimeoutSecondsPath"],
                "$.request.approval_timeout_seconds"
            );
            assert_eq!(state["Next"], "ShiftTraffic", "approval leads to traffic");
        } else {
            assert_eq!(state["Parameters"]["Payload.$"], "$", "{name}");
            assert_eq!(state["OutputPath"], "$.Payload", "{name}");
        }
    }
}

#[test]
fn every_transition_target_exists_and_route_covers_the_phases_next_values() {
    let def = definition();
    let names: BTreeSet<String> = states(&def).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(def["StartAt"].as_str().unwrap_or_default()));
    for (name, state) in states(&def) {
        let mut targets: Vec<String> = vec![];
        targets.extend(state["Next"].as_str().map(str::to_string));
        targets.extend(state["Default"].as_str().map(str::to_string));
        for c in state["Choices"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(state["Catch"].as_array().into_iter().flatten())
        {
            targets.extend(c["Next"].as_str().map(str::to_string));
        }
        for t in targets {
            assert!(names.contains(&t), "{name} -> {t}: no such state");
        }
    }
    let route: BTreeSet<String> = def["States"]["Route"]["Choices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["StringEquals"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = [
        NextAction::AwaitGreen,
        NextAction::AwaitApproval,
        NextAction::Shift,
        NextAction::Evaluate,
        NextAction::Finalize,
    ]
    .iter()
    .map(|n| {
        serde_json::to_value(n)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    })
    .collect();
    assert_eq!(route, expected);
    let outcome: BTreeSet<String> = def["States"]["RollbackOutcome"]["Choices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["StringEquals"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        outcome,
        BTreeSet::from([
            "done".to_string(),
            "failed".to_string(),
            "not_deployed".to_string()
        ])
    );
    for wait in ["WaitForGreen", "WaitBeforeEvaluate"] {
        assert_eq!(
            def["States"][wait]["SecondsPath"], "$.progress.wait_seconds",
            "{wait}"
        );
    }
}

/// Every error name in the definition is the product's: the Fail states end with the
/// controller's execution errors (each but the approval task's has its Fail state), and every
/// product error a Retry or Catch matches is a phase error.
#[test]
fn every_error_the_definition_names_comes_from_the_products_enums() {
    let def = definition();
    let mut failed_with = BTreeSet::new();
    for (name, state) in states(&def) {
        if state["Type"] == "Fail" {
            let error = state["Error"].as_str().unwrap_or_default();
            assert!(
                ExecutionError::from_name(error).is_some(),
                "Fail state {name} ends with {error:?}, not an ExecutionError"
            );
            failed_with.insert(error.to_string());
        }
        for rule in ["Retry", "Catch"] {
            for r in state[rule].as_array().into_iter().flatten() {
                for error in strings(&r["ErrorEquals"]) {
                    if error.starts_with("BlueGreen.") {
                        assert!(
                            PhaseError::NAMES.contains(&error.as_str()),
                            "{name}'s {rule} matches {error}, which no phase raises"
                        );
                    }
                }
            }
        }
    }
    let expected: BTreeSet<String> = ExecutionError::ALL
        .into_iter()
        .filter(|e| *e != ExecutionError::ApprovalRejected)
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(failed_with, expected);
}

#[test]
fn only_deploy_green_may_end_without_rollback_and_only_for_refusals() {
    let def = definition();
    let deploy = &def["States"]["DeployGreen"]["Catch"];
    let first = &deploy[0];
    assert_eq!(
        strings(&first["ErrorEquals"]),
        vec!["BlueGreen.InvalidInput", "BlueGreen.Conflict"]
    );
    assert_eq!(first["Next"], "Rejected");
    for (name, state) in states(&def) {
        if state["Type"] == "Task"
            && !["DeployGreen", "Rollback", "NotifyApproval"].contains(&name.as_str())
        {
            assert_eq!(
                state["Catch"].as_array().map(Vec::len),
                Some(1),
                "{name} must catch only to Rollback"
            );
        }
    }
}

// ------------------------------------------------------------------------------- timeouts

fn template() -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// Lambda runs a function's init phase (up to 10 s) outside its timeout, so a task must allow
/// that much more than the function's timeout.
const LAMBDA_INIT_SECONDS: u64 = 10;

/// What template.yaml substitutes for a `${Name}` of the definition, as written there
/// (`!Sub "arn:${AWS::Partition}:..."`, `!GetAtt Function.Arn`, `!Ref Topic`): the tag and
/// its text.
fn substitution(t: &serde_yaml::Value, placeholder: &str) -> Option<(String, String)> {
    let name = placeholder.strip_prefix("${")?.strip_suffix('}')?;
    let machine = t["Resources"]
        .as_mapping()?
        .values()
        .find(|r| r["Type"] == "AWS::Serverless::StateMachine")?;
    match &machine["Properties"]["DefinitionSubstitutions"][name] {
        serde_yaml::Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_string(),
            tagged.value.as_str()?.to_string(),
        )),
        serde_yaml::Value::String(s) => Some((String::new(), s.clone())),
        _ => None,
    }
}

/// The Timeout of the function a `${...FunctionArn}` substitution names in template.yaml.
fn function_timeout(t: &serde_yaml::Value, placeholder: &str) -> Option<u64> {
    let (_, attribute) = substitution(t, placeholder)?;
    let logical_id = attribute.split('.').next()?.to_string();
    let own = &t["Resources"][logical_id.as_str()]["Properties"]["Timeout"];
    // Lambda's default timeout is 3 s
    Some(
        own.as_u64()
            .or_else(|| t["Globals"]["Function"]["Timeout"].as_u64())
            .unwrap_or(3),
    )
}

/// Every Lambda task's TimeoutSeconds exceeds its function's timeout (plus the init phase), so
/// the function's own timeout ends a hung invocation before `States.Timeout` can retry the
/// task while the first invocation still runs. A task that waits for a token is bounded by
/// the wait for a person instead (`TimeoutSecondsPath`): its timeout ends the deployment,
/// never retries it.
fn task_timeout_findings(def: &Value, t: &serde_yaml::Value) -> Vec<String> {
    let mut findings = Vec::new();
    for (name, state) in states(def) {
        let Some(function) = state["Parameters"]["FunctionName"].as_str() else {
            continue;
        };
        if state["Type"] != "Task" {
            continue;
        }
        let Some(function_timeout) = function_timeout(t, function) else {
            findings.push(format!(
                "{name}: {function} names no function of template.yaml"
            ));
            continue;
        };
        let waits_for_token = state["Resource"]
            .as_str()
            .and_then(|r| substitution(t, r))
            .is_some_and(|(_, arn)| arn.ends_with(".waitForTaskToken"));
        if waits_for_token && state.get("TimeoutSecondsPath").is_some() {
            continue;
        }
        match state["TimeoutSeconds"].as_u64() {
            None => findings.push(format!("{name}: no TimeoutSeconds")),
            Some(task) if task < function_timeout + LAMBDA_INIT_SECONDS => {
                findings.push(format!(
                    "{name}: TimeoutSeconds {task} does not exceed its function's timeout \
                     ({function_timeout} s) by the {LAMBDA_INIT_SECONDS} s init phase"
                ));
            }
            Some(_) => {}
        }
    }
    findings
}

#[path = "iam/stack.rs"]
#[allow(
    dead_code,
    reason = "asl.rs uses only the SAM transform of this module"
)]
mod sam;

/// The same rule on what CloudFormation receives after the SAM transform: each state machine's
/// definition as deployed, its substitutions, and the Lambda functions with SAM's Globals merged.
fn transformed_task_timeout_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let machines = t["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == "AWS::StepFunctions::StateMachine");
    for (machine, r) in machines {
        let p = &r["Properties"];
        let text = match &p["DefinitionString"] {
            Value::String(s) => s.clone(),
            other => match other["Fn::Join"].as_array() {
                Some(join) if join.len() == 2 => join[1]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|part| part.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(join[0].as_str().unwrap_or_default()),
                _ => {
                    findings.push(format!(
                        "{machine}: DefinitionString {other} cannot be read"
                    ));
                    continue;
                }
            },
        };
        let def: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{machine}: the deployed definition: {e}"));
        let target = |placeholder: &str| -> Option<&Value> {
            let name = placeholder.strip_prefix("${")?.strip_suffix('}')?;
            p["DefinitionSubstitutions"].get(name)
        };
        for (name, state) in states(&def) {
            let Some(function) = state["Parameters"]["FunctionName"].as_str() else {
                continue;
            };
            if state["Type"] != "Task" {
                continue;
            }
            let Some(logical) = target(function).and_then(|v| v["Fn::GetAtt"][0].as_str()) else {
                findings.push(format!(
                    "{machine}.{name}: {function} names no function of the stack"
                ));
                continue;
            };
            let lambda = &t["Resources"][logical];
            if lambda["Type"] != "AWS::Lambda::Function" {
                findings.push(format!(
                    "{machine}.{name}: {logical} is not a Lambda function"
                ));
                continue;
            }
            let function_timeout = lambda["Properties"]["Timeout"].as_u64().unwrap_or(3);
            let waits_for_token = state["Resource"]
                .as_str()
                .and_then(target)
                .and_then(|v| v["Fn::Sub"].as_str())
                .is_some_and(|arn| arn.ends_with(".waitForTaskToken"));
            if waits_for_token && state.get("TimeoutSecondsPath").is_some() {
                continue;
            }
            match state["TimeoutSeconds"].as_u64() {
                None => findings.push(format!("{machine}.{name}: no TimeoutSeconds")),
                Some(task) if task < function_timeout + LAMBDA_INIT_SECONDS => findings.push(format!(
                    "{machine}.{name}: TimeoutSeconds {task} does not exceed {logical}'s timeout \
                     ({function_timeout} s) by the {LAMBDA_INIT_SECONDS} s init phase"
                )),
                Some(_) => {}
            }
        }
    }
    findings
}

#[test]
fn every_task_outlasts_its_function_in_the_transformed_template() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap_or_else(|e| panic!("template.yaml: {e}"));
    let t = sam::transformed(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transformed_task_timeout_findings(&t), Vec::<String>::new());
    // a function outlasting its task (as 93a4854's Rollback did) is caught here too
    let short = text.replacen("      Timeout: 120\n", "      Timeout: 300\n", 1);
    assert_ne!(
        short, text,
        "template.yaml no longer sets the rollback function's Timeout of 120"
    );
    let t = sam::transformed(&short).unwrap_or_else(|e| panic!("{e}"));
    let found = transformed_task_timeout_findings(&t);
    assert!(
        found.iter().any(|f| f.contains("does not exceed")),
        "{found:?}"
    );
}

#[test]
fn every_task_outlasts_its_function() {
    assert_eq!(
        task_timeout_findings(&definition(), &template()),
        Vec::<String>::new()
    );
    // a broken copy: the rollback task no longer than its function
    let mut def = definition();
    def["States"]["Rollback"]["TimeoutSeconds"] = serde_json::json!(120);
    assert!(
        task_timeout_findings(&def, &template())
            .iter()
            .any(|f| f.starts_with("Rollback: TimeoutSeconds 120 does not exceed")),
        "a task as short as its function is caught"
    );
}

// ------------------------------------------------------------------- the execution's own limit

/// Step Functions quota: a Standard execution's history holds at most 25,000 events.
const HISTORY_EVENTS: u64 = 25_000;
/// The fewest events one attempt of a Lambda task writes: scheduled, started, and its end.
const EVENTS_PER_TASK_ATTEMPT: u64 = 3;
/// Step Functions quota: a Standard execution runs at most a year.
const MAX_EXECUTION_SECONDS: u64 = 365 * 24 * 3600;

/// The largest value `accepts` takes; the limits live in the code's validation, not here.
fn largest_accepted(accepts: impl Fn(u64) -> bool) -> u64 {
    assert!(accepts(1), "accepts nothing");
    let mut hi = 2;
    while accepts(hi) {
        hi *= 2;
        assert!(hi < 1 << 40, "no upper limit");
    }
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if accepts(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn timings_accept(set: impl Fn(&mut Timings, u64)) -> impl Fn(u64) -> bool {
    move |v| {
        // The shortest metric period leaves every other timing its widest range.
        let mut t = Timings {
            metrics_period_seconds: 1,
            ..Timings::default()
        };
        set(&mut t, v);
        t.validate().is_ok()
    }
}

/// The longest a person may take to approve: the environment's approval policy and the
/// execution input both limit it.
fn longest_approval() -> u64 {
    let by_policy = largest_accepted(|s| {
        ApprovalPolicy {
            required: true,
            timeout_seconds: s,
        }
        .validate()
        .is_ok()
    });
    let by_request = largest_accepted(|s| {
        let mut request = shared::fakes::sample::request();
        request["approval_timeout_seconds"] = s.into();
        serde_json::from_value::<DeploymentRequest>(request).is_ok_and(|r| r.validate().is_ok())
    });
    by_policy.max(by_request)
}

/// The longest a retrier waits between two attempts.
fn longest_retry_delay(def: &Value) -> u64 {
    states(def)
        .iter()
        .flat_map(|(_, s)| s["Retry"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
            let backoff = r["BackoffRate"].as_f64().unwrap_or(2.0);
            let attempts = r["MaxAttempts"].as_i64().unwrap_or(3).max(1);
            let exponent = i32::try_from(attempts - 1).unwrap_or(i32::MAX);
            let longest = interval * backoff.powi(exponent);
            let capped = r["MaxDelaySeconds"]
                .as_f64()
                .map_or(longest, |cap| longest.min(cap));
            capped.ceil() as u64
        })
        .max()
        .unwrap_or(0)
}

/// The longest a deployment may run besides its approval: every wait its timings allow at
/// their limits, and the time its task attempts may take. How many attempts run depends on
/// polls, steps, evaluations and retries; the execution's history bounds them all.
fn longest_deployment(def: &Value) -> u64 {
    let health = largest_accepted(timings_accept(|t, v| t.health_timeout_seconds = v))
        + largest_accepted(timings_accept(|t, v| t.health_poll_seconds = v));
    let shifting = StepPlan::MAX_STEPS as u64
        * largest_accepted(timings_accept(|t, v| t.step_wait_seconds = v));
    let verification = largest_accepted(timings_accept(|t, v| t.verification_seconds = v))
        + largest_accepted(timings_accept(|t, v| t.verification_interval_seconds = v));
    // Evaluations that wait for metrics: a step's first window waits up to a period plus the
    // publication delay, and any window waits up to MAX_LATE_METRICS_WAITS periods for a late
    // last datapoint. Verification checks are at least a period apart, so their periods add up
    // to at most the verification window plus one interval.
    let period = (1..=3600u64)
        .filter(|&p| {
            Timings {
                metrics_period_seconds: p,
                verification_interval_seconds: 3600,
                ..Timings::default()
            }
            .validate()
            .is_ok()
        })
        .max()
        .unwrap_or(0);
    let delay = largest_accepted(timings_accept(|t, v| t.metrics_delay_seconds = v));
    let late = u64::from(MAX_LATE_METRICS_WAITS);
    let metric_waits =
        StepPlan::MAX_STEPS as u64 * (period + delay + late * period) + late * verification;
    let longest_attempt = states(def)
        .iter()
        .filter_map(|(_, s)| s["TimeoutSeconds"].as_u64())
        .max()
        .unwrap_or(0)
        + longest_retry_delay(def);
    let attempts = HISTORY_EVENTS / EVENTS_PER_TASK_ATTEMPT;
    health + shifting + verification + metric_waits + attempts * longest_attempt
}

fn execution_timeout_findings(def: &Value) -> Vec<String> {
    let approval = longest_approval();
    let deployment = longest_deployment(def);
    match def["TimeoutSeconds"].as_u64() {
        None => vec!["the execution has no TimeoutSeconds".to_string()],
        Some(t) if t <= approval + deployment => vec![format!(
            "the execution's TimeoutSeconds {t} does not exceed the longest approval \
             ({approval} s) plus the longest deployment ({deployment} s)"
        )],
        Some(t) if t > MAX_EXECUTION_SECONDS => vec![format!(
            "the execution's TimeoutSeconds {t} exceeds Step Functions' one-year limit"
        )],
        Some(_) => Vec::new(),
    }
}

#[test]
fn the_execution_outlasts_the_longest_approval_and_deployment() {
    assert_eq!(
        execution_timeout_findings(&definition()),
        Vec::<String>::new()
    );
    // a broken copy: one day, less than the approval alone may take
    let mut def = definition();
    def["TimeoutSeconds"] = serde_json::json!(86_400);
    assert!(
        execution_timeout_findings(&def)
            .iter()
            .any(|f| f.contains("does not exceed the longest approval (604800 s)")),
        "{:?}",
        execution_timeout_findings(&def)
    );
}

// ------------------------------------------------------------------------------- partition

/// No partition is written into the definition: every task's Resource is a substitution that
/// template.yaml writes with `${AWS::Partition}`, so the definition works in aws-cn and
/// aws-us-gov too.
fn partition_findings(definition_text: &str, t: &serde_yaml::Value) -> Vec<String> {
    let mut findings = Vec::new();
    for literal in ["arn:aws:", "arn:aws-"] {
        if definition_text.contains(literal) {
            findings.push(format!("the definition writes a partition ({literal})"));
        }
    }
    let def: Value = serde_json::from_str(definition_text).unwrap_or_else(|e| panic!("{e}"));
    for (name, state) in states(&def) {
        if state["Type"] != "Task" {
            continue;
        }
        let resource = state["Resource"].as_str().unwrap_or_default();
        match substitution(t, resource) {
            Some((tag, arn))
                if tag == "Sub" && arn.starts_with("arn:${AWS::Partition}:states:::") => {}
            Some((tag, arn)) => findings.push(format!(
                "{name}: {resource} is substituted with {tag} {arn:?}, not \
                 !Sub \"arn:${{AWS::Partition}}:states:::...\""
            )),
            None => findings.push(format!(
                "{name}: Resource {resource:?} is not a substitution of template.yaml"
            )),
        }
    }
    findings
}

#[test]
fn the_definition_and_its_substitutions_name_no_partition() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachine/blue-green.asl.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = template();
    assert_eq!(partition_findings(&text, &t), Vec::<String>::new());
    // broken copies: a partition written into the definition, or into a substitution
    let written = text.replacen("${SnsPublishArn}", "arn:aws:states:::sns:publish", 1);
    let findings = partition_findings(&written, &t);
    assert!(
        findings
            .iter()
            .any(|f| f.contains("the definition writes a partition (arn:aws:)"))
            && findings
                .iter()
                .any(|f| f.starts_with("NotifyApproval: Resource")),
        "{findings:?}"
    );
    let yaml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let from = "SnsPublishArn: !Sub \"arn:${AWS::Partition}:states:::sns:publish\"";
    assert!(yaml.contains(from));
    let broken: serde_yaml::Value = serde_yaml::from_str(&yaml.replacen(
        from,
        "SnsPublishArn: !Sub \"arn:aws:states:::sns:publish\"",
        1,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let findings = partition_findings(&text, &broken);
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("NotifyApproval: ${SnsPublishArn} is substituted")),
        "{findings:?}"
    );
}
