//! Fault injection for chaos tests: wrappers around the ports the phases use that make an AWS
//! call throttle, fail with a 5xx, time out, succeed but report failure, or never return (the
//! Lambda killed mid-phase), at configured rates drawn from a seeded generator so that a run
//! replays exactly from its seed.
//!
//! Model of the SDK: the real clients retry throttling, 5xx and timeouts inside one adapter
//! call (standard retry mode, 3 attempts). [`Faults::call`] does the same: each *attempt* draws
//! a fault independently; a transient fault is retried up to [`FaultRates::sdk_attempts`]
//! attempts and only then surfaces as `AdapterError::Transient`. A "succeed but report failure"
//! attempt performs the inner call and then loses the response, so the retry replays a call
//! that already took effect: this is what makes every port's idempotency matter. A kill is not
//! retried: the call never returns, and the driver drops the handler's future.

use crate::contracts::DeploymentRequest;
use crate::domain::{
    AlarmState, ApprovalDecision, DeploymentRecord, EnvironmentState, Evidence, LedgerEntry, Phase,
    Quarantine, ReadinessSummary, StepRecord, TargetGroupArn, TrafficSplit,
};
use crate::error::AdapterError;
use crate::ports::{
    BeginOutcome, ComputePlatform, DeploymentStore, EnvironmentAccess, Executions, ForwardTarget,
    HealthSignals, LockOutcome, MetricsWindow, Page, Readiness, StartedExecution, TargetHealth,
    TargetHealthReport, TrafficRouter, WindowMetrics, Workload, WorkloadDiagnosis,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// SplitMix64: tiny, fast and, unlike a crate's generator, its sequence for a seed can never
/// change under a dependency upgrade, so a printed seed replays forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `ThrottlingException` (HTTP 400, retryable).
    Throttle,
    /// `InternalFailure` (HTTP 500).
    ServerError,
    /// No response within the client's timeout; the request never reached the service.
    Timeout,
    /// The call took effect but its response was lost (e.g. a read timeout after the write).
    ReportedFailure,
    /// The Lambda process died during the call: the call never returns.
    Kill,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::Timeout,
        FaultKind::ReportedFailure,
        FaultKind::Kill,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "5xx",
            FaultKind::Timeout => "timeout",
            FaultKind::ReportedFailure => "succeeded-but-reported-failure",
            FaultKind::Kill => "kill",
        }
    }
    fn message(self, call: &str) -> String {
        match self {
            FaultKind::Throttle => format!("{call}: ThrottlingException: Rate exceeded"),
            FaultKind::ServerError => {
                format!("{call}: InternalFailure (HTTP 500): the service had an internal error")
            }
            FaultKind::Timeout => format!("{call}: operation timed out before a response"),
            FaultKind::ReportedFailure => {
                format!("{call}: response lost (read timeout) after the request was sent")
            }
            FaultKind::Kill => format!("{call}: the process was killed"),
        }
    }
}

/// Per-attempt probabilities of each fault. Their sum must stay at or below 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    pub throttle: f64,
    pub server_error: f64,
    pub timeout: f64,
    pub reported_failure: f64,
    pub kill: f64,
    /// Attempts the SDK makes for a transient fault before the adapter sees it (3 in the real
    /// clients' standard retry mode; 1 models a call with no SDK retry at all).
    pub sdk_attempts: u32,
}

impl FaultRates {
    pub fn none() -> Self {
        Self {
            throttle: 0.0,
            server_error: 0.0,
            timeout: 0.0,
            reported_failure: 0.0,
            kill: 0.0,
            sdk_attempts: 3,
        }
    }
    pub fn total(&self) -> f64 {
        self.throttle + self.server_error + self.timeout + self.reported_failure + self.kill
    }
    fn rate(&self, k: FaultKind) -> f64 {
        match k {
            FaultKind::Throttle => self.throttle,
            FaultKind::ServerError => self.server_error,
            FaultKind::Timeout => self.timeout,
            FaultKind::ReportedFailure => self.reported_failure,
            FaultKind::Kill => self.kill,
        }
    }
}

/// One fault injected: which call, which attempt, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    pub call: &'static str,
    pub attempt: u32,
    pub kind: FaultKind,
}

/// Something run in the middle of a call (e.g. an alarm trigger racing a phase), once.
pub type Interleaved = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Hook {
    /// Fires at the call with this sequence number.
    at_call: u64,
    /// Before the inner call takes effect, or after.
    before: bool,
    run: Interleaved,
}

/// The fault source shared by every wrapper of one run.
pub struct Faults {
    rng: Mutex<Rng>,
    rates: Mutex<FaultRates>,
    log: Mutex<Vec<InjectedFault>>,
    /// The call a kill happened in, until the driver takes it.
    killed: Mutex<Option<&'static str>>,
    calls: Mutex<u64>,
    hook: Mutex<Option<Hook>>,
}

impl Faults {
    pub fn new(seed: u64, rates: FaultRates) -> Arc<Self> {
        Arc::new(Self {
            rng: Mutex::new(Rng::new(seed)),
            rates: Mutex::new(rates),
            log: Mutex::new(Vec::new()),
            killed: Mutex::new(None),
            calls: Mutex::new(0),
            hook: Mutex::new(None),
        })
    }

    /// Changes the rates from now on (e.g. none while a test checks the outcome).
    pub fn set_rates(&self, rates: FaultRates) {
        *lock(&self.rates) = rates;
    }

    pub fn rates(&self) -> FaultRates {
        *lock(&self.rates)
    }

    /// Every fault injected so far, in order.
    pub fn log(&self) -> Vec<InjectedFault> {
        lock(&self.log).clone()
    }

    /// Injected faults counted by kind.
    pub fn counts(&self) -> BTreeMap<FaultKind, u64> {
        let mut counts = BTreeMap::new();
        for f in lock(&self.log).iter() {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts
    }

    /// Calls made through the wrappers so far (attempts retried inside one call count once).
    pub fn calls(&self) -> u64 {
        *lock(&self.calls)
    }

    /// The call a kill left hanging, if one did since the last time this was asked.
    pub fn take_killed(&self) -> Option<&'static str> {
        lock(&self.killed).take()
    }

    /// Runs `run` once, in the middle of call number `at_call` (counted from 0 over the life
    /// of these faults), before or after that call takes effect.
    pub fn interleave(&self, at_call: u64, before: bool, run: Interleaved) {
        *lock(&self.hook) = Some(Hook {
            at_call,
            before,
            run,
        });
    }

    /// Whether the interleaved action is still waiting for its call.
    pub fn interleave_pending(&self) -> bool {
        lock(&self.hook).is_some()
    }

    fn draw(&self) -> Option<FaultKind> {
        let rates = self.rates();
        let x = lock(&self.rng).unit();
        let mut acc = 0.0;
        for k in FaultKind::ALL {
            acc += rates.rate(k);
            if x < acc {
                return Some(k);
            }
        }
        None
    }

    fn take_hook(&self, call: u64, before: bool) -> Option<Interleaved> {
        let mut hook = lock(&self.hook);
        if hook
            .as_ref()
            .is_some_and(|h| h.at_call == call && h.before == before)
        {
            hook.take().map(|h| h.run)
        } else {
            None
        }
    }

    async fn inner<T, Fut>(&self, seq: u64, op: &mut impl FnMut() -> Fut) -> Result<T, AdapterError>
    where
        Fut: Future<Output = Result<T, AdapterError>>,
    {
        if let Some(run) = self.take_hook(seq, true) {
            run().await;
        }
        let out = op().await;
        if let Some(run) = self.take_hook(seq, false) {
            run().await;
        }
        out
    }

    /// One adapter call named `call` (e.g. `ELBv2.set_split`), with the SDK's retries of
    /// transient faults; `op` performs the call on the wrapped port.
    pub async fn call<T, Fut>(
        &self,
        call: &'static str,
        mut op: impl FnMut() -> Fut,
    ) -> Result<T, AdapterError>
    where
        Fut: Future<Output = Result<T, AdapterError>>,
    {
        let seq = {
            let mut calls = lock(&self.calls);
            *calls += 1;
            *calls - 1
        };
        let attempts = self.rates().sdk_attempts.max(1);
        for attempt in 1..=attempts {
            let Some(kind) = self.draw() else {
                return self.inner(seq, &mut op).await;
            };
            lock(&self.log).push(InjectedFault {
                call,
                attempt,
                kind,
            });
            match kind {
                FaultKind::Throttle | FaultKind::ServerError | FaultKind::Timeout => {}
                FaultKind::ReportedFailure => {
                    let _lost = self.inner(seq, &mut op).await;
                }
                FaultKind::Kill => {
                    // Half the time the process dies after the call took effect.
                    if lock(&self.rng).chance(0.5) {
                        let _lost = self.inner(seq, &mut op).await;
                    }
                    *lock(&self.killed) = Some(call);
                    return std::future::pending().await;
                }
            }
            if attempt == attempts {
                return Err(match kind {
                    FaultKind::Throttle => AdapterError::Throttled(kind.message(call)),
                    _ => AdapterError::Transient(kind.message(call)),
                });
            }
        }
        Err(AdapterError::Transient(format!("{call}: no attempt made")))
    }
}

/// A traffic router whose calls fail as configured.
pub struct FaultyRouter {
    pub inner: Arc<dyn TrafficRouter>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl TrafficRouter for FaultyRouter {
    async fn current_split(&self, fwd: &ForwardTarget) -> Result<TrafficSplit, AdapterError> {
        self.faults
            .call("ELBv2.DescribeListeners", || self.inner.current_split(fwd))
            .await
    }
    async fn set_split(
        &self,
        fwd: &ForwardTarget,
        split: TrafficSplit,
    ) -> Result<(), AdapterError> {
        self.faults
            .call("ELBv2.ModifyListener", || self.inner.set_split(fwd, split))
            .await
    }
}

pub struct FaultyTargets {
    pub inner: Arc<dyn TargetHealth>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl TargetHealth for FaultyTargets {
    async fn target_health(&self, tg: &TargetGroupArn) -> Result<TargetHealthReport, AdapterError> {
        self.faults
            .call("ELBv2.DescribeTargetHealth", || {
                self.inner.target_health(tg)
            })
            .await
    }
}

pub struct FaultySignals {
    pub inner: Arc<dyn HealthSignals>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl HealthSignals for FaultySignals {
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AdapterError> {
        self.faults
            .call("CloudWatch.DescribeAlarms", || {
                self.inner.alarm_states(names)
            })
            .await
    }
    async fn color_metrics(&self, w: &MetricsWindow) -> Result<WindowMetrics, AdapterError> {
        self.faults
            .call("CloudWatch.GetMetricData", || self.inner.color_metrics(w))
            .await
    }
}

pub struct FaultyCompute {
    pub inner: Arc<dyn ComputePlatform>,
    pub faults: Arc<Faults>,
}

/// The name a compute call is known by in the fault plan: its platform's.
fn op(w: &Workload, ecs: &'static str, eks: &'static str) -> &'static str {
    match w.platform {
        crate::domain::Platform::Ecs => ecs,
        crate::domain::Platform::Eks => eks,
    }
}

#[async_trait]
impl ComputePlatform for FaultyCompute {
    async fn current_image(&self, svc: &Workload) -> Result<Option<String>, AdapterError> {
        self.faults
            .call(op(svc, "ECS.current_image", "EKS.current_image"), || {
                self.inner.current_image(svc)
            })
            .await
    }
    async fn deploy_image(
        &self,
        svc: &Workload,
        release: &crate::ports::Release<'_>,
    ) -> Result<String, AdapterError> {
        self.faults
            .call(op(svc, "ECS.deploy_image", "EKS.deploy_image"), || {
                self.inner.deploy_image(svc, release)
            })
            .await
    }
    async fn readiness(&self, svc: &Workload, revision: &str) -> Result<Readiness, AdapterError> {
        self.faults
            .call(op(svc, "ECS.readiness", "EKS.readiness"), || {
                self.inner.readiness(svc, revision)
            })
            .await
    }
    async fn diagnose(&self, svc: &Workload) -> Result<WorkloadDiagnosis, AdapterError> {
        self.faults
            .call(op(svc, "ECS.diagnose", "EKS.diagnose"), || {
                self.inner.diagnose(svc)
            })
            .await
    }
}

/// Hands out faulty wrappers of the inner access's ports. Reaching an account (an STS
/// AssumeRole when the environment has a role) fails as configured too.
pub struct FaultyAccess {
    pub inner: Arc<dyn EnvironmentAccess>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl EnvironmentAccess for FaultyAccess {
    async fn router(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<Arc<dyn TrafficRouter>, AdapterError> {
        let inner = self
            .faults
            .call("STS.router", || self.inner.router(reach))
            .await?;
        Ok(Arc::new(FaultyRouter {
            inner,
            faults: self.faults.clone(),
        }))
    }
    async fn targets(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<Arc<dyn TargetHealth>, AdapterError> {
        let inner = self
            .faults
            .call("STS.targets", || self.inner.targets(reach))
            .await?;
        Ok(Arc::new(FaultyTargets {
            inner,
            faults: self.faults.clone(),
        }))
    }
    async fn compute(
        &self,
        reach: &crate::ports::Reach,
        platform: crate::domain::Platform,
    ) -> Result<Arc<dyn ComputePlatform>, AdapterError> {
        let inner = self
            .faults
            .call("STS.compute", || self.inner.compute(reach, platform))
            .await?;
        Ok(Arc::new(FaultyCompute {
            inner,
            faults: self.faults.clone(),
        }))
    }
    async fn signals(
        &self,
        reach: &crate::ports::Reach,
    ) -> Result<Arc<dyn HealthSignals>, AdapterError> {
        let inner = self
            .faults
            .call("STS.signals", || self.inner.signals(reach))
            .await?;
        Ok(Arc::new(FaultySignals {
            inner,
            faults: self.faults.clone(),
        }))
    }
}

pub struct FaultyExecutions {
    pub inner: Arc<dyn Executions>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Executions for FaultyExecutions {
    async fn start(
        &self,
        name: &str,
        input: &DeploymentRequest,
    ) -> Result<StartedExecution, AdapterError> {
        self.faults
            .call("SFN.StartExecution", || self.inner.start(name, input))
            .await
    }
    async fn stop(&self, arn: &str, error: &str, cause: &str) -> Result<(), AdapterError> {
        self.faults
            .call("SFN.StopExecution", || self.inner.stop(arn, error, cause))
            .await
    }
    async fn resume(&self, token: &str, output: &serde_json::Value) -> Result<(), AdapterError> {
        self.faults
            .call("SFN.SendTaskSuccess", || self.inner.resume(token, output))
            .await
    }
    async fn fail_task(&self, token: &str, error: &str, cause: &str) -> Result<(), AdapterError> {
        self.faults
            .call("SFN.SendTaskFailure", || {
                self.inner.fail_task(token, error, cause)
            })
            .await
    }
}

/// The deployment table, every call of which fails as configured.
pub struct FaultyStore {
    pub inner: Arc<dyn DeploymentStore>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl DeploymentStore for FaultyStore {
    async fn environment(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentState>, AdapterError> {
        self.faults
            .call("DynamoDB.environment", || {
                self.inner.environment(service, environment)
            })
            .await
    }
    async fn record_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.record_request", || {
                self.inner.record_request(record)
            })
            .await
    }
    async fn end_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.end_request", || self.inner.end_request(record))
            .await
    }
    async fn begin(&self, record: &DeploymentRecord) -> Result<BeginOutcome, AdapterError> {
        self.faults
            .call("DynamoDB.begin", || self.inner.begin(record))
            .await
    }
    async fn deployment(&self, id: &str) -> Result<Option<DeploymentRecord>, AdapterError> {
        self.faults
            .call("DynamoDB.deployment", || self.inner.deployment(id))
            .await
    }
    async fn transition(
        &self,
        id: &str,
        to: Phase,
        target_weight: Option<u16>,
        reason: Option<&str>,
    ) -> Result<DeploymentRecord, AdapterError> {
        self.faults
            .call("DynamoDB.transition", || {
                self.inner.transition(id, to, target_weight, reason)
            })
            .await
    }
    async fn record_readiness(
        &self,
        id: &str,
        readiness: &ReadinessSummary,
    ) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.record_readiness", || {
                self.inner.record_readiness(id, readiness)
            })
            .await
    }
    async fn record_step(&self, step: &StepRecord) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.record_step", || self.inner.record_step(step))
            .await
    }
    async fn record_evaluation(&self, entry: &LedgerEntry) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.record_evaluation", || {
                self.inner.record_evaluation(entry)
            })
            .await
    }
    async fn finish(
        &self,
        record: &DeploymentRecord,
        env: &EnvironmentState,
    ) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.finish", || self.inner.finish(record, env))
            .await
    }
    async fn steps(&self, id: &str) -> Result<Vec<StepRecord>, AdapterError> {
        self.faults
            .call("DynamoDB.steps", || self.inner.steps(id))
            .await
    }
    async fn ledger(&self, id: &str) -> Result<Vec<LedgerEntry>, AdapterError> {
        self.faults
            .call("DynamoDB.ledger", || self.inner.ledger(id))
            .await
    }
    async fn history(
        &self,
        service: &str,
        environment: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, AdapterError> {
        self.faults
            .call("DynamoDB.history", || {
                self.inner.history(service, environment, limit, cursor)
            })
            .await
    }
    async fn acquire_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
        now: OffsetDateTime,
        stale_after: time::Duration,
    ) -> Result<LockOutcome, AdapterError> {
        self.faults
            .call("DynamoDB.acquire_lock", || {
                self.inner
                    .acquire_lock(service, environment, id, now, stale_after)
            })
            .await
    }
    async fn release_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
    ) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.release_lock", || {
                self.inner.release_lock(service, environment, id)
            })
            .await
    }
    async fn deployments_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        self.faults
            .call("DynamoDB.deployments_between", || {
                self.inner.deployments_between(from, to)
            })
            .await
    }
    async fn await_approval(
        &self,
        id: &str,
        task_token: &str,
        timeout_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, AdapterError> {
        self.faults
            .call("DynamoDB.await_approval", || {
                self.inner
                    .await_approval(id, task_token, timeout_seconds, now)
            })
            .await
    }
    async fn decide_approval(
        &self,
        id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DeploymentRecord, AdapterError> {
        self.faults
            .call("DynamoDB.decide_approval", || {
                self.inner.decide_approval(id, decision)
            })
            .await
    }
    async fn forget_task_token(&self, id: &str) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.forget_task_token", || {
                self.inner.forget_task_token(id)
            })
            .await
    }
    async fn add_evidence(&self, evidence: &Evidence) -> Result<(), AdapterError> {
        self.faults
            .call("DynamoDB.add_evidence", || {
                self.inner.add_evidence(evidence)
            })
            .await
    }
    async fn evidence(&self, service: &str, version: &str) -> Result<Vec<Evidence>, AdapterError> {
        self.faults
            .call("DynamoDB.evidence", || {
                self.inner.evidence(service, version)
            })
            .await
    }
    async fn quarantine(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Quarantine>, AdapterError> {
        self.faults
            .call("DynamoDB.quarantine", || {
                self.inner.quarantine(service, version)
            })
            .await
    }
    async fn clear_quarantine(
        &self,
        service: &str,
        version: &str,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<Quarantine, AdapterError> {
        self.faults
            .call("DynamoDB.clear_quarantine", || {
                self.inner
                    .clear_quarantine(service, version, by, at, reason)
            })
            .await
    }
    async fn deployments_of_version(
        &self,
        service: &str,
        version: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        self.faults
            .call("DynamoDB.deployments_of_version", || {
                self.inner
                    .deployments_of_version(service, version, environment)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Color;
    use crate::fakes::FakeRouter;
    use crate::fakes::sample;
    use std::task::{Context, Poll, Waker};

    fn fwd() -> ForwardTarget {
        ForwardTarget {
            target: crate::domain::LoadBalancerTarget::listener(sample::LISTENER)
                .unwrap_or_else(|e| panic!("{e}")),
            blue: sample::tg(sample::BLUE_TG),
            green: sample::tg(sample::GREEN_TG),
        }
    }

    fn only(kind: FaultKind, sdk_attempts: u32) -> FaultRates {
        let mut r = FaultRates::none();
        r.sdk_attempts = sdk_attempts;
        match kind {
            FaultKind::Throttle => r.throttle = 1.0,
            FaultKind::ServerError => r.server_error = 1.0,
            FaultKind::Timeout => r.timeout = 1.0,
            FaultKind::ReportedFailure => r.reported_failure = 1.0,
            FaultKind::Kill => r.kill = 1.0,
        }
        r
    }

    #[test]
    fn the_generator_replays_from_its_seed() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        let mut r = Rng::new(1);
        assert!((0..1000).map(|_| r.unit()).all(|x| (0.0..1.0).contains(&x)));
    }

    #[tokio::test]
    async fn transient_faults_surface_after_the_sdk_retries_and_change_nothing() {
        for kind in [
            FaultKind::Throttle,
            FaultKind::ServerError,
            FaultKind::Timeout,
        ] {
            let inner = Arc::new(FakeRouter::new(TrafficSplit::all_on(Color::Blue)));
            let faults = Faults::new(1, only(kind, 3));
            let router = FaultyRouter {
                inner: inner.clone(),
                faults: faults.clone(),
            };
            let e = router
                .set_split(&fwd(), TrafficSplit::all_on(Color::Green))
                .await
                .err();
            match kind {
                FaultKind::Throttle => {
                    assert!(matches!(e, Some(AdapterError::Throttled(_))), "{kind:?}");
                }
                _ => assert!(matches!(e, Some(AdapterError::Transient(_))), "{kind:?}"),
            }
            assert!(inner.writes().is_empty());
            assert_eq!(faults.log().len(), 3);
        }
    }

    #[tokio::test]
    async fn a_reported_failure_takes_effect_on_every_attempt() {
        let inner = Arc::new(FakeRouter::new(TrafficSplit::all_on(Color::Blue)));
        let faults = Faults::new(1, only(FaultKind::ReportedFailure, 2));
        let router = FaultyRouter {
            inner: inner.clone(),
            faults: faults.clone(),
        };
        let e = router
            .set_split(&fwd(), TrafficSplit::all_on(Color::Green))
            .await;
        assert!(matches!(e, Err(AdapterError::Transient(_))));
        assert_eq!(inner.writes().len(), 2, "the SDK replayed the write");
        assert_eq!(inner.split(), TrafficSplit::all_on(Color::Green));
    }

    #[test]
    fn a_kill_never_returns_and_is_reported_once() {
        let inner = Arc::new(FakeRouter::new(TrafficSplit::all_on(Color::Blue)));
        let faults = Faults::new(3, only(FaultKind::Kill, 3));
        let router = FaultyRouter {
            inner,
            faults: faults.clone(),
        };
        let f = fwd();
        let mut call = std::pin::pin!(router.current_split(&f));
        let polled = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(polled, Poll::Pending));
        assert_eq!(faults.take_killed(), Some("ELBv2.DescribeListeners"));
        assert_eq!(faults.take_killed(), None);
    }

    #[tokio::test]
    async fn an_interleaved_action_runs_once_inside_its_call() {
        let inner = Arc::new(FakeRouter::new(TrafficSplit::all_on(Color::Blue)));
        let faults = Faults::new(3, FaultRates::none());
        let router = FaultyRouter {
            inner: inner.clone(),
            faults: faults.clone(),
        };
        let seen = inner.clone();
        faults.interleave(
            1,
            false,
            Box::new(move || {
                Box::pin(async move {
                    *lock(&seen.split) = TrafficSplit::all_on(Color::Green);
                })
            }),
        );
        let f = fwd();
        assert_eq!(
            router.current_split(&f).await,
            Ok(TrafficSplit::all_on(Color::Blue))
        );
        // the second call returns what it read before the action ran
        assert_eq!(
            router.current_split(&f).await,
            Ok(TrafficSplit::all_on(Color::Blue))
        );
        assert_eq!(
            router.current_split(&f).await,
            Ok(TrafficSplit::all_on(Color::Green))
        );
        assert!(!faults.interleave_pending());
    }
}
