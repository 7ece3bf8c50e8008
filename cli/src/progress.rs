//! The live view of `--follow` on a terminal: one progress bar per phase and per step of the
//! plan, filled by the time waited against the plan's timings, finished with the verdict.

use crate::app::Ctx;
use crate::error::CliError;
use crate::render::{self, s, time_of};
use crate::transport::{Request, Transport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use shared::domain::TrafficSplit;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<u16>,
    pub step_wait_seconds: u64,
    pub verification_seconds: u64,
    pub health_timeout_seconds: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            steps: vec![10, 25, 50, 100],
            step_wait_seconds: 120,
            verification_seconds: 600,
            health_timeout_seconds: 900,
        }
    }
}

impl Plan {
    /// From `GET /services/{service}/environments/{env}`; the defaults for what it leaves out.
    pub fn from_config(c: &Value) -> Self {
        let d = Plan::default();
        let steps: Vec<u16> = c["steps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().and_then(|n| u16::try_from(n).ok()))
                    .collect()
            })
            .filter(|v: &Vec<u16>| !v.is_empty())
            .unwrap_or(d.steps);
        let t = &c["timings"];
        Self {
            steps,
            step_wait_seconds: t["step_wait_seconds"]
                .as_u64()
                .unwrap_or(d.step_wait_seconds),
            verification_seconds: t["verification_seconds"]
                .as_u64()
                .unwrap_or(d.verification_seconds),
            health_timeout_seconds: t["health_timeout_seconds"]
                .as_u64()
                .unwrap_or(d.health_timeout_seconds),
        }
    }
}

/// One bar: how far, out of how much, what it says, and whether it is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub len: u64,
    pub pos: u64,
    pub message: String,
    pub done: bool,
}

fn elapsed(since: Option<OffsetDateTime>, now: OffsetDateTime) -> u64 {
    since.map_or(0, |t| u64::try_from((now - t).whole_seconds()).unwrap_or(0))
}

/// The bars for deployment `d` at `now`: deploy, each planned step, verification.
pub fn bars(d: &Value, plan: &Plan, now: OffsetDateTime) -> Vec<Bar> {
    let running = s(&d["status"]) == "IN_PROGRESS";
    let phase = s(&d["phase"]);
    let steps = d["steps"].as_array().cloned().unwrap_or_default();
    let ledger = d["ledger"].as_array().cloned().unwrap_or_default();
    let r = &d["readiness"];
    let deployed = !matches!(phase, "REQUESTED" | "DEPLOYING_GREEN" | "AWAITING_APPROVAL");
    let mut out = vec![Bar {
        label: "Deploy".into(),
        len: plan.health_timeout_seconds.max(1),
        pos: if deployed {
            plan.health_timeout_seconds.max(1)
        } else {
            elapsed(time_of(&d["started_at"]), now).min(plan.health_timeout_seconds)
        },
        message: if r.is_object() {
            format!(
                "{}/{} targets healthy",
                r["healthy_targets"], r["registered_targets"]
            )
        } else if phase == "AWAITING_APPROVAL" {
            "⏳ waiting for approval".into()
        } else {
            "waiting for healthy targets".into()
        },
        done: deployed || !running,
    }];
    let target = d["target_color"]
        .as_str()
        .and_then(shared::domain::Color::parse);
    for (i, pct) in plan.steps.iter().enumerate() {
        let written = steps
            .iter()
            .find(|st| st["step_index"].as_u64() == Some(i as u64));
        let eval = ledger
            .iter()
            .find(|e| s(&e["kind"]) == "step" && e["step_index"].as_u64() == Some(i as u64));
        let split = target.and_then(|c| TrafficSplit::with_percent_on(c, *pct).ok());
        let weights = split.map(|x| x.to_string()).unwrap_or_default();
        let (pos, message, done) = match (written, eval) {
            (_, Some(e)) => {
                let mark = if s(&e["verdict"]) == "pass" {
                    "✓"
                } else {
                    "✗"
                };
                let rate = e["error_rate_percent"]
                    .as_f64()
                    .map_or_else(|| "no requests".into(), shared::report::percent);
                (
                    plan.step_wait_seconds,
                    format!("{weights}  {mark} Error rate: {rate}"),
                    true,
                )
            }
            (Some(st), None) => (
                elapsed(time_of(&st["shifted_at"]), now).min(plan.step_wait_seconds),
                format!("{weights}  waiting to evaluate"),
                !running,
            ),
            (None, None) => (0, format!("{weights}  pending"), !running),
        };
        out.push(Bar {
            label: format!("[{pct}%]"),
            len: plan.step_wait_seconds.max(1),
            pos,
            message,
            done,
        });
    }
    let checks: Vec<&Value> = ledger
        .iter()
        .filter(|e| s(&e["kind"]) == "verification")
        .collect();
    let verifying = phase == "VERIFYING";
    let started = checks
        .first()
        .and_then(|e| time_of(&e["window"]["start"]))
        .or_else(|| steps.last().and_then(|st| time_of(&st["shifted_at"])));
    out.push(Bar {
        label: "Verify".into(),
        len: plan.verification_seconds.max(1),
        pos: if verifying {
            elapsed(started, now).min(plan.verification_seconds)
        } else if phase == "SUCCEEDED" {
            plan.verification_seconds.max(1)
        } else {
            0
        },
        message: format!("{} checks", checks.len()),
        done: !running,
    });
    out
}

/// Draws the bars until the deployment ends, then the full report; returns the last state.
pub fn live(
    ctx: &mut Ctx,
    api: &dyn Transport,
    get: &Request,
    first: Value,
    plan: &Plan,
) -> Result<Value, CliError> {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template("{prefix:>7} {bar:30.green/white} {msg}")
        .map_err(|e| CliError::refused(format!("progress style: {e}")))?
        .progress_chars("█▉ ");
    let header = render::deployment(&ctx.paint, &first);
    if let Some(h) = header.first() {
        ctx.line(h)?;
    }
    let mut handles: Vec<ProgressBar> = vec![];
    let mut d = first;
    loop {
        let now = OffsetDateTime::now_utc();
        let states = bars(&d, plan, now);
        while handles.len() < states.len() {
            handles.push(multi.add(ProgressBar::new(1).with_style(style.clone())));
        }
        for (bar, st) in handles.iter().zip(&states) {
            bar.set_prefix(st.label.clone());
            bar.set_length(st.len);
            bar.set_position(st.pos);
            bar.set_message(st.message.clone());
        }
        if s(&d["status"]) != "IN_PROGRESS" {
            break;
        }
        (ctx.sleep)(ctx.settings.interval);
        d = ctx.fetch(api, get)?;
    }
    for b in &handles {
        b.finish();
    }
    multi
        .clear()
        .map_err(|e| CliError::refused(format!("clearing the progress bars: {e}")))?;
    let lines = render::deployment(&ctx.paint, &d);
    ctx.lines(&lines)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn bars_fill_with_time_waited_and_finish_with_the_verdict() {
        let d = json!({
            "status": "IN_PROGRESS", "phase": "SHIFTING_TRAFFIC", "target_color": "green",
            "started_at": "2025-01-03T10:00:00Z",
            "readiness": {"healthy_targets": 3, "registered_targets": 3},
            "steps": [
                {"step_index": 0, "shifted_at": "2025-01-03T10:01:00Z"},
                {"step_index": 1, "shifted_at": "2025-01-03T10:03:00Z"}
            ],
            "ledger": [{"kind": "step", "step_index": 0, "verdict": "pass", "error_rate_percent": 0.01}]
        });
        let plan = Plan::from_config(
            &json!({"steps": [10, 25, 100], "timings": {"step_wait_seconds": 120}}),
        );
        let bars = bars(&d, &plan, datetime!(2025-01-03 10:03:30 UTC));
        let view: Vec<(&str, u64, u64, &str, bool)> = bars
            .iter()
            .map(|b| (b.label.as_str(), b.pos, b.len, b.message.as_str(), b.done))
            .collect();
        assert_eq!(
            view,
            vec![
                ("Deploy", 900, 900, "3/3 targets healthy", true),
                (
                    "[10%]",
                    120,
                    120,
                    "Blue: 90% | Green: 10%  ✓ Error rate: 0.01%",
                    true
                ),
                (
                    "[25%]",
                    30,
                    120,
                    "Blue: 75% | Green: 25%  waiting to evaluate",
                    false
                ),
                ("[100%]", 0, 120, "Blue: 0% | Green: 100%  pending", false),
                ("Verify", 0, 600, "0 checks", false),
            ]
        );
    }
}
