//! `make bench`: rollback reaction time on the local stack. For each run a deployment is
//! started through the API and held at its first step (10 %); then the alarm trigger receives
//! an ALARM event, and the time is taken from sending the event until the invocation returns,
//! by which point the weights are restored and read back (verified here once more).
//! Baselines measured in the same run: the same trigger on an OK event (the invocation path
//! alone), and one listener write plus read-back straight through the SDK.
//! Usage: bench_rollback [RUNS] (default 50).

use anyhow::{Context, Result, bail};
use local_stack::{LocalStack, alarm_event};
use serde_json::json;
use shared::domain::{Color, TrafficSplit};
use shared::ports::{DeploymentStore, TrafficRouter};
use std::time::{Duration, Instant};

const CALLER: &str = "arn:aws:iam::123456789012:user/bench";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<52} {:>5} {:>9.1} {:>9.1} {:>9.1}",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1000.0,
        percentile(&samples, 99.0).as_secs_f64() * 1000.0,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("RUNS must be a number")?
        .unwrap_or(50);
    let stack = LocalStack::start().await?;
    let env = stack.environment("checkout", "bench-rollback", "1.2.0")?;
    let timings = json!({"step_wait_seconds": 60, "verification_seconds": 0, "verification_interval_seconds": 0,
                         "metrics_period_seconds": 1, "metrics_delay_seconds": 2,
                         "health_poll_seconds": 1, "health_timeout_seconds": 10});
    stack.register(&env, timings, CALLER)?;
    let alarm = env
        .alarm_names
        .first()
        .context("the environment has no alarm")?
        .clone();
    let fwd = env.forward_target()?;

    let (mut reaction, mut noop, mut sdk) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let body = json!({"version": format!("1.3.{run}"),
                          "image": format!("{}:1.3.{run}", env.image_repository)});
        let path = format!(
            "/services/{}/environments/{}/deployments",
            env.service, env.environment
        );
        let started = stack.api("POST", &path, Some(&body), CALLER)?;
        if started.status != 202 {
            bail!(
                "run {run}: start refused: {} {}",
                started.status,
                started.body
            );
        }
        let id = started.body["deployment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let arn = started.body["execution_arn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        while stack.store.steps(&id).await?.is_empty() {
            if Instant::now() > deadline {
                bail!("run {run}: {id} never reached its first step");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let t = Instant::now();
        let ok = stack.invoke(
            "alarm-trigger",
            &alarm_event(&alarm, "OK", "Threshold not crossed"),
        )?;
        noop.push(t.elapsed());
        if ok.error_type.is_some() {
            bail!("run {run}: OK event failed: {}", ok.payload);
        }

        let t = Instant::now();
        let out = stack.invoke(
            "alarm-trigger",
            &alarm_event(&alarm, "ALARM", "Threshold Crossed (benchmark)"),
        )?;
        reaction.push(t.elapsed());
        if out.error_type.is_some() {
            bail!("run {run}: alarm trigger failed: {}", out.payload);
        }
        let split = stack.split(&env).await?;
        if split != TrafficSplit::all_on(Color::Blue) {
            bail!("run {run}: after the alarm the listener is at {split}");
        }
        stack.wait(&arn, Duration::from_secs(60)).await?;

        // baseline: the essential AWS work alone, one verified write through the SDK
        let t = Instant::now();
        stack
            .router
            .set_split(&fwd, TrafficSplit::all_on(Color::Blue))
            .await?;
        sdk.push(t.elapsed());
    }

    println!("\nRollback reaction on the local stack ({runs} runs; milliseconds)\n");
    println!(
        "{:<52} {:>5} {:>9} {:>9} {:>9}",
        "measurement", "n", "p50", "p99", "max"
    );
    row("alarm event -> weights restored and read back", reaction);
    row("baseline: same trigger, OK event (invocation path)", noop);
    row("baseline: one ModifyListener + read-back via SDK", sdk);
    Ok(())
}
