//! The API in AWS: HTTPS to API Gateway, every request signed with SigV4 for `execute-api` with
//! the caller's credentials (the standard chain, or MFA session credentials).

use crate::transport::{Request, Response, Transport, TransportError, parse_body};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub const SERVICE: &str = "execute-api";

/// The headers to send with `request` to `endpoint` (no trailing `/`): `host`, `content-type`
/// for a body, and the SigV4 ones (`x-amz-date`, `x-amz-security-token`, `authorization`).
pub fn signed_headers(
    endpoint: &str,
    request: &Request,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    at: SystemTime,
) -> Result<Vec<(String, String)>, TransportError> {
    let url = format!("{endpoint}{}", request.path_and_query());
    let uri: http::Uri = url
        .parse()
        .map_err(|e| TransportError::Signing(format!("{url} is not a valid URL: {e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| TransportError::Signing(format!("{url} has no host")))?;
    let mut headers = vec![("host".to_string(), host)];
    if request.body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| TransportError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| TransportError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| TransportError::Signing(e.to_string()))?
        .into_parts();
    let (added, _) = instructions.into_parts();
    headers.extend(
        added
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string())),
    );
    Ok(headers)
}

/// `us-east-1` from `https://abc123.execute-api.us-east-1.amazonaws.com[/stage]`.
pub fn region_of(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    parts.next()?;
    (parts.next()? == SERVICE)
        .then(|| parts.next().map(str::to_string))
        .flatten()
}

pub struct SignedHttps {
    pub endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    pub runtime: Arc<tokio::runtime::Runtime>,
}

impl SignedHttps {
    async fn call(&self, request: &Request) -> Result<Response, TransportError> {
        let body = request
            .body
            .as_ref()
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default();
        let headers = signed_headers(
            &self.endpoint,
            request,
            &body,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        )?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| {
                TransportError::Signing(format!("loading the system's root certificates: {e}"))
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        let mut builder = http::Request::builder().method(request.method).uri(format!(
            "{}{}",
            self.endpoint,
            request.path_and_query()
        ));
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let req = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Signing(e.to_string()))?;
        let unreachable = |detail: String| TransportError::Unreachable {
            endpoint: self.endpoint.clone(),
            detail,
        };
        let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
            .await
            .map_err(|_| unreachable("no answer within 60 s".into()))?
            .map_err(|e| unreachable(format!("{e:?}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Protocol(format!("reading the response: {e}")))?
            .to_bytes();
        Ok(Response {
            status,
            body: parse_body(&String::from_utf8_lossy(&bytes)),
        })
    }
}

impl Transport for SignedHttps {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.runtime.block_on(self.call(request))
    }
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed() -> (Credentials, SystemTime) {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        // 2025-01-03T10:00:00Z
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_898_400);
        (creds, at)
    }

    /// The pinned signatures were checked against an independent SigV4 computation (Python
    /// hashlib/hmac over the same canonical request) when they were recorded.
    #[test]
    fn a_fixed_request_signs_to_a_fixed_signature_for_execute_api() {
        let (creds, at) = fixed();
        let request = Request::post(
            "/deployments",
            json!({"service": "checkout", "environment": "prd", "version": "1.3.0", "image": "checkout:1.3.0"}),
        );
        // The exact bytes, not `request.body.to_string()`: serde_json's key order depends on
        // features other crates in the workspace enable, and the signature covers the bytes.
        let body = r#"{"environment":"prd","image":"checkout:1.3.0","service":"checkout","version":"1.3.0"}"#;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).ok(),
            request.body.clone()
        );
        let headers = signed_headers(
            "https://abc123.execute-api.eu-west-1.amazonaws.com",
            &request,
            body.as_bytes(),
            &creds,
            "eu-west-1",
            at,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        assert_eq!(get("x-amz-date"), "20250103T100000Z");
        assert_eq!(get("host"), "abc123.execute-api.eu-west-1.amazonaws.com");
        insta::assert_snapshot!(get("authorization"));
        assert!(get("authorization").starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250103/eu-west-1/execute-api/aws4_request"
        ));
    }

    #[test]
    fn session_credentials_add_the_token_and_queries_are_signed() {
        let (_, at) = fixed();
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("TOKEN".into()), None, "mfa");
        let request = Request::get("/deployments")
            .query("environment", "prd")
            .query("limit", 5);
        let headers = signed_headers(
            "https://abc123.execute-api.us-east-1.amazonaws.com",
            &request,
            b"",
            &creds,
            "us-east-1",
            at,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(headers.contains(&("x-amz-security-token".into(), "TOKEN".into())));
        let auth = headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        insta::assert_snapshot!(auth);
    }

    #[test]
    fn the_region_comes_from_an_execute_api_host() {
        assert_eq!(
            region_of("https://abc123.execute-api.us-east-1.amazonaws.com/v1"),
            Some("us-east-1".into())
        );
        assert_eq!(region_of("https://api.example.com"), None);
        assert_eq!(region_of("not a url"), None);
    }
}
