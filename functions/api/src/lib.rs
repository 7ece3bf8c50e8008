//! The HTTP API (API Gateway HTTP API, payload 2.0, IAM authorization): start, inspect, list
//! and roll back deployments, roll an environment back, read metrics, manage the registry.
//! Bad input never fails the invocation: it is a JSON error with its status and no side effect.

mod deployments;
mod environments;
pub mod http;
mod metrics;
pub mod per_service;
mod promotions;
pub mod requests;
pub mod routes;
mod services;
mod troubleshoot;
mod views;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use http::{ApiError, Reply};
use routes::{Matched, Route};
use shared::ports::{Clock, DeploymentStore, EnvironmentAccess, Executions, Images, Registry};
use std::sync::Arc;
use tracing::Instrument;

/// What the API depends on, built once at cold start.
pub struct ApiDeps {
    pub registry: Arc<dyn Registry>,
    pub store: Arc<dyn DeploymentStore>,
    pub executions: Arc<dyn Executions>,
    pub access: Arc<dyn EnvironmentAccess>,
    pub images: Arc<dyn Images>,
    pub clock: Arc<dyn Clock>,
    /// The roles GitHub Actions workflows call the API with (`CI_ROLE_ARNS`): their callers
    /// must name the person behind the run in their session name (`gh-<login>`).
    pub ci_roles: Vec<String>,
}

/// The environment variable naming the CI roles (role ARNs separated by commas or spaces; may
/// be empty).
pub const CI_ROLE_ARNS: &str = "CI_ROLE_ARNS";

/// The CI roles from `CI_ROLE_ARNS`'s value: role ARNs separated by commas or spaces (the
/// template uses commas; `cargo lambda watch --env-vars` cannot carry them); none when unset or
/// empty. Anything else fails the cold start, naming the variable.
pub fn ci_roles(value: Option<&str>) -> Result<Vec<String>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    value
        .split([',', ' '])
        .filter(|arn| !arn.is_empty())
        .map(|arn| {
            if shared::domain::principal::iam_principal_ok(arn) && arn.contains(":role/") {
                Ok(arn.to_string())
            } else {
                Err(format!(
                    "{CI_ROLE_ARNS}: {arn:?} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>); set it in the function's configuration (template.yaml)"
                ))
            }
        })
        .collect()
}

impl Call {
    /// Who triggered this request when the caller is a CI role (`github:<login>`); a CI
    /// session that names nobody is refused.
    pub(crate) fn triggered_by(&self, deps: &ApiDeps) -> Result<Option<String>, ApiError> {
        shared::domain::principal::ci_trigger(&self.caller, &deps.ci_roles)
            .map_err(|e| ApiError::ci_actor_unknown(e.to_string()))
    }
}

impl ApiDeps {
    fn start_deps(&self) -> shared::usecases::start::StartDeps {
        shared::usecases::start::StartDeps {
            registry: self.registry.clone(),
            store: self.store.clone(),
            executions: self.executions.clone(),
            clock: self.clock.clone(),
        }
    }

    fn rollback_deps(&self) -> shared::usecases::rollback::RollbackDeps {
        shared::usecases::rollback::RollbackDeps {
            store: self.store.clone(),
            access: self.access.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// One matched request: who calls, the path's scope and parameters, the query and the decoded body.
pub(crate) struct Call {
    pub caller: String,
    /// The service (and environment) the path names: the only place a request says them.
    pub scope: per_service::Scope,
    pub params: Vec<routes::Param>,
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
    /// API Gateway's id of this request: unique per request, so two starts in the same
    /// millisecond still get different deployment ids.
    pub request_id: Option<String>,
    /// The stage prefix of links back into the API (`""` on the `$default` stage).
    pub base: String,
}

impl Call {
    fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
    /// The path parameter `name` (`id`, `version`); empty when the route has none.
    fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

pub async fn handle(deps: &ApiDeps, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let method = req.request_context.http.method.as_str().to_string();
    let (path, _) = http::path_and_base(&req);
    let span = tracing::info_span!(
        "api",
        %method,
        %path,
        request_id = req.request_context.request_id.as_deref().unwrap_or_default()
    );
    async {
        match dispatch(deps, &req, &method, &path).await {
            Ok(reply) => {
                tracing::info!(status = reply.status, "request served");
                reply.response()
            }
            Err(e) => {
                if e.status >= 500 {
                    tracing::error!(status = e.status, error = e.name, message = %e.message, "request failed");
                } else {
                    tracing::info!(status = e.status, error = e.name, message = %e.message, "request refused");
                }
                e.response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn dispatch(
    deps: &ApiDeps,
    req: &ApiGatewayV2httpRequest,
    method: &str,
    path: &str,
) -> Result<Reply, ApiError> {
    let (route, params) = match routes::route(method, path) {
        Matched::Found(route, params) => (route, params),
        Matched::MethodNotAllowed(allow) => {
            return Err(ApiError::method_not_allowed(method, path, allow));
        }
        Matched::NotFound => {
            return Err(ApiError::not_found(format!(
                "no route {method} {path}; the routes are in functions/api/openapi.json"
            )));
        }
    };
    let caller = http::caller(req)?;
    let scope = per_service::Scope::from_params(&params)?;
    tracing::info!(%caller, ?route, service = %scope.service, environment = scope.environment.as_deref().unwrap_or_default(), "request");
    let call = Call {
        caller,
        scope,
        params,
        query: http::query_pairs(req),
        body: http::body_bytes(req.body.as_deref(), req.is_base64_encoded)?,
        idempotency_key: http::header_value(req, "idempotency-key"),
        request_id: req.request_context.request_id.clone(),
        base: http::path_and_base(req).1,
    };
    match route {
        Route::StartDeployment => deployments::start(deps, &call).await,
        Route::ListDeployments => deployments::list(deps, &call).await,
        Route::GetDeployment => deployments::get(deps, &call).await,
        Route::RollBackDeployment => deployments::roll_back(deps, &call).await,
        Route::RollBackEnvironment => environments::roll_back(deps, &call).await,
        Route::Metrics => metrics::get(deps, &call).await,
        Route::PutService => services::put_service(deps, &call).await,
        Route::GetService => services::get_service(deps, &call).await,
        Route::PutEnvironment => services::put_environment(deps, &call).await,
        Route::GetEnvironment => services::get_environment(deps, &call).await,
        Route::PutServicePolicy => services::put_service_policy(deps, &call).await,
        Route::GetServicePolicy => services::get_service_policy(deps, &call).await,
        Route::PutEnvironmentPolicy => services::put_environment_policy(deps, &call).await,
        Route::GetEnvironmentPolicy => services::get_environment_policy(deps, &call).await,
        Route::RecordEvidence => promotions::record_evidence(deps, &call).await,
        Route::GetVersion => promotions::get_version(deps, &call).await,
        Route::ClearQuarantine => promotions::clear_quarantine(deps, &call).await,
        Route::Promote => promotions::promote(deps, &call).await,
        Route::Approve => promotions::approve(deps, &call).await,
        Route::Reject => promotions::reject(deps, &call).await,
        Route::Troubleshoot => troubleshoot::get(deps, &call).await,
    }
}

#[cfg(test)]
mod tests;
