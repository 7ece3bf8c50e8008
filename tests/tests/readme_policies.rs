//! The README's example policies (*Who may call what*), taken from the README itself and
//! evaluated with the offline IAM evaluator against every route of the API (from
//! functions/api/openapi.json, which a test of the api crate keeps equal to its route table):
//! a team reaches its own service's routes and no other's, an approver decides only with a
//! recent MFA, an admin reaches everything but decides, promotes and governs only with MFA.

#[path = "iam/policy.rs"]
mod policy;

use policy::{Decision, Request, evaluate};
use serde_json::Value;
use std::collections::BTreeMap;

const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The JSON block after `<!-- readme-policy: NAME -->` in the README.
fn readme_policy(readme: &str, name: &str) -> Value {
    let marker = format!("<!-- readme-policy: {name} -->");
    let after = readme
        .split_once(&marker)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("the README has no {marker}"));
    let body = after
        .trim_start()
        .strip_prefix("```json")
        .and_then(|b| b.split_once("```"))
        .map(|(json, _)| json)
        .unwrap_or_else(|| panic!("{marker} is not followed by a ```json block"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{marker}: {e}"))
}

fn policies() -> BTreeMap<&'static str, Value> {
    let readme = std::fs::read_to_string(root().join("README.md"))
        .unwrap_or_else(|e| panic!("README.md: {e}"));
    ["team", "approver", "admin"]
        .into_iter()
        .map(|n| (n, readme_policy(&readme, n)))
        .collect()
}

/// Every route as (method, path template), from the API's contract.
fn routes() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("functions/api/openapi.json"))
        .unwrap_or_else(|e| panic!("openapi.json: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("openapi.json: {e}"));
    let mut out = vec![];
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for method in ops.as_object().into_iter().flatten().map(|(m, _)| m) {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(out.len() >= 17, "only {} routes in openapi.json", out.len());
    out
}

/// The route's path for one service and environment.
fn path(template: &str, service: &str, environment: &str) -> String {
    template
        .replace("{service}", service)
        .replace("{environment}", environment)
        .replace("{id}", "checkout-prd-1-3-0-1735898405000")
        .replace("{version}", "1.3.0")
}

#[derive(Clone, Copy, Debug)]
enum Session {
    NoMfa,
    Mfa { age: u32 },
}

fn decide(policy: &Value, method: &str, path: &str, session: Session) -> Decision {
    let mut context = BTreeMap::new();
    if let Session::Mfa { age } = session {
        context.insert("aws:MultiFactorAuthPresent".into(), vec!["true".into()]);
        context.insert("aws:MultiFactorAuthAge".into(), vec![age.to_string()]);
    }
    let r = Request {
        action: "execute-api:Invoke".into(),
        resource: format!("{API}/prod/{method}{path}"),
        context,
    };
    evaluate(&[policy], &r).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn allowed(policy: &Value, method: &str, path: &str, session: Session) -> bool {
    decide(policy, method, path, session) == Decision::Allow
}

fn is_decision(path: &str) -> bool {
    path.ends_with("/approve") || path.ends_with("/reject")
}

const FRESH: Session = Session::Mfa { age: 300 };
const STALE: Session = Session::Mfa { age: 7200 };

#[test]
fn every_route_names_the_service_a_policy_can_scope_by() {
    for (method, template) in routes() {
        assert!(
            template.starts_with("/services/{service}"),
            "{method} {template}: the service is not in the path"
        );
    }
}

#[test]
fn a_team_reaches_its_own_services_routes_and_no_other_services() {
    let team = &policies()["team"];
    for (method, template) in routes() {
        for session in [Session::NoMfa, FRESH] {
            let own = path(&template, "checkout", "prd");
            let registry_change = method == "PUT";
            assert_eq!(
                allowed(team, &method, &own, session),
                !is_decision(&own) && !registry_change,
                "team on {method} {own} ({session:?})"
            );
            // another service, and names built to look like checkout's
            for other in ["payments", "checkout-v2", "checkou", "services"] {
                let theirs = path(&template, other, "prd");
                assert!(
                    !allowed(team, &method, &theirs, session),
                    "team on {method} {theirs} ({session:?})"
                );
            }
            // another service whose environment or id is named like checkout's paths
            let tricky = path(&template, "payments", "checkout");
            assert!(
                !allowed(team, &method, &tricky, session),
                "team on {method} {tricky}"
            );
        }
    }
}

#[test]
fn an_approver_decides_checkouts_deployments_only_with_a_recent_mfa() {
    let approver = &policies()["approver"];
    for (method, template) in routes() {
        let own = path(&template, "checkout", "prd");
        let theirs = path(&template, "payments", "prd");
        let reads_deployments = method == "GET" && own.contains("/deployments");
        assert_eq!(
            allowed(approver, &method, &own, FRESH),
            is_decision(&own) || reads_deployments,
            "approver with MFA on {method} {own}"
        );
        assert!(
            !allowed(approver, &method, &theirs, FRESH),
            "approver on another service: {method} {theirs}"
        );
        for session in [Session::NoMfa, STALE] {
            assert!(
                !allowed(approver, &method, &own, session),
                "approver without a recent MFA on {method} {own} ({session:?})"
            );
        }
        if is_decision(&own) {
            // explicitly denied: no other grant to the same principal can open it
            assert_eq!(
                decide(approver, &method, &own, Session::NoMfa),
                Decision::ExplicitDeny
            );
            assert_eq!(
                decide(approver, &method, &own, STALE),
                Decision::ExplicitDeny
            );
        }
    }
}

#[test]
fn an_admin_reaches_every_route_but_decides_promotes_and_governs_only_with_mfa() {
    let admin = &policies()["admin"];
    for (method, template) in routes() {
        for service in ["checkout", "payments"] {
            let p = path(&template, service, "prd");
            let needs_mfa = is_decision(&p)
                || p.ends_with("/promotions")
                || (method == "PUT" && p.ends_with("/policy"));
            assert!(
                allowed(admin, &method, &p, FRESH),
                "admin with MFA: {method} {p}"
            );
            assert_eq!(
                decide(admin, &method, &p, Session::NoMfa),
                if needs_mfa {
                    Decision::ExplicitDeny
                } else {
                    Decision::Allow
                },
                "admin without MFA: {method} {p}"
            );
        }
    }
}

#[test]
fn a_missing_or_broken_readme_policy_is_caught() {
    let text = "intro\n<!-- readme-policy: team -->\n```json\n{\"Version\": \"2012-10-17\", \"Statement\": []}\n```\n";
    assert_eq!(
        readme_policy(text, "team")["Statement"],
        Value::Array(vec![])
    );
    for broken in [
        "no marker here",
        "<!-- readme-policy: team -->\nno block",
        "<!-- readme-policy: team -->\n```json\n{not json\n```",
    ] {
        let caught = std::panic::catch_unwind(|| readme_policy(broken, "team"));
        assert!(caught.is_err(), "{broken:?}");
    }
    // a team policy widened to every service would fail the team test
    let widened: Value = serde_json::from_str(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "{API}/*/*/services/*"}}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(allowed(
        &widened,
        "GET",
        "/services/payments/environments/prd/deployments",
        Session::NoMfa
    ));
}
