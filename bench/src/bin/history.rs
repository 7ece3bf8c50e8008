//! History and metrics reads against a large table: `--deployments` (default 100,000) stored
//! deployments over the past year in four environments, read through the product's own
//! DynamoDB adapter. For each read: items DynamoDB read (ScannedCount) against items returned
//! (Count), from the local router's counters, and latency. Baseline in the same run: GetItem
//! of one deployment by id.
//!
//! Usage: history [--deployments 100000] [--repeat 20]

use anyhow::{Result, anyhow};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use clap::Parser;
use local_stack::LocalStack;
use serde_json::Value;
use shared::adapters::dynamodb::{DynamoStore, deployment_item};
use shared::domain::{DeploymentRecord, DeploymentStatus, Phase};
use shared::ports::DeploymentStore;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    deployments: usize,
    /// Timed repetitions of each read.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

const TABLE: &str = "bluegreen";
const ENVIRONMENTS: [&str; 4] = ["hist-dev", "hist-tst", "hist-stg", "hist-prd"];

fn record(i: usize, n: usize, now: OffsetDateTime) -> DeploymentRecord {
    // Spread evenly over the past 365 days, newest last.
    let age = time::Duration::seconds(((n - i) as i64) * 365 * 86_400 / n as i64);
    let phase = if i.is_multiple_of(10) {
        Phase::RolledBack
    } else {
        Phase::Succeeded
    };
    let environment = ENVIRONMENTS[i % ENVIRONMENTS.len()];
    let mut r = shared::fakes::sample::record(phase);
    r.id = format!("hist-{i:06}");
    r.execution_arn = format!(
        "arn:aws:states:us-east-1:123456789012:execution:blue-green:{}",
        r.id
    );
    r.environment = environment.to_string();
    // The history measurements read one service's PRD: it holds all of PRD, so its pages are
    // as deep as the environment's were when the index was keyed by environment alone.
    r.service = if environment == "hist-prd" {
        "svc-0".to_string()
    } else {
        format!("svc-{}", i % 25)
    };
    r.version = format!("1.{}.{}", i / 1000, i % 1000);
    r.status = DeploymentStatus::of(phase);
    r.started_at = now - age;
    r.finished_at = Some(now - age + time::Duration::seconds(900));
    r.duration_seconds = Some(900);
    r
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3
}

/// Runs `read` `repeat` times; prints latency and the router's read/returned counts.
async fn measure<F, Fut>(name: &str, stack: &LocalStack, repeat: usize, mut read: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    stack.control("stats/reset", serde_json::json!({}))?;
    let mut times = Vec::with_capacity(repeat);
    let mut returned_by_us = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        returned_by_us = read().await?;
        times.push(t.elapsed());
    }
    let s = stack.stats()?;
    let scanned = s["totals"]["dynamodb_items_scanned"]
        .as_f64()
        .unwrap_or(0.0)
        / repeat as f64;
    let returned = s["totals"]["dynamodb_items_returned"]
        .as_f64()
        .unwrap_or(0.0)
        / repeat as f64;
    let requests: u64 = s["calls"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let ratio = if returned > 0.0 {
        scanned / returned
    } else {
        1.0
    };
    println!(
        "| {name} | {returned_by_us} | {:.0} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} |",
        scanned,
        returned,
        ratio,
        requests as f64 / repeat as f64,
        percentile(&mut times, 50.0),
        percentile(&mut times, 99.0),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let endpoint = local_stack::endpoint();
    // Make sure the stack is up and the table exists.
    let stack = LocalStack::start().await?;
    let http = shared::adapters::http::https_client(shared::adapters::http::Roots::Native)
        .map_err(|e| anyhow!(e))?;
    // The API function's app id: the router counts (and reports items read for) these calls as its.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .app_name(aws_config::AppName::new("api").map_err(|e| anyhow!("{e}"))?)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let store = DynamoStore::new(client.clone(), TABLE);

    // ---- seed ------------------------------------------------------------------------------
    let n = args.deployments.max(ENVIRONMENTS.len());
    let now = OffsetDateTime::now_utc();
    let seeding = Instant::now();
    let mut batches = Vec::new();
    for chunk_start in (0..n).step_by(25) {
        let mut writes = Vec::with_capacity(25);
        for i in chunk_start..(chunk_start + 25).min(n) {
            let item = deployment_item(&record(i, n, now)).map_err(|e| anyhow!("{e}"))?;
            writes.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build(),
            );
        }
        batches.push(writes);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let batches = std::sync::Arc::new(std::sync::Mutex::new(batches));
    for _ in 0..8 {
        let (client, batches) = (client.clone(), batches.clone());
        tasks.spawn(async move {
            loop {
                let next = batches.lock().map_err(|_| anyhow!("poisoned"))?.pop();
                let Some(mut writes) = next else {
                    return Ok::<_, anyhow::Error>(());
                };
                while !writes.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(TABLE, writes)
                        .send()
                        .await
                        .map_err(|e| {
                            anyhow!(
                                "BatchWriteItem: {}",
                                aws_sdk_dynamodb::error::DisplayErrorContext(e)
                            )
                        })?;
                    writes = out
                        .unprocessed_items()
                        .and_then(|m| m.get(TABLE))
                        .cloned()
                        .unwrap_or_default();
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!(
        "## History and metrics reads with {n} stored deployments\n\nSeeded in {:.1} s ({} environments, one year).\n",
        seeding.elapsed().as_secs_f64(),
        ENVIRONMENTS.len()
    );
    println!(
        "| read | items returned to caller | items read (ScannedCount) | items returned (Count) | read/returned (goal 1) | requests | p50 ms | p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");

    let repeat = args.repeat.max(1);
    let id = format!("hist-{:06}", n - 1);
    measure(
        "baseline: one deployment by id (GetItem)",
        &stack,
        repeat,
        || async { Ok(usize::from(store.deployment(&id).await?.is_some())) },
    )
    .await?;
    measure(
        "history: newest page of an environment (20)",
        &stack,
        repeat,
        || async {
            Ok(store
                .history("svc-0", "hist-prd", 20, None)
                .await?
                .items
                .len())
        },
    )
    .await?;
    measure(
        "history: 10th page of an environment (10 × 20)",
        &stack,
        repeat,
        || async {
            let mut cursor: Option<String> = None;
            let mut last = 0;
            for _ in 0..10 {
                let page = store
                    .history("svc-0", "hist-prd", 20, cursor.as_deref())
                    .await?;
                last = page.items.len();
                cursor = page.next;
            }
            Ok(last)
        },
    )
    .await?;
    measure(
        "metrics: last 7 days, every environment",
        &stack,
        repeat.min(5),
        || async {
            Ok(store
                .deployments_between(
                    now - time::Duration::days(7),
                    now + time::Duration::seconds(1),
                )
                .await?
                .len())
        },
    )
    .await?;
    measure(
        "metrics: last 30 days, every environment",
        &stack,
        repeat.min(5),
        || async {
            Ok(store
                .deployments_between(
                    now - time::Duration::days(30),
                    now + time::Duration::seconds(1),
                )
                .await?
                .len())
        },
    )
    .await?;
    Ok(())
}
