//! Parsing what callers send: request bodies (strict JSON, unknown fields refused), query
//! parameters and path values. Every parser returns a valid request or a 400 naming the field.

use crate::http::ApiError;
use crate::per_service::{self, SCOPE_FIELDS, Scope};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::domain::{
    DeploymentId, EnvironmentName, EvidenceKind, ImageDigest, ImageRef, ServiceName, Version,
};
use shared::registry::{
    ENVIRONMENT_POLICY_FIELDS, EnvironmentConfig, SERVICE_POLICY_FIELDS, ServiceConfig,
};
use time::OffsetDateTime;

fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

/// A service or environment name from a path: 1-64 of `[A-Za-z0-9_-]`, as the registry
/// stores them (`what` is `service` or `environment`).
pub fn name(what: &str, value: &str) -> Result<String, ApiError> {
    let checked = match what {
        "service" => ServiceName::parse(value).map(String::from),
        _ => EnvironmentName::parse(value).map(String::from),
    };
    checked
        .map_err(|e| ApiError::invalid(format!("{what} {:?} is invalid: {}", shown(value), e.why)))
}

pub fn deployment_id(value: &str) -> Result<DeploymentId, ApiError> {
    DeploymentId::parse(value).map_err(|e| {
        ApiError::invalid(format!(
            "{} {:?} is invalid: {}",
            DeploymentId::WHAT,
            shown(value),
            e.why
        ))
    })
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

/// `POST /services/{service}/environments/{environment}/deployments`: the release; the service
/// and environment are the path's.
#[derive(Debug, Clone, PartialEq)]
pub struct StartBody {
    pub version: Version,
    pub image: ImageRef,
    pub image_digest: Option<ImageDigest>,
}

pub const START_EXAMPLE: &str = r#"{"version": "1.3.0", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0"}"#;

pub fn start(body: Option<&[u8]>, scope: &Scope) -> Result<StartBody, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        version: String,
        image: String,
        #[serde(default)]
        image_digest: Option<ImageDigest>,
    }
    let o = object(body, START_EXAMPLE)?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    let raw: Raw = typed(o)?;
    Ok(StartBody {
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

/// At most this much of an `Idempotency-Key` starts the deployment id it derives.
pub const KEY_PREFIX_MAX: usize = 63;

/// 16 hex digits of SHA-256 over `service\0environment\0key`: what ties a key-derived id to
/// the path it was used under.
pub fn key_digest(service: &str, environment: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(service.as_bytes())
        .chain_update([0u8])
        .chain_update(environment.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The deployment id of a start in `service`/`environment`. With an `Idempotency-Key`:
/// `<the key, at most 63 characters>-<16 hex of SHA-256 over service, environment and key>`,
/// so a repeat lands on the same id while the same key under another service or environment
/// lands elsewhere, and no caller can pick another service's id (or one it is a prefix of).
/// Without: `<service>-<environment>-<version with dots as dashes>-<unix millis>[-<6 hex of the request id>]`.
pub fn new_deployment_id(
    idempotency_key: Option<&str>,
    request_id: Option<&str>,
    service: &str,
    environment: &str,
    version: &Version,
    now: OffsetDateTime,
) -> Result<DeploymentId, ApiError> {
    let minted = |id: String| {
        DeploymentId::try_from(id).map_err(|e| {
            ApiError::invalid(format!(
                "{e}: service {:?} and environment {:?} must be names of [A-Za-z0-9_-]",
                shown(service),
                shown(environment)
            ))
        })
    };
    if let Some(key) = idempotency_key {
        if DeploymentId::parse(key).is_err() {
            return Err(ApiError::invalid(format!(
                "Idempotency-Key {:?} must be 1-80 of [A-Za-z0-9_-] (it starts the deployment id)",
                shown(key)
            )));
        }
        // The key is ASCII (checked above), so a byte cut is a character cut.
        let head = &key[..key.len().min(KEY_PREFIX_MAX)];
        return minted(format!("{head}-{}", key_digest(service, environment, key)));
    }
    let version: String = version
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
    let mut prefix = format!("{service}-{environment}-{version}");
    // Execution names are at most 80 characters: keep the unique suffix whole.
    prefix.truncate(80usize.saturating_sub(suffix.len()));
    minted(format!("{prefix}{suffix}"))
}

/// `POST …/deployments/{id}/rollback`: an empty body is an unconfirmed request.
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

/// `POST /services/{service}/environments/{environment}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRollbackBody {
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

pub fn environment_rollback(
    body: Option<&[u8]>,
    scope: &Scope,
) -> Result<EnvironmentRollbackBody, ApiError> {
    let o = object(body, r#"{"confirm": true, "reason": "..."}"#)?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    let b: EnvironmentRollbackBody = typed(o)?;
    reason_ok(&b.reason)?;
    Ok(b)
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

/// `PUT /services/{service}`: a `ServiceConfig` without `service` (registry bodies take their
/// names from the path; a body that repeats them is refused, so no question of which one
/// wins); the governed fields it leaves out stay as `stored`.
pub fn service(
    scope: &Scope,
    body: Option<&[u8]>,
    stored: Option<&ServiceConfig>,
) -> Result<ServiceConfig, ApiError> {
    let mut o = object(
        body,
        r#"{"repository": "checkout", "auto_deploy": ["dev"]}"#,
    )?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    o.insert("service".into(), Value::String(scope.service.clone()));
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
    scope: &Scope,
    body: Option<&[u8]>,
    stored: Option<&EnvironmentConfig>,
) -> Result<EnvironmentConfig, ApiError> {
    let environment = scope.environment()?.to_string();
    let mut o = object(
        body,
        r#"{"traffic": {...}, "compute": {"platform": "ecs", ...}, "alarms": [...]}"#,
    )?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    o.insert("service".into(), Value::String(scope.service.clone()));
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
        Some((k, _)) if known.is_empty() => Err(ApiError::invalid(format!(
            "unknown query parameter {:?}; this route takes none",
            shown(k)
        ))),
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

/// `GET /services/{service}/environments/{environment}/deployments[?limit=20][&cursor=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub limit: u32,
    pub cursor: Option<String>,
}

pub fn history(query: &[(String, String)], scope: &Scope) -> Result<HistoryQuery, ApiError> {
    per_service::not_in_query(query, SCOPE_FIELDS, scope)?;
    known_params(query, &["limit", "cursor"])?;
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
        limit: bounded(query, "limit", 1..=100, 20)?,
        cursor,
    })
}

/// `GET /services/{service}/metrics?days=7[&environment=prd]`: the period, and the environment
/// DORA measures (a filter within the path's service, which is the only service it reads).
pub fn metrics_query(
    query: &[(String, String)],
    scope: &Scope,
) -> Result<(u32, Option<String>), ApiError> {
    per_service::not_in_query(query, &["service"], scope)?;
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

/// `POST /services/{service}/environments/{environment}/versions/{version}/evidence`: what CI
/// measured for the version in the path's environment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
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
    pub image_digest: Option<ImageDigest>,
}

pub const EVIDENCE_EXAMPLE: &str = r#"{"kind": "integration", "passed": 156, "total": 156, "link": "https://github.com/org/repo/actions/runs/1"}"#;

pub fn evidence(body: Option<&[u8]>, scope: &Scope) -> Result<EvidenceBody, ApiError> {
    let o = object(body, EVIDENCE_EXAMPLE)?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    typed(o)
}

/// `POST /services/{service}/versions/{version}/quarantine/clear`: a reason is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearBody {
    pub reason: String,
}

pub fn clear_quarantine(body: Option<&[u8]>, scope: &Scope) -> Result<ClearBody, ApiError> {
    let o = object(
        body,
        r#"{"reason": "fixed by 1.3.1; rollback was caused by a bad config"}"#,
    )?;
    per_service::not_in_body(&o, SCOPE_FIELDS, scope)?;
    let b: ClearBody = typed(o)?;
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

/// `POST /services/{service}/environments/{environment}/promotions`: promotes into the path's
/// environment (`to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteBody {
    pub service: String,
    pub version: Version,
    pub from: String,
    pub to: String,
}

pub fn promote(body: Option<&[u8]>, scope: &Scope) -> Result<PromoteBody, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        version: String,
        from: String,
    }
    let o = object(body, r#"{"version": "1.3.0", "from": "tst"}"#)?;
    per_service::not_in_body(&o, &["service", "environment", "to"], scope)?;
    let raw: Raw = typed(o)?;
    let b = PromoteBody {
        service: scope.service.clone(),
        version: version(&raw.version)?,
        from: name("from", &raw.from)?,
        to: scope.environment()?.to_string(),
    };
    if b.from == b.to {
        return Err(ApiError::invalid(format!(
            "from and to are both {:?}: promote from one environment to another",
            b.from
        )));
    }
    Ok(b)
}

/// `POST …/deployments/{id}/approve`: an optional comment.
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

/// `POST …/deployments/{id}/reject`: the reason is required.
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

/// `GET /services/{service}/versions/{version}`: no query.
pub fn version_query(query: &[(String, String)], scope: &Scope) -> Result<(), ApiError> {
    per_service::not_in_query(query, SCOPE_FIELDS, scope)?;
    known_params(query, &[])
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
        json!({"version": "1.3.0", "image": sample::IMAGE_V130})
    }

    fn dev() -> Scope {
        Scope {
            service: "checkout".into(),
            environment: Some("dev".into()),
        }
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
        let ok = start(Some(&bytes(&start_json())), &dev()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.version.to_string(), "1.3.0");
        let cases: Vec<(Value, &str)> = vec![
            (json!({"version": "1.3.0"}), "missing field `image`"),
            (
                json!({"version": "1.3.0", "image": "r:1", "colour": 1}),
                "unknown field `colour`",
            ),
            (json!({"version": 1, "image": "r:1"}), "invalid type"),
            (
                json!({"version": "latest", "image": "r:1"}),
                "version \"latest\" is invalid",
            ),
            (json!({"version": "1.3.0", "image": "no tag"}), "image"),
            // the path names the service and environment; a body that does is refused
            (
                json!({"service": "payments", "version": "1.3.0", "image": "r:1"}),
                "service is taken from the path (/services/checkout/environments/dev)",
            ),
            (
                json!({"environment": "prd", "version": "1.3.0", "image": "r:1"}),
                "environment is taken from the path",
            ),
            (json!([1, 2]), "must be a JSON object"),
        ];
        for (body, expected) in cases {
            let err = start(Some(&bytes(&body)), &dev()).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.status == 400 && e.message.contains(expected)),
                "{body}: {err:?}"
            );
        }
        assert!(start(None, &dev()).is_err_and(|e| e.message.contains("a JSON body is required")));
        assert!(start(Some(b"{"), &dev()).is_err_and(|e| e.message.contains("not valid JSON")));
        let named = json!({"service": "payments", "version": "1.3.0", "image": "r:1"});
        assert!(start(Some(&bytes(&named)), &dev()).is_err_and(|e| e.name == "ScopeOutsidePath"));
    }

    #[test]
    fn deployment_ids_come_from_the_key_or_the_release() {
        let v = Version::parse("1.3.0").unwrap_or_else(|e| panic!("{e}"));
        let now = time::macros::datetime!(2025-01-03 10:00:05.123 UTC);
        let id = |key: Option<&str>, req: Option<&str>, s: &str, e: &str| {
            new_deployment_id(key, req, s, e, &v, now).map(String::from)
        };
        assert_eq!(
            id(None, None, "checkout", "dev"),
            Ok("checkout-dev-1-3-0-1735898405123".into())
        );
        // the key starts the id; 16 hex of the path's service, environment and key end it
        let keyed = id(Some("ci-run-42"), Some("req-1"), "checkout", "dev")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            keyed,
            format!("ci-run-42-{}", key_digest("checkout", "dev", "ci-run-42"))
        );
        assert_eq!(keyed.len(), "ci-run-42-".len() + 16);
        // two requests in the same millisecond get different ids
        let a = id(None, Some("Jz0uCiKDoAMEXRg="), "checkout", "dev");
        let b = id(None, Some("Jz0uCiKDoAMEXRh="), "checkout", "dev");
        assert!(a.is_ok() && b.is_ok() && a != b, "{a:?} {b:?}");
        assert!(
            a.is_ok_and(|id| id.starts_with("checkout-dev-1-3-0-1735898405123-") && id.len() == 39)
        );
        for bad in ["", "has space", &"x".repeat(81), "a/b", "é"] {
            assert!(
                id(Some(bad), None, "checkout", "dev").is_err_and(|e| e.status == 400),
                "{bad}"
            );
        }
        let long_v = Version::parse("1.2.3-rc.1+build.5").unwrap_or_else(|e| panic!("{e}"));
        let long = new_deployment_id(
            None,
            Some("r"),
            &"s".repeat(64),
            &"e".repeat(64),
            &long_v,
            now,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(DeploymentId::parse(&long).is_ok(), "{long}");
        assert!(long.contains("-1735898405123-"), "{long}");
    }

    #[test]
    fn an_idempotency_key_cannot_reach_another_services_deployment() {
        let v = Version::parse("1.3.0").unwrap_or_else(|e| panic!("{e}"));
        let now = time::macros::datetime!(2025-01-03 10:00:05.123 UTC);
        let id = |key: &str, s: &str, e: &str| {
            new_deployment_id(Some(key), None, s, e, &v, now)
                .map(String::from)
                .unwrap_or_else(|e| panic!("{e:?}"))
        };
        // GIVEN team B's deployment started with key "release-7"
        let theirs = id("release-7", "payments", "prd");
        // WHEN team A sends the same key, or B's id itself, as its key
        let same_key = id("release-7", "checkout", "prd");
        let their_id_as_key = id(&theirs, "checkout", "prd");
        // THEN A lands on ids of its own: never B's id, nor one that B's id starts with
        for ours in [&same_key, &their_id_as_key] {
            assert_ne!(ours, &theirs);
            assert!(
                !theirs.starts_with(ours.as_str()),
                "{ours} prefixes {theirs}"
            );
        }
        // the same key in another environment of the same service is another id too
        assert_ne!(id("release-7", "payments", "dev"), theirs);
        // AND the same key under the same path is the same id: repeats stay idempotent
        assert_eq!(id("release-7", "payments", "prd"), theirs);
        // a long key is cut to 63 characters; the whole key decides the digest
        let k1 = format!("{}a", "k".repeat(70));
        let k2 = format!("{}b", "k".repeat(70));
        let (i1, i2) = (id(&k1, "payments", "prd"), id(&k2, "payments", "prd"));
        assert_ne!(i1, i2);
        assert_eq!(i1.len(), KEY_PREFIX_MAX + 1 + 16);
        assert!(DeploymentId::parse(&i1).is_ok(), "{i1}");
        // the separator between fields cannot be forged by moving text between them
        assert_ne!(key_digest("a", "bc", "k"), key_digest("ab", "c", "k"));
    }

    #[test]
    fn promotion_evidence_and_quarantine_bodies_take_their_scope_from_the_path() {
        let prd = Scope {
            service: "checkout".into(),
            environment: Some("prd".into()),
        };
        let p = promote(Some(br#"{"version": "1.3.0", "from": "tst"}"#), &prd)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (p.service.as_str(), p.from.as_str(), p.to.as_str()),
            ("checkout", "tst", "prd")
        );
        for named in [
            json!({"service": "payments", "version": "1.3.0", "from": "tst"}),
            json!({"to": "dev", "version": "1.3.0", "from": "tst"}),
            json!({"environment": "dev", "version": "1.3.0", "from": "tst"}),
        ] {
            assert!(
                promote(Some(&bytes(&named)), &prd).is_err_and(|e| e.name == "ScopeOutsidePath"),
                "{named}"
            );
        }
        assert!(
            promote(Some(br#"{"version": "1.3.0", "from": "prd"}"#), &prd)
                .is_err_and(|e| e.status == 400 && e.message.contains("from and to"))
        );
        let named = json!({"environment": "dev", "kind": "e2e", "passed": 1, "total": 1});
        assert!(evidence(Some(&bytes(&named)), &prd).is_err_and(|e| e.name == "ScopeOutsidePath"));
        let ok = json!({"kind": "e2e", "passed": 1, "total": 1});
        assert!(evidence(Some(&bytes(&ok)), &prd).is_ok());
        let named = json!({"service": "payments", "reason": "fixed"});
        assert!(
            clear_quarantine(Some(&bytes(&named)), &prd)
                .is_err_and(|e| e.name == "ScopeOutsidePath")
        );
        assert!(clear_quarantine(Some(br#"{"reason": "fixed"}"#), &prd).is_ok());
    }

    #[test]
    fn registry_bodies_take_names_from_the_path() {
        let svc = Scope {
            service: "checkout".into(),
            environment: None,
        };
        let prd = Scope {
            service: "checkout".into(),
            environment: Some("prd".into()),
        };
        let s = service(&svc, Some(br#"{"repository": "team/checkout"}"#), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((s.service.as_str(), s.auto_deploy.len()), ("checkout", 1));
        let err = service(
            &svc,
            Some(br#"{"service": "checkout", "repository": "checkout"}"#),
            None,
        );
        assert!(err.is_err_and(|e| e.message.contains("taken from the path")));
        let err = service(&svc, Some(br#"{"repository": "Bad Repo"}"#), None);
        assert!(err.is_err_and(|e| e.message.contains("repository")));
        let env = environment(&prd, Some(&bytes(&environment_json())), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(env.environment, "prd");
        let mut named = environment_json();
        named["environment"] = json!("dev");
        assert!(
            environment(&prd, Some(&bytes(&named)), None)
                .is_err_and(|e| e.name == "ScopeOutsidePath")
        );
        let mut same_tg = environment_json();
        same_tg["traffic"]["green_target_group_arn"] = json!(sample::BLUE_TG);
        assert!(
            environment(&prd, Some(&bytes(&same_tg)), None)
                .is_err_and(|e| e.message.contains("different target groups"))
        );
    }

    #[test]
    fn queries_are_bounded_and_strict() {
        assert_eq!(
            history(&q(&[]), &dev()),
            Ok(HistoryQuery {
                limit: 20,
                cursor: None
            })
        );
        for bad in [
            q(&[("limit", "0")]),
            q(&[("limit", "101")]),
            q(&[("limit", "ten")]),
            q(&[("page", "2")]),
        ] {
            assert!(
                history(&bad, &dev()).is_err_and(|e| e.status == 400),
                "{bad:?}"
            );
        }
        // the path is the only scope: naming one in the query is refused by name
        for named in [q(&[("environment", "prd")]), q(&[("service", "payments")])] {
            assert!(
                history(&named, &dev()).is_err_and(|e| e.name == "ScopeOutsidePath"),
                "{named:?}"
            );
            assert!(version_query(&named, &dev()).is_err_and(|e| e.name == "ScopeOutsidePath"));
        }
        assert_eq!(version_query(&q(&[]), &dev()), Ok(()));
        assert!(version_query(&q(&[("x", "1")]), &dev()).is_err_and(|e| e.status == 400));
        assert_eq!(metrics_query(&q(&[]), &dev()), Ok((7, None)));
        assert_eq!(
            metrics_query(&q(&[("days", "90"), ("environment", "prd")]), &dev()),
            Ok((90, Some("prd".to_string())))
        );
        for bad in ["0", "91", "-1", "7.5"] {
            assert!(
                metrics_query(&q(&[("days", bad)]), &dev()).is_err(),
                "{bad}"
            );
        }
        assert!(metrics_query(&q(&[("environment", "p r d")]), &dev()).is_err());
        assert!(
            metrics_query(&q(&[("service", "payments")]), &dev())
                .is_err_and(|e| e.name == "ScopeOutsidePath")
        );
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
            start(body, &dev()).map(|_| ()),
            rollback(body).map(|_| ()),
            environment_rollback(body, &dev()).map(|_| ()),
            service(&dev(), body, None).map(|_| ()),
            environment(&dev(), body, None).map(|_| ()),
            promote(body, &dev()).map(|_| ()),
            evidence(body, &dev()).map(|_| ()),
            clear_quarantine(body, &dev()).map(|_| ()),
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
            if let Err(e) = history(&pairs, &dev()) { assert_4xx_json(&e); }
            if let Err(e) = metrics_query(&pairs, &dev()) { assert_4xx_json(&e); }
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
            let key = ["version", "image", "version", "image"][which];
            v[key] = wrong.clone();
            let err = start(Some(&bytes(&v)), &dev()).err();
            prop_assert!(err.as_ref().is_some_and(|e| e.status == 400), "{v}: {err:?}");

            // rollbacks: confirm is a boolean, reason and service strings
            if !wrong.is_boolean() {
                let v = json!({"confirm": wrong.clone()});
                prop_assert!(rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));
                let v = json!({"confirm": wrong.clone()});
                prop_assert!(environment_rollback(Some(&bytes(&v)), &dev()).is_err_and(|e| e.status == 400));
            }
            if !wrong.is_null() {
                let v = json!({"confirm": true, "reason": wrong.clone()});
                prop_assert!(rollback(Some(&bytes(&v))).is_err_and(|e| e.status == 400));
            }
            // a service of any type in the body is refused: the path names it
            let v = json!({"service": wrong.clone(), "confirm": true});
            prop_assert!(environment_rollback(Some(&bytes(&v)), &dev()).is_err_and(|e| e.name == "ScopeOutsidePath"));

            // registry: repository is a string, traffic an object
            let v = json!({"repository": wrong.clone()});
            prop_assert!(service(&dev(), Some(&bytes(&v)), None).is_err_and(|e| e.status == 400));
            let mut v = environment_json();
            v["traffic"] = wrong;
            prop_assert!(environment(&dev(), Some(&bytes(&v)), None).is_err_and(|e| e.status == 400));
        }
    }
}
