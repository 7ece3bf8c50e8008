//! The JSON that crosses the Step Functions boundary: the execution input (a deployment
//! request) and the execution state each phase receives and returns.

pub use crate::domain::TrafficConfig;
use crate::domain::{
    Color, DeploymentId, DeploymentRecord, DeploymentStatus, EnvironmentName, GateResult,
    ImageDigest, ImageRef, Phase, Platform, RoleArn, ServiceName, StepPlan, Strategy, Thresholds,
    Timings, Version,
};
use crate::error::PhaseError;
use crate::ports::{ForwardTarget, Workload};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The compute that runs each color, one variant per platform (`{"platform": "ecs", …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "lowercase", deny_unknown_fields)]
pub enum ComputeConfig {
    Ecs {
        cluster: String,
        blue_service: String,
        green_service: String,
        /// The container whose image is replaced; needed only for multi-container tasks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Each color is a Kubernetes Deployment in one namespace of an EKS cluster, its pods
    /// registered in the color's target group by a `TargetGroupBinding`.
    Eks {
        cluster: String,
        namespace: String,
        blue_deployment: String,
        green_deployment: String,
        /// The container whose image is replaced; needed only for multi-container pods.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
}

/// An EKS cluster name: 1-100 characters, a letter or digit first, then letters, digits,
/// `-` and `_` (the EKS API's pattern).
fn eks_cluster_ok(s: &str) -> bool {
    s.len() <= 100
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A Kubernetes DNS label (RFC 1123): 1-63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit. Namespaces and container names are labels.
pub fn dns_label_ok(s: &str) -> bool {
    s.len() <= 63 && dns_name_ok(s)
}

/// A Kubernetes object name (RFC 1123 subdomain): up to 253 characters of labels joined by
/// `.`. Deployments are named so.
pub fn dns_subdomain_ok(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|l| l.len() <= 63 && dns_name_ok(l))
}

fn dns_name_ok(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl ComputeConfig {
    pub fn platform(&self) -> Platform {
        match self {
            ComputeConfig::Ecs { .. } => Platform::Ecs,
            ComputeConfig::Eks { .. } => Platform::Eks,
        }
    }

    /// The workload that runs one color.
    pub fn workload(&self, color: Color) -> Workload {
        match self {
            ComputeConfig::Ecs {
                cluster,
                blue_service,
                green_service,
                container,
            } => Workload {
                platform: Platform::Ecs,
                cluster: cluster.clone(),
                namespace: None,
                name: match color {
                    Color::Blue => blue_service,
                    Color::Green => green_service,
                }
                .clone(),
                container: container.clone(),
            },
            ComputeConfig::Eks {
                cluster,
                namespace,
                blue_deployment,
                green_deployment,
                container,
            } => Workload {
                platform: Platform::Eks,
                cluster: cluster.clone(),
                namespace: Some(namespace.clone()),
                name: match color {
                    Color::Blue => blue_deployment,
                    Color::Green => green_deployment,
                }
                .clone(),
                container: container.clone(),
            },
        }
    }

    /// Checks what serde cannot: names present, the two colors different.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ComputeConfig::Ecs {
                cluster,
                blue_service,
                green_service,
                ..
            } => {
                if cluster.is_empty() || blue_service.is_empty() || green_service.is_empty() {
                    return Err(
                        "compute: cluster, blue_service and green_service are required".into(),
                    );
                }
                if blue_service == green_service {
                    return Err("compute: blue and green must be different services".into());
                }
                Ok(())
            }
            ComputeConfig::Eks {
                cluster,
                namespace,
                blue_deployment,
                green_deployment,
                container,
            } => {
                if !eks_cluster_ok(cluster) {
                    return Err(format!(
                        "compute.cluster {cluster:?} must be an EKS cluster name: 1-100 of [A-Za-z0-9_-], starting with a letter or digit"
                    ));
                }
                if !dns_label_ok(namespace) {
                    return Err(format!(
                        "compute.namespace {namespace:?} must be a Kubernetes namespace: 1-63 of [a-z0-9-], starting and ending with a letter or digit"
                    ));
                }
                for (field, name) in [
                    ("blue_deployment", blue_deployment),
                    ("green_deployment", green_deployment),
                ] {
                    if !dns_subdomain_ok(name) {
                        return Err(format!(
                            "compute.{field} {name:?} must be a Kubernetes Deployment name: up to 253 of [a-z0-9.-], each dot-separated part starting and ending with a letter or digit"
                        ));
                    }
                }
                if blue_deployment == green_deployment {
                    return Err("compute: blue and green must be different Deployments".into());
                }
                if let Some(c) = container
                    && !dns_label_ok(c)
                {
                    return Err(format!(
                        "compute.container {c:?} must be a Kubernetes container name: 1-63 of [a-z0-9-]"
                    ));
                }
                Ok(())
            }
        }
    }
}

fn default_deployer() -> String {
    "unknown".to_string()
}

/// The execution input: what a person pastes into the Step Functions console, or what a
/// trigger builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    pub service: ServiceName,
    pub environment: EnvironmentName,
    pub version: Version,
    pub image: ImageRef,
    /// The image's digest when the tag is not pinned by one (ECR push events carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<ImageDigest>,
    #[serde(default = "default_deployer")]
    pub deployer: String,
    /// The person behind a CI caller (`github:<login>`, from its role session name), when the
    /// deployer is a CI role: four eyes applies to that person too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    pub traffic: TrafficConfig,
    pub compute: ComputeConfig,
    /// CloudWatch alarms that veto the deployment while it runs.
    #[serde(default)]
    pub alarms: Vec<String>,
    #[serde(default)]
    pub steps: StepPlan,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The IAM role the phases assume to act in the environment's account (ELB, ECS,
    /// CloudWatch); the deployment table stays in the controller's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<RoleArn>,
    /// When set, the deployment waits (up to this many seconds) for a person's approval once
    /// green is ready, before any traffic moves. Set from the environment's approval policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_seconds: Option<u64>,
    /// The promotion checklist that allowed this deployment, recorded with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<GateResult>>,
    /// When the image was pushed, if known (for lead time).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub image_pushed_at: Option<OffsetDateTime>,
}

impl DeploymentRequest {
    /// How deployment `deployment_id` reaches this environment's account.
    pub fn reach(&self, deployment_id: &str) -> crate::ports::Reach {
        crate::ports::Reach {
            role_arn: self.role_arn.as_ref().map(RoleArn::to_string),
            service: self.service.to_string(),
            environment: self.environment.to_string(),
            on_behalf_of: deployment_id.to_string(),
        }
    }

    /// Cross-field checks that serde cannot express (the names, the role and the digest are
    /// checked by their types when deserialized).
    pub fn validate(&self) -> Result<(), PhaseError> {
        let bad = |m: String| Err(PhaseError::InvalidInput(m));
        if self.deployer.is_empty() || self.deployer.len() > 256 {
            return bad("deployer must be 1-256 characters".into());
        }
        if let Some(t) = &self.triggered_by
            && !t
                .strip_prefix(crate::domain::principal::GITHUB_TRIGGER_PREFIX)
                .is_some_and(crate::domain::principal::github_login_ok)
        {
            return bad(format!("triggered_by {t:?} must be github:<GitHub login>"));
        }
        self.traffic.target()?;
        if self.traffic.blue_target_group_arn == self.traffic.green_target_group_arn {
            return bad("traffic: blue and green must be different target groups".into());
        }
        self.compute.validate().map_err(PhaseError::InvalidInput)?;
        if self.alarms.len() > 100 || self.alarms.iter().any(|a| a.is_empty() || a.len() > 255) {
            return bad("alarms: at most 100 names of 1-255 characters".into());
        }
        if let Some(t) = self.approval_timeout_seconds
            && !(1..=7 * 24 * 3600).contains(&t)
        {
            return bad(format!(
                "approval_timeout_seconds {t} must be between 1 and 604800 (7 days)"
            ));
        }
        if self.gates.as_ref().is_some_and(|g| g.len() > 20) {
            return bad("gates: at most 20".into());
        }
        self.timings
            .validate()
            .map_err(|e| PhaseError::InvalidInput(format!("timings: {e}")))?;
        self.thresholds
            .validate()
            .map_err(|e| PhaseError::InvalidInput(format!("thresholds: {e}")))
    }

    /// The listener or rule and the two target groups it splits between.
    pub fn forward_target(&self) -> Result<ForwardTarget, PhaseError> {
        Ok(ForwardTarget {
            target: self.traffic.target()?,
            blue: self.traffic.blue_target_group_arn.clone(),
            green: self.traffic.green_target_group_arn.clone(),
        })
    }

    /// The workload that runs one color.
    pub fn workload(&self, color: Color) -> Workload {
        self.compute.workload(color)
    }

    /// The digest recorded in history: pinned in the reference, or given alongside it.
    pub fn digest(&self) -> Option<ImageDigest> {
        self.image
            .digest()
            .cloned()
            .or_else(|| self.image_digest.clone())
    }

    /// The record of execution `execution_arn` (deployment `id`) as soon as it has started:
    /// who asked for what, in phase REQUESTED, colors not yet known. Every path that can be the
    /// first to see an execution (the start request, its first phase, its rollback, the
    /// execution-status trigger) writes this same record, so a started deployment is never
    /// missing from history.
    pub fn requested_record(
        &self,
        id: &str,
        execution_arn: &str,
        started_at: OffsetDateTime,
    ) -> DeploymentRecord {
        DeploymentRecord {
            id: id.to_string(),
            execution_arn: execution_arn.to_string(),
            service: self.service.to_string(),
            environment: self.environment.to_string(),
            version: self.version.to_string(),
            image: self.image.to_string(),
            image_digest: self.digest().map(String::from),
            strategy: Strategy::BlueGreen,
            deployer: self.deployer.clone(),
            triggered_by: self.triggered_by.clone(),
            active_color: None,
            target_color: None,
            previous_version: None,
            replaced_version: None,
            phase: Phase::Requested,
            status: DeploymentStatus::of(Phase::Requested),
            target_weight: 0,
            started_at,
            finished_at: None,
            duration_seconds: None,
            reason: None,
            readiness: None,
            traffic: self.traffic.clone(),
            role_arn: self.role_arn.clone().map(String::from),
            approval: None,
            gates: self.gates.clone(),
            image_pushed_at: self.image_pushed_at,
        }
    }
}

/// What the state machine does after a phase returns. The `Route` Choice state reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    /// Green is not ready yet: wait, then check again.
    AwaitGreen,
    /// Green is ready: wait for a person's approval before any traffic moves.
    AwaitApproval,
    /// Move to the next traffic step now.
    Shift,
    /// Wait, then evaluate: after a shift, between verification checks, and when the metrics
    /// of the window are not published yet (the evaluation judged nothing and asks again).
    Evaluate,
    /// Verification passed: finalize.
    Finalize,
    /// Finalized: the deployment succeeded.
    Done,
    /// Traffic is back on the previous color.
    RolledBack,
    /// The deployment ended without ever moving traffic (e.g. green never became healthy).
    Failed,
    /// Approval was rejected or timed out: nothing was deployed to production traffic.
    NotDeployed,
}

/// The controller's position in the plan, carried between phases by the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub next: NextAction,
    /// How long the next Wait state waits.
    pub wait_seconds: u64,
    pub active_color: Color,
    pub target_color: Color,
    /// Readiness checks made so far.
    pub green_polls: u32,
    /// Index in the plan of the step last written to the listener.
    pub step_index: Option<u32>,
    /// The share of traffic on the target color, as last written.
    pub target_weight: u16,
    /// Start of the current evaluation window (epoch seconds): the shift, or where the last
    /// judged window ended.
    pub window_start: Option<i64>,
    /// How often the current window waited for its last datapoint (reset once judged).
    #[serde(default)]
    pub metrics_waits: u32,
    /// True once the plan reached 100 % and its step evaluation passed.
    pub verifying: bool,
    pub verification_evaluations: u32,
    /// The active color's p99 when last measured, kept for when it serves no traffic.
    pub baseline_p99_ms: Option<f64>,
}

/// The error a Catch attaches at `$.error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    /// Absent or null when the failure carried none (SendTaskFailure without a cause).
    #[serde(rename = "Cause", default, deserialize_with = "null_as_empty")]
    pub cause: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl CaughtError {
    /// The handler's message when the cause is a Lambda error payload, else the raw cause.
    pub fn message(&self) -> String {
        #[derive(Deserialize)]
        struct Payload {
            #[serde(rename = "errorMessage")]
            error_message: String,
        }
        match serde_json::from_str::<Payload>(&self.cause) {
            Ok(p) => p.error_message,
            Err(_) if self.cause.is_empty() => self.error.clone(),
            Err(_) => self.cause.clone(),
        }
    }
}

/// The state every phase receives and returns (`OutputPath: $.Payload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionState {
    pub deployment_id: DeploymentId,
    pub execution_arn: String,
    /// `$$.Execution.StartTime`: stable across retries, so records written from it are too.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub request: DeploymentRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    /// What the approval notification says, once green is ready and waits for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request: Option<String>,
}

impl ExecutionState {
    /// Parses and validates a phase's raw input. Bad input becomes `BlueGreen.InvalidInput`.
    pub fn from_value(value: serde_json::Value) -> Result<Self, PhaseError> {
        let state: ExecutionState = serde_json::from_value(value)
            .map_err(|e| PhaseError::InvalidInput(format!("execution state: {e}")))?;
        state.request.validate()?;
        Ok(state)
    }

    pub fn progress(&self) -> Result<&Progress, PhaseError> {
        self.progress.as_ref().ok_or_else(|| {
            PhaseError::InvalidInput(
                "progress is missing: this phase runs after deploy-green".into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn request_json() -> serde_json::Value {
        json!({
            "service": "checkout",
            "environment": "dev",
            "version": "1.3.0",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0",
            "deployer": "alice@example.com",
            "traffic": {
                "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2",
                "blue_target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-blue/73e2d6bc24d8a067",
                "green_target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-green/83e2d6bc24d8a068"
            },
            "compute": {"platform": "ecs", "cluster": "checkout-dev", "blue_service": "checkout-blue", "green_service": "checkout-green"},
            "alarms": ["checkout-dev-green-5xx"]
        })
    }

    fn state_json(request: serde_json::Value) -> serde_json::Value {
        json!({
            "deployment_id": "checkout-dev-1-3-0-abc",
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:blue-green:checkout-dev-1-3-0-abc",
            "started_at": "2025-01-03T10:00:00Z",
            "request": request
        })
    }

    #[test]
    fn a_minimal_request_gets_the_production_defaults() {
        let state =
            ExecutionState::from_value(state_json(request_json())).map_err(|e| e.to_string());
        let state = match state {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(state.request.steps.steps(), &[10, 25, 50, 100]);
        assert_eq!(state.request.timings.verification_seconds, 600);
        assert_eq!(state.request.timings.verification_evaluations(), 10);
        assert!(state.progress.is_none());
    }

    #[test]
    fn bad_requests_are_invalid_input_naming_the_problem() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation, &str)> = vec![
            (
                "unknown field",
                Box::new(|r| {
                    r["colour"] = json!("blue");
                }),
                "unknown field `colour`",
            ),
            (
                "missing image",
                Box::new(|r| {
                    r.as_object_mut().map(|o| o.remove("image"));
                }),
                "missing field `image`",
            ),
            (
                "bad version",
                Box::new(|r| {
                    r["version"] = json!("latest");
                }),
                "version \"latest\" is invalid",
            ),
            (
                "bad steps",
                Box::new(|r| {
                    r["steps"] = json!([10, 50]);
                }),
                "the last step must be 100%",
            ),
            (
                "both listener and rule",
                Box::new(|r| {
                    r["traffic"]["rule_arn"] = json!(
                        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/b/c/d"
                    );
                }),
                "exactly one of listener_arn or rule_arn",
            ),
            (
                "same target groups",
                Box::new(|r| {
                    r["traffic"]["green_target_group_arn"] =
                        r["traffic"]["blue_target_group_arn"].clone();
                }),
                "different target groups",
            ),
            (
                "bad service",
                Box::new(|r| {
                    r["service"] = json!("check out");
                }),
                "service \"check out\"",
            ),
            (
                "bad platform",
                Box::new(|r| {
                    r["compute"]["platform"] = json!("lambda");
                }),
                "unknown variant `lambda`",
            ),
            (
                "bad timing",
                Box::new(|r| {
                    r["timings"] = json!({"step_wait_seconds": 99999});
                }),
                "step_wait_seconds",
            ),
            (
                "bad digest",
                Box::new(|r| {
                    r["image_digest"] = json!("sha256:xyz");
                }),
                "image_digest \"sha256:xyz\" is invalid: must be sha256:<64 lowercase hex>",
            ),
            (
                "uppercase digest",
                Box::new(|r| {
                    r["image_digest"] = json!(format!("sha256:{}", "AB".repeat(32)));
                }),
                "image_digest",
            ),
            (
                "bad environment",
                Box::new(|r| {
                    r["environment"] = json!("dev/../prd");
                }),
                "environment \"dev/../prd\" is invalid: must be 1-64 of [A-Za-z0-9_-]",
            ),
            (
                "long service",
                Box::new(|r| {
                    r["service"] = json!("s".repeat(65));
                }),
                "must be 1-64 of [A-Za-z0-9_-]",
            ),
            (
                "role in an 11-digit account",
                Box::new(|r| {
                    r["role_arn"] = json!("arn:aws:iam::21098765432:role/deployer");
                }),
                "role_arn \"arn:aws:iam::21098765432:role/deployer\" is invalid",
            ),
            (
                "user instead of role",
                Box::new(|r| {
                    r["role_arn"] = json!("arn:aws:iam::210987654321:user/deployer");
                }),
                "role_arn",
            ),
        ];
        for (name, mutate, expected) in cases {
            let mut req = request_json();
            mutate(&mut req);
            let err = ExecutionState::from_value(state_json(req))
                .map(|_| ())
                .map_err(|e| (e.error_type(), e.to_string()));
            match err {
                Err((kind, msg)) => {
                    assert_eq!(kind, "BlueGreen.InvalidInput", "{name}");
                    assert!(msg.contains(expected), "{name}: {msg}");
                }
                Ok(()) => panic!("{name}: accepted"),
            }
        }
    }

    fn eks_compute() -> serde_json::Value {
        json!({"platform": "eks", "cluster": "reference", "namespace": "infra-agent",
               "blue_deployment": "infra-agent-blue", "green_deployment": "infra-agent-green"})
    }

    #[test]
    fn an_eks_environment_names_a_deployment_per_color_in_one_namespace() {
        let mut req = request_json();
        req["compute"] = eks_compute();
        let state = ExecutionState::from_value(state_json(req)).map_err(|e| e.to_string());
        let state = state.unwrap_or_else(|e| panic!("{e}"));
        let green = state.request.workload(Color::Green);
        assert_eq!(green.platform, Platform::Eks);
        assert_eq!(green.namespace.as_deref(), Some("infra-agent"));
        assert_eq!(green.name, "infra-agent-green");
        assert_eq!(
            green.describe(),
            "deployment infra-agent/infra-agent-green in cluster reference"
        );
        // the wire shape is what was sent
        assert_eq!(
            serde_json::to_value(&state.request.compute).unwrap_or_default(),
            eks_compute()
        );
    }

    #[test]
    fn bad_eks_names_are_invalid_input_naming_the_field() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("namespace", json!("Infra_Agent"), "compute.namespace"),
            ("namespace", json!(""), "compute.namespace"),
            ("cluster", json!("-x"), "compute.cluster"),
            (
                "green_deployment",
                json!("infra-agent-"),
                "compute.green_deployment",
            ),
            (
                "blue_deployment",
                json!("infra-agent-green"),
                "different Deployments",
            ),
            ("container", json!("App"), "compute.container"),
        ];
        for (field, value, expected) in cases {
            let mut req = request_json();
            req["compute"] = eks_compute();
            req["compute"][field] = value;
            let err = ExecutionState::from_value(state_json(req))
                .map(|_| ())
                .map_err(|e| (e.error_type(), e.to_string()));
            match err {
                Err((kind, msg)) => {
                    assert_eq!(kind, "BlueGreen.InvalidInput", "{field}");
                    assert!(msg.contains(expected), "{field}: {msg}");
                }
                Ok(()) => panic!("{field}: accepted"),
            }
        }
        let mut req = request_json();
        req["compute"] = eks_compute();
        req["compute"]["blue_service"] = json!("x");
        assert!(
            ExecutionState::from_value(state_json(req)).is_err(),
            "ECS fields on EKS"
        );
    }

    #[test]
    fn a_bad_deployment_id_is_invalid_input_naming_it() {
        for bad in ["", "has space", "a.b", &"x".repeat(81)] {
            let mut state = state_json(request_json());
            state["deployment_id"] = json!(bad);
            let err = ExecutionState::from_value(state)
                .map(|_| ())
                .map_err(|e| (e.error_type(), e.to_string()));
            match err {
                Err((kind, msg)) => {
                    assert_eq!(kind, "BlueGreen.InvalidInput", "{bad:?}");
                    assert!(
                        msg.contains("deployment id") && msg.contains("1-80 of [A-Za-z0-9_-]"),
                        "{bad:?}: {msg}"
                    );
                }
                Ok(()) => panic!("{bad:?}: accepted"),
            }
        }
    }

    #[test]
    fn the_checked_fields_keep_their_wire_format() {
        let mut req = request_json();
        let digest = format!("sha256:{}", "ab".repeat(32));
        req["image_digest"] = json!(digest);
        req["role_arn"] = json!("arn:aws:iam::210987654321:role/deployer");
        let state = state_json(req);
        let parsed = ExecutionState::from_value(state.clone()).map_err(|e| e.to_string());
        let back = parsed.and_then(|s| serde_json::to_value(&s).map_err(|e| e.to_string()));
        assert_eq!(
            back.as_ref().map(|v| &v["deployment_id"]),
            Ok(&state["deployment_id"])
        );
        for field in ["service", "environment", "image_digest", "role_arn"] {
            assert_eq!(
                back.as_ref().map(|v| &v["request"][field]),
                Ok(&state["request"][field]),
                "{field}"
            );
        }
    }

    #[test]
    fn caught_error_message_unwraps_lambda_payloads() {
        let e = CaughtError {
            error: "BlueGreen.ThresholdBreached".into(),
            cause:
                r#"{"errorType":"BlueGreen.ThresholdBreached","errorMessage":"error rate 8.00%"}"#
                    .into(),
        };
        assert_eq!(e.message(), "error rate 8.00%");
        let e = CaughtError {
            error: "States.Timeout".into(),
            cause: String::new(),
        };
        assert_eq!(e.message(), "States.Timeout");
    }
}
