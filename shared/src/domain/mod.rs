//! The pure, synchronous domain: colors and traffic splits, the step plan, phases, verdicts and
//! the step after them, the environment lock, how a deployment ends and what it leaves behind,
//! the deployment record and deployment metrics. Nothing here performs I/O.

mod color;
mod compute;
mod ending;
mod ids;
mod lock;
pub mod metrics;
mod names;
mod phase;
mod plan;
pub mod principal;
pub mod promotion;
mod record;
mod split;
mod step;
mod verdict;
mod window;

pub use color::{ActiveColorUnknown, Color, active_at_start};
pub use compute::{GreenReadiness, Platform, ReadinessCheck};
pub use ending::{
    active_after, environment_after, quarantine_after, rollback_final_phase, waiting_for_approval,
};
pub use ids::{
    AccountId, DeploymentId, EnvironmentName, ImageDigest, RoleArn, ServiceName, is_account_id,
};
pub use lock::{LockClaim, STALE_LOCK_AFTER, claim_lock};
pub use metrics::{EnvironmentMetrics, environment_metrics};
pub use names::{
    ImageRef, InvalidName, LoadBalancerTarget, TargetGroupArn, TrafficConfig, Version,
};
pub use phase::{InvalidTransition, Phase};
pub use plan::{InvalidPlan, StepPlan, Thresholds, Timings};
pub use promotion::{
    Approval, ApprovalDecision, ApprovalPolicy, ApprovalState, Evidence, EvidenceKind,
    EvidenceRecorders, Gate, GateResult, PromotionPolicy, Quarantine, ScanSummary,
    UpstreamDeployment,
};
pub use record::{
    DeploymentRecord, DeploymentStatus, EnvironmentState, EvaluationKind, LedgerEntry,
    ReadinessSummary, StepRecord, Strategy,
};
pub use split::{InvalidSplit, TrafficSplit};
pub use step::{Breach, NextStep, PlanPosition, next_step};
pub use verdict::{
    AlarmState, AlarmStatus, CheckOutcome, ColorMetrics, Evaluation, EvaluationInput, Outcome,
    evaluate,
};
pub use window::{
    EvaluationWindow, MAX_LATE_METRICS_WAITS, MetricsCompleteness, WindowReadiness,
    evaluation_window, metrics_completeness,
};
