//! Step Functions adapter: starts the deployment state machine under the deployment id (so a
//! duplicate start finds the first execution instead of starting another) and stops executions.

use super::map_sdk_error;
use crate::contracts::DeploymentRequest;
use crate::error::AdapterError;
use crate::ports::{Executions, StartedExecution};
use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// StopExecution's limits on `error` and `cause`, in characters.
const MAX_ERROR_CHARS: usize = 256;
const MAX_CAUSE_CHARS: usize = 32_768;
const STATE_MACHINE_NOT_FOUND: &[&str] = &["StateMachineDoesNotExist", "StateMachineDeleting"];
/// Throttling that map_sdk_error does not know as such: KMS throttling on the caller's behalf,
/// and the running-executions limit, which clears as executions finish.
const RETRY_LATER: &[&str] = &["KmsThrottlingException", "ExecutionLimitExceeded"];

/// The deployment state machine's executions.
#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The ARN an execution named `name` of this state machine has:
    /// `arn:<partition>:states:<region>:<account>:execution:<state machine name>:<name>`.
    /// A version or alias qualifier is dropped: its executions share the state machine's names.
    fn execution_arn(&self, name: &str) -> Result<String, AdapterError> {
        let parts: Vec<&str> = self.state_machine_arn.split(':').collect();
        match parts.as_slice() {
            [
                "arn",
                partition,
                "states",
                region,
                account,
                "stateMachine",
                machine,
                rest @ ..,
            ] if rest.len() <= 1 && !machine.is_empty() => Ok(format!(
                "arn:{partition}:states:{region}:{account}:execution:{machine}:{name}"
            )),
            _ => Err(AdapterError::Invalid(format!(
                "state machine ARN {:?} is not arn:<partition>:states:<region>:<account>:stateMachine:<name>; fix the configured state machine ARN",
                self.state_machine_arn
            ))),
        }
    }

    /// The execution of that ARN, if one exists (in any status): whether it still runs and
    /// which service and environment its input deploys.
    async fn existing(
        &self,
        execution_arn: &str,
    ) -> Result<Option<StartedExecution>, AdapterError> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => {
                let input: Option<serde_json::Value> =
                    out.input().and_then(|i| serde_json::from_str(i).ok());
                let field = |k: &str| {
                    input
                        .as_ref()
                        .and_then(|i| i[k].as_str())
                        .map(str::to_string)
                };
                Ok(Some(StartedExecution {
                    execution_arn: execution_arn.to_string(),
                    already_existed: true,
                    running: *out.status() == aws_sdk_sfn::types::ExecutionStatus::Running,
                    target: field("service").zip(field("environment")),
                }))
            }
            Err(e) => match e.as_service_error() {
                Some(DescribeExecutionError::ExecutionDoesNotExist(_)) => Ok(None),
                Some(se) if se.code().is_some_and(|c| RETRY_LATER.contains(&c)) => Err(
                    AdapterError::Transient(format!("DescribeExecution: {}", describe(se))),
                ),
                _ => Err(map_sdk_error("DescribeExecution", e, &[])),
            },
        }
    }
}

fn describe(e: &impl ProvideErrorMetadata) -> String {
    format!(
        "{}: {}",
        e.code().unwrap_or("Unknown"),
        e.message().unwrap_or_default()
    )
}

/// The first `max` characters of `s` (the API counts characters, and a byte cut could split one).
fn truncated(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[async_trait]
impl Executions for StepFunctions {
    async fn start(
        &self,
        name: &str,
        input: &DeploymentRequest,
    ) -> Result<StartedExecution, AdapterError> {
        let execution_arn = self.execution_arn(name)?;
        // StartExecution alone cannot tell a duplicate from a new start: with the same name and
        // input it returns the running execution as if it had started it.
        if let Some(existing) = self.existing(&execution_arn).await? {
            tracing::info!(%execution_arn, running = existing.running, "an execution of this name exists; not starting another");
            return Ok(existing);
        }
        let json = serde_json::to_string(input).map_err(|e| {
            AdapterError::Invalid(format!(
                "deployment request {name} cannot be written as JSON: {e}"
            ))
        })?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(json)
            .send()
            .await;
        let err = match result {
            Ok(out) => {
                return Ok(StartedExecution {
                    execution_arn: out.execution_arn().to_string(),
                    already_existed: false,
                    running: true,
                    target: Some((input.service.to_string(), input.environment.to_string())),
                });
            }
            Err(e) => e,
        };
        match err.as_service_error() {
            Some(StartExecutionError::ExecutionAlreadyExists(_)) => {
                // Another start of the same name won the race since we looked.
                tracing::info!(%execution_arn, "the execution was started concurrently");
                self.existing(&execution_arn).await?.ok_or_else(|| {
                    AdapterError::Transient(format!(
                        "StartExecution said {execution_arn} exists, DescribeExecution does not; retry"
                    ))
                })
            }
            Some(
                se @ (StartExecutionError::InvalidName(_)
                | StartExecutionError::InvalidExecutionInput(_)),
            ) => Err(AdapterError::Invalid(format!(
                "StartExecution refused execution {name}: {}; fix the deployment id (1-80 of [A-Za-z0-9_-]) or the request",
                describe(se)
            ))),
            Some(se) if se.code().is_some_and(|c| RETRY_LATER.contains(&c)) => Err(
                AdapterError::Transient(format!("StartExecution: {}", describe(se))),
            ),
            _ => Err(map_sdk_error(
                "StartExecution",
                err,
                STATE_MACHINE_NOT_FOUND,
            )),
        }
    }

    async fn stop(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .stop_execution()
            .execution_arn(execution_arn)
            .error(truncated(error, MAX_ERROR_CHARS))
            .cause(truncated(cause, MAX_CAUSE_CHARS))
            .send()
            .await;
        let Err(err) = result else {
            // Step Functions also answers success for an execution that had already ended.
            return Ok(());
        };
        match err.as_service_error() {
            Some(StopExecutionError::ExecutionDoesNotExist(_)) => {
                tracing::debug!(%execution_arn, "no such execution; nothing to stop");
                Ok(())
            }
            Some(se) if se.code().is_some_and(|c| RETRY_LATER.contains(&c)) => Err(
                AdapterError::Transient(format!("StopExecution: {}", describe(se))),
            ),
            _ => Err(map_sdk_error("StopExecution", err, &[])),
        }
    }

    async fn resume(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .send_task_success()
            .task_token(task_token)
            .output(output.to_string())
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        Err(task_error("SendTaskSuccess", err))
    }

    async fn fail_task(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .send_task_failure()
            .task_token(task_token)
            .error(truncated(error, MAX_ERROR_CHARS))
            .cause(truncated(cause, MAX_CAUSE_CHARS))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        Err(task_error("SendTaskFailure", err))
    }
}

/// A task token that is no longer open is a refused condition (the execution moved on); the
/// rest maps as usual.
fn task_error<E, R>(
    op: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error().and_then(|e| e.code()) {
        Some(code @ ("TaskDoesNotExist" | "TaskTimedOut")) => AdapterError::ConditionFailed(
            format!("{op}: {code}: the execution is no longer waiting on this task"),
        ),
        Some(code @ "InvalidToken") => {
            AdapterError::Invalid(format!("{op}: {code}: the stored task token is invalid"))
        }
        _ => map_sdk_error(op, err, &[]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use aws_sdk_sfn::config::retry::RetryConfig;
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::start_execution::{StartExecutionInput, StartExecutionOutput};
    use aws_sdk_sfn::operation::stop_execution::{StopExecutionInput, StopExecutionOutput};
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_sdk_sfn::types::error::{
        ExecutionAlreadyExists, ExecutionDoesNotExist, InvalidName, StateMachineDoesNotExist,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;
    use std::sync::{Arc, Mutex};

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:blue-green";
    const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:blue-green:d-1";

    fn executions(rules: &[&Rule]) -> StepFunctions {
        let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        StepFunctions::new(client, MACHINE)
    }

    fn request() -> DeploymentRequest {
        serde_json::from_value(crate::fakes::sample::request()).unwrap()
    }

    /// The metadata the SDK attaches to a modeled error it parsed from a response.
    fn coded(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("from the service")
            .build()
    }

    fn no_such_execution() -> Rule {
        mock!(Client::describe_execution)
            .match_requests(|r| r.execution_arn() == Some(EXECUTION))
            .then_error(|| {
                DescribeExecutionError::ExecutionDoesNotExist(
                    ExecutionDoesNotExist::builder()
                        .message("Execution Does Not Exist: 'd-1'")
                        .build(),
                )
            })
    }

    fn started(seen: Arc<Mutex<Vec<StartExecutionInput>>>) -> Rule {
        mock!(Client::start_execution).then_compute_output(move |req| {
            seen.lock().unwrap().push(req.clone());
            StartExecutionOutput::builder()
                .execution_arn(EXECUTION)
                .start_date(DateTime::from_secs(1_735_898_400))
                .build()
                .unwrap()
        })
    }

    #[tokio::test]
    async fn start_sends_the_machine_the_deployment_id_and_the_request() {
        // GIVEN no execution of that name exists
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (describe, start) = (no_such_execution(), started(seen.clone()));
        let sfn = executions(&[&describe, &start]);

        // WHEN
        let got = sfn.start("d-1", &request()).await;

        // THEN
        let r = request();
        assert_eq!(
            got,
            Ok(StartedExecution {
                execution_arn: EXECUTION.into(),
                already_existed: false,
                running: true,
                target: Some((r.service.to_string(), r.environment.to_string())),
            })
        );
        assert_eq!(describe.num_calls(), 1);
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(req.state_machine_arn(), Some(MACHINE));
        assert_eq!(req.name(), Some("d-1"));
        let sent: DeploymentRequest = serde_json::from_str(req.input().unwrap()).unwrap();
        assert_eq!(sent, request());
    }

    /// An existing execution of `input` in `status`.
    fn existing(status: ExecutionStatus, input: Option<serde_json::Value>) -> Rule {
        mock!(Client::describe_execution)
            .match_requests(|r| r.execution_arn() == Some(EXECUTION))
            .then_output(move || {
                DescribeExecutionOutput::builder()
                    .execution_arn(EXECUTION)
                    .state_machine_arn(MACHINE)
                    .status(status.clone())
                    .set_input(input.as_ref().map(|i| i.to_string()))
                    .start_date(DateTime::from_secs(1_735_898_400))
                    .build()
                    .unwrap()
            })
    }

    #[tokio::test]
    async fn a_start_of_an_existing_name_returns_it_without_starting() {
        // GIVEN an execution of that name exists (running or finished); StartExecution is not
        // mocked, so calling it would fail the test
        let other = serde_json::json!({"service": "search", "environment": "prd"});
        for (status, input, running, target) in [
            (
                ExecutionStatus::Succeeded,
                Some(other.clone()),
                false,
                Some(("search", "prd")),
            ),
            (
                ExecutionStatus::Running,
                Some(other),
                true,
                Some(("search", "prd")),
            ),
            (ExecutionStatus::Aborted, None, false, None),
        ] {
            let describe = existing(status.clone(), input);
            let got = executions(&[&describe]).start("d-1", &request()).await;
            assert_eq!(
                got,
                Ok(StartedExecution {
                    execution_arn: EXECUTION.into(),
                    already_existed: true,
                    running,
                    target: target.map(|(s, e)| (s.to_string(), e.to_string())),
                }),
                "{status:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_start_that_loses_the_race_to_another_of_the_same_name_already_existed() {
        let start = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(
                ExecutionAlreadyExists::builder()
                    .message("Execution Already Exists: 'arn:...:d-1'")
                    .build(),
            )
        });
        let r = request();
        let theirs = serde_json::json!({"service": r.service, "environment": r.environment});
        let now_there = existing(ExecutionStatus::Running, Some(theirs));
        let got = executions(&[&no_such_execution(), &start, &now_there])
            .start("d-1", &r)
            .await;
        assert_eq!(
            got,
            Ok(StartedExecution {
                execution_arn: EXECUTION.into(),
                already_existed: true,
                running: true,
                target: Some((r.service.to_string(), r.environment.to_string())),
            })
        );
    }

    #[tokio::test]
    async fn start_errors_map_to_throttled_not_found_and_invalid() {
        let throttled = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = executions(&[&no_such_execution(), &throttled])
            .start("d-1", &request())
            .await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");

        let describe_throttled = mock!(Client::describe_execution).then_error(|| {
            DescribeExecutionError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = executions(&[&describe_throttled])
            .start("d-1", &request())
            .await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");

        let missing = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::StateMachineDoesNotExist(
                StateMachineDoesNotExist::builder()
                    .message("State Machine Does Not Exist")
                    .meta(coded("StateMachineDoesNotExist"))
                    .build(),
            )
        });
        let err = executions(&[&no_such_execution(), &missing])
            .start("d-1", &request())
            .await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");

        let bad_name = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::InvalidName(
                InvalidName::builder()
                    .message("Invalid Name")
                    .meta(coded("InvalidName"))
                    .build(),
            )
        });
        let err = executions(&[&no_such_execution(), &bad_name])
            .start("d-1", &request())
            .await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("InvalidName")),
            "{err:?}"
        );
    }

    #[test]
    fn execution_arns_follow_the_state_machine_arn() {
        let sfn = |arn: &str| {
            let client = mock_client!(aws_sdk_sfn, Vec::<&Rule>::new());
            StepFunctions::new(client, arn)
        };
        assert_eq!(sfn(MACHINE).execution_arn("d-1"), Ok(EXECUTION.into()));
        assert_eq!(
            sfn("arn:aws-cn:states:cn-north-1:123456789012:stateMachine:bg:prod")
                .execution_arn("d-1"),
            Ok("arn:aws-cn:states:cn-north-1:123456789012:execution:bg:d-1".into())
        );
        for bad in [
            "blue-green",
            "arn:aws:lambda:us-east-1:123456789012:function:bg",
            "arn:aws:states:us-east-1:123456789012:execution:bg:d-0",
            "arn:aws:states:us-east-1:123456789012:stateMachine:",
        ] {
            assert!(
                matches!(sfn(bad).execution_arn("d-1"), Err(AdapterError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_state_machine_arn_starts_nothing() {
        let client = mock_client!(aws_sdk_sfn, Vec::<&Rule>::new());
        let err = StepFunctions::new(client, "blue-green")
            .start("d-1", &request())
            .await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("state machine ARN")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn stop_sends_the_error_and_cause_truncated_to_the_api_limits() {
        // GIVEN
        let seen = Arc::new(Mutex::new(Vec::<StopExecutionInput>::new()));
        let stop = || {
            let sink = seen.clone();
            mock!(Client::stop_execution).then_compute_output(move |req| {
                sink.lock().unwrap().push(req.clone());
                StopExecutionOutput::builder()
                    .stop_date(DateTime::from_secs(1_735_898_400))
                    .build()
                    .unwrap()
            })
        };
        let sfn = executions(&[&stop(), &stop()]);

        // WHEN
        sfn.stop(
            EXECUTION,
            "BlueGreen.ManualRollback",
            "rolled back by alice",
        )
        .await
        .unwrap();
        let long_error = "E".repeat(300);
        let long_cause = "é".repeat(40_000);
        sfn.stop(EXECUTION, &long_error, &long_cause).await.unwrap();

        // THEN
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].execution_arn(), Some(EXECUTION));
        assert_eq!(seen[0].error(), Some("BlueGreen.ManualRollback"));
        assert_eq!(seen[0].cause(), Some("rolled back by alice"));
        assert_eq!(seen[1].error().map(|e| e.chars().count()), Some(256));
        assert_eq!(seen[1].cause().map(|c| c.chars().count()), Some(32_768));
        assert!(seen[1].cause().unwrap().chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn stopping_an_execution_that_does_not_exist_is_a_no_op() {
        let stop = mock!(Client::stop_execution).then_error(|| {
            StopExecutionError::ExecutionDoesNotExist(
                ExecutionDoesNotExist::builder()
                    .message("Execution Does Not Exist")
                    .build(),
            )
        });
        assert_eq!(executions(&[&stop]).stop(EXECUTION, "E", "c").await, Ok(()));
    }

    #[tokio::test]
    async fn a_throttled_stop_is_throttled() {
        let stop = mock!(Client::stop_execution).then_error(|| {
            StopExecutionError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = executions(&[&stop]).stop(EXECUTION, "E", "c").await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn task_answers_carry_the_token_and_a_closed_task_is_a_refused_condition() {
        use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
        use aws_sdk_sfn::operation::send_task_success::{
            SendTaskSuccessError, SendTaskSuccessOutput,
        };
        use aws_sdk_sfn::types::error::TaskTimedOut;
        let ok = mock!(Client::send_task_success)
            .match_requests(|r| {
                r.task_token() == Some("tok-1") && r.output() == Some(r#"{"approved_by":"carol"}"#)
            })
            .then_output(|| SendTaskSuccessOutput::builder().build());
        executions(&[&ok])
            .resume("tok-1", &serde_json::json!({"approved_by": "carol"}))
            .await
            .unwrap();
        assert_eq!(ok.num_calls(), 1);

        let failed = mock!(Client::send_task_failure)
            .match_requests(|r| {
                r.task_token() == Some("tok-1")
                    && r.error() == Some("BlueGreen.ApprovalRejected")
                    && r.cause() == Some("rejected by carol: no")
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        executions(&[&failed])
            .fail_task(
                "tok-1",
                "BlueGreen.ApprovalRejected",
                "rejected by carol: no",
            )
            .await
            .unwrap();
        assert_eq!(failed.num_calls(), 1);

        let closed = mock!(Client::send_task_success).then_error(|| {
            SendTaskSuccessError::TaskTimedOut(
                TaskTimedOut::builder()
                    .message("Task Timed Out")
                    .meta(ErrorMetadata::builder().code("TaskTimedOut").build())
                    .build(),
            )
        });
        let err = executions(&[&closed])
            .resume("tok-1", &serde_json::json!({}))
            .await;
        assert!(
            matches!(err, Err(AdapterError::ConditionFailed(_))),
            "{err:?}"
        );
    }
}
