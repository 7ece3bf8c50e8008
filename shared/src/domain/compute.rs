//! The compute platforms a color can run on, and the words each uses for its parts.

use serde::{Deserialize, Serialize};

/// The platform that runs an environment's two colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Amazon ECS: each color is a service, its units are tasks.
    #[default]
    Ecs,
    /// Amazon EKS: each color is a Kubernetes Deployment, its units are pods.
    Eks,
}

impl Platform {
    /// The configuration name (`ecs`, `eks`).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ecs => "ecs",
            Platform::Eks => "eks",
        }
    }

    /// What one color is called on this platform.
    pub fn workload_noun(self) -> &'static str {
        match self {
            Platform::Ecs => "service",
            Platform::Eks => "deployment",
        }
    }

    /// What one running copy is called (plural).
    pub fn units(self) -> &'static str {
        match self {
            Platform::Ecs => "tasks",
            Platform::Eks => "pods",
        }
    }

    /// The line that reports a color's units once it is ready, as the reference pipeline
    /// words it: "Tasks running: 2/2" on ECS, "Pods deployed: 3/3 ready" on EKS.
    pub fn units_line(self, running: u32, desired: u32) -> String {
        match self {
            Platform::Ecs => format!("Tasks running: {running}/{desired}"),
            Platform::Eks => format!("Pods deployed: {running}/{desired} ready"),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one readiness check of the new color found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck<'a> {
    /// The platform reports the rollout complete (every wanted unit runs the new revision).
    pub rollout_complete: bool,
    /// The platform says the rollout cannot succeed, and why.
    pub rollout_failed: Option<&'a str>,
    /// Units wanted.
    pub desired: u32,
    /// Healthy targets in the new color's target group.
    pub healthy_targets: u32,
    /// Checks made so far, this one included.
    pub checks: u32,
    /// Checks the health timeout allows.
    pub max_checks: u32,
}

/// Whether the new color may take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenReadiness {
    /// Rolled out, and the target group has a healthy target for every wanted unit (at least
    /// one).
    Ready,
    /// The platform gave up on the rollout: fail now, before any traffic moves.
    Failed(String),
    /// Not ready and the health timeout is spent.
    TimedOut,
    /// Not ready yet: check again after the poll interval.
    Waiting,
}

impl ReadinessCheck<'_> {
    /// Healthy targets needed: one per wanted unit, and never none.
    pub fn wanted_targets(&self) -> u32 {
        self.desired.max(1)
    }

    pub fn judge(&self) -> GreenReadiness {
        if let Some(why) = self.rollout_failed {
            return GreenReadiness::Failed(why.to_string());
        }
        if self.rollout_complete && self.healthy_targets >= self.wanted_targets() {
            GreenReadiness::Ready
        } else if self.checks >= self.max_checks {
            GreenReadiness::TimedOut
        } else {
            GreenReadiness::Waiting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(complete: bool, desired: u32, healthy: u32, checks: u32) -> ReadinessCheck<'static> {
        ReadinessCheck {
            rollout_complete: complete,
            rollout_failed: None,
            desired,
            healthy_targets: healthy,
            checks,
            max_checks: 10,
        }
    }

    #[test]
    fn green_is_ready_when_rolled_out_with_a_healthy_target_per_unit() {
        assert_eq!(check(true, 3, 3, 1).judge(), GreenReadiness::Ready);
        assert_eq!(check(true, 3, 2, 1).judge(), GreenReadiness::Waiting);
        assert_eq!(check(false, 3, 3, 1).judge(), GreenReadiness::Waiting);
        // nothing wanted still needs one healthy target: a color with none serves nobody
        assert_eq!(check(true, 0, 0, 1).judge(), GreenReadiness::Waiting);
        assert_eq!(check(true, 0, 1, 1).judge(), GreenReadiness::Ready);
        assert_eq!(check(true, 3, 2, 10).judge(), GreenReadiness::TimedOut);
        assert_eq!(
            check(true, 3, 3, 10).judge(),
            GreenReadiness::Ready,
            "ready wins on the last check"
        );
    }

    #[test]
    fn a_failed_rollout_fails_at_once_whatever_else_holds() {
        let c = ReadinessCheck {
            rollout_failed: Some("ImagePullBackOff"),
            ..check(true, 3, 3, 1)
        };
        assert_eq!(c.judge(), GreenReadiness::Failed("ImagePullBackOff".into()));
    }

    proptest! {
        #[test]
        fn ready_exactly_when_complete_and_enough_healthy(
            complete: bool, desired in 0u32..20, healthy in 0u32..20, checks in 1u32..20,
        ) {
            let c = check(complete, desired, healthy, checks);
            let ready = complete && healthy >= desired.max(1);
            match c.judge() {
                GreenReadiness::Ready => prop_assert!(ready),
                GreenReadiness::TimedOut => prop_assert!(!ready && checks >= 10),
                GreenReadiness::Waiting => prop_assert!(!ready && checks < 10),
                GreenReadiness::Failed(_) => prop_assert!(false, "nothing failed"),
            }
        }
    }

    #[test]
    fn platforms_keep_their_configuration_names_and_words() {
        for (p, name, line) in [
            (Platform::Ecs, "\"ecs\"", "Tasks running: 2/2"),
            (Platform::Eks, "\"eks\"", "Pods deployed: 3/3 ready"),
        ] {
            assert_eq!(serde_json::to_string(&p).unwrap_or_default(), name);
            let n = if p == Platform::Ecs { 2 } else { 3 };
            assert_eq!(p.units_line(n, n), line);
        }
        assert_eq!(
            Platform::default(),
            Platform::Ecs,
            "records before EKS were ECS"
        );
    }
}
