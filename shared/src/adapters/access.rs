//! Reaching an environment's account: the controller's own AWS config, or one that assumes the
//! environment's role (STS AssumeRole, credentials cached and refreshed by the SDK). Configs
//! are built once per role, service, environment and deployment and reused across invocations.
//!
//! A role session carries the session tags `bluegreen:service` and `bluegreen:environment`
//! (the registry key it acts for) and is named after the deployment, so the environment
//! account's trust policy (environment-account.yaml) admits the controller only for its own
//! service and environment, and CloudTrail there shows which deployment acted.

use crate::domain::Platform;
use crate::error::AdapterError;
use crate::ports::{
    ComputePlatform, EnvironmentAccess, HealthSignals, Reach, TargetHealth, TrafficRouter,
};
use async_trait::async_trait;
use aws_config::SdkConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The session tag naming the service a role session acts for.
pub const SERVICE_TAG: &str = "bluegreen:service";
/// The session tag naming the environment a role session acts for.
pub const ENVIRONMENT_TAG: &str = "bluegreen:environment";

/// Role sessions kept per Lambda instance (each deployment names its own).
const MAX_CACHED_SESSIONS: usize = 64;

pub struct AwsAccess {
    base: SdkConfig,
    by_reach: Mutex<HashMap<(String, String, String, String), SdkConfig>>,
}

/// The role session's name: `bluegreen-<deployment>`, within STS's 2-64 characters of
/// `[\w+=,.@-]` (other characters become `-`).
pub fn session_name(on_behalf_of: &str) -> String {
    format!("bluegreen-{on_behalf_of}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// The session tags: the registry key the session acts for.
pub fn session_tags(reach: &Reach) -> [(&'static str, String); 2] {
    [
        (SERVICE_TAG, reach.service.clone()),
        (ENVIRONMENT_TAG, reach.environment.clone()),
    ]
}

impl AwsAccess {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            base,
            by_reach: Mutex::new(HashMap::new()),
        }
    }

    /// The config that acts in the role's account, tagged for the reach's service and
    /// environment (or the controller's own without a role).
    pub async fn config(&self, reach: &Reach) -> SdkConfig {
        let Some(role) = reach.role_arn.as_deref() else {
            return self.base.clone();
        };
        let key = (
            role.to_string(),
            reach.service.clone(),
            reach.environment.clone(),
            reach.on_behalf_of.clone(),
        );
        if let Some(c) = self
            .by_reach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return c.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(session_name(&reach.on_behalf_of))
            .tags(session_tags(reach))
            .configure(&self.base)
            .build()
            .await;
        let config = self
            .base
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        let mut cached = self.by_reach.lock().unwrap_or_else(|p| p.into_inner());
        // One entry per deployment an instance has served: start afresh rather than grow.
        if cached.len() >= MAX_CACHED_SESSIONS {
            cached.clear();
        }
        cached.insert(key, config.clone());
        config
    }
}

/// The error of a port this function was built without: the environment may well be right, but
/// this binary does not link the adapter (shared/Cargo.toml, one feature per adapter).
pub fn not_built(what: &str, feature: &str) -> AdapterError {
    AdapterError::Other(format!(
        "this function was built without {what} (cargo feature `{feature}` of the shared crate)"
    ))
}

impl AwsAccess {
    /// The ALB client of the reach's account: it both re-weights listeners and reads target
    /// health.
    #[cfg(feature = "elbv2")]
    async fn alb(&self, reach: &Reach) -> Arc<super::elbv2::AlbRouter> {
        let c = self.config(reach).await;
        Arc::new(super::elbv2::AlbRouter::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&c),
        ))
    }
}

#[async_trait]
impl EnvironmentAccess for AwsAccess {
    async fn router(&self, reach: &Reach) -> Result<Arc<dyn TrafficRouter>, AdapterError> {
        #[cfg(feature = "elbv2")]
        {
            Ok(self.alb(reach).await)
        }
        #[cfg(not(feature = "elbv2"))]
        {
            let _ = reach;
            Err(not_built("the ALB traffic router", "elbv2"))
        }
    }
    async fn targets(&self, reach: &Reach) -> Result<Arc<dyn TargetHealth>, AdapterError> {
        #[cfg(feature = "elbv2")]
        {
            Ok(self.alb(reach).await)
        }
        #[cfg(not(feature = "elbv2"))]
        {
            let _ = reach;
            Err(not_built("ALB target health", "elbv2"))
        }
    }
    async fn compute(
        &self,
        reach: &Reach,
        platform: Platform,
    ) -> Result<Arc<dyn ComputePlatform>, AdapterError> {
        #[cfg(not(any(feature = "ecs", feature = "eks")))]
        let _ = reach;
        match platform {
            #[cfg(feature = "ecs")]
            Platform::Ecs => Ok(Arc::new(super::ecs::EcsPlatform::new(
                aws_sdk_ecs::Client::new(&self.config(reach).await),
            ))),
            #[cfg(not(feature = "ecs"))]
            Platform::Ecs => Err(not_built("the ECS platform", "ecs")),
            #[cfg(feature = "eks")]
            Platform::Eks => Ok(Arc::new(super::eks::EksPlatform::new(
                &self.config(reach).await,
            )?)),
            // Only the functions that touch compute link the EKS client; the others never ask.
            #[cfg(not(feature = "eks"))]
            Platform::Eks => Err(not_built("the EKS platform", "eks")),
        }
    }
    async fn signals(&self, reach: &Reach) -> Result<Arc<dyn HealthSignals>, AdapterError> {
        #[cfg(feature = "cloudwatch")]
        {
            let c = self.config(reach).await;
            Ok(Arc::new(super::cloudwatch::CloudWatchSignals::new(
                aws_sdk_cloudwatch::Client::new(&c),
            )))
        }
        #[cfg(not(feature = "cloudwatch"))]
        {
            let _ = reach;
            Err(not_built("the CloudWatch health signals", "cloudwatch"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(on_behalf_of: &str) -> Reach {
        Reach {
            role_arn: Some(
                "arn:aws:iam::210987654321:role/bluegreen-environment-checkout-prd".into(),
            ),
            service: "checkout".into(),
            environment: "prd".into(),
            on_behalf_of: on_behalf_of.into(),
        }
    }

    #[test]
    fn a_role_session_is_named_after_its_deployment_within_sts_limits() {
        assert_eq!(
            session_name("checkout-prd-1-3-0-1735898400000"),
            "bluegreen-checkout-prd-1-3-0-1735898400000"
        );
        let long = session_name(&"x".repeat(80));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("bluegreen-xxx"));
        assert_eq!(session_name("a b/c"), "bluegreen-a-b-c");
    }

    #[test]
    fn a_role_session_is_tagged_with_the_registry_key_it_acts_for() {
        assert_eq!(
            session_tags(&reach("d-1")),
            [
                ("bluegreen:service", "checkout".to_string()),
                ("bluegreen:environment", "prd".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn configs_are_kept_per_role_registry_key_and_deployment() {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let access = AwsAccess::new(base);
        let own = Reach {
            role_arn: None,
            ..reach("d-1")
        };
        access.config(&own).await;
        assert!(
            access
                .by_reach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
        );
        access.config(&reach("d-1")).await;
        access.config(&reach("d-1")).await;
        let mut other = reach("d-1");
        other.service = "search".into();
        access.config(&other).await;
        access.config(&reach("d-2")).await;
        assert_eq!(
            access
                .by_reach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
            3
        );
    }
}
