//! One module per AWS service, mapping SDK types to domain types and SDK errors to
//! `AdapterError`.
//!
//! Each adapter is built only with the cargo feature of its name (shared/Cargo.toml), so a
//! function links the AWS clients of the adapters it calls and no others. `http`, the HTTPS
//! client every SDK shares, is always built.

#[cfg(feature = "access")]
pub mod access;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "ecr")]
pub mod ecr;
#[cfg(feature = "ecs")]
pub mod ecs;
#[cfg(feature = "eks")]
pub mod eks;
#[cfg(feature = "elbv2")]
pub mod elbv2;
pub mod http;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "sfn")]
pub mod sfn;

#[cfg(any(
    feature = "cloudwatch",
    feature = "dynamodb",
    feature = "ecr",
    feature = "ecs",
    feature = "eks",
    feature = "elbv2",
    feature = "sfn",
))]
pub(crate) use sdk_errors::map_sdk_error;

/// The mapping of SDK errors every AWS adapter shares (built when any of them is).
#[cfg(any(
    feature = "cloudwatch",
    feature = "dynamodb",
    feature = "ecr",
    feature = "ecs",
    feature = "eks",
    feature = "elbv2",
    feature = "sfn",
))]
mod sdk_errors {
    use crate::error::AdapterError;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;

    /// Error codes AWS services use for throttling and transient server trouble.
    const THROTTLING_CODES: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "LimitExceededException",
    ];

    const TRANSIENT_CODES: &[&str] = &[
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "TransactionInProgressException",
    ];

    /// Maps any SDK error: throttling is `Throttled`, transport trouble and unavailability are
    /// `Transient`, `not_found` codes map
    /// to `NotFound`, everything else is `Other` with the service's code and message.
    pub(crate) fn map_sdk_error<E, R>(
        op: &str,
        err: SdkError<E, R>,
        not_found: &[&str],
    ) -> AdapterError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => AdapterError::Transient(format!(
                "{op}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )),
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown");
                let msg = format!("{op}: {code}: {}", e.message().unwrap_or_default());
                if THROTTLING_CODES.contains(&code) {
                    AdapterError::Throttled(msg)
                } else if TRANSIENT_CODES.contains(&code) {
                    AdapterError::Transient(msg)
                } else if not_found.contains(&code) {
                    AdapterError::NotFound(msg)
                } else {
                    AdapterError::Other(msg)
                }
            }
            _ => AdapterError::Other(format!(
                "{op}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )),
        }
    }
}

/// Loads the shared AWS configuration once at cold start, with the HTTPS client of
/// [`http::https_client`] (trust store chosen by `BLUEGREEN_TLS_ROOTS`). No network call is
/// made here: credentials and region come from the Lambda environment when first needed.
///
/// Every call's user agent names the function that makes it (`app/<function name>`), so
/// CloudTrail shows which of the controller's functions acted, and the local stack checks
/// each call against that function's role. `AWS_SDK_UA_APP_ID`, when set, wins.
pub async fn load_aws_config() -> Result<aws_config::SdkConfig, String> {
    let roots = http::Roots::from_env_value(std::env::var(http::ROOTS_VARIABLE).ok().as_deref())?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http::https_client(roots)?);
    if let Some(app) = app_name(
        std::env::var("AWS_SDK_UA_APP_ID").ok().as_deref(),
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().as_deref(),
    ) {
        loader = loader.app_name(app);
    }
    Ok(loader.load().await)
}

/// The app name for the user agent: none when `AWS_SDK_UA_APP_ID` is set (the SDK reads it
/// itself), else the Lambda function's name when it is one the user agent can carry.
fn app_name(configured: Option<&str>, function: Option<&str>) -> Option<aws_config::AppName> {
    if configured.is_some_and(|v| !v.is_empty()) {
        return None;
    }
    aws_config::AppName::new(function?.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::app_name;

    #[test]
    fn calls_name_the_function_that_makes_them_unless_an_app_id_is_configured() {
        let named = app_name(None, Some("bluegreen-deploy-green")).map(|a| a.to_string());
        assert_eq!(named.as_deref(), Some("bluegreen-deploy-green"));
        assert!(app_name(Some("team-app"), Some("bluegreen-deploy-green")).is_none());
        let empty_configured = app_name(Some(""), Some("evaluate")).map(|a| a.to_string());
        assert_eq!(empty_configured.as_deref(), Some("evaluate"));
        assert!(app_name(None, None).is_none());
        // a name the user agent cannot carry is left out rather than failing the cold start
        assert!(app_name(None, Some("has space")).is_none());
    }
}
