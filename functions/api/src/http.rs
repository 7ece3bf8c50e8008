//! The HTTP edge: the API's named errors and their statuses, JSON responses, and what a request
//! carries (path without the stage, caller identity, query, a size-limited decoded body).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderValue, header};
use serde_json::{Value, json};
use shared::error::{AdapterError, PhaseError};

/// Request bodies above this are refused with 413 (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every error the API returns: a stable name, a status, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub name: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (503).
    pub retry_after: Option<u32>,
    /// The methods the path accepts (405).
    pub allow: Vec<&'static str>,
    /// More fields of the error body (a refused promotion's checklist).
    pub fields: Vec<(&'static str, Value)>,
}

impl ApiError {
    fn new(status: u16, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name,
            message: message.into(),
            retry_after: None,
            allow: vec![],
            fields: vec![],
        }
    }

    pub fn with(mut self, field: &'static str, value: Value) -> Self {
        self.fields.push((field, value));
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequest", message)
    }
    /// A body or query naming a service or environment: the path is the only source of both.
    pub fn scope_outside_path(message: impl Into<String>) -> Self {
        Self::new(400, "ScopeOutsidePath", message)
    }
    /// A destructive request sent without `"confirm": true`: the message says what it would do.
    pub fn confirmation_required(message: impl Into<String>) -> Self {
        Self::new(400, "ConfirmationRequired", message)
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            "Unauthenticated",
            "the request carries no IAM identity (requestContext.authorizer.iam): call the API with SigV4-signed requests; the route must use IAM authorization",
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }
    pub fn method_not_allowed(method: &str, path: &str, allow: Vec<&'static str>) -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            format!("{path} does not accept {method}; use {}", allow.join(", ")),
        );
        e.allow = allow;
        e
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }
    /// Allowed by IAM, refused by the product's rules (e.g. approving one's own deployment).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    /// The caller is not listed in the service's `evidence_recorders` for this kind.
    pub fn recorder_not_allowed(message: impl Into<String>) -> Self {
        Self::new(403, "RecorderNotAllowed", message)
    }
    /// A CI role's session that does not name the person who triggered the run.
    pub fn ci_actor_unknown(message: impl Into<String>) -> Self {
        Self::new(403, "CiActorUnknown", message)
    }
    /// The person deciding an approval triggered the deployment (through CI).
    pub fn approver_started_it(message: impl Into<String>) -> Self {
        Self::new(403, "ApproverStartedIt", message)
    }
    /// The environment's protection refuses the request (deploy only through promotion).
    pub fn protected(message: impl Into<String>) -> Self {
        Self::new(403, "ProtectedEnvironment", message)
    }
    /// A team's registry write that would change what only an administrator governs.
    pub fn admin_required(message: impl Into<String>) -> Self {
        Self::new(403, "AdminRequired", message)
    }
    /// A promotion whose gates did not all pass; the checklist goes with it.
    pub fn promotion_refused(message: impl Into<String>) -> Self {
        Self::new(412, "PromotionRefused", message)
    }
    pub fn too_large(bytes: usize) -> Self {
        Self::new(
            413,
            "PayloadTooLarge",
            format!(
                "the request body is {bytes} bytes; the limit is {MAX_BODY_BYTES} bytes (64 KiB)"
            ),
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "Internal", message)
    }
    fn aws(message: impl std::fmt::Display) -> Self {
        Self::new(
            502,
            "AwsError",
            format!("{message}; nothing further was changed: retry the request in a few seconds"),
        )
    }
    fn throttled(message: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            503,
            "Throttled",
            format!("AWS is throttling the controller ({message}); retry after a second or two"),
        );
        e.retry_after = Some(2);
        e
    }

    pub fn response(&self) -> ApiGatewayV2httpResponse {
        let mut body = json!({"error": self.name, "message": self.message});
        for (k, v) in &self.fields {
            body[*k] = v.clone();
        }
        let mut r = json_response(self.status, &body);
        if let Some(s) = self.retry_after {
            r.headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if !self.allow.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.allow.join(", "))
        {
            r.headers.insert(header::ALLOW, v);
        }
        r
    }
}

impl From<AdapterError> for ApiError {
    fn from(e: AdapterError) -> Self {
        match &e {
            AdapterError::Throttled(m) => ApiError::throttled(m),
            AdapterError::ConditionFailed(m) => ApiError::conflict(format!(
                "the deployment changed while this request ran ({m}); read it again and retry"
            )),
            _ => ApiError::aws(e),
        }
    }
}

impl From<PhaseError> for ApiError {
    fn from(e: PhaseError) -> Self {
        match e {
            PhaseError::Conflict(m) => ApiError::conflict(format!(
                "the deployment changed while this request ran ({m}); read it again and retry"
            )),
            PhaseError::Throttled(m) => ApiError::throttled(m),
            PhaseError::InvalidInput(m) => {
                ApiError::internal(format!("the stored deployment is not usable: {m}"))
            }
            other => ApiError::aws(other),
        }
    }
}

/// A successful reply before it becomes a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            location: None,
        }
    }
    pub fn response(&self) -> ApiGatewayV2httpResponse {
        let mut r = json_response(self.status, &self.body);
        if let Some(l) = &self.location
            && let Ok(v) = HeaderValue::from_str(l)
        {
            r.headers.insert(header::LOCATION, v);
        }
        r
    }
}

pub fn json_response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = i64::from(status);
    r.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.body = Some(Body::Text(body.to_string()));
    r
}

/// The path the routes see: `rawPath` without a named stage's prefix (`/v1/deployments` on
/// stage `v1` is `/deployments`), and that prefix, for links back into the API.
pub fn path_and_base(req: &ApiGatewayV2httpRequest) -> (String, String) {
    let raw = req
        .raw_path
        .clone()
        .or_else(|| req.request_context.http.path.clone())
        .unwrap_or_else(|| "/".to_string());
    if let Some(stage) = req
        .request_context
        .stage
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "$default")
    {
        let prefix = format!("/{stage}");
        if let Some(rest) = raw.strip_prefix(&prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            let path = if rest.is_empty() { "/" } else { rest };
            return (path.to_string(), prefix);
        }
    }
    (raw, String::new())
}

/// The caller's IAM identity: its ARN, or its caller id when API Gateway gives no ARN.
pub fn caller(req: &ApiGatewayV2httpRequest) -> Result<String, ApiError> {
    let iam = req
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .ok_or_else(ApiError::unauthenticated)?;
    iam.user_arn
        .as_deref()
        .or(iam.caller_id.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(256).collect())
        .ok_or_else(ApiError::unauthenticated)
}

/// The body as bytes: base64 decoded when API Gateway encoded it; `None` when empty.
pub fn body_bytes(body: Option<&str>, base64: bool) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(text) = body.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let bytes = if base64 {
        // Decoded size is about 3/4 of the text: refuse what cannot fit before decoding.
        if text.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
            return Err(ApiError::too_large(text.len() / 4 * 3));
        }
        aws_smithy_types::base64::decode(text.trim()).map_err(|_| {
            ApiError::invalid("the body is marked base64-encoded but is not valid base64")
        })?
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(bytes.len()));
    }
    Ok((!bytes.is_empty()).then_some(bytes))
}

/// The first value of a header, if it is text.
pub fn header_value(req: &ApiGatewayV2httpRequest, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The query parameters, in order. A parameter given with no value at all reads as one empty
/// value, so the route's own checks name it.
pub fn query_pairs(req: &ApiGatewayV2httpRequest) -> Vec<(String, String)> {
    // Not `QueryMap::iter`: it indexes past the end of a key's empty value list (an event with
    // `"queryStringParameters": {"days": []}` panicked the function; found by fuzz/). Its serde
    // form is the plain map of key to values.
    let Ok(Value::Object(params)) = serde_json::to_value(&req.query_string_parameters) else {
        return Vec::new();
    };
    params
        .into_iter()
        .flat_map(|(k, values)| {
            let values: Vec<String> = match values {
                Value::Array(vs) => vs
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            let values = if values.is_empty() {
                vec![String::new()]
            } else {
                values
            };
            values.into_iter().map(move |v| (k.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_query(params: Value) -> ApiGatewayV2httpRequest {
        let mut req = ApiGatewayV2httpRequest::default();
        if !params.is_null() {
            req.query_string_parameters =
                serde_json::from_value(params).unwrap_or_else(|e| panic!("{e}"));
        }
        req
    }

    #[test]
    fn query_parameters_with_no_values_read_as_empty_instead_of_panicking() {
        // GIVEN a parameter whose value list is empty (a fuzz/ finding: this panicked)
        let req = with_query(json!({"days": []}));
        // THEN it reads as one empty value, which the route's checks refuse by name
        assert_eq!(query_pairs(&req), vec![("days".into(), String::new())]);
        let mut pairs = query_pairs(&with_query(json!({"days": "7", "env": ["dev", "tst"]})));
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("days".into(), "7".into()),
                ("env".into(), "dev".into()),
                ("env".into(), "tst".into())
            ]
        );
        assert!(query_pairs(&with_query(Value::Null)).is_empty());
    }

    #[test]
    fn base64_bodies_are_decoded_and_sizes_limited() {
        assert_eq!(body_bytes(None, false), Ok(None));
        assert_eq!(body_bytes(Some(""), true), Ok(None));
        assert_eq!(
            body_bytes(Some("eyJhIjoxfQ=="), true),
            Ok(Some(br#"{"a":1}"#.to_vec()))
        );
        assert_eq!(
            body_bytes(Some("not base64!"), true).map_err(|e| e.status),
            Err(400)
        );
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(
            body_bytes(Some(&big), false).map_err(|e| e.status),
            Err(413)
        );
        let big64 = "QUFB".repeat(MAX_BODY_BYTES / 3 + 2);
        assert_eq!(
            body_bytes(Some(&big64), true).map_err(|e| e.status),
            Err(413)
        );
        let fits = "x".repeat(MAX_BODY_BYTES);
        assert!(body_bytes(Some(&fits), false).is_ok());
    }

    #[test]
    fn aws_errors_are_502_with_a_retry_hint_and_throttling_503() {
        let e = ApiError::from(AdapterError::Throttled(
            "Query: ProvisionedThroughputExceededException: slow down".into(),
        ));
        assert_eq!(
            (e.status, e.name, e.retry_after),
            (503, "Throttled", Some(2))
        );
        let e = ApiError::from(PhaseError::from(AdapterError::Throttled(
            "UpdateItem: ThrottlingException: rate exceeded".into(),
        )));
        assert_eq!((e.status, e.name), (503, "Throttled"));
        // unavailability is not throttling, whatever its message says
        let e = ApiError::from(AdapterError::Transient(
            "Query: InternalServerError: not Throttling".into(),
        ));
        assert_eq!((e.status, e.name), (502, "AwsError"));
        assert!(e.message.contains("retry"));
        let e = ApiError::from(AdapterError::Other("StartExecution: AccessDenied".into()));
        assert_eq!((e.status, e.name), (502, "AwsError"));
        assert!(e.message.contains("retry"));
        let e = ApiError::from(PhaseError::Conflict("phase moved".into()));
        assert_eq!(e.status, 409);
    }
}
