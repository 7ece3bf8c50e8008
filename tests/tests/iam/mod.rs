//! Checking the AWS calls the controller's functions make against their roles in the template.

pub mod policy;
pub mod stack;

use policy::{Decision, Request};
use serde_json::Value;
use stack::{ACCOUNT, Stack};
use std::collections::{BTreeMap, BTreeSet};

/// The findings for recorded calls (one JSON object per call, as local-stack/authz.py writes
/// them): every authorization a function's call needs that its role does not allow.
pub fn check(stack: &Stack, calls: &[Value]) -> Result<Vec<String>, String> {
    let roles = stack.function_roles()?;
    let mut policies: BTreeMap<&str, (String, Vec<Value>)> = BTreeMap::new();
    for (binary, role) in &roles {
        policies.insert(binary, (stack.role_arn(role)?, stack.role_policies(role)?));
    }
    let mut findings = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for call in calls {
        let function = call["function"].as_str().unwrap_or_default();
        let made = format!(
            "{}:{}",
            call["service"].as_str().unwrap_or("?"),
            call["operation"].as_str().unwrap_or("?")
        );
        let Some((role_arn, docs)) = policies.get(function) else {
            findings.insert(format!(
                "{function}: made {made}, but no function of the template builds the binary {function:?}"
            ));
            continue;
        };
        let role = roles.get(function).map(String::as_str).unwrap_or_default();
        let Some(needs) = call["authorizations"].as_array() else {
            findings.insert(format!(
                "{function}: {made} was recorded without its authorizations"
            ));
            continue;
        };
        for need in needs {
            let Some(action) = need["action"].as_str() else {
                findings.insert(format!(
                    "{function}: {made} is not known to local-stack/authz.py, so what IAM checks for it \
                     is unknown ({})",
                    need["context"]
                ));
                continue;
            };
            let resource = need["resource"].as_str().unwrap_or_default().to_string();
            if !seen.insert((function.to_string(), need.to_string())) {
                continue;
            }
            let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
            if let Some(given) = need["context"].as_object() {
                for (k, v) in given {
                    let values = match v {
                        Value::Array(items) => items.iter().map(plain).collect(),
                        other => vec![plain(other)],
                    };
                    context.insert(k.clone(), values);
                }
            }
            context.insert("aws:PrincipalArn".into(), vec![role_arn.clone()]);
            context.insert("aws:PrincipalAccount".into(), vec![ACCOUNT.into()]);
            let request = Request {
                action: action.to_string(),
                resource: resource.clone(),
                context,
            };
            let refs: Vec<&Value> = docs.iter().collect();
            let shown = need
                .get("context")
                .filter(|c| !c.is_null())
                .map(|c| format!(" with {c}"))
                .unwrap_or_default();
            match policy::evaluate(&refs, &request) {
                Ok(Decision::Allow) => {}
                Ok(decision) => {
                    let why = if decision == Decision::ExplicitDeny {
                        "explicitly denied"
                    } else {
                        "not allowed by any statement"
                    };
                    findings.insert(format!(
                        "{function} ({role}): {action} on {resource}{shown} is {why} (the call: {made})"
                    ));
                }
                Err(e) => {
                    findings.insert(format!(
                        "{function} ({role}): {action} on {resource}{shown} cannot be evaluated: {e}"
                    ));
                }
            }
        }
    }
    Ok(findings.into_iter().collect())
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
