//! Deployment metrics in CloudWatch Embedded Metric Format: one JSON log line per finished
//! deployment, which CloudWatch Logs turns into metrics (no PutMetricData call, no extra IAM).
//! The alarms and the dashboard in `template.yaml` read these names; keep them in step.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::{DeploymentRecord, DeploymentStatus};

/// The CloudWatch namespace of every deployment metric.
pub const NAMESPACE: &str = "BlueGreen";

/// Metric names, as the template's alarms and dashboard use them.
pub const DEPLOYMENTS: &str = "Deployments";
pub const SUCCEEDED: &str = "DeploymentsSucceeded";
pub const ROLLED_BACK: &str = "DeploymentsRolledBack";
pub const FAILED: &str = "DeploymentsFailed";
pub const DURATION: &str = "DeploymentDuration";

/// The EMF document for a finished deployment: one count per outcome (0 or 1, so sums and
/// averages both mean something) and the duration, per service and environment, per
/// environment, and in total. `None` while the deployment is still in progress.
pub fn deployment_finished(record: &DeploymentRecord) -> Option<Value> {
    let flag = |status: DeploymentStatus| u8::from(record.status == status);
    if record.status == DeploymentStatus::InProgress {
        return None;
    }
    let at = record.finished_at.unwrap_or(record.started_at);
    let mut metrics = vec![
        json!({"Name": DEPLOYMENTS, "Unit": "Count"}),
        json!({"Name": SUCCEEDED, "Unit": "Count"}),
        json!({"Name": ROLLED_BACK, "Unit": "Count"}),
        json!({"Name": FAILED, "Unit": "Count"}),
    ];
    let mut doc = json!({
        "_aws": {
            "Timestamp": millis(at),
            "CloudWatchMetrics": [],
        },
        "Service": record.service,
        "Environment": record.environment,
        "DeploymentId": record.id,
        "Version": record.version,
        "Status": record.status,
        DEPLOYMENTS: 1,
        SUCCEEDED: flag(DeploymentStatus::Succeeded),
        ROLLED_BACK: flag(DeploymentStatus::RolledBack),
        FAILED: flag(DeploymentStatus::Failed),
    });
    if let Some(seconds) = record.duration_seconds {
        metrics.push(json!({"Name": DURATION, "Unit": "Seconds"}));
        doc[DURATION] = json!(seconds);
    }
    doc["_aws"]["CloudWatchMetrics"] = json!([{
        "Namespace": NAMESPACE,
        "Dimensions": [["Service", "Environment"], ["Environment"], []],
        "Metrics": metrics,
    }]);
    Some(doc)
}

/// Writes the deployment's metrics to stdout as one log line (CloudWatch Logs extracts them).
/// A deployment still in progress writes nothing. `println!`, not a raw stdout handle, so test
/// harnesses capture the line like any other output.
pub fn emit(record: &DeploymentRecord) {
    if let Some(doc) = deployment_finished(record) {
        #[cfg(any(test, feature = "fakes"))]
        emitted::push(&doc);
        println!("{doc}");
    }
}

/// The metrics lines written on this thread, for tests (a `#[tokio::test]` runs its handler on
/// the test's own thread): stdout itself cannot be read back from inside a test.
#[cfg(any(test, feature = "fakes"))]
pub mod emitted {
    use serde_json::Value;
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn push(doc: &Value) {
        LINES.with(|l| l.borrow_mut().push(doc.clone()));
    }

    /// The lines written on this thread since the last call.
    pub fn take() -> Vec<Value> {
        LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phase;
    use crate::fakes::sample;
    use time::macros::datetime;

    fn finished(phase: Phase, duration: Option<u64>) -> DeploymentRecord {
        let mut r = sample::record(Phase::DeployingGreen);
        r.started_at = datetime!(2026-03-01 10:00:00 UTC);
        r.phase = phase;
        r.status = DeploymentStatus::of(phase);
        r.finished_at = Some(datetime!(2026-03-01 10:12:45 UTC));
        r.duration_seconds = duration;
        r
    }

    fn names(doc: &Value) -> Vec<String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m["Name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_success_counts_once_with_its_duration_in_the_bluegreen_namespace() {
        let doc = deployment_finished(&finished(Phase::Succeeded, Some(765)))
            .unwrap_or_else(|| panic!("no document"));
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "BlueGreen");
        assert_eq!(
            cw["Dimensions"],
            json!([["Service", "Environment"], ["Environment"], []])
        );
        assert_eq!(doc["_aws"]["Timestamp"], json!(1_772_359_965_000_i64));
        assert_eq!(
            (
                &doc[DEPLOYMENTS],
                &doc[SUCCEEDED],
                &doc[ROLLED_BACK],
                &doc[FAILED],
                &doc[DURATION]
            ),
            (&json!(1), &json!(1), &json!(0), &json!(0), &json!(765))
        );
        assert_eq!(
            names(&doc),
            [DEPLOYMENTS, SUCCEEDED, ROLLED_BACK, FAILED, DURATION]
        );
        // every dimension named is a top-level member, as EMF requires
        for dim in ["Service", "Environment"] {
            assert!(doc[dim].is_string(), "{dim} missing");
        }
    }

    #[test]
    fn a_rollback_and_a_failure_count_under_their_own_names() {
        let rolled = deployment_finished(&finished(Phase::RolledBack, Some(300)))
            .unwrap_or_else(|| panic!("no document"));
        assert_eq!(
            (&rolled[SUCCEEDED], &rolled[ROLLED_BACK], &rolled[FAILED]),
            (&json!(0), &json!(1), &json!(0))
        );
        let failed = deployment_finished(&finished(Phase::Failed, None))
            .unwrap_or_else(|| panic!("no document"));
        assert_eq!(
            (&failed[SUCCEEDED], &failed[ROLLED_BACK], &failed[FAILED]),
            (&json!(0), &json!(0), &json!(1))
        );
        // no duration known: no duration metric declared or valued
        assert!(!names(&failed).contains(&DURATION.to_string()));
        assert!(failed.get(DURATION).is_none());
    }

    #[test]
    fn a_deployment_in_progress_has_no_metrics() {
        assert!(deployment_finished(&sample::record(Phase::ShiftingTraffic)).is_none());
    }
}
