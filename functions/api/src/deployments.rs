//! Deployments: start one (through the shared start, which takes the environment's lock),
//! read one with its live weights, steps and ledger, list an environment's history, and roll
//! an in-progress one back.

use crate::http::{ApiError, Reply};
use crate::views::{self, ts, weights};
use crate::{ApiDeps, Call, per_service, requests};
use serde_json::{Value, json};
use shared::domain::{DeploymentRecord, TrafficSplit};
use shared::ports::ForwardTarget;
use shared::usecases::rollback::RollbackOutcome;
use shared::usecases::start::{StartError, StartRequest};

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::UnknownService(_) | StartError::UnknownEnvironment(..) => {
                ApiError::not_found(e.to_string())
            }
            StartError::Invalid(m) => ApiError::invalid(m),
            StartError::Locked { .. } | StartError::IdTaken { .. } => {
                ApiError::conflict(e.to_string())
            }
            StartError::Protected(m) => ApiError::protected(m),
            StartError::Aws(a) => ApiError::from(a),
        }
    }
}

fn accepted(call: &Call, id: &str, execution_arn: &str) -> Reply {
    let status_url = format!("{}{}/deployments/{id}", call.base, call.scope.path());
    Reply {
        status: 202,
        body: json!({"deployment_id": id, "execution_arn": execution_arn, "status_url": status_url}),
        location: Some(status_url),
    }
}

pub async fn start(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::start(call.body(), &call.scope)?;
    let service = call.scope.service.clone();
    let environment = call.scope.environment()?.to_string();
    let triggered_by = call.triggered_by(deps)?;
    let id = requests::new_deployment_id(
        call.idempotency_key.as_deref(),
        call.request_id.as_deref(),
        &service,
        &environment,
        &body.version,
        deps.clock.now(),
    )?;
    // A repeat of a start whose deployment already runs (or ran): the same answer. The id is
    // derived from the path's service and environment, so it names no one else's deployment;
    // should it anyway, the start itself refuses it (IdTaken).
    if call.idempotency_key.is_some()
        && let Some(r) = deps.store.deployment(&id).await?
        && call.scope.owns(&r)
    {
        tracing::info!(deployment_id = %id, "repeated start: nothing new started");
        return Ok(accepted(call, &id, &r.execution_arn));
    }
    let started = shared::usecases::start::start(
        &deps.start_deps(),
        &StartRequest {
            deployment_id: id,
            service,
            environment,
            version: body.version,
            image: body.image,
            image_digest: body.image_digest,
            deployer: call.caller.clone(),
            triggered_by,
            gates: None,
            image_pushed_at: None,
        },
    )
    .await?;
    Ok(accepted(
        call,
        &started.deployment_id,
        &started.execution_arn,
    ))
}

fn forward(r: &DeploymentRecord) -> Result<ForwardTarget, String> {
    Ok(ForwardTarget {
        target: r.traffic.target().map_err(|e| e.to_string())?,
        blue: r.traffic.blue_target_group_arn.clone(),
        green: r.traffic.green_target_group_arn.clone(),
    })
}

/// The listener's weights right now, read in the environment's account.
async fn live_weights(deps: &ApiDeps, r: &DeploymentRecord) -> Result<TrafficSplit, String> {
    let fwd = forward(r)?;
    let router = deps
        .access
        .router(&r.reach())
        .await
        .map_err(|e| e.to_string())?;
    router.current_split(&fwd).await.map_err(|e| e.to_string())
}

pub async fn get(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let r = per_service::deployment(&*deps.store, &call.scope, call.param("id")).await?;
    let id = r.id.clone();
    let steps = deps.store.steps(&id).await?;
    let ledger = deps.store.ledger(&id).await?;
    let mut body = views::summary(&r);
    body["execution_arn"] = json!(r.execution_arn);
    body["image_digest"] = json!(r.image_digest);
    body["replaced_version"] = json!(r.replaced_version);
    body["readiness"] = json!(r.readiness);
    body["gates"] = json!(r.gates);
    body["image_pushed_at"] = json!(r.image_pushed_at.map(ts));
    // The status stays readable when the listener cannot be: the weights say why instead.
    match live_weights(deps, &r).await {
        Ok(split) => body["current_weights"] = weights(split),
        Err(e) => {
            body["current_weights"] = Value::Null;
            body["current_weights_error"] = json!(format!("the listener could not be read: {e}"));
        }
    }
    body["steps"] = steps.iter().map(views::step).collect();
    body["ledger"] = ledger.iter().map(views::ledger).collect();
    Ok(Reply::ok(body))
}

pub async fn list(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let q = requests::history(&call.query, &call.scope)?;
    let environment = call.scope.environment()?;
    let page = deps
        .store
        .history(
            &call.scope.service,
            environment,
            q.limit,
            q.cursor.as_deref(),
        )
        .await
        .map_err(|e| match e {
            // The store refuses a cursor it did not issue.
            shared::error::AdapterError::Invalid(m) => ApiError::invalid(m),
            other => ApiError::from(other),
        })?;
    Ok(Reply::ok(json!({
        "service": call.scope.service,
        "environment": environment,
        "deployments": page.items.iter().map(views::summary).collect::<Vec<_>>(),
        "next_cursor": page.next,
    })))
}

fn version(v: Option<&str>) -> String {
    v.map_or_else(|| "version unknown".to_string(), |v| format!("v{v}"))
}

pub async fn roll_back(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let r = per_service::deployment(&*deps.store, &call.scope, call.param("id")).await?;
    let id = r.id.clone();
    let body = requests::rollback(call.body())?;
    if r.phase.is_terminal() {
        return Err(ApiError::conflict(format!(
            "deployment {id} already finished ({}); to put {}/{} back on its previous version use POST {}/rollback",
            r.status.as_str(),
            r.service,
            r.environment,
            call.scope.path()
        )));
    }
    if !body.confirm {
        let what = match r.active_color {
            Some(active) => format!(
                "Rollback will shift all traffic to {} ({}) and stop deployment {id} of v{}.",
                active.title(),
                version(r.previous_version.as_deref()),
                r.version
            ),
            None => format!(
                "Rollback will stop deployment {id} of v{} before it deploys anything; traffic is not touched.",
                r.version
            ),
        };
        return Err(ApiError::confirmation_required(format!(
            "{what} Send {{\"confirm\": true, \"reason\": \"...\"}} to proceed."
        )));
    }
    let reason = match body.reason.as_deref().map(str::trim) {
        Some(why) if !why.is_empty() => format!("manual rollback by {}: {why}", call.caller),
        _ => format!("manual rollback by {}", call.caller),
    };
    let outcome =
        shared::usecases::rollback::roll_back(&deps.rollback_deps(), &id, &reason, None).await?;
    let (label, record) = match outcome {
        RollbackOutcome::RolledBack(r) => ("ROLLED_BACK", r),
        RollbackOutcome::Failed(r) => ("FAILED", r),
        RollbackOutcome::NotDeployed(r) => ("NOT_DEPLOYED", r),
        RollbackOutcome::AlreadyFinished(r) => ("ALREADY_FINISHED", r),
        RollbackOutcome::NeverStarted(r) => ("FAILED", r),
        RollbackOutcome::NotRecorded => return Err(per_service::not_found(&call.scope, &id)),
    };
    // The traffic is safe already; a failed stop only leaves the execution to notice the
    // finished record at its next phase and end itself.
    let stopped = if record.execution_arn.is_empty() {
        Ok(())
    } else {
        deps.executions
            .stop(
                &record.execution_arn,
                shared::error::ExecutionError::RolledBack.name(),
                &reason,
            )
            .await
    };
    if let Err(e) = &stopped {
        tracing::warn!(deployment_id = %id, error = %e, "the execution could not be stopped");
    }
    // Only a deployment that succeeded while this request raced it leaves the new color on.
    // One that ended before it read its colors never touched traffic.
    let on = if record.phase == shared::domain::Phase::Succeeded {
        record.target_color
    } else {
        record.active_color
    };
    let split = on.map(TrafficSplit::all_on);
    let message = match (on, split) {
        (Some(on), Some(split)) => format!(
            "Rollback complete: all traffic on {} ({}); [100%] {split}",
            on.title(),
            version(if Some(on) == record.active_color {
                record.previous_version.as_deref()
            } else {
                Some(record.version.as_str())
            })
        ),
        _ => {
            format!("Deployment {id} stopped before it deployed anything; traffic was not touched")
        }
    };
    Ok(Reply::ok(json!({
        "deployment_id": id,
        "outcome": label,
        "status": record.status.as_str(),
        "phase": record.phase.as_str(),
        "reason": record.reason,
        "weights": split.map(weights),
        "active_color": on,
        "finished_at": record.finished_at.map(ts),
        "execution_stopped": stopped.is_ok(),
        "execution_stop_error": stopped.err().map(|e| e.to_string()),
        "message": message,
    })))
}
