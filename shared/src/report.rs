//! The operator's report: how deployments read in a terminal. Pure formatting of records and
//! ledger entries, shared by the demo and the CLI.

use crate::domain::{
    Approval, ApprovalState, CheckOutcome, Color, DeploymentRecord, DeploymentStatus,
    EnvironmentState, EvaluationKind, LedgerEntry, Outcome, ReadinessSummary, StepRecord,
    TrafficSplit,
};

pub const OK: &str = "✓";
pub const FAIL: &str = "✗";

/// `0.01%`.
pub fn percent(v: f64) -> String {
    format!("{v:.2}%")
}

/// `45ms`.
pub fn millis(v: f64) -> String {
    format!("{v:.0}ms")
}

/// `12m 45s`, `45s`, `1h 02m`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn v(version: Option<&str>) -> String {
    version.map_or_else(|| "unknown".to_string(), |s| format!("v{s}"))
}

pub fn header(r: &DeploymentRecord) -> String {
    format!(
        "Starting Blue/Green deployment of {} v{} to {} (deployer: {})...",
        r.service,
        r.version,
        r.environment.to_uppercase(),
        r.deployer
    )
}

/// The two colors, which is active, and where traffic is.
pub fn colors(
    active: Color,
    active_version: Option<&str>,
    standby_version: Option<&str>,
    split: TrafficSplit,
) -> Vec<String> {
    let line = |c: Color, role: &str, version: Option<&str>, note: &str| {
        let label = format!("{} ({role}):", c.title());
        format!("  {label:<17} {:<8}{note}", v(version))
    };
    let traffic = |c: Color| {
        let w = split.weight_of(c);
        if w > 0 {
            format!("← {w}% traffic")
        } else {
            String::new()
        }
    };
    let mut lines = vec![
        line(
            Color::Blue,
            if active == Color::Blue {
                "Active"
            } else {
                "Standby"
            },
            if active == Color::Blue {
                active_version
            } else {
                standby_version
            },
            &traffic(Color::Blue),
        ),
        line(
            Color::Green,
            if active == Color::Green {
                "Active"
            } else {
                "Standby"
            },
            if active == Color::Green {
                active_version
            } else {
                standby_version
            },
            &traffic(Color::Green),
        ),
    ];
    for l in &mut lines {
        *l = l.trim_end().to_string();
    }
    lines
}

pub fn current_state(r: &DeploymentRecord) -> Vec<String> {
    let mut lines = vec!["Current state:".to_string()];
    match r.active_color {
        Some(active) => lines.extend(colors(
            active,
            r.previous_version.as_deref(),
            r.replaced_version.as_deref(),
            TrafficSplit::all_on(active),
        )),
        None => lines.push("  (not read from the listener yet)".to_string()),
    }
    lines
}

pub fn phase1(r: &DeploymentRecord, ready: &ReadinessSummary) -> Vec<String> {
    vec![
        format!(
            "Phase 1: Deploying v{} to {} target group...",
            r.version,
            r.target_title()
        ),
        format!("  {OK} Image: {}", r.image),
        format!(
            "  {OK} {} ({})",
            ready.platform.units_line(ready.running, ready.desired),
            ready.revision
        ),
        format!(
            "  {OK} Health checks passing: {}/{} targets healthy",
            ready.healthy_targets, ready.registered_targets
        ),
    ]
}

/// The approval step as it stands: waiting, or decided by whom.
pub fn approval(a: &Approval) -> String {
    let who = a
        .decided_by
        .as_deref()
        .map(|b| b.rsplit('/').next().unwrap_or(b))
        .unwrap_or("unknown");
    let note = a
        .comment
        .as_deref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    match a.state {
        ApprovalState::Pending => format!(
            "  ⏳ Waiting for approval (times out after {}); no traffic has moved",
            duration(a.timeout_seconds)
        ),
        ApprovalState::Approved => format!("  {OK} Approved by {who}{note}"),
        ApprovalState::Rejected => format!("  {FAIL} Rejected by {who}{note}"),
        ApprovalState::TimedOut => format!(
            "  {FAIL} Approval timed out after {}",
            duration(a.timeout_seconds)
        ),
    }
}

fn error_rate(e: &LedgerEntry) -> String {
    match e.evaluation.error_rate_percent {
        Some(rate) => format!("Error rate: {}", percent(rate)),
        None => "Error rate: no requests".to_string(),
    }
}

/// `[25%] Blue: 75% | Green: 25%  ✓ Error rate: 0.01%`.
pub fn step_line(e: &LedgerEntry) -> String {
    let mark = if e.evaluation.outcome == Outcome::Pass {
        OK
    } else {
        FAIL
    };
    let mut line = format!(
        "  [{}%] {}  {mark} {}",
        e.split.weight_of(e.target_color),
        e.split,
        error_rate(e)
    );
    if e.evaluation.error_rate_check == CheckOutcome::NotJudged {
        line.push_str(&format!(" (not judged: {} requests)", e.target.requests));
    }
    if e.evaluation.outcome == Outcome::Fail {
        line.push_str(&format!(
            "\n      {FAIL} {}",
            e.evaluation.reasons.join("; ")
        ));
    }
    line
}

/// A step that was written but never evaluated (the deployment ended first).
pub fn unevaluated_step_line(step: &StepRecord) -> String {
    format!(
        "  [{}%] {}  … shifted; ended before its evaluation",
        step.split.weight_of(step.target_color),
        step.split
    )
}

pub fn phase2_title() -> String {
    "Phase 2: Traffic shift starting...".to_string()
}

pub fn phase3_title(verification_seconds: u64) -> String {
    format!(
        "Phase 3: Verification ({})...",
        duration(verification_seconds)
    )
}

/// The summary of the verification checks: error rate and p99 against the baseline.
pub fn verification(entries: &[LedgerEntry]) -> Vec<String> {
    let checks: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|e| e.kind == EvaluationKind::Verification)
        .collect();
    let Some(last) = checks.last() else {
        return vec![format!("  {OK} No verification window configured")];
    };
    let failed = checks
        .iter()
        .find(|e| e.evaluation.outcome == Outcome::Fail);
    let (requests, errors) = checks.iter().fold((0u64, 0u64), |(r, x), e| {
        (r + e.target.requests, x + e.target.errors_5xx)
    });
    let rate = (requests > 0).then(|| errors as f64 * 100.0 / requests as f64);
    let worst_p99 = checks
        .iter()
        .filter_map(|e| e.evaluation.target_p99_ms)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
    let mut lines = vec![format!(
        "  {} {} checks, {} requests on {}",
        if failed.is_some() { FAIL } else { OK },
        checks.len(),
        requests,
        last.target_color.title()
    )];
    lines.push(match rate {
        Some(r) => format!(
            "  {} Error rate stable: {}",
            if failed.is_some() { FAIL } else { OK },
            percent(r)
        ),
        None => format!("  {OK} Error rate: no requests"),
    });
    match (worst_p99, last.evaluation.baseline_p99_ms) {
        (Some(p), Some(b)) => lines.push(format!(
            "  {OK} P99 latency: {} (baseline: {})",
            millis(p),
            millis(b)
        )),
        (Some(p), None) => lines.push(format!("  {OK} P99 latency: {} (no baseline)", millis(p))),
        _ => {}
    }
    let alarms = last.alarms.len();
    if alarms > 0 {
        lines.push(format!("  {OK} Alarms: {alarms}/{alarms} OK"));
    }
    if let Some(f) = failed {
        lines.push(format!("  {FAIL} {}", f.evaluation.reasons.join("; ")));
    } else {
        lines.push(format!("  {OK} No anomalies detected"));
    }
    lines
}

/// How the deployment ended and where the colors are now.
pub fn outcome(
    r: &DeploymentRecord,
    env: Option<&EnvironmentState>,
    split: TrafficSplit,
) -> Vec<String> {
    let took = r.duration_seconds.map(duration).unwrap_or_default();
    let (active, active_version, standby_version) = match env {
        Some(e) => (
            e.active_color.or(r.active_color),
            e.active_version.clone(),
            e.standby_version.clone(),
        ),
        None => (
            r.active_color,
            r.previous_version.clone(),
            Some(r.version.clone()),
        ),
    };
    let mut lines = match r.status {
        DeploymentStatus::Succeeded => vec![format!("Deployment successful! ({took})")],
        DeploymentStatus::RolledBack => vec![
            format!("{FAIL} Deployment rolled back automatically ({took})"),
            format!(
                "  Reason: {}",
                r.reason.as_deref().unwrap_or("not recorded")
            ),
            format!("  [100%] {split}"),
        ],
        DeploymentStatus::Failed => vec![
            format!(
                "{FAIL} Deployment failed; no traffic was sent to {} ({took})",
                r.target_title()
            ),
            format!(
                "  Reason: {}",
                r.reason.as_deref().unwrap_or("not recorded")
            ),
        ],
        DeploymentStatus::NotDeployed => vec![
            format!(
                "{FAIL} Not deployed; {} never received traffic ({took})",
                r.target_title()
            ),
            format!(
                "  Reason: {}",
                r.reason.as_deref().unwrap_or("not recorded")
            ),
        ],
        DeploymentStatus::InProgress => vec![format!("Deployment in progress: {}", r.phase)],
    };
    if let Some(active) = active {
        lines.extend(colors(
            active,
            active_version.as_deref(),
            standby_version.as_deref(),
            split,
        ));
    }
    if r.status == DeploymentStatus::Succeeded
        && let Some(l) = lines.iter_mut().find(|l| l.contains("(Standby)"))
    {
        l.push_str("  ← Ready for rollback");
    }
    lines
}

/// Text someone else wrote, on one line without control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What a person is asked to approve: the image by digest, who deployed it, the promotion's
/// checklist with the upstream deployment, and the commands that decide. Sent as the approval
/// notification once green is ready.
pub fn approval_request(
    deployment_id: &str,
    req: &crate::contracts::DeploymentRequest,
    timeout_seconds: u64,
) -> Vec<String> {
    let env = one_line(&req.environment);
    let service = one_line(&req.service);
    let id = one_line(deployment_id);
    let mut lines = vec![
        format!(
            "Approval needed: {service} v{} to {} (deployment {id})",
            req.version,
            env.to_uppercase()
        ),
        "Green is ready and serves no traffic; nothing changes for users until someone decides."
            .to_string(),
        format!("  Image:    {}", one_line(&req.image.to_string())),
        format!(
            "  Digest:   {}",
            req.image_digest
                .as_ref()
                .or(req.image.digest())
                .map(|d| d.as_str())
                .map_or_else(|| "not pinned (deployed by tag)".to_string(), one_line)
        ),
        format!("  Deployer: {}", one_line(&req.deployer)),
    ];
    // The person behind a CI deployer, who may not decide it either.
    if let Some(by) = &req.triggered_by {
        lines.push(format!(
            "  Triggered by: {} (may not approve or reject it)",
            one_line(by)
        ));
    }
    match &req.gates {
        Some(gates) => {
            lines.push("  Gates:".to_string());
            for g in gates {
                lines.push(format!(
                    "    {} {}: {}",
                    if g.passed { OK } else { FAIL },
                    g.gate.title(),
                    one_line(&g.detail)
                ));
            }
            if let Some(up) = gates.iter().find_map(|g| g.upstream.as_ref()) {
                let up_id = one_line(&up.deployment_id);
                let up_env = one_line(&up.environment);
                lines.push(format!(
                    "  Upstream: deployment {up_id} in {} (GET /services/{service}/environments/{up_env}/deployments/{up_id}; bluegreen status {up_id} --service {service} --env {up_env})",
                    up_env.to_uppercase()
                ));
            }
        }
        None => lines.push("  Gates:    none (not a promotion)".to_string()),
    }
    lines.push(format!(
        "Approve: bluegreen approve {id} --service {service} --env {env} --comment \"...\""
    ));
    lines.push(format!(
        "Reject:  bluegreen reject {id} --service {service} --env {env} --reason \"...\""
    ));
    lines.push(format!(
        "Without a decision within {} the deployment ends NOT_DEPLOYED.",
        duration(timeout_seconds)
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AlarmState, AlarmStatus, ColorMetrics, EvaluationInput, Phase, Thresholds, evaluate,
    };
    use crate::fakes::sample;
    use time::macros::datetime;

    #[test]
    fn an_approval_request_names_the_image_by_digest_the_deployer_and_the_checklist() {
        use crate::domain::{Gate, GateResult, UpstreamDeployment};
        let mut req: crate::contracts::DeploymentRequest =
            serde_json::from_value(sample::request()).unwrap();
        req.environment = crate::fakes::sample::id("prd");
        req.image_digest = Some(crate::fakes::sample::id(&format!(
            "sha256:{}",
            "ab".repeat(32)
        )));
        req.deployer = "arn:aws:iam::123456789012:user/mallory\u{1b}[2J\nApproved!".into();
        req.gates = Some(vec![
            GateResult {
                gate: Gate::UpstreamSucceeded,
                passed: true,
                detail: "v1.3.0 SUCCEEDED in TST".into(),
                upstream: Some(UpstreamDeployment {
                    environment: "tst".into(),
                    deployment_id: "checkout-tst-1".into(),
                }),
            },
            GateResult {
                gate: Gate::ImageScan,
                passed: true,
                detail: "0 CRITICAL".into(),
                upstream: None,
            },
        ]);
        let lines = approval_request("d-9", &req, 3600);
        let text = lines.join("\n");
        assert_eq!(
            lines[0],
            "Approval needed: checkout v1.3.0 to PRD (deployment d-9)"
        );
        for expected in [
            format!("  Digest:   sha256:{}", "ab".repeat(32)),
            "    ✓ Same image succeeded upstream: v1.3.0 SUCCEEDED in TST".to_string(),
            "    ✓ Image scan: 0 CRITICAL".to_string(),
            "  Upstream: deployment checkout-tst-1 in TST (GET /services/checkout/environments/tst/deployments/checkout-tst-1; bluegreen status checkout-tst-1 --service checkout --env tst)".to_string(),
            "Approve: bluegreen approve d-9 --service checkout --env prd --comment \"...\"".to_string(),
            "Without a decision within 1h 00m the deployment ends NOT_DEPLOYED.".to_string(),
        ] {
            assert!(lines.contains(&expected), "{expected:?} not in\n{text}");
        }
        // the deployer's name is data: no escape sequence, no line of its own
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  Deployer: ") && l.ends_with(" Approved!")),
            "{text}"
        );
        // a CI deployer: the person behind it is named, and told they may not decide
        assert!(!text.contains("Triggered by"), "{text}");
        req.triggered_by = Some("github:alice".into());
        assert!(
            approval_request("d-9", &req, 3600).contains(
                &"  Triggered by: github:alice (may not approve or reject it)".to_string()
            )
        );
        // not a promotion: said so
        req.gates = None;
        assert!(
            approval_request("d-9", &req, 3600)
                .contains(&"  Gates:    none (not a promotion)".to_string())
        );
    }

    fn entry(kind: EvaluationKind, green: u16, target: ColorMetrics) -> LedgerEntry {
        let th = Thresholds::default();
        let alarms = vec![AlarmState {
            name: "a".into(),
            status: AlarmStatus::Ok,
            reason: String::new(),
        }];
        let baseline = ColorMetrics {
            requests: 9000,
            errors_5xx: 0,
            p99_ms: Some(42.0),
        };
        LedgerEntry {
            deployment_id: "d".into(),
            kind,
            step_index: 0,
            verification_index: 0,
            split: TrafficSplit::with_percent_on(Color::Green, green)
                .unwrap_or_else(|e| panic!("{e}")),
            target_color: Color::Green,
            window_start: datetime!(2025-01-03 10:00:00 UTC),
            window_end: datetime!(2025-01-03 10:01:00 UTC),
            target,
            baseline,
            evaluation: evaluate(&EvaluationInput {
                target,
                baseline,
                alarms: &alarms,
                thresholds: &th,
                remembered_baseline_p99_ms: None,
            }),
            alarms,
        }
    }

    #[test]
    fn durations_read_like_the_reports() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(765), "12m 45s");
        assert_eq!(duration(272), "4m 32s");
        assert_eq!(duration(3720), "1h 02m");
    }

    #[test]
    fn step_lines_show_weights_and_error_rate() {
        let ok = entry(
            EvaluationKind::Step,
            25,
            ColorMetrics {
                requests: 10000,
                errors_5xx: 1,
                p99_ms: Some(45.0),
            },
        );
        assert_eq!(
            step_line(&ok),
            "  [25%] Blue: 75% | Green: 25%  ✓ Error rate: 0.01%"
        );
        let bad = entry(
            EvaluationKind::Step,
            25,
            ColorMetrics {
                requests: 500,
                errors_5xx: 40,
                p99_ms: Some(45.0),
            },
        );
        assert_eq!(
            step_line(&bad),
            "  [25%] Blue: 75% | Green: 25%  ✗ Error rate: 8.00%\n      ✗ error rate 8.00% (40 of 500 requests returned 5xx) exceeds 1.00%"
        );
    }

    #[test]
    fn a_step_that_ended_before_evaluation_says_so() {
        let step = StepRecord {
            deployment_id: "d".into(),
            step_index: 1,
            split: TrafficSplit::with_percent_on(Color::Green, 25)
                .unwrap_or_else(|e| panic!("{e}")),
            target_color: Color::Green,
            shifted_at: datetime!(2025-01-03 10:00:00 UTC),
        };
        assert_eq!(
            unevaluated_step_line(&step),
            "  [25%] Blue: 75% | Green: 25%  … shifted; ended before its evaluation"
        );
    }

    #[test]
    fn verification_summarises_error_rate_and_p99_against_baseline() {
        let checks: Vec<LedgerEntry> = (0..3)
            .map(|_| {
                entry(
                    EvaluationKind::Verification,
                    100,
                    ColorMetrics {
                        requests: 10000,
                        errors_5xx: 1,
                        p99_ms: Some(45.0),
                    },
                )
            })
            .collect();
        assert_eq!(
            verification(&checks),
            vec![
                "  ✓ 3 checks, 30000 requests on Green",
                "  ✓ Error rate stable: 0.01%",
                "  ✓ P99 latency: 45ms (baseline: 42ms)",
                "  ✓ Alarms: 1/1 OK",
                "  ✓ No anomalies detected",
            ]
        );
    }

    #[test]
    fn final_state_names_active_and_standby() {
        let mut r = sample::record(Phase::Succeeded);
        r.status = DeploymentStatus::Succeeded;
        r.duration_seconds = Some(765);
        let env = EnvironmentState {
            service: "checkout".into(),
            environment: "dev".into(),
            active_color: Some(Color::Green),
            active_version: Some("1.3.0".into()),
            standby_version: Some("1.2.0".into()),
            active_deployment: None,
            last_deployment: None,
            updated_at: datetime!(2025-01-03 10:12:45 UTC),
        };
        assert_eq!(
            outcome(&r, Some(&env), TrafficSplit::all_on(Color::Green)),
            vec![
                "Deployment successful! (12m 45s)",
                "  Blue (Standby):   v1.2.0  ← Ready for rollback",
                "  Green (Active):   v1.3.0  ← 100% traffic",
            ]
        );
    }

    #[test]
    fn the_approval_step_reads_as_waiting_then_decided() {
        let mut a = Approval {
            state: ApprovalState::Pending,
            requested_at: datetime!(2025-01-03 10:05:00 UTC),
            timeout_seconds: 3600,
            task_token: Some("secret-token".into()),
            decided_by: None,
            decided_at: None,
            comment: None,
        };
        assert_eq!(
            approval(&a),
            "  ⏳ Waiting for approval (times out after 1h 00m); no traffic has moved"
        );
        a.state = ApprovalState::Approved;
        a.decided_by = Some("arn:aws:iam::123456789012:user/carol".into());
        a.comment = Some("CHG-1234".into());
        assert_eq!(approval(&a), "  ✓ Approved by carol: CHG-1234");
        a.state = ApprovalState::TimedOut;
        assert_eq!(approval(&a), "  ✗ Approval timed out after 1h 00m");
        assert!(!approval(&a).contains("secret-token"));
    }
}
