//! What one deployment costs and how long the controller itself takes, on the local stack
//! (the real state machine in moto's interpreter, the real function binaries).
//!
//! - **Cost**: a default-shaped release (4 steps, 10 verification evaluations; here 1 s apart
//!   instead of 60 s, which changes no count) is run to the end. Its execution history gives
//!   the state transitions; the router's counters give the Lambda invocations and durations,
//!   the CloudWatch metrics requested and the DynamoDB calls the functions made. Priced at the
//!   list prices below.
//! - **Controller overhead**: the same release with every wait at zero and no verification,
//!   start to end; baseline in the same run: an execution of a one-state (Pass) machine on the
//!   same stack, i.e. the emulator's own floor.
//!
//! Usage: deployment [--runs 5]

use anyhow::{Result, bail};
use clap::Parser;
use local_stack::{LocalStack, deployment_name};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Zero-wait deployments timed for the controller overhead (median reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// US East (N. Virginia) list prices, 2026.
mod price {
    /// Step Functions Standard: $0.025 per 1,000 state transitions.
    pub const TRANSITION: f64 = 0.025 / 1_000.0;
    /// Lambda requests: $0.20 per million.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
    /// Lambda duration, arm64: $0.0000133334 per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// CloudWatch GetMetricData: $0.01 per 1,000 metrics requested.
    pub const METRIC_REQUESTED: f64 = 0.01 / 1_000.0;
    /// CloudWatch API requests other than GetMetricData (DescribeAlarms counted here, to be
    /// safe): $0.01 per 1,000 requests.
    pub const CLOUDWATCH_REQUEST: f64 = 0.01 / 1_000.0;
    /// DynamoDB on-demand: $0.625 per million write request units.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1_000_000.0;
    /// DynamoDB on-demand: $0.125 per million read request units.
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1_000_000.0;
    /// ELBv2, ECS and Step Functions control-plane reads/writes made by the functions: no
    /// per-request charge.
    pub const FREE: f64 = 0.0;
}

/// Lambda memory of the functions, from template.yaml (Globals.Function.MemorySize).
const MEMORY_GB: f64 = 256.0 / 1024.0;

fn timings(step_wait: u64, verification: u64, interval: u64) -> Value {
    json!({"step_wait_seconds": step_wait, "verification_seconds": verification,
           "verification_interval_seconds": interval, "health_poll_seconds": 0,
           "health_timeout_seconds": 30, "metrics_period_seconds": 1, "metrics_delay_seconds": 0})
}

async fn transitions(stack: &LocalStack, arn: &str) -> Result<BTreeMap<String, u64>> {
    let mut states = BTreeMap::new();
    let mut token = None;
    loop {
        let page = stack
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .set_next_token(token)
            .max_results(1000)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "GetExecutionHistory: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            })?;
        for e in page.events() {
            if let Some(d) = e.state_entered_event_details() {
                *states.entry(d.name().to_string()).or_insert(0) += 1;
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(states)
}

async fn run(
    stack: &LocalStack,
    env: &local_stack::Environment,
    version: &str,
    t: Value,
) -> Result<(String, Duration)> {
    let input = env.request(version, "bench@example.com", t);
    let started = Instant::now();
    let arn = stack
        .start_deployment(
            &deployment_name(&env.service, &env.environment, version),
            &input,
        )
        .await?;
    let end = stack.wait(&arn, Duration::from_secs(600)).await?;
    let took = started.elapsed();
    if end.status != "SUCCEEDED" {
        bail!(
            "deployment {version} ended {} ({:?}: {:?})",
            end.status,
            end.error,
            end.cause
        );
    }
    Ok((arn, took))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stack = LocalStack::start().await?;
    let env = stack.environment("checkout", "bench-cost", "1.2.0")?;
    stack.register(
        &env,
        timings(0, 0, 0),
        "arn:aws:iam::123456789012:user/bench",
    )?;

    // ---- cost of one default-shaped deployment --------------------------------------------
    stack.control("stats/reset", json!({}))?;
    let (arn, _) = run(&stack, &env, "1.3.0", timings(1, 10, 1)).await?;
    let states = transitions(&stack, &arn).await?;
    let s = stack.stats()?;
    let total_transitions: u64 = states.values().sum();
    let calls: BTreeMap<String, u64> = serde_json::from_value(s["calls"].clone())?;
    let invocations = s["invocations"].as_array().cloned().unwrap_or_default();
    let lambda_ms: f64 = invocations.iter().filter_map(|i| i["ms"].as_f64()).sum();
    // Lambda bills duration rounded up to the millisecond, per invocation.
    let billed_ms: f64 = invocations
        .iter()
        .filter_map(|i| i["ms"].as_f64())
        .map(f64::ceil)
        .sum();
    let gb_seconds = billed_ms / 1000.0 * MEMORY_GB;
    let metrics = s["totals"]["cloudwatch_metrics_requested"]
        .as_f64()
        .unwrap_or(0.0);
    let count = |pred: &dyn Fn(&str) -> bool| -> u64 {
        calls.iter().filter(|(k, _)| pred(k)).map(|(_, v)| *v).sum()
    };
    let cw_other = count(&|k| k.starts_with("cloudwatch.") && !k.contains("GetMetricData"));
    // Units: every item the product writes is under 1 KB; a transaction costs 2 units per item.
    let ddb_writes = count(&|k| matches!(k, "PutItem" | "UpdateItem" | "DeleteItem"));
    let ddb_tx = count(&|k| k == "TransactWriteItems");
    let ddb_reads = count(&|k| matches!(k, "GetItem" | "Query" | "BatchGetItem"));
    let write_units = ddb_writes as f64 + ddb_tx as f64 * 2.0 * 2.0;
    let read_units = ddb_reads as f64;
    let rows = [
        (
            "Step Functions state transitions",
            total_transitions as f64,
            price::TRANSITION,
        ),
        (
            "Lambda requests",
            invocations.len() as f64,
            price::LAMBDA_REQUEST,
        ),
        (
            "Lambda GB-seconds (256 MB, arm64)",
            gb_seconds,
            price::LAMBDA_GB_SECOND,
        ),
        (
            "CloudWatch metrics requested (GetMetricData)",
            metrics,
            price::METRIC_REQUESTED,
        ),
        (
            "CloudWatch other requests (DescribeAlarms)",
            cw_other as f64,
            price::CLOUDWATCH_REQUEST,
        ),
        (
            "DynamoDB write units (≤1 KB items; transactions ×2)",
            write_units,
            price::DYNAMODB_WRITE_UNIT,
        ),
        (
            "DynamoDB read units (strongly consistent, ≤4 KB)",
            read_units,
            price::DYNAMODB_READ_UNIT,
        ),
        (
            "ELBv2 / ECS / Step Functions API calls",
            count(&|k| {
                !k.starts_with("cloudwatch.")
                    && !k.starts_with("ecs.")
                    && !matches!(
                        k,
                        "PutItem"
                            | "UpdateItem"
                            | "DeleteItem"
                            | "TransactWriteItems"
                            | "GetItem"
                            | "Query"
                            | "BatchGetItem"
                    )
            }) as f64
                + count(&|k| k.starts_with("ecs.")) as f64,
            price::FREE,
        ),
    ];
    println!("## Cost of one deployment (4 steps, 10 verification evaluations)\n");
    println!("| item | quantity | unit price $ | cost $ |");
    println!("|---|---:|---:|---:|");
    let mut total = 0.0;
    for (name, qty, unit) in rows {
        let cost = qty * unit;
        total += cost;
        println!("| {name} | {qty:.3} | {unit:.10} | {cost:.6} |");
    }
    println!(
        "| **total** | | | **{total:.6}** (goal ≤ 0.002: {}) |",
        if total <= 0.002 { "met" } else { "MISSED" }
    );
    println!(
        "\nState transitions: {total_transitions} (goal ≤ 60: {}), by state: {}",
        if total_transitions <= 60 {
            "met"
        } else {
            "MISSED"
        },
        states
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Lambda: {} invocations, {:.0} ms in all (local debug binaries through the router; \
         billed here as measured)",
        invocations.len(),
        lambda_ms
    );
    println!(
        "Calls by the functions: {}",
        calls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- controller overhead -----------------------------------------------------------
    let pass = stack
        .sfn
        .create_state_machine()
        .name(format!("bench-pass-{}", std::process::id()))
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .definition(r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "CreateStateMachine: {}",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            )
        })?;
    let mut floor = Vec::new();
    let mut whole = Vec::new();
    let mut lambda = Vec::new();
    for i in 0..args.runs.max(1) {
        let started = Instant::now();
        let out = stack
            .sfn
            .start_execution()
            .state_machine_arn(pass.state_machine_arn())
            .name(format!("pass-{i}"))
            .input("{}")
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "StartExecution: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            })?;
        stack
            .wait(out.execution_arn(), Duration::from_secs(60))
            .await?;
        floor.push(started.elapsed());

        stack.control("stats/reset", json!({}))?;
        let (_, took) = run(&stack, &env, &format!("1.4.{i}"), timings(0, 0, 0)).await?;
        whole.push(took);
        let s = stack.stats()?;
        let ms: f64 = s["invocations"]
            .as_array()
            .map(|v| v.iter().filter_map(|i| i["ms"].as_f64()).sum())
            .unwrap_or(0.0);
        lambda.push(Duration::from_secs_f64(ms / 1000.0));
    }
    let (w, f, l) = (median(whole), median(floor), median(lambda));
    println!(
        "\n## Controller overhead (every wait 0, no verification), median of {} runs\n",
        args.runs.max(1)
    );
    println!("| measure | seconds |");
    println!("|---|---:|");
    println!(
        "| whole deployment, start to SUCCEEDED | {:.2} (goal ≤ 5: {}) |",
        w.as_secs_f64(),
        if w.as_secs_f64() <= 5.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "| of which inside the functions (sum of invocations) | {:.2} |",
        l.as_secs_f64()
    );
    println!(
        "| baseline: one Pass state, start to SUCCEEDED | {:.2} |",
        f.as_secs_f64()
    );
    Ok(())
}
