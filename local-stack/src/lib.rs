//! Drives the local AWS stack (moto + router + cargo lambda watch, started by `stack.py`):
//! provisions sample environments, sets scenario conditions, starts deployments through the
//! real state machine and follows them in DynamoDB as an operator would.

pub mod follow;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::elbv2::AlbRouter;
use shared::domain::{LoadBalancerTarget, TargetGroupArn, TrafficSplit};
use shared::ports::{ForwardTarget, TrafficRouter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const TABLE: &str = "bluegreen";

/// The role CI records promotion evidence with: every service the local stack registers lists
/// it in `evidence_recorders` for every kind.
pub const CI_TESTS_ROLE: &str = "arn:aws:iam::123456789012:role/ci-tests";
/// A session of [`CI_TESTS_ROLE`], as API Gateway names its caller.
pub const CI_TESTS: &str = "arn:aws:sts::123456789012:assumed-role/ci-tests/gh-alice";
/// A session of the stack's promotion role (`CI_ROLE_ARNS` in stack.py names it, as the
/// template does for a stack named bluegreen), run by GitHub user alice.
pub const PROMOTION_GH_ALICE: &str =
    "arn:aws:sts::123456789012:assumed-role/bluegreen-promotion/gh-alice";

/// The repository root (this crate lives in `<root>/local-stack`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn endpoint() -> String {
    std::env::var("BLUEGREEN_LOCAL_ENDPOINT").unwrap_or_else(|_| {
        let port = std::env::var("BLUEGREEN_ROUTER_PORT").unwrap_or_else(|_| "4566".into());
        format!("http://127.0.0.1:{port}")
    })
}

/// One provisioned environment, as `provision.py environment` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Environment {
    pub service: String,
    pub environment: String,
    pub listener_arn: String,
    pub blue_target_group_arn: String,
    pub green_target_group_arn: String,
    /// The ECS wiring (empty for an EKS environment; `compute` holds every platform's).
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub blue_service: String,
    #[serde(default)]
    pub green_service: String,
    /// The environment's `compute` configuration, as the registry takes it.
    pub compute: Value,
    pub alarm_names: Vec<String>,
    pub image_repository: String,
}

impl Environment {
    pub fn forward_target(&self) -> Result<ForwardTarget> {
        Ok(ForwardTarget {
            target: LoadBalancerTarget::listener(&self.listener_arn)?,
            blue: TargetGroupArn::parse(&self.blue_target_group_arn)?,
            green: TargetGroupArn::parse(&self.green_target_group_arn)?,
        })
    }

    /// The execution input for deploying `version` here, with `timings` in seconds.
    pub fn request(&self, version: &str, deployer: &str, timings: Value) -> Value {
        json!({
            "service": self.service,
            "environment": self.environment,
            "version": version,
            "image": format!("{}:{version}", self.image_repository),
            "deployer": deployer,
            "traffic": {
                "listener_arn": self.listener_arn,
                "blue_target_group_arn": self.blue_target_group_arn,
                "green_target_group_arn": self.green_target_group_arn,
            },
            "compute": self.compute,
            "alarms": self.alarm_names,
            "timings": timings,
        })
    }
}

/// An image pushed to the local ECR.
#[derive(Debug, Clone, Deserialize)]
pub struct PushedImage {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub image: String,
}

/// How a deployment's execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionEnd {
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// When the execution started, in milliseconds since the epoch.
    pub start_ms: i64,
}

pub struct LocalStack {
    pub endpoint: String,
    pub root: PathBuf,
    pub sfn: aws_sdk_sfn::Client,
    pub store: DynamoStore,
    pub router: AlbRouter,
    pub state_machine_arn: String,
}

fn python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

fn run_json(cmd: &mut Command) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{cmd:?} printed no JSON"))
}

impl LocalStack {
    /// Starts the stack if it is not running (idempotent) and provisions the table and the
    /// state machine from `statemachine/blue-green.asl.json`.
    pub async fn start() -> Result<Self> {
        static STARTED: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
        let root = repo_root();
        let arn = STARTED
            .get_or_init(|| Self::bring_up(&root).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!(e))?;
        Self::connect(root, arn).await
    }

    fn bring_up(root: &Path) -> Result<String> {
        if !python(root).exists() {
            bail!(
                "the local stack is not installed ({} is missing): run `make test` or `make demo`, which install it",
                python(root).display()
            );
        }
        let mut up = Command::new("python3");
        up.arg(root.join("local-stack/stack.py"))
            .arg("up")
            .current_dir(root);
        run_json(&mut up).context("starting the local stack")?;
        let mut base = Command::new(python(root));
        base.arg(root.join("local-stack/provision.py"))
            .arg("base")
            .current_dir(root);
        let base = run_json(&mut base).context("provisioning the table and state machine")?;
        Ok(base["state_machine_arn"]
            .as_str()
            .ok_or_else(|| anyhow!("provision.py base printed no state_machine_arn"))?
            .to_string())
    }

    async fn connect(root: PathBuf, state_machine_arn: String) -> Result<Self> {
        let endpoint = endpoint();
        let http = shared::adapters::http::https_client(shared::adapters::http::Roots::Native)
            .map_err(|e| anyhow!(e))?;
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "local-stack",
            ))
            .load()
            .await;
        Ok(Self {
            sfn: aws_sdk_sfn::Client::new(&conf),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), TABLE.to_string()),
            router: AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(&conf)),
            endpoint,
            root,
            state_machine_arn,
        })
    }

    /// Creates (or resets) `service`/`environment` with blue active on `version`.
    pub fn environment(
        &self,
        service: &str,
        environment: &str,
        version: &str,
    ) -> Result<Environment> {
        self.environment_with(&[], service, environment, version)
    }

    /// As [`Self::environment`], with both colors as Deployments in `namespace` of an EKS
    /// cluster (the Kubernetes API stand-in, one API server for every local cluster, so
    /// environments that run at once need namespaces of their own), three pods each.
    pub fn eks_environment(
        &self,
        service: &str,
        environment: &str,
        namespace: &str,
        version: &str,
    ) -> Result<Environment> {
        self.environment_with(
            &["--platform", "eks", "--namespace", namespace],
            service,
            environment,
            version,
        )
    }

    fn environment_with(
        &self,
        options: &[&str],
        service: &str,
        environment: &str,
        version: &str,
    ) -> Result<Environment> {
        let mut cmd = Command::new(python(&self.root));
        cmd.arg(self.root.join("local-stack/provision.py"))
            .arg("environment")
            .args(options)
            .args([
                "--service",
                service,
                "--environment",
                environment,
                "--version",
                version,
            ])
            .env("BLUEGREEN_LOCAL_ENDPOINT", &self.endpoint)
            .current_dir(&self.root);
        let v = run_json(&mut cmd)?;
        Ok(serde_json::from_value(v)?)
    }

    /// Pushes `service:tag` to ECR and scans it (as CI's push and ECR's scan on push would);
    /// returns the pushed image with its digest.
    pub fn push_image(&self, service: &str, tag: &str) -> Result<PushedImage> {
        let mut cmd = Command::new(python(&self.root));
        cmd.arg(self.root.join("local-stack/provision.py"))
            .args(["image", "--service", service, "--tag", tag])
            .env("BLUEGREEN_LOCAL_ENDPOINT", &self.endpoint)
            .current_dir(&self.root);
        Ok(serde_json::from_value(run_json(&mut cmd)?)?)
    }

    /// POSTs a scenario control to the router (`/_local/...`).
    pub fn control(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/_local/{path}", self.endpoint);
        let mut resp = ureq::post(&url)
            .send_json(&body)
            .with_context(|| format!("POST {url}"))?;
        Ok(resp.body_mut().read_json()?)
    }

    /// GETs a scenario state from the router (`/_local/...`, e.g. `eks/state`).
    pub fn control_state(&self, path: &str) -> Result<Value> {
        let url = format!("{}/_local/{path}", self.endpoint);
        let mut resp = ureq::get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        Ok(resp.body_mut().read_json()?)
    }

    /// The router's counters (calls per operation, items read and returned, invocations,
    /// faults injected) since the last `control("stats/reset", ..)`.
    pub fn stats(&self) -> Result<Value> {
        let url = format!("{}/_local/stats", self.endpoint);
        let mut resp = ureq::get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        Ok(resp.body_mut().read_json()?)
    }

    /// The most invocations of `function` that were running at the same moment between the
    /// epoch seconds `from` and `to`, from the router's record of each invocation's start and
    /// end: evidence that concurrent calls really overlapped instead of queueing.
    pub fn max_overlap(&self, function: &str, from: f64, to: f64) -> Result<usize> {
        let stats = self.stats()?;
        let mut edges: Vec<(f64, i32)> = Vec::new();
        for i in stats["invocations"].as_array().into_iter().flatten() {
            let (Some(start), Some(end)) = (i["start"].as_f64(), i["end"].as_f64()) else {
                continue;
            };
            if i["function"] == function && start >= from && end <= to {
                edges.push((start, 1));
                edges.push((end, -1));
            }
        }
        // an end before a start at the same instant: touching is not overlapping
        edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut most) = (0i32, 0i32);
        for (_, d) in edges {
            now += d;
            most = most.max(now);
        }
        Ok(usize::try_from(most).unwrap_or(0))
    }

    /// Makes `tg` answer with this error rate and p99 once its weight reaches `from_weight`.
    pub fn traffic_profile(
        &self,
        tg: &str,
        error_rate: f64,
        p99_ms: f64,
        from_weight: u16,
    ) -> Result<()> {
        self.control(
            "traffic",
            json!({"target_group_arn": tg, "error_rate": error_rate, "p99_ms": p99_ms, "from_weight": from_weight}),
        )?;
        Ok(())
    }

    pub fn set_alarm(&self, name: &str, state: &str, reason: &str) -> Result<()> {
        self.control(
            "alarm",
            json!({"name": name, "state": state, "reason": reason}),
        )?;
        Ok(())
    }

    pub fn never_healthy(&self, cluster: &str, service: &str) -> Result<()> {
        self.control(
            "ecs/never-healthy",
            json!({"cluster": cluster, "service": service}),
        )?;
        Ok(())
    }

    /// Starts a deployment; the execution name is the deployment id.
    pub async fn start_deployment(&self, name: &str, input: &Value) -> Result<String> {
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "StartExecution: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            })?;
        Ok(out.execution_arn().to_string())
    }

    /// The execution's status, or its end once it is no longer running.
    pub async fn execution(&self, arn: &str) -> Result<ExecutionEnd> {
        let d = self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "DescribeExecution: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(e)
                )
            })?;
        Ok(ExecutionEnd {
            status: d.status().as_str().to_string(),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
            start_ms: d.start_date().to_millis().unwrap_or(0),
        })
    }

    /// Waits until the execution leaves RUNNING.
    pub async fn wait(&self, arn: &str, timeout: Duration) -> Result<ExecutionEnd> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = self.execution(arn).await?;
            if e.status != "RUNNING" {
                return Ok(e);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("execution {arn} still RUNNING after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn split(&self, env: &Environment) -> Result<TrafficSplit> {
        Ok(self.router.current_split(&env.forward_target()?).await?)
    }
}

/// A unique, valid execution name for a deployment.
pub fn deployment_name(service: &str, environment: &str, version: &str) -> String {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    format!(
        "{service}-{environment}-{}-{stamp}",
        version.replace('.', "-")
    )
}

/// What a function invocation returned: its payload, and its error type if the handler failed.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub payload: Value,
    pub error_type: Option<String>,
}

/// An HTTP API response as the handler produced it.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl LocalStack {
    /// Invokes a function through the Lambda Invoke API on the router, as EventBridge, a
    /// CloudWatch alarm action or API Gateway would.
    pub fn invoke(&self, function: &str, payload: &Value) -> Result<Invoked> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        );
        let mut resp = ureq::post(&url)
            .send_json(payload)
            .with_context(|| format!("invoking {function}"))?;
        let failed = resp.headers().contains_key("X-Amz-Function-Error");
        let payload: Value = resp.body_mut().read_json()?;
        let error_type = failed.then(|| {
            payload["errorType"]
                .as_str()
                .unwrap_or("Unhandled")
                .to_string()
        });
        Ok(Invoked {
            payload,
            error_type,
        })
    }

    /// Calls the HTTP API function with an API Gateway (payload v2) event from an IAM caller.
    pub fn api(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
        caller: &str,
    ) -> Result<ApiResponse> {
        let event = api_event(method, path_and_query, body, caller);
        let out = self.invoke("api", &event)?;
        if let Some(e) = out.error_type {
            bail!(
                "api {method} {path_and_query} failed as a function: {e}: {}",
                out.payload
            );
        }
        let status = out.payload["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| anyhow!("api response without statusCode: {}", out.payload))?;
        let text = out.payload["body"].as_str().unwrap_or("null");
        let body = serde_json::from_str(text).unwrap_or(Value::String(text.to_string()));
        Ok(ApiResponse { status, body })
    }

    /// Registers `env` (and its service) through the API, with `timings` in seconds.
    /// [`Self::api`], sent again (up to 5 times, 200 ms apart) while the answer says the
    /// request collided with another and should be retried (502/503 naming a retry), as a
    /// client of the API does: tests that register the same service at the same time really
    /// overlap, and the registry refuses the loser of each race.
    pub fn api_retrying_transient(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
        caller: &str,
    ) -> Result<ApiResponse> {
        let mut tries = 1;
        loop {
            let r = self.api(method, path_and_query, body, caller)?;
            let transient = matches!(r.status, 502 | 503)
                && r.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("retry"));
            if !transient || tries >= 5 {
                return Ok(r);
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn register(&self, env: &Environment, timings: Value, caller: &str) -> Result<()> {
        self.register_with(env, timings, json!({}), caller)
    }

    /// As [`Self::register`], with more fields of the environment's configuration (`extra`,
    /// e.g. `{"approval": {"required": true, "timeout_seconds": 60}}`).
    pub fn register_with(
        &self,
        env: &Environment,
        timings: Value,
        extra: Value,
        caller: &str,
    ) -> Result<()> {
        let service = self.api_retrying_transient(
            "PUT",
            &format!("/services/{}", env.service),
            Some(&json!({"repository": env.service})),
            caller,
        )?;
        if service.status != 200 {
            bail!(
                "registering service {}: {} {}",
                env.service,
                service.status,
                service.body
            );
        }
        // Whose evidence counts is an administrator's: CI's role records every kind.
        let path = format!("/services/{}/policy", env.service);
        let recorders = json!({"evidence_recorders": {
            "integration": [CI_TESTS_ROLE],
            "e2e": [CI_TESTS_ROLE],
            "performance": [CI_TESTS_ROLE],
            "compliance": [CI_TESTS_ROLE],
        }});
        let set = self.api_retrying_transient("PUT", &path, Some(&recorders), caller)?;
        if set.status != 200 {
            bail!("PUT {path}: {} {}", set.status, set.body);
        }
        let config = json!({
            "traffic": {
                "listener_arn": env.listener_arn,
                "blue_target_group_arn": env.blue_target_group_arn,
                "green_target_group_arn": env.green_target_group_arn,
            },
            "compute": env.compute,
            "alarms": env.alarm_names,
            "timings": timings,
        });
        // Protection and approval are an administrator's: they go through the policy route.
        let mut config = config;
        let mut policy = serde_json::Map::new();
        if let (Some(c), Some(x)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                if shared::registry::ENVIRONMENT_POLICY_FIELDS.contains(&k.as_str()) {
                    policy.insert(k.clone(), v.clone());
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        let put = self.api_retrying_transient(
            "PUT",
            &format!("/services/{}/environments/{}", env.service, env.environment),
            Some(&config),
            caller,
        )?;
        if put.status != 200 {
            bail!(
                "registering {}/{}: {} {}",
                env.service,
                env.environment,
                put.status,
                put.body
            );
        }
        if !policy.is_empty() {
            let path = format!(
                "/services/{}/environments/{}/policy",
                env.service, env.environment
            );
            let set =
                self.api_retrying_transient("PUT", &path, Some(&Value::Object(policy)), caller)?;
            if set.status != 200 {
                bail!("PUT {path}: {} {}", set.status, set.body);
            }
        }
        Ok(())
    }
}

/// An API Gateway HTTP API (payload v2) event with IAM authorization.
pub fn api_event(method: &str, path_and_query: &str, body: Option<&Value>, caller: &str) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let params: serde_json::Map<String, Value> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let now = time::OffsetDateTime::now_utc();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "localhost"},
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local-stack"},
            "requestId": format!("local-{}", now.unix_timestamp_nanos()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Jan/2025:10:00:00 +0000",
            "timeEpoch": now.unix_timestamp() * 1000,
            "authorizer": {"iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                "principalOrgId": null,
                "userArn": caller,
                "userId": "AIDACKCEVSQ6C2EXAMPLE"
            }}
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}

/// The EventBridge event ECR sends when an image is pushed.
pub fn ecr_push_event(repository: &str, tag: &str, digest: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("ecr-{digest}-{tag}").chars().take(36).collect::<String>(),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        // now: the push time is where lead time for changes starts
        "time": time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag
        }
    })
}

/// The EventBridge event CloudWatch sends when an alarm changes state.
pub fn alarm_event(name: &str, state: &str, reason: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("alarm-{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2025-01-03T10:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": reason, "timestamp": "2025-01-03T10:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "Threshold not crossed", "timestamp": "2025-01-03T09:00:00.000+0000"},
            "configuration": {"metrics": []}
        }
    })
}

impl LocalStack {
    /// Names of the state machine's executions that start with `prefix`.
    pub async fn executions_named(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sfn
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "ListExecutions: {}",
                        aws_sdk_sfn::error::DisplayErrorContext(e)
                    )
                })?;
            names.extend(
                out.executions()
                    .iter()
                    .map(|e| e.name().to_string())
                    .filter(|n| n.starts_with(prefix)),
            );
            match out.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(names),
            }
        }
    }
}
