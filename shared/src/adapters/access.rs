//! Reaching an environment's account: the controller's own AWS config, or one that assumes the
//! environment's role (STS AssumeRole, credentials cached and refreshed by the SDK). Configs
//! are built once per role and reused across invocations.

use super::cloudwatch::CloudWatchSignals;
use super::ecs::EcsPlatform;
use super::elbv2::AlbRouter;
use crate::error::AdapterError;
use crate::ports::{
    ComputePlatform, EnvironmentAccess, HealthSignals, TargetHealth, TrafficRouter,
};
use async_trait::async_trait;
use aws_config::SdkConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct AwsAccess {
    base: SdkConfig,
    by_role: Mutex<HashMap<String, SdkConfig>>,
}

impl AwsAccess {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            base,
            by_role: Mutex::new(HashMap::new()),
        }
    }

    /// The config that acts in the role's account (or the controller's own without a role).
    pub async fn config(&self, role_arn: Option<&str>) -> SdkConfig {
        let Some(role) = role_arn else {
            return self.base.clone();
        };
        if let Some(c) = self
            .by_role
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(role)
        {
            return c.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("bluegreen-deployments")
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
        self.by_role
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(role.to_string(), config.clone());
        config
    }
}

#[async_trait]
impl EnvironmentAccess for AwsAccess {
    async fn router(&self, role_arn: Option<&str>) -> Result<Arc<dyn TrafficRouter>, AdapterError> {
        let c = self.config(role_arn).await;
        Ok(Arc::new(AlbRouter::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&c),
        )))
    }
    async fn targets(&self, role_arn: Option<&str>) -> Result<Arc<dyn TargetHealth>, AdapterError> {
        let c = self.config(role_arn).await;
        Ok(Arc::new(AlbRouter::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&c),
        )))
    }
    async fn compute(
        &self,
        role_arn: Option<&str>,
    ) -> Result<Arc<dyn ComputePlatform>, AdapterError> {
        let c = self.config(role_arn).await;
        Ok(Arc::new(EcsPlatform::new(aws_sdk_ecs::Client::new(&c))))
    }
    async fn signals(
        &self,
        role_arn: Option<&str>,
    ) -> Result<Arc<dyn HealthSignals>, AdapterError> {
        let c = self.config(role_arn).await;
        Ok(Arc::new(CloudWatchSignals::new(
            aws_sdk_cloudwatch::Client::new(&c),
        )))
    }
}
