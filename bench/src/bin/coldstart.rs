//! Cold start and memory of every function binary, against a bare `lambda_runtime` function
//! built with the same profile (the baseline, measured in the same run).
//!
//! A fake Lambda Runtime API (the real protocol: `GET /2018-06-01/runtime/invocation/next`,
//! `POST .../response|error`) stands in for the Lambda service:
//! - cold start: time from spawning the binary until it asks for its first event; median of
//!   `--starts` starts per binary;
//! - memory: every sample event for the function under `events/` is served as its first
//!   invocation, with AWS calls going to `--endpoint` (the local stack); the process's peak
//!   resident set (VmHWM) is read once it has answered, so it covers init and the invocation.
//!
//! Usage: coldstart [--bin-dir target/release] [--starts 25] [--endpoint http://127.0.0.1:4566]

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tiny_http::{Header, Response, Server};

#[derive(Parser)]
struct Args {
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Starts per binary for the cold-start median.
    #[arg(long, default_value_t = 25)]
    starts: usize,
    /// AWS endpoint the functions call while replaying events (the local stack's router).
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// Skip the memory replay (cold start only).
    #[arg(long)]
    no_replay: bool,
}

const BASELINE: &str = "bare-function";

/// Every function and the sample events it is invoked with.
const FUNCTIONS: &[(&str, &[&str])] = &[
    ("deploy-green", &["tasks/deploy-green.json"]),
    ("request-approval", &["tasks/request-approval.json"]),
    ("shift-traffic", &["tasks/shift-traffic.json"]),
    ("evaluate", &["tasks/evaluate.json"]),
    ("finalize", &["tasks/finalize.json"]),
    ("rollback", &["tasks/rollback.json"]),
    ("api", &["api/"]),
    (
        "ecr-push-trigger",
        &[
            "triggers/ecr-push.json",
            "triggers/ecr-push-latest.json",
            "triggers/ecr-delete.json",
        ],
    ),
    (
        "alarm-trigger",
        &[
            "triggers/alarm-state-change.json",
            "triggers/alarm-ok.json",
            "triggers/alarm-lambda-action.json",
        ],
    ),
    (
        "execution-status",
        &[
            "triggers/execution-succeeded.json",
            "triggers/execution-aborted.json",
        ],
    ),
];

fn spawn(binary: &Path, runtime_api: &str, endpoint: &str) -> Result<Child> {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TABLE_NAME", "bluegreen-deployments")
        .env(
            "STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:bluegreen-blue-green",
        )
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

fn header(name: &str, value: &str) -> Result<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .map_err(|()| anyhow::anyhow!("bad header {name}"))
}

/// One start: the time until the binary asks for its first event; with `event`, that event is
/// served and the peak RSS (kB) read after the function answers.
fn one_start(
    binary: &Path,
    event: Option<&str>,
    endpoint: &str,
) -> Result<(Duration, Option<u64>)> {
    let server = Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("runtime API address")?
        .to_string();
    let started = Instant::now();
    let mut child = spawn(binary, &addr, endpoint)?;
    let result = (|| -> Result<(Duration, Option<u64>)> {
        let request = server
            .recv_timeout(Duration::from_secs(10))?
            .with_context(|| format!("{} never asked for an event", binary.display()))?;
        let init = started.elapsed();
        if !request.url().ends_with("/runtime/invocation/next") {
            bail!("unexpected first request {}", request.url());
        }
        let Some(event) = event else {
            return Ok((init, None));
        };
        let deadline_ms = (std::time::SystemTime::now() + Duration::from_secs(60))
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            .to_string();
        let response = Response::from_string(event)
            .with_header(header("Content-Type", "application/json")?)
            .with_header(header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")?)
            .with_header(header("Lambda-Runtime-Deadline-Ms", &deadline_ms)?)
            .with_header(header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )?)
            .with_header(header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000",
            )?);
        request.respond(response)?;
        loop {
            let request = server
                .recv_timeout(Duration::from_secs(60))?
                .with_context(|| format!("{} never answered the event", binary.display()))?;
            let url = request.url().to_string();
            request.respond(Response::empty(202))?;
            if url.ends_with("/response") || url.ends_with("/error") {
                break;
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok((init, Some(hwm)))
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn events_for(root: &Path, specs: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for spec in specs {
        let path = root.join("events").join(spec);
        if spec.ends_with('/') {
            let mut files: Vec<_> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                out.push((
                    format!(
                        "{spec}{}",
                        f.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    std::fs::read_to_string(&f)?,
                ));
            }
        } else if path.exists() {
            out.push((spec.to_string(), std::fs::read_to_string(&path)?));
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = local_stack::repo_root();
    let bin = |name: &str| root.join(&args.bin_dir).join(name);
    let starts = args.starts.max(1);

    println!(
        "## Cold start (spawn → first GET /runtime/invocation/next), median of {starts} starts\n"
    );
    println!("| binary | median ms | p90 ms | ratio to bare | goal |");
    println!("|---|---:|---:|---:|---|");
    // Round robin: every round starts each binary once, so drift in the machine's load (the
    // local stack, other work) falls on the baseline and the functions alike.
    let names: Vec<&str> = std::iter::once(BASELINE)
        .chain(FUNCTIONS.iter().map(|(n, _)| *n))
        .collect();
    for name in &names {
        // One unmeasured start each, so every binary is in the page cache, as on a warm host.
        one_start(&bin(name), None, &args.endpoint)?;
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(starts); names.len()];
    for _ in 0..starts {
        for (i, name) in names.iter().enumerate() {
            samples[i].push(one_start(&bin(name), None, &args.endpoint)?.0);
        }
    }
    let p90 = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() * 9 / 10).copied().unwrap_or_default()
    };
    let base_median = median(samples[0].clone());
    for (i, name) in names.iter().enumerate() {
        let m = median(samples[i].clone());
        let ratio = m.as_secs_f64() / base_median.as_secs_f64().max(1e-9);
        let verdict = if i == 0 {
            String::new()
        } else if ratio <= 2.0 {
            "≤ 2.00 met".to_string()
        } else {
            "≤ 2.00 MISSED".to_string()
        };
        println!(
            "| {name}{} | {:.2} | {:.2} | {ratio:.2} | {verdict} |",
            if i == 0 { " (baseline)" } else { "" },
            m.as_secs_f64() * 1e3,
            p90(samples[i].clone()).as_secs_f64() * 1e3,
        );
    }

    if args.no_replay {
        return Ok(());
    }
    println!("\n## Peak RSS per invocation (VmHWM after answering one event from events/)\n");
    println!("| binary | events | max RSS MiB | event | goal |");
    println!("|---|---:|---:|---|---|");
    let (_, base_rss) = one_start(&bin(BASELINE), Some("{}"), &args.endpoint)?;
    println!(
        "| {BASELINE} (baseline) | 1 | {:.1} | {{}} | |",
        base_rss.unwrap_or_default() as f64 / 1024.0
    );
    for (name, specs) in FUNCTIONS {
        let events = events_for(&root, specs)?;
        let mut worst = (0u64, String::new());
        for (label, body) in &events {
            let (_, rss) = one_start(&bin(name), Some(body), &args.endpoint)
                .with_context(|| format!("{name} with {label}"))?;
            let rss = rss.unwrap_or_default();
            if rss > worst.0 {
                worst = (rss, label.clone());
            }
        }
        let mib = worst.0 as f64 / 1024.0;
        println!(
            "| {name} | {} | {mib:.1} | {} | ≤ 32 {} |",
            events.len(),
            worst.1,
            if mib <= 32.0 { "met" } else { "MISSED" }
        );
    }
    Ok(())
}
