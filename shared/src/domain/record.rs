//! What is recorded about deployments: the deployment itself, every traffic step, every
//! evaluation with its numbers (the decision ledger), and each environment's current colors.

use super::promotion::{Approval, GateResult};
use super::{
    AlarmState, Color, ColorMetrics, Evaluation, Phase, Platform, TrafficConfig, TrafficSplit,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    RolledBack,
    Failed,
    /// Approval was rejected or timed out: the new version never received traffic.
    NotDeployed,
}

impl DeploymentStatus {
    pub fn of(phase: Phase) -> Self {
        match phase {
            Phase::Requested
            | Phase::DeployingGreen
            | Phase::AwaitingApproval
            | Phase::ShiftingTraffic
            | Phase::Verifying
            | Phase::RollingBack => DeploymentStatus::InProgress,
            Phase::Succeeded => DeploymentStatus::Succeeded,
            Phase::RolledBack => DeploymentStatus::RolledBack,
            Phase::Failed => DeploymentStatus::Failed,
            Phase::NotDeployed => DeploymentStatus::NotDeployed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::InProgress => "IN_PROGRESS",
            DeploymentStatus::Succeeded => "SUCCEEDED",
            DeploymentStatus::RolledBack => "ROLLED_BACK",
            DeploymentStatus::Failed => "FAILED",
            DeploymentStatus::NotDeployed => "NOT_DEPLOYED",
        }
    }
}

/// One deployment: one row of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub execution_arn: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    pub image: String,
    pub image_digest: Option<String>,
    pub strategy: Strategy,
    pub deployer: String,
    /// The person behind a CI deployer (`github:<login>`), who may not approve it either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// The color serving production when the deployment started; `None` while REQUESTED (the
    /// first phase reads it from the listener), and for a deployment that ended before that.
    #[serde(default)]
    pub active_color: Option<Color>,
    /// The color receiving the new version; known exactly when `active_color` is.
    #[serde(default)]
    pub target_color: Option<Color>,
    /// The version the active color served when the deployment started, if known.
    pub previous_version: Option<String>,
    /// The version the target color ran before this deployment replaced it, if known.
    #[serde(default)]
    pub replaced_version: Option<String>,
    pub phase: Phase,
    pub status: DeploymentStatus,
    /// The share of traffic currently on the target color, as last written by the controller.
    pub target_weight: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_seconds: Option<u64>,
    pub reason: Option<String>,
    /// How the new color looked when it was judged ready.
    #[serde(default)]
    pub readiness: Option<ReadinessSummary>,
    /// The listener or rule and target groups it moves: enough to restore traffic from the
    /// record alone (alarm trigger, manual rollback, an aborted execution).
    pub traffic: TrafficConfig,
    /// The role assumed to act in the environment's account, if any.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The approval this deployment waits for (or waited for), when its environment needs one.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The promotion checklist that allowed it, when it was promoted.
    #[serde(default)]
    pub gates: Option<Vec<GateResult>>,
    /// When its image was pushed to the registry, if known (lead time for changes).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub image_pushed_at: Option<OffsetDateTime>,
}

/// The new color's compute and targets at the moment it was judged ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessSummary {
    /// The platform the color runs on (records written before EKS existed are ECS).
    #[serde(default)]
    pub platform: Platform,
    /// The revision now running: an ECS task definition ARN, or the Kubernetes ReplicaSet
    /// (`<deployment>-<pod-template-hash>`) of the ready pods.
    pub revision: String,
    /// Units (ECS tasks or pods) running and ready, and how many are wanted.
    pub running: u32,
    pub desired: u32,
    pub healthy_targets: u32,
    pub registered_targets: u32,
    /// Readiness checks it took.
    pub checks: u32,
}

/// How a deployment changes its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A release: the new version on the standby color, traffic shifted step by step.
    BlueGreen,
    /// An environment rolled back after a release: all traffic to the standby color at once.
    Rollback,
}

impl Strategy {
    /// The stored name (`blue_green`, `rollback`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::BlueGreen => "blue_green",
            Strategy::Rollback => "rollback",
        }
    }
}

impl DeploymentRecord {
    /// How this deployment reaches its environment's account.
    pub fn reach(&self) -> crate::ports::Reach {
        crate::ports::Reach {
            role_arn: self.role_arn.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            on_behalf_of: self.id.clone(),
        }
    }

    /// The active and target colors, once the first phase has read them from the listener.
    pub fn colors(&self) -> Option<(Color, Color)> {
        self.active_color.zip(self.target_color)
    }

    /// The target color's name for people ("Green"), or what it is while it is not known.
    pub fn target_title(&self) -> &'static str {
        self.target_color.map_or("the new color", Color::title)
    }

    /// The active color's name for people ("Blue"), or what it is while it is not known.
    pub fn active_title(&self) -> &'static str {
        self.active_color.map_or("the active color", Color::title)
    }

    /// Both colors, the new one first; blue and green in the order green, blue while the
    /// colors are not known (a troubleshooting report looks at both either way).
    pub fn colors_new_first(&self) -> [Color; 2] {
        match self.colors() {
            Some((active, target)) => [target, active],
            None => [Color::Green, Color::Blue],
        }
    }

    /// Marks the record finished in `phase` at `now` with `reason`.
    pub fn finish(&mut self, phase: Phase, now: OffsetDateTime, reason: Option<String>) {
        self.phase = phase;
        self.status = DeploymentStatus::of(phase);
        self.finished_at = Some(now);
        let secs = (now - self.started_at).whole_seconds().max(0);
        self.duration_seconds = Some(u64::try_from(secs).unwrap_or(0));
        if reason.is_some() {
            self.reason = reason;
        }
    }
}

/// One traffic step as written to the listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub deployment_id: String,
    pub step_index: u32,
    pub split: TrafficSplit,
    pub target_color: Color,
    #[serde(with = "time::serde::rfc3339")]
    pub shifted_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationKind {
    /// The check after a traffic step.
    Step,
    /// One of the periodic checks while holding 100 %.
    Verification,
}

/// One evaluation with the numbers behind its verdict: the decision ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub deployment_id: String,
    pub kind: EvaluationKind,
    pub step_index: u32,
    /// 0 for the step evaluation, 1.. for verification evaluations.
    pub verification_index: u32,
    pub split: TrafficSplit,
    pub target_color: Color,
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    pub target: ColorMetrics,
    pub baseline: ColorMetrics,
    pub alarms: Vec<AlarmState>,
    pub evaluation: Evaluation,
}

/// The colors of one service in one environment, and the deployment holding its lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentState {
    pub service: String,
    pub environment: String,
    /// `None` until the environment's first deployment reads it from the listener (a start
    /// request may lock an environment that was never deployed).
    pub active_color: Option<Color>,
    pub active_version: Option<String>,
    pub standby_version: Option<String>,
    /// The deployment currently running here: the lock.
    pub active_deployment: Option<String>,
    pub last_deployment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_keep_their_stored_names() {
        for (strategy, name) in [
            (Strategy::BlueGreen, "blue_green"),
            (Strategy::Rollback, "rollback"),
        ] {
            assert_eq!(
                serde_json::to_value(strategy).ok(),
                Some(serde_json::json!(name))
            );
            assert_eq!(strategy.as_str(), name);
            assert_eq!(
                serde_json::from_value::<Strategy>(serde_json::json!(name)).ok(),
                Some(strategy)
            );
        }
        assert!(serde_json::from_value::<Strategy>(serde_json::json!("canary")).is_err());
    }
    use time::macros::datetime;

    #[test]
    fn status_follows_phase() {
        assert_eq!(
            DeploymentStatus::of(Phase::RollingBack),
            DeploymentStatus::InProgress
        );
        assert_eq!(
            DeploymentStatus::of(Phase::RolledBack),
            DeploymentStatus::RolledBack
        );
        assert_eq!(DeploymentStatus::of(Phase::Succeeded).as_str(), "SUCCEEDED");
    }

    #[test]
    fn finishing_sets_duration_and_keeps_earlier_reason_when_none_given() {
        let mut r = DeploymentRecord {
            id: "d".into(),
            execution_arn: "arn".into(),
            service: "checkout".into(),
            environment: "dev".into(),
            version: "1.3.0".into(),
            image: "repo:1.3.0".into(),
            image_digest: None,
            strategy: Strategy::BlueGreen,
            deployer: "alice".into(),
            triggered_by: None,
            active_color: Some(Color::Blue),
            target_color: Some(Color::Green),
            previous_version: Some("1.2.0".into()),
            replaced_version: Some("1.2.0".into()),
            phase: Phase::RollingBack,
            status: DeploymentStatus::InProgress,
            target_weight: 25,
            started_at: datetime!(2025-01-03 10:00:00 UTC),
            finished_at: None,
            duration_seconds: None,
            reason: Some("error rate 8.00%".into()),
            readiness: None,
            traffic: serde_json::from_value(crate::fakes::sample::request()["traffic"].clone())
                .unwrap_or_else(|e| panic!("{e}")),
            role_arn: None,
            approval: None,
            gates: None,
            image_pushed_at: None,
        };
        r.finish(Phase::RolledBack, datetime!(2025-01-03 10:12:45 UTC), None);
        assert_eq!(r.duration_seconds, Some(765));
        assert_eq!(r.status, DeploymentStatus::RolledBack);
        assert_eq!(r.reason.as_deref(), Some("error rate 8.00%"));
    }
}
