//! `make demo`: Blue/Green deployments on the local stack, printed as an operator reads them.
//! (a) v1.2.0 active, deploy v1.3.0: succeeds. (b) deploy v1.3.1 whose green answers 8 % 5xx
//! from the 25 % step: rolled back automatically. (c) a release started through the API, an
//! alarm fires during the shift: traffic is restored by the alarm itself, at once. (d) one image
//! promoted DEV → TST → PRD through the gates: refused while TST's evidence is missing, then
//! accepted, approved by a second person, deployed; then the `bluegreen` CLI prints history and
//! metrics. (e) the reference pipeline's own release on EKS pods: infra-agent v1.3.0 through TST
//! to PRD; then v1.3.1, whose image cannot be pulled, fails before any traffic moves and
//! `bluegreen troubleshoot` shows the pods, their events and the kubectl next steps. Exits
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
        "metrics_period_seconds": 1,
        "metrics_delay_seconds": 2,
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
    let body = json!({"version": "1.3.2",
                      "image": format!("{}:1.3.2", stg.image_repository)});
    let started = stack.api(
        "POST",
        "/services/checkout/environments/stg/deployments",
        Some(&body),
        "arn:aws:iam::123456789012:user/carol",
    )?;
    if started.status != 202 {
        bail!(
            "POST /services/checkout/environments/stg/deployments answered {}: {}",
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
    println!("POST /services/checkout/environments/stg/deployments → 202 Accepted: {id}\n");
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

    if let Err(e) = promotion(&stack, &mut failures).await {
        failures.push(format!("scenario D: {e:#}"));
    }
    if let Err(e) = eks_release(&stack, &mut failures).await {
        failures.push(format!("scenario E: {e:#}"));
    }

    println!();
    if failures.is_empty() {
        println!("Demo finished: every deployment ended as its scenario expects.");
        Ok(())
    } else {
        bail!("demo failed:\n  {}", failures.join("\n  "))
    }
}

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const CAROL: &str = "arn:aws:iam::123456789012:user/carol";

/// Runs the `bluegreen` CLI against the local stack as `caller`, printing what it prints;
/// returns its exit code.
fn cli(stack: &LocalStack, caller: &str, args: &[&str]) -> Result<i32> {
    let bin = stack.root.join("target/debug/bluegreen");
    println!("$ bluegreen {}", args.join(" "));
    let out = std::process::Command::new(&bin)
        .args(["--local", "--caller", caller])
        .args(args)
        .env("BLUEGREEN_ROUTER_URL", &stack.endpoint)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| anyhow::anyhow!("{}: {e} (make build builds it)", bin.display()))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!();
    Ok(out.status.code().unwrap_or(-1))
}

/// CI's role (the service's listed recorder) records v1.3.0's results for the pushed image.
fn evidence(stack: &LocalStack, service: &str, env: &str, digest: &str) -> Result<()> {
    for body in [
        json!({"kind": "integration", "passed": 156, "total": 156,
               "image_digest": digest, "link": "https://github.com/example/storefront/actions/runs/1"}),
        json!({"kind": "performance", "p99_ms": 87.0, "image_digest": digest}),
        json!({"kind": "compliance", "controls_passed": 23, "controls_total": 23,
               "image_digest": digest}),
    ] {
        let path = format!("/services/{service}/environments/{env}/versions/1.3.0/evidence");
        let r = stack.api("POST", &path, Some(&body), local_stack::CI_TESTS)?;
        if r.status != 201 {
            bail!("recording evidence: {} {}", r.status, r.body);
        }
    }
    println!(
        "  CI recorded {} evidence for v1.3.0: integration 156/156, P99 87ms, compliance 23/23\n",
        env.to_uppercase()
    );
    Ok(())
}

async fn follow_deployment(
    stack: &LocalStack,
    env: &local_stack::Environment,
    id: &str,
    arn: &str,
) -> Result<local_stack::follow::Followed> {
    follow(
        stack,
        env,
        id,
        arn,
        VERIFICATION_SECONDS,
        Duration::from_secs(180),
        &mut print,
    )
    .await
}

fn started(r: &local_stack::ApiResponse) -> Result<(String, String)> {
    let field = |k: &str| r.body[k].as_str().unwrap_or_default().to_string();
    if r.status != 202 {
        bail!("expected 202, got {} {}", r.status, r.body);
    }
    Ok((field("deployment_id"), field("execution_arn")))
}

/// (d) one image through DEV, TST and PRD.
async fn promotion(stack: &LocalStack, failures: &mut Vec<String>) -> Result<()> {
    let service = "storefront";
    banner("Scenario D: promote storefront v1.3.0 DEV → TST → PRD through the gates");
    let mut envs = Vec::new();
    for name in ["dev", "tst", "prd"] {
        let env = stack.environment(service, name, "1.2.0")?;
        stack.traffic_profile(&env.green_target_group_arn, 0.0001, 45.0, 0)?;
        // PRD waits for a person's approval (production does by default; 10 minutes here)
        let extra = if name == "prd" {
            json!({"approval": {"required": true, "timeout_seconds": 600}})
        } else {
            json!({})
        };
        stack.register_with(&env, timings(), extra, ALICE)?;
        envs.push(env);
    }
    let [dev, tst, prd] = [&envs[0], &envs[1], &envs[2]];

    let image = stack.push_image(service, "1.3.0")?;
    println!("CI pushed {} ({})\n", image.image, &image.digest[..19]);
    let pushed = stack.invoke(
        "ecr-push-trigger",
        &local_stack::ecr_push_event(service, "1.3.0", &image.digest),
    )?;
    let dev_id = pushed.payload["environments"][0]["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dev_arn = pushed.payload["environments"][0]["execution_arn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let d = follow_deployment(stack, dev, &dev_id, &dev_arn).await?;
    if d.record.status != DeploymentStatus::Succeeded {
        bail!("DEV ended {}", d.record.status.as_str());
    }

    evidence(stack, service, "dev", &image.digest)?;
    banner("Promote v1.3.0 DEV → TST");
    let r = stack.api(
        "POST",
        &format!("/services/{service}/environments/tst/promotions"),
        Some(&json!({"version": "1.3.0", "from": "dev"})),
        ALICE,
    )?;
    let (tst_id, tst_arn) = started(&r)?;
    let t = follow_deployment(stack, tst, &tst_id, &tst_arn).await?;
    if t.record.status != DeploymentStatus::Succeeded {
        bail!("TST ended {}", t.record.status.as_str());
    }

    banner("Promote v1.3.0 TST → PRD (TST's test results are not in yet)");
    let mfa = [
        "--mfa-serial",
        "arn:aws:iam::123456789012:mfa/alice",
        "--mfa-code",
        "123456",
    ];
    let mut args = vec![
        "promote",
        "1.3.0",
        "--service",
        service,
        "--from",
        "tst",
        "--to",
        "prd",
    ];
    args.extend(mfa);
    let refused = cli(stack, ALICE, &args)?;
    if refused != 1 {
        failures.push(format!(
            "scenario D expected the first PRD promotion to be refused (exit 1), got exit {refused}"
        ));
    }
    evidence(stack, service, "tst", &image.digest)?;
    let accepted = cli(stack, ALICE, &args)?;
    if accepted != 0 {
        bail!("the PRD promotion was refused with every gate recorded (exit {accepted})");
    }
    let prd_record = loop {
        let history = stack.store.history(service, "prd", 20, None).await?;
        if let Some(r) = history.items.into_iter().find(|r| r.service == service) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // wait until green is ready and the execution waits for a person
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack
        .store
        .deployment(&prd_record.id)
        .await?
        .map(|r| r.phase)
        != Some(shared::domain::Phase::AwaitingApproval)
    {
        if Instant::now() > deadline {
            bail!("PRD never waited for approval");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "  Green has v1.3.0 and healthy targets; PRD traffic is still 100% Blue: {}\n",
        stack.split(prd).await?
    );
    let mut approve = vec![
        "approve",
        prd_record.id.as_str(),
        "--service",
        service,
        "--env",
        "prd",
        "--comment",
        "CHG-1234 approved",
    ];
    approve.extend(mfa);
    let code = cli(stack, CAROL, &approve)?;
    if code != 0 {
        bail!("approval failed (exit {code})");
    }
    let p = follow_deployment(stack, prd, &prd_record.id, &prd_record.execution_arn).await?;
    let split = stack.split(prd).await?;
    if p.record.status != DeploymentStatus::Succeeded || split != TrafficSplit::all_on(Color::Green)
    {
        failures.push(format!(
            "scenario D expected PRD SUCCEEDED with Green at 100%, got {} with {split}",
            p.record.status.as_str()
        ));
    }

    banner("History and metrics (the bluegreen CLI)");
    cli(
        stack,
        ALICE,
        &["history", "--env", "prd", "--service", service],
    )?;
    cli(
        stack,
        ALICE,
        &["metrics", "--service", service, "--days", "7"],
    )?;
    Ok(())
}

/// Waits until deployment `id` waits for a person's approval (green ready, no traffic moved).
async fn until_awaiting_approval(stack: &LocalStack, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack.store.deployment(id).await?.map(|r| r.phase)
        != Some(shared::domain::Phase::AwaitingApproval)
    {
        if Instant::now() > deadline {
            bail!("{id} never waited for approval");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The deployment a push of `service:tag` started in its auto-deploy environment.
fn pushed(stack: &LocalStack, service: &str, tag: &str) -> Result<(String, String, String)> {
    let image = stack.push_image(service, tag)?;
    println!("CI pushed {} ({})\n", image.image, &image.digest[..19]);
    let out = stack.invoke(
        "ecr-push-trigger",
        &local_stack::ecr_push_event(service, tag, &image.digest),
    )?;
    let field = |k: &str| {
        out.payload["environments"][0][k]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    if field("deployment_id").is_empty() {
        bail!(
            "the push of {service}:{tag} started nothing: {}",
            out.payload
        );
    }
    Ok((field("deployment_id"), field("execution_arn"), image.digest))
}

/// (e) the reference pipeline's release, on EKS: each color a Deployment of three pods that a
/// TargetGroupBinding registers in its target group.
async fn eks_release(stack: &LocalStack, failures: &mut Vec<String>) -> Result<()> {
    let service = "infra-agent";
    banner(
        "Scenario E: the reference's release on EKS pods — infra-agent v1.2.0 → v1.3.0, TST then PRD",
    );
    // one Kubernetes API stand-in serves every local cluster: each environment its namespace
    let tst = stack.eks_environment(service, "tst", "infra-agent-tst", "1.2.0")?;
    let prd = stack.eks_environment(service, "prd", "infra-agent", "1.2.0")?;
    for (env, extra) in [
        (&tst, json!({})),
        (
            &prd,
            json!({"approval": {"required": true, "timeout_seconds": 600}}),
        ),
    ] {
        stack.traffic_profile(&env.green_target_group_arn, 0.0001, 45.0, 0)?;
        stack.traffic_profile(&env.blue_target_group_arn, 0.0001, 42.0, 0)?;
        stack.register_with(env, timings(), extra, ALICE)?;
    }
    let put = stack.api(
        "PUT",
        &format!("/services/{service}"),
        Some(&json!({"repository": service, "auto_deploy": ["tst"]})),
        ALICE,
    )?;
    if put.status != 200 {
        bail!("PUT /services/{service}: {} {}", put.status, put.body);
    }
    println!(
        "EKS cluster {} · namespace infra-agent · Deployments infra-agent-blue / infra-agent-green (3 pods each)\n",
        prd.compute["cluster"].as_str().unwrap_or_default()
    );

    let (tst_id, tst_arn, digest) = pushed(stack, service, "1.3.0")?;
    let t = follow_deployment(stack, &tst, &tst_id, &tst_arn).await?;
    if t.record.status != DeploymentStatus::Succeeded {
        bail!("TST ended {}", t.record.status.as_str());
    }
    evidence(stack, service, "tst", &digest)?;

    banner(
        "Deploy v1.3.0 to PRD using blue-green (promoted from TST, approved by a second person)",
    );
    let mfa = [
        "--mfa-serial",
        "arn:aws:iam::123456789012:mfa/alice",
        "--mfa-code",
        "123456",
    ];
    let mut args = vec![
        "promote",
        "1.3.0",
        "--service",
        service,
        "--from",
        "tst",
        "--to",
        "prd",
    ];
    args.extend(mfa);
    let code = cli(stack, ALICE, &args)?;
    if code != 0 {
        bail!("the PRD promotion was refused (exit {code})");
    }
    let prd_record = loop {
        let history = stack.store.history(service, "prd", 20, None).await?;
        if let Some(r) = history.items.into_iter().next() {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    until_awaiting_approval(stack, &prd_record.id).await?;
    let mut approve = vec![
        "approve",
        prd_record.id.as_str(),
        "--service",
        service,
        "--env",
        "prd",
        "--comment",
        "CHG-2041 approved",
    ];
    approve.extend(mfa);
    let code = cli(stack, CAROL, &approve)?;
    if code != 0 {
        bail!("approval failed (exit {code})");
    }
    let p = follow_deployment(stack, &prd, &prd_record.id, &prd_record.execution_arn).await?;
    let split = stack.split(&prd).await?;
    let pods = p
        .record
        .readiness
        .as_ref()
        .map(|r| (r.running, r.desired, r.platform));
    if p.record.status != DeploymentStatus::Succeeded
        || split != TrafficSplit::all_on(Color::Green)
        || pods != Some((3, 3, shared::domain::Platform::Eks))
    {
        failures.push(format!(
            "scenario E expected PRD SUCCEEDED on 3/3 EKS pods with Green at 100%, got {} with {split} ({pods:?})",
            p.record.status.as_str()
        ));
    }

    banner("Deploy v1.3.1 to TST: its image cannot be pulled");
    // TST's standby is now Blue: its next rollout's pods cannot pull the image
    stack.control(
        "eks/scenario",
        json!({"namespace": "infra-agent-tst", "deployment": "infra-agent-blue",
               "mode": "image-pull-backoff"}),
    )?;
    let (bad_id, bad_arn, _) = pushed(stack, service, "1.3.1")?;
    let f = follow_deployment(stack, &tst, &bad_id, &bad_arn).await?;
    let split = stack.split(&tst).await?;
    let reason = f.record.reason.clone().unwrap_or_default();
    let steps = stack.store.steps(&bad_id).await?;
    if f.record.status != DeploymentStatus::Failed
        || split != TrafficSplit::all_on(Color::Green)
        || !steps.is_empty()
        || !reason.contains("ImagePullBackOff")
    {
        failures.push(format!(
            "scenario E expected v1.3.1 FAILED on ImagePullBackOff before any traffic moved, got {} with {split}, {} steps ({reason})",
            f.record.status.as_str(),
            steps.len()
        ));
    }
    banner("Deployment failed - how do I troubleshoot?");
    cli(
        stack,
        ALICE,
        &[
            "troubleshoot",
            &bad_id,
            "--service",
            service,
            "--env",
            "tst",
        ],
    )?;
    Ok(())
}
