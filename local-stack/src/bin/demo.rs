//! `make demo`: two Blue/Green deployments on the local stack, printed as an operator reads
//! them. (a) v1.2.0 active, deploy v1.3.0: succeeds. (b) deploy v1.3.1 whose green answers 8 %
//! 5xx from the 25 % step: rolled back automatically. Exits non-zero if either ends otherwise.

use anyhow::{Result, bail};
use local_stack::{LocalStack, deployment_name, follow::follow};
use serde_json::json;
use shared::domain::{Color, DeploymentStatus, TrafficSplit};
use std::time::Duration;

const VERIFICATION_SECONDS: u64 = 6;

fn timings() -> serde_json::Value {
    json!({
        "step_wait_seconds": 2,
        "verification_seconds": VERIFICATION_SECONDS,
        "verification_interval_seconds": 2,
        "health_poll_seconds": 1,
        "health_timeout_seconds": 20
    })
}

fn print(line: &str) {
    println!("{line}");
}

fn banner(title: &str) {
    println!("\n{}\n{title}\n{}\n", "═".repeat(72), "═".repeat(72));
}

#[tokio::main]
async fn main() -> Result<()> {
    let stack = LocalStack::start().await?;
    stack.control("traffic", json!({"rps": 5000}))?;
    let mut failures = Vec::new();

    // (a) a healthy release
    banner("Scenario A: deploy checkout v1.3.0 to DEV (v1.2.0 active on Blue)");
    let dev = stack.environment("checkout", "dev", "1.2.0")?;
    stack.traffic_profile(&dev.green_target_group_arn, 0.0001, 45.0, 0)?;
    let id = deployment_name("checkout", "dev", "1.3.0");
    let arn = stack
        .start_deployment(&id, &dev.request("1.3.0", "alice@example.com", timings()))
        .await?;
    let a = follow(
        &stack,
        &dev,
        &id,
        &arn,
        VERIFICATION_SECONDS,
        Duration::from_secs(120),
        &mut print,
    )
    .await?;
    let split = stack.split(&dev).await?;
    if a.record.status != DeploymentStatus::Succeeded
        || a.execution.status != "SUCCEEDED"
        || split != TrafficSplit::all_on(Color::Green)
    {
        failures.push(format!(
            "scenario A expected SUCCEEDED with Green at 100%, got {} (execution {}) with {split}",
            a.record.status.as_str(),
            a.execution.status
        ));
    }

    // (b) a release whose green fails from the 25 % step
    banner("Scenario B: deploy checkout v1.3.1 to TST; Green answers 8% 5xx from the 25% step");
    let tst = stack.environment("checkout", "tst", "1.2.0")?;
    stack.traffic_profile(&tst.green_target_group_arn, 0.08, 48.0, 25)?;
    let id = deployment_name("checkout", "tst", "1.3.1");
    let arn = stack
        .start_deployment(&id, &tst.request("1.3.1", "bob@example.com", timings()))
        .await?;
    let b = follow(
        &stack,
        &tst,
        &id,
        &arn,
        VERIFICATION_SECONDS,
        Duration::from_secs(120),
        &mut print,
    )
    .await?;
    let split = stack.split(&tst).await?;
    let reason = b.record.reason.clone().unwrap_or_default();
    if b.record.status != DeploymentStatus::RolledBack
        || split != TrafficSplit::all_on(Color::Blue)
        || !reason.contains("error rate")
    {
        failures.push(format!(
            "scenario B expected ROLLED_BACK on error rate with Blue at 100%, got {} with {split} ({reason})",
            b.record.status.as_str()
        ));
    }

    println!();
    if failures.is_empty() {
        println!("Demo finished: both deployments ended as their scenarios expect.");
        Ok(())
    } else {
        bail!("demo failed:\n  {}", failures.join("\n  "))
    }
}
