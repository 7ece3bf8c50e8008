//! The narrow async interfaces the phase handlers depend on. Adapters implement them against
//! AWS; `fakes` implements them in memory for handler tests.

use crate::contracts::DeploymentRequest;
use crate::domain::{
    AlarmState, ApprovalDecision, ColorMetrics, DeploymentRecord, EnvironmentState, Evidence,
    LedgerEntry, LoadBalancerTarget, Phase, Platform, Quarantine, ReadinessSummary, StepRecord,
    TargetGroupArn, TrafficSplit,
};
use crate::error::AdapterError;
use crate::registry::{EnvironmentConfig, ServiceConfig};
use async_trait::async_trait;
use std::sync::Arc;
use time::OffsetDateTime;

/// The weighted forward action on a listener or rule, split between two target groups.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardTarget {
    pub target: LoadBalancerTarget,
    pub blue: TargetGroupArn,
    pub green: TargetGroupArn,
}

#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Reads the current weights. Fails if the action forwards anywhere but blue and green.
    async fn current_split(&self, fwd: &ForwardTarget) -> Result<TrafficSplit, AdapterError>;
    /// Writes both weights in one call, reads them back and fails unless they match.
    async fn set_split(&self, fwd: &ForwardTarget, split: TrafficSplit)
    -> Result<(), AdapterError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetHealthReport {
    pub registered: u32,
    pub healthy: u32,
    /// One line per unhealthy target: id, state, reason and description.
    pub problems: Vec<String>,
    /// Every registered target, healthy or not (for troubleshooting).
    pub targets: Vec<TargetState>,
}

/// One registered target as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetState {
    pub id: String,
    pub port: Option<i32>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, …
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[async_trait]
pub trait TargetHealth: Send + Sync {
    async fn target_health(&self, tg: &TargetGroupArn) -> Result<TargetHealthReport, AdapterError>;
}

/// One evaluation window's metric request for the two colors behind a load balancer.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsWindow {
    /// `app/<name>/<id>`.
    pub load_balancer: String,
    pub target: TargetGroupArn,
    /// The active color, measured beside the target while it still carries traffic. `None`
    /// once the target has all of it: the active color then serves nothing, its metrics would
    /// be empty, and asking for them would only add to the bill (GetMetricData is priced per
    /// metric). The baseline measured at the last split step is used instead.
    pub baseline: Option<TargetGroupArn>,
    /// Whole periods: `start` and `end` are multiples of `period_seconds`.
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub period_seconds: u64,
}

/// What CloudWatch holds for a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowMetrics {
    pub target: ColorMetrics,
    pub baseline: ColorMetrics,
    /// The start of the latest period with a RequestCount datapoint for the target; `None`
    /// without any. Whether a missing one means "not yet" is the domain's call.
    pub target_last_reported: Option<OffsetDateTime>,
}

#[async_trait]
pub trait HealthSignals: Send + Sync {
    /// The state of each named alarm, in the given order; unknown names come back `Missing`.
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AdapterError>;
    /// Target and baseline metrics over the window.
    async fn color_metrics(&self, w: &MetricsWindow) -> Result<WindowMetrics, AdapterError>;
}

/// One color's workload: an ECS service, or a Kubernetes Deployment in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub platform: Platform,
    /// The ECS or EKS cluster.
    pub cluster: String,
    /// The Kubernetes namespace (EKS); `None` on ECS.
    pub namespace: Option<String>,
    /// The ECS service or the Kubernetes Deployment.
    pub name: String,
    /// The container to update; `None` means the only container.
    pub container: Option<String>,
}

impl Workload {
    /// How people name it: `service checkout-green in cluster checkout-dev`, or
    /// `deployment prd/infra-agent-green in cluster reference`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{} {ns}/{} in cluster {}",
                self.platform.workload_noun(),
                self.name,
                self.cluster
            ),
            None => format!(
                "{} {} in cluster {}",
                self.platform.workload_noun(),
                self.name,
                self.cluster
            ),
        }
    }
}

/// One unit of a workload as troubleshooting shows it: an ECS task that stopped, or a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitReport {
    /// The task ARN or the pod's name.
    pub id: String,
    /// ECS: the task's last status (`STOPPED`); Kubernetes: the pod's phase (`Running`, …).
    pub state: String,
    /// Whether the pod is Ready (`None` for a stopped task).
    pub ready: Option<bool>,
    /// Container restarts (pods).
    pub restarts: Option<u32>,
    /// The pod's IP (the address the target group registers).
    pub address: Option<String>,
    /// Why it stopped, or each container's waiting/terminated reason and message
    /// (`ImagePullBackOff: …`, `OOMKilled`, `readiness probe failed: …`).
    pub reasons: Vec<String>,
    /// When it stopped (a task) or was created (a pod).
    pub at: Option<OffsetDateTime>,
}

/// What a workload looks like when someone asks why a deployment went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadDiagnosis {
    pub running: u32,
    pub desired: u32,
    /// ECS: the most recently stopped tasks; EKS: the workload's pods. Newest first.
    pub units: Vec<UnitReport>,
    /// The workload's latest events (ECS service events; Kubernetes events of its pods and
    /// of the Deployment), newest first.
    pub events: Vec<(Option<OffsetDateTime>, String)>,
    /// Commands an operator can run to look further, with the real names filled in
    /// (`kubectl … get pods -o wide`); empty where the platform has none to offer.
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    pub ready: bool,
    /// Units running and ready, and how many are wanted.
    pub running: u32,
    pub desired: u32,
    /// The revision the ready units run when the platform names one beside the rollout
    /// handle (EKS: the ReplicaSet of the new pod template).
    pub revision: Option<String>,
    /// The rollout cannot succeed (the image cannot be pulled, the containers crash, the
    /// progress deadline passed): the deployment fails now with this reason instead of
    /// waiting out the health timeout.
    pub failed: Option<String>,
    /// Why it is not ready yet (rollout state, failed units, recent events).
    pub reasons: Vec<String>,
}

/// What a deployment puts on a color: the image, and what the platform may note beside it
/// (EKS annotates the Deployment with the deployment id and version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    pub image: &'a str,
    pub version: &'a str,
    pub deployment_id: &'a str,
}

/// Platform-neutral compute: put an image on a color, report its readiness.
#[async_trait]
pub trait ComputePlatform: Send + Sync {
    /// The image the workload currently runs, if it runs one this port understands.
    async fn current_image(&self, w: &Workload) -> Result<Option<String>, AdapterError>;
    /// Makes the workload run the release's image; returns the rollout's handle (ECS: the task definition
    /// ARN; EKS: the Deployment's generation). Idempotent: if the workload already runs (or
    /// is rolling out) that image, nothing new is created.
    async fn deploy_image(
        &self,
        w: &Workload,
        release: &Release<'_>,
    ) -> Result<String, AdapterError>;
    /// Whether the rollout `handle` is complete.
    async fn readiness(&self, w: &Workload, handle: &str) -> Result<Readiness, AdapterError>;
    /// Unit counts, units with their reasons, the latest events and commands to look further.
    async fn diagnose(&self, w: &Workload) -> Result<WorkloadDiagnosis, AdapterError>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum BeginOutcome {
    Started,
    /// The same deployment was begun before (a retry); nothing was changed.
    AlreadyStarted(Box<DeploymentRecord>),
    /// Another deployment holds the environment.
    Locked {
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The environment is now held by this deployment (also when it already was).
    Acquired,
    /// Another deployment holds it.
    HeldBy(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn environment(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentState>, AdapterError>;
    /// Records a started execution (a record in phase REQUESTED, see
    /// [`crate::contracts::DeploymentRequest::requested_record`]) unless its deployment already
    /// has a record, in any phase: the first writer wins and every later one changes nothing.
    async fn record_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError>;
    /// Ends a deployment that never got past REQUESTED: writes the terminal `record` if the
    /// stored one is absent or still REQUESTED. A repeat of the same ending is a no-op; a
    /// deployment that moved on meanwhile is `ConditionFailed` naming its phase. Neither the
    /// environment nor its lock is touched (the caller releases a lock it holds).
    async fn end_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError>;
    /// Creates the deployment record (or completes the REQUESTED one of the same execution)
    /// and takes the environment's lock, all or nothing.
    async fn begin(&self, record: &DeploymentRecord) -> Result<BeginOutcome, AdapterError>;
    async fn deployment(&self, id: &str) -> Result<Option<DeploymentRecord>, AdapterError>;
    /// Moves the deployment to `to` only if its stored phase allows it (a condition on the
    /// write); optionally records the target weight and a reason. Returns the new record.
    async fn transition(
        &self,
        id: &str,
        to: Phase,
        target_weight: Option<u16>,
        reason: Option<&str>,
    ) -> Result<DeploymentRecord, AdapterError>;
    /// Notes how the new color looked when judged ready (shown in reports).
    async fn record_readiness(
        &self,
        id: &str,
        readiness: &ReadinessSummary,
    ) -> Result<(), AdapterError>;
    /// Appends a step; a repeat of the same step is a no-op.
    async fn record_step(&self, step: &StepRecord) -> Result<(), AdapterError>;
    /// Appends an evaluation; a repeat of the same evaluation is a no-op.
    async fn record_evaluation(&self, entry: &LedgerEntry) -> Result<(), AdapterError>;
    /// Writes the terminal record, the environment's new colors and releases the lock, all or
    /// nothing. Repeating it after it succeeded is a no-op.
    async fn finish(
        &self,
        record: &DeploymentRecord,
        env: &EnvironmentState,
    ) -> Result<(), AdapterError>;
    async fn steps(&self, id: &str) -> Result<Vec<StepRecord>, AdapterError>;
    async fn ledger(&self, id: &str) -> Result<Vec<LedgerEntry>, AdapterError>;
    /// Deployments of one service's environment, newest first.
    async fn history(
        &self,
        service: &str,
        environment: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, AdapterError>;
    /// Takes the environment's lock for deployment `id` before it has a record (a start
    /// request). Idempotent for the same id. A lock whose holder never got a deployment record
    /// and was taken more than `stale_after` ago is taken over (its start crashed).
    async fn acquire_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
        now: OffsetDateTime,
        stale_after: time::Duration,
    ) -> Result<LockOutcome, AdapterError>;
    /// Releases the lock if `id` holds it; otherwise does nothing.
    async fn release_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
    ) -> Result<(), AdapterError>;
    /// Deployments of every environment started in `[from, to)`, oldest first (Query on the
    /// month index, never Scan).
    async fn deployments_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DeploymentRecord>, AdapterError>;

    /// Green is ready: the deployment now waits for approval, resumable with `task_token`.
    /// Conditional on the deployment deploying green or already waiting (a retry stores the
    /// newer token). Returns the new record.
    async fn await_approval(
        &self,
        id: &str,
        task_token: &str,
        timeout_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, AdapterError>;
    /// Records a decision on a pending approval, conditional on it still pending. Repeating the
    /// same decision by the same person returns the record (a retry); anything else is
    /// `ConditionFailed` naming the phase and the approval's state.
    async fn decide_approval(
        &self,
        id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DeploymentRecord, AdapterError>;
    /// Drops the task token of a decided approval (the execution was resumed, failed, or no
    /// longer waits): a token in the table is a capability to resume an execution, so it is
    /// kept only while it may still be needed. No-op when it is gone already; `ConditionFailed`
    /// while the approval is still pending.
    async fn forget_task_token(&self, id: &str) -> Result<(), AdapterError>;
    /// Appends promotion evidence; a repeat of the same evidence id is a no-op.
    async fn add_evidence(&self, evidence: &Evidence) -> Result<(), AdapterError>;
    /// Every piece of evidence of a version, oldest first.
    async fn evidence(&self, service: &str, version: &str) -> Result<Vec<Evidence>, AdapterError>;
    /// The version's quarantine, cleared or not, if it was ever rolled back.
    async fn quarantine(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Quarantine>, AdapterError>;
    /// Clears a standing quarantine. `NotFound` when there is none standing.
    async fn clear_quarantine(
        &self,
        service: &str,
        version: &str,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<Quarantine, AdapterError>;
    /// Deployments of a version of a service in one environment, newest first.
    async fn deployments_of_version(
        &self,
        service: &str,
        version: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AdapterError>;
}

/// The service registry.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Creates or replaces a service (and its repository index entry).
    async fn put_service(&self, service: &ServiceConfig) -> Result<(), AdapterError>;
    async fn service(&self, service: &str) -> Result<Option<ServiceConfig>, AdapterError>;
    /// The service released from an ECR repository.
    async fn service_by_repository(
        &self,
        repository: &str,
    ) -> Result<Option<ServiceConfig>, AdapterError>;
    /// Creates or replaces an environment of a service (and its alarm index entries).
    async fn put_environment(&self, env: &EnvironmentConfig) -> Result<(), AdapterError>;
    /// As [`Self::put_service`], for a caller who may not change the service's governed
    /// settings ([`crate::registry::SERVICE_POLICY_FIELDS`]): written only while the stored
    /// ones are exactly `service`'s (`Transient` otherwise: an administrator changed them since
    /// the caller read them). The caller compares the policies first.
    async fn put_service_keeping_policy(&self, service: &ServiceConfig)
    -> Result<(), AdapterError>;
    /// As [`Self::put_environment`], written only while the stored protection and approval
    /// ([`crate::registry::ENVIRONMENT_POLICY_FIELDS`]) are exactly `env`'s.
    async fn put_environment_keeping_policy(
        &self,
        env: &EnvironmentConfig,
    ) -> Result<(), AdapterError>;
    /// As [`Self::put_service`], for an administrator changing only the governed settings:
    /// written only while every other field is exactly `service`'s (`Transient` otherwise: a
    /// team changed it since it was read, and that change is not overwritten).
    async fn put_service_policy(&self, service: &ServiceConfig) -> Result<(), AdapterError>;
    /// As [`Self::put_environment`], for an administrator changing only protection and approval.
    async fn put_environment_policy(&self, env: &EnvironmentConfig) -> Result<(), AdapterError>;
    async fn environment_config(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentConfig>, AdapterError>;
    /// The (service, environment) pairs an alarm is bound to.
    async fn environments_by_alarm(
        &self,
        alarm: &str,
    ) -> Result<Vec<(String, String)>, AdapterError>;
}

/// The container registry the service's images live in (the controller's account).
#[async_trait]
pub trait Images: Send + Sync {
    /// The image's scan status and findings per severity; `None` when it was never scanned.
    async fn scan(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<crate::domain::ScanSummary>, AdapterError>;
    /// The image `digest` in `repository` of the registry of account `registry_id`, or `None`
    /// when it is not there.
    async fn stored_image(
        &self,
        registry_id: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<StoredImage>, AdapterError>;
}

/// An image the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// When it was pushed, if the registry says.
    pub pushed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    pub execution_arn: String,
    /// An execution of that name existed already (a duplicate start); nothing new was started.
    pub already_existed: bool,
    /// The execution still runs (a new one always does; an existing one may have ended).
    pub running: bool,
    /// The service and environment the execution deploys, from its input (`None` when an
    /// existing execution's input does not name them).
    pub target: Option<(String, String)>,
}

/// The deployment state machine's executions.
#[async_trait]
pub trait Executions: Send + Sync {
    /// Starts an execution named `name` (the deployment id). Idempotent: if one of that name
    /// exists, it is returned.
    async fn start(
        &self,
        name: &str,
        input: &DeploymentRequest,
    ) -> Result<StartedExecution, AdapterError>;
    /// Stops an execution with an error name and cause. Stopping a finished one is a no-op.
    async fn stop(&self, execution_arn: &str, error: &str, cause: &str)
    -> Result<(), AdapterError>;
    /// Resumes the task waiting on `task_token` with `output` (SendTaskSuccess). A token
    /// that is no longer open (used, timed out, execution ended) is `ConditionFailed`.
    async fn resume(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<(), AdapterError>;
    /// Fails the task waiting on `task_token` with an error name and cause (SendTaskFailure).
    async fn fail_task(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), AdapterError>;
}

/// The deployment's record, which every phase after deploy-green requires.
pub async fn recorded(
    store: &dyn DeploymentStore,
    id: &str,
) -> Result<DeploymentRecord, crate::error::PhaseError> {
    store
        .deployment(id)
        .await?
        .ok_or_else(|| crate::error::PhaseError::Internal(format!("deployment {id} has no record")))
}

/// Whom the controller acts for in an environment: the environment's role (`None`: the
/// controller's own account), and the registry key and deployment (or operation) that a
/// session of that role is tagged with and named after, so the environment account's trust
/// policy can admit the controller for its own service and environment only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub role_arn: Option<String>,
    pub service: String,
    pub environment: String,
    pub on_behalf_of: String,
}

/// The AWS services of an environment's account: the controller's own, or the account reached
/// by assuming the environment's role. The deployment table always stays in the controller's.
#[async_trait]
pub trait EnvironmentAccess: Send + Sync {
    async fn router(&self, reach: &Reach) -> Result<Arc<dyn TrafficRouter>, AdapterError>;
    async fn targets(&self, reach: &Reach) -> Result<Arc<dyn TargetHealth>, AdapterError>;
    /// The compute of the platform the environment names.
    async fn compute(
        &self,
        reach: &Reach,
        platform: Platform,
    ) -> Result<Arc<dyn ComputePlatform>, AdapterError>;
    async fn signals(&self, reach: &Reach) -> Result<Arc<dyn HealthSignals>, AdapterError>;
}

/// What every phase handler depends on.
pub struct PhaseDeps {
    /// The deployment table (the controller's account).
    pub store: Arc<dyn DeploymentStore>,
    /// The environment's ELB, ECS and CloudWatch (its account, via its role if it has one).
    pub access: Arc<dyn EnvironmentAccess>,
    /// The service registry, which governs every deployment whatever its execution input says.
    pub registry: Arc<dyn Registry>,
    pub clock: Arc<dyn Clock>,
}

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
