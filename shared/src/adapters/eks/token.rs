//! The bearer token EKS accepts, made the way `aws eks get-token` makes it: a presigned STS
//! `GetCallerIdentity` URL whose signature covers the header `x-k8s-aws-id: <cluster>`, valid
//! for 60 seconds, base64url-encoded without padding behind `k8s-aws-v1.`. The cluster's
//! authenticator calls STS with it and maps the caller's role to a Kubernetes identity through
//! the cluster's access entries.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use std::time::{Duration, SystemTime};

/// The prefix of every EKS bearer token.
pub const PREFIX: &str = "k8s-aws-v1.";
/// The header naming the cluster the token is for; the signature covers it.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (the authenticator refuses longer).
pub const LIFETIME: Duration = Duration::from_secs(60);
/// Renew a cached token this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(15);

/// The STS endpoint of a region (the regional one: the authenticator accepts it, and it
/// keeps the call inside the region).
pub fn sts_endpoint(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/")
}

/// A token for `cluster`, signed with `credentials` at `at`.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    at: SystemTime,
) -> Result<String, String> {
    let url = format!(
        "{}?Action=GetCallerIdentity&Version=2011-06-15",
        sts_endpoint(region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing the EKS token: {e}"))?
        .into();
    let host = format!("sts.{region}.amazonaws.com");
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("signing the EKS token: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("signing the EKS token: {e}"))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| format!("signing the EKS token: {e}"))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(token: &str) -> String {
        let body = token
            .strip_prefix(PREFIX)
            .unwrap_or_else(|| panic!("{token} lacks the prefix"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap_or_else(|e| panic!("not base64url without padding: {e}"));
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("not UTF-8: {e}"))
    }

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_string),
            None,
            "test",
        )
    }

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_for_the_cluster_valid_60_seconds() {
        // 2025-01-03T10:00:00Z
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_898_400);
        let t = token(&creds(Some("SESSION")), "eu-west-1", "reference", at)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.contains('='), "no padding: {t}");
        let url = decoded(&t);
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20250103%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20250103T100000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=SESSION",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
    }

    #[test]
    fn the_signature_covers_the_cluster_name() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_898_400);
        let signature = |cluster: &str| {
            let url = decoded(
                &token(&creds(None), "us-east-1", cluster, at).unwrap_or_else(|e| panic!("{e}")),
            );
            url.split("X-Amz-Signature=")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(signature("a").len(), 64);
        assert_ne!(signature("a"), signature("b"));
        assert_eq!(
            signature("a"),
            signature("a"),
            "deterministic for a fixed time"
        );
    }
}
