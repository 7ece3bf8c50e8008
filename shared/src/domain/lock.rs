//! An environment's lock: one deployment at a time. Who may take a lock that another deployment
//! holds is decided here; the stores only enforce the answer with their conditional writes.

use time::{Duration, OffsetDateTime};

/// A lock whose start never produced a deployment record is taken over after this long.
pub const STALE_LOCK_AFTER: Duration = Duration::minutes(10);

/// What a start may do with a lock that is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockClaim {
    /// The requester holds it already (a retry of the same start): it is taken.
    Ours,
    /// Another deployment holds it; the requester is refused.
    Held,
    /// The lock is stale: it may be taken over exactly when its holder never wrote a deployment
    /// record (its start crashed between locking and recording). The caller looks that up (a
    /// read it only pays for here) and asks [`LockClaim::take_over`].
    StaleUnlessRecorded,
}

impl LockClaim {
    /// Whether the requester takes the lock, given (for a stale lock) whether its holder wrote a
    /// deployment record. A holder whose deployment exists keeps its lock however old it is:
    /// that deployment is running, or its end will release it.
    pub fn take_over(self, holder_recorded: bool) -> bool {
        match self {
            LockClaim::Ours => true,
            LockClaim::Held => false,
            LockClaim::StaleUnlessRecorded => !holder_recorded,
        }
    }
}

/// The claim of `requester` on a lock held by `holder` since `taken_at` (unknown for locks
/// taken by a deployment's first phase, which are never stale), at `now`. A lock is stale once
/// strictly more than `stale_after` has passed.
pub fn claim_lock(
    holder: &str,
    requester: &str,
    taken_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    stale_after: Duration,
) -> LockClaim {
    if holder == requester {
        LockClaim::Ours
    } else if taken_at.is_some_and(|t| now - t > stale_after) {
        LockClaim::StaleUnlessRecorded
    } else {
        LockClaim::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const TAKEN: OffsetDateTime = datetime!(2025-01-03 10:00:00 UTC);

    #[test]
    fn a_lock_is_stale_only_strictly_after_the_window() {
        let at = |secs| TAKEN + Duration::seconds(secs);
        assert_eq!(
            claim_lock("d-1", "d-2", Some(TAKEN), at(600), STALE_LOCK_AFTER),
            LockClaim::Held
        );
        assert_eq!(
            claim_lock("d-1", "d-2", Some(TAKEN), at(601), STALE_LOCK_AFTER),
            LockClaim::StaleUnlessRecorded
        );
        assert_eq!(
            claim_lock("d-1", "d-2", None, at(100_000), STALE_LOCK_AFTER),
            LockClaim::Held,
            "a lock of unknown age is never stale"
        );
        assert_eq!(
            claim_lock("d-1", "d-1", None, TAKEN, STALE_LOCK_AFTER),
            LockClaim::Ours
        );
    }

    proptest! {
        #[test]
        fn another_deployments_lock_is_taken_only_when_stale_and_never_recorded(
            age in -10_000i64..10_000,
            window in 0i64..5_000,
            recorded in any::<bool>(),
            same in any::<bool>(),
        ) {
            let requester = if same { "d-1" } else { "d-2" };
            let claim = claim_lock("d-1", requester, Some(TAKEN), TAKEN + Duration::seconds(age), Duration::seconds(window));
            let taken = claim.take_over(recorded);
            prop_assert_eq!(taken, same || (age > window && !recorded));
        }
    }
}
