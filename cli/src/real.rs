//! The real session and terminal: credentials from the standard AWS chain, MFA session
//! credentials from STS GetSessionToken, prompts with dialoguer.

use crate::app::{Prompter, Session};
use crate::config::Target;
use crate::error::CliError;
use crate::https::{SignedHttps, region_of};
use crate::transport::{LocalInvoke, Transport};
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::Arc;

/// How long MFA session credentials last: one command's worth.
const MFA_SESSION_SECONDS: i32 = 900;

pub enum RealSession {
    Local(Rc<LocalInvoke>),
    Aws {
        api: Rc<SignedHttps>,
        sdk: Box<aws_config::SdkConfig>,
        runtime: Arc<tokio::runtime::Runtime>,
    },
}

impl RealSession {
    pub fn connect(target: Target, region: Option<String>) -> Result<Self, CliError> {
        let endpoint = match target {
            Target::Local { router, caller } => {
                return Ok(Self::Local(Rc::new(LocalInvoke { router, caller })));
            }
            Target::Aws { endpoint } => endpoint,
        };
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::refused(format!("starting the async runtime: {e}")))?,
        );
        let region = region.or_else(|| region_of(&endpoint));
        // The platform's store: an operator's network may intercept TLS, and the API may sit
        // behind a custom domain; start-up time does not matter here.
        let http = shared::adapters::http::https_client(shared::adapters::http::Roots::Native)
            .map_err(CliError::refused)?;
        let sdk = runtime.block_on(async {
            let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
            if let Some(r) = &region {
                loader = loader.region(aws_config::Region::new(r.clone()));
            }
            loader.load().await
        });
        let region = sdk.region().map(ToString::to_string).ok_or_else(|| {
            CliError::usage("no AWS region: pass --region, or set AWS_REGION / a profile region")
        })?;
        let provider = sdk.credentials_provider().ok_or_else(|| {
            CliError::usage("no AWS credentials provider: configure credentials (aws configure, AWS_PROFILE, SSO)")
        })?;
        let credentials = runtime
            .block_on(provider.provide_credentials())
            .map_err(|e| {
                CliError::usage(format!(
                    "no AWS credentials ({e}): sign in (aws sso login, AWS_PROFILE, AWS_ACCESS_KEY_ID) and retry"
                ))
            })?;
        Ok(Self::Aws {
            api: Rc::new(SignedHttps {
                endpoint,
                region,
                credentials,
                runtime: runtime.clone(),
            }),
            sdk: Box::new(sdk),
            runtime,
        })
    }
}

impl Session for RealSession {
    fn api(&self) -> Rc<dyn Transport> {
        match self {
            Self::Local(l) => l.clone(),
            Self::Aws { api, .. } => api.clone(),
        }
    }

    fn with_mfa(&self, serial: &str, code: &str) -> Result<Rc<dyn Transport>, CliError> {
        let Self::Aws { api, sdk, runtime } = self else {
            return Ok(self.api());
        };
        let sts = aws_sdk_sts::Client::new(sdk);
        let out = runtime
            .block_on(
                sts.get_session_token()
                    .serial_number(serial)
                    .token_code(code)
                    .duration_seconds(MFA_SESSION_SECONDS)
                    .send(),
            )
            .map_err(|e| {
                CliError::refused(format!(
                    "STS GetSessionToken with {serial} failed ({}): check the code (it changes every 30 s) and that the serial is your MFA device",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ))
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| CliError::refused("STS GetSessionToken returned no credentials"))?;
        Ok(Rc::new(SignedHttps {
            endpoint: api.endpoint.clone(),
            region: api.region.clone(),
            credentials: Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "mfa-session",
            ),
            runtime: runtime.clone(),
        }))
    }
}

pub struct Terminal;

impl Prompter for Terminal {
    fn stdin_is_terminal(&self) -> bool {
        std::io::stdin().is_terminal()
    }
    fn confirm(&self, question: &str) -> Result<bool, CliError> {
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| CliError::usage(format!("reading the answer: {e}")))
    }
    fn totp(&self, serial: &str) -> Result<String, CliError> {
        dialoguer::Password::new()
            .with_prompt(format!("Enter TOTP code for {serial}"))
            .interact()
            .map_err(|e| CliError::usage(format!("reading the MFA code: {e}")))
    }
}
