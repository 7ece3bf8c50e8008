//! The pure, synchronous domain: colors and traffic splits, the step plan, phases, verdicts and
//! the deployment record. Nothing here performs I/O.

mod color;
mod names;
mod phase;
mod plan;
mod record;
mod split;
mod verdict;

pub use color::Color;
pub use names::{
    ImageRef, InvalidName, LoadBalancerTarget, TargetGroupArn, TrafficConfig, Version,
};
pub use phase::{InvalidTransition, Phase};
pub use plan::{InvalidPlan, StepPlan, Thresholds, Timings};
pub use record::{
    DeploymentRecord, DeploymentStatus, EnvironmentState, EvaluationKind, LedgerEntry,
    ReadinessSummary, STRATEGY_BLUE_GREEN, StepRecord,
};
pub use split::{InvalidSplit, TrafficSplit};
pub use verdict::{
    AlarmState, AlarmStatus, CheckOutcome, ColorMetrics, Evaluation, EvaluationInput, Outcome,
    evaluate,
};
