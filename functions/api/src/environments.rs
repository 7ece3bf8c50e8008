//! `POST .../environments/{environment}/rollback`: rolls an environment back to its standby
//! color (the use case `shared::usecases::environment_rollback`) and answers with what changed.

use crate::http::{ApiError, Reply};
use crate::views::weights;
use crate::{ApiDeps, Call, requests};
use serde_json::json;
use shared::usecases::environment_rollback::{
    EnvironmentRollbackDeps, EnvironmentRollbackError, EnvironmentRollbackRequest,
    roll_back_environment,
};

pub async fn roll_back(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::environment_rollback(call.body(), &call.scope)?;
    let req = EnvironmentRollbackRequest {
        service: call.scope.service.clone(),
        environment: call.scope.environment()?.to_string(),
        confirm: body.confirm,
        reason: body.reason,
        caller: call.caller.clone(),
    };
    let deps = EnvironmentRollbackDeps {
        registry: deps.registry.clone(),
        store: deps.store.clone(),
        access: deps.access.clone(),
        clock: deps.clock.clone(),
    };
    let done = roll_back_environment(&deps, &req).await.map_err(answer)?;
    let mut report = vec![
        "Rolling back...".to_string(),
        format!("  [100%] {}", done.split),
        format!("{} Rollback complete", shared::report::OK),
    ];
    report.extend(shared::report::colors(
        done.active,
        Some(&done.active_version),
        done.standby_version.as_deref(),
        done.split,
    ));
    Ok(Reply::ok(json!({
        "deployment_id": done.record.id,
        "service": done.record.service,
        "environment": done.record.environment,
        "status": done.record.status.as_str(),
        "active": {"color": done.active, "version": done.active_version},
        "standby": {"color": done.standby, "version": done.standby_version},
        "weights": weights(done.split),
        "reason": done.reason,
        "report": report,
    })))
}

/// The API's answer to a refused or failed environment rollback.
fn answer(e: EnvironmentRollbackError) -> ApiError {
    use EnvironmentRollbackError as E;
    let message = e.to_string();
    match e {
        E::NotRegistered { .. } => ApiError::not_found(message),
        E::NothingToRollBackTo { .. }
        | E::Running { .. }
        | E::StandbyUnhealthy(_)
        | E::Locked { .. } => ApiError::conflict(message),
        E::ConfirmationRequired(_) => ApiError::confirmation_required(message),
        E::InvalidWiring(_) | E::NoColors(_) => ApiError::internal(message),
        E::Aws(e) => e.into(),
        E::CleanupFailed {
            error,
            cleanup,
            service,
            environment,
            id,
        } => {
            let e = answer(*error);
            ApiError {
                message: format!(
                    "{}; cleaning up also failed ({cleanup}): {service}/{environment} may stay locked by {id} until it is released",
                    e.message
                ),
                ..e
            }
        }
    }
}
