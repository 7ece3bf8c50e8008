//! ECS adapter: puts an image on a color's service as a new task-definition revision and reports
//! whether that revision's rollout is complete.

use super::map_sdk_error;
use crate::error::AdapterError;
use crate::ports::{ComputePlatform, Readiness, Release, UnitReport, Workload, WorkloadDiagnosis};
use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentRolloutState, DesiredStatus, Service, Tag, TaskDefinition,
    TaskDefinitionField,
};

const SERVICE_NOT_FOUND: &[&str] = &["ClusterNotFoundException", "ServiceNotFoundException"];
/// How many of the service's latest events a not-ready report carries.
const EVENTS_IN_REASONS: usize = 3;

/// Compute on ECS: one service per color.
#[derive(Debug, Clone)]
pub struct EcsPlatform {
    client: Client,
}

impl EcsPlatform {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn service(&self, svc: &Workload) -> Result<Service, AdapterError> {
        let out = self
            .client
            .describe_services()
            .cluster(&svc.cluster)
            .services(&svc.name)
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeServices", e, SERVICE_NOT_FOUND))?;
        let found = out.services.unwrap_or_default().into_iter().find(|s| {
            s.service_name() == Some(svc.name.as_str())
                || s.service_arn() == Some(svc.name.as_str())
        });
        found.ok_or_else(|| {
            let why = out
                .failures
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f.reason().map(str::to_string))
                .collect::<Vec<_>>()
                .join(", ");
            AdapterError::NotFound(format!(
                "ECS service {} in cluster {} ({}); check compute.cluster and compute.service",
                svc.name,
                svc.cluster,
                if why.is_empty() {
                    "not returned"
                } else {
                    why.as_str()
                }
            ))
        })
    }

    /// The service's current task definition ARN.
    fn task_definition_of(svc: &Workload, service: &Service) -> Result<String, AdapterError> {
        service.task_definition().map(str::to_string).ok_or_else(|| {
            AdapterError::Invalid(format!(
                "ECS service {} in cluster {} has no task definition (external deployment controller?); deploy it with a task definition or use another compute mode",
                svc.name, svc.cluster
            ))
        })
    }

    /// A task definition (ARN, family:revision or family for its latest ACTIVE revision), with
    /// its tags.
    async fn task_definition(
        &self,
        name: &str,
    ) -> Result<(TaskDefinition, Vec<Tag>), AdapterError> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(name)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeTaskDefinition", e, &[]))?;
        let tags = out.tags.unwrap_or_default();
        let td = out.task_definition.ok_or_else(|| {
            AdapterError::NotFound(format!(
                "task definition {name} was not returned; check that it exists"
            ))
        })?;
        Ok((td, tags))
    }
}

fn arn_of(td: &TaskDefinition) -> &str {
    td.task_definition_arn()
        .unwrap_or("unknown task definition")
}

/// The index of the container to update: the named one, or the task's only container.
fn container_index(svc: &Workload, td: &TaskDefinition) -> Result<usize, AdapterError> {
    let containers = td.container_definitions();
    let names = || {
        containers
            .iter()
            .map(|c| c.name().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &svc.container {
        Some(name) => containers
            .iter()
            .position(|c| c.name() == Some(name.as_str()))
            .ok_or_else(|| {
                AdapterError::Invalid(format!(
                    "task definition {} has no container named {name} (it has: {}); set compute.container to one of them",
                    arn_of(td),
                    names()
                ))
            }),
        None => match containers.len() {
            1 => Ok(0),
            0 => Err(AdapterError::Invalid(format!(
                "task definition {} has no containers; register one that runs the service",
                arn_of(td)
            ))),
            _ => Err(AdapterError::Invalid(format!(
                "task definition {} has several containers ({}); set compute.container to the one that runs the new image",
                arn_of(td),
                names()
            ))),
        },
    }
}

fn image_of(svc: &Workload, td: &TaskDefinition) -> Result<Option<String>, AdapterError> {
    let i = container_index(svc, td)?;
    Ok(td
        .container_definitions()
        .get(i)
        .and_then(|c| c.image())
        .map(str::to_string))
}

fn runs_image(svc: &Workload, td: &TaskDefinition, image: &str) -> bool {
    matches!(image_of(svc, td), Ok(Some(current)) if current == image)
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

#[async_trait]
impl ComputePlatform for EcsPlatform {
    async fn current_image(&self, svc: &Workload) -> Result<Option<String>, AdapterError> {
        let service = self.service(svc).await?;
        let Some(current) = service.task_definition() else {
            return Ok(None);
        };
        let (td, _) = self.task_definition(current).await?;
        image_of(svc, &td)
    }

    async fn deploy_image(
        &self,
        svc: &Workload,
        release: &Release<'_>,
    ) -> Result<String, AdapterError> {
        let image = release.image;
        let service = self.service(svc).await?;
        let current_arn = Self::task_definition_of(svc, &service)?;
        let (current, tags) = self.task_definition(&current_arn).await?;
        if runs_image(svc, &current, image) {
            return Ok(current_arn);
        }
        let index = container_index(svc, &current)?;
        let family = current.family().map(str::to_string).ok_or_else(|| {
            AdapterError::Other(format!(
                "task definition {current_arn} has no family; describe it and check the service"
            ))
        })?;

        // A crash between register and update leaves the revision registered but unused: reuse
        // it rather than register another.
        let (latest, _) = self.task_definition(&family).await?;
        let revision = if runs_image(svc, &latest, image) {
            arn_of(&latest).to_string()
        } else {
            let mut containers: Vec<ContainerDefinition> = current.container_definitions().to_vec();
            if let Some(c) = containers.get_mut(index) {
                c.image = Some(image.to_string());
            }
            let out = self
                .client
                .register_task_definition()
                .family(&family)
                .set_task_role_arn(current.task_role_arn.clone())
                .set_execution_role_arn(current.execution_role_arn.clone())
                .set_network_mode(current.network_mode.clone())
                .set_container_definitions(Some(containers))
                .set_volumes(current.volumes.clone())
                .set_placement_constraints(current.placement_constraints.clone())
                .set_requires_compatibilities(current.requires_compatibilities.clone())
                .set_cpu(current.cpu.clone())
                .set_memory(current.memory.clone())
                .set_runtime_platform(current.runtime_platform.clone())
                .set_pid_mode(current.pid_mode.clone())
                .set_ipc_mode(current.ipc_mode.clone())
                .set_proxy_configuration(current.proxy_configuration.clone())
                .set_ephemeral_storage(current.ephemeral_storage.clone())
                .set_enable_fault_injection(current.enable_fault_injection)
                // Inference accelerators are not copied: Elastic Inference is discontinued and
                // the SDK deprecates the field, so no definition can register with them.
                .set_tags((!tags.is_empty()).then_some(tags))
                .send()
                .await
                .map_err(|e| map_sdk_error("RegisterTaskDefinition", e, &[]))?;
            out.task_definition()
                .and_then(|td| td.task_definition_arn())
                .map(str::to_string)
                .ok_or_else(|| {
                    AdapterError::Other(format!(
                        "RegisterTaskDefinition for family {family} returned no ARN; retry"
                    ))
                })?
        };

        self.client
            .update_service()
            .cluster(&svc.cluster)
            .service(&svc.name)
            .task_definition(&revision)
            .send()
            .await
            .map_err(|e| map_sdk_error("UpdateService", e, SERVICE_NOT_FOUND))?;
        Ok(revision)
    }

    async fn readiness(&self, svc: &Workload, revision: &str) -> Result<Readiness, AdapterError> {
        let service = self.service(svc).await?;
        let status = service.status().unwrap_or("UNKNOWN");
        if status != "ACTIVE" {
            return Err(AdapterError::Invalid(format!(
                "ECS service {} in cluster {} is {status}, not ACTIVE; recreate it or fix compute.service",
                svc.name, svc.cluster
            )));
        }
        let Some(primary) = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
        else {
            return Ok(Readiness {
                ready: false,
                running: count(service.running_count),
                desired: count(service.desired_count),
                reasons: vec!["the service has no PRIMARY deployment yet".to_string()],
                ..Readiness::default()
            });
        };
        let (running, desired) = (count(primary.running_count), count(primary.desired_count));
        let tasks = format!("{running}/{desired} tasks running");

        let mut reasons = Vec::new();
        let runs = primary.task_definition().unwrap_or("no task definition");
        if runs != revision {
            reasons.push(format!("primary deployment runs {runs}, not {revision}"));
        }
        match primary.rollout_state() {
            Some(DeploymentRolloutState::Completed) => {
                if running != desired {
                    reasons.push(tasks);
                }
            }
            Some(DeploymentRolloutState::Failed) => reasons.push(format!(
                "rollout FAILED: {}",
                primary.rollout_state_reason().unwrap_or("no reason given")
            )),
            Some(other) => reasons.push(format!("rollout {}: {tasks}", other.as_str())),
            // Without the deployment circuit breaker ECS reports no rollout state.
            None => {
                if running != desired {
                    reasons.push(tasks);
                }
            }
        }
        if desired == 0 {
            reasons.push("desired count is 0; scale the service up".to_string());
        }

        let ready = reasons.is_empty();
        if !ready {
            if primary.failed_tasks > 0 {
                reasons.push(format!("{} tasks failed to start", primary.failed_tasks));
            }
            // ECS lists events newest first.
            reasons.extend(
                service
                    .events()
                    .iter()
                    .filter_map(|e| e.message())
                    .take(EVENTS_IN_REASONS)
                    .map(|m| format!("event: {m}")),
            );
        }
        Ok(Readiness {
            ready,
            running,
            desired,
            reasons,
            ..Readiness::default()
        })
    }

    async fn diagnose(&self, svc: &Workload) -> Result<WorkloadDiagnosis, AdapterError> {
        let service = self.service(svc).await?;
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        let events = service
            .events()
            .iter()
            .take(DIAGNOSIS_EVENTS)
            .filter_map(|e| Some((e.created_at().and_then(to_time), e.message()?.to_string())))
            .collect();
        let stopped = self
            .client
            .list_tasks()
            .cluster(&svc.cluster)
            .service_name(&svc.name)
            .desired_status(DesiredStatus::Stopped)
            .max_results(DIAGNOSIS_TASKS)
            .send()
            .await
            .map_err(|e| map_sdk_error("ListTasks", e, SERVICE_NOT_FOUND))?;
        let arns = stopped.task_arns().to_vec();
        let mut stopped_tasks = Vec::new();
        if !arns.is_empty() {
            let tasks = self
                .client
                .describe_tasks()
                .cluster(&svc.cluster)
                .set_tasks(Some(arns))
                .send()
                .await
                .map_err(|e| map_sdk_error("DescribeTasks", e, SERVICE_NOT_FOUND))?;
            stopped_tasks = tasks
                .tasks()
                .iter()
                .map(|t| UnitReport {
                    id: t.task_arn().unwrap_or("unknown task").to_string(),
                    state: t.last_status().unwrap_or("STOPPED").to_string(),
                    reasons: vec![
                        t.stopped_reason()
                            .unwrap_or("no reason recorded")
                            .to_string(),
                    ],
                    at: t.stopped_at().and_then(to_time),
                    ..UnitReport::default()
                })
                .collect();
            stopped_tasks.sort_by_key(|t| std::cmp::Reverse(t.at));
        }
        Ok(WorkloadDiagnosis {
            running: count(service.running_count),
            desired: count(service.desired_count),
            units: stopped_tasks,
            events,
            commands: vec![],
        })
    }
}

/// How many of the latest service events and stopped tasks a diagnosis carries.
const DIAGNOSIS_EVENTS: usize = 5;
const DIAGNOSIS_TASKS: i32 = 5;

fn to_time(t: &aws_smithy_types::DateTime) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use aws_sdk_ecs::config::retry::RetryConfig;
    use aws_sdk_ecs::error::ErrorMetadata;
    use aws_sdk_ecs::operation::describe_services::{
        DescribeServicesError, DescribeServicesOutput,
    };
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::register_task_definition::{
        RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
    };
    use aws_sdk_ecs::operation::update_service::{UpdateServiceInput, UpdateServiceOutput};
    use aws_sdk_ecs::types::{Compatibility, Deployment, Failure, NetworkMode, ServiceEvent};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use std::sync::{Arc, Mutex};

    const CLUSTER: &str = "bg-dev";
    const SERVICE: &str = "checkout-dev-green";
    const OLD_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-green:7";
    const NEW_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-green:8";
    const OLD_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.2.0";
    const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0";
    const SIDECAR: &str = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0";

    fn platform(rules: &[&Rule]) -> EcsPlatform {
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        EcsPlatform::new(client)
    }

    fn svc(container: Option<&str>) -> Workload {
        Workload {
            platform: crate::domain::Platform::Ecs,
            cluster: CLUSTER.into(),
            namespace: None,
            name: SERVICE.into(),
            container: container.map(str::to_string),
        }
    }

    fn release(image: &str) -> Release<'_> {
        Release {
            image,
            version: "1.3.0",
            deployment_id: "checkout-dev-1-3-0-1735898400000",
        }
    }

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .essential(true)
            .build()
    }

    fn td(arn: &str, containers: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition::builder()
            .task_definition_arn(arn)
            .family("checkout-green")
            .set_container_definitions(Some(containers))
            .execution_role_arn("arn:aws:iam::123456789012:role/exec")
            .task_role_arn("arn:aws:iam::123456789012:role/task")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .build()
    }

    fn service_running(task_definition: &str) -> Rule {
        let td = task_definition.to_string();
        mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some(CLUSTER) && r.services() == [SERVICE])
            .then_output(move || {
                DescribeServicesOutput::builder()
                    .services(
                        Service::builder()
                            .service_name(SERVICE)
                            .status("ACTIVE")
                            .task_definition(&td)
                            .build(),
                    )
                    .build()
            })
    }

    fn describe_td(name: &'static str, def: TaskDefinition) -> Rule {
        mock!(Client::describe_task_definition)
            .match_requests(move |r| r.task_definition() == Some(name))
            .then_output(move || {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(def.clone())
                    .build()
            })
    }

    /// Requests a rule saw, in order.
    type Seen<T> = Arc<Mutex<Vec<T>>>;

    /// A place for a rule to record every request it sees, and a handle to read it back.
    fn recorder<T>() -> (Seen<T>, Seen<T>) {
        let seen: Seen<T> = Arc::default();
        (seen.clone(), seen)
    }

    #[tokio::test]
    async fn deploy_image_is_a_no_op_when_the_service_already_runs_the_image() {
        let register = mock!(Client::register_task_definition)
            .then_output(|| RegisterTaskDefinitionOutput::builder().build());
        let update =
            mock!(Client::update_service).then_output(|| UpdateServiceOutput::builder().build());
        let p = platform(&[
            &service_running(NEW_TD),
            &describe_td(NEW_TD, td(NEW_TD, vec![container("app", NEW_IMAGE)])),
            &register,
            &update,
        ]);
        assert_eq!(
            p.deploy_image(&svc(None), &release(NEW_IMAGE)).await,
            Ok(NEW_TD.into())
        );
        assert_eq!((register.num_calls(), update.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn deploy_image_registers_a_copy_with_the_new_image_and_updates_the_service() {
        // GIVEN a service on revision 7 with an app container and a sidecar
        let current = td(
            OLD_TD,
            vec![container("app", OLD_IMAGE), container("otel", SIDECAR)],
        );
        let (registered, reg_sink) = recorder::<RegisterTaskDefinitionInput>();
        let register = mock!(Client::register_task_definition).then_compute_output(move |req| {
            reg_sink.lock().unwrap().push(req.clone());
            RegisterTaskDefinitionOutput::builder()
                .task_definition(td(NEW_TD, req.container_definitions().to_vec()))
                .build()
        });
        let (updated, upd_sink) = recorder::<UpdateServiceInput>();
        let update = mock!(Client::update_service).then_compute_output(move |req| {
            upd_sink.lock().unwrap().push(req.clone());
            UpdateServiceOutput::builder().build()
        });
        let p = platform(&[
            &service_running(OLD_TD),
            &describe_td(OLD_TD, current.clone()),
            &describe_td("checkout-green", current.clone()),
            &register,
            &update,
        ]);

        // WHEN
        let revision = p
            .deploy_image(&svc(Some("app")), &release(NEW_IMAGE))
            .await
            .unwrap();

        // THEN a copy of revision 7 with only the app image changed is registered
        assert_eq!(revision, NEW_TD);
        let registered = registered.lock().unwrap();
        let req = &registered[0];
        assert_eq!(req.family(), Some("checkout-green"));
        assert_eq!(req.execution_role_arn(), current.execution_role_arn());
        assert_eq!(req.task_role_arn(), current.task_role_arn());
        assert_eq!(req.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(req.requires_compatibilities(), [Compatibility::Fargate]);
        assert_eq!((req.cpu(), req.memory()), (Some("256"), Some("512")));
        let images: Vec<(Option<&str>, Option<&str>)> = req
            .container_definitions()
            .iter()
            .map(|c| (c.name(), c.image()))
            .collect();
        assert_eq!(
            images,
            vec![
                (Some("app"), Some(NEW_IMAGE)),
                (Some("otel"), Some(SIDECAR))
            ]
        );
        // AND the service is pointed at the new revision
        let updated = updated.lock().unwrap();
        assert_eq!(updated[0].cluster(), Some(CLUSTER));
        assert_eq!(updated[0].service(), Some(SERVICE));
        assert_eq!(updated[0].task_definition(), Some(NEW_TD));
    }

    #[tokio::test]
    async fn deploy_image_reuses_a_revision_registered_before_a_crash() {
        // GIVEN the family's latest revision already has the image, the service does not
        let register = mock!(Client::register_task_definition)
            .then_output(|| RegisterTaskDefinitionOutput::builder().build());
        let (updated, sink) = recorder::<UpdateServiceInput>();
        let update = mock!(Client::update_service).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            UpdateServiceOutput::builder().build()
        });
        let p = platform(&[
            &service_running(OLD_TD),
            &describe_td(OLD_TD, td(OLD_TD, vec![container("app", OLD_IMAGE)])),
            &describe_td(
                "checkout-green",
                td(NEW_TD, vec![container("app", NEW_IMAGE)]),
            ),
            &update,
            &register,
        ]);

        // WHEN / THEN
        assert_eq!(
            p.deploy_image(&svc(None), &release(NEW_IMAGE)).await,
            Ok(NEW_TD.into())
        );
        assert_eq!(register.num_calls(), 0);
        assert_eq!(updated.lock().unwrap()[0].task_definition(), Some(NEW_TD));
    }

    #[tokio::test]
    async fn several_containers_without_a_name_ask_for_compute_container() {
        let p = platform(&[
            &service_running(OLD_TD),
            &describe_td(
                OLD_TD,
                td(
                    OLD_TD,
                    vec![container("app", OLD_IMAGE), container("otel", SIDECAR)],
                ),
            ),
        ]);
        let err = p.current_image(&svc(None)).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("set compute.container") && m.contains("app, otel")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn current_image_is_the_named_containers_image() {
        let p = platform(&[
            &service_running(OLD_TD),
            &describe_td(
                OLD_TD,
                td(
                    OLD_TD,
                    vec![container("otel", SIDECAR), container("app", OLD_IMAGE)],
                ),
            ),
        ]);
        assert_eq!(
            p.current_image(&svc(Some("app"))).await,
            Ok(Some(OLD_IMAGE.into()))
        );
    }

    fn service_with(deployment: Deployment, events: &[&str]) -> Rule {
        let events: Vec<ServiceEvent> = events
            .iter()
            .map(|m| ServiceEvent::builder().message(*m).build())
            .collect();
        mock!(Client::describe_services).then_output(move || {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name(SERVICE)
                        .status("ACTIVE")
                        .task_definition(NEW_TD)
                        .deployments(deployment.clone())
                        .set_events(Some(events.clone()))
                        .build(),
                )
                .build()
        })
    }

    fn primary(
        td: &str,
        state: Option<DeploymentRolloutState>,
        running: i32,
        desired: i32,
    ) -> Deployment {
        Deployment::builder()
            .status("PRIMARY")
            .task_definition(td)
            .set_rollout_state(state)
            .running_count(running)
            .desired_count(desired)
            .build()
    }

    #[tokio::test]
    async fn a_completed_rollout_of_the_revision_is_ready() {
        let p = platform(&[&service_with(
            primary(NEW_TD, Some(DeploymentRolloutState::Completed), 2, 2),
            &["(service checkout-dev-green) has reached a steady state."],
        )]);
        assert_eq!(
            p.readiness(&svc(None), NEW_TD).await,
            Ok(Readiness {
                ready: true,
                running: 2,
                desired: 2,
                ..Readiness::default()
            })
        );
    }

    #[tokio::test]
    async fn a_rollout_in_progress_is_not_ready_and_says_why_with_recent_events() {
        let p = platform(&[&service_with(
            primary(NEW_TD, Some(DeploymentRolloutState::InProgress), 0, 2),
            &["e4 newest", "e3", "e2", "e1 oldest"],
        )]);
        let r = p.readiness(&svc(None), NEW_TD).await.unwrap();
        assert!(!r.ready);
        assert_eq!((r.running, r.desired), (0, 2));
        assert_eq!(
            r.reasons,
            vec![
                "rollout IN_PROGRESS: 0/2 tasks running",
                "event: e4 newest",
                "event: e3",
                "event: e2",
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_rollout_reports_its_reason_and_failed_tasks() {
        let mut d = primary(NEW_TD, Some(DeploymentRolloutState::Failed), 0, 2);
        d.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        d.failed_tasks = 3;
        let p = platform(&[&service_with(d, &[])]);
        let r = p.readiness(&svc(None), NEW_TD).await.unwrap();
        assert_eq!(
            r.reasons,
            vec![
                "rollout FAILED: ECS deployment circuit breaker: tasks failed to start.",
                "3 tasks failed to start",
            ]
        );
    }

    #[tokio::test]
    async fn a_primary_deployment_on_another_revision_is_not_ready() {
        let p = platform(&[&service_with(
            primary(OLD_TD, Some(DeploymentRolloutState::Completed), 2, 2),
            &[],
        )]);
        let r = p.readiness(&svc(None), NEW_TD).await.unwrap();
        assert!(!r.ready);
        assert_eq!(
            r.reasons,
            vec![format!("primary deployment runs {OLD_TD}, not {NEW_TD}")]
        );
    }

    #[tokio::test]
    async fn without_rollout_state_running_must_equal_desired_and_be_positive() {
        let p = platform(&[
            &service_with(primary(NEW_TD, None, 1, 2), &[]),
            &service_with(primary(NEW_TD, None, 2, 2), &[]),
            &service_with(primary(NEW_TD, None, 0, 0), &[]),
        ]);
        let r = p.readiness(&svc(None), NEW_TD).await.unwrap();
        assert_eq!(
            (r.ready, r.reasons),
            (false, vec!["1/2 tasks running".to_string()])
        );
        assert!(p.readiness(&svc(None), NEW_TD).await.unwrap().ready);
        let r = p.readiness(&svc(None), NEW_TD).await.unwrap();
        assert_eq!(
            (r.ready, r.reasons),
            (
                false,
                vec!["desired count is 0; scale the service up".to_string()]
            )
        );
    }

    #[tokio::test]
    async fn a_missing_service_is_not_found_and_an_inactive_one_invalid() {
        let missing = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .failures(Failure::builder().arn(SERVICE).reason("MISSING").build())
                .build()
        });
        let draining = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name(SERVICE)
                        .status("DRAINING")
                        .build(),
                )
                .build()
        });
        let p = platform(&[&missing, &draining]);
        let err = p.readiness(&svc(None), NEW_TD).await;
        assert!(
            matches!(&err, Err(AdapterError::NotFound(m)) if m.contains("MISSING")),
            "{err:?}"
        );
        let err = p.readiness(&svc(None), NEW_TD).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("DRAINING")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn ecs_throttling_is_throttled() {
        let rule = mock!(Client::describe_services).then_error(|| {
            DescribeServicesError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = platform(&[&rule]).current_image(&svc(None)).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn diagnose_reads_counts_events_and_why_recent_tasks_stopped() {
        use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
        use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
        use aws_sdk_ecs::types::{Service, Task};
        use aws_smithy_types::DateTime;
        let services = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name(SERVICE)
                        .running_count(1)
                        .desired_count(3)
                        .events(
                            ServiceEvent::builder()
                                .created_at(DateTime::from_secs(1_735_898_460))
                                .message("(service checkout-dev-green) (task 0f1e) failed ELB health checks")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let list = mock!(Client::list_tasks)
            .match_requests(|r| {
                r.cluster() == Some(CLUSTER)
                    && r.service_name() == Some(SERVICE)
                    && r.desired_status() == Some(&DesiredStatus::Stopped)
            })
            .then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("arn:task/0f1e")
                    .task_arns("arn:task/0a0b")
                    .build()
            });
        let describe = mock!(Client::describe_tasks)
            .match_requests(|r| r.tasks().len() == 2)
            .then_output(|| {
                DescribeTasksOutput::builder()
                    .tasks(
                        Task::builder()
                            .task_arn("arn:task/0a0b")
                            .stopped_reason("Scaling activity initiated by deployment")
                            .stopped_at(DateTime::from_secs(1_735_898_000))
                            .build(),
                    )
                    .tasks(
                        Task::builder()
                            .task_arn("arn:task/0f1e")
                            .stopped_reason("Essential container in task exited")
                            .stopped_at(DateTime::from_secs(1_735_898_400))
                            .build(),
                    )
                    .build()
            });
        let d = platform(&[&services, &list, &describe])
            .diagnose(&svc(None))
            .await
            .unwrap();
        assert_eq!((d.running, d.desired), (1, 3));
        assert_eq!(
            d.units
                .iter()
                .map(|t| t.reasons.join("; "))
                .collect::<Vec<_>>(),
            [
                "Essential container in task exited",
                "Scaling activity initiated by deployment"
            ],
            "newest first"
        );
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].1.contains("failed ELB health checks"));
    }
}
