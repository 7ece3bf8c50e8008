//! The phases of one deployment and the only transitions allowed between them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// The execution has started and is recorded with its request; its first phase has not yet
    /// read the listener, so the colors are not known.
    Requested,
    DeployingGreen,
    /// Green is ready with no traffic; a person must approve before any traffic moves.
    AwaitingApproval,
    ShiftingTraffic,
    Verifying,
    Succeeded,
    RollingBack,
    RolledBack,
    Failed,
    /// Ended before any traffic reached the new version: approval rejected or timed out.
    NotDeployed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a deployment in phase {from} cannot move to {to}")]
pub struct InvalidTransition {
    pub from: Phase,
    pub to: Phase,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Requested,
        Phase::DeployingGreen,
        Phase::AwaitingApproval,
        Phase::ShiftingTraffic,
        Phase::Verifying,
        Phase::Succeeded,
        Phase::RollingBack,
        Phase::RolledBack,
        Phase::Failed,
        Phase::NotDeployed,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::RolledBack | Phase::Failed | Phase::NotDeployed
        )
    }

    /// Whether `self -> to` is a legal move. Staying in a non-terminal phase is legal (a phase
    /// re-run by a retry, or the next step of the shift loop).
    pub fn can_move_to(self, to: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, to),
            // Ended before deploying anything (its first phase never got through, or it was
            // stopped first): nothing to roll back, so straight to FAILED.
            (Requested, Requested | DeployingGreen | Failed)
                | (
                    DeployingGreen,
                    DeployingGreen | AwaitingApproval | ShiftingTraffic | RollingBack
                )
                | (
                    AwaitingApproval,
                    AwaitingApproval | ShiftingTraffic | RollingBack
                )
                | (ShiftingTraffic, ShiftingTraffic | Verifying | RollingBack)
                | (Verifying, Verifying | Succeeded | RollingBack)
                | (RollingBack, RollingBack | RolledBack | Failed | NotDeployed)
        )
    }

    pub fn next(self, to: Phase) -> Result<Phase, InvalidTransition> {
        if self.can_move_to(to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }

    /// Every phase from which `to` can be reached: the condition a store puts on its write.
    pub fn sources_of(to: Phase) -> Vec<Phase> {
        Phase::ALL
            .into_iter()
            .filter(|p| p.can_move_to(to))
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Requested => "REQUESTED",
            Phase::DeployingGreen => "DEPLOYING_GREEN",
            Phase::AwaitingApproval => "AWAITING_APPROVAL",
            Phase::ShiftingTraffic => "SHIFTING_TRAFFIC",
            Phase::Verifying => "VERIFYING",
            Phase::Succeeded => "SUCCEEDED",
            Phase::RollingBack => "ROLLING_BACK",
            Phase::RolledBack => "ROLLED_BACK",
            Phase::Failed => "FAILED",
            Phase::NotDeployed => "NOT_DEPLOYED",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn the_happy_path_is_legal() {
        let path = [
            Requested,
            DeployingGreen,
            ShiftingTraffic,
            ShiftingTraffic,
            Verifying,
            Verifying,
            Succeeded,
        ];
        for w in path.windows(2) {
            assert_eq!(w[0].next(w[1]), Ok(w[1]));
        }
    }

    #[test]
    fn every_live_phase_can_roll_back_and_rollback_ends() {
        for p in [DeployingGreen, AwaitingApproval, ShiftingTraffic, Verifying] {
            assert!(p.can_move_to(RollingBack), "{p}");
        }
        assert!(RollingBack.can_move_to(RolledBack));
        assert!(RollingBack.can_move_to(Failed));
        // nothing was deployed before the first phase got through: it ends without a rollback
        assert!(Requested.can_move_to(Failed));
        assert!(!Requested.can_move_to(RollingBack));
    }

    #[test]
    fn exactly_the_listed_transitions_are_legal() {
        let legal: &[(Phase, Phase)] = &[
            (Requested, Requested),
            (Requested, DeployingGreen),
            (Requested, Failed),
            (DeployingGreen, DeployingGreen),
            (DeployingGreen, AwaitingApproval),
            (DeployingGreen, ShiftingTraffic),
            (DeployingGreen, RollingBack),
            (AwaitingApproval, AwaitingApproval),
            (AwaitingApproval, ShiftingTraffic),
            (AwaitingApproval, RollingBack),
            (ShiftingTraffic, ShiftingTraffic),
            (ShiftingTraffic, Verifying),
            (ShiftingTraffic, RollingBack),
            (Verifying, Verifying),
            (Verifying, Succeeded),
            (Verifying, RollingBack),
            (RollingBack, RollingBack),
            (RollingBack, RolledBack),
            (RollingBack, Failed),
            (RollingBack, NotDeployed),
        ];
        for from in Phase::ALL {
            for to in Phase::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expected, "{from} -> {to}");
                assert_eq!(from.next(to).is_err(), !expected);
            }
        }
    }

    #[test]
    fn terminal_phases_never_move() {
        for p in [Succeeded, RolledBack, Failed, NotDeployed] {
            assert!(p.is_terminal());
            assert!(Phase::ALL.iter().all(|to| !p.can_move_to(*to)));
        }
        assert_eq!(Phase::sources_of(Succeeded), vec![Verifying]);
        assert_eq!(
            Phase::sources_of(RollingBack),
            vec![
                DeployingGreen,
                AwaitingApproval,
                ShiftingTraffic,
                Verifying,
                RollingBack
            ]
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).ok(),
                Some(format!("\"{}\"", p.as_str()))
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// How far along a deployment is; no legal move lowers it.
        fn stage(p: Phase) -> u8 {
            match p {
                Requested => 0,
                DeployingGreen => 1,
                AwaitingApproval => 2,
                ShiftingTraffic => 3,
                Verifying => 4,
                Succeeded => 5,
                RollingBack => 6,
                RolledBack | Failed | NotDeployed => 7,
            }
        }

        proptest! {
            /// Whatever moves are asked for, in any order: a refused move leaves the phase as
            /// it was and names both ends; an accepted one is legal by `can_move_to` and by
            /// `sources_of` (the store's write condition); phases never go back a stage;
            /// terminal phases are absorbing; success is reached only through verification
            /// after traffic moved, and the rollback endings only through rolling back.
            #[test]
            fn arbitrary_transition_sequences_never_leave_the_legal_graph(
                start in 0..Phase::ALL.len(),
                moves in prop::collection::vec(0..Phase::ALL.len(), 0..40),
            ) {
                let mut at = Phase::ALL[start];
                let mut visited = vec![at];
                for m in moves {
                    let to = Phase::ALL[m];
                    match at.next(to) {
                        Ok(p) => {
                            prop_assert_eq!(p, to);
                            prop_assert!(!at.is_terminal(), "{} moved on to {}", at, to);
                            prop_assert!(Phase::sources_of(to).contains(&at));
                            prop_assert!(stage(to) >= stage(at), "{} went back to {}", at, to);
                            match to {
                                Succeeded => prop_assert_eq!(at, Verifying),
                                RolledBack | NotDeployed => prop_assert_eq!(at, RollingBack),
                                // a deployment that never deployed anything ends without a rollback
                                Failed => prop_assert!(matches!(at, RollingBack | Requested)),
                                Verifying => prop_assert!(matches!(at, ShiftingTraffic | Verifying)),
                                _ => {}
                            }
                            at = p;
                            visited.push(at);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, InvalidTransition { from: at, to });
                            prop_assert!(!at.can_move_to(to));
                            prop_assert!(!Phase::sources_of(to).contains(&at));
                        }
                    }
                }
                if let Some(i) = visited.iter().position(|p| p.is_terminal()) {
                    prop_assert!(visited[i..].iter().all(|p| *p == visited[i]), "{:?}", visited);
                }
            }
        }
    }
}
