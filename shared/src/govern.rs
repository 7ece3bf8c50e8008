//! The registry governs every deployment, however it was started. The API, a promotion and an
//! image push build their execution input from the registry already; a person can also start
//! an execution by hand with any input. So the first phase applies the environment's
//! registered wiring, approval and protection to the input before anything is deployed: an
//! input that leaves out `approval_timeout_seconds`, names another role, or deploys an
//! unpromoted image to a protected environment changes nothing.

use crate::contracts::DeploymentRequest;
use crate::domain::ApprovalPolicy;
use crate::error::PhaseError;
use crate::ports::Registry;
use crate::registry::{protected_by_default, protection_refusal};

/// What the registry decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governed {
    /// The environment is in the registry (its entry replaced the input's wiring).
    pub registered: bool,
    pub protected: bool,
    /// The input's fields the registry replaced because they differed.
    pub replaced: Vec<&'static str>,
}

/// Applies the registry to `req` in place, or refuses it (`InvalidInput`, naming why).
///
/// A registered environment's entry replaces the input's traffic, compute, alarms, steps,
/// timings, thresholds, role and approval. An unregistered environment keeps the input's
/// wiring but acts in the controller's account only (no `role_arn`: no account allowlist can
/// vouch for it), waits for approval at least where the default for its name requires it, and
/// is protected by that default too.
pub async fn govern(
    registry: &dyn Registry,
    req: &mut DeploymentRequest,
) -> Result<Governed, PhaseError> {
    let service = registry.service(&req.service).await?;
    let env = registry
        .environment_config(&req.service, &req.environment)
        .await?;
    let mut replaced = vec![];
    let protected = match &env {
        Some(cfg) => {
            let wired = cfg.request(
                req.version.clone(),
                req.image.clone(),
                req.image_digest.clone(),
                &req.deployer,
            );
            let mut take = |name: &'static str, differs: bool| {
                if differs {
                    replaced.push(name);
                }
            };
            take("traffic", req.traffic != wired.traffic);
            take("compute", req.compute != wired.compute);
            take("alarms", req.alarms != wired.alarms);
            take("steps", req.steps != wired.steps);
            take("timings", req.timings != wired.timings);
            take("thresholds", req.thresholds != wired.thresholds);
            take("role_arn", req.role_arn != wired.role_arn);
            take(
                "approval_timeout_seconds",
                req.approval_timeout_seconds != wired.approval_timeout_seconds,
            );
            req.traffic = wired.traffic;
            req.compute = wired.compute;
            req.alarms = wired.alarms;
            req.steps = wired.steps;
            req.timings = wired.timings;
            req.thresholds = wired.thresholds;
            req.role_arn = wired.role_arn;
            req.approval_timeout_seconds = wired.approval_timeout_seconds;
            cfg.is_protected()
        }
        None => {
            if let Some(role) = &req.role_arn {
                return Err(PhaseError::InvalidInput(format!(
                    "{}/{} is not in the registry, so it may not act through role_arn {role}: register it with PUT /services/{}/environments/{} (its service must list the role's account)",
                    req.service, req.environment, req.service, req.environment
                )));
            }
            let default = ApprovalPolicy::default_for(&req.environment);
            if default.required && req.approval_timeout_seconds.is_none() {
                replaced.push("approval_timeout_seconds");
                req.approval_timeout_seconds = Some(default.timeout_seconds);
            }
            protected_by_default(&req.environment)
        }
    };
    if let (Some(s), Some(_)) = (&service, &req.role_arn) {
        s.allows_role(req.role_arn.as_ref())
            .map_err(|e| PhaseError::InvalidInput(e.0))?;
    }
    if protected && let Some(why) = protection_refusal(service.as_ref(), req) {
        return Err(PhaseError::InvalidInput(why));
    }
    Ok(Governed {
        registered: env.is_some(),
        protected,
        replaced,
    })
}
