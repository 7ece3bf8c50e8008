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

/// (method, path template, route). `{name}` matches one non-empty segment.
pub const ROUTES: &[(&str, &str, Route)] = &[
    ("POST", "/deployments", Route::StartDeployment),
    ("GET", "/deployments", Route::ListDeployments),
    ("GET", "/deployments/{id}", Route::GetDeployment),
    (
        "POST",
        "/deployments/{id}/rollback",
        Route::RollBackDeployment,
    ),
    (
        "POST",
        "/environments/{environment}/rollback",
        Route::RollBackEnvironment,
    ),
    ("GET", "/metrics", Route::Metrics),
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
        "POST",
        "/versions/{version}/evidence",
        Route::RecordEvidence,
    ),
    ("GET", "/versions/{version}", Route::GetVersion),
    (
        "POST",
        "/versions/{version}/quarantine/clear",
        Route::ClearQuarantine,
    ),
    ("POST", "/promotions", Route::Promote),
    ("POST", "/deployments/{id}/approve", Route::Approve),
    ("POST", "/deployments/{id}/reject", Route::Reject),
    ("GET", "/deployments/{id}/troubleshoot", Route::Troubleshoot),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The route and its path parameters, in template order.
    Found(Route, Vec<String>),
    /// The path exists but not with this method; these are the methods it takes.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The parameters of `path` under `template`, if it matches.
fn captures(template: &str, path: &[&str]) -> Option<Vec<String>> {
    let t = segments(template);
    if t.len() != path.len() {
        return None;
    }
    let mut params = vec![];
    for (t, p) in t.iter().zip(path) {
        if t.starts_with('{') && t.ends_with('}') {
            params.push((*p).to_string());
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

    #[test]
    fn matches_by_method_and_segments() {
        let cases: Vec<(&str, &str, Matched)> = vec![
            (
                "POST",
                "/deployments",
                Matched::Found(Route::StartDeployment, vec![]),
            ),
            (
                "GET",
                "/deployments/",
                Matched::Found(Route::ListDeployments, vec![]),
            ),
            (
                "GET",
                "/deployments/d-1",
                Matched::Found(Route::GetDeployment, vec!["d-1".into()]),
            ),
            (
                "POST",
                "/deployments/d-1/rollback",
                Matched::Found(Route::RollBackDeployment, vec!["d-1".into()]),
            ),
            (
                "PUT",
                "/services/checkout/environments/prd",
                Matched::Found(Route::PutEnvironment, vec!["checkout".into(), "prd".into()]),
            ),
            (
                "DELETE",
                "/deployments/d-1",
                Matched::MethodNotAllowed(vec!["GET"]),
            ),
            (
                "PATCH",
                "/services/checkout",
                Matched::MethodNotAllowed(vec!["PUT", "GET"]),
            ),
            ("GET", "/", Matched::NotFound),
            ("GET", "/deployments/d-1/steps", Matched::NotFound),
            (
                "GET",
                "/deployments/d-1/troubleshoot",
                Matched::Found(Route::Troubleshoot, vec!["d-1".into()]),
            ),
            ("GET", "/environments/prd", Matched::NotFound),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }
}
