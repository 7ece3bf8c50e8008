//! In-memory doubles of every port, for handler tests. They keep the same rules as the real
//! adapters (verified writes, conditional phase moves, append-only ledger, the lock).

use crate::contracts::DeploymentRequest;
use crate::domain::ReadinessSummary;
use crate::domain::{
    AlarmState, AlarmStatus, ColorMetrics, DeploymentRecord, EnvironmentState, LedgerEntry, Phase,
    StepRecord, TargetGroupArn, TrafficSplit,
};
use crate::error::AdapterError;
use crate::ports::{
    BeginOutcome, Clock, ComputePlatform, DeploymentStore, EnvironmentAccess, Executions,
    ForwardTarget, HealthSignals, LockOutcome, MetricsWindow, Page, Readiness, Registry,
    StartedExecution, TargetHealth, TargetHealthReport, TrafficRouter, WindowMetrics, Workload,
};
use crate::registry::{EnvironmentConfig, ServiceConfig};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use time::OffsetDateTime;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A listener's forward action.
pub struct FakeRouter {
    pub split: Mutex<TrafficSplit>,
    /// Every split written, in order.
    pub writes: Mutex<Vec<TrafficSplit>>,
    /// Errors returned by the next `set_split` calls, first first.
    pub fail_next_writes: Mutex<Vec<AdapterError>>,
    /// Runs during each successful write: lets a test race something against it.
    pub during_write: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl FakeRouter {
    pub fn new(split: TrafficSplit) -> Self {
        Self {
            split: Mutex::new(split),
            writes: Mutex::new(Vec::new()),
            fail_next_writes: Mutex::new(Vec::new()),
            during_write: Mutex::new(None),
        }
    }
    pub fn split(&self) -> TrafficSplit {
        *lock(&self.split)
    }
    pub fn writes(&self) -> Vec<TrafficSplit> {
        lock(&self.writes).clone()
    }
}

#[async_trait]
impl TrafficRouter for FakeRouter {
    async fn current_split(&self, _fwd: &ForwardTarget) -> Result<TrafficSplit, AdapterError> {
        Ok(self.split())
    }
    async fn set_split(
        &self,
        _fwd: &ForwardTarget,
        split: TrafficSplit,
    ) -> Result<(), AdapterError> {
        let mut failures = lock(&self.fail_next_writes);
        if !failures.is_empty() {
            return Err(failures.remove(0));
        }
        *lock(&self.split) = split;
        lock(&self.writes).push(split);
        if let Some(race) = lock(&self.during_write).as_ref() {
            race();
        }
        Ok(())
    }
}

/// Target health per target group; unknown groups have no targets.
#[derive(Default)]
pub struct FakeTargetHealth {
    pub reports: Mutex<HashMap<String, TargetHealthReport>>,
}

impl FakeTargetHealth {
    pub fn set(&self, tg: &TargetGroupArn, registered: u32, healthy: u32) {
        let problems = (healthy..registered)
            .map(|i| {
                format!(
                    "10.0.0.{i}:8080 unhealthy (Target.FailedHealthChecks: Health checks failed)"
                )
            })
            .collect();
        lock(&self.reports).insert(
            tg.as_str().to_string(),
            TargetHealthReport {
                registered,
                healthy,
                problems,
                targets: (0..registered)
                    .map(|i| crate::ports::TargetState {
                        id: format!("10.0.0.{i}"),
                        port: Some(8080),
                        state: if i < healthy { "healthy" } else { "unhealthy" }.into(),
                        reason: (i >= healthy).then(|| "Target.FailedHealthChecks".into()),
                        description: (i >= healthy).then(|| "Health checks failed".into()),
                    })
                    .collect(),
            },
        );
    }
}

#[async_trait]
impl TargetHealth for FakeTargetHealth {
    async fn target_health(&self, tg: &TargetGroupArn) -> Result<TargetHealthReport, AdapterError> {
        Ok(lock(&self.reports)
            .get(tg.as_str())
            .cloned()
            .unwrap_or_default())
    }
}

/// Alarms and per-window metrics.
pub struct FakeSignals {
    pub alarms: Mutex<HashMap<String, (AlarmStatus, String)>>,
    pub target: Mutex<ColorMetrics>,
    pub baseline: Mutex<ColorMetrics>,
    pub windows: Mutex<Vec<MetricsWindow>>,
    /// Periods at the end of each window whose datapoint CloudWatch has not published yet.
    pub unpublished_periods: Mutex<u32>,
}

impl Default for FakeSignals {
    fn default() -> Self {
        Self {
            alarms: Mutex::new(HashMap::new()),
            target: Mutex::new(ColorMetrics {
                requests: 1000,
                errors_5xx: 0,
                p99_ms: Some(45.0),
            }),
            baseline: Mutex::new(ColorMetrics {
                requests: 9000,
                errors_5xx: 1,
                p99_ms: Some(42.0),
            }),
            windows: Mutex::new(Vec::new()),
            unpublished_periods: Mutex::new(0),
        }
    }
}

impl FakeSignals {
    pub fn set_alarm(&self, name: &str, status: AlarmStatus, reason: &str) {
        lock(&self.alarms).insert(name.to_string(), (status, reason.to_string()));
    }
    pub fn set_target(&self, m: ColorMetrics) {
        *lock(&self.target) = m;
    }
    pub fn set_baseline(&self, m: ColorMetrics) {
        *lock(&self.baseline) = m;
    }
}

#[async_trait]
impl HealthSignals for FakeSignals {
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AdapterError> {
        let alarms = lock(&self.alarms);
        Ok(names
            .iter()
            .map(|n| match alarms.get(n) {
                Some((status, reason)) => AlarmState {
                    name: n.clone(),
                    status: *status,
                    reason: reason.clone(),
                },
                None => AlarmState {
                    name: n.clone(),
                    status: AlarmStatus::Missing,
                    reason: String::new(),
                },
            })
            .collect())
    }
    async fn color_metrics(&self, w: &MetricsWindow) -> Result<WindowMetrics, AdapterError> {
        lock(&self.windows).push(w.clone());
        let missing = i64::from(*lock(&self.unpublished_periods)) + 1;
        let period = i64::try_from(w.period_seconds).unwrap_or(60);
        let last = w.end - time::Duration::seconds(missing * period);
        Ok(WindowMetrics {
            target: *lock(&self.target),
            baseline: *lock(&self.baseline),
            target_last_reported: (last >= w.start).then_some(last),
        })
    }
}

/// Services that run an image; readiness is scripted.
#[derive(Default)]
pub struct FakeCompute {
    /// service name -> (revision number, image)
    pub services: Mutex<HashMap<String, (u32, String)>>,
    pub deploys: Mutex<Vec<(String, String)>>,
    /// service name -> readiness returned (ready with desired 2 when absent)
    pub readiness: Mutex<HashMap<String, Readiness>>,
    /// workload name -> its units as a diagnosis shows them
    pub units: Mutex<HashMap<String, Vec<crate::ports::UnitReport>>>,
}

impl FakeCompute {
    pub fn with_service(self, service: &str, image: &str) -> Self {
        lock(&self.services).insert(service.to_string(), (1, image.to_string()));
        self
    }
    pub fn never_ready(&self, service: &str, reason: &str) {
        lock(&self.readiness).insert(
            service.to_string(),
            Readiness {
                ready: false,
                running: 0,
                desired: 2,
                reasons: vec![reason.to_string()],
                ..Readiness::default()
            },
        );
    }
    /// The platform gives up on the workload's rollout (an image that cannot be pulled).
    pub fn fail_rollout(&self, service: &str, reason: &str) {
        lock(&self.readiness).insert(
            service.to_string(),
            Readiness {
                ready: false,
                running: 0,
                desired: 2,
                failed: Some(reason.to_string()),
                ..Readiness::default()
            },
        );
    }
    pub fn image_of(&self, service: &str) -> Option<String> {
        lock(&self.services).get(service).map(|(_, i)| i.clone())
    }
}

#[async_trait]
impl ComputePlatform for FakeCompute {
    async fn current_image(&self, svc: &Workload) -> Result<Option<String>, AdapterError> {
        // a workload the platform does not have is NotFound, as ECS and Kubernetes answer
        match self.image_of(&svc.name) {
            Some(image) => Ok(Some(image)),
            None => Err(AdapterError::NotFound(svc.describe())),
        }
    }
    async fn deploy_image(
        &self,
        svc: &Workload,
        release: &crate::ports::Release<'_>,
    ) -> Result<String, AdapterError> {
        let image = release.image;
        let mut services = lock(&self.services);
        let entry = services
            .get_mut(&svc.name)
            .ok_or_else(|| AdapterError::NotFound(format!("service {}", svc.name)))?;
        if entry.1 != image {
            entry.0 += 1;
            entry.1 = image.to_string();
            lock(&self.deploys).push((svc.name.clone(), image.to_string()));
        }
        Ok(format!("{}:{}", svc.name, entry.0))
    }
    async fn readiness(&self, svc: &Workload, _revision: &str) -> Result<Readiness, AdapterError> {
        Ok(lock(&self.readiness)
            .get(&svc.name)
            .cloned()
            .unwrap_or(Readiness {
                ready: true,
                running: 2,
                desired: 2,
                ..Readiness::default()
            }))
    }
    async fn diagnose(
        &self,
        svc: &Workload,
    ) -> Result<crate::ports::WorkloadDiagnosis, AdapterError> {
        let r = self.readiness(svc, "").await?;
        Ok(crate::ports::WorkloadDiagnosis {
            running: r.running,
            desired: r.desired,
            units: lock(&self.units)
                .get(&svc.name)
                .cloned()
                .unwrap_or_default(),
            events: r.reasons.iter().map(|m| (None, m.clone())).collect(),
            commands: vec![],
        })
    }
}

/// The deployment table.
#[derive(Default)]
pub struct FakeStore {
    pub records: Mutex<HashMap<String, DeploymentRecord>>,
    pub envs: Mutex<HashMap<(String, String), EnvironmentState>>,
    pub steps: Mutex<BTreeMap<(String, u32), StepRecord>>,
    pub ledger: Mutex<BTreeMap<(String, u32, u32), LedgerEntry>>,
    pub lock_taken_at: Mutex<HashMap<(String, String), OffsetDateTime>>,
    pub evidence: Mutex<Vec<crate::domain::Evidence>>,
    pub quarantines: Mutex<HashMap<(String, String), crate::domain::Quarantine>>,
}

impl FakeStore {
    pub fn record(&self, id: &str) -> Option<DeploymentRecord> {
        lock(&self.records).get(id).cloned()
    }
    pub fn env(&self, service: &str, environment: &str) -> Option<EnvironmentState> {
        lock(&self.envs)
            .get(&(service.to_string(), environment.to_string()))
            .cloned()
    }
    pub fn put_env(&self, env: EnvironmentState) {
        lock(&self.envs).insert((env.service.clone(), env.environment.clone()), env);
    }
}

#[async_trait]
impl DeploymentStore for FakeStore {
    async fn environment(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentState>, AdapterError> {
        Ok(self.env(service, environment))
    }

    async fn record_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        lock(&self.records)
            .entry(record.id.clone())
            .or_insert_with(|| record.clone());
        Ok(())
    }

    async fn end_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        let mut records = lock(&self.records);
        match records.get(&record.id).map(|r| r.phase) {
            None | Some(Phase::Requested) => {
                records.insert(record.id.clone(), record.clone());
                Ok(())
            }
            Some(p) if p == record.phase => Ok(()),
            Some(p) => Err(AdapterError::ConditionFailed(format!(
                "deployment {} is in phase {p}; cannot end it as never started",
                record.id
            ))),
        }
    }

    async fn begin(&self, record: &DeploymentRecord) -> Result<BeginOutcome, AdapterError> {
        let mut records = lock(&self.records);
        if let Some(existing) = records.get(&record.id) {
            if existing.execution_arn != record.execution_arn {
                return Err(AdapterError::ConditionFailed(format!(
                    "deployment {} exists",
                    record.id
                )));
            }
            if existing.phase != Phase::Requested {
                return Ok(BeginOutcome::AlreadyStarted(Box::new(existing.clone())));
            }
        }
        let mut envs = lock(&self.envs);
        let key = (record.service.clone(), record.environment.clone());
        let env = envs.entry(key).or_insert_with(|| EnvironmentState {
            service: record.service.clone(),
            environment: record.environment.clone(),
            active_color: record.active_color,
            active_version: None,
            standby_version: None,
            active_deployment: None,
            last_deployment: None,
            updated_at: record.started_at,
        });
        if let Some(other) = &env.active_deployment
            && other != &record.id
        {
            return Ok(BeginOutcome::Locked { by: other.clone() });
        }
        env.active_deployment = Some(record.id.clone());
        records.insert(record.id.clone(), record.clone());
        Ok(BeginOutcome::Started)
    }

    async fn deployment(&self, id: &str) -> Result<Option<DeploymentRecord>, AdapterError> {
        Ok(self.record(id))
    }

    async fn transition(
        &self,
        id: &str,
        to: Phase,
        target_weight: Option<u16>,
        reason: Option<&str>,
    ) -> Result<DeploymentRecord, AdapterError> {
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {id}")))?;
        if !r.phase.can_move_to(to) {
            return Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {}; cannot move to {to}",
                r.phase
            )));
        }
        r.phase = to;
        r.status = crate::domain::DeploymentStatus::of(to);
        if let Some(w) = target_weight {
            r.target_weight = w;
        }
        if let Some(reason) = reason {
            r.reason = Some(reason.to_string());
        }
        Ok(r.clone())
    }

    async fn record_readiness(
        &self,
        id: &str,
        readiness: &ReadinessSummary,
    ) -> Result<(), AdapterError> {
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {id}")))?;
        r.readiness = Some(readiness.clone());
        Ok(())
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), AdapterError> {
        lock(&self.steps)
            .entry((step.deployment_id.clone(), step.step_index))
            .or_insert_with(|| step.clone());
        Ok(())
    }

    async fn record_evaluation(&self, e: &LedgerEntry) -> Result<(), AdapterError> {
        lock(&self.ledger)
            .entry((e.deployment_id.clone(), e.step_index, e.verification_index))
            .or_insert_with(|| e.clone());
        Ok(())
    }

    async fn finish(
        &self,
        record: &DeploymentRecord,
        env: &EnvironmentState,
    ) -> Result<(), AdapterError> {
        let mut records = lock(&self.records);
        let current = records
            .get(&record.id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {}", record.id)))?;
        if current.phase == record.phase {
            return Ok(());
        }
        if !current.phase.can_move_to(record.phase) {
            return Err(AdapterError::ConditionFailed(format!(
                "deployment {} is in phase {}; cannot finish as {}",
                record.id, current.phase, record.phase
            )));
        }
        let mut envs = lock(&self.envs);
        let key = (env.service.to_string(), env.environment.to_string());
        if let Some(held) = envs.get(&key).and_then(|e| e.active_deployment.clone())
            && held != record.id
        {
            return Err(AdapterError::ConditionFailed(format!(
                "environment is locked by {held}"
            )));
        }
        let mut released = env.clone();
        released.active_deployment = None;
        envs.insert(key, released);
        records.insert(record.id.clone(), record.clone());
        if let Some(q) = crate::domain::quarantine_after(record) {
            lock(&self.quarantines).insert((q.service.clone(), q.version.clone()), q);
        }
        Ok(())
    }

    async fn await_approval(
        &self,
        id: &str,
        task_token: &str,
        timeout_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, AdapterError> {
        use crate::domain::{Approval, ApprovalState};
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {id}")))?;
        let pending = r
            .approval
            .as_ref()
            .is_some_and(|a| a.state == ApprovalState::Pending);
        match r.phase {
            Phase::DeployingGreen => {}
            Phase::AwaitingApproval if pending => {}
            other => {
                return Err(AdapterError::ConditionFailed(format!(
                    "deployment {id} is in phase {other}; cannot wait for approval"
                )));
            }
        }
        r.phase = Phase::AwaitingApproval;
        r.status = crate::domain::DeploymentStatus::of(Phase::AwaitingApproval);
        let requested_at = r.approval.as_ref().map_or(now, |a| a.requested_at);
        r.approval = Some(Approval {
            state: ApprovalState::Pending,
            requested_at,
            timeout_seconds,
            task_token: Some(task_token.to_string()),
            decided_by: None,
            decided_at: None,
            comment: None,
        });
        Ok(r.clone())
    }

    async fn decide_approval(
        &self,
        id: &str,
        decision: &crate::domain::ApprovalDecision,
    ) -> Result<DeploymentRecord, AdapterError> {
        use crate::domain::ApprovalState;
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {id}")))?;
        let Some(a) = r.approval.as_mut() else {
            return Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {} and needs no approval",
                r.phase
            )));
        };
        if a.state == decision.state && a.decided_by.as_deref() == Some(decision.by.as_str()) {
            return Ok(r.clone());
        }
        if r.phase != Phase::AwaitingApproval || a.state != ApprovalState::Pending {
            return Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {}; its approval is {}",
                r.phase,
                a.state.as_str()
            )));
        }
        a.state = decision.state;
        a.decided_by = Some(decision.by.clone());
        a.decided_at = Some(decision.at);
        a.comment = decision.comment.clone();
        Ok(r.clone())
    }

    async fn forget_task_token(&self, id: &str) -> Result<(), AdapterError> {
        use crate::domain::ApprovalState;
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| AdapterError::NotFound(format!("deployment {id}")))?;
        match r.approval.as_mut() {
            Some(a) if a.state != ApprovalState::Pending => {
                a.task_token = None;
                Ok(())
            }
            Some(_) => Err(AdapterError::ConditionFailed(format!(
                "deployment {id}'s approval is still pending; its task token stays"
            ))),
            None => Err(AdapterError::ConditionFailed(format!(
                "deployment {id} has no approval"
            ))),
        }
    }

    async fn add_evidence(&self, evidence: &crate::domain::Evidence) -> Result<(), AdapterError> {
        let mut all = lock(&self.evidence);
        if !all.iter().any(|e| e.id == evidence.id) {
            all.push(evidence.clone());
        }
        Ok(())
    }

    async fn evidence(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Vec<crate::domain::Evidence>, AdapterError> {
        let mut found: Vec<crate::domain::Evidence> = lock(&self.evidence)
            .iter()
            .filter(|e| e.service == service && e.version == version)
            .cloned()
            .collect();
        found.sort_by_key(|e| e.recorded_at);
        Ok(found)
    }

    async fn quarantine(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<crate::domain::Quarantine>, AdapterError> {
        Ok(lock(&self.quarantines)
            .get(&(service.to_string(), version.to_string()))
            .cloned())
    }

    async fn clear_quarantine(
        &self,
        service: &str,
        version: &str,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<crate::domain::Quarantine, AdapterError> {
        let mut all = lock(&self.quarantines);
        match all.get_mut(&(service.to_string(), version.to_string())) {
            Some(q) if !q.cleared => {
                q.cleared = true;
                q.cleared_by = Some(by.to_string());
                q.cleared_at = Some(at);
                q.clear_reason = Some(reason.to_string());
                Ok(q.clone())
            }
            _ => Err(AdapterError::NotFound(format!(
                "{service} v{version} is not quarantined"
            ))),
        }
    }

    async fn deployments_of_version(
        &self,
        service: &str,
        version: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        let mut found: Vec<DeploymentRecord> = lock(&self.records)
            .values()
            .filter(|r| {
                r.service == service && r.version == version && r.environment == environment
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        Ok(found)
    }

    async fn steps(&self, id: &str) -> Result<Vec<StepRecord>, AdapterError> {
        Ok(lock(&self.steps)
            .values()
            .filter(|s| s.deployment_id == id)
            .cloned()
            .collect())
    }

    async fn ledger(&self, id: &str) -> Result<Vec<LedgerEntry>, AdapterError> {
        Ok(lock(&self.ledger)
            .values()
            .filter(|e| e.deployment_id == id)
            .cloned()
            .collect())
    }

    async fn acquire_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
        now: OffsetDateTime,
        stale_after: time::Duration,
    ) -> Result<LockOutcome, AdapterError> {
        let records = lock(&self.records);
        let mut envs = lock(&self.envs);
        let mut taken = lock(&self.lock_taken_at);
        let key = (service.to_string(), environment.to_string());
        let env = envs.entry(key.clone()).or_insert_with(|| EnvironmentState {
            service: service.to_string(),
            environment: environment.to_string(),
            active_color: None,
            active_version: None,
            standby_version: None,
            active_deployment: None,
            last_deployment: None,
            updated_at: now,
        });
        if let Some(holder) = env.active_deployment.clone() {
            let claim =
                crate::domain::claim_lock(&holder, id, taken.get(&key).copied(), now, stale_after);
            if !claim.take_over(records.contains_key(&holder)) {
                return Ok(LockOutcome::HeldBy(holder));
            }
        }
        env.active_deployment = Some(id.to_string());
        taken.insert(key, now);
        Ok(LockOutcome::Acquired)
    }

    async fn release_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
    ) -> Result<(), AdapterError> {
        let mut envs = lock(&self.envs);
        if let Some(env) = envs.get_mut(&(service.to_string(), environment.to_string()))
            && env.active_deployment.as_deref() == Some(id)
        {
            env.active_deployment = None;
        }
        Ok(())
    }

    async fn deployments_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        let mut all: Vec<DeploymentRecord> = lock(&self.records)
            .values()
            .filter(|r| r.started_at >= from && r.started_at < to)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(all)
    }

    async fn history(
        &self,
        service: &str,
        environment: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, AdapterError> {
        let mut all: Vec<DeploymentRecord> = lock(&self.records)
            .values()
            .filter(|r| r.service == service && r.environment == environment)
            .cloned()
            .collect();
        all.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let items: Vec<_> = all
            .iter()
            .skip(skip)
            .take(limit as usize)
            .cloned()
            .collect();
        let next = (skip + items.len() < all.len()).then(|| (skip + items.len()).to_string());
        Ok(Page { items, next })
    }
}

/// As the DynamoDB registry's conditions: the fields `kept` selects are exactly as stored
/// (`Transient` otherwise, as a write that lost a race).
fn kept_as_stored<T: serde::Serialize>(
    stored: &T,
    new: &T,
    kept: impl Fn(&str) -> bool,
) -> Result<(), AdapterError> {
    let (stored, new) = (serde_json::to_value(stored), serde_json::to_value(new));
    let (Ok(stored), Ok(new)) = (stored, new) else {
        return Err(AdapterError::Other("unserializable config".into()));
    };
    let selected = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| kept(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if selected(&stored) == selected(&new) {
        Ok(())
    } else {
        Err(AdapterError::Transient(
            "the configuration changed while being saved; retry".into(),
        ))
    }
}

/// The service registry.
#[derive(Default)]
pub struct FakeRegistry {
    pub services: Mutex<BTreeMap<String, ServiceConfig>>,
    pub environments: Mutex<BTreeMap<(String, String), EnvironmentConfig>>,
}

#[async_trait]
impl Registry for FakeRegistry {
    async fn put_service(&self, service: &ServiceConfig) -> Result<(), AdapterError> {
        let mut services = lock(&self.services);
        if let Some(other) = services
            .values()
            .find(|s| s.repository == service.repository && s.service != service.service)
        {
            return Err(AdapterError::ConditionFailed(format!(
                "repository {} already releases service {}",
                service.repository, other.service
            )));
        }
        services.insert(service.service.to_string(), service.clone());
        Ok(())
    }
    async fn service(&self, service: &str) -> Result<Option<ServiceConfig>, AdapterError> {
        Ok(lock(&self.services).get(service).cloned())
    }
    async fn service_by_repository(
        &self,
        repository: &str,
    ) -> Result<Option<ServiceConfig>, AdapterError> {
        Ok(lock(&self.services)
            .values()
            .find(|s| s.repository == repository)
            .cloned())
    }
    async fn put_environment(&self, env: &EnvironmentConfig) -> Result<(), AdapterError> {
        lock(&self.environments).insert(
            (env.service.to_string(), env.environment.to_string()),
            env.clone(),
        );
        Ok(())
    }
    async fn put_service_keeping_policy(
        &self,
        service: &ServiceConfig,
    ) -> Result<(), AdapterError> {
        let stored = lock(&self.services).get(service.service.as_str()).cloned();
        if let Some(stored) = stored {
            kept_as_stored(&stored, service, |k| {
                crate::registry::SERVICE_POLICY_FIELDS.contains(&k)
            })?;
        }
        self.put_service(service).await
    }
    async fn put_service_policy(&self, service: &ServiceConfig) -> Result<(), AdapterError> {
        let stored = lock(&self.services).get(service.service.as_str()).cloned();
        let Some(stored) = stored else {
            return Err(AdapterError::NotFound(format!(
                "service {}",
                service.service
            )));
        };
        kept_as_stored(&stored, service, |k| {
            !crate::registry::SERVICE_POLICY_FIELDS.contains(&k)
        })?;
        self.put_service(service).await
    }
    async fn put_environment_policy(&self, env: &EnvironmentConfig) -> Result<(), AdapterError> {
        let key = (env.service.to_string(), env.environment.to_string());
        let stored = lock(&self.environments).get(&key).cloned();
        let Some(stored) = stored else {
            return Err(AdapterError::NotFound(format!(
                "environment {}/{}",
                env.service, env.environment
            )));
        };
        kept_as_stored(&stored, env, |k| {
            !crate::registry::ENVIRONMENT_POLICY_FIELDS.contains(&k)
        })?;
        self.put_environment(env).await
    }
    async fn put_environment_keeping_policy(
        &self,
        env: &EnvironmentConfig,
    ) -> Result<(), AdapterError> {
        let key = (env.service.to_string(), env.environment.to_string());
        let stored = lock(&self.environments).get(&key).cloned();
        if let Some(stored) = stored {
            kept_as_stored(&stored, env, |k| {
                crate::registry::ENVIRONMENT_POLICY_FIELDS.contains(&k)
            })?;
        }
        self.put_environment(env).await
    }
    async fn environment_config(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentConfig>, AdapterError> {
        Ok(lock(&self.environments)
            .get(&(service.to_string(), environment.to_string()))
            .cloned())
    }
    async fn environments_by_alarm(
        &self,
        alarm: &str,
    ) -> Result<Vec<(String, String)>, AdapterError> {
        Ok(lock(&self.environments)
            .values()
            .filter(|e| e.alarms.iter().any(|a| a == alarm))
            .map(|e| (e.service.to_string(), e.environment.to_string()))
            .collect())
    }
}

/// The image registry: scans and push times by digest.
#[derive(Default)]
pub struct FakeImages {
    pub scans: Mutex<HashMap<String, crate::domain::ScanSummary>>,
    pub pushed: Mutex<HashMap<String, OffsetDateTime>>,
    /// Digests deleted from the repository (their scans stay readable).
    pub deleted: Mutex<Vec<String>>,
}

impl FakeImages {
    /// A completed scan of `digest` with `counts` per severity.
    pub fn scanned(&self, digest: &str, counts: &[(&str, u32)]) {
        lock(&self.scans).insert(
            digest.to_string(),
            crate::domain::ScanSummary {
                status: "COMPLETE".into(),
                severity_counts: counts.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            },
        );
    }
}

#[async_trait]
impl crate::ports::Images for FakeImages {
    async fn scan(
        &self,
        _repository: &str,
        digest: &str,
    ) -> Result<Option<crate::domain::ScanSummary>, AdapterError> {
        Ok(lock(&self.scans).get(digest).cloned())
    }
    /// An image is stored once it was pushed or scanned here, until it is deleted.
    async fn stored_image(
        &self,
        _registry_id: &str,
        _repository: &str,
        digest: &str,
    ) -> Result<Option<crate::ports::StoredImage>, AdapterError> {
        let pushed_at = lock(&self.pushed).get(digest).copied();
        let stored = (pushed_at.is_some() || lock(&self.scans).contains_key(digest))
            && !lock(&self.deleted).iter().any(|d| d == digest);
        Ok(stored.then_some(crate::ports::StoredImage { pushed_at }))
    }
}

/// The state machine's executions: started by name, stopped with a cause.
#[derive(Default)]
pub struct FakeExecutions {
    pub started: Mutex<Vec<(String, DeploymentRequest)>>,
    pub stopped: Mutex<Vec<(String, String, String)>>,
    /// Task tokens resumed, with their output.
    pub resumed: Mutex<Vec<(String, serde_json::Value)>>,
    /// Task tokens failed, with error and cause.
    pub failed_tasks: Mutex<Vec<(String, String, String)>>,
    /// Errors returned by the next `start` calls.
    pub fail_next_starts: Mutex<Vec<AdapterError>>,
    /// Executions (by name) that have ended.
    pub ended: Mutex<Vec<String>>,
}

impl FakeExecutions {
    pub fn arn(name: &str) -> String {
        format!("arn:aws:states:us-east-1:123456789012:execution:blue-green:{name}")
    }
    pub fn started_names(&self) -> Vec<String> {
        lock(&self.started).iter().map(|(n, _)| n.clone()).collect()
    }
}

#[async_trait]
impl Executions for FakeExecutions {
    async fn start(
        &self,
        name: &str,
        input: &DeploymentRequest,
    ) -> Result<StartedExecution, AdapterError> {
        let mut failures = lock(&self.fail_next_starts);
        if !failures.is_empty() {
            return Err(failures.remove(0));
        }
        let mut started = lock(&self.started);
        let existing = started
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i.clone());
        if existing.is_none() {
            started.push((name.to_string(), input.clone()));
        }
        let ran = existing.as_ref().unwrap_or(input);
        let arn = Self::arn(name);
        let stopped = lock(&self.stopped).iter().any(|(a, _, _)| *a == arn);
        Ok(StartedExecution {
            execution_arn: arn,
            already_existed: existing.is_some(),
            running: !stopped && !lock(&self.ended).iter().any(|n| n == name),
            target: Some((ran.service.to_string(), ran.environment.to_string())),
        })
    }
    async fn stop(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), AdapterError> {
        lock(&self.stopped).push((
            execution_arn.to_string(),
            error.to_string(),
            cause.to_string(),
        ));
        Ok(())
    }
    async fn resume(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<(), AdapterError> {
        lock(&self.resumed).push((task_token.to_string(), output.clone()));
        Ok(())
    }
    async fn fail_task(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), AdapterError> {
        lock(&self.failed_tasks).push((
            task_token.to_string(),
            error.to_string(),
            cause.to_string(),
        ));
        Ok(())
    }
}

/// Every environment's services are the same fakes; the roles asked for are recorded.
pub struct FakeAccess {
    pub router: std::sync::Arc<FakeRouter>,
    pub targets: std::sync::Arc<FakeTargetHealth>,
    pub compute: std::sync::Arc<FakeCompute>,
    pub signals: std::sync::Arc<FakeSignals>,
    pub roles: Mutex<Vec<Option<String>>>,
    /// Every reach asked for, in order.
    pub reaches: Mutex<Vec<crate::ports::Reach>>,
}

impl FakeAccess {
    fn note(&self, reach: &crate::ports::Reach) {
        lock(&self.roles).push(reach.role_arn.clone());
        lock(&self.reaches).push(reach.clone());
    }
    pub fn roles(&self) -> Vec<Option<String>> {
        lock(&self.roles).clone()
    }
}

#[async_trait]
impl EnvironmentAccess for FakeAccess {
    async fn router(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<std::sync::Arc<dyn TrafficRouter>, AdapterError> {
        self.note(reach);
        Ok(self.router.clone())
    }
    async fn targets(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<std::sync::Arc<dyn TargetHealth>, AdapterError> {
        self.note(reach);
        Ok(self.targets.clone())
    }
    async fn compute(
        &self,
        reach: &crate::ports::Reach,
        _platform: crate::domain::Platform,
    ) -> Result<std::sync::Arc<dyn ComputePlatform>, AdapterError> {
        self.note(reach);
        Ok(self.compute.clone())
    }
    async fn signals(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<std::sync::Arc<dyn HealthSignals>, AdapterError> {
        self.note(reach);
        Ok(self.signals.clone())
    }
}

/// A clock the test moves by hand.
pub struct FixedClock(pub Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(t: OffsetDateTime) -> Self {
        Self(Mutex::new(t))
    }
    pub fn advance(&self, seconds: i64) {
        let mut t = lock(&self.0);
        *t += time::Duration::seconds(seconds);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.0)
    }
}

/// Fixtures: a sample environment (checkout/dev) and its execution state.
pub mod sample {
    use super::*;
    use crate::domain::Color;
    use serde_json::{Value, json};
    use std::sync::Arc;

    pub const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    pub const BLUE_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-blue/73e2d6bc24d8a067";
    pub const GREEN_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-green/83e2d6bc24d8a068";
    pub const IMAGE_V120: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.2.0";
    pub const IMAGE_V130: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0";
    pub const ALARM: &str = "checkout-dev-green-5xx";
    pub const DEPLOYMENT_ID: &str = "checkout-dev-1-3-0-0001";

    /// A checked identifier (service, environment, deployment id, digest, role, account) from
    /// a test's literal; a bad literal fails the test at once.
    pub fn id<T>(s: &str) -> T
    where
        T: for<'a> TryFrom<&'a str, Error = crate::domain::InvalidName>,
    {
        T::try_from(s).unwrap_or_else(|e| panic!("test value: {e}"))
    }

    pub fn tg(arn: &str) -> TargetGroupArn {
        TargetGroupArn::parse(arn).unwrap_or_else(|e| panic!("fixture ARN: {e}"))
    }

    /// A deployment of checkout 1.3.0 to dev with local-run timings (seconds).
    pub fn request() -> Value {
        json!({
            "service": "checkout",
            "environment": "dev",
            "version": "1.3.0",
            "image": IMAGE_V130,
            "deployer": "alice@example.com",
            "traffic": {"listener_arn": LISTENER, "blue_target_group_arn": BLUE_TG, "green_target_group_arn": GREEN_TG},
            "compute": {"platform": "ecs", "cluster": "checkout-dev", "blue_service": "checkout-blue", "green_service": "checkout-green"},
            "alarms": [ALARM],
            "timings": {"step_wait_seconds": 2, "verification_seconds": 3, "verification_interval_seconds": 1,
                        "metrics_period_seconds": 1, "metrics_delay_seconds": 1,
                        "health_poll_seconds": 1, "health_timeout_seconds": 3}
        })
    }

    pub fn state(request: Value) -> Value {
        json!({
            "deployment_id": DEPLOYMENT_ID,
            "execution_arn": format!("arn:aws:states:us-east-1:123456789012:execution:blue-green:{DEPLOYMENT_ID}"),
            "started_at": "2025-01-03T10:00:00Z",
            "request": request
        })
    }

    /// The record deploy-green writes for the sample request, in `phase`.
    pub fn record(phase: crate::domain::Phase) -> crate::domain::DeploymentRecord {
        crate::domain::DeploymentRecord {
            id: DEPLOYMENT_ID.into(),
            execution_arn: format!(
                "arn:aws:states:us-east-1:123456789012:execution:blue-green:{DEPLOYMENT_ID}"
            ),
            service: "checkout".into(),
            environment: "dev".into(),
            version: "1.3.0".into(),
            image: IMAGE_V130.into(),
            image_digest: None,
            strategy: crate::domain::Strategy::BlueGreen,
            deployer: "alice@example.com".into(),
            triggered_by: None,
            active_color: Some(Color::Blue),
            target_color: Some(Color::Green),
            previous_version: Some("1.2.0".into()),
            replaced_version: Some("1.2.0".into()),
            phase,
            status: crate::domain::DeploymentStatus::of(phase),
            target_weight: 0,
            started_at: time::macros::datetime!(2025-01-03 10:00:00 UTC),
            finished_at: None,
            duration_seconds: None,
            reason: None,
            readiness: None,
            traffic: serde_json::from_value(request()["traffic"].clone())
                .unwrap_or_else(|e| panic!("{e}")),
            role_arn: None,
            approval: None,
            gates: None,
            image_pushed_at: None,
        }
    }

    /// Progress as deploy-green leaves it: blue active, green ready, no step yet.
    pub fn progress(step_index: Option<u32>, target_weight: u16) -> crate::contracts::Progress {
        crate::contracts::Progress {
            next: crate::contracts::NextAction::Shift,
            wait_seconds: 0,
            active_color: Color::Blue,
            target_color: Color::Green,
            green_polls: 1,
            step_index,
            target_weight,
            window_start: None,
            metrics_waits: 0,
            verifying: false,
            verification_evaluations: 0,
            baseline_p99_ms: None,
        }
    }

    /// The sample state carrying `progress`.
    pub fn state_with(progress: &crate::contracts::Progress) -> Value {
        let mut v = state(request());
        v["progress"] = serde_json::to_value(progress).unwrap_or_else(|e| panic!("{e}"));
        v
    }

    /// Every fake, wired as a healthy checkout/dev with blue active on 1.2.0.
    pub struct World {
        pub access: Arc<FakeAccess>,
        pub registry: Arc<FakeRegistry>,
        pub executions: Arc<FakeExecutions>,
        pub router: Arc<FakeRouter>,
        pub targets: Arc<FakeTargetHealth>,
        pub signals: Arc<FakeSignals>,
        pub compute: Arc<FakeCompute>,
        pub store: Arc<FakeStore>,
        pub images: Arc<FakeImages>,
        pub clock: Arc<FixedClock>,
    }

    impl Default for World {
        fn default() -> Self {
            let targets = FakeTargetHealth::default();
            targets.set(&tg(BLUE_TG), 2, 2);
            targets.set(&tg(GREEN_TG), 2, 2);
            let signals = FakeSignals::default();
            signals.set_alarm(ALARM, AlarmStatus::Ok, "Threshold not crossed");
            let router = Arc::new(FakeRouter::new(TrafficSplit::all_on(Color::Blue)));
            let targets = Arc::new(targets);
            let signals = Arc::new(signals);
            let compute = Arc::new(
                FakeCompute::default()
                    .with_service("checkout-blue", IMAGE_V120)
                    .with_service("checkout-green", IMAGE_V120),
            );
            Self {
                access: Arc::new(FakeAccess {
                    router: router.clone(),
                    targets: targets.clone(),
                    compute: compute.clone(),
                    signals: signals.clone(),
                    roles: Mutex::new(Vec::new()),
                    reaches: Mutex::new(Vec::new()),
                }),
                registry: Arc::new(FakeRegistry::default()),
                executions: Arc::new(FakeExecutions::default()),
                router,
                targets,
                signals,
                compute,
                store: Arc::new(FakeStore::default()),
                images: Arc::new(FakeImages::default()),
                clock: Arc::new(FixedClock::at(
                    time::macros::datetime!(2025-01-03 10:00:05 UTC),
                )),
            }
        }
    }

    impl World {
        /// The sample environment's registry entry (the sample request without a release).
        pub fn environment_config() -> crate::registry::EnvironmentConfig {
            let mut v = request();
            if let Some(o) = v.as_object_mut() {
                for k in ["version", "image", "deployer"] {
                    o.remove(k);
                }
            }
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
        }

        /// Registers checkout (repository `checkout`) and its dev environment.
        pub async fn with_registry(self) -> Self {
            let env = Self::environment_config();
            self.registry
                .put_environment(&env)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            self.registry
                .put_service(&crate::registry::ServiceConfig {
                    service: id("checkout"),
                    repository: "checkout".into(),
                    release_pattern: crate::registry::DEFAULT_RELEASE_PATTERN.into(),
                    auto_deploy: vec![id("dev")],
                    promotion: Default::default(),
                    // the account the sample environments' roles are in
                    accounts: vec![id("210987654321")],
                    evidence_recorders: Default::default(),
                    github_logins: Default::default(),
                })
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            self
        }

        /// The sample deployment begun and shifted to `percent` on green as step `step_index`
        /// (record, listener and step log agree).
        pub async fn shifted_to(self, percent: u16, step_index: u32) -> Self {
            use crate::domain::{Phase, StepRecord};
            let _ = self.store.begin(&record(Phase::DeployingGreen)).await;
            let _ = self
                .store
                .transition(DEPLOYMENT_ID, Phase::ShiftingTraffic, Some(percent), None)
                .await;
            let split = TrafficSplit::with_percent_on(Color::Green, percent)
                .unwrap_or_else(|e| panic!("{e}"));
            *lock(&self.router.split) = split;
            let _ = self
                .store
                .record_step(&StepRecord {
                    deployment_id: DEPLOYMENT_ID.into(),
                    step_index,
                    split,
                    target_color: Color::Green,
                    shifted_at: time::macros::datetime!(2025-01-03 10:00:03 UTC),
                })
                .await;
            self
        }

        pub fn phase_deps(&self) -> crate::ports::PhaseDeps {
            crate::ports::PhaseDeps {
                store: self.store.clone(),
                access: self.access.clone(),
                registry: self.registry.clone(),
                clock: self.clock.clone(),
            }
        }

        pub fn rollback_deps(&self) -> crate::usecases::rollback::RollbackDeps {
            crate::usecases::rollback::RollbackDeps {
                store: self.store.clone(),
                access: self.access.clone(),
                clock: self.clock.clone(),
            }
        }

        pub fn start_deps(&self) -> crate::usecases::start::StartDeps {
            crate::usecases::start::StartDeps {
                registry: self.registry.clone(),
                store: self.store.clone(),
                executions: self.executions.clone(),
                clock: self.clock.clone(),
            }
        }
    }
}
