//! IAM identity-policy evaluation, as AWS documents it, for checking the calls the controller's
//! functions make against their roles.
//!
//! Written here rather than taken from a crate: the Rust evaluators on crates.io
//! (`iam-rs`, `scratchstack-aspen`) take the request's resource as a parsed ARN, so they cannot
//! express the `"*"` that actions without a resource type are authorized on, and `iam-rs` calls
//! itself unverified; moto's access control does not evaluate conditions; the most complete
//! simulator (`@cloud-copilot/iam-simulate`) is AGPL. What this one covers is pinned by the
//! cases of AWS's own documentation in `iam_calls.rs` (`the_evaluator_agrees_with_aws`).
//!
//! Covered: Allow/Deny with explicit deny first and implicit deny last (IAM User Guide, "Policy
//! evaluation logic"); Action/NotAction (case-insensitive, `*` and `?`); Resource/NotResource
//! (ARN segments, a `*` that ends a segment may run past the colon, "Resource" element);
//! Condition with every String, Numeric, Arn, Bool and Null operator, `...IfExists`, and
//! `ForAnyValue:`/`ForAllValues:` (AND across operators and keys, OR across values, NOR for a
//! negated operator; a missing key fails a positive operator and passes a negated one).
//! Numeric operators compare the request's value with the policy's as numbers; a value that is
//! not a number matches nothing. Anything else (date, IP and binary operators, policy
//! variables) is refused with a named error rather than guessed.

use serde_json::Value;
use std::collections::BTreeMap;

/// A request as IAM sees it: the action, the resource ARN (`"*"` for an action without a
/// resource type) and the request context's keys (a multivalued key has several values).
#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Evaluates identity-based policies (documents with a `Statement`) for one request.
pub fn evaluate(policies: &[&Value], request: &Request) -> Result<Decision, String> {
    let mut allowed = false;
    for policy in policies {
        for statement in one_or_many(&policy["Statement"]) {
            if !applies(statement, request)? {
                continue;
            }
            match statement["Effect"].as_str() {
                Some("Deny") => return Ok(Decision::ExplicitDeny),
                Some("Allow") => allowed = true,
                other => return Err(format!("a statement's Effect is {other:?}")),
            }
        }
    }
    Ok(if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    })
}

fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    one_or_many(v)
        .into_iter()
        .map(|s| match s {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("not a policy string: {other}")),
        })
        .collect()
}

fn applies(statement: &Value, request: &Request) -> Result<bool, String> {
    let action = match (&statement["Action"], &statement["NotAction"]) {
        (Value::Null, Value::Null) => return Err("a statement has no Action or NotAction".into()),
        (a, Value::Null) => any_action(a, &request.action)?,
        (Value::Null, n) => !any_action(n, &request.action)?,
        _ => return Err("a statement has both Action and NotAction".into()),
    };
    if !action {
        return Ok(false);
    }
    let resource = match (&statement["Resource"], &statement["NotResource"]) {
        (Value::Null, Value::Null) => {
            return Err("a statement has no Resource or NotResource".into());
        }
        (r, Value::Null) => any_resource(r, &request.resource)?,
        (Value::Null, n) => !any_resource(n, &request.resource)?,
        _ => return Err("a statement has both Resource and NotResource".into()),
    };
    if !resource {
        return Ok(false);
    }
    match &statement["Condition"] {
        Value::Null => Ok(true),
        Value::Object(block) => {
            for (operator, keys) in block {
                let Value::Object(keys) = keys else {
                    return Err(format!("condition {operator} is not an object"));
                };
                for (key, values) in keys {
                    if !condition(operator, key, &strings(values)?, request)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
        other => Err(format!("a Condition is not an object: {other}")),
    }
}

fn any_action(patterns: &Value, action: &str) -> Result<bool, String> {
    Ok(strings(patterns)?
        .iter()
        .any(|p| p == "*" || glob(&p.to_ascii_lowercase(), &action.to_ascii_lowercase(), false)))
}

fn any_resource(patterns: &Value, resource: &str) -> Result<bool, String> {
    for p in strings(patterns)? {
        if p.contains("${") {
            return Err(format!("policy variables are not evaluated here: {p}"));
        }
        if resource_matches(&p, resource) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `*` and `?` within a text; with `colons_fence`, neither matches a colon.
fn glob(pattern: &str, text: &str, colons_fence: bool) -> bool {
    let tokens: Vec<Token> = pattern
        .chars()
        .map(|c| match c {
            '*' => Token::Any {
                crosses: !colons_fence,
            },
            '?' => Token::One {
                crosses: !colons_fence,
            },
            c => Token::Char(c),
        })
        .collect();
    matches(&tokens, &text.chars().collect::<Vec<_>>())
}

#[derive(Clone, Copy)]
enum Token {
    Char(char),
    One { crosses: bool },
    Any { crosses: bool },
}

/// Whether the tokens match the whole text (dynamic programming: linear in both, no
/// backtracking blow-up).
fn matches(tokens: &[Token], text: &[char]) -> bool {
    // can[j]: the tokens so far match text[..j]
    let mut can = vec![false; text.len() + 1];
    can[0] = true;
    for t in tokens {
        let mut next = vec![false; text.len() + 1];
        match *t {
            Token::Char(c) => {
                for j in 0..text.len() {
                    next[j + 1] = can[j] && text[j] == c;
                }
            }
            Token::One { crosses } => {
                for j in 0..text.len() {
                    next[j + 1] = can[j] && (crosses || text[j] != ':');
                }
            }
            Token::Any { crosses } => {
                next[0] = can[0];
                for j in 0..text.len() {
                    next[j + 1] = can[j + 1] || (next[j] && (crosses || text[j] != ':'));
                }
            }
        }
        can = next;
    }
    can[text.len()]
}

/// The Resource element's matching: in the first five colon-separated parts of an ARN, `*` and
/// `?` stay inside their part, except that a `*` ending a part (or the whole pattern) may run
/// past the colon; in the resource part (after the fifth colon) they match any character.
fn resource_matches(pattern: &str, resource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut colons = 0;
    for (i, &c) in chars.iter().enumerate() {
        let in_resource_part = colons >= 5;
        tokens.push(match c {
            ':' => {
                colons += 1;
                Token::Char(':')
            }
            '*' => {
                let ends_part = chars.get(i + 1).is_none_or(|n| *n == ':');
                Token::Any {
                    crosses: in_resource_part || ends_part,
                }
            }
            '?' => Token::One {
                crosses: in_resource_part,
            },
            c => Token::Char(c),
        });
    }
    matches(&tokens, &resource.chars().collect::<Vec<_>>())
}

/// ArnLike: each of the six parts is checked on its own (a `*` never crosses a colon, except
/// in the resource part, which is everything after the fifth colon).
fn arn_like(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    if p.len() != 6 || v.len() != 6 {
        return pattern == "*" || pattern == value;
    }
    p.iter()
        .zip(&v)
        .enumerate()
        .all(|(i, (p, v))| glob(p, v, i < 5))
}

/// `compare(request value, policy value)` when both are numbers; false otherwise.
fn numeric(value: &str, policy: &str, compare: fn(f64, f64) -> bool) -> bool {
    match (value.trim().parse::<f64>(), policy.trim().parse::<f64>()) {
        (Ok(v), Ok(p)) => compare(v, p),
        _ => false,
    }
}

fn condition(
    operator: &str,
    key: &str,
    policy: &[String],
    request: &Request,
) -> Result<bool, String> {
    let (set, rest) = match operator.split_once(':') {
        Some((set @ ("ForAnyValue" | "ForAllValues"), rest)) => (Some(set), rest),
        Some(_) => return Err(format!("unknown condition set operator in {operator}")),
        None => (None, operator),
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    // Condition keys are case-insensitive (their values are not).
    let values = request
        .context
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_slice());

    if base == "Null" {
        if set.is_some() || if_exists {
            return Err(format!("{operator} is not a valid operator"));
        }
        let absent = values.is_none_or(<[String]>::is_empty);
        return Ok(policy
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&absent.to_string())));
    }
    let (test, negated): (fn(&str, &str) -> bool, bool) = match base {
        "StringEquals" => (|p, v| p == v, false),
        "StringNotEquals" => (|p, v| p == v, true),
        "StringEqualsIgnoreCase" => (|p, v| p.eq_ignore_ascii_case(v), false),
        "StringNotEqualsIgnoreCase" => (|p, v| p.eq_ignore_ascii_case(v), true),
        "StringLike" => (|p, v| glob(p, v, false), false),
        "StringNotLike" => (|p, v| glob(p, v, false), true),
        "ArnEquals" | "ArnLike" => (arn_like, false),
        "ArnNotEquals" | "ArnNotLike" => (arn_like, true),
        "Bool" => (|p, v| p.eq_ignore_ascii_case(v), false),
        "NumericEquals" => (|p, v| numeric(v, p, |v, p| v == p), false),
        "NumericNotEquals" => (|p, v| numeric(v, p, |v, p| v == p), true),
        "NumericLessThan" => (|p, v| numeric(v, p, |v, p| v < p), false),
        "NumericLessThanEquals" => (|p, v| numeric(v, p, |v, p| v <= p), false),
        "NumericGreaterThan" => (|p, v| numeric(v, p, |v, p| v > p), false),
        "NumericGreaterThanEquals" => (|p, v| numeric(v, p, |v, p| v >= p), false),
        other => return Err(format!("condition operator {other} is not evaluated here")),
    };
    let one = |v: &str| policy.iter().any(|p| test(p, v));

    let Some(values) = values.filter(|v| !v.is_empty()) else {
        // The key is not in the request context (or resolves to an empty set).
        return Ok(match set {
            Some("ForAllValues") => true,
            Some(_) => false,
            None => if_exists || negated,
        });
    };
    Ok(match set {
        // any request value matches (for a negated operator: any request value matches none)
        Some("ForAnyValue") => values.iter().any(|v| one(v) != negated),
        // every request value matches (negated: every request value matches none)
        Some(_) => values.iter().all(|v| one(v) != negated),
        None => {
            if values.len() > 1 {
                return Err(format!(
                    "{key} has several values in the request: the condition needs ForAnyValue or ForAllValues"
                ));
            }
            one(&values[0]) != negated
        }
    })
}
