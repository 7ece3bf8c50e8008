//! Troubleshooting one deployment: both colors' target health with reasons, each color's
//! workload (ECS service or Kubernetes Deployment) with its counts, units (stopped tasks, or
//! pods with their containers' reasons) and events, the failure reason, where the logs and metrics are,
//! and what to do next. Read-only. Each part that cannot be read says why instead of failing
//! the whole answer: troubleshooting is most needed when something is broken.

use crate::http::{ApiError, Reply};
use crate::views::{self, ts};
use crate::{ApiDeps, Call, per_service};
use serde_json::{Value, json};
use shared::domain::{Color, DeploymentRecord, DeploymentStatus, Phase};
use shared::ports::TargetHealthReport;

fn region_of(arn: &str) -> &str {
    arn.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1")
}

/// The prefix the stack gave every function: this function's name without `api`.
fn function_prefix() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .and_then(|n| n.strip_suffix("api").map(str::to_string))
        .unwrap_or_default()
}

fn health_view(color: Color, tg: &str, report: Result<TargetHealthReport, String>) -> Value {
    match report {
        Ok(r) => json!({
            "color": color,
            "target_group_arn": tg,
            "healthy": r.healthy,
            "registered": r.registered,
            "targets": r.targets.iter().map(|t| json!({
                "id": t.id, "port": t.port, "state": t.state,
                "reason": t.reason, "description": t.description,
            })).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"color": color, "target_group_arn": tg, "error": e}),
    }
}

async fn target_health(deps: &ApiDeps, r: &DeploymentRecord) -> Vec<Value> {
    let targets = deps.access.targets(&r.reach()).await;
    let mut out = vec![];
    // the new color first: that is where deployments go wrong
    for color in r.colors_new_first() {
        let tg = r.traffic.target_group(color);
        let report = match &targets {
            Ok(t) => t.target_health(tg).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push(health_view(color, tg.as_str(), report));
    }
    out
}

async fn workloads(deps: &ApiDeps, r: &DeploymentRecord) -> Vec<Value> {
    // The compute wiring is in the registry (the record keeps only the traffic wiring).
    let config = match deps
        .registry
        .environment_config(&r.service, &r.environment)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return vec![json!({"error": format!(
                "{}/{} is no longer in the registry", r.service, r.environment
            )})];
        }
        Err(e) => return vec![json!({"error": e.to_string()})],
    };
    let platform = config.compute.platform();
    let compute = match deps.access.compute(&r.reach(), platform).await {
        Ok(c) => c,
        Err(e) => return vec![json!({"platform": platform, "error": e.to_string()})],
    };
    let mut out = vec![];
    for color in r.colors_new_first() {
        let w = config.compute.workload(color);
        let mut view = json!({
            "color": color,
            "platform": w.platform,
            "cluster": w.cluster,
            "namespace": w.namespace,
            "name": w.name,
        });
        match compute.diagnose(&w).await {
            Ok(d) => {
                view["running"] = json!(d.running);
                view["desired"] = json!(d.desired);
                view["units"] = d
                    .units
                    .iter()
                    .map(|u| {
                        json!({"id": u.id, "state": u.state, "ready": u.ready,
                               "restarts": u.restarts, "address": u.address,
                               "reasons": u.reasons, "at": u.at.map(ts)})
                    })
                    .collect();
                view["events"] = d
                    .events
                    .iter()
                    .map(|(at, m)| json!({"at": at.map(ts), "message": m}))
                    .collect();
                view["commands"] = json!(d.commands);
            }
            Err(e) => view["error"] = json!(e.to_string()),
        }
        out.push(view);
    }
    out
}

/// What a person should do next, from what is known.
fn next_steps(r: &DeploymentRecord, health: &[Value], compute: &[Value]) -> Vec<String> {
    let mut steps = vec![];
    let new = r.target_title();
    let unhealthy: Vec<String> = health
        .first()
        .and_then(|h| h["targets"].as_array())
        .into_iter()
        .flatten()
        .filter(|t| t["state"] != "healthy")
        .filter_map(|t| {
            t["reason"]
                .as_str()
                .map(|reason| format!("{} {}", t["id"].as_str().unwrap_or("?"), reason))
        })
        .collect();
    // The new color's first unit that says why it is not running (units are newest first).
    let new_color = compute.first();
    let unit_noun = match new_color.map(|c| &c["platform"]) {
        Some(p) if p == "eks" => "pod",
        _ => "task",
    };
    let stuck = new_color
        .and_then(|c| c["units"].as_array())
        .into_iter()
        .flatten()
        .find_map(|u| {
            let why = u["reasons"].as_array()?.first()?.as_str()?;
            Some((u["id"].as_str().unwrap_or("?"), why))
        });
    let commands: Vec<String> = new_color
        .and_then(|c| c["commands"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    match r.status {
        DeploymentStatus::InProgress if r.phase == Phase::AwaitingApproval => steps.push(format!(
            "{new} is ready with no traffic and waits for approval: bluegreen approve {id} --service {svc} --env {env} (or reject {id} --service {svc} --env {env} --reason …)",
            id = r.id,
            svc = r.service,
            env = r.environment
        )),
        DeploymentStatus::InProgress => {
            steps.push(format!(
                "Follow it: bluegreen status {} --service {} --env {} --follow",
                r.id, r.service, r.environment
            ));
            steps.push(format!(
                "Stop it and restore {}: bluegreen rollback {} --service {}",
                r.active_title(),
                r.environment,
                r.service
            ));
        }
        DeploymentStatus::Succeeded => steps.push(format!(
            "Nothing to fix: {} serves v{}; {} keeps v{} for instant rollback (bluegreen rollback {} --service {})",
            r.target_title(),
            r.version,
            r.active_title(),
            r.previous_version.as_deref().unwrap_or("?"),
            r.environment,
            r.service
        )),
        DeploymentStatus::NotDeployed => steps.push(format!(
            "Nothing changed for users. Promote v{} again when it is ready to be approved.",
            r.version
        )),
        DeploymentStatus::Failed | DeploymentStatus::RolledBack => {
            match (unit_noun, stuck) {
                ("task", Some((_, why))) => steps.push(format!(
                    "Read the stopped task's container logs: the task stopped with \"{why}\""
                )),
                (_, Some((id, why))) => steps.push(format!(
                    "{new}'s {unit_noun} {id} is not running: {why}"
                )),
                (_, None) => {}
            }
            steps.extend(commands.iter().cloned());
            if !unhealthy.is_empty() {
                steps.push(format!(
                    "Check {new}'s health check (path, port, expected codes): {}",
                    unhealthy.join(", ")
                ));
            }
            if r.status == DeploymentStatus::RolledBack {
                steps.push(format!(
                    "Read the numbers behind the rollback: bluegreen status {}",
                    r.id
                ));
                steps.push(format!(
                    "v{} is quarantined; fix and release a new version, or clear it with a reason (POST /services/{}/versions/{}/quarantine/clear)",
                    r.version, r.service, r.version
                ));
            } else {
                steps.push(format!(
                    "Fix and release a new version; {} keeps serving v{}",
                    r.active_title(),
                    r.previous_version.as_deref().unwrap_or("the previous version")
                ));
            }
        }
    }
    steps
}

/// `GET /services/{service}/environments/{environment}/deployments/{id}/troubleshoot`.
pub async fn get(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let r = per_service::deployment(&*deps.store, &call.scope, call.param("id")).await?;
    let health = target_health(deps, &r).await;
    let compute = workloads(deps, &r).await;
    let region = region_of(if r.execution_arn.is_empty() {
        r.traffic.blue_target_group_arn.as_str()
    } else {
        &r.execution_arn
    })
    .to_string();
    let prefix = function_prefix();
    let logs: Vec<String> = [
        "deploy-green",
        "shift-traffic",
        "evaluate",
        "finalize",
        "rollback",
    ]
    .iter()
    .map(|f| format!("/aws/lambda/{prefix}{f}"))
    .collect();
    let execution = (!r.execution_arn.is_empty()).then(|| {
        format!(
            "https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
            r.execution_arn
        )
    });
    let failure_reason = match r.status {
        DeploymentStatus::Succeeded => None,
        _ => r.reason.clone(),
    };
    let next = next_steps(&r, &health, &compute);
    Ok(Reply::ok(json!({
        "deployment": views::summary(&r),
        "failure_reason": failure_reason,
        "target_health": health,
        "compute": compute,
        "links": {
            "execution": execution,
            "logs": logs,
            "metrics": format!("https://console.aws.amazon.com/cloudwatch/home?region={region}#metricsV2:graph=~();namespace=AWS/ApplicationELB"),
        },
        "next_steps": next,
    })))
}
