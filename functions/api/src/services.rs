//! The service registry over HTTP. Names come from the path; a body that repeats them is
//! refused. Configurations are validated before they are stored.
//!
//! What governs deployments (a service's accounts, promotion policy, evidence recorders and
//! GitHub logins, an environment's protection and approval) changes only through the `.../policy` routes, which the stack's
//! admin policy grants with MFA; the team's own `PUT`s keep it as stored and refuse to change it.

use crate::http::{ApiError, Reply};
use crate::{ApiDeps, Call, requests};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::error::AdapterError;
use shared::registry::{
    ENVIRONMENT_POLICY_FIELDS, EnvironmentConfig, EnvironmentPolicy, SERVICE_POLICY_FIELDS,
    ServiceConfig, ServicePolicy, policy_change,
};

fn stored_error(e: AdapterError) -> ApiError {
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

/// `new` with its governed `fields` exactly as `stored` holds them, once their effect is known
/// to be the same (e.g. an explicit default where the registry holds none), so the write's
/// condition that they are unchanged holds.
fn as_stored<T: Serialize + DeserializeOwned>(
    new: &T,
    stored: &T,
    fields: &[&str],
) -> Result<T, ApiError> {
    let internal = |e: serde_json::Error| ApiError::internal(format!("configuration: {e}"));
    let mut new = serde_json::to_value(new).map_err(internal)?;
    let stored = serde_json::to_value(stored).map_err(internal)?;
    if let Some(n) = new.as_object_mut() {
        for field in fields {
            match stored.get(*field) {
                Some(v) => n.insert((*field).to_string(), v.clone()),
                None => n.remove(*field),
            };
        }
    }
    serde_json::from_value(new).map_err(internal)
}

fn admin_only(why: String, route: &str) -> ApiError {
    ApiError::admin_required(format!(
        "{why}; only an administrator changes it, with PUT {route} (bluegreen policy), which the stack's admin policy grants to MFA-authenticated sessions"
    ))
}

pub async fn put_service(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let name = call.scope.service.clone();
    let stored = deps.registry.service(&name).await?;
    let mut config = requests::service(&call.scope, call.body(), stored.as_ref())?;
    let current = stored
        .as_ref()
        .map_or_else(ServicePolicy::default, ServiceConfig::policy);
    if let Some(why) = policy_change(
        &format!(
            "service {name}'s accounts, promotion policy, evidence recorders and GitHub logins"
        ),
        &current,
        &config.policy(),
    ) {
        return Err(admin_only(why, &format!("/services/{name}/policy")));
    }
    if let Some(stored) = &stored {
        config = as_stored(&config, stored, SERVICE_POLICY_FIELDS)?;
    }
    deps.registry
        .put_service_keeping_policy(&config)
        .await
        .map_err(stored_error)?;
    tracing::info!(service = %config.service, caller = %call.caller, "service registered");
    Ok(Reply::ok(json(&config)?))
}

/// `PUT /services/{service}/policy` (administrators): the accounts and the promotion policy.
pub async fn put_service_policy(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let name = call.scope.service.clone();
    let Some(stored) = deps.registry.service(&name).await? else {
        return Err(not_registered(&name));
    };
    let config = requests::service_policy(&stored, call.body())?;
    deps.registry
        .put_service_policy(&config)
        .await
        .map_err(stored_error)?;
    tracing::info!(service = %name, caller = %call.caller, before = ?stored.policy(), after = ?config.policy(), "service policy changed");
    Ok(Reply::ok(service_policy_view(&config)?))
}

/// `GET /services/{service}/policy`: the governed settings in force.
pub async fn get_service_policy(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let name = call.scope.service.clone();
    match deps.registry.service(&name).await? {
        Some(s) => Ok(Reply::ok(service_policy_view(&s)?)),
        None => Err(not_registered(&name)),
    }
}

/// A service's policy in force, named.
fn service_policy_view(config: &ServiceConfig) -> Result<serde_json::Value, ApiError> {
    let mut v = json(&config.policy())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("service".into(), config.service.as_str().into());
    }
    Ok(v)
}

/// An environment's policy in force, named, and whether it is its name's default.
fn environment_policy_view(config: &EnvironmentConfig) -> Result<serde_json::Value, ApiError> {
    let policy = config.policy();
    let default = EnvironmentPolicy::default_for(&config.environment);
    let mut v = json(&policy)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("service".into(), config.service.as_str().into());
        o.insert("environment".into(), config.environment.as_str().into());
        o.insert("default".into(), (policy == default).into());
    }
    Ok(v)
}

fn environment_not_registered(service: &str, environment: &str) -> ApiError {
    ApiError::not_found(format!(
        "{service}/{environment} is not registered; register it with PUT /services/{service}/environments/{environment}"
    ))
}

fn not_registered(service: &str) -> ApiError {
    ApiError::not_found(format!(
        "service {service} is not registered; register it with PUT /services/{service}"
    ))
}

pub async fn get_service(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service = &call.scope.service;
    match deps.registry.service(service).await? {
        Some(s) => Ok(Reply::ok(json(&s)?)),
        None => Err(not_registered(service)),
    }
}

pub async fn put_environment(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service_name = call.scope.service.clone();
    let environment = call.scope.environment()?.to_string();
    let Some(service) = deps.registry.service(&service_name).await? else {
        return Err(ApiError::not_found(format!(
            "service {service_name} is not registered; register it with PUT /services/{service_name} first"
        )));
    };
    let stored = deps
        .registry
        .environment_config(&service_name, &environment)
        .await?;
    let mut config = requests::environment(&call.scope, call.body(), stored.as_ref())?;
    let current = stored.as_ref().map_or_else(
        || EnvironmentPolicy::default_for(&environment),
        EnvironmentConfig::policy,
    );
    if let Some(why) = policy_change(
        &format!("{service_name}/{environment}'s protection and approval"),
        &current,
        &config.policy(),
    ) {
        return Err(admin_only(
            why,
            &format!("/services/{service_name}/environments/{environment}/policy"),
        ));
    }
    if let Some(stored) = &stored {
        config = as_stored(&config, stored, ENVIRONMENT_POLICY_FIELDS)?;
    }
    service
        .allows_role(config.role_arn.as_ref())
        .map_err(|e| ApiError::invalid(e.0))?;
    deps.registry
        .put_environment_keeping_policy(&config)
        .await
        .map_err(stored_error)?;
    tracing::info!(service = %config.service, environment = %config.environment, caller = %call.caller, "environment registered");
    Ok(Reply::ok(json(&config)?))
}

/// `PUT /services/{service}/environments/{environment}/policy` (administrators): protection
/// and approval.
pub async fn put_environment_policy(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service = call.scope.service.clone();
    let environment = call.scope.environment()?.to_string();
    let Some(stored) = deps
        .registry
        .environment_config(&service, &environment)
        .await?
    else {
        return Err(environment_not_registered(&service, &environment));
    };
    let config = requests::environment_policy(&stored, call.body())?;
    deps.registry
        .put_environment_policy(&config)
        .await
        .map_err(stored_error)?;
    tracing::info!(%service, %environment, caller = %call.caller, before = ?stored.policy(), after = ?config.policy(), "environment policy changed");
    Ok(Reply::ok(environment_policy_view(&config)?))
}

/// `GET /services/{service}/environments/{environment}/policy`: protection and approval in
/// force.
pub async fn get_environment_policy(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let service = call.scope.service.clone();
    let environment = call.scope.environment()?.to_string();
    match deps
        .registry
        .environment_config(&service, &environment)
        .await?
    {
        Some(e) => Ok(Reply::ok(environment_policy_view(&e)?)),
        None => Err(environment_not_registered(&service, &environment)),
    }
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
        None => Err(environment_not_registered(service, environment)),
    }
}
