//! The service registry over HTTP. Names come from the path; a body that repeats them is
//! refused. Configurations are validated before they are stored.

use crate::http::{ApiError, Reply};
use crate::{ApiDeps, Call, requests};
use shared::error::AdapterError;

fn stored(e: AdapterError) -> ApiError {
    match e {
        // The registry refuses a repository that already releases another service.
        AdapterError::ConditionFailed(m) => {
            ApiError::conflict(format!("{m}; each ECR repository releases one service"))
        }
        other => ApiError::from(other),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("response: {e}")))
}

pub async fn put_service(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let config = requests::service(&call.scope, call.body())?;
    deps.registry.put_service(&config).await.map_err(stored)?;
    tracing::info!(service = %config.service, caller = %call.caller, "service registered");
    Ok(Reply::ok(json(&config)?))
}

pub async fn get_service(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service = &call.scope.service;
    match deps.registry.service(service).await? {
        Some(s) => Ok(Reply::ok(json(&s)?)),
        None => Err(ApiError::not_found(format!(
            "service {service} is not registered; register it with PUT /services/{service}"
        ))),
    }
}

pub async fn put_environment(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let config = requests::environment(&call.scope, call.body())?;
    let Some(service) = deps.registry.service(&config.service).await? else {
        return Err(ApiError::not_found(format!(
            "service {0} is not registered; register it with PUT /services/{0} first",
            config.service
        )));
    };
    service
        .allows_role(config.role_arn.as_deref())
        .map_err(|e| ApiError::invalid(e.0))?;
    deps.registry
        .put_environment(&config)
        .await
        .map_err(stored)?;
    tracing::info!(service = %config.service, environment = %config.environment, caller = %call.caller, "environment registered");
    Ok(Reply::ok(json(&config)?))
}

pub async fn get_environment(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service = &call.scope.service;
    let environment = call.scope.environment()?;
    match deps
        .registry
        .environment_config(service, environment)
        .await?
    {
        Some(e) => Ok(Reply::ok(json(&e)?)),
        None => Err(ApiError::not_found(format!(
            "{service}/{environment} is not registered; register it with PUT /services/{service}/environments/{environment}"
        ))),
    }
}
