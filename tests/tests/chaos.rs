//! Chaos, in process: thousands of deployments driven through the real
//! `statemachine/blue-green.asl.json` by a small interpreter of the ASL it uses, with faults
//! injected into every AWS call the phases make (`shared::faults`) and into every Lambda
//! invoke, and with alarms, metric breaches and people racing the phases. After each run the
//! environment must be whole: 100 % on one color (green if and only if the deployment
//! succeeded), the lock released, the record terminal and consistent with the listener, the
//! step history contiguous and unduplicated, green deployed at most once.
//!
//! Seeds: by default the committed master seeds of `seeds/chaos.txt` (what CI runs), each a
//! campaign of `CHAOS_RUNS` runs (default 1000); `CHAOS_SEED=<seed>` runs one campaign,
//! `CHAOS_SEED=random` a new one. A master seed replays its campaign exactly (everything here
//! is driven by it); `CHAOS_REPLAY=<run seed>` replays one run with its full trace. Every
//! failure prints the command that replays it. A large exploring campaign (`make chaos`):
//! `CHAOS_SEED=random CHAOS_RUNS=20000 cargo test -p integration-tests --test chaos -- --nocapture | grep -v '"_aws"'`
//! (the filter drops the deployments' own metric lines, Embedded Metric Format on stdout).
//!
//! Model (what the interpreter does like Step Functions, and where it simplifies):
//! - Waits and retry intervals take no real time: they advance the fake clock (jitter is
//!   ignored; the delay is the upper bound).
//! - A Lambda task: before the handler runs, the invoke can fail with
//!   `Lambda.ServiceException` / `Lambda.TooManyRequestsException`; after it ran, its response
//!   can be lost (`Lambda.ServiceException`) or the process can crash before replying
//!   (`Lambda.Unknown`, payload `Runtime.ExitError`). A handler killed inside an AWS call
//!   either crashed (`Lambda.Unknown`) or hung until the function timeout (60 s for the
//!   phases, 120 s for rollback: `Lambda.Unknown`, which is how Step Functions reports a
//!   function timeout) or the task's `TimeoutSeconds`, whichever comes first (every task now
//!   outlasts its function, so the function's timeout).
//! - Every ended execution emits the EventBridge event the execution-status Lambda handles,
//!   invoked asynchronously: up to 3 attempts (Lambda's 2 async retries), under the same
//!   faults. If all 3 fail, the event lands in the failed-events queue and FailedEventsAlarm
//!   pages a person, modelled as redriving the event (faults still on) up to 10 times; the
//!   summary counts how often that was needed. The invariants are checked after that.
//! - Bounds: transient faults 10-50 % per SDK attempt and per Lambda invoke; crashes 0-3 % per
//!   call and per invoke.
//! - A third of the runs need approval: NotifyApproval (sns:publish of `$.approval_request`) fails
//!   like an invoke; AwaitApproval invokes request-approval with `$$.Task.Token`, then the
//!   person approves or rejects (the decision recorded, then the token sent back, as the API
//!   does) or nobody decides (`States.Timeout` after `TimeoutSecondsPath`).

mod seeds;

use alarm_trigger::Deps as AlarmDeps;
use execution_status::Deps as StatusDeps;
use serde_json::{Map, Value, json};
use shared::domain::{Color, ColorMetrics, DeploymentStatus, Phase, TrafficSplit};
use shared::error::PhaseError;
use shared::fakes::FakeExecutions;
use shared::fakes::sample::{self, World};
use shared::faults::{FaultKind, FaultRates, Faults, FaultyAccess, FaultyStore, Rng};
use shared::ports::{DeploymentStore, PhaseDeps};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const MAX_TRANSITIONS: u32 = 10_000;
const STATE_MACHINE_ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:blue-green";
/// The functions' timeouts in template.yaml (Globals 60 s; rollback 120 s).
const PHASE_FUNCTION_TIMEOUT: u64 = 60;
const ROLLBACK_FUNCTION_TIMEOUT: u64 = 120;
/// Lambda's asynchronous invocation: the first attempt and 2 retries.
const ASYNC_ATTEMPTS: u32 = 3;
/// Times a person redrives an event from the failed-events queue after FailedEventsAlarm.
const PERSON_REDRIVES: u32 = 10;
/// The highest per-call (and per-invoke) rate of Lambda crashes.
const MAX_KILL_RATE: f64 = 0.03;

fn definition() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachine/blue-green.asl.json");
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // the service integrations, as template.yaml substitutes them in the aws partition
    for (name, arn) in [
        ("${LambdaInvokeArn}", "arn:aws:states:::lambda:invoke"),
        (
            "${LambdaInvokeWaitForTaskTokenArn}",
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
        ),
        ("${SnsPublishArn}", "arn:aws:states:::sns:publish"),
    ] {
        text = text.replace(name, arn);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------------------------------ JSONPath (the subset used)

fn walk<'a>(mut v: &'a Value, rest: &str) -> Option<&'a Value> {
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        assert!(
            !seg.contains('[') && !seg.contains('*'),
            "unsupported JSONPath segment {seg:?}: extend the chaos interpreter"
        );
        v = v.get(seg)?;
    }
    Some(v)
}

fn get_path(path: &str, input: &Value, ctx: &Value) -> Option<Value> {
    if let Some(rest) = path.strip_prefix("$$") {
        return walk(ctx, rest).cloned();
    }
    let rest = path
        .strip_prefix('$')
        .unwrap_or_else(|| panic!("not a path: {path:?}"));
    walk(input, rest).cloned()
}

/// `ResultPath`: `$` replaces the input, `$.a.b` sets a field, null keeps the input.
fn set_path(path: &Value, input: &Value, result: Value) -> Value {
    let Some(path) = path.as_str() else {
        assert!(path.is_null(), "ResultPath must be a string or null");
        return input.clone();
    };
    if path == "$" {
        return result;
    }
    let rest = path
        .strip_prefix("$.")
        .unwrap_or_else(|| panic!("unsupported ResultPath {path:?}"));
    let mut out = input.clone();
    let mut v = &mut out;
    let segs: Vec<&str> = rest.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let obj = v
            .as_object_mut()
            .unwrap_or_else(|| panic!("ResultPath {path}: not an object at {seg}"));
        if i == segs.len() - 1 {
            obj.insert((*seg).to_string(), result);
            break;
        }
        v = obj
            .entry((*seg).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    out
}

/// `Parameters`: keys ending in `.$` take a path's value; intrinsic functions are not modelled.
fn parameters(tpl: &Value, input: &Value, ctx: &Value) -> Result<Value, String> {
    match tpl {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let path = v.as_str().unwrap_or_else(|| panic!("{k}: not a string"));
                    let value = if path.starts_with("States.") {
                        intrinsic(path, input, ctx)?
                    } else {
                        get_path(path, input, ctx)
                            .ok_or_else(|| format!("{k}: path {path} not found in the input"))?
                    };
                    out.insert(key.to_string(), value);
                } else {
                    out.insert(k.clone(), parameters(v, input, ctx)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|v| parameters(v, input, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// The one intrinsic the definition uses: `States.Format('...{}...', $.a, ...)`.
fn intrinsic(call: &str, input: &Value, ctx: &Value) -> Result<Value, String> {
    let args = call
        .strip_prefix("States.Format('")
        .and_then(|a| a.strip_suffix(')'))
        .unwrap_or_else(|| panic!("intrinsic {call:?} is not modelled: extend the interpreter"));
    let (template, rest) = args
        .split_once('\'')
        .unwrap_or_else(|| panic!("{call}: unterminated template"));
    assert!(!template.contains('\\'), "{call}: escapes are not modelled");
    let mut values = Vec::new();
    for path in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let v = get_path(path, input, ctx).ok_or_else(|| format!("{call}: {path} not found"))?;
        values.push(match v {
            Value::String(s) => s,
            other => other.to_string(),
        });
    }
    let pieces: Vec<&str> = template.split("{}").collect();
    if pieces.len() != values.len() + 1 {
        return Err(format!(
            "{call}: {} placeholders, {} arguments",
            pieces.len() - 1,
            values.len()
        ));
    }
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        if let Some(v) = values.get(i) {
            out.push_str(v);
        }
    }
    Ok(Value::String(out))
}

fn only_keys(name: &str, state: &Value, allowed: &[&str]) {
    if let Some(m) = state.as_object() {
        for k in m.keys() {
            assert!(
                allowed.contains(&k.as_str()),
                "state {name}: field {k:?} is not modelled by the chaos interpreter: extend it"
            );
        }
    }
}

fn matches(error_equals: &Value, error: &str) -> bool {
    error_equals.as_array().is_some_and(|names| {
        names.iter().filter_map(Value::as_str).any(|n| {
            n == error
                || n == "States.ALL"
                || (n == "States.TaskFailed" && error != "States.Timeout")
        })
    })
}

fn choice_rule(name: &str, rule: &Value, input: &Value) -> Result<bool, String> {
    let var = rule["Variable"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: a rule without Variable is not modelled"));
    let value = get_path(var, input, &Value::Null);
    let ops: Vec<&String> = rule
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| *k != "Variable" && *k != "Next")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ops.len(), 1, "{name}: one comparison per rule is modelled");
    match ops[0].as_str() {
        "IsPresent" => Ok(value.is_some() == rule["IsPresent"].as_bool().unwrap_or(true)),
        "StringEquals" => {
            // Like Step Functions, comparing a path that is not there is a runtime error.
            let v = value.ok_or_else(|| format!("{name}: {var} is not present"))?;
            Ok(v.as_str().is_some() && v == rule["StringEquals"])
        }
        other => panic!("{name}: Choice operator {other} is not modelled: extend the interpreter"),
    }
}

// ------------------------------------------------------------------ the run

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    /// Green becomes healthy, metrics stay good.
    Healthy,
    /// Green's rollout never completes.
    GreenNeverReady,
    /// The deployment's alarm goes to ALARM in the middle of some AWS call; its EventBridge
    /// rule invokes the alarm trigger right then, racing the phase in flight.
    AlarmTrigger,
    /// The alarm goes to ALARM but only the evaluations notice it (the trigger is not wired).
    AlarmSeenByEvaluate,
    /// Green's 5xx rate jumps in the middle of some AWS call.
    MetricsBreach,
    /// A person rolls back (the API: rollback, then stop the execution) mid-call.
    PersonRollsBack,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::Healthy,
        Scenario::GreenNeverReady,
        Scenario::AlarmTrigger,
        Scenario::AlarmSeenByEvaluate,
        Scenario::MetricsBreach,
        Scenario::PersonRollsBack,
    ];
}

/// Lambda-invoke faults, per invoke.
#[derive(Debug, Clone, Copy)]
struct InvokeRates {
    service_exception: f64,
    too_many_requests: f64,
    response_lost: f64,
    crash_after: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum InvokeFault {
    ServiceException,
    TooManyRequests,
    ResponseLost,
    CrashAfter,
    KilledInCall,
}

#[derive(Debug, Clone, PartialEq)]
enum Ended {
    Succeeded,
    Failed { error: String },
    Aborted,
    TimedOut,
    Stuck,
}

impl Ended {
    fn status(&self) -> &'static str {
        match self {
            Ended::Succeeded => "SUCCEEDED",
            Ended::Failed { .. } => "FAILED",
            Ended::Aborted => "ABORTED",
            Ended::TimedOut => "TIMED_OUT",
            Ended::Stuck => "STUCK",
        }
    }
    fn label(&self) -> String {
        match self {
            Ended::Failed { error } => format!("FAILED {error}"),
            other => other.status().to_string(),
        }
    }
}

#[derive(Clone, Copy)]
enum Handler {
    DeployGreen,
    ShiftTraffic,
    Evaluate,
    Finalize,
    Rollback,
    RequestApproval,
}

fn state_value(
    r: Result<shared::contracts::ExecutionState, PhaseError>,
) -> Result<Value, PhaseError> {
    r.map(|s| serde_json::to_value(&s).unwrap_or_else(|e| panic!("{e}")))
}

impl Handler {
    fn of(function_name: &str) -> Handler {
        match function_name {
            "${DeployGreenFunctionArn}" => Handler::DeployGreen,
            "${ShiftTrafficFunctionArn}" => Handler::ShiftTraffic,
            "${EvaluateFunctionArn}" => Handler::Evaluate,
            "${FinalizeFunctionArn}" => Handler::Finalize,
            "${RollbackFunctionArn}" => Handler::Rollback,
            "${RequestApprovalFunctionArn}" => Handler::RequestApproval,
            other => panic!("function {other} is not modelled by the chaos interpreter"),
        }
    }
    fn function_timeout(self) -> u64 {
        match self {
            Handler::Rollback => ROLLBACK_FUNCTION_TIMEOUT,
            _ => PHASE_FUNCTION_TIMEOUT,
        }
    }
    fn call<'a>(
        self,
        deps: &'a PhaseDeps,
        payload: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Value, PhaseError>> + 'a>> {
        match self {
            Handler::DeployGreen => {
                Box::pin(async move { state_value(deploy_green::handle(deps, payload).await) })
            }
            Handler::ShiftTraffic => {
                Box::pin(async move { state_value(shift_traffic::handle(deps, payload).await) })
            }
            Handler::Evaluate => {
                Box::pin(async move { state_value(evaluate::handle(deps, payload).await) })
            }
            Handler::Finalize => {
                Box::pin(async move { state_value(finalize::handle(deps, payload).await) })
            }
            Handler::Rollback => {
                Box::pin(async move { state_value(rollback::handle(deps, payload).await) })
            }
            Handler::RequestApproval => Box::pin(request_approval::handle(deps, payload)),
        }
    }
}

/// How one poll of an in-process Lambda ended.
enum Polled<T> {
    Done(T),
    Killed(&'static str),
}

/// Every port here completes without waiting, so a handler finishes in one poll unless a fault
/// killed it inside a call (the future is then dropped: the process died).
fn poll_once<T>(faults: &Faults, fut: Pin<&mut dyn Future<Output = T>>) -> Polled<T> {
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Polled::Done(v),
        Poll::Pending => match faults.take_killed() {
            Some(call) => Polled::Killed(call),
            None => panic!("a handler waited on something that never completes without a fault"),
        },
    }
}

struct Run {
    seed: u64,
    scenario: Scenario,
    rates: FaultRates,
    invoke: InvokeRates,
    world: World,
    faults: Arc<Faults>,
    deps: PhaseDeps,
    status_deps: StatusDeps,
    rng: Rng,
    trace: Vec<String>,
    invoke_faults: BTreeMap<InvokeFault, u64>,
    transitions: u32,
    started: time::OffsetDateTime,
    /// The execution input.
    request: Value,
    /// Whether the environment needs approval, and what the person does.
    approval: Option<Decision>,
    /// Task tokens handed out.
    tokens: u32,
}

/// What the person asked for approval does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject,
    /// Nobody decides: the state's timeout ends the wait.
    Ignore,
}

const APPROVAL_TIMEOUT: u64 = 600;

struct Outcome {
    ended: Ended,
    /// The listener was split when the execution ended (before execution-status acted).
    split_at_end: bool,
    /// The lock was still held when the execution ended.
    locked_at_end: bool,
    /// How many execution-status attempts ran and whether the last one succeeded.
    backstop: Option<(u32, bool)>,
}

fn split_rate(rng: &mut Rng, total: f64, n: usize) -> Vec<f64> {
    let w: Vec<f64> = (0..n).map(|_| rng.between(0.05, 1.0)).collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| total * x / sum).collect()
}

impl Run {
    async fn new(seed: u64) -> Run {
        let mut rng = Rng::new(seed);
        let scenario = Scenario::ALL[rng.below(Scenario::ALL.len() as u64) as usize];
        // Transient faults (throttle, 5xx, timeout, succeeded-but-reported-failure) at 10-50 %
        // per attempt; crashes are rarer (0-3 % per call), or nearly every run would die in
        // deploy-green and the later phases would never be exercised.
        let total = rng.between(0.10, 0.50);
        let r = split_rate(&mut rng, total, 4);
        let rates = FaultRates {
            throttle: r[0],
            server_error: r[1],
            timeout: r[2],
            reported_failure: r[3],
            kill: rng.between(0.0, MAX_KILL_RATE),
            sdk_attempts: 3,
        };
        let invoke_total = rng.between(0.10, 0.50);
        let i = split_rate(&mut rng, invoke_total, 3);
        let invoke = InvokeRates {
            service_exception: i[0],
            too_many_requests: i[1],
            response_lost: i[2],
            crash_after: rng.between(0.0, MAX_KILL_RATE),
        };
        // A third of the runs need a person's approval before traffic moves.
        let approval = match rng.below(9) {
            0 => Some(Decision::Approve),
            1 => Some(Decision::Reject),
            2 => Some(Decision::Ignore),
            _ => None,
        };
        let mut request = sample::request();
        if approval.is_some() {
            request["approval_timeout_seconds"] = json!(APPROVAL_TIMEOUT);
        }
        let world = World::default().with_registry().await;
        if approval.is_some() {
            // the registry decides, whatever the input says
            let mut env = World::environment_config();
            env.approval = Some(shared::domain::ApprovalPolicy {
                required: true,
                timeout_seconds: APPROVAL_TIMEOUT,
            });
            shared::ports::Registry::put_environment(world.registry.as_ref(), &env)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let faults = Faults::new(rng.next_u64(), rates);
        let store: Arc<dyn DeploymentStore> = Arc::new(FaultyStore {
            inner: world.store.clone(),
            faults: faults.clone(),
        });
        let access = Arc::new(FaultyAccess {
            inner: world.access.clone(),
            faults: faults.clone(),
        });
        let deps = PhaseDeps {
            store: store.clone(),
            access: access.clone(),
            registry: world.registry.clone(),
            clock: world.clock.clone(),
        };
        let status_deps = StatusDeps {
            store,
            access,
            clock: world.clock.clone(),
            state_machine_arn: STATE_MACHINE_ARN.into(),
        };
        let started = shared::ports::Clock::now(world.clock.as_ref());
        let mut run = Run {
            seed,
            scenario,
            rates,
            invoke,
            world,
            faults,
            deps,
            status_deps,
            rng,
            trace: Vec::new(),
            invoke_faults: BTreeMap::new(),
            transitions: 0,
            started,
            request,
            approval,
            tokens: 0,
        };
        run.arrange();
        run
    }

    /// Sets up the scenario: scripted readiness, or an action interleaved with some call.
    fn arrange(&mut self) {
        let w = &self.world;
        // A healthy run makes about 80 calls; the action lands anywhere in the first 90.
        let at_call = self.rng.below(90);
        let before = self.rng.chance(0.5);
        match self.scenario {
            Scenario::Healthy => {}
            Scenario::GreenNeverReady => w.compute.never_ready(
                "checkout-green",
                "(service checkout-green) tasks keep failing",
            ),
            Scenario::AlarmSeenByEvaluate => {
                let signals = w.signals.clone();
                self.faults.interleave(
                    at_call,
                    before,
                    Box::new(move || {
                        Box::pin(async move {
                            signals.set_alarm(
                                sample::ALARM,
                                shared::domain::AlarmStatus::Alarm,
                                "Threshold Crossed",
                            );
                        })
                    }),
                );
            }
            Scenario::MetricsBreach => {
                let signals = w.signals.clone();
                self.faults.interleave(
                    at_call,
                    before,
                    Box::new(move || {
                        Box::pin(async move {
                            signals.set_target(ColorMetrics {
                                requests: 1000,
                                errors_5xx: 200,
                                p99_ms: Some(45.0),
                            });
                        })
                    }),
                );
            }
            Scenario::AlarmTrigger => {
                let signals = w.signals.clone();
                // The trigger's own calls are not faulted here (it runs inside another call,
                // where a kill could not be told apart); its retries are not what is tested.
                let deps = AlarmDeps {
                    registry: w.registry.clone(),
                    store: w.store.clone(),
                    access: w.access.clone(),
                    executions: w.executions.clone(),
                    clock: w.clock.clone(),
                };
                self.faults.interleave(
                    at_call,
                    before,
                    Box::new(move || {
                        Box::pin(async move {
                            signals.set_alarm(
                                sample::ALARM,
                                shared::domain::AlarmStatus::Alarm,
                                "Threshold Crossed",
                            );
                            let event = alarm_event();
                            if let Err(e) = alarm_trigger::handle(&deps, event).await {
                                panic!("the alarm trigger failed without faults: {e}");
                            }
                        })
                    }),
                );
            }
            Scenario::PersonRollsBack => {
                let rollback = shared::usecases::rollback::RollbackDeps {
                    store: w.store.clone(),
                    access: w.access.clone(),
                    clock: w.clock.clone(),
                };
                let executions = w.executions.clone();
                self.faults.interleave(
                    at_call,
                    before,
                    Box::new(move || {
                        Box::pin(async move {
                            use shared::ports::Executions as _;
                            let reason = "rolled back by alice@example.com: customer reports";
                            match shared::usecases::rollback::roll_back(
                                &rollback,
                                sample::DEPLOYMENT_ID,
                                reason,
                                None,
                            )
                            .await
                            {
                                Ok(_) => {}
                                Err(e) => panic!("a person's rollback failed without faults: {e}"),
                            }
                            let _ = executions
                                .stop(
                                    &FakeExecutions::arn(sample::DEPLOYMENT_ID),
                                    "BlueGreen.RolledBack",
                                    reason,
                                )
                                .await;
                        })
                    }),
                );
            }
        }
    }

    fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    fn now(&self) -> time::OffsetDateTime {
        use shared::ports::Clock as _;
        self.world.clock.now()
    }

    fn advance(&self, seconds: u64) {
        self.world.clock.advance(seconds as i64);
    }

    fn stopped(&self) -> bool {
        self.world
            .executions
            .stopped
            .lock()
            .map(|s| !s.is_empty())
            .unwrap_or(true)
    }

    /// One Lambda invoke of a phase: `Ok(payload)` or `Err((error, cause))` as Step Functions
    /// reports it.
    fn invoke(
        &mut self,
        h: Handler,
        payload: Value,
        task_timeout: u64,
    ) -> Result<Value, (String, String)> {
        let x = self.rng.unit();
        let inv = self.invoke;
        if x < inv.service_exception {
            *self
                .invoke_faults
                .entry(InvokeFault::ServiceException)
                .or_default() += 1;
            return Err((
                "Lambda.ServiceException".into(),
                "Lambda.ServiceException: Service error (500)".into(),
            ));
        }
        if x < inv.service_exception + inv.too_many_requests {
            *self
                .invoke_faults
                .entry(InvokeFault::TooManyRequests)
                .or_default() += 1;
            return Err((
                "Lambda.TooManyRequestsException".into(),
                "Rate Exceeded. (Service: Lambda, Status Code: 429)".into(),
            ));
        }
        let result = {
            let mut fut = h.call(&self.deps, payload);
            poll_once(&self.faults, fut.as_mut())
        };
        let result = match result {
            Polled::Killed(call) => {
                *self
                    .invoke_faults
                    .entry(InvokeFault::KilledInCall)
                    .or_default() += 1;
                // A crash ends the invoke at once; a hang lasts until a timeout.
                if self.rng.chance(0.5) {
                    return Err(crashed(&format!("killed in {call}")));
                }
                let timeout = h.function_timeout().min(task_timeout);
                self.advance(timeout);
                if h.function_timeout() >= task_timeout {
                    return Err((
                        "States.Timeout".into(),
                        format!("the task timed out after {task_timeout} s (hung in {call})"),
                    ));
                }
                return Err((
                    "Lambda.Unknown".into(),
                    format!("Task timed out after {timeout}.00 seconds (hung in {call})"),
                ));
            }
            Polled::Done(r) => r,
        };
        let y = self.rng.unit();
        if y < inv.response_lost {
            *self
                .invoke_faults
                .entry(InvokeFault::ResponseLost)
                .or_default() += 1;
            return Err((
                "Lambda.ServiceException".into(),
                "the function ran; its response was lost (500)".into(),
            ));
        }
        if y < inv.response_lost + inv.crash_after {
            *self
                .invoke_faults
                .entry(InvokeFault::CrashAfter)
                .or_default() += 1;
            return Err(crashed("crashed after its work, before replying"));
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err((
                e.error_type().to_string(),
                json!({"errorType": e.error_type(), "errorMessage": e.to_string()}).to_string(),
            )),
        }
    }

    async fn execute(&mut self) -> Ended {
        let def = definition();
        let states = def["States"].clone();
        let ctx = json!({
            "Execution": {
                "Name": sample::DEPLOYMENT_ID,
                "Id": FakeExecutions::arn(sample::DEPLOYMENT_ID),
                "StartTime": self.started.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|e| panic!("{e}")),
                "Input": self.request.clone(),
            },
            "StateMachine": {"Id": STATE_MACHINE_ARN, "Name": "blue-green"},
        });
        let max_seconds = def["TimeoutSeconds"].as_u64().unwrap_or(u64::MAX);
        let mut name = def["StartAt"]
            .as_str()
            .unwrap_or_else(|| panic!("no StartAt"))
            .to_string();
        let mut input = self.request.clone();
        loop {
            self.transitions += 1;
            if self.transitions > MAX_TRANSITIONS {
                return Ended::Stuck;
            }
            if self.stopped() {
                self.note(format!("stopped before {name}"));
                return Ended::Aborted;
            }
            if (self.now() - self.started).whole_seconds() > max_seconds as i64 {
                return Ended::TimedOut;
            }
            let st = states[&name].clone();
            assert!(st.is_object(), "no state {name}");
            let next = |st: &Value| -> String {
                st["Next"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no Next"))
                    .to_string()
            };
            match st["Type"].as_str().unwrap_or_default() {
                "Pass" => {
                    only_keys(&name, &st, &["Type", "Comment", "Parameters", "Next"]);
                    input = match parameters(&st["Parameters"], &input, &ctx) {
                        Ok(v) => v,
                        Err(cause) => return self.runtime_error(&name, cause),
                    };
                    name = next(&st);
                }
                "Task" => {
                    only_keys(
                        &name,
                        &st,
                        &[
                            "Type",
                            "Comment",
                            "Resource",
                            "Parameters",
                            "OutputPath",
                            "ResultPath",
                            "TimeoutSeconds",
                            "TimeoutSecondsPath",
                            "Retry",
                            "Catch",
                            "Next",
                        ],
                    );
                    match self.task(&name, &st, &input, &ctx) {
                        TaskEnd::Next(output, to) => {
                            input = output;
                            name = to;
                        }
                        TaskEnd::Ended(e) => return e,
                    }
                }
                "Choice" => {
                    only_keys(&name, &st, &["Type", "Comment", "Choices", "Default"]);
                    let mut to = None;
                    for rule in st["Choices"].as_array().into_iter().flatten() {
                        match choice_rule(&name, rule, &input) {
                            Ok(true) => {
                                to = Some(next(rule));
                                break;
                            }
                            Ok(false) => {}
                            Err(cause) => return self.runtime_error(&name, cause),
                        }
                    }
                    let Some(to) = to.or_else(|| st["Default"].as_str().map(str::to_string)) else {
                        return self.runtime_error(&name, "no choice matched".into());
                    };
                    self.note(format!("{name} -> {to}"));
                    name = to;
                }
                "Wait" => {
                    only_keys(
                        &name,
                        &st,
                        &["Type", "Comment", "SecondsPath", "Seconds", "Next"],
                    );
                    let seconds = match st["SecondsPath"].as_str() {
                        Some(p) => match get_path(p, &input, &ctx).and_then(|v| v.as_u64()) {
                            Some(s) => s,
                            None => return self.runtime_error(&name, format!("{p} not a number")),
                        },
                        None => st["Seconds"].as_u64().unwrap_or_else(|| panic!("{name}")),
                    };
                    self.advance(seconds);
                    name = next(&st);
                }
                "Succeed" => {
                    only_keys(&name, &st, &["Type", "Comment"]);
                    self.note(format!("{name}: SUCCEEDED"));
                    return Ended::Succeeded;
                }
                "Fail" => {
                    only_keys(
                        &name,
                        &st,
                        &["Type", "Comment", "Error", "Cause", "CausePath"],
                    );
                    let error = st["Error"].as_str().unwrap_or("").to_string();
                    self.note(format!("{name}: FAILED {error}"));
                    return Ended::Failed { error };
                }
                other => panic!("{name}: state type {other} is not modelled"),
            }
        }
    }

    fn runtime_error(&mut self, name: &str, cause: String) -> Ended {
        self.note(format!("{name}: States.Runtime: {cause}"));
        Ended::Failed {
            error: "States.Runtime".into(),
        }
    }

    fn task(&mut self, name: &str, st: &Value, input: &Value, ctx: &Value) -> TaskEnd {
        let retriers: Vec<Value> = st["Retry"].as_array().cloned().unwrap_or_default();
        let mut retried = vec![0u64; retriers.len()];
        let task_timeout = match st["TimeoutSecondsPath"].as_str() {
            Some(p) => match get_path(p, input, ctx).and_then(|v| v.as_u64()) {
                Some(t) => t,
                None => {
                    return TaskEnd::Ended(
                        self.runtime_error(name, format!("TimeoutSecondsPath {p} not a number")),
                    );
                }
            },
            None => st["TimeoutSeconds"].as_u64().unwrap_or(99_999_999),
        };
        let resource = st["Resource"].as_str().unwrap_or_default();
        loop {
            self.tokens += 1;
            let mut ctx = ctx.clone();
            ctx["Task"] = json!({"Token": format!("token-{}", self.tokens)});
            let params = match parameters(&st["Parameters"], input, &ctx) {
                Ok(p) => p,
                Err(cause) => return TaskEnd::Ended(self.runtime_error(name, cause)),
            };
            let result = match resource {
                "arn:aws:states:::lambda:invoke" => {
                    let h = Handler::of(params["FunctionName"].as_str().unwrap_or_default());
                    self.invoke(h, params["Payload"].clone(), task_timeout)
                        .map(|payload| {
                            json!({"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200})
                        })
                }
                "arn:aws:states:::lambda:invoke.waitForTaskToken" => {
                    let h = Handler::of(params["FunctionName"].as_str().unwrap_or_default());
                    let token = params["Payload"]["task_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    match self.invoke(h, params["Payload"].clone(), task_timeout) {
                        // The invoke's own result is not the task's: the token's is.
                        Ok(_) => self.person_decides(&token, task_timeout),
                        Err(e) => Err(e),
                    }
                }
                "arn:aws:states:::sns:publish" => {
                    assert!(
                        params["Message"].is_string() && params["TopicArn"].is_string(),
                        "{name}: a publish needs a topic and a message"
                    );
                    let x = self.rng.unit();
                    if x < self.invoke.service_exception + self.invoke.too_many_requests {
                        Err((
                            "SNS.InternalErrorException".into(),
                            "SNS: internal error (500)".into(),
                        ))
                    } else {
                        Ok(json!({"MessageId": format!("msg-{}", self.tokens)}))
                    }
                }
                other => {
                    panic!("{name}: resource {other} is not modelled by the chaos interpreter")
                }
            };
            if self.stopped() {
                self.note(format!("{name}: the execution was stopped meanwhile"));
                return TaskEnd::Ended(Ended::Aborted);
            }
            let (error, cause) = match result {
                Ok(result) => {
                    let with = set_path(st.get("ResultPath").unwrap_or(&json!("$")), input, result);
                    let output = match st["OutputPath"].as_str() {
                        Some(p) => match get_path(p, &with, &ctx) {
                            Some(v) => v,
                            None => {
                                return TaskEnd::Ended(
                                    self.runtime_error(name, format!("OutputPath {p} not found")),
                                );
                            }
                        },
                        None => with,
                    };
                    let next = output["progress"]["next"]
                        .as_str()
                        .unwrap_or("-")
                        .to_string();
                    self.note(format!("{name}: ok (next {next})"));
                    let to = st["Next"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: no Next"));
                    return TaskEnd::Next(output, to.to_string());
                }
                Err(e) => e,
            };
            self.transitions += 1;
            if self.transitions > MAX_TRANSITIONS {
                return TaskEnd::Ended(Ended::Stuck);
            }
            if let Some(i) = retriers
                .iter()
                .position(|r| matches(&r["ErrorEquals"], &error))
            {
                let r = &retriers[i];
                let max = r["MaxAttempts"].as_u64().unwrap_or(3);
                if retried[i] < max {
                    retried[i] += 1;
                    let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
                    let backoff = r["BackoffRate"].as_f64().unwrap_or(2.0);
                    let mut delay = interval * backoff.powi(retried[i] as i32 - 1);
                    if let Some(cap) = r["MaxDelaySeconds"].as_f64() {
                        delay = delay.min(cap);
                    }
                    self.advance(delay.ceil() as u64);
                    self.note(format!("{name}: {error}; retry {} of {max}", retried[i]));
                    continue;
                }
                self.note(format!("{name}: {error}; retries spent ({max})"));
            }
            for c in st["Catch"].as_array().into_iter().flatten() {
                if matches(&c["ErrorEquals"], &error) {
                    let to = c["Next"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: catch"));
                    self.note(format!("{name}: {error} caught -> {to}"));
                    let caught = json!({"Error": error, "Cause": cause});
                    let out = set_path(c.get("ResultPath").unwrap_or(&json!("$")), input, caught);
                    return TaskEnd::Next(out, to.to_string());
                }
            }
            self.note(format!("{name}: {error} uncaught"));
            return TaskEnd::Ended(Ended::Failed { error });
        }
    }

    /// The task waits on `token` until the person decides through the API (approve: record
    /// the decision, then SendTaskSuccess; reject: record it, then SendTaskFailure) or the
    /// task's timeout ends the wait. A decision the store refuses, or a token that is no
    /// longer the one waiting, leaves the task waiting: it times out.
    fn person_decides(&mut self, token: &str, timeout: u64) -> Result<Value, (String, String)> {
        use shared::domain::{ApprovalDecision, ApprovalState};
        let decision = self.approval.unwrap_or(Decision::Ignore);
        let state = match decision {
            Decision::Approve => ApprovalState::Approved,
            Decision::Reject => ApprovalState::Rejected,
            Decision::Ignore => {
                self.advance(timeout);
                self.note(format!("nobody decided within {timeout} s"));
                return Err(("States.Timeout".into(), String::new()));
            }
        };
        let after = self.rng.below(timeout / 2);
        self.advance(after);
        let waiting = self
            .world
            .store
            .record(sample::DEPLOYMENT_ID)
            .and_then(|r| r.approval)
            .and_then(|a| a.task_token)
            .is_some_and(|t| t == token);
        let decided = poll_once(
            &self.faults,
            std::pin::pin!(self.world.store.decide_approval(
                sample::DEPLOYMENT_ID,
                &ApprovalDecision {
                    state,
                    by: "bob@example.com".into(),
                    at: self.now(),
                    comment: (decision == Decision::Reject).then(|| "not today".to_string()),
                },
            )),
        );
        let decided =
            matches!(decided, Polled::Done(Ok(ref r)) if r.phase == Phase::AwaitingApproval);
        self.note(format!(
            "the person: {decision:?} (recorded {decided}, token current {waiting})"
        ));
        if !(decided && waiting) {
            self.advance(timeout);
            return Err(("States.Timeout".into(), String::new()));
        }
        match decision {
            Decision::Approve => Ok(json!({"approved_by": "bob@example.com"})),
            _ => Err((
                "BlueGreen.ApprovalRejected".into(),
                "rejected by bob@example.com: not today".into(),
            )),
        }
    }

    /// The execution-status Lambda, invoked asynchronously with the ended execution's event.
    fn backstop(&mut self, ended: &Ended) -> Option<(u32, bool)> {
        let status = match ended {
            Ended::Stuck => return None,
            other => other.status(),
        };
        let event = json!({
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": execution_status::DETAIL_TYPE,
            "source": execution_status::SOURCE,
            "account": "123456789012",
            "time": "2025-01-03T10:03:00Z",
            "region": "us-east-1",
            "resources": [FakeExecutions::arn(sample::DEPLOYMENT_ID)],
            "detail": {
                "executionArn": FakeExecutions::arn(sample::DEPLOYMENT_ID),
                "stateMachineArn": STATE_MACHINE_ARN,
                "name": sample::DEPLOYMENT_ID,
                "status": status,
                "startDate": 1_735_898_400_000u64,
                "stopDate": 1_735_898_580_000u64,
                "input": self.request.to_string(),
                "inputDetails": {"included": true},
                "output": null,
                "outputDetails": null,
                "error": null,
                "cause": null
            }
        });
        // Lambda's asynchronous attempts, then (the event in the failed-events queue,
        // FailedEventsAlarm paging) a person redriving it, up to PERSON_REDRIVES times.
        for attempt in 1..=ASYNC_ATTEMPTS + PERSON_REDRIVES {
            let result = {
                let mut fut = Box::pin(execution_status::handle(&self.status_deps, event.clone()));
                poll_once(&self.faults, fut.as_mut())
            };
            let who = if attempt > ASYNC_ATTEMPTS {
                "redriven by a person"
            } else {
                "async"
            };
            match result {
                Polled::Done(Ok(summary)) => {
                    self.note(format!("execution-status {status} ({who}): {summary}"));
                    return Some((attempt, true));
                }
                Polled::Done(Err(e)) => self.note(format!(
                    "execution-status {status}: attempt {attempt} ({who}): {e}"
                )),
                Polled::Killed(call) => self.note(format!(
                    "execution-status {status}: attempt {attempt} ({who}) killed in {call}"
                )),
            }
        }
        Some((ASYNC_ATTEMPTS + PERSON_REDRIVES, false))
    }

    async fn go(&mut self) -> Outcome {
        let ended = self.execute().await;
        let split_at_end = self.world.router.split().sole_color().is_none();
        let locked_at_end = self
            .world
            .store
            .env("checkout", "dev")
            .is_some_and(|e| e.active_deployment.is_some());
        let backstop = self.backstop(&ended);
        Outcome {
            ended,
            split_at_end,
            locked_at_end,
            backstop,
        }
    }

    /// Every invariant, read from the fakes directly (no faults).
    async fn violations(&self, o: &Outcome) -> Vec<String> {
        let mut v = Vec::new();
        let w = &self.world;
        let id = sample::DEPLOYMENT_ID;
        if o.ended == Ended::Stuck {
            v.push(format!(
                "the execution did not end within {MAX_TRANSITIONS} transitions"
            ));
        }
        let split = w.router.split();
        let record = w.store.record(id);
        let env = w.store.env("checkout", "dev");
        let Some(sole) = split.sole_color() else {
            v.push(format!("the listener is split: {split}"));
            return v;
        };
        let expected = if record.as_ref().is_some_and(|r| r.phase == Phase::Succeeded) {
            Color::Green
        } else {
            Color::Blue
        };
        if sole != expected {
            v.push(format!(
                "the listener is 100% {sole} but the record is {:?}",
                record.as_ref().map(|r| r.phase)
            ));
        }
        if (o.ended == Ended::Succeeded) != (expected == Color::Green) {
            v.push(format!(
                "the execution ended {} but the record is {:?}",
                o.ended.label(),
                record.as_ref().map(|r| r.phase)
            ));
        }
        if let Some(e) = &env {
            if let Some(held) = &e.active_deployment {
                v.push(format!("the environment is still locked by {held}"));
            }
            // (a deployment that ended before it read the colors never wrote them)
            if e.active_color != Some(sole) && record.as_ref().is_some_and(|r| r.colors().is_some())
            {
                v.push(format!(
                    "the environment says {:?} is active; the listener serves {sole}",
                    e.active_color
                ));
            }
        }
        // Every started execution has exactly one record, terminal once it has ended.
        let ids: Vec<String> = w
            .store
            .records
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        if ids != [id] {
            v.push(format!(
                "deployment records {ids:?}; expected exactly [{id}]"
            ));
        }
        let Some(r) = record else {
            v.push("the execution started but its deployment has no record".into());
            return v;
        };
        if r.colors().is_none() {
            // It ended before its first phase read the listener: nothing may have moved.
            if !w.router.writes().is_empty()
                || !w.store.steps(id).await.unwrap_or_default().is_empty()
            {
                v.push("no colors recorded, yet the listener was written".into());
            }
            if r.phase != Phase::Failed
                || !r
                    .reason
                    .as_deref()
                    .is_some_and(|why| why.starts_with(shared::usecases::rollback::NEVER_STARTED))
            {
                v.push(format!(
                    "ended before it began, yet {} with reason {:?}",
                    r.phase, r.reason
                ));
            }
        }
        if !r.phase.is_terminal() {
            v.push(format!("the record is left in {}", r.phase));
        }
        let expected_status = match r.phase {
            Phase::Succeeded => DeploymentStatus::Succeeded,
            Phase::RolledBack => DeploymentStatus::RolledBack,
            Phase::Failed => DeploymentStatus::Failed,
            Phase::NotDeployed => DeploymentStatus::NotDeployed,
            _ => r.status,
        };
        if r.status != expected_status {
            v.push(format!(
                "phase {} with status {}",
                r.phase,
                r.status.as_str()
            ));
        }
        if r.phase.is_terminal() && r.finished_at.is_none() {
            v.push("a finished record without finished_at".into());
        }
        if let Some(e) = &env
            && r.colors().is_some()
            && e.last_deployment.as_deref() != Some(id)
        {
            v.push(format!(
                "the environment's last deployment is {:?}",
                e.last_deployment
            ));
        }
        // Through the state machine alone the execution's end names the record's outcome.
        if let Ended::Failed { error } = &o.ended {
            let want = match error.as_str() {
                "BlueGreen.RolledBack" => Some(Phase::RolledBack),
                "BlueGreen.DeploymentFailed" => Some(Phase::Failed),
                "BlueGreen.NotDeployed" => Some(Phase::NotDeployed),
                _ => None,
            };
            if let Some(p) = want
                && p != r.phase
            {
                v.push(format!(
                    "the execution failed with {error}, the record is {}",
                    r.phase
                ));
            }
        }
        // Steps: 0..n in plan order, each once, each a plan weight on green.
        let plan = [10u16, 25, 50, 100];
        let steps = w.store.steps(id).await.unwrap_or_default();
        for (i, s) in steps.iter().enumerate() {
            if s.step_index as usize != i {
                v.push(format!(
                    "steps are not contiguous: {:?}",
                    steps.iter().map(|s| s.step_index).collect::<Vec<_>>()
                ));
                break;
            }
            let want = plan
                .get(i)
                .and_then(|p| TrafficSplit::with_percent_on(Color::Green, *p).ok());
            if Some(s.split) != want {
                v.push(format!(
                    "step {i} recorded {} (plan {:?})",
                    s.split,
                    plan.get(i)
                ));
            }
        }
        match r.phase {
            Phase::Succeeded if steps.len() != plan.len() => v.push(format!(
                "succeeded after {} of {} steps",
                steps.len(),
                plan.len()
            )),
            Phase::Failed | Phase::NotDeployed if !steps.is_empty() => v.push(format!(
                "{} although {} steps moved traffic",
                r.phase,
                steps.len()
            )),
            _ => {}
        }
        // Approval: no traffic before a person said yes; a deployment that waited for an
        // approval that never came ends NOT_DEPLOYED, however its rollback was retried.
        if let Some(a) = r
            .approval
            .as_ref()
            .filter(|a| a.state != shared::domain::ApprovalState::Approved)
        {
            if !steps.is_empty() || w.router.writes().iter().any(|s| s.green() > 0) {
                v.push(format!(
                    "traffic moved although the approval is {}",
                    a.state.as_str()
                ));
            }
            if r.phase.is_terminal() && r.phase != Phase::NotDeployed {
                v.push(format!(
                    "ended {} although it was waiting for approval ({})",
                    r.phase,
                    a.state.as_str()
                ));
            }
        }
        if self.approval.is_none() && r.approval.is_some() {
            v.push("an approval was requested for an environment that needs none".into());
        }
        let ledger = w.store.ledger(id).await.unwrap_or_default();
        for e in &ledger {
            if e.step_index as usize >= steps.len() {
                v.push(format!(
                    "an evaluation of step {} that was never recorded",
                    e.step_index
                ));
                break;
            }
        }
        // Every write is a plan step on green or everything on blue.
        for s in w.router.writes() {
            let ok = s == TrafficSplit::all_on(Color::Blue)
                || plan
                    .iter()
                    .any(|p| TrafficSplit::with_percent_on(Color::Green, *p).ok() == Some(s));
            if !ok {
                v.push(format!("the listener was written with {s}"));
            }
        }
        // Idempotent retries: green got the new image once; blue was never touched.
        let deploys = w
            .compute
            .deploys
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        if deploys
            .iter()
            .filter(|(s, _)| s == "checkout-green")
            .count()
            > 1
            || deploys.iter().any(|(s, _)| s == "checkout-blue")
        {
            v.push(format!("images deployed: {deploys:?}"));
        }
        let history = w
            .store
            .history("checkout", "dev", 100, None)
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        if history.iter().filter(|h| h.id == id).count() != 1 {
            v.push(format!(
                "the history lists the deployment {} times",
                history.len()
            ));
        }
        v
    }

    fn report(&self, o: &Outcome, violations: &[String]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "run seed {} | scenario {:?} | approval {:?} | call faults {:.0}% (throttle {:.1}%, 5xx {:.1}%, timeout {:.1}%, reported-failure {:.1}%, kill {:.1}%) | invoke faults {:.0}%",
            self.seed,
            self.scenario,
            self.approval,
            self.rates.total() * 100.0,
            self.rates.throttle * 100.0,
            self.rates.server_error * 100.0,
            self.rates.timeout * 100.0,
            self.rates.reported_failure * 100.0,
            self.rates.kill * 100.0,
            (self.invoke.service_exception
                + self.invoke.too_many_requests
                + self.invoke.response_lost
                + self.invoke.crash_after)
                * 100.0
        );
        let _ = writeln!(
            s,
            "  ended {} after {} transitions; execution-status {:?}; listener {}; writes {:?}",
            o.ended.label(),
            self.transitions,
            o.backstop,
            self.world.router.split(),
            self.world
                .router
                .writes()
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        );
        for v in violations {
            let _ = writeln!(s, "  VIOLATION: {v}");
        }
        let _ = writeln!(s, "  trace (last 40):");
        for line in self.trace.iter().rev().take(40).rev() {
            let _ = writeln!(s, "    {line}");
        }
        let log = self.faults.log();
        let _ = writeln!(s, "  call faults injected: {} (last 20):", log.len());
        for f in log.iter().rev().take(20).rev() {
            let _ = writeln!(
                s,
                "    {} attempt {}: {}",
                f.call,
                f.attempt,
                f.kind.as_str()
            );
        }
        let _ = writeln!(
            s,
            "  replay: CHAOS_REPLAY={} cargo test -p integration-tests --test chaos -- --nocapture",
            self.seed
        );
        s
    }
}

enum TaskEnd {
    Next(Value, String),
    Ended(Ended),
}

fn crashed(why: &str) -> (String, String) {
    (
        "Lambda.Unknown".into(),
        json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": format!("RequestId: 0f3e Error: Runtime exited with error: signal: killed ({why})")
        })
        .to_string(),
    )
}

fn alarm_event() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/triggers/alarm-state-change.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    event["detail"]["alarmName"] = json!(sample::ALARM);
    event["detail"]["state"]["value"] = json!("ALARM");
    event
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The seed of run `i` of a campaign.
fn run_seed(master: u64, i: u64) -> u64 {
    Rng::new(master ^ i.wrapping_mul(0xA076_1D64_78BD_642F)).next_u64()
}

#[derive(Default)]
struct Summary {
    runs: u64,
    outcomes: BTreeMap<String, u64>,
    statuses: BTreeMap<String, u64>,
    scenarios: BTreeMap<(Scenario, String), u64>,
    approvals: BTreeMap<(String, String), u64>,
    call_faults: BTreeMap<FaultKind, u64>,
    invoke_faults: BTreeMap<InvokeFault, u64>,
    calls: u64,
    max_transitions: u32,
    backstop_acted: u64,
    backstop_failed: u64,
    split_at_end: u64,
    locked_at_end: u64,
    needed_person: u64,
    failures: Vec<String>,
}

async fn one(seed: u64, sum: &mut Summary, verbose: bool) {
    let mut run = Run::new(seed).await;
    let outcome = run.go().await;
    run.faults.set_rates(FaultRates::none());
    let violations = run.violations(&outcome).await;
    let status = run
        .world
        .store
        .record(sample::DEPLOYMENT_ID)
        .map_or("NO RECORD".to_string(), |r| r.status.as_str().to_string());
    sum.runs += 1;
    *sum.outcomes.entry(outcome.ended.label()).or_default() += 1;
    *sum.statuses.entry(status.clone()).or_default() += 1;
    *sum.scenarios
        .entry((run.scenario, status.clone()))
        .or_default() += 1;
    if let Some(d) = run.approval {
        *sum.approvals.entry((format!("{d:?}"), status)).or_default() += 1;
    }
    for (k, n) in run.faults.counts() {
        *sum.call_faults.entry(k).or_default() += n;
    }
    for (k, n) in &run.invoke_faults {
        *sum.invoke_faults.entry(*k).or_default() += n;
    }
    sum.calls += run.faults.calls();
    sum.max_transitions = sum.max_transitions.max(run.transitions);
    match outcome.backstop {
        Some((_, false)) => sum.backstop_failed += 1,
        Some((n, true)) if n > ASYNC_ATTEMPTS => sum.needed_person += 1,
        _ => {}
    }
    if matches!(outcome.ended, Ended::Aborted | Ended::TimedOut)
        || matches!(&outcome.ended, Ended::Failed { error } if error == "BlueGreen.RollbackFailed" || error == "States.Runtime")
    {
        sum.backstop_acted += 1;
    }
    sum.split_at_end += u64::from(outcome.split_at_end);
    sum.locked_at_end += u64::from(outcome.locked_at_end);
    let show = std::env::var("CHAOS_SHOW")
        .ok()
        .is_some_and(|w| !w.is_empty() && outcome.ended.label().contains(&w));
    if show {
        println!("{}", run.report(&outcome, &violations));
    }
    if verbose || !violations.is_empty() {
        let report = run.report(&outcome, &violations);
        if verbose {
            println!("{report}");
        }
        if !violations.is_empty() {
            sum.failures.push(report);
        }
    }
}

#[tokio::test]
async fn a_thousand_deployments_under_faults_end_whole() {
    if let Some(seed) = env_u64("CHAOS_REPLAY") {
        let mut sum = Summary::default();
        one(seed, &mut sum, true).await;
        assert!(
            sum.failures.is_empty(),
            "run {seed} violated the invariants"
        );
        return;
    }
    let runs = env_u64("CHAOS_RUNS").unwrap_or(1000);
    let masters = seeds::campaign_seeds("CHAOS_SEED", "chaos");
    let t0 = std::time::Instant::now();
    let mut sum = Summary::default();
    for &master in &masters {
        for i in 0..runs {
            one(run_seed(master, i), &mut sum, false).await;
        }
    }
    let master = masters
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let elapsed = t0.elapsed();
    println!(
        "chaos: {} runs in {:.2?} (CHAOS_SEED={master}); max transitions {}; {} AWS calls",
        sum.runs, elapsed, sum.max_transitions, sum.calls
    );
    println!("  executions ended: {:?}", sum.outcomes);
    println!("  records: {:?}", sum.statuses);
    println!("  by scenario: {:?}", sum.scenarios);
    println!("  approval runs, by decision: {:?}", sum.approvals);
    println!(
        "  call faults injected: {:?}",
        sum.call_faults
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect::<Vec<_>>()
    );
    println!("  invoke faults injected: {:?}", sum.invoke_faults);
    println!(
        "  ended outside a clean Fail/Succeed (execution-status had to act): {}; execution-status failed all {ASYNC_ATTEMPTS} async attempts and a person redrove the event (FailedEventsAlarm): {}; still failing after {PERSON_REDRIVES} redrives: {}",
        sum.backstop_acted, sum.needed_person, sum.backstop_failed
    );
    println!(
        "  when the execution ended: listener split {} times, lock held {} times (execution-status then acted)",
        sum.split_at_end, sum.locked_at_end
    );
    if !sum.failures.is_empty() {
        for f in sum.failures.iter().take(5) {
            println!("{f}");
        }
        panic!(
            "{} of {} runs violated the invariants (first reports above); replay a campaign with CHAOS_SEED=<one of {master}> CHAOS_RUNS={runs} cargo test -p integration-tests --test chaos -- --nocapture",
            sum.failures.len(),
            sum.runs
        );
    }
}
