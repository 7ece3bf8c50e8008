//! How records read in responses: deployments, their steps and their decision ledger, with
//! timestamps in RFC 3339 and weights as `{"blue": 90, "green": 10}`.

use serde_json::{Value, json};
use shared::domain::{Approval, DeploymentRecord, LedgerEntry, StepRecord, TrafficSplit};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn ts(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339)
        .map_or_else(|_| json!(t.unix_timestamp()), Value::String)
}

pub fn weights(s: TrafficSplit) -> Value {
    json!({"blue": s.blue(), "green": s.green()})
}

/// One row of history.
pub fn summary(r: &DeploymentRecord) -> Value {
    json!({
        "deployment_id": r.id,
        "service": r.service,
        "environment": r.environment,
        "version": r.version,
        "previous_version": r.previous_version,
        "image": r.image,
        "strategy": r.strategy,
        "deployer": r.deployer,
        "triggered_by": r.triggered_by,
        "status": r.status.as_str(),
        "phase": r.phase.as_str(),
        "active_color": r.active_color,
        "target_color": r.target_color,
        "target_weight": r.target_weight,
        "started_at": ts(r.started_at),
        "finished_at": r.finished_at.map(ts),
        "duration_seconds": r.duration_seconds,
        "reason": r.reason,
        "approval": r.approval.as_ref().map(approval),
    })
}

/// An approval as callers see it: never the task token.
pub fn approval(a: &Approval) -> Value {
    json!({
        "required": true,
        "state": a.state.as_str(),
        "requested_at": ts(a.requested_at),
        "timeout_seconds": a.timeout_seconds,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.map(ts),
        "comment": a.comment,
    })
}

pub fn step(s: &StepRecord) -> Value {
    json!({
        "step_index": s.step_index,
        "weights": weights(s.split),
        "target_color": s.target_color,
        "shifted_at": ts(s.shifted_at),
    })
}

/// One evaluation with the numbers its verdict was based on.
pub fn ledger(e: &LedgerEntry) -> Value {
    let ev = &e.evaluation;
    json!({
        "kind": e.kind,
        "step_index": e.step_index,
        "verification_index": e.verification_index,
        "weights": weights(e.split),
        "target_color": e.target_color,
        "window": {"start": ts(e.window_start), "end": ts(e.window_end)},
        "requests": e.target.requests,
        "errors_5xx": e.target.errors_5xx,
        "error_rate_percent": ev.error_rate_percent,
        "baseline_requests": e.baseline.requests,
        "p99_ms": {"target": ev.target_p99_ms, "baseline": ev.baseline_p99_ms},
        "alarms": e.alarms,
        "checks": {
            "alarms": ev.alarms_check,
            "error_rate": ev.error_rate_check,
            "latency": ev.latency_check,
        },
        "verdict": ev.outcome,
        "summary": ev.summary(),
    })
}
