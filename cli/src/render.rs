//! How API responses read in a terminal: the same lines and marks as the product's reports
//! (`shared::report`), aligned tables, and durations like `12m 45s`. Pure: JSON in, lines out.

use crate::style::Paint;
use comfy_table::{Table, presets};
use serde_json::Value;
use shared::domain::{Color, TrafficSplit};
use shared::report::{self, duration, millis, percent};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn opt_s(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

pub fn time_of(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// `2025-01-03 10:00 UTC`.
pub fn when(v: &Value) -> String {
    match time_of(v) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        None => s(v).to_string(),
    }
}

/// `2025-01-03`.
pub fn date(v: &Value) -> String {
    when(v).split(' ').next().unwrap_or_default().to_string()
}

/// `12m 45s`, or `–` when not known.
pub fn took(v: &Value) -> String {
    v.as_u64().map_or_else(|| "–".to_string(), duration)
}

pub fn env_title(e: &str) -> String {
    e.to_uppercase()
}

pub fn strategy(v: &Value) -> String {
    match s(v) {
        "blue_green" => "Blue/Green".into(),
        "rollback" => "Rollback".into(),
        other => other.to_string(),
    }
}

/// A status with its mark: `✓ SUCCEEDED`, `✗ ROLLED_BACK`, `… IN_PROGRESS`.
pub fn status(p: &Paint, v: &Value) -> String {
    let st = s(v);
    match st {
        "SUCCEEDED" => format!("{} {st}", p.ok()),
        "IN_PROGRESS" => format!("… {st}"),
        _ => format!("{} {st}", p.fail()),
    }
}

fn color(v: &Value) -> Option<Color> {
    v.as_str().and_then(Color::parse)
}

fn split(weights: &Value) -> Option<TrafficSplit> {
    TrafficSplit::new(weights["blue"].as_i64()?, weights["green"].as_i64()?).ok()
}

/// An aligned table: no borders, a rule under the header, two spaces between columns.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(headers.to_vec());
    for r in rows {
        t.add_row(r);
    }
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    let mut lines: Vec<String> = t
        .to_string()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    lines.insert(1, "─".repeat(width));
    lines
}

/// The name in an IAM identity: `alice` for `arn:aws:iam::1:user/alice`, `Role/session` for
/// an assumed role; anything else as it is.
pub fn who(deployer: &str) -> String {
    match deployer.split_once(":user/") {
        Some((_, name)) => name.rsplit('/').next().unwrap_or(name).to_string(),
        None => deployer
            .split_once(":assumed-role/")
            .map_or(deployer, |(_, rest)| rest)
            .to_string(),
    }
}

/// At most `n` characters, with `…` when cut.
pub fn clip(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn v(version: &Value) -> String {
    opt_s(version).map_or_else(|| "unknown".into(), |x| format!("v{x}"))
}

/// Which color is active with which version once `d` is where it is now, and the standby's.
fn colors_now(d: &Value) -> Option<(Color, Option<String>, Option<String>)> {
    let active = color(&d["active_color"])?;
    let target = color(&d["target_color"]).unwrap_or(active.other());
    let version = opt_s(&d["version"]).map(str::to_string);
    let previous = opt_s(&d["previous_version"]).map(str::to_string);
    Some(if s(&d["status"]) == "SUCCEEDED" {
        (target, version, previous)
    } else if s(&d["phase"]) == "AWAITING_APPROVAL" {
        // Nothing is deployed before the approval: the standby still runs what it ran.
        (
            active,
            previous,
            opt_s(&d["replaced_version"]).map(str::to_string),
        )
    } else {
        (active, previous, version)
    })
}

/// Error rate of one ledger entry: `Error rate: 0.01%`.
fn error_rate(e: &Value) -> String {
    match e["error_rate_percent"].as_f64() {
        Some(r) => format!("Error rate: {}", percent(r)),
        None => "Error rate: no requests".into(),
    }
}

fn passed(e: &Value) -> bool {
    s(&e["verdict"]) == "pass"
}

/// The deployment as the report reads: who and what, the phases with every step's verdict, the
/// verification summary, and how it ended (or where it is).
pub fn deployment(p: &Paint, d: &Value) -> Vec<String> {
    let mut out = vec![
        format!(
            "{} {} v{} → {} ({}, deployer: {})",
            p.bold(s(&d["deployment_id"])),
            s(&d["service"]),
            s(&d["version"]),
            env_title(s(&d["environment"])),
            strategy(&d["strategy"]),
            s(&d["deployer"]),
        ),
        format!(
            "  Status: {} · phase {} · started {}",
            status(p, &d["status"]),
            s(&d["phase"]),
            when(&d["started_at"])
        ),
    ];
    out.extend(approval(p, &d["approval"]));
    if let Some(gates) = d["gates"].as_array() {
        let ok = gates
            .iter()
            .filter(|g| g["passed"] == Value::Bool(true))
            .count();
        let mark = if ok == gates.len() { p.ok() } else { p.fail() };
        out.push(format!(
            "  Promotion gates: {mark} {ok}/{} passed",
            gates.len()
        ));
    }
    out.push(String::new());
    let target = color(&d["target_color"]).map_or("target", Color::title);
    let is_rollback = s(&d["strategy"]) == "rollback";
    let awaiting = s(&d["phase"]) == "AWAITING_APPROVAL";
    if !is_rollback && !awaiting {
        out.push(format!(
            "Phase 1: Deploying v{} to {target} target group...",
            s(&d["version"])
        ));
        out.push(format!("  {} Image: {}", p.ok(), s(&d["image"])));
        let r = &d["readiness"];
        if r.is_object() {
            let platform: shared::domain::Platform =
                serde_json::from_value(r["platform"].clone()).unwrap_or_default();
            let count = |v: &Value| u32::try_from(v.as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
            out.push(format!(
                "  {} {} ({})",
                p.ok(),
                platform.units_line(count(&r["running"]), count(&r["desired"])),
                s(&r["revision"])
            ));
            out.push(format!(
                "  {} Health checks passing: {}/{} targets healthy",
                p.ok(),
                r["healthy_targets"],
                r["registered_targets"]
            ));
        } else if s(&d["phase"]) == "DEPLOYING_GREEN" {
            out.push("  … waiting for healthy targets".into());
        } else if s(&d["phase"]) == "REQUESTED" {
            out.push("  … starting: reading the listener and the alarms".into());
        }
    }
    let ledger = d["ledger"].as_array().cloned().unwrap_or_default();
    let steps = d["steps"].as_array().cloned().unwrap_or_default();
    if !steps.is_empty() {
        out.push(if is_rollback {
            "Rolling back...".into()
        } else {
            "Phase 2: Traffic shift...".into()
        });
    }
    let running = s(&d["status"]) == "IN_PROGRESS";
    for st in &steps {
        let Some(sp) = split(&st["weights"]) else {
            continue;
        };
        let on = color(&st["target_color"]).map_or(0, |c| sp.weight_of(c));
        let eval = ledger
            .iter()
            .find(|e| s(&e["kind"]) == "step" && e["step_index"] == st["step_index"]);
        out.push(match eval {
            Some(e) => {
                let mark = if passed(e) { p.ok() } else { p.fail() };
                let mut line = format!("  [{on}%] {sp}  {mark} {}", error_rate(e));
                if s(&e["checks"]["error_rate"]) == "not_judged" {
                    line.push_str(&format!(" (not judged: {} requests)", e["requests"]));
                }
                if !passed(e) {
                    line.push_str(&format!("\n      {} {}", p.fail(), s(&e["summary"])));
                }
                line
            }
            None if running => format!("  [{on}%] {sp}  … evaluating"),
            None if is_rollback => format!("  [{on}%] {sp}"),
            None => format!("  [{on}%] {sp}  … shifted; ended before its evaluation"),
        });
    }
    let checks: Vec<&Value> = ledger
        .iter()
        .filter(|e| s(&e["kind"]) == "verification")
        .collect();
    if !checks.is_empty() {
        out.push("Phase 3: Verification...".into());
        out.extend(verification(p, &checks));
    }
    if out.last().is_some_and(|l| !l.is_empty()) {
        out.push(String::new());
    }
    out.extend(ending(p, d));
    out
}

fn approval(p: &Paint, a: &Value) -> Vec<String> {
    if !a.is_object() {
        return vec![];
    }
    let state = s(&a["state"]);
    let mut line = match state {
        "PENDING" => format!(
            "  Approval: ⏳ PENDING since {} (times out after {})",
            when(&a["requested_at"]),
            took(&a["timeout_seconds"])
        ),
        "APPROVED" => format!(
            "  Approval: {} APPROVED by {} at {}",
            p.ok(),
            s(&a["decided_by"]),
            when(&a["decided_at"])
        ),
        "REJECTED" => format!(
            "  Approval: {} REJECTED by {} at {}",
            p.fail(),
            s(&a["decided_by"]),
            when(&a["decided_at"])
        ),
        other => format!("  Approval: {} {other}", p.fail()),
    };
    if let Some(c) = opt_s(&a["comment"]) {
        line.push_str(&format!(": {c}"));
    }
    vec![line]
}

/// The verification checks summed up, as `shared::report::verification` does.
fn verification(p: &Paint, checks: &[&Value]) -> Vec<String> {
    let failed = checks.iter().find(|e| !passed(e));
    let mark = if failed.is_some() { p.fail() } else { p.ok() };
    let (requests, errors) = checks.iter().fold((0u64, 0u64), |(r, x), e| {
        (
            r + e["requests"].as_u64().unwrap_or(0),
            x + e["errors_5xx"].as_u64().unwrap_or(0),
        )
    });
    let on = checks
        .last()
        .and_then(|e| color(&e["target_color"]))
        .map_or("target", Color::title);
    let mut lines = vec![format!(
        "  {mark} {} checks, {requests} requests on {on}",
        checks.len()
    )];
    lines.push(if requests > 0 {
        format!(
            "  {mark} Error rate stable: {}",
            percent(errors as f64 * 100.0 / requests as f64)
        )
    } else {
        format!("  {} Error rate: no requests", p.ok())
    });
    let worst = checks
        .iter()
        .filter_map(|e| e["p99_ms"]["target"].as_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let baseline = checks.last().and_then(|e| e["p99_ms"]["baseline"].as_f64());
    match (worst, baseline) {
        (Some(w), Some(b)) => lines.push(format!(
            "  {} P99 latency: {} (baseline: {})",
            p.ok(),
            millis(w),
            millis(b)
        )),
        (Some(w), None) => lines.push(format!(
            "  {} P99 latency: {} (no baseline)",
            p.ok(),
            millis(w)
        )),
        _ => {}
    }
    match failed {
        Some(f) => lines.push(format!("  {} {}", p.fail(), s(&f["summary"]))),
        None => lines.push(format!("  {} No anomalies detected", p.ok())),
    }
    lines
}

/// How it ended (or where it is) and the two colors with the live weights.
fn ending(p: &Paint, d: &Value) -> Vec<String> {
    let t = d["duration_seconds"]
        .as_u64()
        .map(duration)
        .unwrap_or_default();
    let reason = opt_s(&d["reason"]).unwrap_or("not recorded");
    let target = color(&d["target_color"]).map_or("the new color", Color::title);
    let mut lines = match s(&d["status"]) {
        "SUCCEEDED" if s(&d["strategy"]) == "rollback" => {
            vec![format!("{} Rollback complete ({t})", p.ok())]
        }
        "SUCCEEDED" => vec![format!("{} Deployment successful! ({t})", p.ok())],
        "ROLLED_BACK" => vec![
            format!("{} Deployment rolled back ({t})", p.fail()),
            format!("  Reason: {reason}"),
        ],
        "FAILED" => vec![
            format!(
                "{} Deployment failed; no traffic was sent to {target} ({t})",
                p.fail()
            ),
            format!("  Reason: {reason}"),
        ],
        "NOT_DEPLOYED" => vec![
            format!(
                "{} Not deployed: {target} never received traffic ({t})",
                p.fail()
            ),
            format!("  Reason: {reason}"),
        ],
        _ => vec![format!("Deployment in progress: {}", s(&d["phase"]))],
    };
    let weights = split(&d["current_weights"]);
    if let (Some((active, av, sv)), Some(sp)) = (colors_now(d), weights) {
        let mut cs = report::colors(active, av.as_deref(), sv.as_deref(), sp);
        if s(&d["status"]) == "SUCCEEDED"
            && let Some(l) = cs.iter_mut().find(|l| l.contains("(Standby)"))
        {
            l.push_str("  ← Ready for rollback");
        }
        lines.extend(cs);
    }
    if let Some(e) = opt_s(&d["current_weights_error"]) {
        lines.push(format!("  {} weights unknown: {e}", p.fail()));
    }
    lines
}

/// `bluegreen deploy`: what was started and how to watch it.
pub fn accepted(p: &Paint, a: &Value, service: &str, version: &str, env: &str) -> Vec<String> {
    let id = s(&a["deployment_id"]);
    vec![
        format!(
            "{} Started deployment {} of {service} v{version} to {}",
            p.ok(),
            p.bold(id),
            env_title(env)
        ),
        format!("  Execution: {}", s(&a["execution_arn"])),
        format!("  Follow:    bluegreen status {id} --service {service} --env {env} --follow"),
    ]
}

/// The current state before a rollback.
pub fn current_state(d: &Value) -> Vec<String> {
    let mut lines = vec!["Current state:".to_string()];
    if let (Some((active, av, sv)), Some(sp)) = (colors_now(d), split(&d["current_weights"])) {
        lines.extend(report::colors(active, av.as_deref(), sv.as_deref(), sp));
    } else {
        lines.push(format!(
            "  latest deployment {}: {} v{} ({}); weights unknown",
            s(&d["deployment_id"]),
            s(&d["status"]),
            s(&d["version"]),
            s(&d["phase"])
        ));
    }
    lines
}

pub fn rollback_result(p: &Paint, r: &Value) -> Vec<String> {
    let mut lines: Vec<String> = r["report"]
        .as_array()
        .map(|a| a.iter().map(|l| s(l).to_string()).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        lines.push(format!("{} Rollback complete", p.ok()));
    }
    let standby = v(&r["standby"]["version"]);
    lines.push(String::new());
    lines.push("Post-rollback actions:".into());
    lines.push(format!(
        "  • Investigate {standby}: bluegreen troubleshoot {} --service {} --env {}",
        s(&r["deployment_id"]),
        s(&r["service"]),
        s(&r["environment"])
    ));
    lines.push(format!(
        "  • History: bluegreen history --env {} --service {}",
        s(&r["environment"]),
        s(&r["service"])
    ));
    lines
}

fn gate_label(g: &str) -> &str {
    match g {
        "upstream_succeeded" => "Upstream deployment",
        "integration_tests" => "Integration tests",
        "performance" => "Performance tests",
        "compliance" => "Compliance",
        "image_scan" => "Image scan",
        "not_quarantined" => "Not quarantined",
        other => other,
    }
}

/// The promotion checklist: one line per gate with its detail.
pub fn gates(p: &Paint, gates: &Value) -> Vec<String> {
    let mut lines = vec!["Pre-promotion checklist:".to_string()];
    for g in gates.as_array().into_iter().flatten() {
        let mark = if g["passed"] == Value::Bool(true) {
            p.ok()
        } else {
            p.fail()
        };
        lines.push(format!(
            "  {mark} {:<22}{}",
            format!("{}:", gate_label(s(&g["gate"]))),
            s(&g["detail"])
        ));
    }
    lines
}

pub fn promotion(p: &Paint, r: &Value) -> Vec<String> {
    let pr = &r["promotion"];
    let id = s(&r["deployment_id"]);
    let (svc, to) = (s(&pr["service"]), s(&pr["to"]));
    let mut lines = gates(p, &pr["gates"]);
    lines.push(String::new());
    lines.push(format!(
        "{} Promotion started: {} ({} v{} → {}, image {})",
        p.ok(),
        p.bold(id),
        s(&pr["service"]),
        s(&pr["version"]),
        env_title(s(&pr["to"])),
        s(&pr["image"])
    ));
    if r["awaiting_approval"] == Value::Bool(true) {
        lines.push("⏳ Waiting for manual approval:".into());
        lines.push(format!(
            "  Approve: bluegreen approve {id} --service {svc} --env {to} --comment \"…\""
        ));
        lines.push(format!(
            "  Reject:  bluegreen reject {id} --service {svc} --env {to} --reason \"…\""
        ));
    }
    lines.push(format!(
        "  Follow:  bluegreen status {id} --service {svc} --env {to} --follow"
    ));
    lines
}

pub fn decision(p: &Paint, r: &Value, service: &str, environment: &str) -> Vec<String> {
    let approved = s(&r["decision"]) == "APPROVED";
    let mut line = format!(
        "{} {} {} by {} at {}",
        if approved { p.ok() } else { p.fail() },
        if approved { "Approved" } else { "Rejected" },
        p.bold(s(&r["deployment_id"])),
        s(&r["by"]),
        when(&r["at"])
    );
    if let Some(reason) = opt_s(&r["reason"]) {
        line.push_str(&format!(": {reason}"));
    }
    let mut lines = vec![line];
    lines.push(if approved {
        format!(
            "  Follow: bluegreen status {} --service {service} --env {environment} --follow",
            s(&r["deployment_id"])
        )
    } else {
        "  Green never receives traffic; the deployment ends NOT_DEPLOYED.".into()
    });
    lines
}

/// `1 day`, `6 hours`, `90 minutes`, `45 seconds`: the largest whole unit.
fn duration_words(seconds: u64) -> String {
    let unit = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => unit(s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => unit(s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => unit(s / 60, "minute"),
        s => unit(s, "second"),
    }
}

/// `bluegreen policy`: what governs a service or an environment.
pub fn policy(p: &Paint, v: &Value, changed: bool) -> Vec<String> {
    let head = if changed {
        format!("{} Policy set: ", p.ok())
    } else {
        "Policy of ".into()
    };
    let mut lines = vec![];
    if let Some(env) = opt_s(&v["environment"]) {
        lines.push(format!(
            "{head}{}/{}{}",
            p.bold(s(&v["service"])),
            env_title(env),
            if v["default"] == true {
                " (the default for its name)"
            } else {
                ""
            }
        ));
        lines.push(format!(
            "  Protected   {}",
            if v["protected"] == true {
                "yes: deployments only through promotion, pinned by digest to the registered repository"
            } else {
                "no: any deployment path"
            }
        ));
        let timeout = v["approval"]["timeout_seconds"].as_u64().unwrap_or(0);
        lines.push(format!(
            "  Approval    {}",
            if v["approval"]["required"] == true {
                format!("required (waits up to {})", duration_words(timeout))
            } else {
                "not required".into()
            }
        ));
    } else {
        lines.push(format!("{head}{}", p.bold(s(&v["service"]))));
        let accounts: Vec<&str> = v["accounts"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        lines.push(format!(
            "  Accounts    {}",
            if accounts.is_empty() {
                "none: its environments act in the controller's account".to_string()
            } else {
                accounts.join(", ")
            }
        ));
        let blocking: Vec<&str> = v["promotion"]["blocking_severities"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        lines.push(format!(
            "  Gates       P99 under {} ms; scan findings that block: {}",
            v["promotion"]["p99_limit_ms"].as_f64().unwrap_or(0.0),
            if blocking.is_empty() {
                "none".to_string()
            } else {
                blocking.join(", ")
            }
        ));
        // ARNs and logins are the API's text: one line each, no control characters
        let clean = |t: &str| -> String {
            t.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        let recorders: Vec<String> = ["integration", "e2e", "performance", "compliance"]
            .iter()
            .filter_map(|kind| {
                let who: Vec<String> = v["evidence_recorders"][*kind]
                    .as_array()?
                    .iter()
                    .map(|r| clean(s(r)))
                    .collect();
                (!who.is_empty()).then(|| format!("{kind}: {}", who.join(", ")))
            })
            .collect();
        lines.push(format!(
            "  Recorders   {}",
            if recorders.is_empty() {
                "none: no evidence is accepted".to_string()
            } else {
                recorders.join("; ")
            }
        ));
        let logins: Vec<String> = v["github_logins"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(who, login)| format!("{} is {}", clean(who), clean(s(login))))
                    .collect()
            })
            .unwrap_or_default();
        if !logins.is_empty() {
            lines.push(format!("  GitHub      {}", logins.join("; ")));
        }
    }
    lines
}

/// `bluegreen history`: one row per deployment, then the totals the reference report shows.
pub fn history(p: &Paint, env: &str, deployments: &[Value]) -> Vec<String> {
    let mut lines = vec![
        format!("{} deployment history:", env_title(env)),
        String::new(),
    ];
    if deployments.is_empty() {
        lines.push("  no deployments recorded".into());
        return lines;
    }
    let rows = deployments
        .iter()
        .map(|d| {
            vec![
                s(&d["version"]).to_string(),
                status(p, &d["status"]),
                took(&d["duration_seconds"]),
                strategy(&d["strategy"]),
                who(s(&d["deployer"])),
                clip(opt_s(&d["reason"]).unwrap_or("–"), 48),
                when(&d["started_at"]),
            ]
        })
        .collect();
    lines.extend(table(
        &[
            "Version", "Status", "Duration", "Strategy", "Deployer", "Reason", "Started",
        ],
        rows,
    ));
    let finished: Vec<&Value> = deployments
        .iter()
        .filter(|d| s(&d["status"]) != "IN_PROGRESS")
        .collect();
    let succeeded = finished
        .iter()
        .filter(|d| s(&d["status"]) == "SUCCEEDED")
        .count();
    let rolled_back = deployments
        .iter()
        .filter(|d| s(&d["status"]) == "ROLLED_BACK" || s(&d["strategy"]) == "rollback")
        .count();
    let durations: Vec<u64> = finished
        .iter()
        .filter_map(|d| d["duration_seconds"].as_u64())
        .collect();
    lines.push(String::new());
    lines.push(format!("Rollback events: {rolled_back}"));
    if !durations.is_empty() {
        let avg = durations.iter().sum::<u64>() / durations.len() as u64;
        lines.push(format!("Average deployment time: {}", duration(avg)));
    }
    if !finished.is_empty() {
        lines.push(format!(
            "Success rate: {} ({succeeded}/{})",
            percent(succeeded as f64 * 100.0 / finished.len() as f64),
            finished.len()
        ));
    }
    lines
}

fn opt_num(v: &Value, f: impl Fn(&Value) -> Option<String>) -> String {
    f(v).unwrap_or_else(|| "–".into())
}

/// `bluegreen metrics`: per environment, then the DORA four, then the recent deployments.
pub fn metrics(p: &Paint, m: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "Deployment metrics, last {} days ({} to {}):",
        m["days"],
        date(&m["from"]),
        date(&m["to"])
    )];
    lines.push(String::new());
    let rows = m["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                env_title(s(&e["environment"])),
                e["deployments"].to_string(),
                e["succeeded"].to_string(),
                e["failed"].to_string(),
                e["rolled_back"].to_string(),
                e["not_deployed"].as_u64().unwrap_or(0).to_string(),
                opt_num(&e["success_rate_percent"], |v| v.as_f64().map(percent)),
                opt_num(&e["mttr_seconds"], |v| v.as_u64().map(duration)),
                opt_num(&e["average_duration_seconds"], |v| {
                    v.as_f64().map(|x| duration(x.round() as u64))
                }),
            ]
        })
        .collect();
    lines.extend(table(
        &[
            "Environment",
            "Deployments",
            "Succeeded",
            "Failed",
            "Rolled back",
            "Not deployed",
            "Success rate",
            "MTTR",
            "Avg duration",
        ],
        rows,
    ));
    let dora = &m["dora"];
    if dora.is_object() {
        lines.push(String::new());
        lines.push(format!("DORA ({}):", env_title(s(&dora["environment"]))));
        let freq = dora["deployment_frequency_per_day"].as_f64().unwrap_or(0.0);
        lines.push(format!(
            "  Deployment frequency:   {freq:.2} per day ({} deployment{})",
            dora["deployments"],
            if dora["deployments"].as_u64() == Some(1) {
                ""
            } else {
                "s"
            }
        ));
        lines.push(format!(
            "  Lead time for changes:  {}",
            opt_num(&dora["lead_time_seconds"], |v| v.as_u64().map(duration))
        ));
        lines.push(format!(
            "  Change failure rate:    {}",
            opt_num(&dora["change_failure_rate_percent"], |v| v
                .as_f64()
                .map(percent))
        ));
        lines.push(format!(
            "  Time to restore:        {}",
            opt_num(&dora["time_to_restore_seconds"], |v| v
                .as_u64()
                .map(duration))
        ));
    }
    let recent: Vec<Vec<String>> = m["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                date(&d["started_at"]),
                env_title(s(&d["environment"])),
                s(&d["service"]).to_string(),
                s(&d["version"]).to_string(),
                took(&d["duration_seconds"]),
                status(p, &d["status"]),
                clip(opt_s(&d["reason"]).unwrap_or(""), 60),
            ]
        })
        .collect();
    if !recent.is_empty() {
        lines.push(String::new());
        lines.push("Recent deployments:".into());
        lines.extend(table(
            &[
                "Date", "Env", "Service", "Version", "Duration", "Status", "Reason",
            ],
            recent,
        ));
    }
    lines
}

/// `bluegreen troubleshoot`: what failed, where to look, what to do.
pub fn troubleshoot(p: &Paint, t: &Value) -> Vec<String> {
    let d = &t["deployment"];
    let mut lines = vec![
        format!(
            "Troubleshooting {}: {} v{} → {}",
            p.bold(s(&d["deployment_id"])),
            s(&d["service"]),
            s(&d["version"]),
            env_title(s(&d["environment"]))
        ),
        format!(
            "  Status: {} · phase {}",
            status(p, &d["status"]),
            s(&d["phase"])
        ),
    ];
    if let Some(r) = opt_s(&t["failure_reason"]) {
        lines.push(format!("  Failure: {r}"));
    }
    lines.push(String::new());
    lines.push("Target health:".into());
    for tg in t["target_health"].as_array().into_iter().flatten() {
        let c = color(&tg["color"]).map_or("?", Color::title);
        lines.push(format!("  {c}: {}", s(&tg["target_group_arn"])));
        let targets = tg["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            lines.push(format!("    {} no targets registered", p.fail()));
        }
        for x in &targets {
            let healthy = s(&x["state"]) == "healthy";
            let mut line = format!(
                "    {} {}:{}  {}",
                if healthy { p.ok() } else { p.fail() },
                s(&x["id"]),
                x["port"],
                s(&x["state"])
            );
            for k in ["reason", "description"] {
                if let Some(r) = opt_s(&x[k]) {
                    line.push_str(&format!("  {r}"));
                }
            }
            lines.push(line);
        }
    }
    lines.push(String::new());
    let workloads = t["compute"].as_array().cloned().unwrap_or_default();
    let eks = workloads.iter().any(|e| s(&e["platform"]) == "eks");
    lines.push(if eks { "EKS:" } else { "ECS:" }.into());
    for e in &workloads {
        let c = color(&e["color"]).map_or("?", Color::title);
        if let Some(err) = opt_s(&e["error"]) {
            lines.push(format!("  {c}: {} {err}", p.fail()));
            continue;
        }
        let ok = e["running"] == e["desired"];
        let place = match opt_s(&e["namespace"]) {
            Some(ns) => format!("{}/{ns}/{}", s(&e["cluster"]), s(&e["name"])),
            None => format!("{}/{}", s(&e["cluster"]), s(&e["name"])),
        };
        lines.push(format!(
            "  {c}: {place}  {} {} {}/{}",
            if ok { p.ok() } else { p.fail() },
            if eks { "ready" } else { "running" },
            e["running"],
            e["desired"]
        ));
        let units = e["units"].as_array().cloned().unwrap_or_default();
        if !units.is_empty() {
            lines.push(
                if eks {
                    "    Pods:"
                } else {
                    "    Stopped tasks:"
                }
                .into(),
            );
            for x in &units {
                let at = if x["at"].is_string() {
                    format!(" (at {})", when(&x["at"]))
                } else {
                    String::new()
                };
                let reasons = x["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect::<Vec<_>>()
                    .join("; ");
                if eks {
                    let ready = x["ready"] == true;
                    lines.push(format!(
                        "      {} {}  {}  ready {}  restarts {}  {}{}",
                        if ready { p.ok() } else { p.fail() },
                        s(&x["id"]),
                        s(&x["state"]),
                        if ready { "yes" } else { "no" },
                        x["restarts"].as_u64().unwrap_or(0),
                        opt_s(&x["address"]).unwrap_or("-"),
                        if reasons.is_empty() {
                            String::new()
                        } else {
                            format!("  {reasons}")
                        }
                    ));
                } else {
                    lines.push(format!(
                        "      {} {}: {reasons}{at}",
                        p.fail(),
                        s(&x["id"]).rsplit('/').next().unwrap_or_default(),
                    ));
                }
            }
        }
        let events = e["events"].as_array().cloned().unwrap_or_default();
        if !events.is_empty() {
            lines.push("    Recent events:".into());
            for x in &events {
                lines.push(format!("      {}  {}", when(&x["at"]), s(&x["message"])));
            }
        }
    }
    let links = &t["links"];
    lines.push(String::new());
    lines.push("Links:".into());
    lines.push(format!("  Execution: {}", s(&links["execution"])));
    for l in links["logs"].as_array().into_iter().flatten() {
        lines.push(format!("  Logs:      {}", s(l)));
    }
    lines.push(format!("  Metrics:   {}", s(&links["metrics"])));
    let steps = t["next_steps"].as_array().cloned().unwrap_or_default();
    if !steps.is_empty() {
        lines.push(String::new());
        lines.push("Next steps:".into());
        for x in &steps {
            lines.push(format!("  • {}", s(x)));
        }
    }
    lines
}
