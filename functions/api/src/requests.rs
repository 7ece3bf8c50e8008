//! Parsing what callers send: request bodies (strict JSON, unknown fields refused), query
//! parameters and path values. Every parser returns a valid request or a 400 naming the field.

use crate::http::ApiError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use shared::domain::{EvidenceKind, ImageRef, Version};
use shared::registry::{
    ENVIRONMENT_POLICY_FIELDS, EnvironmentConfig, SERVICE_POLICY_FIELDS, ServiceConfig,
};
use time::OffsetDateTime;

/// Service and environment names: 1-64 of `[A-Za-z0-9_-]`, as the registry stores them.
pub fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

pub fn name(what: &str, value: &str) -> Result<String, ApiError> {
    if name_ok(value) {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid(format!(
            "{what} {:?} must be 1-64 of [A-Za-z0-9_-]",
            shown(value)
        )))
    }
}

pub fn deployment_id(value: &str) -> Result<String, ApiError> {
    if shared::start::valid_deployment_id(value) {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid(format!(
            "deployment id {:?} must be 1-80 of [A-Za-z0-9_-]",
            shown(value)
        )))
    }
}

fn json_error(e: &serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(format!("request body: {e}")),
        _ => ApiError::invalid(format!("request body is not valid JSON: {e}")),
    }
}

/// A JSON object body; `example` shows the expected shape when it is missing.
fn object(body: Option<&[u8]>, example: &str) -> Result<Map<String, Value>, ApiError> {
    let Some(bytes) = body else {
        return Err(ApiError::invalid(format!(
            "a JSON body is required, e.g. {example}"
        )));
    };
    match serde_json::from_slice::<Value>(bytes).map_err(|e| json_error(&e))? {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::invalid(format!(
            "the body must be a JSON object, e.g. {example}"
        ))),
    }
}

fn typed<T: DeserializeOwned>(o: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(o)).map_err(|e| json_error(&e))
}

/// `POST /deployments`.
#[derive(Debug, Clone, PartialEq)]
pub struct StartBody {
    pub service: String,
    pub environment: String,
    pub version: Version,
    pub image: ImageRef,
    pub image_digest: Option<String>,
}

pub const START_EXAMPLE: &str = r#"{"service": "checkout", "environment": "prd", "version": "1.3.0", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0"}"#;

pub fn start(body: Option<&[u8]>) -> Result<StartBody, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        service: String,
        environment: String,
        version: String,
        image: String,
        #[serde(default)]
        image_digest: Option<String>,
    }
    let raw: Raw = typed(object(body, START_EXAMPLE)?)?;
    Ok(StartBody {
        service: name("service", &raw.service)?,
        environment: name("environment", &raw.environment)?,
        version: Version::parse(&raw.version).map_err(|e| ApiError::invalid(e.to_string()))?,
        image: ImageRef::parse(&raw.image).map_err(|e| ApiError::invalid(e.to_string()))?,
        image_digest: raw.image_digest,
    })
}

/// Six hex digits of FNV-1a over `s`: a stable, dependency-free fingerprint of a request id.
pub fn fingerprint(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:06x}", h & 0xff_ffff)
}

/// The deployment id: the caller's `Idempotency-Key`, or
/// `<service>-<environment>-<version with dots as dashes>-<unix millis>[-<6 hex of the request id>]`.
pub fn new_deployment_id(
    idempotency_key: Option<&str>,
    request_id: Option<&str>,
    body: &StartBody,
    now: OffsetDateTime,
) -> Result<String, ApiError> {
    if let Some(key) = idempotency_key {
        return if shared::start::valid_deployment_id(key) {
            Ok(key.to_string())
        } else {
            Err(ApiError::invalid(format!(
                "Idempotency-Key {:?} must be 1-80 of [A-Za-z0-9_-] (it becomes the deployment id)",
                shown(key)
            )))
        };
    }
    let version: String = body
        .version
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let millis = now.unix_timestamp_nanos() / 1_000_000;
    let suffix = match request_id.filter(|r| !r.is_empty()) {
        Some(r) => format!("-{millis}-{}", fingerprint(r)),
        None => format!("-{millis}"),
    };
    let mut prefix = format!("{}-{}-{version}", body.service, body.environment);
    // Execution names are at most 80 characters: keep the unique suffix whole.
    prefix.truncate(80usize.saturating_sub(suffix.len()));
    Ok(format!("{prefix}{suffix}"))
}

/// `POST /deployments/{id}/rollback`: an empty body is an unconfirmed request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

pub const MAX_REASON: usize = 512;

fn reason_ok(reason: &Option<String>) -> Result<(), ApiError> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON => Err(ApiError::invalid(format!(
            "reason must be at most {MAX_REASON} characters"
        ))),
        _ => Ok(()),
    }
}

pub fn rollback(body: Option<&[u8]>) -> Result<RollbackBody, ApiError> {
    if body.is_none() {
        return Ok(RollbackBody::default());
    }
    let b: RollbackBody = typed(object(body, r#"{"confirm": true, "reason": "..."}"#)?)?;
    reason_ok(&b.reason)?;
    Ok(b)
}

/// `POST /environments/{env}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRollbackBody {
    pub service: String,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

pub fn environment_rollback(body: Option<&[u8]>) -> Result<EnvironmentRollbackBody, ApiError> {
    let b: EnvironmentRollbackBody = typed(object(
        body,
        r#"{"service": "checkout", "confirm": true, "reason": "..."}"#,
    )?)?;
    name("service", &b.service)?;
    reason_ok(&b.reason)?;
    Ok(b)
}

/// Registry bodies take their names from the path; a body that repeats them is refused so
/// there is never a question of which one wins.
fn from_path(o: &Map<String, Value>, keys: &[&str], path: &str) -> Result<(), ApiError> {
    match keys.iter().find(|k| o.contains_key(**k)) {
        Some(k) => Err(ApiError::invalid(format!(
            "{k} is taken from the path ({path}); remove it from the body"
        ))),
        None => Ok(()),
    }
}

/// The governed `fields` the body leaves out keep their `stored` values (serialized as the
/// registry stores them), so a team's update need not repeat what only an administrator sets.
fn keep_stored<T: serde::Serialize>(
    o: &mut Map<String, Value>,
    stored: Option<&T>,
    fields: &[&str],
) -> Result<(), ApiError> {
    let Some(stored) = stored else {
        return Ok(());
    };
    let stored = serde_json::to_value(stored)
        .map_err(|e| ApiError::internal(format!("the stored configuration: {e}")))?;
    for field in fields {
        if let (false, Some(v)) = (o.contains_key(*field), stored.get(*field)) {
            o.insert((*field).to_string(), v.clone());
        }
    }
    Ok(())
}

/// `PUT /services/{service}`: a `ServiceConfig` without `service`; the governed fields it
/// leaves out stay as `stored`.
pub fn service(
    service: &str,
    body: Option<&[u8]>,
    stored: Option<&ServiceConfig>,
) -> Result<ServiceConfig, ApiError> {
    let service = name("service", service)?;
    let mut o = object(
        body,
        r#"{"repository": "checkout", "auto_deploy": ["dev"]}"#,
    )?;
    from_path(&o, &["service"], &format!("/services/{service}"))?;
    o.insert("service".into(), Value::String(service));
    keep_stored(&mut o, stored, SERVICE_POLICY_FIELDS)?;
    let config: ServiceConfig = typed(o)?;
    config
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(config)
}

/// `PUT /services/{service}/environments/{env}`: an `EnvironmentConfig` without `service` and
/// `environment`; protection and approval left out stay as `stored`.
pub fn environment(
    service: &str,
    environment: &str,
    body: Option<&[u8]>,
    stored: Option<&EnvironmentConfig>,
) -> Result<EnvironmentConfig, ApiError> {
    let service = name("service", service)?;
    let environment = name("environment", environment)?;
    let mut o = object(
        body,
        r#"{"traffic": {...}, "compute": {"platform": "ecs", ...}, "alarms": [...]}"#,
    )?;
    from_path(
        &o,
        &["service", "environment"],
        &format!("/services/{service}/environments/{environment}"),
    )?;
    o.insert("service".into(), Value::String(service));
    o.insert("environment".into(), Value::String(environment));
    keep_stored(&mut o, stored, ENVIRONMENT_POLICY_FIELDS)?;
    let config: EnvironmentConfig = typed(o)?;
    config
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(config)
}

/// `value` with the object `patch` merged over it, one level deep (a field of `patch` that is
/// `null` is removed: its default applies).
fn merged(value: Option<&Value>, patch: &Value) -> Value {
    match (value, patch) {
        (Some(Value::Object(v)), Value::Object(p)) => {
            let mut out = v.clone();
            for (k, x) in p {
                if x.is_null() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), x.clone());
                }
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

/// A governed configuration with `o`'s fields applied: a field left out keeps its value, `null`
/// restores its default, an object is merged over the value in force (`effective`).
fn with_policy<T: serde::Serialize + DeserializeOwned>(
    stored: &T,
    effective: &Value,
    o: Map<String, Value>,
    allowed: &[&str],
) -> Result<T, ApiError> {
    only_fields(&o, allowed)?;
    let mut config = serde_json::to_value(stored)
        .map_err(|e| ApiError::internal(format!("the stored configuration: {e}")))?;
    if let Some(c) = config.as_object_mut() {
        for (k, v) in o {
            match v {
                Value::Null => {
                    c.remove(&k);
                }
                Value::Object(_) => {
                    c.insert(k.clone(), merged(effective.get(&k), &v));
                }
                other => {
                    c.insert(k, other);
                }
            }
        }
    }
    serde_json::from_value(config).map_err(|e| json_error(&e))
}

/// `PUT /services/{service}/policy`: the fields sent change, the others stay.
pub fn service_policy(
    stored: &ServiceConfig,
    body: Option<&[u8]>,
) -> Result<ServiceConfig, ApiError> {
    let o = object(
        body,
        r#"{"accounts": ["210987654321"], "promotion": {"p99_limit_ms": 100}}"#,
    )?;
    let effective = serde_json::to_value(stored.policy())
        .map_err(|e| ApiError::internal(format!("the stored configuration: {e}")))?;
    let config: ServiceConfig = with_policy(stored, &effective, o, SERVICE_POLICY_FIELDS)?;
    config
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(config)
}

/// `PUT /services/{service}/environments/{environment}/policy`: the fields sent change, the
/// others stay; `null` restores the environment name's default.
pub fn environment_policy(
    stored: &EnvironmentConfig,
    body: Option<&[u8]>,
) -> Result<EnvironmentConfig, ApiError> {
    let o = object(
        body,
        r#"{"protected": true, "approval": {"required": true, "timeout_seconds": 86400}}"#,
    )?;
    if o.get("protected")
        .is_some_and(|p| !p.is_boolean() && !p.is_null())
    {
        return Err(ApiError::invalid(
            "protected must be true, false or null (the default)",
        ));
    }
    let effective = serde_json::to_value(stored.policy())
        .map_err(|e| ApiError::internal(format!("the stored configuration: {e}")))?;
    let config: EnvironmentConfig = with_policy(stored, &effective, o, ENVIRONMENT_POLICY_FIELDS)?;
    config
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(config)
}

/// Refuses a body with fields other than `allowed`.
fn only_fields(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!(
            "unknown field {:?}; this route sets {}",
            shown(k),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn known_params(query: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    match query.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::invalid(format!(
            "unknown query parameter {:?}; this route accepts {}",
            shown(k),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn bounded(
    query: &[(String, String)],
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
) -> Result<u32, ApiError> {
    match param(query, key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{key} must be a whole number from {} to {}, got {:?}",
                    range.start(),
                    range.end(),
                    shown(v)
                ))
            }),
    }
}

/// `GET /deployments?environment=prd[&limit=20][&cursor=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub environment: String,
    pub limit: u32,
    pub cursor: Option<String>,
}

pub fn history(query: &[(String, String)]) -> Result<HistoryQuery, ApiError> {
    known_params(query, &["environment", "limit", "cursor"])?;
    let environment = param(query, "environment").ok_or_else(|| {
        ApiError::invalid("environment is required, e.g. GET /deployments?environment=prd")
    })?;
    let cursor = param(query, "cursor").map(str::to_string);
    if cursor
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.len() > 4096)
    {
        return Err(ApiError::invalid(
            "cursor must be the next_cursor of the previous page, unchanged",
        ));
    }
    Ok(HistoryQuery {
        environment: name("environment", environment)?,
        limit: bounded(query, "limit", 1..=100, 20)?,
        cursor,
    })
}

/// `GET /metrics?days=7[&environment=prd]`: the period, and the environment DORA measures.
pub fn metrics_query(query: &[(String, String)]) -> Result<(u32, Option<String>), ApiError> {
    known_params(query, &["days", "environment"])?;
    let environment = param(query, "environment")
        .map(|e| name("environment", e))
        .transpose()?;
    Ok((bounded(query, "days", 1..=90, 7)?, environment))
}

/// A version in a path: semantic versioning, as releases are named.
pub fn version(value: &str) -> Result<Version, ApiError> {
    Version::parse(value).map_err(|e| ApiError::invalid(e.to_string()))
}

/// `POST /versions/{version}/evidence`: what CI measured for the version in an environment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    pub service: String,
    pub environment: String,
    pub kind: EvidenceKind,
    #[serde(default)]
    pub passed: Option<u32>,
    #[serde(default)]
    pub total: Option<u32>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub controls_passed: Option<u32>,
    #[serde(default)]
    pub controls_total: Option<u32>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
}

pub const EVIDENCE_EXAMPLE: &str = r#"{"service": "checkout", "environment": "tst", "kind": "integration", "passed": 156, "total": 156, "link": "https://github.com/org/repo/actions/runs/1"}"#;

pub fn evidence(body: Option<&[u8]>) -> Result<EvidenceBody, ApiError> {
    let b: EvidenceBody = typed(object(body, EVIDENCE_EXAMPLE)?)?;
    name("service", &b.service)?;
    name("environment", &b.environment)?;
    Ok(b)
}

/// `POST /versions/{version}/quarantine/clear`: a reason is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearBody {
    pub service: String,
    pub reason: String,
}

pub fn clear_quarantine(body: Option<&[u8]>) -> Result<ClearBody, ApiError> {
    let b: ClearBody = typed(object(
        body,
        r#"{"service": "checkout", "reason": "fixed by 1.3.1; rollback was caused by a bad config"}"#,
    )?)?;
    name("service", &b.service)?;
    required_reason(&b.reason)?;
    Ok(b)
}

fn required_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::invalid(
            "reason is required and must not be blank",
        ));
    }
    reason_ok(&Some(reason.to_string()))
}

/// `POST /promotions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteBody {
    pub service: String,
    pub version: Version,
    pub from: String,
    pub to: String,
}

pub fn promote(body: Option<&[u8]>) -> Result<PromoteBody, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        service: String,
        version: String,
        from: String,
        to: String,
    }
    let raw: Raw = typed(object(
        body,
        r#"{"service": "checkout", "version": "1.3.0", "from": "tst", "to": "prd"}"#,
    )?)?;
    let b = PromoteBody {
        service: name("service", &raw.service)?,
        version: version(&raw.version)?,
        from: name("from", &raw.from)?,
        to: name("to", &raw.to)?,
    };
    if b.from == b.to {
        return Err(ApiError::invalid(format!(
            "from and to are both {:?}: promote from one environment to another",
            b.from
        )));
    }
    Ok(b)
}

/// `POST /deployments/{id}/approve`: an optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub comment: Option<String>,
}

pub fn approve(body: Option<&[u8]>) -> Result<ApproveBody, ApiError> {
    if body.is_none() {
        return Ok(ApproveBody::default());
    }
    let b: ApproveBody = typed(object(body, r#"{"comment": "change CHG-1234"}"#)?)?;
    reason_ok(&b.comment)?;
    Ok(b)
}

/// `POST /deployments/{id}/reject`: the reason is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: String,
}

pub fn reject(body: Option<&[u8]>) -> Result<RejectBody, ApiError> {
    let b: RejectBody = typed(object(
        body,
        r#"{"reason": "error budget spent this week"}"#,
    )?)?;
    required_reason(&b.reason)?;
    Ok(b)
}

/// `GET /versions/{version}?service=checkout`.
pub fn version_query(query: &[(String, String)]) -> Result<String, ApiError> {
    known_params(query, &["service"])?;
    let service = param(query, "service").ok_or_else(|| {
        ApiError::invalid("service is required, e.g. GET /versions/1.3.0?service=checkout")
    })?;
    name("service", service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use shared::fakes::sample;

    fn bytes(v: &Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn start_json() -> Value {
        json!({"service": "checkout", "environment": "dev", "version": "1.3.0", "image": sample::IMAGE_V130})
    }

    fn environment_json() -> Value {
        let mut v = serde_json::to_value(shared::fakes::sample::World::environment_config())
            .unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("service");
            o.remove("environment");
        }
        v
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn start_bodies_are_parsed_strictly() {
        let ok = start(Some(&bytes(&start_json()))).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.version.to_string(), "1.3.0");
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"service": "checkout"}),
                "missing field `environment`",
            ),
            (
                json!({"service": "checkout", "environment": "dev", "version": "1.3.0", "image": "r:1", "colour": 1}),
                "unknown field `colour`",
            ),
            (
                json!({"service": 1, "environment": "dev", "version": "1.3.0", "image": "r:1"}),
                "invalid type",
            ),
            (
                json!({"service": "checkout", "environment": "dev", "version": "latest", "image": "r:1"}),
                "version \"latest\" is invalid",
            ),
            (
                json!({"service": "checkout", "environment": "dev", "version": "1.3.0", "image": "no tag"}),
                "image",
            ),
            (
                json!({"service": "check out", "environment": "dev", "version": "1.3.0", "image": "r:1"}),
                "service \"check out\"",
            ),
            (json!([1, 2]), "must be a JSON object"),
        ];
        for (body, expected) in cases {
            let err = start(Some(&bytes(&body))).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.status == 400 && e.message.contains(expected)),
                "{body}: {err:?}"
            );
        }
        assert!(start(None).is_err_and(|e| e.message.contains("a JSON body is required")));
        assert!(start(Some(b"{")).is_err_and(|e| e.message.contains("not valid JSON")));
    }

    #[test]
    fn deployment_ids_come_from_the_key_or_the_release() {
        let body = start(Some(&bytes(&start_json()))).unwrap_or_else(|e| panic!("{e:?}"));
        let now = time::macros::datetime!(2025-01-03 10:00:05.123 UTC);
        assert_eq!(
            new_deployment_id(None, None, &body, now),
            Ok("checkout-dev-1-3-0-1735898405123".into())
        );
        assert_eq!(
            new_deployment_id(Some("ci-run-42"), Some("req-1"), &body, now),
            Ok("ci-run-42".into())
        );
        // two requests in the same millisecond get different ids
        let a = new_deployment_id(None, Some("Jz0uCiKDoAMEXRg="), &body, now);
        let b = new_deployment_id(None, Some("Jz0uCiKDoAMEXRh="), &body, now);
        assert!(a.is_ok() && b.is_ok() && a != b, "{a:?} {b:?}");
        assert!(
            a.is_ok_and(|id| id.starts_with("checkout-dev-1-3-0-1735898405123-") && id.len() == 39)
        );
        for bad in ["", "has space", &"x".repeat(81), "a/b"] {
            assert!(
                new_deployment_id(Some(bad), None, &body, now).is_err_and(|e| e.status == 400),
                "{bad}"
            );
        }
        let long = StartBody {
            service: "s".repeat(64),
            environment: "e".repeat(64),
            version: Version::parse("1.2.3-rc.1+build.5").unwrap_or_else(|e| panic!("{e}")),
            ..body
        };
        let id = new_deployment_id(None, Some("r"), &long, now).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(shared::start::valid_deployment_id(&id), "{id}");
        assert!(id.contains("-1735898405123-"), "{id}");
    }

    #[test]
    fn registry_bodies_take_names_from_the_path() {
        let s = service(
            "checkout",
            Some(br#"{"repository": "team/checkout"}"#),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((s.service.as_str(), s.auto_deploy.len()), ("checkout", 1));
        let err = service(
            "checkout",
            Some(br#"{"service": "checkout", "repository": "checkout"}"#),
            None,
        );
        assert!(err.is_err_and(|e| e.message.contains("taken from the path")));
        let err = service("checkout", Some(br#"{"repository": "Bad Repo"}"#), None);
        assert!(err.is_err_and(|e| e.message.contains("repository")));
        let env = environment("checkout", "prd", Some(&bytes(&environment_json())), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(env.environment, "prd");
        let mut same_tg = environment_json();
        same_tg["traffic"]["green_target_group_arn"] = json!(sample::BLUE_TG);
        assert!(
            environment("checkout", "prd", Some(&bytes(&same_tg)), None)
                .is_err_and(|e| e.message.contains("different target groups"))
        );
    }

    #[test]
    fn queries_are_bounded_and_strict() {
        assert_eq!(
            history(&q(&[("environment", "prd")])),
            Ok(HistoryQuery {
                environment: "prd".into(),
                limit: 20,
                cursor: None
            })
        );
        for bad in [
            q(&[]),
            q(&[("environment", "prd"), ("limit", "0")]),
            q(&[("environment", "prd"), ("limit", "101")]),
            q(&[("environment", "prd"), ("limit", "ten")]),
            q(&[("environment", "p r d")]),
            q(&[("environment", "prd"), ("page", "2")]),
        ] {
            assert!(history(&bad).is_err_and(|e| e.status == 400), "{bad:?}");
        }
        assert_eq!(metrics_query(&q(&[])), Ok((7, None)));
        assert_eq!(
            metrics_query(&q(&[("days", "90"), ("environment", "prd")])),
            Ok((90, Some("prd".to_string())))
        );
        for bad in ["0", "91", "-1", "7.5"] {
            assert!(metrics_query(&q(&[("days", bad)])).is_err(), "{bad}");
        }
        assert!(metrics_query(&q(&[("environment", "p r d")])).is_err());
    }

    fn assert_4xx_json(e: &ApiError) {
        assert!((400..500).contains(&e.status), "{e:?}");
        let r = e.response();
        let body = match r.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => t,
            other => panic!("{other:?}"),
        };
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["error"], json!(e.name));
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,20}".prop_map(Value::String),
            Just(json!("checkout")),
            Just(json!("1.3.0")),
            Just(json!(true)),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("service".to_string()),
                        Just("environment".to_string()),
                        Just("version".to_string()),
                        Just("image".to_string()),
                        Just("confirm".to_string()),
                        Just("reason".to_string()),
                        Just("repository".to_string()),
                        "[a-z_]{1,10}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Runs every body parser on `body`: each yields a request or a 4xx JSON error.
    fn all_parsers(body: Option<&[u8]>) {
        let results = [
            start(body).map(|_| ()),
            rollback(body).map(|_| ()),
            environment_rollback(body).map(|_| ()),
            service("checkout", body, None).map(|_| ()),
            environment("checkout", "dev", body, None).map(|_| ()),
        ];
        for r in results {
            if let Err(e) = r {
                assert_4xx_json(&e);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
            all_parsers(Some(&body));
        }

        #[test]
        fn arbitrary_json_never_panics(v in arb_json()) {
            all_parsers(Some(&bytes(&v)));
        }

        #[test]
        fn arbitrary_queries_never_panic(
            pairs in prop::collection::vec(
                (prop_oneof![Just("environment".to_string()), Just("limit".to_string()),
                             Just("cursor".to_string()), Just("days".to_string()), ".{0,8}"],
                 ".{0,12}"),
                0..4)
        ) {
            if let Err(e) = history(&pairs) { assert_4xx_json(&e); }
            if let Err(e) = metrics_query(&pairs) { assert_4xx_json(&e); }
        }

        /// A valid body with one field replaced by a value of the wrong type is refused.
        #[test]
        fn one_field_of_the_wrong_type_is_refused(
            which in 0usize..4,
            wrong in prop_oneof![
                Just(Value::Null), any::<i64>().prop_map(|n| json!(n)),
                any::<bool>().prop_map(Value::Bool), Just(json!([])), Just(json!({"a": 1}))
            ],
        ) {
            // start: every field is a string
            let mut v = start_json();
            let key = ["service", "environment", "version", "image"][which];
            v[key] = wrong.clone();
            let err = start(Some(&bytes(&v))).err();
            prop_assert!(err.as_ref().is_some_and(|e| e.status == 400), "{v}: {err:?}");

            // rollbacks: confirm is a boolean, reason and service strings
            if !wrong.is_boolean() {
                let v = json!({"confirm": wrong.clone()});
                prop_assert!(rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));
                let v = json!({"service": "checkout", "confirm": wrong.clone()});
                prop_assert!(environment_rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));
            }
            if !wrong.is_null() {
                let v = json!({"confirm": true, "reason": wrong.clone()});
                prop_assert!(rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));
            }
            let v = json!({"service": wrong.clone(), "confirm": true});
            prop_assert!(environment_rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));

            // registry: repository is a string, traffic an object
            let v = json!({"repository": wrong.clone()});
            prop_assert!(service("checkout", Some(&bytes(&v)), None).is_err_and(|e| e.status == 400));
            let mut v = environment_json();
            v["traffic"] = wrong;
            prop_assert!(environment("checkout", "dev", Some(&bytes(&v)), None).is_err_and(|e| e.status == 400));
        }
    }
}
