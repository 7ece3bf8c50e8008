//! ECR push trigger: an image pushed with a release tag starts a deployment in each of its
//! service's auto-deploy environments, under a deterministic id so redelivered events start
//! at most one execution. No person is behind a push, so it never starts a deployment that
//! waits for approval: anyone but its starter could approve it, which is everyone.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::domain::{AccountId, DeploymentId, ImageDigest, ImageRef, Version};
use shared::error::PhaseError;
use shared::usecases::start::{StartError, StartRequest, start};
use tracing::Instrument;

pub use shared::usecases::start::StartDeps as Deps;

pub const SOURCE: &str = "aws.ecr";
pub const DETAIL_TYPE: &str = "ECR Image Action";

/// Step Functions execution names are at most 80 characters.
const MAX_ID: usize = 80;
/// How much of the digest goes into a deployment id.
const DIGEST_CHARS: usize = 12;

/// The `detail` of an `ECR Image Action` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Detail {
    action_type: String,
    result: String,
    repository_name: String,
    #[serde(default)]
    image_tag: Option<String>,
    #[serde(default)]
    image_digest: Option<String>,
}

/// A successful push of a tagged image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repository: String,
    pub tag: String,
    pub digest: ImageDigest,
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`.
    pub image: ImageRef,
    /// The event's time: when the image was pushed (lead time for changes starts here).
    pub pushed_at: Option<time::OffsetDateTime>,
}

/// What an ECR image action asks of the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAction {
    Push(Push),
    /// A well-formed event that deploys nothing, and why.
    Skip(String),
}

fn invalid(m: impl Into<String>) -> PhaseError {
    PhaseError::InvalidInput(m.into())
}

fn region_ok(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Parses a raw event. Anything that is not a well-formed `ECR Image Action` is
/// `BlueGreen.InvalidInput`; a well-formed one that deploys nothing is `Skip` with the reason.
pub fn parse(input: Value) -> Result<ImageAction, PhaseError> {
    let event: EventBridgeEvent<Detail> = serde_json::from_value(input)
        .map_err(|e| invalid(format!("not an EventBridge {DETAIL_TYPE:?} event: {e}")))?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(invalid(format!(
            "expected source {SOURCE:?} and detail-type {DETAIL_TYPE:?}, got {:?} and {:?}: check the EventBridge rule's pattern",
            event.source, event.detail_type
        )));
    }
    let d = event.detail;
    if d.repository_name.is_empty() {
        return Err(invalid("detail.repository-name is empty"));
    }
    if d.action_type != "PUSH" {
        return Ok(ImageAction::Skip(format!(
            "action {} on {}: only pushes deploy",
            d.action_type, d.repository_name
        )));
    }
    if d.result != "SUCCESS" {
        return Ok(ImageAction::Skip(format!(
            "push to {} did not succeed (result {})",
            d.repository_name, d.result
        )));
    }
    let Some(tag) = d.image_tag.filter(|t| !t.is_empty()) else {
        return Ok(ImageAction::Skip(format!(
            "push to {} has no tag: only tagged releases deploy",
            d.repository_name
        )));
    };
    if tag == "latest" {
        return Ok(ImageAction::Skip(format!(
            "tag latest on {} is not a release: push a version tag such as 1.3.0",
            d.repository_name
        )));
    }
    let digest = d
        .image_digest
        .ok_or_else(|| invalid("a successful push must carry detail.image-digest"))?;
    let digest =
        ImageDigest::try_from(digest).map_err(|e| invalid(format!("detail.image-digest: {e}")))?;
    let account = event
        .account
        .and_then(|a| AccountId::try_from(a).ok())
        .ok_or_else(|| invalid("account must be a 12-digit AWS account id"))?;
    let region = event
        .region
        .filter(|r| region_ok(r))
        .ok_or_else(|| invalid("region must be an AWS region such as us-east-1"))?;
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let image = ImageRef::parse(&format!(
        "{account}.dkr.ecr.{region}.{domain}/{}:{tag}",
        d.repository_name
    ))?;
    let pushed_at = event
        .time
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok());
    Ok(ImageAction::Push(Push {
        repository: d.repository_name,
        tag,
        digest,
        image,
        pushed_at,
    }))
}

/// `<service>-<environment>-<version dashed>-<first 12 hex of the digest>`, at most 80
/// characters: the service part is shortened first; if even that is not enough, the head is
/// cut and the digest kept, so different images never share an id.
pub fn deployment_id(
    service: &str,
    environment: &str,
    version: &Version,
    digest: &ImageDigest,
) -> String {
    let hex: String = digest.hex().chars().take(DIGEST_CHARS).collect();
    let dashed: String = version
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let rest = format!("-{environment}-{dashed}-{hex}");
    let trim = |s: &str| s.trim_end_matches(['-', '_']).to_string();
    match MAX_ID.checked_sub(rest.len()).filter(|b| *b >= 1) {
        Some(budget) => {
            let head: String = service.chars().take(budget).collect();
            let head = match trim(&head) {
                h if h.is_empty() => head,
                h => h,
            };
            format!("{head}{rest}")
        }
        None => {
            let head: String = format!("{service}-{environment}-{dashed}")
                .chars()
                .take(MAX_ID - DIGEST_CHARS - 1)
                .collect();
            format!("{}-{hex}", trim(&head))
        }
    }
}

/// What happened in one auto-deploy environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EnvironmentOutcome {
    Started {
        environment: String,
        deployment_id: String,
        execution_arn: String,
    },
    /// This push had started this deployment before (a redelivered event).
    Duplicate {
        environment: String,
        deployment_id: String,
        execution_arn: String,
    },
    /// Another deployment holds the environment; this one was not started.
    Locked {
        environment: String,
        deployment_id: String,
        running: String,
        reason: String,
    },
    Skipped {
        environment: String,
        reason: String,
    },
}

/// The function's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Summary {
    Ignored {
        reason: String,
    },
    Deploy {
        service: String,
        version: String,
        image: String,
        environments: Vec<EnvironmentOutcome>,
    },
}

fn ignored(reason: String) -> Summary {
    tracing::info!(action = "ignored", %reason, "image action deploys nothing");
    Summary::Ignored { reason }
}

pub async fn handle(deps: &Deps, input: Value) -> Result<Value, PhaseError> {
    let summary = match parse(input)? {
        ImageAction::Skip(reason) => ignored(reason),
        ImageAction::Push(push) => {
            let span = tracing::info_span!(
                "ecr_push",
                repository = %push.repository,
                tag = %push.tag,
                digest = %push.digest
            );
            run(deps, push).instrument(span).await?
        }
    };
    serde_json::to_value(&summary)
        .map_err(|e| PhaseError::Internal(format!("serializing the result: {e}")))
}

async fn run(deps: &Deps, push: Push) -> Result<Summary, PhaseError> {
    let Some(service) = deps
        .registry
        .service_by_repository(&push.repository)
        .await?
    else {
        return Ok(ignored(format!(
            "repository {} releases no registered service: register one with PUT /services/<service>",
            push.repository
        )));
    };
    let version = match service.release_version(&push.tag) {
        Ok(v) => v,
        Err(e) => return Ok(ignored(format!("{}: {e}", service.service))),
    };
    let mut environments = Vec::with_capacity(service.auto_deploy.len());
    for environment in &service.auto_deploy {
        if let Some(reason) = needs_a_person(deps, &service.service, environment).await? {
            tracing::warn!(%environment, %reason, "environment skipped");
            environments.push(EnvironmentOutcome::Skipped {
                environment: environment.to_string(),
                reason,
            });
            continue;
        }
        let id = deployment_id(&service.service, environment, &version, &push.digest);
        let id = match DeploymentId::try_from(id) {
            Ok(id) => id,
            Err(e) => {
                let reason = format!("{e}: it is not a valid execution name");
                tracing::warn!(%environment, %reason, "environment skipped");
                environments.push(EnvironmentOutcome::Skipped {
                    environment: environment.to_string(),
                    reason,
                });
                continue;
            }
        };
        let req = StartRequest {
            deployment_id: id,
            service: service.service.to_string(),
            environment: environment.to_string(),
            version: version.clone(),
            image: push.image.clone(),
            image_digest: Some(push.digest.clone()),
            deployer: format!("ecr-push:{}:{}", push.repository, push.tag),
            triggered_by: None,
            gates: None,
            image_pushed_at: push.pushed_at,
        };
        environments.push(start_in(deps, &req).await?);
    }
    Ok(Summary::Deploy {
        service: service.service.into_string(),
        version: version.to_string(),
        image: push.image.to_string(),
        environments,
    })
}

/// Why a push may not start a deployment in `environment` (`None` when it may): the
/// environment requires approval, and four eyes need a person who started it.
async fn needs_a_person(
    deps: &Deps,
    service: &str,
    environment: &str,
) -> Result<Option<String>, PhaseError> {
    let required = deps
        .registry
        .environment_config(service, environment)
        .await?
        .is_some_and(|env| env.approval_policy().required);
    Ok(required.then(|| {
        format!(
            "{service}/{environment} requires approval, and an image push has no person behind it (anyone but its starter could approve it); promote the image there (POST /promotions) or start it through the API"
        )
    }))
}

async fn start_in(deps: &Deps, req: &StartRequest) -> Result<EnvironmentOutcome, PhaseError> {
    let environment = req.environment.clone();
    match start(deps, req).await {
        Ok(s) if s.duplicate => {
            tracing::info!(%environment, deployment_id = %s.deployment_id, "push already deployed");
            Ok(EnvironmentOutcome::Duplicate {
                environment,
                deployment_id: s.deployment_id,
                execution_arn: s.execution_arn,
            })
        }
        Ok(s) => Ok(EnvironmentOutcome::Started {
            environment,
            deployment_id: s.deployment_id,
            execution_arn: s.execution_arn,
        }),
        Err(StartError::Locked { by, .. }) => {
            let reason = format!(
                "{}/{environment} is running deployment {by}; {} was not started. The push is not lost: \
                 the image stays in ECR and deploys under the same id when pushed again or started \
                 through the API once {by} has finished",
                req.service, req.deployment_id
            );
            tracing::info!(%environment, running = %by, deployment_id = %req.deployment_id, "environment locked");
            Ok(EnvironmentOutcome::Locked {
                environment,
                deployment_id: req.deployment_id.to_string(),
                running: by,
                reason,
            })
        }
        Err(
            e @ (StartError::UnknownService(_)
            | StartError::UnknownEnvironment(..)
            | StartError::Invalid(_)
            | StartError::IdTaken { .. }
            | StartError::Protected(_)),
        ) => {
            let reason = e.to_string();
            tracing::warn!(%environment, %reason, "environment skipped");
            Ok(EnvironmentOutcome::Skipped {
                environment,
                reason,
            })
        }
        // Retrying the whole event is safe: every start is idempotent per deployment id.
        Err(StartError::Aws(e)) => Err(PhaseError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use shared::fakes::sample::{World, id};
    use shared::ports::{Clock as _, DeploymentStore as _, Registry as _};
    use shared::registry::ServiceConfig;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    fn digest() -> ImageDigest {
        id(DIGEST)
    }

    fn event(action: &str, result: &str, tag: Option<&str>) -> Value {
        let mut detail = json!({
            "result": result,
            "repository-name": "checkout",
            "image-digest": DIGEST,
            "action-type": action,
        });
        if let Some(t) = tag {
            detail["image-tag"] = json!(t);
        }
        json!({
            "version": "0",
            "id": "13cde686-328b-6117-af20-0e5566167482",
            "detail-type": "ECR Image Action",
            "source": "aws.ecr",
            "account": "123456789012",
            "time": "2025-01-03T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail
        })
    }

    fn push(tag: &str) -> Value {
        event("PUSH", "SUCCESS", Some(tag))
    }

    async fn world() -> World {
        World::default().with_registry().await
    }

    #[test]
    fn parses_each_kind_of_image_action() {
        let pushed = |t: &str| {
            Ok(ImageAction::Push(Push {
                repository: "checkout".into(),
                tag: t.into(),
                digest: digest(),
                image: ImageRef::parse(&format!(
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:{t}"
                ))
                .unwrap(),
                // the event's time: when the image was pushed
                pushed_at: Some(time::macros::datetime!(2025-01-03 10:00:00 UTC)),
            }))
        };
        assert_eq!(parse(push("1.3.0")), pushed("1.3.0"));
        // a tag the release pattern rejects is still a push: the service decides
        assert_eq!(parse(push("sha-abc")), pushed("sha-abc"));
        let skips = [
            (
                event("DELETE", "SUCCESS", Some("1.3.0")),
                "only pushes deploy",
            ),
            (event("PUSH", "FAILURE", Some("1.3.0")), "did not succeed"),
            (event("PUSH", "SUCCESS", None), "has no tag"),
            (event("PUSH", "SUCCESS", Some("")), "has no tag"),
            (push("latest"), "tag latest"),
        ];
        for (input, needle) in skips {
            let got = parse(input.clone()).unwrap();
            assert!(
                matches!(&got, ImageAction::Skip(r) if r.contains(needle)),
                "{input}: {got:?}"
            );
        }
    }

    #[test]
    fn malformed_events_are_invalid_input_naming_the_problem() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|e| *e = json!([])), "not an EventBridge"),
            (
                Box::new(|e| {
                    e.as_object_mut().map(|o| o.remove("detail"));
                }),
                "missing field `detail`",
            ),
            (
                Box::new(|e| e["detail-type"] = json!("ECR Image Scan")),
                "expected source",
            ),
            (
                Box::new(|e| e["source"] = json!("my.app")),
                "expected source",
            ),
            (
                Box::new(|e| {
                    e["detail"].as_object_mut().map(|o| o.remove("action-type"));
                }),
                "action-type",
            ),
            (
                Box::new(|e| e["detail"]["repository-name"] = json!("")),
                "repository-name is empty",
            ),
            (
                Box::new(|e| {
                    e["detail"]
                        .as_object_mut()
                        .map(|o| o.remove("image-digest"));
                }),
                "image-digest",
            ),
            (
                Box::new(|e| e["detail"]["image-digest"] = json!("sha256:ABC")),
                "sha256:<64 lowercase hex>",
            ),
            (Box::new(|e| e["account"] = json!("12345")), "account"),
            (Box::new(|e| e["region"] = json!("US EAST")), "region"),
            (
                Box::new(|e| e["detail"]["image-tag"] = json!("-bad")),
                "tag must be",
            ),
            (
                Box::new(|e| e["detail"]["repository-name"] = json!("Check Out")),
                "image",
            ),
        ];
        for (mutate, needle) in cases {
            let mut input = push("1.3.0");
            mutate(&mut input);
            match parse(input.clone()) {
                Err(PhaseError::InvalidInput(m)) => assert!(m.contains(needle), "{needle}: {m}"),
                other => panic!("{input}: expected invalid input, got {other:?}"),
            }
        }
    }

    #[test]
    fn deployment_ids_are_deterministic_readable_and_valid() {
        let v = Version::parse("1.3.0").unwrap();
        assert_eq!(
            deployment_id("checkout", "dev", &v, &digest()),
            "checkout-dev-1-3-0-7f5b2640fe6f"
        );
        let rc = Version::parse("2.0.0-rc.1+build.7").unwrap();
        assert_eq!(
            deployment_id("checkout", "prd", &rc, &digest()),
            "checkout-prd-2-0-0-rc-1-build-7-7f5b2640fe6f"
        );
        let long = "s".repeat(64);
        let id = deployment_id(&long, "production-eu", &v, &digest());
        assert_eq!(id.len(), 80);
        assert!(id.ends_with("-production-eu-1-3-0-7f5b2640fe6f"), "{id}");
        assert!(DeploymentId::parse(&id).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics_and_is_parsed_or_invalid(v in arb_json()) {
            match parse(v) {
                Ok(_) | Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        #[test]
        fn near_miss_events_never_panic(
            action in prop::sample::select(vec!["PUSH", "DELETE", "", "push"]),
            result in prop::sample::select(vec!["SUCCESS", "FAILURE", "x"]),
            tag in prop::option::of("[ -~]{0,20}"),
            repo in "[ -~]{0,20}",
            digest in prop::option::of("(sha256:)?[0-9a-fA-F]{0,66}"),
        ) {
            let mut e = event(action, result, tag.as_deref());
            e["detail"]["repository-name"] = json!(repo);
            e["detail"]["image-digest"] = json!(digest);
            match parse(e) {
                Ok(ImageAction::Push(p)) => prop_assert!(p.digest.starts_with("sha256:")),
                Ok(ImageAction::Skip(_)) | Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        #[test]
        fn ids_always_fit_an_execution_name(
            service in "[A-Za-z0-9_-]{1,64}",
            environment in "[A-Za-z0-9_-]{1,64}",
            major in 0u64..1_000_000, pre in prop::option::of("[a-z][a-z0-9]{0,29}"),
            hex in "[0-9a-f]{64}",
        ) {
            let text = match &pre { Some(p) => format!("{major}.0.0-{p}"), None => format!("{major}.0.0") };
            let v = Version::parse(&text).unwrap();
            let digest: ImageDigest = id(&format!("sha256:{hex}"));
            let id = deployment_id(&service, &environment, &v, &digest);
            prop_assert!(DeploymentId::parse(&id).is_ok(), "{}", id);
            prop_assert!(id.ends_with(&hex[..12]));
            prop_assert_eq!(id.clone(), deployment_id(&service, &environment, &v, &digest));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any interleaving of deliveries of a few pushes (each possibly redelivered): one
        /// execution in all, for the first push; its redeliveries are duplicates; every other
        /// push is refused as locked, naming it.
        #[test]
        fn redelivered_and_competing_pushes_start_at_most_one_execution(
            deliveries in prop::collection::vec(0usize..3, 1..12),
        ) {
            const TAGS: [&str; 3] = ["1.3.0", "1.4.0", "2.0.0"];
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let w = world().await;
                let d = w.start_deps();
                let first = deliveries[0];
                let id_of = |i: usize| {
                    deployment_id("checkout", "dev", &Version::parse(TAGS[i]).unwrap(), &digest())
                };
                for (n, &i) in deliveries.iter().enumerate() {
                    let out = handle(&d, push(TAGS[i])).await.unwrap();
                    let env = &out["environments"][0];
                    let expected = match (i == first, deliveries[..n].contains(&i)) {
                        (true, false) => "started",
                        (true, true) => "duplicate",
                        (false, _) => "locked",
                    };
                    prop_assert_eq!(env["outcome"].as_str(), Some(expected), "{}", out);
                    if expected == "locked" {
                        let running = id_of(first);
                        prop_assert_eq!(env["running"].as_str(), Some(running.as_str()));
                    }
                }
                prop_assert_eq!(w.executions.started_names(), vec![id_of(first)]);
                Ok(())
            })?;
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "PUSH",
                "SUCCESS",
                "aws.ecr",
                "ECR Image Action",
                "latest",
                "1.3.0",
                DIGEST,
                "123456789012",
                "us-east-1",
                "checkout",
            ])
            .prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            let keys = prop::sample::select(vec![
                "detail-type",
                "source",
                "detail",
                "account",
                "region",
                "time",
                "action-type",
                "result",
                "repository-name",
                "image-tag",
                "image-digest",
                "other",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(keys, inner, 0..8).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    #[tokio::test]
    async fn a_release_push_starts_one_deployment_per_auto_deploy_environment() {
        // GIVEN checkout released from repository checkout into dev
        let w = world().await;
        // WHEN 1.3.0 is pushed
        let out = handle(&w.start_deps(), push("1.3.0")).await.unwrap();
        // THEN one execution runs under the deterministic id, with the pushed image and digest
        let id = "checkout-dev-1-3-0-7f5b2640fe6f";
        assert_eq!(out["action"], "deploy");
        assert_eq!(out["version"], "1.3.0");
        assert_eq!(
            out["environments"],
            json!([{
                "outcome": "started",
                "environment": "dev",
                "deployment_id": id,
                "execution_arn": shared::fakes::FakeExecutions::arn(id),
            }])
        );
        let started = w.executions.started.lock().unwrap().clone();
        assert_eq!(started.len(), 1);
        let (name, req) = &started[0];
        assert_eq!(name, id);
        assert_eq!(
            req.image.to_string(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0"
        );
        assert_eq!(req.image_digest, Some(digest()));
        assert_eq!(req.deployer, "ecr-push:checkout:1.3.0");
        assert_eq!(req.alarms, vec![shared::fakes::sample::ALARM.to_string()]);
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some(id.into())
        );
    }

    #[tokio::test]
    async fn the_same_event_delivered_ten_times_starts_one_execution() {
        let w = world().await;
        let d = w.start_deps();
        let mut outcomes = vec![];
        for _ in 0..10 {
            let out = handle(&d, push("1.3.0")).await.unwrap();
            outcomes.push(out["environments"][0]["outcome"].clone());
        }
        assert_eq!(w.executions.started_names().len(), 1);
        assert_eq!(outcomes[0], "started");
        assert!(
            outcomes[1..].iter().all(|o| o == "duplicate"),
            "{outcomes:?}"
        );
    }

    #[tokio::test]
    async fn events_that_release_nothing_are_ignored_and_change_nothing() {
        let w = world().await;
        let mut unknown_repo = push("1.3.0");
        unknown_repo["detail"]["repository-name"] = json!("billing");
        let cases = [
            (
                event("DELETE", "SUCCESS", Some("1.3.0")),
                "only pushes deploy",
            ),
            (event("PUSH", "FAILURE", Some("1.3.0")), "did not succeed"),
            (event("PUSH", "SUCCESS", None), "has no tag"),
            (push("latest"), "tag latest"),
            (push("1.3.0-rc.1"), "does not match the release pattern"),
            (push("sha-0f3a9c"), "does not match the release pattern"),
            (unknown_repo, "releases no registered service"),
        ];
        for (input, needle) in cases {
            let out = handle(&w.start_deps(), input).await.unwrap();
            assert_eq!(out["action"], "ignored", "{needle}");
            let reason = out["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(needle), "{needle}: {reason}");
        }
        assert!(w.executions.started_names().is_empty());
        assert!(w.store.env("checkout", "dev").is_none());
    }

    #[tokio::test]
    async fn malformed_input_is_a_named_error_and_changes_nothing() {
        let w = world().await;
        let mut bad = push("1.3.0");
        bad["detail"]["image-digest"] = json!("md5:abc");
        for input in [json!("hello"), json!({}), bad] {
            let err = handle(&w.start_deps(), input).await.unwrap_err();
            assert_eq!(
                lambda_runtime::Diagnostic::from(err).error_type,
                "BlueGreen.InvalidInput"
            );
        }
        assert!(w.executions.started_names().is_empty());
        assert!(w.store.env("checkout", "dev").is_none());
    }

    #[tokio::test]
    async fn a_locked_environment_is_reported_with_the_running_deployment() {
        // GIVEN dev is held by a running deployment
        let w = world().await;
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                "checkout-dev-1-2-0-aaaaaaaaaaaa",
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        // WHEN 1.3.0 is pushed
        let out = handle(&w.start_deps(), push("1.3.0")).await.unwrap();
        // THEN nothing starts, and the result names the running deployment
        let env = &out["environments"][0];
        assert_eq!(env["outcome"], "locked");
        assert_eq!(env["running"], "checkout-dev-1-2-0-aaaaaaaaaaaa");
        assert_eq!(env["deployment_id"], "checkout-dev-1-3-0-7f5b2640fe6f");
        assert!(env["reason"].as_str().unwrap().contains("not lost"));
        assert!(w.executions.started_names().is_empty());
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some("checkout-dev-1-2-0-aaaaaaaaaaaa".into())
        );
    }

    #[tokio::test]
    async fn environments_missing_from_the_registry_are_skipped_and_the_rest_start() {
        // GIVEN checkout auto-deploys to tst (not registered) and dev
        let w = world().await;
        w.registry
            .put_service(&ServiceConfig {
                service: id("checkout"),
                repository: "checkout".into(),
                release_pattern: shared::registry::DEFAULT_RELEASE_PATTERN.into(),
                auto_deploy: vec![id("tst"), id("dev")],
                promotion: Default::default(),
                accounts: Vec::new(),
                evidence_recorders: Default::default(),
                github_logins: Default::default(),
            })
            .await
            .unwrap();
        // WHEN v1.3.0 is pushed
        let out = handle(&w.start_deps(), push("v1.3.0")).await.unwrap();
        // THEN tst is skipped with the reason, dev starts
        let envs = out["environments"].as_array().cloned().unwrap_or_default();
        assert_eq!(envs[0]["outcome"], "skipped");
        assert_eq!(envs[0]["environment"], "tst");
        assert!(
            envs[0]["reason"]
                .as_str()
                .unwrap()
                .contains("checkout/tst is not in the registry")
        );
        assert_eq!(envs[1]["outcome"], "started");
        assert_eq!(
            w.executions.started_names(),
            vec!["checkout-dev-1-3-0-7f5b2640fe6f"]
        );
        assert!(w.store.env("checkout", "tst").is_none());
    }

    /// Finding 5 of the security review: a push has no person behind it, so the rule that a
    /// deployment's starter cannot approve it would exclude nobody. An environment that
    /// requires approval is skipped, saying why, and the others still start.
    #[tokio::test]
    async fn a_push_never_starts_an_environment_that_requires_approval() {
        // GIVEN checkout auto-deploys to tst, which requires approval, and to dev
        let w = world().await;
        let mut tst = World::environment_config();
        tst.environment = shared::fakes::sample::id("tst");
        tst.approval = Some(shared::domain::ApprovalPolicy {
            required: true,
            timeout_seconds: 3600,
        });
        w.registry.put_environment(&tst).await.unwrap();
        let mut service = w.registry.service("checkout").await.unwrap().unwrap();
        service.auto_deploy = vec![
            shared::fakes::sample::id("tst"),
            shared::fakes::sample::id("dev"),
        ];
        w.registry.put_service(&service).await.unwrap();
        // WHEN v1.3.0 is pushed
        let out = handle(&w.start_deps(), push("1.3.0")).await.unwrap();
        // THEN tst is skipped with the reason and nothing holds it; dev starts
        let envs = out["environments"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            (envs[0]["outcome"].as_str(), envs[0]["environment"].as_str()),
            (Some("skipped"), Some("tst"))
        );
        assert!(
            envs[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("checkout/tst requires approval")
                    && r.contains("no person behind it")),
            "{}",
            envs[0]
        );
        assert_eq!(envs[1]["outcome"], "started", "{out}");
        assert_eq!(
            w.executions.started_names(),
            vec!["checkout-dev-1-3-0-7f5b2640fe6f"]
        );
        assert!(w.store.env("checkout", "tst").is_none());
    }

    #[tokio::test]
    async fn a_failing_start_is_retryable_and_leaves_the_environment_free() {
        let w = world().await;
        w.executions
            .fail_next_starts
            .lock()
            .unwrap()
            .push(shared::error::AdapterError::Transient(
                "ThrottlingException".into(),
            ));
        let err = handle(&w.start_deps(), push("1.3.0")).await.unwrap_err();
        assert_eq!(err.error_type(), "BlueGreen.Retryable");
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
        // the redelivery starts it
        let out = handle(&w.start_deps(), push("1.3.0")).await.unwrap();
        assert_eq!(out["environments"][0]["outcome"], "started");
    }
}
