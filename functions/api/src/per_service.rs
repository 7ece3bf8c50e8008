//! Scope by path: every route names its service (and environment, where one applies) in its
//! path, IAM on `execute-api` resource ARNs scopes callers by it, and this module makes the
//! path the only source of both. A body or query naming a service or environment is refused
//! (400 `ScopeOutsidePath`); a deployment whose record belongs to another service or
//! environment is not found (404, so its existence is not revealed to a caller scoped elsewhere).

use crate::http::ApiError;
use crate::requests;
use crate::routes::Param;
use serde_json::{Map, Value};
use shared::domain::DeploymentRecord;
use shared::ports::DeploymentStore;

/// The service and environment a request's path names, checked as registry names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    pub service: String,
    pub environment: Option<String>,
}

/// The fields no body or query may carry: the path says them.
pub const SCOPE_FIELDS: &[&str] = &["service", "environment"];

impl Scope {
    /// The scope of a matched route's parameters. Every route names its service; a route
    /// without one (none exists) would have an empty service, which owns nothing.
    pub fn from_params(params: &[Param]) -> Result<Self, ApiError> {
        let value = |name: &str| {
            params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        Ok(Self {
            service: match value("service") {
                Some(s) => requests::name("service", s)?,
                None => String::new(),
            },
            environment: value("environment")
                .map(|e| requests::name("environment", e))
                .transpose()?,
        })
    }

    /// The path's environment; only routes under `/environments/{environment}` ask for it.
    pub fn environment(&self) -> Result<&str, ApiError> {
        self.environment.as_deref().ok_or_else(|| {
            ApiError::internal("this route names no environment in its path (a route table error)")
        })
    }

    /// `/services/<service>[/environments/<environment>]`, for messages and links.
    pub fn path(&self) -> String {
        match &self.environment {
            Some(e) => format!("/services/{}/environments/{e}", self.service),
            None => format!("/services/{}", self.service),
        }
    }

    /// Whether `r` belongs to this scope: its service, and its environment when the path names one.
    pub fn owns(&self, r: &DeploymentRecord) -> bool {
        !self.service.is_empty()
            && r.service == self.service
            && self
                .environment
                .as_ref()
                .is_none_or(|e| r.environment == *e)
    }
}

fn outside(what: &str, field: &str, scope: &Scope) -> ApiError {
    ApiError::scope_outside_path(format!(
        "{field} is taken from the path ({}); remove it from the {what}: a request acts only on the service and environment its path names",
        scope.path()
    ))
}

/// Refuses a body that names any of `fields` (the path's service and environment, or another
/// name for the environment such as a promotion's `to`).
pub fn not_in_body(
    body: &Map<String, Value>,
    fields: &[&str],
    scope: &Scope,
) -> Result<(), ApiError> {
    match fields.iter().find(|k| body.contains_key(**k)) {
        Some(k) => Err(outside("body", k, scope)),
        None => Ok(()),
    }
}

/// Refuses a query that names any of `fields`.
pub fn not_in_query(
    query: &[(String, String)],
    fields: &[&str],
    scope: &Scope,
) -> Result<(), ApiError> {
    match query.iter().find(|(k, _)| fields.contains(&k.as_str())) {
        Some((k, _)) => Err(outside("query", k, scope)),
        None => Ok(()),
    }
}

/// 404 for deployment `id` in `scope`: the same answer whether it is missing or belongs to
/// another service or environment.
pub fn not_found(scope: &Scope, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "deployment {id} not found in {}; list them with GET {}/deployments",
        scope
            .path()
            .trim_start_matches("/services/")
            .replace("/environments/", "/"),
        scope.path()
    ))
}

/// The record of deployment `id`, only if it belongs to the path's service and environment.
pub fn owned(
    scope: &Scope,
    id: &str,
    record: Option<DeploymentRecord>,
) -> Result<DeploymentRecord, ApiError> {
    match record {
        Some(r) if scope.owns(&r) => Ok(r),
        Some(r) => {
            tracing::warn!(
                deployment_id = %id,
                path_service = %scope.service,
                path_environment = scope.environment.as_deref().unwrap_or_default(),
                record_service = %r.service,
                record_environment = %r.environment,
                "a deployment of another service or environment was asked for through this path: not found"
            );
            Err(not_found(scope, id))
        }
        None => Err(not_found(scope, id)),
    }
}

/// Reads deployment `id` (checked as an id) and returns it only if it is in `scope`.
pub async fn deployment(
    store: &dyn DeploymentStore,
    scope: &Scope,
    id: &str,
) -> Result<DeploymentRecord, ApiError> {
    let id = requests::deployment_id(id)?;
    let record = store.deployment(&id).await?;
    owned(scope, &id, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::fakes::sample;

    fn scope(service: &str, environment: Option<&str>) -> Scope {
        Scope {
            service: service.into(),
            environment: environment.map(str::to_string),
        }
    }

    fn record(service: &str, environment: &str) -> DeploymentRecord {
        let mut r = sample::record(shared::domain::Phase::ShiftingTraffic);
        r.id = "d-1".into();
        r.service = service.into();
        r.environment = environment.into();
        r
    }

    #[test]
    fn the_scope_comes_from_named_path_parameters_and_is_checked() {
        let params: Vec<Param> = vec![
            ("service", "checkout".into()),
            ("environment", "prd".into()),
            ("id", "d-1".into()),
        ];
        assert_eq!(
            Scope::from_params(&params),
            Ok(scope("checkout", Some("prd")))
        );
        assert_eq!(
            Scope::from_params(&[("service", "checkout".into())]),
            Ok(scope("checkout", None))
        );
        let bad: Vec<Param> = vec![("service", "check out".into())];
        assert!(Scope::from_params(&bad).is_err_and(|e| e.status == 400));
        let bad: Vec<Param> = vec![("service", "a".into()), ("environment", "p%20d".into())];
        assert!(Scope::from_params(&bad).is_err_and(|e| e.status == 400));
    }

    #[test]
    fn a_record_is_owned_only_by_its_own_service_and_environment() {
        let cases = [
            (
                scope("checkout", Some("prd")),
                record("checkout", "prd"),
                true,
            ),
            (
                scope("checkout", Some("prd")),
                record("checkout", "dev"),
                false,
            ),
            (
                scope("checkout", Some("prd")),
                record("payments", "prd"),
                false,
            ),
            (scope("checkout", None), record("checkout", "dev"), true),
            (scope("checkout", None), record("payments", "dev"), false),
            (scope("", None), record("", "dev"), false),
        ];
        for (s, r, owns) in cases {
            assert_eq!(s.owns(&r), owns, "{s:?} {}/{}", r.service, r.environment);
        }
    }

    #[test]
    fn another_services_deployment_is_not_found_exactly_like_a_missing_one() {
        // GIVEN team A's path and team B's deployment id
        let a = scope("checkout", Some("prd"));
        let theirs = owned(&a, "d-1", Some(record("payments", "prd")));
        let missing = owned(&a, "d-1", None);
        // THEN both are the same 404: nothing says the id exists elsewhere
        assert_eq!(theirs, missing);
        assert!(theirs.is_err_and(|e| e.status == 404
            && e.name == "NotFound"
            && !e.message.contains("payments")));
        assert!(owned(&a, "d-1", Some(record("checkout", "prd"))).is_ok());
    }

    #[test]
    fn a_body_or_query_naming_a_scope_is_refused_by_name() {
        let s = scope("checkout", Some("prd"));
        for field in SCOPE_FIELDS {
            let body = json!({*field: "payments", "confirm": true});
            let Value::Object(o) = body else {
                panic!("not an object")
            };
            let e = not_in_body(&o, SCOPE_FIELDS, &s).err();
            assert!(
                e.as_ref().is_some_and(|e| e.status == 400
                    && e.name == "ScopeOutsidePath"
                    && e.message.contains(field)
                    && e.message.contains("/services/checkout/environments/prd")),
                "{e:?}"
            );
            let q = vec![((*field).to_string(), "payments".to_string())];
            assert!(
                not_in_query(&q, SCOPE_FIELDS, &s)
                    .is_err_and(|e| e.status == 400 && e.name == "ScopeOutsidePath")
            );
        }
        let Value::Object(ok) = json!({"confirm": true, "reason": "r"}) else {
            panic!("not an object")
        };
        assert_eq!(not_in_body(&ok, SCOPE_FIELDS, &s), Ok(()));
        assert_eq!(
            not_in_query(&[("limit".into(), "5".into())], SCOPE_FIELDS, &s),
            Ok(())
        );
    }

    #[tokio::test]
    async fn deployments_are_read_through_the_scope() {
        let store = shared::fakes::FakeStore::default();
        store
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert("d-1".into(), record("payments", "prd"));
        let a = scope("checkout", Some("prd"));
        let b = scope("payments", Some("prd"));
        assert!(
            deployment(&store, &a, "d-1")
                .await
                .is_err_and(|e| e.status == 404)
        );
        assert!(deployment(&store, &b, "d-1").await.is_ok());
        assert!(
            deployment(&store, &b, "d 1")
                .await
                .is_err_and(|e| e.status == 400)
        );
    }
}
