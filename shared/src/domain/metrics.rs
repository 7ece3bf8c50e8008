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
    /// Ended before any traffic moved (approval rejected or timed out).
    pub not_deployed: u32,
    /// Mean duration of finished deployments (succeeded, failed or rolled back).
    pub average_duration_seconds: Option<u64>,
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
            let mttr_seconds = mean(&times);
            let durations: Vec<u64> = list
                .iter()
                .filter(|r| finished_change(r.status))
                .filter_map(|r| r.duration_seconds)
                .collect();
            EnvironmentMetrics {
                environment,
                deployments: u32::try_from(list.len()).unwrap_or(u32::MAX),
                succeeded,
                failed,
                rolled_back,
                in_progress: count(DeploymentStatus::InProgress),
                not_deployed: count(DeploymentStatus::NotDeployed),
                average_duration_seconds: mean(&durations),
                mttr_seconds,
                success_rate_percent: (finished > 0)
                    .then(|| f64::from(succeeded) * 100.0 / f64::from(finished)),
            }
        })
        .collect()
}

fn finished_change(s: DeploymentStatus) -> bool {
    matches!(
        s,
        DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::RolledBack
    )
}

fn mean(values: &[u64]) -> Option<u64> {
    (!values.is_empty())
        .then(|| values.iter().sum::<u64>() / u64::try_from(values.len()).unwrap_or(1))
}

/// The middle value (the lower-rounded mean of the two middle ones for an even count).
fn median(values: &[u64]) -> Option<u64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// The four DORA measures of one (production) environment over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dora {
    pub environment: String,
    /// Releases (blue/green deployments) that succeeded in the period.
    pub deployments: u32,
    /// Succeeded releases per day of the period.
    pub deployment_frequency_per_day: f64,
    /// Median seconds from the image's push to its release finishing here; `None` when no
    /// release in the period knows its push time.
    pub lead_time_seconds: Option<u64>,
    /// Releases that failed or were rolled back (automatically, or by an environment rollback
    /// after they succeeded) as a percentage of finished releases; `None` when none finished.
    pub change_failure_rate_percent: Option<f64>,
    /// Median seconds from a failed change to the next success here; `None` when nothing was
    /// restored in the period.
    pub time_to_restore_seconds: Option<u64>,
}

/// DORA's four keys for `environment`, from every deployment of the period (`days` long).
pub fn dora(records: &[DeploymentRecord], environment: &str, days: u32) -> Dora {
    let here: Vec<&DeploymentRecord> = records
        .iter()
        .filter(|r| r.environment == environment)
        .collect();
    let releases: Vec<&&DeploymentRecord> = here
        .iter()
        .filter(|r| r.strategy == super::Strategy::BlueGreen)
        .collect();
    let succeeded: Vec<&&&DeploymentRecord> = releases
        .iter()
        .filter(|r| r.status == DeploymentStatus::Succeeded)
        .collect();
    let lead_times: Vec<u64> = succeeded
        .iter()
        .filter_map(|r| Some((r.finished_at? - r.image_pushed_at?).whole_seconds()))
        .filter_map(|s| u64::try_from(s).ok())
        .collect();
    let finished = releases
        .iter()
        .filter(|r| finished_change(r.status))
        .count();
    let failed_releases = releases
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                DeploymentStatus::Failed | DeploymentStatus::RolledBack
            )
        })
        .count();
    // an environment rollback that succeeded undid a release that had succeeded
    let undone = here
        .iter()
        .filter(|r| {
            r.strategy != super::Strategy::BlueGreen && r.status == DeploymentStatus::Succeeded
        })
        .count();
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Dora {
        environment: environment.to_string(),
        deployments: to_u32(succeeded.len()),
        deployment_frequency_per_day: f64::from(to_u32(succeeded.len())) / f64::from(days.max(1)),
        lead_time_seconds: median(&lead_times),
        change_failure_rate_percent: (finished > 0).then(|| {
            (f64::from(to_u32(failed_releases + undone)) * 100.0 / f64::from(to_u32(finished)))
                .min(100.0)
        }),
        time_to_restore_seconds: median(&recovery_times(&here)),
    }
}

/// The environment DORA measures by default: the production one that has deployments (`prd`
/// when none has).
pub fn production_environment(records: &[DeploymentRecord]) -> String {
    records
        .iter()
        .map(|r| r.environment.as_str())
        .find(|e| super::promotion::is_production(e))
        .unwrap_or("prd")
        .to_string()
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
        average_duration_seconds: Option<u64>,
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
            not_deployed: 0,
            average_duration_seconds,
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
                vec![m("dev", [1, 1, 0, 0, 0], Some(240), None, Some(100.0))],
            ),
            (
                // failed at 09:05, next success ended at 09:10 + 4 min = 09:14: 9 min
                "a failure followed by a success",
                vec![
                    rec("a", "checkout", "dev", Failed, 0, 5),
                    rec("b", "checkout", "dev", Succeeded, 10, 4),
                ],
                vec![m("dev", [2, 1, 1, 0, 0], Some(270), Some(540), Some(50.0))],
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
                vec![m("prd", [4, 2, 1, 1, 0], Some(555), Some(1110), Some(50.0))],
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
                    Some(240),
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
                vec![m("tst", [3, 1, 1, 0, 1], Some(240), None, Some(50.0))],
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
                    m("dev", [1, 1, 0, 0, 0], Some(240), None, Some(100.0)),
                    m("tst", [1, 1, 0, 0, 0], Some(360), None, Some(100.0)),
                    m("prd", [1, 1, 0, 0, 0], Some(720), None, Some(100.0)),
                    m("sandbox", [1, 0, 0, 0, 1], None, None, None),
                ],
            ),
        ];
        for (name, records, expected) in cases {
            assert_eq!(environment_metrics(&records), expected, "{name}");
        }
    }

    #[test]
    fn not_deployed_is_counted_apart_and_judges_no_change() {
        let records = vec![
            rec("a", "checkout", "prd", Phase::Succeeded, 0, 10),
            rec("b", "checkout", "prd", Phase::NotDeployed, 20, 60),
        ];
        let got = environment_metrics(&records);
        assert_eq!(
            (got[0].not_deployed, got[0].success_rate_percent),
            (1, Some(100.0))
        );
        assert_eq!(
            got[0].average_duration_seconds,
            Some(600),
            "only finished changes"
        );
        let d = dora(&records, "prd", 7);
        assert_eq!(d.change_failure_rate_percent, Some(0.0));
    }

    #[test]
    fn dora_hand_computed() {
        use Phase::*;
        let pushed = |mut r: DeploymentRecord, minutes_before_start: i64| {
            r.image_pushed_at = Some(r.started_at - Duration::minutes(minutes_before_start));
            r
        };
        // prd over 7 days: 5 releases (4 succeeded, 1 rolled back) and 1 environment rollback
        // undoing a success. Change failure rate = (1 rolled back + 1 undone) / 5 = 40 %.
        // Restore: rolled back at +45 min, next success ends at +70 min: 25 min.
        let mut undo = rec("u", "checkout", "prd", Succeeded, 120, 2);
        undo.strategy = crate::domain::Strategy::Rollback;
        let records = vec![
            pushed(rec("p1", "checkout", "prd", Succeeded, 0, 10), 60),
            pushed(rec("p2", "checkout", "prd", RolledBack, 40, 5), 15),
            pushed(rec("p3", "checkout", "prd", Succeeded, 60, 10), 30),
            rec("p4", "checkout", "prd", Succeeded, 90, 10),
            undo,
            pushed(rec("p5", "checkout", "prd", Succeeded, 100, 10), 120),
            rec("d1", "checkout", "dev", Failed, 0, 1),
        ];
        let d = dora(&records, "prd", 7);
        assert_eq!(d.deployments, 4);
        assert!((d.deployment_frequency_per_day - 4.0 / 7.0).abs() < 1e-9);
        // p1 70, p3 40, p5 130 minutes (p4 has no push time): median 70 min
        assert_eq!(d.lead_time_seconds, Some(70 * 60));
        assert_eq!(
            d.change_failure_rate_percent,
            Some(40.0),
            "(1 + 1) / 5 finished releases"
        );
        assert_eq!(d.time_to_restore_seconds, Some(25 * 60));
        assert_eq!(production_environment(&records), "prd");

        let empty = dora(&[], "prd", 30);
        assert_eq!(
            (
                empty.deployments,
                empty.lead_time_seconds,
                empty.change_failure_rate_percent,
                empty.time_to_restore_seconds
            ),
            (0, None, None, None)
        );
        assert_eq!(empty.deployment_frequency_per_day, 0.0);
    }

    #[test]
    fn thousands_of_deployments_are_counted_exactly() {
        let records: Vec<DeploymentRecord> = (0..5000)
            .map(|i| {
                let phase = if i % 10 == 0 {
                    Phase::RolledBack
                } else {
                    Phase::Succeeded
                };
                rec(&format!("d{i:05}"), "checkout", "prd", phase, i * 2, 1)
            })
            .collect();
        let m = environment_metrics(&records);
        assert_eq!(
            (m[0].deployments, m[0].succeeded, m[0].rolled_back),
            (5000, 4500, 500)
        );
        assert_eq!(m[0].success_rate_percent, Some(90.0));
        // each rollback ends at +1 min, the next success (2 min later) ends at +3 min: 120 s
        assert_eq!(m[0].mttr_seconds, Some(120));
        let d = dora(&records, "prd", 30);
        assert_eq!(d.change_failure_rate_percent, Some(10.0));
        assert_eq!(d.time_to_restore_seconds, Some(120));
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
