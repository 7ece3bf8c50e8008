//! `make demo`: Blue/Green deployments on the local stack, printed as an operator reads them.
//! (a) v1.2.0 active, deploy v1.3.0: succeeds. (b) deploy v1.3.1 whose green answers 8 % 5xx
//! from the 25 % step: rolled back automatically. (c) a release started through the API, an
//! alarm fires during the shift: traffic is restored by the alarm itself, at once. Exits
//! non-zero if any ends otherwise.

use anyhow::{Result, bail};
use local_stack::{LocalStack, alarm_event, deployment_name, follow::follow};
use serde_json::json;
use shared::domain::{Color, DeploymentStatus, TrafficSplit};
use shared::ports::DeploymentStore;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

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
    let stack = Arc::new(LocalStack::start().await?);
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

    // (c) an alarm fires while traffic is shifting
    banner("Scenario C: deploy checkout v1.3.2 to STG through the API; an alarm fires at 25%");
    let stg = stack.environment("checkout", "stg", "1.2.0")?;
    let mut registry_timings = timings();
    registry_timings["step_wait_seconds"] = json!(4);
    stack.register(
        &stg,
        registry_timings,
        "arn:aws:iam::123456789012:user/carol",
    )?;
    let body = json!({"service": "checkout", "environment": "stg", "version": "1.3.2",
                      "image": format!("{}:1.3.2", stg.image_repository)});
    let started = stack.api(
        "POST",
        "/deployments",
        Some(&body),
        "arn:aws:iam::123456789012:user/carol",
    )?;
    if started.status != 202 {
        bail!(
            "POST /deployments answered {}: {}",
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
    println!("POST /deployments → 202 Accepted: {id}\n");
    let alarm = stg.alarm_names.first().cloned().unwrap_or_default();
    let fire = {
        let stack = stack.clone();
        let (id, alarm) = (id.clone(), alarm.clone());
        tokio::spawn(async move {
            // wait for the 25 % step, then the alarm goes off
            loop {
                let steps = stack.store.steps(&id).await?;
                if steps.iter().any(|s| s.split.green() == 25) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let t = Instant::now();
            let out = stack.invoke(
                "alarm-trigger",
                &alarm_event(
                    &alarm,
                    "ALARM",
                    "Threshold Crossed: 5xx rate 7.9% > 5% for 2 datapoints",
                ),
            )?;
            let took = t.elapsed();
            println!(
                "  ⚡ Alarm {alarm} → ALARM: all traffic back on Blue in {} ms (in the alarm's own invocation)",
                took.as_millis()
            );
            anyhow::Ok((out, took))
        })
    };
    let c = follow(
        &stack,
        &stg,
        &id,
        &arn,
        VERIFICATION_SECONDS,
        Duration::from_secs(120),
        &mut print,
    )
    .await?;
    let fired = fire.await??;
    let split = stack.split(&stg).await?;
    let reason = c.record.reason.clone().unwrap_or_default();
    if c.record.status != DeploymentStatus::RolledBack
        || split != TrafficSplit::all_on(Color::Blue)
        || !reason.starts_with(&format!("alarm {alarm}"))
        || fired.0.error_type.is_some()
    {
        failures.push(format!(
            "scenario C expected ROLLED_BACK by alarm {alarm} with Blue at 100%, got {} with {split} ({reason})",
            c.record.status.as_str()
        ));
    }

    println!();
    if failures.is_empty() {
        println!("Demo finished: every deployment ended as its scenario expects.");
        Ok(())
    } else {
        bail!("demo failed:\n  {}", failures.join("\n  "))
    }
}
