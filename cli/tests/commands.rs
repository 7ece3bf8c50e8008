//! Every command end to end through the in-memory transport: the requests it sends, what it
//! prints (human and `--output json`, pinned with insta) and its exit code. Responses are JSON
//! fixtures shaped like functions/api/openapi.json and the issue-4 API contract.

use bluegreen_cli::app::{Ctx, Prompter, Session, Settings};
use bluegreen_cli::args::{Cli, Output};
use bluegreen_cli::dispatch;
use bluegreen_cli::error::CliError;
use bluegreen_cli::style::Paint;
use bluegreen_cli::transport::{InMemory, Request, Transport};
use clap::Parser;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct TestSession {
    api: Rc<InMemory>,
    mfa: RefCell<Vec<(String, String)>>,
}

impl Session for TestSession {
    fn api(&self) -> Rc<dyn Transport> {
        self.api.clone()
    }
    fn with_mfa(&self, serial: &str, code: &str) -> Result<Rc<dyn Transport>, CliError> {
        self.mfa.borrow_mut().push((serial.into(), code.into()));
        Ok(self.api.clone())
    }
}

struct Person {
    tty: bool,
    answer: bool,
    asked: RefCell<Vec<String>>,
}

impl Prompter for Person {
    fn stdin_is_terminal(&self) -> bool {
        self.tty
    }
    fn confirm(&self, question: &str) -> Result<bool, CliError> {
        self.asked.borrow_mut().push(question.into());
        Ok(self.answer)
    }
    fn totp(&self, serial: &str) -> Result<String, CliError> {
        self.asked.borrow_mut().push(format!("TOTP for {serial}"));
        Ok("123456".into())
    }
}

struct Run {
    code: i32,
    out: String,
    error: Option<String>,
    sent: Vec<Request>,
    mfa: Vec<(String, String)>,
    asked: Vec<String>,
}

impl Run {
    fn lines(&self) -> Vec<String> {
        self.sent.iter().map(Request::line).collect()
    }
}

fn run_with(api: InMemory, args: &[&str], tty: bool, answer: bool) -> Run {
    run_full(api, args, tty, answer, |_| {})
}

fn run_settings(api: InMemory, args: &[&str], adjust: impl Fn(&mut Settings)) -> Run {
    run_full(api, args, true, true, adjust)
}

fn run_full(
    api: InMemory,
    args: &[&str],
    tty: bool,
    answer: bool,
    adjust: impl Fn(&mut Settings),
) -> Run {
    let cli = Cli::try_parse_from(std::iter::once("bluegreen").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    let session = TestSession {
        api: Rc::new(api),
        mfa: RefCell::new(vec![]),
    };
    let person = Person {
        tty,
        answer,
        asked: RefCell::new(vec![]),
    };
    let mut out: Vec<u8> = vec![];
    // as if the config file said service = "checkout"
    let mut settings = Settings {
        service: Some("checkout".into()),
        mfa_always: cli.global.mfa_serial.is_some(),
        mfa_serial: cli.global.mfa_serial.clone(),
        mfa_code: cli.global.mfa_code.clone(),
        ..Settings::default()
    };
    adjust(&mut settings);
    let result = {
        let mut ctx = Ctx {
            session: &session,
            prompt: &person,
            out: &mut out,
            json: cli.global.output == Output::Json,
            paint: Paint { color: false },
            live: false,
            settings,
            sleep: &|_| {},
        };
        dispatch(&mut ctx, &cli.command)
    };
    Run {
        code: result.as_ref().map_or_else(CliError::exit_code, |()| 0),
        out: String::from_utf8_lossy(&out).into_owned(),
        error: result.err().map(|e| e.message),
        sent: session.api.sent(),
        mfa: session.mfa.borrow().clone(),
        asked: person.asked.borrow().clone(),
    }
}

fn run(api: InMemory, args: &[&str]) -> Run {
    run_with(api, args, true, true)
}

const ID: &str = "checkout-prd-1-3-0-1735898400000";
const AID: &str = "checkout-prd-1-4-0-1736000000000";

fn history_api() -> InMemory {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/prd/deployments",
        200,
        fixture("history"),
    );
    api
}

#[test]
fn status_by_id_reads_like_the_report() {
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{ID}"),
        200,
        fixture("deployment-succeeded"),
    );
    let r = run(api, &["status", ID, "--env", "prd"]);
    assert_eq!(
        (r.code, r.lines()),
        (
            0,
            vec![format!(
                "GET /services/checkout/environments/prd/deployments/{ID}"
            )]
        )
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn status_of_an_environment_is_its_latest_deployment() {
    let api = history_api();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{ID}"),
        200,
        fixture("deployment-rolled-back"),
    );
    let r = run(api, &["status", "prd", "--service", "checkout"]);
    assert_eq!(
        r.lines(),
        vec![
            "GET /services/checkout/environments/prd/deployments?limit=1".to_string(),
            format!("GET /services/checkout/environments/prd/deployments/{ID}")
        ]
    );
    assert_eq!(
        r.code, 0,
        "showing a rolled-back deployment is not a failure of the command"
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn without_an_environment_the_target_is_an_environment_of_any_name() {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/production-eu/deployments",
        200,
        fixture("history"),
    );
    api.on(
        &format!("GET /services/checkout/environments/production-eu/deployments/{ID}"),
        200,
        fixture("deployment-succeeded"),
    );
    let r = run(api, &["status", "production-eu", "-o", "json"]);
    assert_eq!(
        r.lines(),
        vec![
            "GET /services/checkout/environments/production-eu/deployments?limit=1".to_string(),
            format!("GET /services/checkout/environments/production-eu/deployments/{ID}"),
        ]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("deployment-succeeded"))
    );
}

#[test]
fn a_command_without_a_service_names_what_is_missing_and_sends_nothing() {
    for args in [
        vec!["status", "prd"],
        vec!["history", "-e", "prd"],
        vec!["approve", ID, "-e", "prd"],
        vec!["metrics"],
        vec!["deploy", "1.3.0", "-e", "dev", "--image", "r/c:1.3.0"],
    ] {
        let r = run_settings(InMemory::new(), &args, |s| s.service = None);
        assert_eq!(r.code, 2, "{args:?}: {:?}", r.error);
        assert!(
            r.error
                .as_deref()
                .is_some_and(|e| e.contains("needs the service: pass --service")),
            "{args:?}: {:?}",
            r.error
        );
        assert!(r.sent.is_empty(), "{args:?}");
    }
    // a service, environment or id that is not a path segment never reaches a path
    for args in [
        vec!["status", ID, "-s", "checkout/environments/dev", "-e", "prd"],
        vec!["status", "../x", "-e", "prd"],
        vec!["history", "-e", "prd?x=1"],
    ] {
        let r = run(InMemory::new(), &args);
        assert_eq!(r.code, 2, "{args:?}: {:?}", r.error);
        assert!(r.sent.is_empty(), "{args:?}");
    }
}

#[test]
fn follow_prints_new_lines_until_the_end_and_fails_on_rollback() {
    let api = InMemory::new();
    let get = format!("GET /services/checkout/environments/prd/deployments/{ID}");
    api.on(&get, 200, fixture("deployment-in-progress"))
        .on(&get, 200, fixture("deployment-in-progress"))
        .on(&get, 200, fixture("deployment-rolled-back"));
    api.on(
        "GET /services/checkout/environments/prd",
        200,
        json!({"steps": [10, 25, 50, 100], "timings": {"step_wait_seconds": 60}}),
    );
    let r = run(api, &["status", ID, "-e", "prd", "--follow"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.lines().len(), 3, "{:?}", r.lines());
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("ended ROLLED_BACK: evaluate: error rate 8.00%"))
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn an_id_that_is_neither_a_deployment_nor_an_environment_says_so() {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/checkout-prd-typo/deployments",
        200,
        json!({"environment": "x", "deployments": [], "next_cursor": null}),
    );
    let r = run(api, &["status", "checkout-prd-typo"]);
    assert_eq!(r.code, 1);
    assert!(
        r.error
            .is_some_and(|e| e.contains("no deployments recorded in CHECKOUT-PRD-TYPO for checkout; to show a deployment by id, pass its environment too (--env <environment>)")),
    );
    let r = run(history_api_empty(), &["troubleshoot", "prd"]);
    assert!(
        r.error
            .is_some_and(|e| e.starts_with("no deployments recorded in PRD for checkout"))
    );
}

fn history_api_empty() -> InMemory {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/prd/deployments",
        200,
        json!({"environment": "prd", "deployments": [], "next_cursor": null}),
    );
    api
}

#[test]
fn rollback_with_json_prints_one_document_even_when_the_state_cannot_be_read() {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/prd/deployments",
        503,
        json!({"error": "Throttled", "message": "slow down"}),
    );
    api.on(
        "POST /services/checkout/environments/prd/rollback",
        400,
        json!({"error": "ConfirmationRequired", "message": "Rollback will shift all traffic to Blue (v1.2.0)."}),
    )
    .on("POST /services/checkout/environments/prd/rollback", 200, fixture("environment-rollback"));
    let r = run(
        api,
        &["rollback", "prd", "-s", "checkout", "--yes", "-o", "json"],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("environment-rollback"))
    );
}

#[test]
fn follow_with_json_prints_only_the_final_deployment() {
    let api = InMemory::new();
    let get = format!("GET /services/checkout/environments/prd/deployments/{ID}");
    api.on(&get, 200, fixture("deployment-in-progress")).on(
        &get,
        200,
        fixture("deployment-succeeded"),
    );
    let r = run(api, &["status", ID, "-e", "prd", "--follow", "-o", "json"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("deployment-succeeded"))
    );
}

#[test]
fn deploy_posts_the_release_and_builds_the_image_from_the_registry() {
    let api = InMemory::new();
    api.on("GET /services/checkout", 200, fixture("service"));
    api.on(
        "POST /services/checkout/environments/prd/deployments",
        202,
        fixture("accepted"),
    );
    let r = run(
        api,
        &[
            "deploy",
            "1.3.0",
            "--service",
            "checkout",
            "--env",
            "prd",
            "--registry",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.lines(),
        vec![
            "GET /services/checkout",
            "POST /services/checkout/environments/prd/deployments"
        ]
    );
    assert_eq!(
        r.sent[1].body,
        Some(json!({"version": "1.3.0",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0"}))
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn deploy_follow_waits_for_the_record_the_execution_writes() {
    // GIVEN an API that accepted the deployment but has not recorded it yet
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/deployments",
        202,
        fixture("accepted"),
    );
    let get = format!("GET /services/checkout/environments/prd/deployments/{ID}");
    api.on(
        &get,
        404,
        json!({"error": "NotFound", "message": "deployment not found"}),
    )
    .on(&get, 200, fixture("deployment-succeeded"));
    // WHEN following it
    let r = run(
        api,
        &[
            "deploy",
            "1.3.0",
            "-s",
            "checkout",
            "-e",
            "prd",
            "--image",
            "r/c:1.3.0",
            "--follow",
        ],
    );
    // THEN the 404 is waited out and the deployment followed to its end
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.lines(),
        vec![
            "POST /services/checkout/environments/prd/deployments".to_string(),
            get.clone(),
            get
        ]
    );
    assert!(r.out.contains("✓ Deployment successful! (12m 45s)"));
}

#[test]
fn deploy_with_an_image_sends_it_as_is_and_json_prints_the_api_answer() {
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/deployments",
        202,
        fixture("accepted"),
    );
    let r = run(
        api,
        &[
            "deploy",
            "1.3.0",
            "-s",
            "checkout",
            "-e",
            "prd",
            "--image",
            "r/checkout:1.3.0",
            "--image-digest",
            "sha256:00",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        r.lines(),
        vec!["POST /services/checkout/environments/prd/deployments"]
    );
    assert_eq!(
        r.sent[0].body,
        Some(json!({"version": "1.3.0", "image": "r/checkout:1.3.0", "image_digest": "sha256:00"}))
    );
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("accepted"))
    );
}

#[test]
fn deploy_without_image_or_registry_is_a_usage_error_before_any_request() {
    let r = run(
        InMemory::new(),
        &["deploy", "1.3.0", "-s", "checkout", "-e", "prd"],
    );
    assert_eq!((r.code, r.sent.len()), (2, 0));
    assert!(r.error.is_some_and(|e| e.contains("--image")));
}

#[test]
fn a_running_deployment_conflict_names_it_and_exits_1() {
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/deployments",
        409,
        json!({"error": "Conflict", "message": "checkout/prd has a deployment running: checkout-prd-1-2-9-1"}),
    );
    let r = run(
        api,
        &[
            "deploy",
            "1.3.0",
            "-s",
            "checkout",
            "-e",
            "prd",
            "--image",
            "r/c:1.3.0",
        ],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.error.as_deref(),
        Some(
            "POST /services/checkout/environments/prd/deployments: conflict: checkout/prd has a deployment running: checkout-prd-1-2-9-1"
        )
    );
}

fn rollback_api() -> InMemory {
    let api = history_api();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{ID}"),
        200,
        fixture("deployment-succeeded"),
    );
    api.on(
        "POST /services/checkout/environments/prd/rollback",
        400,
        json!({"error": "ConfirmationRequired", "message": "Rollback will shift all traffic to Blue (v1.2.0); Green (v1.3.0) becomes standby. Send {\"confirm\": true} to proceed."}),
    )
    .on("POST /services/checkout/environments/prd/rollback", 200, fixture("environment-rollback"));
    api
}

#[test]
fn rollback_shows_the_state_asks_then_confirms() {
    let r = run(
        rollback_api(),
        &[
            "rollback",
            "prd",
            "--service",
            "checkout",
            "--reason",
            "login errors",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(r.asked, vec!["Confirm rollback?"]);
    assert_eq!(
        r.lines(),
        vec![
            "GET /services/checkout/environments/prd/deployments?limit=1".to_string(),
            format!("GET /services/checkout/environments/prd/deployments/{ID}"),
            "POST /services/checkout/environments/prd/rollback".into(),
            "POST /services/checkout/environments/prd/rollback".into(),
        ]
    );
    assert_eq!(
        r.sent[2].body,
        Some(json!({})),
        "the preview changes nothing"
    );
    assert_eq!(
        r.sent[3].body,
        Some(json!({"confirm": true, "reason": "login errors"}))
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn rollback_answered_no_changes_nothing() {
    let r = run_with(
        rollback_api(),
        &["rollback", "prd", "-s", "checkout"],
        true,
        false,
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.sent
            .iter()
            .filter(|q| q.body.as_ref().is_some_and(|b| b["confirm"] == true))
            .count(),
        0
    );
    assert!(r.error.is_some_and(|e| e.contains("cancelled")));
}

#[test]
fn rollback_without_a_terminal_refuses_unless_yes() {
    let r = run_with(
        rollback_api(),
        &["rollback", "prd", "-s", "checkout"],
        false,
        true,
    );
    assert_eq!((r.code, r.sent.len()), (2, 0));
    assert!(r.error.is_some_and(|e| e.contains("pass --yes")));
    let r = run_with(
        rollback_api(),
        &["rollback", "prd", "-s", "checkout", "--yes", "-o", "json"],
        false,
        true,
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert!(r.asked.is_empty());
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("environment-rollback"))
    );
}

#[test]
fn promote_to_prd_takes_mfa_and_prints_the_checklist() {
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/promotions",
        202,
        fixture("promotion-accepted"),
    );
    let r = run(
        api,
        &[
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/alice",
            "promote",
            "1.4.0",
            "-s",
            "checkout",
            "--from",
            "tst",
            "--to",
            "prd",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.mfa,
        vec![(
            "arn:aws:iam::123456789012:mfa/alice".to_string(),
            "123456".to_string()
        )]
    );
    assert_eq!(
        r.asked,
        vec!["TOTP for arn:aws:iam::123456789012:mfa/alice"]
    );
    assert_eq!(
        r.sent[0].body,
        Some(json!({"version": "1.4.0", "from": "tst"}))
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn promote_to_prd_without_an_mfa_device_is_a_usage_error() {
    let r = run(
        InMemory::new(),
        &[
            "promote", "1.4.0", "-s", "checkout", "--from", "tst", "--to", "prd",
        ],
    );
    assert_eq!((r.code, r.sent.len()), (2, 0));
    assert!(
        r.error
            .is_some_and(|e| e.contains("PRD needs MFA: pass --mfa-serial"))
    );
}

#[test]
fn promote_to_tst_needs_no_mfa_and_a_bad_code_is_refused() {
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/tst/promotions",
        202,
        fixture("promotion-accepted"),
    );
    let r = run(
        api,
        &[
            "promote", "1.4.0", "-s", "checkout", "--from", "dev", "--to", "tst",
        ],
    );
    assert_eq!((r.code, r.mfa.len()), (0, 0));
    let r = run(
        InMemory::new(),
        &[
            "--mfa-serial",
            "arn:aws:iam::1:mfa/a",
            "--mfa-code",
            "12345",
            "promote",
            "1.4.0",
            "-s",
            "checkout",
            "--from",
            "tst",
            "--to",
            "prd",
        ],
    );
    assert_eq!((r.code, r.sent.len()), (2, 0));
}

#[test]
fn a_refused_promotion_prints_the_failed_gates_and_exits_1() {
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/promotions",
        412,
        fixture("promotion-refused"),
    );
    let args = [
        "--mfa-serial",
        "arn:aws:iam::123456789012:mfa/alice",
        "--mfa-code",
        "654321",
        "promote",
        "1.4.0",
        "-s",
        "checkout",
        "--from",
        "tst",
        "--to",
        "prd",
    ];
    let r = run(api, &args);
    assert_eq!(r.code, 1);
    assert!(r.asked.is_empty(), "the code came from --mfa-code");
    insta::assert_snapshot!(format!("{}---\n{}", r.out, r.error.unwrap_or_default()));
    let api = InMemory::new();
    api.on(
        "POST /services/checkout/environments/prd/promotions",
        412,
        fixture("promotion-refused"),
    );
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let r = run(api, &json_args);
    assert_eq!(r.code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("promotion-refused"))
    );
}

fn approval_api() -> InMemory {
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{AID}"),
        200,
        fixture("deployment-awaiting-approval"),
    );
    api.on(
        &format!("POST /services/checkout/environments/prd/deployments/{AID}/approve"),
        200,
        fixture("approved"),
    );
    api.on(
        &format!("POST /services/checkout/environments/prd/deployments/{AID}/reject"),
        200,
        fixture("rejected"),
    );
    api
}

#[test]
fn approve_and_reject_take_mfa_in_prd() {
    let serial = ["--mfa-serial", "arn:aws:iam::123456789012:mfa/alice"];
    let mut args = serial.to_vec();
    args.extend(["approve", AID, "-e", "prd", "--comment", "looks good"]);
    let r = run(approval_api(), &args);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(r.mfa.len(), 1);
    assert_eq!(r.sent[1].body, Some(json!({"comment": "looks good"})));
    let approved = r.out;
    let mut args = serial.to_vec();
    args.extend([
        "reject",
        AID,
        "-s",
        "checkout",
        "--env",
        "prd",
        "--reason",
        "release freeze",
    ]);
    let r = run(approval_api(), &args);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.lines()[1],
        format!("POST /services/checkout/environments/prd/deployments/{AID}/reject")
    );
    assert_eq!(r.sent[1].body, Some(json!({"reason": "release freeze"})));
    insta::assert_snapshot!(format!("{approved}---\n{}", r.out));
}

#[test]
fn approving_what_is_not_waiting_says_its_phase() {
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{ID}"),
        200,
        fixture("deployment-succeeded"),
    );
    api.on(
        &format!("POST /services/checkout/environments/prd/deployments/{ID}/approve"),
        409,
        json!({"error": "Conflict", "message": "not awaiting approval"}),
    );
    let r = run(
        api,
        &[
            "--mfa-serial",
            "arn:aws:iam::1:mfa/a",
            "--mfa-code",
            "000000",
            "approve",
            ID,
            "--env",
            "prd",
        ],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.error.as_deref(),
        Some(
            "deployment checkout-prd-1-3-0-1735898400000 is not waiting for approval (phase SUCCEEDED, status SUCCEEDED): not awaiting approval"
        )
    );
}

#[test]
fn a_403_says_mfa_is_needed() {
    // GIVEN an approver policy that refuses calls signed without MFA
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{ID}"),
        200,
        fixture("deployment-succeeded"),
    );
    api.on(
        &format!("POST /services/checkout/environments/prd/deployments/{ID}/approve"),
        403,
        json!({"message": "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: execute-api:Invoke"}),
    );
    // WHEN approving with MFA switched off for every environment
    let cli = ["approve", ID, "-e", "prd"];
    let r = run_settings(api, &cli, |s| s.mfa_environments.clear());
    // THEN the message says what to do, and the exit code is 1
    assert_eq!((r.code, r.mfa.len()), (1, 0));
    assert!(
        r.error.as_deref().is_some_and(|e| e
            .contains("your credentials are not allowed to call this route")
            && e.contains("--mfa-serial")),
        "{:?}",
        r.error
    );
}

#[test]
fn history_is_an_aligned_table_with_totals() {
    let r = run(history_api(), &["history", "--env", "prd", "--limit", "5"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.lines(),
        vec!["GET /services/checkout/environments/prd/deployments?limit=5"]
    );
    insta::assert_snapshot!(r.out);
    let r = run(history_api(), &["history", "--env", "prd", "-o", "json"]);
    insta::assert_snapshot!("history_json", r.out);
}

#[test]
fn history_follows_pages_up_to_the_limit() {
    let api = InMemory::new();
    let row = |id: &str| json!({"deployment_id": id, "service": "checkout", "version": "1.0.0", "status": "SUCCEEDED"});
    api.on(
        "GET /services/checkout/environments/dev/deployments",
        200,
        json!({"deployments": [row("a"), row("b")], "next_cursor": "c1"}),
    )
    .on(
        "GET /services/checkout/environments/dev/deployments",
        200,
        json!({"deployments": [row("c"), row("d")], "next_cursor": "c2"}),
    );
    let r = run(api, &["history", "-e", "dev", "--limit", "3", "-o", "json"]);
    assert_eq!(
        r.lines(),
        vec![
            "GET /services/checkout/environments/dev/deployments?limit=3",
            "GET /services/checkout/environments/dev/deployments?limit=1&cursor=c1"
        ]
    );
    let v: Value = serde_json::from_str(&r.out).unwrap_or_default();
    assert_eq!(v["deployments"].as_array().map(Vec::len), Some(3));
}

#[test]
fn metrics_show_environments_dora_and_recent() {
    let api = InMemory::new();
    api.on("GET /services/checkout/metrics", 200, fixture("metrics"));
    let r = run(api, &["metrics", "--days", "7", "--env", "prd"]);
    assert_eq!(
        r.lines(),
        vec!["GET /services/checkout/metrics?days=7&environment=prd"]
    );
    insta::assert_snapshot!(r.out);
    let api = InMemory::new();
    api.on("GET /services/checkout/metrics", 200, fixture("metrics"));
    let r = run(api, &["metrics", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).ok(),
        Some(fixture("metrics"))
    );
}

#[test]
fn troubleshoot_renders_eks_pods_events_and_kubectl_steps() {
    let id = "infra-agent-tst-1-3-1-1810086ea197";
    let api = InMemory::new();
    api.on(
        &format!("GET /services/infra-agent/environments/tst/deployments/{id}"),
        200,
        json!({"deployment_id": id, "service": "infra-agent", "environment": "tst"}),
    );
    api.on(
        &format!("GET /services/infra-agent/environments/tst/deployments/{id}/troubleshoot"),
        200,
        fixture("troubleshoot-eks"),
    );
    let r = run(api, &["troubleshoot", id, "-s", "infra-agent", "-e", "tst"]);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert!(
        !r.out.contains('\u{1b}'),
        "control sequences reach the terminal"
    );
    assert!(r.out.contains("EKS:"), "{}", r.out);
    assert!(r.out.contains("ImagePullBackOff"), "{}", r.out);
    assert!(
        r.out.contains("kubectl describe pod -n infra-agent-tst"),
        "{}",
        r.out
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn troubleshoot_renders_health_ecs_links_and_next_steps() {
    let id = "checkout-prd-1-1-4-1733824800000";
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{id}"),
        200,
        json!({"deployment_id": id, "service": "checkout", "environment": "prd"}),
    );
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{id}/troubleshoot"),
        200,
        fixture("troubleshoot"),
    );
    let r = run(api, &["troubleshoot", id, "-e", "prd"]);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.lines(),
        vec![
            format!("GET /services/checkout/environments/prd/deployments/{id}"),
            format!("GET /services/checkout/environments/prd/deployments/{id}/troubleshoot")
        ]
    );
    insta::assert_snapshot!(r.out);
}

#[test]
fn status_of_a_deployment_awaiting_approval_shows_approval_and_gates() {
    let api = InMemory::new();
    api.on(
        &format!("GET /services/checkout/environments/prd/deployments/{AID}"),
        200,
        fixture("deployment-awaiting-approval"),
    );
    let r = run(api, &["status", AID, "-e", "prd"]);
    insta::assert_snapshot!(r.out);
}

#[test]
fn api_errors_map_to_exit_codes() {
    let cases = [
        (400, 2, "was refused (InvalidRequest)"),
        (401, 1, "no IAM identity"),
        (404, 1, "not found"),
        (500, 1, "failed in the API"),
        (503, 1, "retry in a few seconds"),
    ];
    for (status, code, says) in cases {
        let api = InMemory::new();
        api.on(
            "GET /services/checkout/metrics",
            status,
            json!({"error": "InvalidRequest", "message": "m"}),
        );
        let r = run(api, &["metrics"]);
        assert_eq!(r.code, code, "{status}");
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains(says)),
            "{status}: {:?}",
            r.error
        );
    }
}

#[test]
fn usage_errors_exit_2_from_clap() {
    let e = Cli::try_parse_from(["bluegreen", "reject", "x"]).err();
    assert_eq!(e.map(|e| e.exit_code()), Some(2), "reject needs --reason");
}

// ---------------------------------------------------------------- policy (administrators)

fn environment_policy(protected: bool, required: bool, timeout: u64, default: bool) -> Value {
    json!({"service": "checkout", "environment": "prd", "protected": protected,
           "approval": {"required": required, "timeout_seconds": timeout}, "default": default})
}

#[test]
fn policy_shows_what_governs_an_environment_and_a_service_without_mfa() {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/environments/prd/policy",
        200,
        environment_policy(true, true, 86_400, true),
    );
    let env = run(api, &["policy", "-s", "checkout", "-e", "prd"]);
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/policy",
        200,
        json!({"service": "checkout", "accounts": ["210987654321"],
               "promotion": {"p99_limit_ms": 100.0, "blocking_severities": ["CRITICAL", "HIGH"]},
               "evidence_recorders": {"integration": ["arn:aws:iam::123456789012:role/ci-tests"],
                                      "compliance": ["arn:aws:iam::123456789012:role/scanner"]},
               // the API's text is data: no escape sequence reaches the terminal
               "github_logins": {"arn:aws:iam::123456789012:user/carol": "carol\u{1b}[2J-gh"}}),
    );
    assert_eq!(env.code, 0, "{:?}", env.error);
    assert!(env.mfa.is_empty(), "reading needs no MFA");
    let svc = run(api, &["policy", "-s", "checkout"]);
    assert_eq!(svc.code, 0, "{:?}", svc.error);
    insta::assert_snapshot!(format!("{}---\n{}", env.out, svc.out));
}

#[test]
fn policy_changes_send_only_what_changes_and_always_take_mfa() {
    let api = InMemory::new();
    api.on(
        "PUT /services/checkout/environments/prd/policy",
        200,
        environment_policy(true, true, 3_600, false),
    );
    let r = run(
        api,
        &[
            "--mfa-code",
            "123456",
            "policy",
            "-s",
            "checkout",
            "-e",
            "prd",
            "--approval-timeout",
            "3600",
        ],
    );
    // (no --mfa-serial and not prd-only: a policy change needs MFA in every environment)
    assert_eq!(r.code, 2, "{:?}", r.error);
    assert!(r.error.as_deref().unwrap_or_default().contains("needs MFA"));
    assert!(r.sent.is_empty(), "nothing sent without MFA");

    let api = InMemory::new();
    api.on(
        "PUT /services/checkout/environments/dev/policy",
        200,
        json!({"service": "checkout", "environment": "dev", "protected": true,
               "approval": {"required": false, "timeout_seconds": 86400}, "default": false}),
    );
    let r = run(
        api,
        &[
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/carol",
            "policy",
            "-s",
            "checkout",
            "-e",
            "dev",
            "--protected",
            "true",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(r.mfa.len(), 1);
    assert_eq!(
        r.lines(),
        ["PUT /services/checkout/environments/dev/policy"]
    );
    assert_eq!(r.sent[0].body, Some(json!({"protected": true})));
    assert!(r.out.contains("Policy set: checkout/DEV"), "{}", r.out);

    let api = InMemory::new();
    api.on(
        "PUT /services/checkout/policy",
        200,
        json!({"service": "checkout", "accounts": [],
               "promotion": {"p99_limit_ms": 250.0, "blocking_severities": ["CRITICAL"]}}),
    );
    let r = run(
        api,
        &[
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/carol",
            "--mfa-code",
            "123456",
            "policy",
            "-s",
            "checkout",
            "--accounts",
            "",
            "--p99-limit-ms",
            "250",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(
        r.sent[0].body,
        Some(json!({"accounts": [], "promotion": {"p99_limit_ms": 250.0}}))
    );
}

#[test]
fn policy_flags_of_the_other_kind_are_usage_errors_before_any_request() {
    for args in [
        &["policy", "-s", "checkout", "--protected", "false"][..],
        &[
            "policy",
            "-s",
            "checkout",
            "-e",
            "prd",
            "--accounts",
            "210987654321",
        ][..],
    ] {
        let r = run(InMemory::new(), args);
        assert_eq!(r.code, 2, "{args:?}: {:?}", r.error);
        assert!(r.sent.is_empty());
    }
}

#[test]
fn a_product_refusal_names_itself_instead_of_blaming_credentials() {
    let api = InMemory::new();
    api.on(
        "GET /services/checkout/policy",
        403,
        json!({"error": "AdminRequired", "message": "only an administrator changes it"}),
    );
    let r = run(api, &["policy", "-s", "checkout"]);
    assert_eq!(r.code, 1);
    let e = r.error.unwrap_or_default();
    assert!(e.contains("(AdminRequired): only an administrator"), "{e}");
    assert!(!e.contains("credentials"), "{e}");
}
