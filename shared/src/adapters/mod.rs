//! One module per AWS service, mapping SDK types to domain types and SDK errors to
//! `AdapterError`.

pub mod access;
pub mod cloudwatch;
pub mod dynamodb;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod http;
pub mod registry;
pub mod sfn;

use crate::error::AdapterError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS services use for throttling and transient server trouble.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "LimitExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
    "TransactionInProgressException",
];

/// Maps any SDK error: transport trouble and throttling are transient, `not_found` codes map
/// to `NotFound`, everything else is `Other` with the service's code and message.
pub(crate) fn map_sdk_error<E, R>(op: &str, err: SdkError<E, R>, not_found: &[&str]) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            AdapterError::Transient(format!(
                "{op}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ))
        }
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = format!("{op}: {code}: {}", e.message().unwrap_or_default());
            if TRANSIENT_CODES.contains(&code) {
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

/// Loads the shared AWS configuration once at cold start, with the HTTPS client of
/// [`http::https_client`] (trust store chosen by `BLUEGREEN_TLS_ROOTS`). No network call is
/// made here: credentials and region come from the Lambda environment when first needed.
pub async fn load_aws_config() -> Result<aws_config::SdkConfig, String> {
    let roots = http::Roots::from_env_value(std::env::var(http::ROOTS_VARIABLE).ok().as_deref())?;
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http::https_client(roots)?)
        .load()
        .await)
}
