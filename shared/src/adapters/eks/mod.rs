//! EKS adapter: each color is a Kubernetes Deployment whose pods the AWS Load Balancer
//! Controller's `TargetGroupBinding` registers (IP targets) in the color's target group.
//! Putting an image on a color is a strategic merge patch of the Deployment's container image;
//! readiness is the Deployment's rollout plus the pods' container states; troubleshooting shows
//! the pods, their events and the `kubectl` commands to look further.
//!
//! The cluster's endpoint and CA come from `eks:DescribeCluster`; every Kubernetes request
//! carries a token signed like `aws eks get-token` ([`token`]) with the environment's
//! credentials (its role, when it has one).

pub mod kube;
pub mod token;

use crate::error::AdapterError;
use crate::ports::{ComputePlatform, Readiness, Release, UnitReport, Workload, WorkloadDiagnosis};
use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine;
use k8s_openapi::List;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{Call, ClusterEndpoint, Kube};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The annotations a release leaves on the Deployment it patched.
pub const DEPLOYMENT_ID_ANNOTATION: &str = "bluegreen/deployment-id";
pub const VERSION_ANNOTATION: &str = "bluegreen/version";

/// Container states that mean the rollout cannot succeed without a new release.
const HOPELESS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];
/// Events a diagnosis carries.
const DIAGNOSIS_EVENTS: usize = 10;

pub struct EksPlatform {
    eks: aws_sdk_eks::Client,
    credentials: SharedCredentialsProvider,
    region: String,
    clusters: Mutex<HashMap<String, Arc<Kube>>>,
}

impl EksPlatform {
    /// Compute on EKS with the credentials and region of `config` (the environment's).
    pub fn new(config: &aws_config::SdkConfig) -> Result<Self, AdapterError> {
        let credentials = config.credentials_provider().ok_or_else(|| {
            AdapterError::Other("no AWS credentials to sign EKS tokens with".into())
        })?;
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| AdapterError::Other("no AWS region for EKS".into()))?;
        Ok(Self {
            eks: aws_sdk_eks::Client::new(config),
            credentials,
            region,
            clusters: Mutex::new(HashMap::new()),
        })
    }

    /// The Kubernetes client of `cluster`, from DescribeCluster (once per instance).
    async fn kube(&self, cluster: &str) -> Result<Arc<Kube>, AdapterError> {
        if let Some(k) = self
            .clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cluster)
        {
            return Ok(k.clone());
        }
        let out = self
            .eks
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(|e| {
                super::map_sdk_error("DescribeCluster", e, &["ResourceNotFoundException"])
            })?;
        let c = out.cluster.ok_or_else(|| {
            AdapterError::NotFound(format!(
                "EKS cluster {cluster} was not returned; check compute.cluster"
            ))
        })?;
        let endpoint = c.endpoint().filter(|e| !e.is_empty()).ok_or_else(|| {
            AdapterError::Invalid(format!(
                "EKS cluster {cluster} has no API endpoint yet (status {}); wait until it is ACTIVE",
                c.status().map(|s| s.as_str()).unwrap_or("unknown")
            ))
        })?;
        let ca = c
            .certificate_authority()
            .and_then(|a| a.data())
            .ok_or_else(|| {
                AdapterError::Invalid(format!(
                    "EKS cluster {cluster} has no certificate authority"
                ))
            })?;
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim())
            .map_err(|e| {
                AdapterError::Invalid(format!(
                    "EKS cluster {cluster}: its certificate authority is not base64: {e}"
                ))
            })?;
        let k = Arc::new(Kube::new(
            &ClusterEndpoint {
                name: cluster.to_string(),
                endpoint: endpoint.to_string(),
                ca_pem,
            },
            self.credentials.clone(),
            &self.region,
        )?);
        self.clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cluster.to_string(), k.clone());
        Ok(k)
    }

    async fn deployment(&self, kube: &Kube, w: &Workload) -> Result<Deployment, AdapterError> {
        let ns = namespace(w)?;
        kube.get(
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{}", w.name),
            &call(w, "get", "apps", "deployments", Some(&w.name))?,
        )
        .await
        .map_err(|e| match e {
            AdapterError::NotFound(m) => AdapterError::NotFound(format!(
                "{m}; check compute.namespace and the color's deployment name"
            )),
            other => other,
        })
    }

    async fn pods(
        &self,
        kube: &Kube,
        w: &Workload,
        d: &Deployment,
    ) -> Result<Vec<Pod>, AdapterError> {
        let ns = namespace(w)?;
        let selector = selector_of(d).ok_or_else(|| {
            AdapterError::Invalid(format!(
                "{} has no matchLabels selector; its pods cannot be found",
                w.describe()
            ))
        })?;
        let list: List<Pod> = kube
            .get(
                &format!(
                    "/api/v1/namespaces/{ns}/pods?labelSelector={}",
                    encode(&selector)
                ),
                &call(w, "list", "", "pods", None)?,
            )
            .await?;
        Ok(list.items)
    }

    async fn events(
        &self,
        kube: &Kube,
        w: &Workload,
        field_selector: &str,
    ) -> Result<Vec<Event>, AdapterError> {
        let ns = namespace(w)?;
        let list: List<Event> = kube
            .get(
                &format!(
                    "/api/v1/namespaces/{ns}/events?fieldSelector={}",
                    encode(field_selector)
                ),
                &call(w, "list", "", "events", None)?,
            )
            .await?;
        Ok(list.items)
    }
}

fn namespace(w: &Workload) -> Result<&str, AdapterError> {
    w.namespace.as_deref().ok_or_else(|| {
        AdapterError::Invalid(format!("{} has no Kubernetes namespace", w.describe()))
    })
}

fn call(
    w: &Workload,
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    name: Option<&str>,
) -> Result<Call, AdapterError> {
    Ok(Call {
        verb,
        group,
        resource,
        namespace: namespace(w)?.to_string(),
        name: name.map(str::to_string),
    })
}

/// Percent-encodes a query value (selectors hold `=`, `,` and `!`).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `app=infra-agent,color=green` from the Deployment's matchLabels (sorted, so stable).
pub fn selector_of(d: &Deployment) -> Option<String> {
    let labels = d.spec.as_ref()?.selector.match_labels.as_ref()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The index of the container to update: the named one, or the pod template's only one.
fn container_index(w: &Workload, d: &Deployment) -> Result<usize, AdapterError> {
    let containers = containers(d);
    let names = || {
        containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &w.container {
        Some(name) => containers
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(|| {
                AdapterError::Invalid(format!(
                    "{} has no container named {name} (it has: {}); set compute.container to one of them",
                    w.describe(),
                    names()
                ))
            }),
        None => match containers.len() {
            1 => Ok(0),
            0 => Err(AdapterError::Invalid(format!(
                "{} has no containers in its pod template",
                w.describe()
            ))),
            _ => Err(AdapterError::Invalid(format!(
                "{} has several containers ({}); set compute.container to the one that runs the new image",
                w.describe(),
                names()
            ))),
        },
    }
}

fn containers(d: &Deployment) -> &[k8s_openapi::api::core::v1::Container] {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
}

fn image_of(w: &Workload, d: &Deployment) -> Result<Option<String>, AdapterError> {
    let i = container_index(w, d)?;
    Ok(containers(d).get(i).and_then(|c| c.image.clone()))
}

fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or(0)
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn to_time(t: &k8s_openapi::jiff::Timestamp) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).ok()
}

/// The pod's container (the updated one, else the first).
fn pod_runs(p: &Pod, container: &str, image: &str) -> bool {
    p.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .any(|c| c.name == container && c.image.as_deref() == Some(image))
    })
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Each container's waiting or terminated reason, with the message, and the last
/// termination's (OOMKilled shows there).
fn container_reasons(p: &Pod) -> Vec<String> {
    let mut out = vec![];
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for cs in statuses {
        if let Some(state) = &cs.state {
            if let Some(w) = &state.waiting {
                let reason = w.reason.as_deref().unwrap_or("Waiting");
                out.push(match &w.message {
                    Some(m) => format!("{}: {reason}: {m}", cs.name),
                    None => format!("{}: {reason}", cs.name),
                });
            }
            if let Some(t) = &state.terminated {
                out.push(format!(
                    "{}: {} (exit code {})",
                    cs.name,
                    t.reason.as_deref().unwrap_or("Terminated"),
                    t.exit_code
                ));
            }
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            out.push(format!(
                "{}: last terminated {} (exit code {})",
                cs.name,
                t.reason.as_deref().unwrap_or("Terminated"),
                t.exit_code
            ));
        }
    }
    if let Some(c) = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status != "True"))
        && let Some(m) = &c.message
    {
        out.push(format!("not ready: {m}"));
    }
    out
}

/// The first new pod whose container cannot start, and why.
fn hopeless(pods: &[&Pod]) -> Option<String> {
    pods.iter().find_map(|p| {
        let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|cs| {
            let w = cs.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.as_deref()?;
            HOPELESS.contains(&reason).then(|| {
                format!(
                    "pod {} container {} is {reason}{}",
                    p.metadata.name.as_deref().unwrap_or("?"),
                    cs.name,
                    w.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
        })
    })
}

fn event_time(e: &Event) -> Option<time::OffsetDateTime> {
    e.last_timestamp
        .as_ref()
        .map(|t| &t.0)
        .or(e.event_time.as_ref().map(|t| &t.0))
        .or(e.first_timestamp.as_ref().map(|t| &t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| &t.0))
        .and_then(to_time)
}

/// Whether the Deployment's rollout is complete, from it and its pods.
pub fn readiness_of(w: &Workload, d: &Deployment, pods: &[Pod]) -> Result<Readiness, AdapterError> {
    let i = container_index(w, d)?;
    let container = containers(d)
        .get(i)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let image = image_of(w, d)?.unwrap_or_default();
    let desired = count(d.spec.as_ref().and_then(|s| s.replicas).or(Some(1)));
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    let (updated, available, total) = (
        count(status.updated_replicas),
        count(status.available_replicas),
        count(status.replicas),
    );
    let new: Vec<&Pod> = pods
        .iter()
        .filter(|p| pod_runs(p, &container, &image))
        .collect();
    let ready_new: Vec<&&Pod> = new.iter().filter(|p| pod_ready(p)).collect();
    let deadline = status.conditions.as_ref().and_then(|cs| {
        cs.iter().find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
    });
    let failed = hopeless(&new).or_else(|| {
        deadline.map(|c| {
            format!(
                "the rollout of {} exceeded its progress deadline (ProgressDeadlineExceeded){}",
                w.describe(),
                c.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
    });
    let complete = observed >= generation(d)
        && desired > 0
        && updated == desired
        && available == desired
        && total == desired;
    let running = u32::try_from(ready_new.len())
        .unwrap_or(u32::MAX)
        .min(desired.max(updated));
    let revision = ready_new.first().and_then(|p| {
        let hash = p.metadata.labels.as_ref()?.get("pod-template-hash")?;
        Some(format!("{}-{hash}", w.name))
    });
    let mut reasons = vec![];
    if !complete {
        reasons.push(format!(
            "rollout: {updated}/{desired} pods updated, {available} available, {total} in all (generation {observed} of {})",
            generation(d)
        ));
        if desired == 0 {
            reasons.push("replicas is 0; scale the Deployment up".into());
        }
        for p in new.iter().filter(|p| !pod_ready(p)).take(3) {
            let why = container_reasons(p);
            if !why.is_empty() {
                reasons.push(format!(
                    "pod {}: {}",
                    p.metadata.name.as_deref().unwrap_or("?"),
                    why.join("; ")
                ));
            }
        }
    }
    Ok(Readiness {
        ready: complete,
        running,
        desired,
        revision,
        failed,
        reasons,
    })
}

/// What troubleshooting shows of a Deployment: its pods newest first with their containers'
/// reasons, the latest events of those pods and of the Deployment, and kubectl commands.
pub fn diagnosis_of(
    w: &Workload,
    d: Deployment,
    mut pods: Vec<Pod>,
    mut events: Vec<Event>,
) -> Result<WorkloadDiagnosis, AdapterError> {
    let ns = namespace(w)?.to_string();
    let selector = selector_of(&d).unwrap_or_default();
    pods.sort_by_key(|p| {
        std::cmp::Reverse(
            p.metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| to_time(&t.0)),
        )
    });
    // the namespace's pod events, of this Deployment's pods only, and the Deployment's own
    let names: std::collections::HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    events.retain(|e| {
        let o = &e.involved_object;
        match o.kind.as_deref() {
            Some("Pod") => o.name.as_deref().is_some_and(|n| names.contains(n)),
            Some("Deployment") => o.name.as_deref() == Some(w.name.as_str()),
            _ => false,
        }
    });
    events.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
    let events = events
        .iter()
        .take(DIAGNOSIS_EVENTS)
        .map(|e| {
            let on = e.involved_object.name.as_deref().unwrap_or("?");
            (
                event_time(e),
                format!(
                    "{} {} {on}: {}",
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                ),
            )
        })
        .collect();
    let units: Vec<UnitReport> = pods
        .iter()
        .map(|p| {
            let status = p.status.as_ref();
            UnitReport {
                id: p.metadata.name.clone().unwrap_or_default(),
                state: status
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Unknown".into()),
                ready: Some(pod_ready(p)),
                restarts: Some(
                    status
                        .and_then(|s| s.container_statuses.as_ref())
                        .map(|cs| cs.iter().map(|c| count(Some(c.restart_count))).sum())
                        .unwrap_or(0),
                ),
                address: status.and_then(|s| s.pod_ip.clone()),
                reasons: container_reasons(p),
                at: p
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .and_then(|t| to_time(&t.0)),
            }
        })
        .collect();
    let first_bad = units
        .iter()
        .find(|u| u.ready != Some(true))
        .or(units.first())
        .map(|u| u.id.clone());
    let container = w
        .container
        .as_ref()
        .map(|c| format!(" -c {c}"))
        .unwrap_or_default();
    let mut commands = vec![
        format!("aws eks update-kubeconfig --name {}", w.cluster),
        format!("kubectl get pods -n {ns} -l {selector} -o wide"),
        format!("kubectl logs -n {ns} -l {selector}{container} --tail=100"),
    ];
    commands.push(match first_bad {
        Some(pod) => format!("kubectl describe pod -n {ns} {pod}"),
        None => format!("kubectl describe deployment -n {ns} {}", w.name),
    });
    commands.push(format!(
        "kubectl get events -n {ns} --sort-by='.lastTimestamp'"
    ));
    let status = d.status.unwrap_or_default();
    Ok(WorkloadDiagnosis {
        running: count(status.ready_replicas),
        desired: count(d.spec.as_ref().and_then(|s| s.replicas).or(Some(1))),
        units,
        events,
        commands,
    })
}

#[async_trait]
impl ComputePlatform for EksPlatform {
    async fn current_image(&self, w: &Workload) -> Result<Option<String>, AdapterError> {
        let kube = self.kube(&w.cluster).await?;
        let d = self.deployment(&kube, w).await?;
        image_of(w, &d)
    }

    async fn deploy_image(
        &self,
        w: &Workload,
        release: &Release<'_>,
    ) -> Result<String, AdapterError> {
        let kube = self.kube(&w.cluster).await?;
        let d = self.deployment(&kube, w).await?;
        let i = container_index(w, &d)?;
        let container = containers(&d)
            .get(i)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        if image_of(w, &d)?.as_deref() == Some(release.image) {
            // already patched (a retry, or the image it runs): nothing to change
            return Ok(generation(&d).to_string());
        }
        let body = serde_json::json!({
            "metadata": {"annotations": {
                DEPLOYMENT_ID_ANNOTATION: release.deployment_id,
                VERSION_ANNOTATION: release.version,
            }},
            "spec": {"template": {"spec": {"containers": [
                {"name": container, "image": release.image}
            ]}}}
        });
        let ns = namespace(w)?;
        let patched: Deployment = kube
            .patch(
                &format!("/apis/apps/v1/namespaces/{ns}/deployments/{}", w.name),
                &body,
                &call(w, "patch", "apps", "deployments", Some(&w.name))?,
            )
            .await?;
        Ok(generation(&patched).to_string())
    }

    async fn readiness(&self, w: &Workload, _handle: &str) -> Result<Readiness, AdapterError> {
        let kube = self.kube(&w.cluster).await?;
        let d = self.deployment(&kube, w).await?;
        let pods = self.pods(&kube, w, &d).await?;
        readiness_of(w, &d, &pods)
    }

    async fn diagnose(&self, w: &Workload) -> Result<WorkloadDiagnosis, AdapterError> {
        let kube = self.kube(&w.cluster).await?;
        let d = self.deployment(&kube, w).await?;
        let pods = self.pods(&kube, w, &d).await?;
        let mut events = self.events(&kube, w, "involvedObject.kind=Pod").await?;
        events.extend(
            self.events(
                &kube,
                w,
                &format!(
                    "involvedObject.kind=Deployment,involvedObject.name={}",
                    w.name
                ),
            )
            .await?,
        );
        diagnosis_of(w, d, pods, events)
    }
}

#[cfg(test)]
mod tests {
    //! Readiness and troubleshooting over Kubernetes answers recorded in the shape the API
    //! server sends (`recorded/`).
    use super::*;
    use crate::domain::Platform;

    fn recorded<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("recorded answer: {e}"))
    }
    fn deployment(which: &str) -> Deployment {
        recorded(match which {
            "complete" => include_str!("recorded/deployment-complete.json"),
            "rolling" => include_str!("recorded/deployment-rolling.json"),
            _ => include_str!("recorded/deployment-deadline-exceeded.json"),
        })
    }
    fn pods(which: &str) -> Vec<Pod> {
        let list: List<Pod> = recorded(match which {
            "complete" => include_str!("recorded/pods-complete.json"),
            "creating" => include_str!("recorded/pods-creating.json"),
            "crash-loop" => include_str!("recorded/pods-crash-loop.json"),
            _ => include_str!("recorded/pods-image-pull-backoff.json"),
        });
        list.items
    }
    fn events() -> Vec<Event> {
        let mut all: List<Event> = recorded(include_str!("recorded/events-pods.json"));
        let d: List<Event> = recorded(include_str!("recorded/events-deployment.json"));
        all.items.extend(d.items);
        all.items
    }
    fn green(container: Option<&str>) -> Workload {
        Workload {
            platform: Platform::Eks,
            cluster: "reference".into(),
            namespace: Some("infra-agent".into()),
            name: "infra-agent-green".into(),
            container: container.map(str::to_string),
        }
    }
    fn ready(d: &str, p: &str) -> Readiness {
        readiness_of(&green(None), &deployment(d), &pods(p)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_complete_rollout_is_ready_with_its_replicaset_as_the_revision() {
        let r = ready("complete", "complete");
        assert!(r.ready, "{r:?}");
        assert_eq!((r.running, r.desired), (3, 3));
        assert_eq!(r.revision.as_deref(), Some("infra-agent-green-7d9f8b6c5d"));
        assert_eq!(r.failed, None);
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn a_rollout_in_progress_waits_and_says_where_it_is() {
        let r = ready("rolling", "creating");
        assert!(!r.ready);
        assert_eq!(r.failed, None, "ContainerCreating is worth waiting for");
        assert_eq!(r.running, 0, "no pod of the new template is ready");
        assert!(
            r.reasons[0].starts_with("rollout: 1/3 pods updated, 3 available, 4 in all"),
            "{:?}",
            r.reasons
        );
        assert!(r.reasons.iter().any(|m| m.contains("ContainerCreating")));
    }

    #[test]
    fn an_image_that_cannot_be_pulled_fails_at_once_naming_the_pod() {
        let r = ready("rolling", "image-pull-backoff");
        let failed = r.failed.unwrap_or_default();
        assert!(
            failed.starts_with("pod infra-agent-green-5c6b7f9d8e-zt9wd container infra-agent is ImagePullBackOff: Back-off pulling image"),
            "{failed}"
        );
    }

    #[test]
    fn crashing_containers_fail_at_once() {
        let r = ready("rolling", "crash-loop");
        assert!(r.failed.is_some_and(|f| f.contains("is CrashLoopBackOff")));
    }

    #[test]
    fn a_passed_progress_deadline_fails_the_rollout() {
        let r = ready("deadline", "creating");
        let failed = r.failed.unwrap_or_default();
        assert!(failed.contains("ProgressDeadlineExceeded"), "{failed}");
        assert!(failed.contains("has timed out progressing"), "{failed}");
    }

    #[test]
    fn the_container_is_the_only_one_or_the_named_one() {
        let d = deployment("complete");
        assert_eq!(
            image_of(&green(None), &d).ok().flatten().as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/infra-agent:1.3.0")
        );
        let e = image_of(&green(Some("sidecar")), &d);
        assert!(
            matches!(&e, Err(AdapterError::Invalid(m)) if m.contains("has no container named sidecar (it has: infra-agent)")),
            "{e:?}"
        );
        assert_eq!(
            selector_of(&d).as_deref(),
            Some("app=infra-agent,color=green")
        );
    }

    #[test]
    fn troubleshooting_shows_pods_their_reasons_events_newest_first_and_kubectl_steps() {
        let d = diagnosis_of(
            &green(None),
            deployment("rolling"),
            pods("crash-loop"),
            events(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.running, d.desired), (3, 3));
        let newest = &d.units[0];
        assert_eq!(
            newest.id, "infra-agent-green-5c6b7f9d8e-zt9wd",
            "newest pod first"
        );
        assert_eq!(
            (
                newest.state.as_str(),
                newest.ready,
                newest.restarts,
                newest.address.as_deref()
            ),
            ("Running", Some(false), Some(4), Some("10.1.7.9"))
        );
        assert!(
            newest
                .reasons
                .iter()
                .any(|r| r.starts_with("infra-agent: CrashLoopBackOff"))
        );
        assert!(
            newest
                .reasons
                .iter()
                .any(|r| r.contains("last terminated OOMKilled (exit code 137)"))
        );
        // events of the Deployment and of its pods only, newest first
        let messages: Vec<&str> = d.events.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages[0],
            "Normal BackOff infra-agent-green-5c6b7f9d8e-zt9wd: Back-off pulling image \"123456789012.dkr.ecr.us-east-1.amazonaws.com/infra-agent:1.3.1\""
        );
        assert!(messages.iter().any(|m| m.starts_with(
            "Warning Failed infra-agent-green-5c6b7f9d8e-zt9wd: Failed to pull image"
        )));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("ScalingReplicaSet infra-agent-green"))
        );
        assert!(
            !messages.iter().any(|m| m.contains("-old")),
            "another pod's events: {messages:?}"
        );
        assert_eq!(
            d.commands,
            [
                "aws eks update-kubeconfig --name reference",
                "kubectl get pods -n infra-agent -l app=infra-agent,color=green -o wide",
                "kubectl logs -n infra-agent -l app=infra-agent,color=green --tail=100",
                "kubectl describe pod -n infra-agent infra-agent-green-5c6b7f9d8e-zt9wd",
                "kubectl get events -n infra-agent --sort-by='.lastTimestamp'",
            ]
        );
    }
}
