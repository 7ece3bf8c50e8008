//! The service registry: how each service's environments are wired (listener or rule, target
//! groups, compute, alarms, plan, the role to act with) and which image pushes deploy where.
//! Everything is validated on write, so a deployment built from it is valid.

use crate::contracts::{ComputeConfig, DeploymentRequest, TrafficConfig};
use crate::domain::principal::{github_login_ok, iam_principal_ok, role_session_ok};
use crate::domain::{
    AccountId, ApprovalPolicy, EnvironmentName, EvidenceRecorders, ImageDigest, ImageRef,
    PromotionPolicy, RoleArn, ServiceName, StepPlan, Thresholds, Timings, Version, is_account_id,
};
use crate::error::PhaseError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tags that deploy by default: plain semantic versions (`1.3.0`, `v1.3.0`).
pub const DEFAULT_RELEASE_PATTERN: &str = r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$";

fn default_release_pattern() -> String {
    DEFAULT_RELEASE_PATTERN.to_string()
}

fn default_auto_deploy() -> Vec<EnvironmentName> {
    EnvironmentName::parse("dev").into_iter().collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

impl From<InvalidConfig> for PhaseError {
    fn from(e: InvalidConfig) -> Self {
        PhaseError::InvalidInput(e.0)
    }
}

/// A service: where its images come from and which pushes deploy it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub service: ServiceName,
    /// The ECR repository whose pushes release this service, e.g. `checkout`.
    pub repository: String,
    /// A pushed tag deploys only if it matches this regular expression (and is a semantic version).
    #[serde(default = "default_release_pattern")]
    pub release_pattern: String,
    /// The environments a matching push deploys to.
    #[serde(
        default = "default_auto_deploy",
        deserialize_with = "auto_deploy_names"
    )]
    pub auto_deploy: Vec<EnvironmentName>,
    /// What promoting a version of this service requires.
    #[serde(default)]
    pub promotion: PromotionPolicy,
    /// The accounts (12 digits) whose roles this service's environments may name as
    /// `role_arn`. Empty: its environments act in the controller's own account only.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "account_ids"
    )]
    pub accounts: Vec<AccountId>,
    /// Per kind of promotion evidence, the IAM principals (role or user ARNs) whose recordings
    /// of that kind are accepted and counted by the gates. A kind nobody is listed for is not
    /// accepted at all.
    #[serde(default, skip_serializing_if = "EvidenceRecorders::is_empty")]
    pub evidence_recorders: EvidenceRecorders,
    /// IAM principals (role or user ARNs, or one role session's ARN) of people and the GitHub
    /// logins they go by, so the person who triggered a CI run cannot approve what it started
    /// when their AWS name is not their GitHub login.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub github_logins: BTreeMap<String, String>,
}

/// A list of checked names whose errors say which field held the bad one.
fn names_of<'de, D, T>(d: D, field: &str) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<String, Error = crate::domain::InvalidName>,
{
    Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|s| T::try_from(s).map_err(|e| serde::de::Error::custom(format!("{field}: {e}"))))
        .collect()
}

fn auto_deploy_names<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<EnvironmentName>, D::Error> {
    names_of(d, "auto_deploy")
}

fn account_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<AccountId>, D::Error> {
    names_of(d, "accounts")
}

/// At most this many entries in `github_logins`.
const MAX_GITHUB_LOGINS: usize = 200;

/// The fields of a service that only an administrator changes (`PUT /services/{service}/policy`,
/// granted by the stack's admin policy with MFA): the accounts its environments may act in,
/// what its promotions require, whose evidence counts, and which GitHub login each approver
/// goes by. The service's own `PUT` keeps them as stored.
pub const SERVICE_POLICY_FIELDS: &[&str] = &[
    "accounts",
    "promotion",
    "evidence_recorders",
    "github_logins",
];

/// The fields of an environment that only an administrator changes
/// (`PUT /services/{service}/environments/{environment}/policy`): its protection and approval.
pub const ENVIRONMENT_POLICY_FIELDS: &[&str] = &["protected", "approval"];

/// A service's administrator-governed settings, as they take effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePolicy {
    pub accounts: Vec<AccountId>,
    pub promotion: PromotionPolicy,
    pub evidence_recorders: EvidenceRecorders,
    pub github_logins: BTreeMap<String, String>,
}

impl Default for ServicePolicy {
    /// A new service's: no other account, the default gates, no evidence recorder (so no
    /// evidence is accepted), no GitHub login known.
    fn default() -> Self {
        ServicePolicy {
            accounts: vec![],
            promotion: PromotionPolicy::default(),
            evidence_recorders: EvidenceRecorders::default(),
            github_logins: BTreeMap::new(),
        }
    }
}

/// An environment's administrator-governed settings, as they take effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentPolicy {
    pub protected: bool,
    pub approval: ApprovalPolicy,
}

impl EnvironmentPolicy {
    /// A new environment's: production environments are protected and need approval.
    pub fn default_for(environment: &str) -> Self {
        EnvironmentPolicy {
            protected: protected_by_default(environment),
            approval: ApprovalPolicy::default_for(environment),
        }
    }
}

/// Why a write that is not an administrator's would change `what`'s governed settings
/// (`None` when it keeps them): `stored` is what the registry holds, `new` what would be.
pub fn policy_change<P: PartialEq + Serialize>(what: &str, stored: &P, new: &P) -> Option<String> {
    if stored == new {
        return None;
    }
    let show = |p: &P| serde_json::to_string(p).unwrap_or_else(|e| format!("({e})"));
    Some(format!(
        "{what}: this request would change {} to {}",
        show(stored),
        show(new)
    ))
}

/// Why a pushed tag does not deploy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagRejected {
    #[error("tag {0:?} does not match the release pattern {1}")]
    NotARelease(String, String),
    #[error("tag {0:?} matches the release pattern but is not a semantic version")]
    NotSemver(String),
}

/// The account of an ECR private registry host
/// (`<12-digit account>.dkr.ecr.<region>.amazonaws.com[.cn]`).
fn ecr_account(host: &str) -> Option<&str> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let parts: Vec<&str> = rest.split('.').collect();
    match parts.as_slice() {
        [account, "dkr", "ecr", region]
            if is_account_id(account)
                && !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// Why `req` may not run in a protected environment of `service` (`None` when it may): it
/// must come through promotion with every gate passed, pinned by its digest, from the
/// service's registered repository.
pub fn protection_refusal(
    service: Option<&ServiceConfig>,
    req: &DeploymentRequest,
) -> Option<String> {
    let env = format!("{}/{}", req.service, req.environment);
    let promote = format!(
        "promote it with POST /services/{}/environments/{}/promotions (bluegreen promote)",
        req.service, req.environment
    );
    match &req.gates {
        None => {
            return Some(format!(
                "{env} is protected: deployments there go only through promotion, which checks the gates; {promote}"
            ));
        }
        Some(gates) if gates.is_empty() || gates.iter().any(|g| !g.passed) => {
            return Some(format!(
                "{env} is protected: the promotion's gates did not all pass; {promote}"
            ));
        }
        Some(_) => {}
    }
    match (&req.image_digest, req.image.digest()) {
        (Some(d), Some(pinned)) if d == pinned => {}
        _ => {
            return Some(format!(
                "{env} is protected: the image must be pinned by its digest (<repository>@sha256:...), and {} is not",
                req.image
            ));
        }
    }
    let Some(service) = service else {
        return Some(format!(
            "{env} is protected and service {:?} is not in the registry: its images' repository is unknown",
            req.service
        ));
    };
    service
        .registered_image(&req.image)
        .err()
        .map(|why| format!("{env} is protected: {why}"))
}

fn repository_ok(s: &str) -> bool {
    // ECR: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2-256 characters
    (2..=256).contains(&s.len())
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
}

impl ServiceConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bad = |m: String| Err(InvalidConfig(m));
        if !repository_ok(&self.repository) {
            return bad(format!(
                "repository {:?} is not an ECR repository name (lowercase, digits, . _ - and / separators)",
                self.repository
            ));
        }
        if self.release_pattern.len() > 256 {
            return bad("release_pattern must be at most 256 characters".into());
        }
        regex_lite::Regex::new(&self.release_pattern).map_err(|e| {
            InvalidConfig(format!(
                "release_pattern is not a valid regular expression: {e}"
            ))
        })?;
        if self.auto_deploy.len() > 10 {
            return bad("auto_deploy: at most 10 environment names of [A-Za-z0-9_-]".into());
        }
        if self.accounts.len() > 20 {
            return bad("accounts: at most 20 AWS account ids of 12 digits".into());
        }
        self.evidence_recorders.validate().map_err(InvalidConfig)?;
        if self.github_logins.len() > MAX_GITHUB_LOGINS {
            return bad(format!(
                "github_logins: at most {MAX_GITHUB_LOGINS} entries"
            ));
        }
        for (who, login) in &self.github_logins {
            if !(iam_principal_ok(who) || role_session_ok(who)) {
                return bad(format!(
                    "github_logins: {who:?} is not an IAM role or user ARN or a role session ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>)"
                ));
            }
            if !github_login_ok(login) {
                return bad(format!(
                    "github_logins: {login:?} (for {who}) is not a GitHub login (1-39 letters, digits or single hyphens)"
                ));
            }
        }
        self.promotion.validate().map_err(InvalidConfig)
    }

    /// The administrator-governed settings in force.
    pub fn policy(&self) -> ServicePolicy {
        ServicePolicy {
            accounts: self.accounts.clone(),
            promotion: self.promotion.clone(),
            evidence_recorders: self.evidence_recorders.clone(),
            github_logins: self.github_logins.clone(),
        }
    }

    /// Whether an environment of this service may act through `role_arn` (none: always). A
    /// role in an account the service does not list is refused, so one team's environment
    /// cannot point the controller at another team's role.
    pub fn allows_role(&self, role_arn: Option<&RoleArn>) -> Result<(), InvalidConfig> {
        let Some(role) = role_arn else {
            return Ok(());
        };
        let account = role.account();
        if self.accounts.iter().any(|a| a == account) {
            return Ok(());
        }
        Err(InvalidConfig(format!(
            "role_arn {role} is in account {account:?}, which service {} does not list in its accounts ({}); an administrator adds the account with PUT /services/{}/policy",
            self.service,
            if self.accounts.is_empty() {
                "none: its environments act in the controller's account".to_string()
            } else {
                self.accounts
                    .iter()
                    .map(AccountId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.service
        )))
    }

    /// The registry (account id) of `image` if it comes from this service's registered ECR
    /// repository (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>`), or why not.
    pub fn registered_image(&self, image: &ImageRef) -> Result<String, String> {
        let full = image.repository();
        let wanted = || {
            format!(
                "{image} is not from {}'s registered ECR repository {} (<account>.dkr.ecr.<region>.amazonaws.com/{})",
                self.service, self.repository, self.repository
            )
        };
        let Some((host, path)) = full.split_once('/') else {
            return Err(wanted());
        };
        match ecr_account(host) {
            Some(account) if path == self.repository => Ok(account.to_string()),
            _ => Err(wanted()),
        }
    }

    /// The version a pushed tag releases, or why it does not.
    pub fn release_version(&self, tag: &str) -> Result<Version, TagRejected> {
        let matches = regex_lite::Regex::new(&self.release_pattern)
            .map(|re| re.is_match(tag))
            .unwrap_or(false);
        if !matches {
            return Err(TagRejected::NotARelease(
                tag.to_string(),
                self.release_pattern.clone(),
            ));
        }
        Version::parse(tag).map_err(|_| TagRejected::NotSemver(tag.to_string()))
    }
}

/// One environment of a service: everything a deployment there needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    pub service: ServiceName,
    pub environment: EnvironmentName,
    pub traffic: TrafficConfig,
    pub compute: ComputeConfig,
    #[serde(default)]
    pub alarms: Vec<String>,
    #[serde(default)]
    pub steps: StepPlan,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The IAM role the phases assume to act in this environment's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<RoleArn>,
    /// Whether deployments here wait for a person's approval. Absent: production environments
    /// (`prd`, `prod`, `production`) require it with a 24-hour timeout; others do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
    /// Whether deployments here go only through promotion (the gates, then approval if it is
    /// required), pinned by digest to an image of the service's registered ECR repository.
    /// Absent: production environments (`prd`, `prod`, `production`) are protected; others
    /// are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

/// Whether an environment of this name is protected when its registry entry does not say.
pub fn protected_by_default(environment: &str) -> bool {
    crate::domain::promotion::is_production(environment)
}

impl EnvironmentConfig {
    /// A deployment request for `version` of `image` here.
    pub fn request(
        &self,
        version: Version,
        image: ImageRef,
        image_digest: Option<ImageDigest>,
        deployer: &str,
    ) -> DeploymentRequest {
        DeploymentRequest {
            service: self.service.clone(),
            environment: self.environment.clone(),
            version,
            image,
            image_digest,
            deployer: deployer.to_string(),
            triggered_by: None,
            traffic: self.traffic.clone(),
            compute: self.compute.clone(),
            alarms: self.alarms.clone(),
            steps: self.steps.clone(),
            timings: self.timings.clone(),
            thresholds: self.thresholds.clone(),
            role_arn: self.role_arn.clone(),
            approval_timeout_seconds: Some(self.approval_policy())
                .filter(|p| p.required)
                .map(|p| p.timeout_seconds),
            gates: None,
            image_pushed_at: None,
        }
    }

    /// The administrator-governed settings in force.
    pub fn policy(&self) -> EnvironmentPolicy {
        EnvironmentPolicy {
            protected: self.is_protected(),
            approval: self.approval_policy(),
        }
    }

    /// Whether the environment is protected: configured, or the default for its name.
    pub fn is_protected(&self) -> bool {
        self.protected
            .unwrap_or_else(|| protected_by_default(&self.environment))
    }

    /// The approval policy in force: configured, or the default for the environment's name.
    pub fn approval_policy(&self) -> ApprovalPolicy {
        self.approval
            .clone()
            .unwrap_or_else(|| ApprovalPolicy::default_for(&self.environment))
    }

    /// Validates by building a sample request from it: the same rules as the execution input.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if let Some(a) = &self.approval {
            a.validate().map_err(InvalidConfig)?;
        }
        let sample = self.request(
            Version::parse("0.0.1").map_err(|e| InvalidConfig(e.to_string()))?,
            ImageRef::parse("registry.example/validation:0.0.1")
                .map_err(|e| InvalidConfig(e.to_string()))?,
            None,
            "registry",
        );
        sample.validate().map_err(|e| match e {
            PhaseError::InvalidInput(m) => InvalidConfig(m),
            other => InvalidConfig(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> ServiceConfig {
        serde_json::from_value(json!({"service": "checkout", "repository": "team/checkout"}))
            .unwrap()
    }

    #[test]
    fn services_default_to_semver_releases_into_dev() {
        let s = service();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.auto_deploy, vec!["dev"]);
        assert_eq!(
            s.release_version("1.3.0").map(|v| v.to_string()),
            Ok("1.3.0".into())
        );
        assert_eq!(
            s.release_version("v2.0.1").map(|v| v.to_string()),
            Ok("2.0.1".into())
        );
        for tag in ["latest", "1.3.0-rc.1", "1.3", "sha-abc123", "01.2.3"] {
            assert!(
                matches!(s.release_version(tag), Err(TagRejected::NotARelease(..))),
                "{tag}"
            );
        }
    }

    #[test]
    fn an_environment_may_name_roles_only_in_the_services_accounts() {
        let s = ServiceConfig {
            accounts: vec![crate::fakes::sample::id("210987654321")],
            ..service()
        };
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.allows_role(None), Ok(()));
        assert_eq!(
            s.allows_role(Some(&crate::fakes::sample::id(
                "arn:aws:iam::210987654321:role/bluegreen-environment-checkout-prd"
            ))),
            Ok(())
        );
        let other_team = s
            .allows_role(Some(&crate::fakes::sample::id(
                "arn:aws:iam::555555555555:role/bluegreen-environment-search-prd",
            )))
            .unwrap_err();
        assert!(
            other_team.0.contains("account \"555555555555\""),
            "{other_team}"
        );
        // by default, no account: environments act in the controller's own
        assert!(
            service()
                .allows_role(Some(&crate::fakes::sample::id(
                    "arn:aws:iam::210987654321:role/x"
                )))
                .is_err()
        );
        for bad in [
            vec!["12345".to_string()],
            vec!["x".repeat(12)],
            vec!["210987654321".to_string(); 21],
        ] {
            let read = serde_json::from_value::<ServiceConfig>(
                json!({"service": "checkout", "repository": "team/checkout", "accounts": bad}),
            );
            assert!(
                read.map_err(|e| e.to_string())
                    .and_then(|s| s.validate().map_err(|e| e.0))
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_custom_pattern_still_needs_semver() {
        let s = ServiceConfig {
            release_pattern: "^release-.*$".into(),
            ..service()
        };
        assert_eq!(
            s.release_version("release-x"),
            Err(TagRejected::NotSemver("release-x".into()))
        );
        let s = ServiceConfig {
            release_pattern: r"^\d+\.\d+\.\d+(-rc\.\d+)?$".into(),
            ..service()
        };
        assert!(s.release_version("1.3.0-rc.1").is_ok());
    }

    #[test]
    fn invalid_services_are_refused_with_the_field() {
        let cases = [
            (
                ServiceConfig {
                    repository: "Team/Checkout".into(),
                    ..service()
                },
                "repository",
            ),
            (
                ServiceConfig {
                    repository: "team//checkout".into(),
                    ..service()
                },
                "repository",
            ),
            (
                ServiceConfig {
                    release_pattern: "(".into(),
                    ..service()
                },
                "release_pattern",
            ),
        ];
        for (s, field) in cases {
            let err = s.validate().map_err(|e| e.0);
            assert!(
                err.as_ref().err().is_some_and(|m| m.contains(field)),
                "{field}: {err:?}"
            );
        }
        assert!(
            serde_json::from_value::<ServiceConfig>(
                json!({"service": "a", "repository": "a1", "extra": 1})
            )
            .is_err()
        );
        // names and accounts are checked as they are read, naming the field
        for (patch, field) in [
            (json!({"service": "bad name"}), "service \"bad name\""),
            (
                json!({"auto_deploy": ["dev", "d e v"]}),
                "auto_deploy: environment \"d e v\"",
            ),
            (
                json!({"accounts": ["12345"]}),
                "accounts: account id \"12345\"",
            ),
        ] {
            let mut v = json!({"service": "checkout", "repository": "team/checkout"});
            if let (Some(o), Some(p)) = (v.as_object_mut(), patch.as_object()) {
                o.extend(p.clone());
            }
            let err = serde_json::from_value::<ServiceConfig>(v).map_err(|e| e.to_string());
            assert!(
                err.as_ref().err().is_some_and(|m| m.contains(field)),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn evidence_recorders_and_github_logins_are_checked_on_write() {
        let ok: ServiceConfig = serde_json::from_value(json!({
            "service": "checkout", "repository": "team/checkout",
            "evidence_recorders": {"integration": ["arn:aws:iam::123456789012:role/ci-tests"],
                                   "compliance": ["arn:aws:iam::123456789012:role/audit/scanner"]},
            "github_logins": {"arn:aws:iam::123456789012:user/carol": "carol-gh",
                              "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_0a1b/alice@example.com": "alice"}
        }))
        .unwrap();
        assert_eq!(ok.validate(), Ok(()));
        // by default, no recorder: no evidence of any kind is accepted
        assert!(service().evidence_recorders.is_empty());
        for (patch, field) in [
            (
                json!({"evidence_recorders": {"e2e": ["*"]}}),
                "evidence_recorders.e2e",
            ),
            (
                json!({"evidence_recorders": {"performance": ["arn:aws:iam::123456789012:role/*"]}}),
                "evidence_recorders.performance",
            ),
            (
                json!({"github_logins": {"arn:aws:iam::123456789012:role/approver": "-alice"}}),
                "github_logins",
            ),
            (
                json!({"github_logins": {"alice": "alice"}}),
                "github_logins",
            ),
        ] {
            let mut v = json!({"service": "checkout", "repository": "team/checkout"});
            if let (Some(o), Some(p)) = (v.as_object_mut(), patch.as_object()) {
                o.extend(p.clone());
            }
            let s: ServiceConfig = serde_json::from_value(v).unwrap();
            let err = s.validate().map_err(|e| e.0);
            assert!(
                err.as_ref().err().is_some_and(|m| m.contains(field)),
                "{patch}: {err:?}"
            );
        }
        // an unknown kind is refused when parsed
        assert!(
            serde_json::from_value::<ServiceConfig>(json!({
                "service": "a", "repository": "a1", "evidence_recorders": {"smoke": []}
            }))
            .is_err()
        );
    }

    #[test]
    fn environment_configs_are_checked_like_execution_inputs() {
        let mut v = crate::fakes::sample::request();
        let o = v.as_object_mut().unwrap();
        for k in ["version", "image", "deployer"] {
            o.remove(k);
        }
        let env: EnvironmentConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(env.validate(), Ok(()));
        let req = env.request(
            Version::parse("1.3.0").unwrap(),
            ImageRef::parse("repo:1.3.0").unwrap(),
            None,
            "ci",
        );
        assert_eq!(
            (req.service.as_str(), req.deployer.as_str()),
            ("checkout", "ci")
        );
        let mut bad = env.clone();
        bad.traffic.green_target_group_arn = bad.traffic.blue_target_group_arn.clone();
        assert!(
            bad.validate()
                .is_err_and(|e| e.0.contains("different target groups"))
        );
        let mut bad = v;
        bad["role_arn"] = json!("not-an-arn");
        assert!(
            serde_json::from_value::<EnvironmentConfig>(bad)
                .is_err_and(|e| e.to_string().contains("role_arn \"not-an-arn\""))
        );
    }
}
