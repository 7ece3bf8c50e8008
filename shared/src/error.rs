//! Errors. Adapters speak `AdapterError`; phases speak `PhaseError`, whose names are the
//! contract with the state machine's Retry and Catch rules.

use lambda_runtime::Diagnostic;

/// What went wrong talking to AWS, reduced to what a phase can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The service is unavailable for now (5xx, timeouts, dispatch failures): safe to retry.
    #[error("{0} (transient; retry)")]
    Transient(String),
    /// The service refused the call's rate (throttling, request limits): safe to retry after
    /// backing off.
    #[error("{0} (throttled; retry after backing off)")]
    Throttled(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A condition on a write did not hold.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// The resource is not shaped as the controller requires (e.g. a listener that does not
    /// forward to the two configured target groups).
    #[error("{0}")]
    Invalid(String),
    /// The service refused the caller's identity or permission (a Kubernetes 401/403): the
    /// message names the access entry, role or verb that is missing.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Retryable(String),
    /// AWS throttled a call: retryable like [`PhaseError::Retryable`] (the same name for the
    /// state machine), and said apart for callers that answer people (the API's 503).
    #[error("{0}")]
    Throttled(String),
    #[error("{0}")]
    HealthCheckFailed(String),
    #[error("{0}")]
    AlarmBreached(String),
    #[error("{0}")]
    ThresholdBreached(String),
    /// The deployment left the phase this step belongs to (e.g. it is rolling back).
    #[error("{0}")]
    Aborted(String),
    /// The listener did not read back as written.
    #[error("{0}")]
    TrafficMismatch(String),
    #[error("{0}")]
    Internal(String),
}

/// How an execution ends other than with a phase's own error: the state machine's Fail
/// states, and the errors the controller stops executions or fails approval tasks with. One
/// list, so history, the triggers and the definition (`tests/tests/asl.rs`) agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionError {
    /// Traffic is back on the previous color (the Fail state, and the stop by a person's or an
    /// alarm's rollback).
    RolledBack,
    /// The new version never received traffic.
    DeploymentFailed,
    /// Approval was rejected or timed out.
    NotDeployed,
    /// Refused before anything changed (invalid input, the environment held by another).
    Rejected,
    /// The rollback could not restore the previous color.
    RollbackFailed,
    /// A person rejected the approval: the error the approval task fails with.
    ApprovalRejected,
}

impl ExecutionError {
    pub const ALL: [ExecutionError; 6] = [
        ExecutionError::RolledBack,
        ExecutionError::DeploymentFailed,
        ExecutionError::NotDeployed,
        ExecutionError::Rejected,
        ExecutionError::RollbackFailed,
        ExecutionError::ApprovalRejected,
    ];

    /// The stable name, as Step Functions reports it.
    pub const fn name(self) -> &'static str {
        match self {
            ExecutionError::RolledBack => "BlueGreen.RolledBack",
            ExecutionError::DeploymentFailed => "BlueGreen.DeploymentFailed",
            ExecutionError::NotDeployed => "BlueGreen.NotDeployed",
            ExecutionError::Rejected => "BlueGreen.Rejected",
            ExecutionError::RollbackFailed => "BlueGreen.RollbackFailed",
            ExecutionError::ApprovalRejected => "BlueGreen.ApprovalRejected",
        }
    }

    /// The one named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl PhaseError {
    /// Every phase error's name, as [`Self::error_type`] gives them.
    pub const NAMES: [&'static str; 9] = [
        "BlueGreen.InvalidInput",
        "BlueGreen.Conflict",
        "BlueGreen.Retryable",
        "BlueGreen.HealthCheckFailed",
        "BlueGreen.AlarmBreached",
        "BlueGreen.ThresholdBreached",
        "BlueGreen.Aborted",
        "BlueGreen.TrafficMismatch",
        "BlueGreen.Internal",
    ];

    /// The stable name the state machine matches in `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            PhaseError::InvalidInput(_) => "BlueGreen.InvalidInput",
            PhaseError::Conflict(_) => "BlueGreen.Conflict",
            PhaseError::Retryable(_) | PhaseError::Throttled(_) => "BlueGreen.Retryable",
            PhaseError::HealthCheckFailed(_) => "BlueGreen.HealthCheckFailed",
            PhaseError::AlarmBreached(_) => "BlueGreen.AlarmBreached",
            PhaseError::ThresholdBreached(_) => "BlueGreen.ThresholdBreached",
            PhaseError::Aborted(_) => "BlueGreen.Aborted",
            PhaseError::TrafficMismatch(_) => "BlueGreen.TrafficMismatch",
            PhaseError::Internal(_) => "BlueGreen.Internal",
        }
    }
}

impl PhaseError {
    /// A failed listener write: unavailability and throttling stay retryable; anything else (a refused write, a
    /// read-back that does not match) is a traffic mismatch, described by `what`.
    pub fn traffic_write(e: AdapterError, what: impl std::fmt::Display) -> Self {
        match e {
            AdapterError::Transient(_) | AdapterError::Throttled(_) => PhaseError::from(e),
            other => PhaseError::TrafficMismatch(format!("{what}: {other}")),
        }
    }
}

impl From<AdapterError> for PhaseError {
    fn from(e: AdapterError) -> Self {
        match e {
            AdapterError::Transient(_) => PhaseError::Retryable(e.to_string()),
            AdapterError::Throttled(_) => PhaseError::Throttled(e.to_string()),
            AdapterError::ConditionFailed(_) => PhaseError::Conflict(e.to_string()),
            AdapterError::Invalid(m) => PhaseError::InvalidInput(m),
            AdapterError::NotFound(_) | AdapterError::Forbidden(_) | AdapterError::Other(_) => {
                PhaseError::Internal(e.to_string())
            }
        }
    }
}

impl From<crate::domain::InvalidName> for PhaseError {
    fn from(e: crate::domain::InvalidName) -> Self {
        PhaseError::InvalidInput(e.to_string())
    }
}

impl From<PhaseError> for Diagnostic {
    fn from(e: PhaseError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_error_name_is_listed_and_execution_errors_are_distinct() {
        let each = [
            PhaseError::InvalidInput(String::new()),
            PhaseError::Conflict(String::new()),
            PhaseError::Retryable(String::new()),
            PhaseError::Throttled(String::new()),
            PhaseError::HealthCheckFailed(String::new()),
            PhaseError::AlarmBreached(String::new()),
            PhaseError::ThresholdBreached(String::new()),
            PhaseError::Aborted(String::new()),
            PhaseError::TrafficMismatch(String::new()),
            PhaseError::Internal(String::new()),
        ];
        let named: std::collections::BTreeSet<&str> =
            each.iter().map(PhaseError::error_type).collect();
        let listed: std::collections::BTreeSet<&str> = PhaseError::NAMES.into_iter().collect();
        assert_eq!(named, listed);
        for e in ExecutionError::ALL {
            assert_eq!(ExecutionError::from_name(e.name()), Some(e));
            assert!(
                !listed.contains(e.name()),
                "{e:?} reuses a phase error's name"
            );
        }
    }

    #[test]
    fn adapter_errors_map_to_phase_errors_by_kind() {
        let t = PhaseError::from(AdapterError::Transient("ThrottlingException".into()));
        assert_eq!(t.error_type(), "BlueGreen.Retryable");
        assert_eq!(
            PhaseError::from(AdapterError::ConditionFailed("x".into())).error_type(),
            "BlueGreen.Conflict"
        );
        assert_eq!(
            PhaseError::from(AdapterError::NotFound("x".into())).error_type(),
            "BlueGreen.Internal"
        );
        assert_eq!(
            PhaseError::from(AdapterError::Invalid("x".into())).error_type(),
            "BlueGreen.InvalidInput"
        );
    }

    #[test]
    fn traffic_write_failures_stay_retryable_only_when_transient() {
        let t = PhaseError::traffic_write(AdapterError::Transient("Throttling".into()), "shifting");
        assert_eq!(t.error_type(), "BlueGreen.Retryable");
        let m = PhaseError::traffic_write(
            AdapterError::Other("reads back 90/10".into()),
            "shifting to 75/25",
        );
        assert_eq!(
            m,
            PhaseError::TrafficMismatch("shifting to 75/25: reads back 90/10".into())
        );
    }

    #[test]
    fn diagnostics_carry_the_stable_name_and_message() {
        let d = Diagnostic::from(PhaseError::HealthCheckFailed("0/2 targets healthy".into()));
        assert_eq!(d.error_type, "BlueGreen.HealthCheckFailed");
        assert_eq!(d.error_message, "0/2 targets healthy");
    }
}
