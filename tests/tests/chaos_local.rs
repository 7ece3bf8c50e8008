//! Chaos on the local stack: deployments through the real state machine (moto's interpreter)
//! and the real function binaries, while the local router injects faults into every AWS call
//! the functions make (throttling, 5xx, a hung call dropped after 1 s, a call carried out
//! whose answer is replaced by a 5xx) and crashes functions after their side effects. The SDK's
//! own retries, the adapters' error mapping and the state machine's Retry/Catch all take part.
//!
//! Every run must end (no execution left RUNNING), fully on green when it SUCCEEDED and fully
//! on blue otherwise, with the lock released, a terminal record that agrees with the listener,
//! and each traffic step recorded at most once. As on AWS, every ended execution's status
//! event is delivered to the execution-status function (EventBridge's job; with Lambda's two
//! async retries).
//!
//! Every started execution must also have exactly one deployment record, terminal once the
//! execution has ended, whichever path ended it.
//!
//! Size: CHAOS_LOCAL_RUNS (default 20) per seed, CHAOS_LOCAL_LANES concurrent runs (default 10).
//! Seeds: by default the committed master seeds of `seeds/chaos_local.txt` (what CI runs);
//! CHAOS_LOCAL_SEED=<seed> runs one campaign, CHAOS_LOCAL_SEED=random a new one (printed).
//! What a seed replays here: each batch's fault rate, crash rate and fault seed, and each
//! run's scenario. What it does not: which AWS call or invocation each fault hits, since the
//! router draws from one sequence for all the concurrent runs and their timing varies from
//! run to run (moto, the functions' scheduling, the SDK's jittered backoff). A seed that
//! found a bug finds it again often, not always (issue 10's seed failed in 2 of 2 replays,
//! each time on a different run). A larger exploring run (`make chaos`):
//!   CHAOS_LOCAL_SEED=random CHAOS_LOCAL_RUNS=100 cargo test -p integration-tests --test chaos_local -- --nocapture

mod seeds;

use local_stack::{Environment, LocalStack, deployment_name};
use serde_json::{Value, json};
use shared::domain::{Color, TrafficSplit};
use shared::ports::DeploymentStore;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(420);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: a seeded sequence, so a printed seed replays the same campaign.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    Healthy,
    /// The green alarm goes to ALARM once traffic is on green.
    AlarmMidShift,
    /// Green's targets never become healthy.
    NeverHealthy,
}

/// Turns the router's faults off when the test ends, however it ends.
struct FaultsOff<'a>(&'a LocalStack);
impl Drop for FaultsOff<'_> {
    fn drop(&mut self) {
        let _ = self.0.control("faults", json!({"rate": 0}));
    }
}

fn timings() -> Value {
    json!({"step_wait_seconds": 0, "verification_seconds": 2, "verification_interval_seconds": 1,
           "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
           "health_poll_seconds": 1, "health_timeout_seconds": 8})
}

async fn execution_status(
    s: &LocalStack,
    arn: &str,
    name: &str,
    end: &local_stack::ExecutionEnd,
    input: &Value,
) {
    let status = end.status.as_str();
    let event = json!({
        "version": "0", "id": format!("chaos-{name}"),
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [arn],
        "detail": {"executionArn": arn, "stateMachineArn": s.state_machine_arn, "name": name,
                   "status": status, "startDate": end.start_ms, "stopDate": end.start_ms,
                   "input": input.to_string(),
                   "inputDetails": {"included": true}, "output": null, "outputDetails": null,
                   "error": end.error, "cause": end.cause}
    });
    // Lambda runs an asynchronous invocation up to three times.
    for _ in 0..3 {
        match s.invoke("execution-status", &event) {
            Ok(out) if out.error_type.is_none() => return,
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// One deployment under faults; returns a line for the summary or what went wrong.
async fn one_run(s: &LocalStack, run: u64, scenario: Scenario) -> Result<String, String> {
    let env: Environment = s
        .environment("checkout", &format!("chaos-{run}"), "1.2.0")
        .map_err(|e| format!("provision: {e:#}"))?;
    if matches!(scenario, Scenario::NeverHealthy) {
        s.never_healthy(&env.cluster, &env.green_service)
            .map_err(|e| format!("{e:#}"))?;
    }
    let version = "1.3.0";
    let name = deployment_name(&env.service, &env.environment, version);
    let input = env.request(version, "chaos@example.com", timings());
    let arn = s
        .start_deployment(&name, &input)
        .await
        .map_err(|e| format!("start: {e:#}"))?;

    if matches!(scenario, Scenario::AlarmMidShift) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let on_green = s.split(&env).await.map(|t| t.green() > 0).unwrap_or(false);
            let running = s
                .execution(&arn)
                .await
                .map(|e| e.status == "RUNNING")
                .unwrap_or(true);
            if on_green || !running || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(alarm) = env.alarm_names.first() {
            s.set_alarm(alarm, "ALARM", "chaos: green is failing")
                .map_err(|e| format!("{e:#}"))?;
        }
    }

    let end = s
        .wait(&arn, TIMEOUT)
        .await
        .map_err(|e| format!("STUCK: {e:#}"))?;
    execution_status(s, &arn, &name, &end, &input).await;

    // The listener: whole, on green exactly when the deployment succeeded.
    let split = s
        .split(&env)
        .await
        .map_err(|e| format!("listener: {e:#}"))?;
    let want = if end.status == "SUCCEEDED" {
        Color::Green
    } else {
        Color::Blue
    };
    if split != TrafficSplit::all_on(want) {
        return Err(format!(
            "listener {split} after {} ({:?}); expected all on {want}",
            end.status, end.error
        ));
    }
    // The record: terminal, and agreeing with the execution.
    let record = s
        .store
        .deployment(&name)
        .await
        .map_err(|e| format!("{e}"))?
        .ok_or("no deployment record")?;
    if !record.phase.is_terminal() {
        return Err(format!("record left in {}", record.phase));
    }
    if (record.status.as_str() == "SUCCEEDED") != (end.status == "SUCCEEDED") {
        return Err(format!(
            "record {} but execution {}",
            record.status.as_str(),
            end.status
        ));
    }
    // It never began (its first phase never read the colors): nothing may have moved, and it
    // says why.
    if record.colors().is_none()
        && (record.status.as_str() != "FAILED"
            || !record
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(shared::usecases::rollback::NEVER_STARTED)))
    {
        return Err(format!(
            "ended before it began, yet {} with reason {:?}",
            record.status.as_str(),
            record.reason
        ));
    }
    // The lock, and the environment's idea of which color is live. An environment whose only
    // deployment never began has no state yet (started from the console, nothing locked it).
    let state = match s
        .store
        .environment(&env.service, &env.environment)
        .await
        .map_err(|e| format!("{e}"))?
    {
        Some(state) => state,
        None if record.colors().is_none() => {
            return Ok(format!(
                "{name} {scenario:?} → {} before it began: {}",
                end.status,
                record.reason.unwrap_or_default()
            ));
        }
        None => return Err("no environment state".into()),
    };
    if let Some(holder) = &state.active_deployment {
        return Err(format!("lock still held by {holder}"));
    }
    if let Some(active) = state.active_color
        && active != want
    {
        return Err(format!(
            "environment says {active} is live; listener says {want}"
        ));
    }
    // Steps: each at most once, in the plan's order.
    let steps = s.store.steps(&name).await.map_err(|e| format!("{e}"))?;
    let greens: Vec<u16> = steps.iter().map(|st| st.split.green()).collect();
    let plan = [10u16, 25, 50, 100];
    if greens.len() > plan.len() || greens[..] != plan[..greens.len()] {
        return Err(format!("steps recorded {greens:?}; plan {plan:?}"));
    }
    if matches!(scenario, Scenario::AlarmMidShift) && end.status == "SUCCEEDED" && greens.len() < 4
    {
        return Err("succeeded without walking every step".into());
    }
    Ok(format!(
        "{} {:?} → {} {} steps {:?}",
        name,
        scenario,
        end.status,
        end.error.unwrap_or_default(),
        greens
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_under_injected_aws_faults_end_whole_on_one_color() {
    let s = LocalStack::start()
        .await
        .unwrap_or_else(|e| panic!("local stack: {e:#}"));
    let runs = env_or("CHAOS_LOCAL_RUNS", 20);
    let lanes = env_or("CHAOS_LOCAL_LANES", 10).max(1);
    let _off = FaultsOff(&s);
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    let seeds = seeds::campaign_seeds("CHAOS_LOCAL_SEED", "chaos_local");
    for &seed in &seeds {
        println!(
            "chaos_local: {runs} runs in {lanes} lanes, seed {seed} (CHAOS_LOCAL_SEED={seed} replays the campaign's faults and scenarios)"
        );
        campaign(&s, seed, runs, lanes, &mut outcomes, &mut failures).await;
    }
    let stats = s.stats().ok();
    for o in &outcomes {
        println!("  ok   {o}");
    }
    for f in &failures {
        println!("  FAIL {f}");
    }
    if let Some(stats) = stats {
        println!("  faults injected: {}", stats["faults"]);
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs broke an invariant (CHAOS_LOCAL_SEED=<its seed> replays):\n{}",
        failures.len(),
        runs * seeds.len() as u64,
        failures.join("\n")
    );
}

/// One campaign of `runs` deployments, `lanes` at a time, from master seed `seed`.
async fn campaign(
    s: &LocalStack,
    seed: u64,
    runs: u64,
    lanes: u64,
    outcomes: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let mut rng = Rng(seed);
    let mut run = 0;
    while run < runs {
        // One fault setting per batch of concurrent runs: the router's faults are global.
        let rate = 0.10 + rng.below(41) as f64 / 100.0; // 10-50 %
        let crash = rng.below(6) as f64 / 100.0; // 0-5 % of invocations crash
        let fault_seed = rng.next();
        s.control(
            "faults",
            json!({"rate": rate, "lambda_crash_rate": crash, "seed": fault_seed}),
        )
        .unwrap_or_else(|e| panic!("setting faults: {e:#}"));
        let batch: Vec<(u64, Scenario)> = (run..(run + lanes).min(runs))
            .map(|r| {
                let scenario = match rng.below(4) {
                    0 => Scenario::AlarmMidShift,
                    1 => Scenario::NeverHealthy,
                    _ => Scenario::Healthy,
                };
                (seed.wrapping_add(r) % 1_000_000, scenario)
            })
            .collect();
        run += batch.len() as u64;
        let results = futures_join(s, &batch).await;
        for ((id, scenario), r) in batch.iter().zip(results) {
            let label = format!(
                "seed {seed} run chaos-{id} ({scenario:?}, faults {:.0} %, crashes {:.0} %)",
                rate * 100.0,
                crash * 100.0
            );
            match r {
                Ok(line) => outcomes.push(format!("{label}: {line}")),
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    // The next campaign starts from a quiet stack.
    let _ = s.control("faults", json!({"rate": 0}));
}

async fn futures_join(s: &LocalStack, batch: &[(u64, Scenario)]) -> Vec<Result<String, String>> {
    let mut handles = Vec::new();
    for (id, scenario) in batch {
        handles.push(one_run(s, *id, *scenario));
    }
    let mut out = Vec::new();
    // Run the batch concurrently on this task.
    let joined = futures::future::join_all(handles).await;
    out.extend(joined);
    out
}
