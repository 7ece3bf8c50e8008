//! A small Kubernetes API client: JSON over HTTPS to the cluster's endpoint, the server
//! verified against the cluster's own CA (from DescribeCluster), every request carrying an EKS
//! bearer token. It makes only the calls the EKS platform needs (get and patch a Deployment,
//! list pods and events), each one listed in [`CALLS`] for the RBAC manifest's test.

use super::token;
use crate::error::AdapterError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Every (verb, API group, resource) the adapter uses. The namespace's Role must allow exactly
/// these (`deploy/eks/rbac.yaml`, checked by a test).
pub const CALLS: &[(&str, &str, &str)] = &[
    ("get", "apps", "deployments"),
    ("patch", "apps", "deployments"),
    ("list", "", "pods"),
    ("list", "", "events"),
];

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the cluster's API is and which CA signs its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub name: String,
    /// `https://…`, no trailing slash.
    pub endpoint: String,
    /// The CA bundle, PEM.
    pub ca_pem: Vec<u8>,
}

/// Signs EKS tokens with the environment's credentials and keeps one until shortly before it
/// expires.
struct Tokens {
    credentials: SharedCredentialsProvider,
    region: String,
    cluster: String,
    cached: Mutex<Option<(String, SystemTime)>>,
}

impl Tokens {
    async fn get(&self) -> Result<String, AdapterError> {
        let now = SystemTime::now();
        if let Some((t, until)) = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && now < *until
        {
            return Ok(t.clone());
        }
        let creds = self.credentials.provide_credentials().await.map_err(|e| {
            AdapterError::Transient(format!(
                "getting credentials to sign the EKS token for cluster {}: {e}",
                self.cluster
            ))
        })?;
        let t =
            token::token(&creds, &self.region, &self.cluster, now).map_err(AdapterError::Other)?;
        let until = now + token::LIFETIME - token::RENEW_BEFORE;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((t.clone(), until));
        Ok(t)
    }
}

/// A Kubernetes `Status` (the body of every error answer).
#[derive(Debug, Default, serde::Deserialize)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
}

pub struct Kube {
    cluster: String,
    endpoint: String,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    tokens: Tokens,
    user_agent: String,
}

impl Kube {
    /// A client for `cluster`, trusting only its CA.
    pub fn new(
        cluster: &ClusterEndpoint,
        credentials: SharedCredentialsProvider,
        region: &str,
    ) -> Result<Self, AdapterError> {
        let invalid = |why: String| {
            AdapterError::Invalid(format!(
                "EKS cluster {}: its certificate authority {why}",
                cluster.name
            ))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&cluster.ca_pem) {
            let cert = cert.map_err(|e| invalid(format!("is not valid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("cannot be trusted: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("holds no certificate".into()));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| AdapterError::Other(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let user_agent = match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            Ok(f) if !f.is_empty() => format!("bluegreen app/{f}"),
            _ => "bluegreen".to_string(),
        };
        Ok(Self {
            cluster: cluster.name.clone(),
            endpoint: cluster.endpoint.trim_end_matches('/').to_string(),
            http,
            tokens: Tokens {
                credentials,
                region: region.to_string(),
                cluster: cluster.name.clone(),
                cached: Mutex::new(None),
            },
            user_agent,
        })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &Call,
    ) -> Result<T, AdapterError> {
        self.send("GET", path, None, what).await
    }

    /// A strategic merge patch (lists of containers merge by name), with field manager
    /// `bluegreen`.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        what: &Call,
    ) -> Result<T, AdapterError> {
        let path = format!("{path}?fieldManager=bluegreen");
        self.send("PATCH", &path, Some(body), what).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &Call,
    ) -> Result<T, AdapterError> {
        let token = self.tokens.get().await?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json")
            .header("user-agent", &self.user_agent);
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/strategic-merge-patch+json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes)).map_err(|e| {
            AdapterError::Other(format!("{}: building the request: {e}", what.describe()))
        })?;
        let transient = |why: String| {
            AdapterError::Transient(format!(
                "{} in EKS cluster {} ({}): {why}",
                what.describe(),
                self.cluster,
                self.endpoint
            ))
        };
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| transient(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())))?
            .map_err(|e| transient(format!("{e:?}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transient(format!("reading the answer: {e}")))?
            .to_bytes();
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                AdapterError::Other(format!(
                    "{}: the cluster's answer is not what Kubernetes sends: {e}",
                    what.describe()
                ))
            });
        }
        let s: Status = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(error_of(status, &s.reason, &s.message, what, &self.cluster))
    }
}

/// One call, for its error messages and the permission it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub namespace: String,
    pub name: Option<String>,
}

impl Call {
    fn describe(&self) -> String {
        let resource = if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        match &self.name {
            Some(n) => format!("{} {resource} {}/{n}", self.verb, self.namespace),
            None => format!("{} {resource} in namespace {}", self.verb, self.namespace),
        }
    }
}

/// The named error for a non-2xx answer.
fn error_of(status: u16, reason: &str, message: &str, call: &Call, cluster: &str) -> AdapterError {
    let said = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message.to_string()
    };
    match status {
        401 => AdapterError::Forbidden(format!(
            "EKS cluster {cluster} did not accept the controller's identity ({said}): give the role the controller acts with in this environment an EKS access entry in cluster {cluster} (aws eks create-access-entry --cluster-name {cluster} --principal-arn <role ARN> --kubernetes-groups bluegreen-controller), see the README's EKS section"
        )),
        403 => AdapterError::Forbidden(format!(
            "{said}: the controller's Kubernetes Role in namespace {ns} must allow verb {verb} on {resource}{group} (deploy/eks/rbac.yaml), bound to the group of its access entry",
            ns = call.namespace,
            verb = call.verb,
            resource = call.resource,
            group = if call.group.is_empty() {
                String::new()
            } else {
                format!(" in API group {}", call.group)
            },
        )),
        404 => AdapterError::NotFound(format!(
            "{} in EKS cluster {cluster}: {said}",
            call.describe()
        )),
        409 => AdapterError::ConditionFailed(format!("{}: {said}", call.describe())),
        429 => AdapterError::Throttled(format!("{}: {said}", call.describe())),
        500..=599 => AdapterError::Transient(format!("{}: {said}", call.describe())),
        _ => AdapterError::Other(format!("{}: {status} {reason}: {said}", call.describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(verb: &'static str) -> Call {
        Call {
            verb,
            group: "apps",
            resource: "deployments",
            namespace: "infra-agent".into(),
            name: Some("infra-agent-green".into()),
        }
    }

    #[test]
    fn refusals_are_forbidden_and_say_what_is_missing() {
        let e = error_of(
            401,
            "Unauthorized",
            "Unauthorized",
            &call("get"),
            "reference",
        );
        assert!(
            matches!(&e, AdapterError::Forbidden(m) if m.contains("access entry in cluster reference")),
            "{e}"
        );
        let e = error_of(
            403,
            "Forbidden",
            "deployments.apps \"infra-agent-green\" is forbidden: User \"bluegreen\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"infra-agent\"",
            &call("patch"),
            "reference",
        );
        assert!(
            matches!(&e, AdapterError::Forbidden(m) if m.contains("must allow verb patch on deployments in API group apps")),
            "{e}"
        );
    }

    #[test]
    fn other_answers_map_to_their_kinds() {
        assert!(matches!(
            error_of(404, "NotFound", "deployments.apps \"x\" not found", &call("get"), "c"),
            AdapterError::NotFound(m) if m.contains("get deployments.apps infra-agent/infra-agent-green")
        ));
        assert!(matches!(
            error_of(409, "Conflict", "", &call("patch"), "c"),
            AdapterError::ConditionFailed(_)
        ));
        assert!(matches!(
            error_of(429, "TooManyRequests", "", &call("get"), "c"),
            AdapterError::Throttled(_)
        ));
        assert!(matches!(
            error_of(503, "ServiceUnavailable", "", &call("get"), "c"),
            AdapterError::Transient(_)
        ));
        assert!(
            matches!(error_of(422, "Invalid", "bad", &call("patch"), "c"), AdapterError::Other(m) if m.contains("422 Invalid: bad"))
        );
    }

    #[test]
    fn a_ca_that_is_not_pem_is_invalid_before_any_call() {
        let cluster = ClusterEndpoint {
            name: "reference".into(),
            endpoint: "https://127.0.0.1:1".into(),
            ca_pem: b"not a certificate".to_vec(),
        };
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "a", "b", None, None, "test",
        ));
        let e = Kube::new(&cluster, creds, "us-east-1").err();
        assert!(
            matches!(&e, Some(AdapterError::Invalid(m)) if m.contains("holds no certificate")),
            "{e:?}"
        );
    }
}
