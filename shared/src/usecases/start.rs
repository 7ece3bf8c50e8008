//! Starting a deployment from a request (the API, an image push): look the environment up in
//! the registry, take its lock synchronously (so the second of two concurrent starts is refused
//! at once, naming the first), then start the state machine under the deployment id.
//! Idempotent per deployment id.

use crate::contracts::DeploymentRequest;
use crate::domain::{DeploymentId, ImageDigest, ImageRef, STALE_LOCK_AFTER, Version};
use crate::error::AdapterError;
use crate::ports::{Clock, DeploymentStore, Executions, LockOutcome, Registry};
use std::sync::Arc;

pub struct StartDeps {
    pub registry: Arc<dyn Registry>,
    pub store: Arc<dyn DeploymentStore>,
    pub executions: Arc<dyn Executions>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub deployment_id: DeploymentId,
    pub service: String,
    pub environment: String,
    pub version: Version,
    pub image: ImageRef,
    pub image_digest: Option<ImageDigest>,
    pub deployer: String,
    /// The person behind a CI deployer (`github:<login>`).
    pub triggered_by: Option<String>,
    /// The promotion checklist that allowed it, if it was promoted.
    pub gates: Option<Vec<crate::domain::GateResult>>,
    /// When its image was pushed, if known.
    pub image_pushed_at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub deployment_id: String,
    pub execution_arn: String,
    /// This exact start had happened before (a duplicate); nothing new was started.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("service {0:?} is not in the registry: register it with PUT /services/{0}")]
    UnknownService(String),
    #[error("{0}/{1} is not in the registry: register it with PUT /services/{0}/environments/{1}")]
    UnknownEnvironment(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{service}/{environment} already has a deployment running: {by}; wait for it to finish or roll it back"
    )]
    Locked {
        service: String,
        environment: String,
        by: String,
    },
    /// The deployment id names another environment's deployment (an `Idempotency-Key` or a
    /// promotion id reused across environments).
    #[error(
        "deployment id {id} is already used for {owner}; use a new Idempotency-Key for a new deployment"
    )]
    IdTaken { id: String, owner: String },
    /// The environment is protected and this start is not a promotion of a registered image
    /// pinned by digest with every gate passed.
    #[error("{0}")]
    Protected(String),
    #[error("{0}")]
    Aws(#[from] AdapterError),
}

pub async fn start(deps: &StartDeps, req: &StartRequest) -> Result<Started, StartError> {
    // An id belongs to one environment: a start may not lock this environment under the id
    // of another's deployment (whose end would never release this lock).
    if let Some(r) = deps.store.deployment(&req.deployment_id).await?
        && (r.service.as_str(), r.environment.as_str())
            != (req.service.as_str(), req.environment.as_str())
    {
        return Err(StartError::IdTaken {
            id: req.deployment_id.to_string(),
            owner: format!("{}/{}", r.service, r.environment),
        });
    }
    let Some(env) = deps
        .registry
        .environment_config(&req.service, &req.environment)
        .await?
    else {
        return Err(match deps.registry.service(&req.service).await? {
            None => StartError::UnknownService(req.service.clone()),
            Some(_) => StartError::UnknownEnvironment(req.service.clone(), req.environment.clone()),
        });
    };
    let service = deps
        .registry
        .service(&req.service)
        .await?
        .ok_or_else(|| StartError::UnknownService(req.service.clone()))?;
    // Another team's role is refused here, before any call reaches its account.
    service
        .allows_role(env.role_arn.as_ref())
        .map_err(|e| StartError::Invalid(e.0))?;
    let mut input: DeploymentRequest = env.request(
        req.version.clone(),
        req.image.clone(),
        req.image_digest.clone(),
        &req.deployer,
    );
    input.gates = req.gates.clone();
    input.triggered_by = req.triggered_by.clone();
    input.image_pushed_at = req.image_pushed_at;
    input
        .validate()
        .map_err(|e| StartError::Invalid(e.to_string()))?;
    // The environment's policy decides, not the request: nothing is locked or started.
    if env.is_protected()
        && let Some(why) = crate::registry::protection_refusal(Some(&service), &input)
    {
        return Err(StartError::Protected(why));
    }

    let now = deps.clock.now();
    match deps
        .store
        .acquire_lock(
            &req.service,
            &req.environment,
            &req.deployment_id,
            now,
            STALE_LOCK_AFTER,
        )
        .await?
    {
        LockOutcome::Acquired => {}
        LockOutcome::HeldBy(by) => {
            return Err(StartError::Locked {
                service: req.service.clone(),
                environment: req.environment.clone(),
                by,
            });
        }
    }
    match deps.executions.start(&req.deployment_id, &input).await {
        Ok(s) => {
            // In history from here on, with who asked for what; the execution's first phase
            // completes this record. The execution runs either way: if this write fails, its
            // first phase writes the record before anything else, so the caller is not told
            // that a running deployment failed to start.
            if let Err(e) = deps
                .store
                .record_request(&input.requested_record(&req.deployment_id, &s.execution_arn, now))
                .await
            {
                tracing::warn!(
                    deployment_id = %req.deployment_id,
                    error = %e,
                    "started, but not yet recorded; its first phase records it"
                );
            }
            if s.already_existed {
                let target = (req.service.clone(), req.environment.clone());
                if s.target.as_ref() != Some(&target) {
                    // Another environment's execution has this name: it will never release
                    // this environment's lock.
                    deps.store
                        .release_lock(&req.service, &req.environment, &req.deployment_id)
                        .await?;
                    return Err(StartError::IdTaken {
                        id: req.deployment_id.to_string(),
                        owner: s
                            .target
                            .map(|(s, e)| format!("{s}/{e}"))
                            .unwrap_or_else(|| "an execution of unknown input".to_string()),
                    });
                }
                // A redelivered start of a deployment whose execution has ended (whatever its
                // record says, if it has one) must not leave the environment locked by it.
                let ended = !s.running
                    || deps
                        .store
                        .deployment(&req.deployment_id)
                        .await?
                        .is_some_and(|r| r.phase.is_terminal());
                if ended {
                    deps.store
                        .release_lock(&req.service, &req.environment, &req.deployment_id)
                        .await?;
                }
            }
            tracing::info!(
                deployment_id = %req.deployment_id,
                execution_arn = %s.execution_arn,
                duplicate = s.already_existed,
                "deployment started"
            );
            Ok(Started {
                deployment_id: req.deployment_id.to_string(),
                execution_arn: s.execution_arn,
                duplicate: s.already_existed,
            })
        }
        Err(e) => {
            // Nothing runs under this id: free the environment again.
            deps.store
                .release_lock(&req.service, &req.environment, &req.deployment_id)
                .await?;
            Err(StartError::Aws(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::sample;
    use crate::fakes::{FakeExecutions, FakeRegistry, FakeStore, FixedClock};
    use crate::registry::{EnvironmentConfig, ServiceConfig};

    struct World {
        deps: StartDeps,
        registry: Arc<FakeRegistry>,
        store: Arc<FakeStore>,
        executions: Arc<FakeExecutions>,
        clock: Arc<FixedClock>,
    }

    async fn world() -> World {
        let registry = Arc::new(FakeRegistry::default());
        let mut v = sample::request();
        for k in ["version", "image", "deployer"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        let env: EnvironmentConfig = serde_json::from_value(v).unwrap();
        registry.put_environment(&env).await.unwrap();
        registry
            .put_service(&ServiceConfig {
                service: crate::fakes::sample::id("checkout"),
                repository: "checkout".into(),
                release_pattern: crate::registry::DEFAULT_RELEASE_PATTERN.into(),
                auto_deploy: vec![crate::fakes::sample::id("dev")],
                promotion: Default::default(),
                accounts: vec![crate::fakes::sample::id("210987654321")],
                evidence_recorders: Default::default(),
                github_logins: Default::default(),
            })
            .await
            .unwrap();
        let store = Arc::new(FakeStore::default());
        let executions = Arc::new(FakeExecutions::default());
        let clock = Arc::new(FixedClock::at(
            time::macros::datetime!(2025-01-03 10:00:00 UTC),
        ));
        World {
            deps: StartDeps {
                registry: registry.clone(),
                store: store.clone(),
                executions: executions.clone(),
                clock: clock.clone(),
            },
            registry,
            store,
            executions,
            clock,
        }
    }

    fn req(id: &str, env: &str) -> StartRequest {
        StartRequest {
            deployment_id: crate::fakes::sample::id(id),
            service: "checkout".into(),
            environment: env.into(),
            version: Version::parse("1.3.0").unwrap(),
            image: ImageRef::parse(sample::IMAGE_V130).unwrap(),
            image_digest: None,
            deployer: "arn:aws:iam::123456789012:user/alice".into(),
            triggered_by: None,
            gates: None,
            image_pushed_at: None,
        }
    }

    #[tokio::test]
    async fn starts_the_state_machine_with_the_registry_wiring_and_the_caller_as_deployer() {
        let w = world().await;
        let s = start(&w.deps, &req("d-1", "dev")).await.unwrap();
        assert_eq!((s.deployment_id.as_str(), s.duplicate), ("d-1", false));
        let started = w.executions.started.lock().unwrap().clone();
        assert_eq!(started.len(), 1);
        assert_eq!(
            started[0].1.deployer,
            "arn:aws:iam::123456789012:user/alice"
        );
        assert_eq!(started[0].1.alarms, vec![sample::ALARM.to_string()]);
        // in history from the start: who asked for what, colors not read yet
        let r = w
            .store
            .record("d-1")
            .unwrap_or_else(|| panic!("a started deployment has no record"));
        assert_eq!(
            (r.phase, r.deployer.as_str(), r.version.as_str(), r.colors()),
            (
                crate::domain::Phase::Requested,
                "arn:aws:iam::123456789012:user/alice",
                "1.3.0",
                None
            )
        );
        assert_eq!(r.execution_arn, s.execution_arn);
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some("d-1".into())
        );
    }

    #[tokio::test]
    async fn a_start_whose_request_record_is_not_written_still_reports_the_running_execution() {
        use crate::faults::{FaultRates, Faults, FaultyStore};
        // GIVEN the table answers the id check (call 0) and takes the lock (call 1), then
        // throttles every call after it
        let w = world().await;
        let faults = Faults::new(1, FaultRates::none());
        let later = faults.clone();
        faults.interleave(
            1,
            false,
            Box::new(move || {
                Box::pin(async move {
                    let mut throttled = FaultRates::none();
                    throttled.throttle = 1.0;
                    later.set_rates(throttled);
                })
            }),
        );
        let deps = StartDeps {
            store: Arc::new(FaultyStore {
                inner: w.store.clone(),
                faults: faults.clone(),
            }),
            ..w.deps
        };
        // WHEN it starts
        let s = start(&deps, &req("d-1", "dev")).await;
        // THEN the execution that runs is reported (its first phase will record it) and the
        // environment stays held by it
        assert_eq!(s.map(|s| s.deployment_id), Ok("d-1".to_string()));
        assert_eq!(w.executions.started_names(), vec!["d-1"]);
        assert!(w.store.record("d-1").is_none());
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some("d-1".into())
        );
    }

    /// checkout/dev's configuration, as prd (not registered).
    async fn prd_config(w: &World) -> EnvironmentConfig {
        let mut prd = w
            .registry
            .environment_config("checkout", "dev")
            .await
            .unwrap()
            .unwrap();
        prd.environment = crate::fakes::sample::id("prd");
        prd
    }

    async fn with_prd(w: &World) {
        let prd = prd_config(w).await;
        w.registry.put_environment(&prd).await.unwrap();
    }

    fn holder(w: &World, env: &str) -> Option<String> {
        w.store
            .env("checkout", env)
            .and_then(|e| e.active_deployment)
    }

    /// Finding 2 of the security review: an environment whose role is in an account its
    /// service does not list (registered before the account was removed, or written to the
    /// table by hand) starts nothing: refused before the lock and before any call.
    #[tokio::test]
    async fn an_environment_pointing_at_another_teams_role_is_refused_before_any_call() {
        let w = world().await;
        let mut prd = prd_config(&w).await;
        prd.protected = Some(false); // the role is what is under test here
        prd.role_arn = Some(crate::fakes::sample::id(
            "arn:aws:iam::555555555555:role/bluegreen-environment-search-prd",
        ));
        w.registry.put_environment(&prd).await.unwrap();
        let err = start(&w.deps, &req("d-1", "prd")).await.unwrap_err();
        assert!(
            matches!(&err, StartError::Invalid(m) if m.contains("555555555555")),
            "{err:?}"
        );
        assert_eq!(holder(&w, "prd"), None);
        assert!(w.executions.started_names().is_empty());
        // a role in an account checkout lists is fine
        prd.role_arn = Some(crate::fakes::sample::id(
            "arn:aws:iam::210987654321:role/bluegreen-environment-checkout-prd",
        ));
        w.registry.put_environment(&prd).await.unwrap();
        start(&w.deps, &req("d-1", "prd")).await.unwrap();
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn promoted(id: &str, image: &str, passed: bool) -> StartRequest {
        use crate::domain::{Gate, GateResult};
        StartRequest {
            image: ImageRef::parse(image).unwrap(),
            image_digest: Some(crate::fakes::sample::id(DIGEST)),
            gates: Some(
                Gate::ALL
                    .iter()
                    .map(|g| GateResult {
                        gate: *g,
                        passed: passed || *g != Gate::Performance,
                        detail: "checked".into(),
                        upstream: None,
                    })
                    .collect(),
            ),
            ..req(id, "prd")
        }
    }

    /// Finding 1 of the security review: production is protected by default. A plain start
    /// (the API's POST of a deployment, an image push), a promotion whose gates failed, an
    /// image by tag and an image from another registry are all refused before the lock; a
    /// promotion of the registered repository's image pinned by digest starts.
    #[tokio::test]
    async fn a_protected_environment_takes_only_promotions_of_registered_images_by_digest() {
        let w = world().await;
        with_prd(&w).await;
        let registered = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout@{DIGEST}");
        let refused = [
            (req("d-1", "prd"), "only through promotion"),
            (promoted("d-1", &registered, false), "did not all pass"),
            (
                StartRequest {
                    image: ImageRef::parse(sample::IMAGE_V130).unwrap(),
                    ..promoted("d-1", &registered, true)
                },
                "pinned by its digest",
            ),
            (
                promoted(
                    "d-1",
                    &format!("docker.io/attacker/checkout@{DIGEST}"),
                    true,
                ),
                "registered ECR repository checkout",
            ),
            (
                promoted(
                    "d-1",
                    &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/payments@{DIGEST}"),
                    true,
                ),
                "registered ECR repository checkout",
            ),
        ];
        for (r, why) in refused {
            let err = start(&w.deps, &r).await.unwrap_err();
            assert!(
                matches!(&err, StartError::Protected(m) if m.contains(why)),
                "{}: {err:?}",
                r.image
            );
            assert_eq!(holder(&w, "prd"), None, "nothing locked");
            assert!(w.executions.started_names().is_empty(), "nothing started");
        }
        let s = start(&w.deps, &promoted("d-1", &registered, true))
            .await
            .unwrap();
        assert_eq!(s.deployment_id, "d-1");
        // an environment marked unprotected takes plain starts
        let mut prd = prd_config(&w).await;
        prd.environment = crate::fakes::sample::id("prd2");
        prd.protected = Some(false);
        w.registry.put_environment(&prd).await.unwrap();
        start(&w.deps, &req("d-2", "prd2")).await.unwrap();
        // and one marked protected refuses them whatever its name
        let mut qa = prd_config(&w).await;
        qa.environment = crate::fakes::sample::id("qa");
        qa.protected = Some(true);
        w.registry.put_environment(&qa).await.unwrap();
        assert!(matches!(
            start(&w.deps, &req("d-3", "qa")).await,
            Err(StartError::Protected(_))
        ));
    }

    /// An id is one environment's: reusing another environment's deployment id (an
    /// Idempotency-Key, a promotion) is refused before anything is locked or started.
    #[tokio::test]
    async fn an_id_of_another_environments_deployment_is_refused_before_locking() {
        let w = world().await;
        with_prd(&w).await;
        start(&w.deps, &req("d-1", "dev")).await.unwrap();
        let err = start(&w.deps, &req("d-1", "prd")).await.unwrap_err();
        assert_eq!(
            err,
            StartError::IdTaken {
                id: "d-1".into(),
                owner: "checkout/dev".into()
            }
        );
        assert_eq!(holder(&w, "prd"), None, "prd stays free");
        assert_eq!(w.executions.started_names(), vec!["d-1"]);
    }

    /// An execution of that name that deploys another environment (here one that was never
    /// recorded) is refused, and this environment's lock is released at once.
    #[tokio::test]
    async fn an_existing_execution_of_another_environment_is_refused_and_unlocks() {
        let w = world().await;
        with_prd(&w).await;
        let mut prd: DeploymentRequest = serde_json::from_value(sample::request()).unwrap();
        prd.environment = crate::fakes::sample::id("prd");
        w.executions.start("d-9", &prd).await.unwrap();
        let err = start(&w.deps, &req("d-9", "dev")).await.unwrap_err();
        assert_eq!(
            err,
            StartError::IdTaken {
                id: "d-9".into(),
                owner: "checkout/prd".into()
            }
        );
        assert_eq!(
            holder(&w, "dev"),
            None,
            "dev is not held by prd's execution"
        );
    }

    /// A start under the name of an execution that has ended (and whose record says nothing
    /// terminal, or is missing) does not leave the environment locked.
    #[tokio::test]
    async fn a_start_under_an_ended_executions_name_leaves_the_environment_unlocked() {
        let w = world().await;
        start(&w.deps, &req("d-1", "dev")).await.unwrap();
        // its execution ends before any phase ran; the end released the lock
        w.executions.ended.lock().unwrap().push("d-1".into());
        w.store
            .release_lock("checkout", "dev", "d-1")
            .await
            .unwrap();
        // a redelivered start of d-1 takes the lock again, finds the ended execution...
        let again = start(&w.deps, &req("d-1", "dev")).await.unwrap();
        assert!(again.duplicate);
        // ...and frees it: the REQUESTED record alone does not keep it
        assert_eq!(holder(&w, "dev"), None);
        start(&w.deps, &req("d-2", "dev")).await.unwrap();
        assert_eq!(holder(&w, "dev").as_deref(), Some("d-2"));
    }

    #[tokio::test]
    async fn a_second_start_is_refused_naming_the_first_and_a_repeat_is_idempotent() {
        let w = world().await;
        start(&w.deps, &req("d-1", "dev")).await.unwrap();
        let again = start(&w.deps, &req("d-1", "dev")).await.unwrap();
        assert!(again.duplicate);
        let err = start(&w.deps, &req("d-2", "dev")).await.unwrap_err();
        assert_eq!(
            err,
            StartError::Locked {
                service: "checkout".into(),
                environment: "dev".into(),
                by: "d-1".into()
            }
        );
        assert!(
            err.to_string()
                .contains("already has a deployment running: d-1")
        );
        assert_eq!(w.executions.started_names(), vec!["d-1"]);
    }

    #[tokio::test]
    async fn a_start_redelivered_after_the_deployment_ended_leaves_the_environment_free() {
        let w = world().await;
        start(&w.deps, &req("d-1", "dev")).await.unwrap();
        // the deployment ran and finished (its record is terminal, its lock released)
        let mut r = sample::record(crate::domain::Phase::Succeeded);
        r.id = "d-1".into();
        w.store.records.lock().unwrap().insert("d-1".into(), r);
        w.store
            .release_lock("checkout", "dev", "d-1")
            .await
            .unwrap();
        // WHEN the same start arrives again
        let again = start(&w.deps, &req("d-1", "dev")).await.unwrap();
        // THEN nothing new runs and the environment is not left locked
        assert!(again.duplicate);
        assert_eq!(w.executions.started_names(), vec!["d-1"]);
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
    }

    #[tokio::test]
    async fn unknown_service_or_environment_changes_nothing() {
        let w = world().await;
        let mut r = req("d-1", "prd");
        assert_eq!(
            start(&w.deps, &r).await.unwrap_err(),
            StartError::UnknownEnvironment("checkout".into(), "prd".into())
        );
        r.service = "billing".into();
        assert!(matches!(
            start(&w.deps, &r).await.unwrap_err(),
            StartError::UnknownService(_)
        ));
        assert!(w.executions.started_names().is_empty());
        assert!(w.store.env("checkout", "prd").is_none());
        // a malformed deployment id cannot reach a start: it is not a DeploymentId
        assert!(DeploymentId::parse("has space").is_err());
        let _ = (&w.registry, &w.clock);
    }

    #[tokio::test]
    async fn a_failed_start_releases_the_lock() {
        let w = world().await;
        w.executions
            .fail_next_starts
            .lock()
            .unwrap()
            .push(AdapterError::Other("StateMachineDoesNotExist".into()));
        assert!(matches!(
            start(&w.deps, &req("d-1", "dev")).await,
            Err(StartError::Aws(_))
        ));
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
        start(&w.deps, &req("d-2", "dev")).await.unwrap();
    }

    #[tokio::test]
    async fn a_lock_whose_start_crashed_is_taken_over_after_ten_minutes() {
        let w = world().await;
        // GIVEN a start that took the lock and died before the execution made a record
        w.store
            .acquire_lock("checkout", "dev", "ghost", w.clock.now(), STALE_LOCK_AFTER)
            .await
            .unwrap();
        assert!(matches!(
            start(&w.deps, &req("d-1", "dev")).await,
            Err(StartError::Locked { .. })
        ));
        // WHEN ten minutes have passed THEN the next start takes it over
        w.clock.advance(601);
        start(&w.deps, &req("d-1", "dev")).await.unwrap();
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            Some("d-1".into())
        );
    }

    mod properties {
        use super::*;
        use crate::domain::{DeploymentStatus, Phase};
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};

        const ENVS: [&str; 2] = ["dev", "tst"];

        #[derive(Debug, Clone)]
        enum Op {
            /// A start of deployment `k` of an environment (API call or trigger delivery; any
            /// of them may be a duplicate).
            Start { k: u8, env: usize },
            /// The deployment holding the environment ran and ended (record terminal, lock
            /// released), as its execution does.
            End { env: usize },
        }

        fn ops() -> impl Strategy<Value = Vec<Op>> {
            prop::collection::vec(
                prop_oneof![
                    4 => (0u8..3, 0..ENVS.len()).prop_map(|(k, env)| Op::Start { k, env }),
                    1 => (0..ENVS.len()).prop_map(|env| Op::End { env }),
                ],
                1..30,
            )
        }

        fn id(k: u8, env: &str) -> String {
            format!("checkout-{env}-{k}")
        }

        async fn end(w: &World, env: &str, holder: &str) {
            let mut r = sample::record(Phase::RollingBack);
            r.id = holder.into();
            r.environment = env.into();
            r.execution_arn = FakeExecutions::arn(holder);
            assert!(matches!(
                w.store.begin(&r).await.unwrap(),
                crate::ports::BeginOutcome::Started
            ));
            r.phase = Phase::Failed;
            r.status = DeploymentStatus::of(Phase::Failed);
            let state = w.store.env("checkout", env).unwrap();
            w.store.finish(&r, &state).await.unwrap();
        }

        async fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
            let w = world().await;
            let mut tst = sample::World::environment_config();
            tst.environment = crate::fakes::sample::id("tst");
            w.registry.put_environment(&tst).await.unwrap();
            // The model: who holds each environment, which executions exist, which ended.
            let mut holder: BTreeMap<&str, String> = BTreeMap::new();
            let mut executions: BTreeSet<String> = BTreeSet::new();
            let mut ended: BTreeSet<String> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Start { k, env } => {
                        let env = ENVS[env];
                        let id = id(k, env);
                        let got = start(&w.deps, &req(&id, env)).await;
                        match holder.get(env).filter(|h| **h != id) {
                            Some(h) => prop_assert_eq!(
                                got,
                                Err(StartError::Locked {
                                    service: "checkout".into(),
                                    environment: env.into(),
                                    by: h.clone(),
                                })
                            ),
                            None => {
                                let started =
                                    got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                                prop_assert_eq!(started.duplicate, executions.contains(&id));
                                executions.insert(id.clone());
                                if ended.contains(&id) {
                                    holder.remove(env);
                                } else {
                                    holder.insert(env, id);
                                }
                            }
                        }
                    }
                    Op::End { env } => {
                        let env = ENVS[env];
                        if let Some(h) = holder.remove(env) {
                            end(&w, env, &h).await;
                            ended.insert(h);
                        }
                    }
                }
                // One execution per deployment id, however often it was started; the lock is
                // held by exactly the deployment the model says, in each environment.
                let names = w.executions.started_names();
                prop_assert_eq!(
                    names.iter().cloned().collect::<BTreeSet<_>>(),
                    executions.clone()
                );
                prop_assert_eq!(names.len(), executions.len());
                for env in ENVS {
                    let held = w
                        .store
                        .env("checkout", env)
                        .and_then(|e| e.active_deployment);
                    prop_assert_eq!(held.as_ref(), holder.get(env));
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any sequence of starts (duplicates included) and endings over two environments:
            /// at most one deployment holds each environment; a start while another holds it
            /// is refused naming the holder; a repeated start is a duplicate that starts
            /// nothing; a redelivered start of an ended deployment leaves the environment free.
            #[test]
            fn arbitrary_start_sequences_keep_one_active_deployment_per_environment(ops in ops()) {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                rt.block_on(check(ops))?;
            }
        }
    }
}
