//! The route table: method and path template per route, matched segment by segment. The
//! OpenAPI document is checked against this table, so the two cannot drift apart.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    StartDeployment,
    ListDeployments,
    GetDeployment,
    RollBackDeployment,
    RollBackEnvironment,
    Metrics,
    PutService,
    GetService,
    PutEnvironment,
    GetEnvironment,
    PutServicePolicy,
    GetServicePolicy,
    PutEnvironmentPolicy,
    GetEnvironmentPolicy,
    RecordEvidence,
    GetVersion,
    ClearQuarantine,
    Promote,
    Approve,
    Reject,
    Troubleshoot,
}

/// (method, path template, route). `{name}` matches one non-empty segment. Every route names
/// its service (and environment, where one applies) in the path, so IAM on `execute-api`
/// resource ARNs can scope a caller to services; `per_service` refuses the rest.
pub const ROUTES: &[(&str, &str, Route)] = &[
    (
        "POST",
        "/services/{service}/environments/{environment}/deployments",
        Route::StartDeployment,
    ),
    (
        "GET",
        "/services/{service}/environments/{environment}/deployments",
        Route::ListDeployments,
    ),
    (
        "GET",
        "/services/{service}/environments/{environment}/deployments/{id}",
        Route::GetDeployment,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/deployments/{id}/rollback",
        Route::RollBackDeployment,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/deployments/{id}/approve",
        Route::Approve,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/deployments/{id}/reject",
        Route::Reject,
    ),
    (
        "GET",
        "/services/{service}/environments/{environment}/deployments/{id}/troubleshoot",
        Route::Troubleshoot,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/rollback",
        Route::RollBackEnvironment,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/promotions",
        Route::Promote,
    ),
    (
        "POST",
        "/services/{service}/environments/{environment}/versions/{version}/evidence",
        Route::RecordEvidence,
    ),
    ("GET", "/services/{service}/metrics", Route::Metrics),
    ("PUT", "/services/{service}", Route::PutService),
    ("GET", "/services/{service}", Route::GetService),
    (
        "PUT",
        "/services/{service}/environments/{environment}",
        Route::PutEnvironment,
    ),
    (
        "GET",
        "/services/{service}/environments/{environment}",
        Route::GetEnvironment,
    ),
    ("PUT", "/services/{service}/policy", Route::PutServicePolicy),
    ("GET", "/services/{service}/policy", Route::GetServicePolicy),
    (
        "PUT",
        "/services/{service}/environments/{environment}/policy",
        Route::PutEnvironmentPolicy,
    ),
    (
        "GET",
        "/services/{service}/environments/{environment}/policy",
        Route::GetEnvironmentPolicy,
    ),
    (
        "GET",
        "/services/{service}/versions/{version}",
        Route::GetVersion,
    ),
    (
        "POST",
        "/services/{service}/versions/{version}/quarantine/clear",
        Route::ClearQuarantine,
    ),
];

/// A path parameter: its name in the template (without braces) and its value.
pub type Param = (&'static str, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The route and its path parameters, named, in template order.
    Found(Route, Vec<Param>),
    /// The path exists but not with this method; these are the methods it takes.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The parameters of `path` under `template`, if it matches.
fn captures(template: &'static str, path: &[&str]) -> Option<Vec<Param>> {
    let t = segments(template);
    if t.len() != path.len() {
        return None;
    }
    let mut params = vec![];
    for (t, p) in t.iter().zip(path) {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            params.push((name, (*p).to_string()));
        } else if t != p {
            return None;
        }
    }
    Some(params)
}

pub fn route(method: &str, path: &str) -> Matched {
    let path = segments(path);
    let mut allowed = vec![];
    for (m, template, route) in ROUTES {
        if let Some(params) = captures(template, &path) {
            if m.eq_ignore_ascii_case(method) {
                return Matched::Found(*route, params);
            }
            allowed.push(*m);
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(route: Route, params: &[(&'static str, &str)]) -> Matched {
        Matched::Found(
            route,
            params.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        )
    }

    #[test]
    fn matches_by_method_and_segments() {
        let deployments = "/services/checkout/environments/prd/deployments";
        let cases: Vec<(&str, String, Matched)> = vec![
            (
                "POST",
                deployments.into(),
                found(
                    Route::StartDeployment,
                    &[("service", "checkout"), ("environment", "prd")],
                ),
            ),
            (
                "GET",
                format!("{deployments}/"),
                found(
                    Route::ListDeployments,
                    &[("service", "checkout"), ("environment", "prd")],
                ),
            ),
            (
                "GET",
                format!("{deployments}/d-1"),
                found(
                    Route::GetDeployment,
                    &[
                        ("service", "checkout"),
                        ("environment", "prd"),
                        ("id", "d-1"),
                    ],
                ),
            ),
            (
                "POST",
                format!("{deployments}/d-1/rollback"),
                found(
                    Route::RollBackDeployment,
                    &[
                        ("service", "checkout"),
                        ("environment", "prd"),
                        ("id", "d-1"),
                    ],
                ),
            ),
            (
                "PUT",
                "/services/checkout/environments/prd".into(),
                found(
                    Route::PutEnvironment,
                    &[("service", "checkout"), ("environment", "prd")],
                ),
            ),
            (
                "DELETE",
                format!("{deployments}/d-1"),
                Matched::MethodNotAllowed(vec!["GET"]),
            ),
            (
                "PATCH",
                "/services/checkout".into(),
                Matched::MethodNotAllowed(vec!["PUT", "GET"]),
            ),
            ("GET", "/".into(), Matched::NotFound),
            ("GET", format!("{deployments}/d-1/steps"), Matched::NotFound),
            (
                "GET",
                format!("{deployments}/d-1/troubleshoot"),
                found(
                    Route::Troubleshoot,
                    &[
                        ("service", "checkout"),
                        ("environment", "prd"),
                        ("id", "d-1"),
                    ],
                ),
            ),
            (
                "GET",
                "/services/checkout/metrics".into(),
                found(Route::Metrics, &[("service", "checkout")]),
            ),
            // the paths without a service are gone: no aliases
            ("GET", "/deployments/d-1".into(), Matched::NotFound),
            ("POST", "/deployments".into(), Matched::NotFound),
            ("POST", "/promotions".into(), Matched::NotFound),
            ("GET", "/metrics".into(), Matched::NotFound),
            ("GET", "/environments/prd".into(), Matched::NotFound),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn every_route_names_its_service_first() {
        for (method, template, route) in ROUTES {
            assert!(
                template.starts_with("/services/{service}"),
                "{method} {template} ({route:?}) does not name its service first"
            );
            let env_scoped = template.starts_with("/services/{service}/environments/{environment}");
            if template.contains("{id}") || template.contains("/rollback") {
                assert!(env_scoped, "{method} {template} must name its environment");
            }
        }
    }
}
