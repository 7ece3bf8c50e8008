//! Deployment metrics per environment (counts, success rate, MTTR) and the recent-deployments
//! list, computed from deployment records. Pure: the caller reads the records.

use super::{DeploymentRecord, DeploymentStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The numbers of one environment over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentMetrics {
    pub environment: String,
    pub deployments: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub rolled_back: u32,
    pub in_progress: u32,
    /// Mean seconds from a failed or rolled-back deployment to the next succeeded deployment
    /// of the same service in this environment; `None` when no failure was recovered.
    pub mttr_seconds: Option<u64>,
    /// Succeeded as a percentage of finished deployments (in-progress ones are not judged
    /// yet); `None` when none finished.
    pub success_rate_percent: Option<f64>,
}

/// When a deployment's outcome was known: its end, or its start if it has none recorded.
fn ended(r: &DeploymentRecord) -> OffsetDateTime {
    r.finished_at.unwrap_or(r.started_at)
}

/// Promotion order first (DEV -> TST -> PRD, as operators read it), then by name.
fn environment_rank(env: &str) -> (u8, String) {
    let rank = match env.to_ascii_lowercase().as_str() {
        "dev" | "development" => 0,
        "tst" | "test" | "qa" => 1,
        "stg" | "stage" | "staging" => 2,
        "prd" | "prod" | "production" => 3,
        _ => 4,
    };
    (rank, env.to_string())
}

/// Seconds from each failure (failed or rolled back) to the next success of the same service
/// and environment; failures never followed by a success contribute nothing.
fn recovery_times(records: &[&DeploymentRecord]) -> Vec<u64> {
    let mut by_service: BTreeMap<&str, Vec<&DeploymentRecord>> = BTreeMap::new();
    for r in records {
        by_service.entry(r.service.as_str()).or_default().push(r);
    }
    let mut times = vec![];
    for list in by_service.values_mut() {
        list.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        for (i, failure) in list.iter().enumerate() {
            if !matches!(
                failure.status,
                DeploymentStatus::Failed | DeploymentStatus::RolledBack
            ) {
                continue;
            }
            let recovery = list[i + 1..]
                .iter()
                .find(|r| r.status == DeploymentStatus::Succeeded);
            if let Some(ok) = recovery {
                let secs = (ended(ok) - ended(failure)).whole_seconds().max(0);
                times.push(u64::try_from(secs).unwrap_or(0));
            }
        }
    }
    times
}

/// Metrics of every environment that has deployments among `records`, in promotion order.
pub fn environment_metrics(records: &[DeploymentRecord]) -> Vec<EnvironmentMetrics> {
    let mut by_env: BTreeMap<(u8, String), Vec<&DeploymentRecord>> = BTreeMap::new();
    for r in records {
        by_env
            .entry(environment_rank(&r.environment))
            .or_default()
            .push(r);
    }
    by_env
        .into_iter()
        .map(|((_, environment), list)| {
            let count = |s: DeploymentStatus| {
                u32::try_from(list.iter().filter(|r| r.status == s).count()).unwrap_or(u32::MAX)
            };
            let succeeded = count(DeploymentStatus::Succeeded);
            let failed = count(DeploymentStatus::Failed);
            let rolled_back = count(DeploymentStatus::RolledBack);
            let finished = succeeded + failed + rolled_back;
            let times = recovery_times(&list);
            let mttr_seconds = (!times.is_empty())
                .then(|| times.iter().sum::<u64>() / u64::try_from(times.len()).unwrap_or(1));
            EnvironmentMetrics {
                environment,
                deployments: u32::try_from(list.len()).unwrap_or(u32::MAX),
                succeeded,
                failed,
                rolled_back,
                in_progress: count(DeploymentStatus::InProgress),
                mttr_seconds,
                success_rate_percent: (finished > 0)
                    .then(|| f64::from(succeeded) * 100.0 / f64::from(finished)),
            }
        })
        .collect()
}

/// The `limit` most recently started deployments, newest first.
pub fn recent(records: &[DeploymentRecord], limit: usize) -> Vec<&DeploymentRecord> {
    let mut all: Vec<&DeploymentRecord> = records.iter().collect();
    all.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phase;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-02 09:00:00 UTC);

    /// A deployment of `service` to `env` started `start_min` minutes after T0, lasting
    /// `minutes`, ending as `phase`.
    fn rec(
        id: &str,
        service: &str,
        env: &str,
        phase: Phase,
        start_min: i64,
        minutes: i64,
    ) -> DeploymentRecord {
        let mut r = crate::fakes::sample::record(Phase::DeployingGreen);
        r.id = id.into();
        r.service = service.into();
        r.environment = env.into();
        r.started_at = T0 + Duration::minutes(start_min);
        if phase.is_terminal() {
            r.finish(phase, r.started_at + Duration::minutes(minutes), None);
        } else {
            r.phase = phase;
            r.status = DeploymentStatus::of(phase);
        }
        r
    }

    fn m(
        environment: &str,
        counts: [u32; 5],
        mttr_seconds: Option<u64>,
        success_rate_percent: Option<f64>,
    ) -> EnvironmentMetrics {
        let [deployments, succeeded, failed, rolled_back, in_progress] = counts;
        EnvironmentMetrics {
            environment: environment.into(),
            deployments,
            succeeded,
            failed,
            rolled_back,
            in_progress,
            mttr_seconds,
            success_rate_percent,
        }
    }

    #[test]
    fn hand_computed_fixtures() {
        use Phase::*;
        let cases: Vec<(&str, Vec<DeploymentRecord>, Vec<EnvironmentMetrics>)> = vec![
            ("no deployments", vec![], vec![]),
            (
                "one success",
                vec![rec("a", "checkout", "dev", Succeeded, 0, 4)],
                vec![m("dev", [1, 1, 0, 0, 0], None, Some(100.0))],
            ),
            (
                // failed at 09:05, next success ended at 09:10 + 4 min = 09:14: 9 min
                "a failure followed by a success",
                vec![
                    rec("a", "checkout", "dev", Failed, 0, 5),
                    rec("b", "checkout", "dev", Succeeded, 10, 4),
                ],
                vec![m("dev", [2, 1, 1, 0, 0], Some(540), Some(50.0))],
            ),
            (
                // checkout: rolled back at 09:12, recovered at 09:30 (18 min);
                // billing: failed at 09:06, recovered at 09:25 (19 min); the success of the
                // other service in between recovers nothing. Mean (1080 + 1140) / 2 = 1110.
                "two services interleaved",
                vec![
                    rec("c1", "checkout", "prd", RolledBack, 0, 12),
                    rec("b1", "billing", "prd", Failed, 1, 5),
                    rec("b2", "billing", "prd", Succeeded, 15, 10),
                    rec("c2", "checkout", "prd", Succeeded, 20, 10),
                ],
                vec![m("prd", [4, 2, 1, 1, 0], Some(1110), Some(50.0))],
            ),
            (
                // two failures, each to the same next success: (20 - 5) and (20 - 12) min
                "consecutive failures each count to the next success",
                vec![
                    rec("a", "checkout", "dev", Failed, 0, 5),
                    rec("b", "checkout", "dev", RolledBack, 10, 2),
                    rec("c", "checkout", "dev", Succeeded, 15, 5),
                ],
                vec![m(
                    "dev",
                    [3, 1, 1, 1, 0],
                    Some((900 + 480) / 2),
                    Some(100.0 / 3.0),
                )],
            ),
            (
                "a failure never recovered",
                vec![
                    rec("a", "checkout", "tst", Succeeded, 0, 5),
                    rec("b", "checkout", "tst", Failed, 10, 3),
                    rec("c", "checkout", "tst", DeployingGreen, 20, 0),
                ],
                vec![m("tst", [3, 1, 1, 0, 1], None, Some(50.0))],
            ),
            (
                "environments in promotion order, in-progress not judged",
                vec![
                    rec("p", "checkout", "prd", Succeeded, 0, 12),
                    rec("x", "checkout", "sandbox", ShiftingTraffic, 1, 0),
                    rec("t", "checkout", "tst", Succeeded, 2, 6),
                    rec("d", "checkout", "dev", Succeeded, 3, 4),
                ],
                vec![
                    m("dev", [1, 1, 0, 0, 0], None, Some(100.0)),
                    m("tst", [1, 1, 0, 0, 0], None, Some(100.0)),
                    m("prd", [1, 1, 0, 0, 0], None, Some(100.0)),
                    m("sandbox", [1, 0, 0, 0, 1], None, None),
                ],
            ),
        ];
        for (name, records, expected) in cases {
            assert_eq!(environment_metrics(&records), expected, "{name}");
        }
    }

    #[test]
    fn recent_is_newest_first_and_bounded() {
        let records: Vec<DeploymentRecord> = (0..25)
            .map(|i| {
                rec(
                    &format!("d{i:02}"),
                    "checkout",
                    "dev",
                    Phase::Succeeded,
                    i,
                    1,
                )
            })
            .collect();
        let ids: Vec<&str> = recent(&records, 20).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 20);
        assert_eq!((ids[0], ids[19]), ("d24", "d05"));
        assert!(recent(&[], 20).is_empty());
    }
}
