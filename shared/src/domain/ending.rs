//! How a deployment ends and what its end leaves behind: the final phase of a rollback, the
//! color that serves afterwards, the environment's recorded state, and the quarantine a
//! rolled-back version gets. Decided here once; the phases, the API, the DynamoDB store and the
//! in-memory fake store only write down what these functions return.

use super::{
    ApprovalState, Color, DeploymentRecord, DeploymentStatus, EnvironmentState, Phase, Quarantine,
    Strategy,
};
use time::OffsetDateTime;

/// Whether the deployment was waiting for approval when its rollback began: in that phase, or
/// already ROLLING_BACK (a retried rollback) with an approval that never said yes, so no traffic
/// can have moved. Without the second case a retry would end it FAILED instead of NOT_DEPLOYED.
pub fn waiting_for_approval(record: &DeploymentRecord) -> bool {
    match record.phase {
        Phase::AwaitingApproval => true,
        Phase::RollingBack => record
            .approval
            .as_ref()
            .is_some_and(|a| a.state != ApprovalState::Approved),
        _ => false,
    }
}

/// The phase a rollback ends in: ROLLED_BACK once the new version received traffic (traffic had
/// to be moved back, or a step was recorded); otherwise NOT_DEPLOYED when it was waiting for an
/// approval (see [`waiting_for_approval`]), FAILED when it never got that far.
pub fn rollback_final_phase(traffic_moved: bool, was_awaiting_approval: bool) -> Phase {
    if traffic_moved {
        Phase::RolledBack
    } else if was_awaiting_approval {
        Phase::NotDeployed
    } else {
        Phase::Failed
    }
}

/// The color serving production once `record` has ended: the target after a success, the
/// color that was active when it started after any other end. `None` while it runs or when it
/// ended before its colors were read.
pub fn active_after(record: &DeploymentRecord) -> Option<Color> {
    let (active, target) = record.colors()?;
    match record.phase {
        Phase::Succeeded => Some(target),
        Phase::RolledBack | Phase::Failed | Phase::NotDeployed => Some(active),
        _ => None,
    }
}

/// The environment's state once `record` has ended at `now`, lock released; `known` is the
/// state stored before. `None` while the deployment runs or when it ended before its colors
/// were read (it changed nothing then).
///
/// - A success makes its version active on the target color; the version it replaced stays on
///   the other color as standby, for an instant rollback.
/// - A release that did not succeed leaves the active color and version as they were; the
///   standby color now runs the version that was being deployed.
/// - A rollback of the environment that did not succeed changes nothing but the lock: both
///   colors still run what they ran, and the last deployment stays the release it tried to undo.
pub fn environment_after(
    record: &DeploymentRecord,
    known: Option<&EnvironmentState>,
    now: OffsetDateTime,
) -> Option<EnvironmentState> {
    let active = active_after(record)?;
    let ended =
        |active_version: Option<String>, standby_version: Option<String>| EnvironmentState {
            service: record.service.clone(),
            environment: record.environment.clone(),
            active_color: Some(active),
            active_version,
            standby_version,
            active_deployment: None,
            last_deployment: Some(record.id.clone()),
            updated_at: now,
        };
    Some(match (record.phase, record.strategy) {
        (Phase::Succeeded, _) => ended(
            Some(record.version.clone()),
            record.previous_version.clone(),
        ),
        (_, Strategy::Rollback) if known.is_some() => EnvironmentState {
            active_deployment: None,
            updated_at: now,
            ..known?.clone()
        },
        _ => ended(
            known
                .and_then(|e| e.active_version.clone())
                .or_else(|| record.previous_version.clone()),
            Some(record.version.clone()),
        ),
    })
}

/// The quarantine a finished deployment puts on its version: a rolled-back version may not be
/// promoted again until someone clears it. `None` for every other end.
pub fn quarantine_after(record: &DeploymentRecord) -> Option<Quarantine> {
    (record.status == DeploymentStatus::RolledBack)
        .then(|| Quarantine::of(record, record.finished_at.unwrap_or(record.started_at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Approval, Strategy};
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-01-03 10:12:45 UTC);

    fn record(phase: Phase, strategy: Strategy) -> DeploymentRecord {
        let mut r = crate::fakes::sample::record(Phase::DeployingGreen);
        r.id = "d-1".into();
        r.strategy = strategy;
        r.version = "1.3.0".into();
        r.active_color = Some(Color::Blue);
        r.target_color = Some(Color::Green);
        r.previous_version = Some("1.2.0".into());
        r.reason = Some("alarm".into());
        r.started_at = datetime!(2025-01-03 10:00:00 UTC);
        if phase.is_terminal() {
            r.finish(phase, NOW, None);
        } else {
            r.phase = phase;
        }
        r
    }

    fn known() -> EnvironmentState {
        EnvironmentState {
            service: "checkout".into(),
            environment: "dev".into(),
            active_color: Some(Color::Blue),
            active_version: Some("1.2.5".into()),
            standby_version: Some("1.1.0".into()),
            active_deployment: Some("d-1".into()),
            last_deployment: Some("d-0".into()),
            updated_at: datetime!(2025-01-02 10:00:00 UTC),
        }
    }

    #[test]
    fn a_success_makes_its_version_active_on_the_target_and_the_previous_one_standby() {
        for strategy in [Strategy::BlueGreen, Strategy::Rollback] {
            let r = record(Phase::Succeeded, strategy);
            let env = environment_after(&r, Some(&known()), NOW)
                .unwrap_or_else(|| panic!("a success changes the environment"));
            assert_eq!(
                env,
                EnvironmentState {
                    service: "checkout".into(),
                    environment: "dev".into(),
                    active_color: Some(Color::Green),
                    active_version: Some("1.3.0".into()),
                    standby_version: Some("1.2.0".into()),
                    active_deployment: None,
                    last_deployment: Some("d-1".into()),
                    updated_at: NOW,
                }
            );
        }
    }

    #[test]
    fn a_release_that_did_not_succeed_keeps_the_active_color_and_puts_its_version_on_standby() {
        for phase in [Phase::RolledBack, Phase::Failed, Phase::NotDeployed] {
            let r = record(phase, Strategy::BlueGreen);
            let env = environment_after(&r, Some(&known()), NOW);
            assert_eq!(
                env.as_ref().map(|e| (
                    e.active_color,
                    e.active_version.as_deref(),
                    e.standby_version.as_deref(),
                    e.active_deployment.as_deref(),
                    e.last_deployment.as_deref()
                )),
                Some((
                    Some(Color::Blue),
                    Some("1.2.5"),
                    Some("1.3.0"),
                    None,
                    Some("d-1")
                )),
                "{phase}"
            );
            // without a stored state, the version the record saw active stays active
            let env = environment_after(&r, None, NOW);
            assert_eq!(
                env.and_then(|e| e.active_version),
                Some("1.2.0".into()),
                "{phase}"
            );
        }
    }

    #[test]
    fn a_failed_environment_rollback_changes_nothing_but_the_lock() {
        let r = record(Phase::Failed, Strategy::Rollback);
        let env = environment_after(&r, Some(&known()), NOW);
        assert_eq!(
            env,
            Some(EnvironmentState {
                active_deployment: None,
                updated_at: NOW,
                ..known()
            })
        );
    }

    #[test]
    fn a_running_or_colorless_deployment_changes_no_environment() {
        for phase in Phase::ALL.into_iter().filter(|p| !p.is_terminal()) {
            assert_eq!(
                environment_after(&record(phase, Strategy::BlueGreen), None, NOW),
                None
            );
            assert_eq!(active_after(&record(phase, Strategy::BlueGreen)), None);
        }
        let mut r = record(Phase::Failed, Strategy::BlueGreen);
        r.active_color = None;
        r.target_color = None;
        assert_eq!(environment_after(&r, Some(&known()), NOW), None);
    }

    #[test]
    fn only_a_rolled_back_version_is_quarantined_with_the_rollback_reason() {
        for phase in Phase::ALL {
            let r = record(phase, Strategy::BlueGreen);
            let q = quarantine_after(&r);
            assert_eq!(q.is_some(), phase == Phase::RolledBack, "{phase}");
            if let Some(q) = q {
                assert_eq!(
                    (
                        q.version.as_str(),
                        q.deployment_id.as_str(),
                        q.reason.as_str(),
                        q.since
                    ),
                    ("1.3.0", "d-1", "alarm", NOW)
                );
                assert!(!q.cleared);
            }
        }
    }

    #[test]
    fn a_rollback_waiting_for_an_approval_that_never_said_yes_was_waiting() {
        let approval = |state| Approval {
            state,
            requested_at: NOW,
            timeout_seconds: 60,
            task_token: None,
            decided_by: None,
            decided_at: None,
            comment: None,
        };
        let mut r = record(Phase::AwaitingApproval, Strategy::BlueGreen);
        assert!(waiting_for_approval(&r));
        r.phase = Phase::RollingBack;
        assert!(!waiting_for_approval(&r), "no approval at all");
        for (state, waiting) in [
            (ApprovalState::Pending, true),
            (ApprovalState::Rejected, true),
            (ApprovalState::TimedOut, true),
            (ApprovalState::Approved, false),
        ] {
            r.approval = Some(approval(state));
            assert_eq!(waiting_for_approval(&r), waiting, "{state:?}");
        }
        r.phase = Phase::ShiftingTraffic;
        assert!(!waiting_for_approval(&r));
    }

    proptest! {
        #[test]
        fn a_rollback_ends_rolled_back_exactly_when_traffic_moved(moved in any::<bool>(), waiting in any::<bool>()) {
            let phase = rollback_final_phase(moved, waiting);
            prop_assert!(phase.is_terminal());
            prop_assert!(Phase::RollingBack.can_move_to(phase));
            prop_assert_eq!(phase == Phase::RolledBack, moved);
            prop_assert_eq!(phase == Phase::NotDeployed, !moved && waiting);
        }

        #[test]
        fn after_any_end_one_color_serves_and_the_lock_is_free(
            phase in prop::sample::select(Phase::ALL.to_vec()),
            rollback in any::<bool>(),
            with_known in any::<bool>(),
        ) {
            let strategy = if rollback { Strategy::Rollback } else { Strategy::BlueGreen };
            let r = record(phase, strategy);
            let k = known();
            let env = environment_after(&r, with_known.then_some(&k), NOW);
            prop_assert_eq!(env.is_some(), phase.is_terminal());
            if let Some(env) = env {
                prop_assert_eq!(env.active_color, active_after(&r));
                prop_assert_eq!(env.active_deployment, None);
                prop_assert_eq!(env.updated_at, NOW);
                // the version that serves is the new one exactly when it succeeded
                prop_assert_eq!(env.active_version.as_deref() == Some("1.3.0"), phase == Phase::Succeeded);
            }
        }
    }
}
