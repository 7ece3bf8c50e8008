//! Promotion: evidence CI records per version and environment (only the recorders a service
//! lists, for one image), a version's quarantine and its clearing, the gated promotion of one
//! image from an environment to the next, and the approval (or rejection) of a deployment that
//! waits for a person before any traffic moves (never by whoever started it, nor by the person
//! behind the CI run that did).

use crate::http::{ApiError, Reply};
use crate::views::{self, ts};
use crate::{ApiDeps, Call, per_service, requests};
use serde_json::{Value, json};
use shared::domain::promotion::{GateInputs, gates, promoted_deployment, refusal};
use shared::domain::{
    ApprovalDecision, ApprovalState, DeploymentRecord, Evidence, ImageRef, Quarantine,
};
use shared::error::AdapterError;
use shared::usecases::start::StartRequest;

fn evidence_view(e: &Evidence) -> Value {
    json!({
        "id": e.id,
        "service": e.service,
        "version": e.version,
        "environment": e.environment,
        "kind": e.kind,
        "passed": e.passed,
        "total": e.total,
        "p99_ms": e.p99_ms,
        "controls_passed": e.controls_passed,
        "controls_total": e.controls_total,
        "link": e.link,
        "image_digest": e.image_digest,
        "recorded_by": e.recorded_by,
        "recorded_at": ts(e.recorded_at),
    })
}

fn quarantine_view(q: &Quarantine) -> Value {
    json!({
        "reason": q.reason,
        "deployment_id": q.deployment_id,
        "environment": q.environment,
        "since": ts(q.since),
        "cleared": q.cleared,
        "cleared_by": q.cleared_by,
        "cleared_at": q.cleared_at.map(ts),
        "clear_reason": q.clear_reason,
    })
}

async fn known_service(
    deps: &ApiDeps,
    service: &str,
) -> Result<shared::registry::ServiceConfig, ApiError> {
    deps.registry.service(service).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "service {service:?} is not in the registry: register it with PUT /services/{service}"
        ))
    })
}

/// `POST /services/{service}/environments/{environment}/versions/{version}/evidence`:
/// append-only; a retried request is recorded once. Only a principal the service lists for the
/// kind may record it (403 `RecorderNotAllowed`).
pub async fn record_evidence(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let version = requests::version(call.param("version"))?;
    let body = requests::evidence(call.body(), &call.scope)?;
    let environment = call.scope.environment()?.to_string();
    let service = known_service(deps, &call.scope.service).await?;
    let now = deps.clock.now();
    let id = match (&call.idempotency_key, &call.request_id) {
        (Some(key), _) if shared::domain::DeploymentId::parse(key).is_ok() => key.clone(),
        (Some(key), _) => {
            return Err(ApiError::invalid(format!(
                "Idempotency-Key {key:?} must be 1-80 of [A-Za-z0-9_-]"
            )));
        }
        (None, Some(r)) if !r.is_empty() => format!(
            "{}-{}",
            now.unix_timestamp_nanos() / 1_000_000,
            requests::fingerprint(r)
        ),
        (None, _) => format!("{}", now.unix_timestamp_nanos() / 1_000_000),
    };
    let evidence = Evidence {
        id,
        service: call.scope.service.clone(),
        version: version.to_string(),
        environment,
        kind: body.kind,
        passed: body.passed,
        total: body.total,
        p99_ms: body.p99_ms,
        controls_passed: body.controls_passed,
        controls_total: body.controls_total,
        link: body.link,
        image_digest: body.image_digest.map(String::from),
        recorded_by: call.caller.clone(),
        recorded_at: now,
    };
    evidence
        .validate()
        .map_err(|e| ApiError::invalid(format!("{} evidence: {e}", evidence.kind.as_str())))?;
    let kind = evidence.kind.as_str();
    if !service
        .evidence_recorders
        .allows(evidence.kind, &call.caller)
    {
        let listed = service.evidence_recorders.of(evidence.kind);
        tracing::warn!(service = %evidence.service, version = %evidence.version, kind, caller = %call.caller, "evidence refused: the caller is not a listed recorder");
        return Err(ApiError::recorder_not_allowed(format!(
            "{} may not record {kind} evidence for {}: the service's evidence_recorders.{kind} lists {}; an administrator adds the recorder's role with PUT /services/{}/policy",
            shared::domain::principal::principal(&call.caller),
            evidence.service,
            if listed.is_empty() {
                "nobody, so it accepts none".to_string()
            } else {
                listed.join(", ")
            },
            evidence.service
        )));
    }
    deps.store.add_evidence(&evidence).await?;
    tracing::info!(service = %evidence.service, version = %evidence.version, environment = %evidence.environment, kind = evidence.kind.as_str(), "evidence recorded");
    Ok(Reply {
        status: 201,
        body: json!({"evidence": evidence_view(&evidence)}),
        location: Some(format!(
            "{}/services/{}/versions/{}",
            call.base, evidence.service, evidence.version
        )),
    })
}

/// `GET /services/{service}/versions/{version}`: the evidence and the quarantine of one version.
pub async fn get_version(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let version = requests::version(call.param("version"))?.to_string();
    requests::version_query(&call.query, &call.scope)?;
    let service = call.scope.service.clone();
    known_service(deps, &service).await?;
    let evidence = deps.store.evidence(&service, &version).await?;
    let quarantine = deps.store.quarantine(&service, &version).await?;
    Ok(Reply::ok(json!({
        "service": service,
        "version": version,
        "quarantine": quarantine.as_ref().map(quarantine_view),
        "evidence": evidence.iter().map(evidence_view).collect::<Vec<_>>(),
    })))
}

/// `POST /services/{service}/versions/{version}/quarantine/clear`: who cleared it and why are kept.
pub async fn clear_quarantine(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let version = requests::version(call.param("version"))?.to_string();
    let body = requests::clear_quarantine(call.body(), &call.scope)?;
    let service = &call.scope.service;
    let q = deps
        .store
        .clear_quarantine(
            service,
            &version,
            &call.caller,
            deps.clock.now(),
            body.reason.trim(),
        )
        .await
        .map_err(|e| match e {
            AdapterError::NotFound(m) => ApiError::not_found(m),
            other => other.into(),
        })?;
    tracing::warn!(%service, %version, cleared_by = %call.caller, reason = %body.reason, "quarantine cleared");
    Ok(Reply::ok(json!({"quarantine": quarantine_view(&q)})))
}

/// The image to deploy downstream: the upstream image pinned by its digest.
fn pinned(record: &DeploymentRecord, digest: &str) -> Result<ImageRef, ApiError> {
    let upstream = ImageRef::parse(&record.image).map_err(|e| {
        ApiError::internal(format!(
            "deployment {} stored an invalid image: {e}",
            record.id
        ))
    })?;
    ImageRef::parse(&format!("{}@{digest}", upstream.repository()))
        .map_err(|e| ApiError::internal(format!("pinning {} to {digest}: {e}", record.image)))
}

/// `POST /services/{service}/environments/{to}/promotions`: checks every gate; all pass → a
/// deployment of the same image in `to` (waiting for approval there if the environment needs
/// it), else 412 with the checklist.
pub async fn promote(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::promote(call.body(), &call.scope)?;
    let triggered_by = call.triggered_by(deps)?;
    let version = body.version.to_string();
    let service = known_service(deps, &body.service).await?;
    let target = deps
        .registry
        .environment_config(&body.service, &body.to)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{}/{} is not in the registry: register it with PUT /services/{}/environments/{}",
                body.service, body.to, body.service, body.to
            ))
        })?;

    let upstream = deps
        .store
        .deployments_of_version(&body.service, &version, &body.from)
        .await?;
    let promoted = promoted_deployment(&upstream).cloned();
    let digest = promoted.as_ref().and_then(|r| r.image_digest.clone());
    let evidence = deps.store.evidence(&body.service, &version).await?;
    let scan = match &digest {
        Some(d) => match deps.images.scan(&service.repository, d).await {
            Ok(s) => s,
            // The image is gone from the repository: nothing to vouch for it.
            Err(AdapterError::NotFound(m)) => {
                tracing::warn!(%m, "image not found in the registry");
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let quarantine = deps.store.quarantine(&body.service, &version).await?;
    let checklist = gates(&GateInputs {
        version: &version,
        from: &body.from,
        upstream: &upstream,
        evidence: &evidence,
        scan: scan.as_ref(),
        quarantine: quarantine.as_ref(),
        policy: &service.promotion,
        recorders: &service.evidence_recorders,
    });
    let checklist_view = serde_json::to_value(&checklist)
        .map_err(|e| ApiError::internal(format!("gate checklist: {e}")))?;
    let promotion = json!({
        "service": body.service,
        "version": version,
        "from": body.from,
        "to": body.to,
        "image": promoted.as_ref().map(|r| r.image.clone()),
        "image_digest": digest,
        "gates": checklist_view,
    });
    if let Some(why) = refusal(&checklist) {
        tracing::info!(service = %body.service, %version, from = %body.from, to = %body.to, %why, "promotion refused");
        return Err(ApiError::promotion_refused(format!(
            "v{version} cannot be promoted from {} to {}: {why}",
            body.from.to_uppercase(),
            body.to.to_uppercase()
        ))
        .with("gates", promotion["gates"].clone()));
    }
    let (Some(record), Some(digest)) = (promoted, digest) else {
        return Err(ApiError::internal(
            "the gates passed without an upstream image; refusing to promote",
        ));
    };
    let image = pinned(&record, &digest)?;
    // Deployed by digest, verified against ECR: an image of the service's registered
    // repository must be there under this digest. A protected environment takes nothing else.
    let stored = match service.registered_image(&image) {
        Ok(account) => Some(
            deps.images
                .stored_image(&account, &service.repository, &digest)
                .await?
                .ok_or_else(|| {
                    ApiError::promotion_refused(format!(
                        "v{version} cannot be promoted to {}: {image} is not in ECR repository {} of account {account} (deleted since it was deployed?)",
                        body.to.to_uppercase(),
                        service.repository
                    ))
                    .with("gates", promotion["gates"].clone())
                })?,
        ),
        Err(why) if target.is_protected() => {
            return Err(ApiError::protected(format!(
                "{}/{} is protected: {why}",
                body.service, body.to
            )));
        }
        Err(_) => None,
    };
    let pushed_at = record
        .image_pushed_at
        .or_else(|| stored.and_then(|s| s.pushed_at));
    let id = requests::new_deployment_id(
        call.idempotency_key.as_deref(),
        call.request_id.as_deref(),
        &body.service,
        &body.to,
        &body.version,
        deps.clock.now(),
    )?;
    let image_digest = image.digest().cloned();
    let started = shared::usecases::start::start(
        &deps.start_deps(),
        &StartRequest {
            deployment_id: id,
            service: body.service.clone(),
            environment: body.to.clone(),
            version: body.version.clone(),
            image,
            image_digest,
            deployer: call.caller.clone(),
            triggered_by,
            gates: Some(checklist),
            image_pushed_at: pushed_at,
        },
    )
    .await?;
    let awaiting_approval = target.approval_policy().required;
    tracing::info!(service = %body.service, %version, from = %body.from, to = %body.to, deployment_id = %started.deployment_id, awaiting_approval, "promotion started");
    let status_url = format!(
        "{}{}/deployments/{}",
        call.base,
        call.scope.path(),
        started.deployment_id
    );
    Ok(Reply {
        status: 202,
        body: json!({
            "deployment_id": started.deployment_id,
            "execution_arn": started.execution_arn,
            "status_url": status_url,
            "awaiting_approval": awaiting_approval,
            "promotion": promotion,
        }),
        location: Some(status_url),
    })
}

async fn awaiting(deps: &ApiDeps, call: &Call) -> Result<DeploymentRecord, ApiError> {
    let r = per_service::deployment(&*deps.store, &call.scope, call.param("id")).await?;
    if r.approval.is_none() {
        return Err(ApiError::conflict(format!(
            "deployment {} is {} and is not waiting for approval: approvals are taken once green is ready (phase AWAITING_APPROVAL), in environments that require them",
            r.id, r.phase
        )));
    }
    Ok(r)
}

async fn decide(
    deps: &ApiDeps,
    r: &DeploymentRecord,
    decision: &ApprovalDecision,
) -> Result<DeploymentRecord, ApiError> {
    deps.store
        .decide_approval(&r.id, decision)
        .await
        .map_err(|e| match e {
            AdapterError::ConditionFailed(m) => ApiError::conflict(format!(
                "{m}; only a deployment waiting for approval can be approved or rejected"
            )),
            other => other.into(),
        })
}

/// The task token to hand the decision to, or none when a retry of the same decision (it was
/// recorded before this request: `fresh` is false) finds it delivered already (the token is
/// dropped once delivered).
fn token(r: &DeploymentRecord, fresh: bool) -> Result<Option<&str>, ApiError> {
    match r.approval.as_ref().and_then(|a| a.task_token.as_deref()) {
        Some(t) => Ok(Some(t)),
        None if fresh => Err(ApiError::internal(format!(
            "deployment {} waits for approval without a task token; roll it back",
            r.id
        ))),
        None => Ok(None),
    }
}

/// Drops the delivered (or undeliverable) task token from the table. Best effort: the token
/// no longer resumes anything once its task has moved on.
async fn forget_token(deps: &ApiDeps, id: &str) {
    if let Err(e) = deps.store.forget_task_token(id).await {
        tracing::warn!(deployment_id = %id, error = %e, "the decided approval's task token stays in the table");
    }
}

/// Hands the decision to the waiting execution (`send`), then drops the token. `before` is the
/// record as it was before the decision was recorded.
async fn deliver<F, Fut>(
    deps: &ApiDeps,
    before: &DeploymentRecord,
    r: &DeploymentRecord,
    send: F,
) -> Result<(), ApiError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), AdapterError>>,
{
    if r.phase != shared::domain::Phase::AwaitingApproval {
        return Ok(());
    }
    let fresh = before
        .approval
        .as_ref()
        .is_some_and(|a| a.state == ApprovalState::Pending);
    let Some(token) = token(r, fresh)? else {
        return Ok(());
    };
    match send(token.to_string()).await {
        Ok(()) => {
            forget_token(deps, &r.id).await;
            Ok(())
        }
        Err(e @ AdapterError::ConditionFailed(_)) => {
            forget_token(deps, &r.id).await;
            Err(resumed(e, &r.id))
        }
        Err(e) => Err(resumed(e, &r.id)),
    }
}

fn resumed(e: AdapterError, id: &str) -> ApiError {
    match e {
        AdapterError::ConditionFailed(m) => ApiError::conflict(format!(
            "deployment {id}'s execution is no longer waiting ({m}); it may have timed out: check its status (bluegreen status {id})"
        )),
        other => other.into(),
    }
}

fn decided(r: &DeploymentRecord, state: ApprovalState, reason: Option<&str>) -> Reply {
    let a = r.approval.as_ref();
    let mut body = json!({
        "deployment_id": r.id,
        "decision": state.as_str(),
        "by": a.and_then(|a| a.decided_by.clone()),
        "at": a.and_then(|a| a.decided_at).map(ts),
        "deployment": views::summary(r),
    });
    if let Some(why) = reason {
        body["reason"] = json!(why);
    }
    Reply::ok(body)
}

/// Refuses a decision by the person behind the CI run that started `r` (403
/// `ApproverStartedIt`): by their session or user name, or the service's `github_logins`.
async fn not_the_trigger(
    deps: &ApiDeps,
    call: &Call,
    r: &DeploymentRecord,
) -> Result<(), ApiError> {
    let Some(by) = r.triggered_by.as_deref() else {
        return Ok(());
    };
    let logins = deps
        .registry
        .service(&r.service)
        .await?
        .map(|s| s.github_logins)
        .unwrap_or_default();
    if shared::domain::principal::triggered_it(&call.caller, Some(by), &logins) {
        tracing::warn!(deployment_id = %r.id, caller = %call.caller, triggered_by = %by, "decision refused: the approver triggered the deployment");
        return Err(ApiError::approver_started_it(format!(
            "{} is {by}, who triggered deployment {} (through {}); another person must decide it",
            call.caller, r.id, r.deployer
        )));
    }
    Ok(())
}

/// `POST …/deployments/{id}/approve`: records who approved, then resumes the execution. The
/// principal who started a deployment cannot approve it, under any session name, and neither
/// can the person behind the CI run that started it.
pub async fn approve(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::approve(call.body())?;
    let r = awaiting(deps, call).await?;
    if shared::domain::principal::same_principal(&r.deployer, &call.caller) {
        return Err(ApiError::forbidden(format!(
            "{} started deployment {} (as {}); a different principal must approve it",
            shared::domain::principal::principal(&call.caller),
            r.id,
            r.deployer
        )));
    }
    not_the_trigger(deps, call, &r).await?;
    let decision = ApprovalDecision {
        state: ApprovalState::Approved,
        by: call.caller.clone(),
        at: deps.clock.now(),
        comment: body.comment,
    };
    let before = r;
    let r = decide(deps, &before, &decision).await?;
    let output = json!({"approved_by": call.caller});
    deliver(deps, &before, &r, |token| async move {
        deps.executions.resume(&token, &output).await
    })
    .await?;
    tracing::warn!(deployment_id = %r.id, approved_by = %call.caller, "deployment approved");
    Ok(decided(&r, ApprovalState::Approved, None))
}

/// `POST …/deployments/{id}/reject`: records who rejected and why; the execution ends as
/// NOT_DEPLOYED with that reason, green never having received traffic.
pub async fn reject(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::reject(call.body())?;
    let reason = body.reason.trim().to_string();
    let r = awaiting(deps, call).await?;
    not_the_trigger(deps, call, &r).await?;
    let decision = ApprovalDecision {
        state: ApprovalState::Rejected,
        by: call.caller.clone(),
        at: deps.clock.now(),
        comment: Some(reason.clone()),
    };
    let before = r;
    let r = decide(deps, &before, &decision).await?;
    let cause = format!("rejected by {}: {reason}", call.caller);
    deliver(deps, &before, &r, |token| async move {
        deps.executions
            .fail_task(
                &token,
                shared::error::ExecutionError::ApprovalRejected.name(),
                &cause,
            )
            .await
    })
    .await?;
    tracing::warn!(deployment_id = %r.id, rejected_by = %call.caller, %reason, "deployment rejected");
    Ok(decided(&r, ApprovalState::Rejected, Some(&reason)))
}
