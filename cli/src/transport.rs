//! How a request reaches the API: one small trait with three implementations: SigV4-signed
//! HTTPS to API Gateway (`https`), a Lambda Invoke of the `api` function through the local
//! stack's router (`LocalInvoke`), and an in-memory double for tests (`InMemory`).

use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: &'static str,
    /// Starts with `/`, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            query: vec![],
            body: None,
        }
    }
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: "POST",
            path: path.into(),
            query: vec![],
            body: Some(body),
        }
    }
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: "PUT",
            path: path.into(),
            query: vec![],
            body: Some(body),
        }
    }
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }
    /// `environment=prd&limit=5`, each part percent-encoded.
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query_string())
        }
    }
    /// `GET /deployments?environment=prd`, for messages and test assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path_and_query())
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (what SigV4 expects).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Nothing answered at the endpoint (refused, unknown host, timeout).
    Unreachable { endpoint: String, detail: String },
    /// Something answered, but not the way the API does.
    Protocol(String),
    /// The request could not be signed or built.
    Signing(String),
}

pub trait Transport {
    fn send(&self, request: &Request) -> Result<Response, TransportError>;
    /// Where requests go, for messages.
    fn endpoint(&self) -> String;
    /// True for the local stack (a Lambda Invoke, no IAM, no MFA).
    fn is_local(&self) -> bool {
        false
    }
}

/// The body of an HTTP response: JSON, or the text as a JSON string.
pub fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The local stack: API Gateway is not there, so each request becomes the payload-v2 event API
/// Gateway would send, and the `api` function is invoked through the router.
pub struct LocalInvoke {
    pub router: String,
    /// The IAM identity the event carries (`requestContext.authorizer.iam.userArn`).
    pub caller: String,
}

pub const DEFAULT_LOCAL_CALLER: &str = "arn:aws:iam::123456789012:user/local-operator";

/// The API Gateway HTTP API (payload 2.0) event for `request`, as the local stack's driver
/// builds it (`local_stack::api_event`); a test keeps the two the same.
pub fn api_event(request: &Request, caller: &str, now_millis: i128) -> Value {
    let params: serde_json::Map<String, Value> = request
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query_string(),
        "headers": {"content-type": "application/json", "host": "localhost"},
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bluegreen-cli"},
            "requestId": format!("bluegreen-cli-{now_millis}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Jan/2025:10:00:00 +0000",
            "timeEpoch": now_millis,
            "authorizer": {"iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                "principalOrgId": null,
                "userArn": caller,
                "userId": "AIDACKCEVSQ6C2EXAMPLE"
            }}
        },
        "body": request.body.as_ref().map(Value::to_string),
        "isBase64Encoded": false
    })
}

/// The HTTP response inside a Lambda Invoke result: `statusCode` and the JSON `body`.
pub fn unwrap_invoke(payload: &Value, function_error: bool) -> Result<Response, TransportError> {
    if function_error {
        return Err(TransportError::Protocol(format!(
            "the api function failed instead of answering: {payload}"
        )));
    }
    let status = payload["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| {
            TransportError::Protocol(format!(
                "the api function answered without a statusCode: {payload}"
            ))
        })?;
    let body = payload["body"].as_str().map_or(Value::Null, parse_body);
    Ok(Response { status, body })
}

impl Transport for LocalInvoke {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let event = api_event(request, &self.caller, now);
        let url = format!("{}/2015-03-31/functions/api/invocations", self.router);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build()
            .into();
        let mut resp = agent.post(&url).send_json(&event).map_err(|e| match e {
            ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(_) => TransportError::Unreachable {
                endpoint: self.router.clone(),
                detail: e.to_string(),
            },
            other => TransportError::Protocol(other.to_string()),
        })?;
        let status = resp.status().as_u16();
        let failed = resp.headers().contains_key("X-Amz-Function-Error");
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| TransportError::Protocol(format!("reading the invoke result: {e}")))?;
        if status != 200 {
            return Err(TransportError::Protocol(format!(
                "the router answered the invoke with {status}: {text}"
            )));
        }
        unwrap_invoke(&parse_body(&text), failed)
    }
    fn endpoint(&self) -> String {
        self.router.clone()
    }
    fn is_local(&self) -> bool {
        true
    }
}

/// Scripted responses per `METHOD /path`, and every request it was sent. The last response of
/// a route repeats, so a poller sees a deployment that stopped changing.
#[derive(Default)]
pub struct InMemory {
    routes: RefCell<Vec<(String, VecDeque<Response>)>>,
    sent: RefCell<Vec<Request>>,
}

impl InMemory {
    pub fn new() -> Self {
        Self::default()
    }
    /// Answers `line` (`"GET /deployments/d-1"`, query excluded) with `status` and `body`; calling
    /// it again for the same line queues the next answer.
    pub fn on(&self, line: &str, status: u16, body: Value) -> &Self {
        let mut routes = self.routes.borrow_mut();
        let response = Response { status, body };
        match routes.iter_mut().find(|(l, _)| l == line) {
            Some((_, queue)) => queue.push_back(response),
            None => routes.push((line.to_string(), VecDeque::from([response]))),
        }
        self
    }
    pub fn sent(&self) -> Vec<Request> {
        self.sent.borrow().clone()
    }
    pub fn lines(&self) -> Vec<String> {
        self.sent.borrow().iter().map(Request::line).collect()
    }
}

impl Transport for InMemory {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.sent.borrow_mut().push(request.clone());
        let key = format!("{} {}", request.method, request.path);
        let mut routes = self.routes.borrow_mut();
        let Some((_, queue)) = routes.iter_mut().find(|(l, _)| *l == key) else {
            return Ok(Response {
                status: 404,
                body: json!({"error": "NotFound", "message": format!("no such route in the test: {key}")}),
            });
        };
        let response = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        response.ok_or_else(|| TransportError::Protocol(format!("no response scripted for {key}")))
    }
    fn endpoint(&self) -> String {
        "memory://api".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        let r = Request::get("/deployments")
            .query("environment", "prd")
            .query("cursor", "a b/c=");
        assert_eq!(
            r.path_and_query(),
            "/deployments?environment=prd&cursor=a%20b%2Fc%3D"
        );
    }

    #[test]
    fn invoke_results_unwrap_to_status_and_json() {
        let payload =
            json!({"statusCode": 409, "body": "{\"error\":\"Conflict\",\"message\":\"m\"}"});
        assert_eq!(
            unwrap_invoke(&payload, false),
            Ok(Response {
                status: 409,
                body: json!({"error": "Conflict", "message": "m"})
            })
        );
        assert!(matches!(
            unwrap_invoke(&json!({"errorType": "Panic"}), true),
            Err(TransportError::Protocol(m)) if m.contains("failed instead of answering")
        ));
        assert!(matches!(
            unwrap_invoke(&json!({"body": "{}"}), false),
            Err(TransportError::Protocol(m)) if m.contains("without a statusCode")
        ));
    }

    #[test]
    fn the_event_matches_the_local_stack_driver() {
        let request = Request::post("/deployments", json!({"service": "checkout"}));
        let caller = DEFAULT_LOCAL_CALLER;
        let mut ours = api_event(&request.clone().query("environment", "prd"), caller, 1);
        let mut theirs = local_stack::api_event(
            "POST",
            "/deployments?environment=prd",
            request.body.as_ref(),
            caller,
        );
        for e in [&mut ours, &mut theirs] {
            let ctx = &mut e["requestContext"];
            ctx["requestId"] = Value::Null;
            ctx["timeEpoch"] = Value::Null;
            ctx["http"]["userAgent"] = Value::Null;
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_local_stack_that_is_not_running_is_unreachable() {
        // Port 1 (tcpmux) is not served on a development machine: the connection is refused.
        let local = LocalInvoke {
            router: "http://127.0.0.1:1".into(),
            caller: DEFAULT_LOCAL_CALLER.into(),
        };
        let e = local.send(&Request::get("/metrics"));
        assert!(
            matches!(e, Err(TransportError::Unreachable { .. })),
            "{e:?}"
        );
        let advice = e
            .err()
            .map(|e| crate::app::transport_error(&local, e).message);
        assert!(advice.is_some_and(|m| m.ends_with("start the local stack: make stack-up")));
    }

    #[test]
    fn in_memory_replays_the_last_answer_and_records_requests() {
        let api = InMemory::new();
        api.on("GET /x", 200, json!(1)).on("GET /x", 200, json!(2));
        let get = Request::get("/x").query("a", 1);
        let bodies: Vec<Value> = (0..3)
            .map(|_| api.send(&get).map(|r| r.body).unwrap_or_default())
            .collect();
        assert_eq!(bodies, vec![json!(1), json!(2), json!(2)]);
        assert_eq!(api.lines(), vec!["GET /x?a=1"; 3]);
        assert_eq!(api.send(&Request::get("/y")).map(|r| r.status), Ok(404));
    }
}
