//! Promotion of one image through environments: the evidence CI records, the quarantine a
//! rollback puts on a version, the image scan summary, approvals, and the gate checklist that
//! decides whether a version may move from one environment to the next. Pure: callers read the
//! records and scan results; this judges them and says why, with the numbers.

use super::principal::{iam_principal_ok, principal};
use super::{DeploymentRecord, DeploymentStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;

/// Whether an environment name means production (approval is required there by default).
pub fn is_production(environment: &str) -> bool {
    matches!(
        environment.to_ascii_lowercase().as_str(),
        "prd" | "prod" | "production"
    )
}

// ---------------------------------------------------------------------------------------------
// Evidence
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Integration,
    E2e,
    Performance,
    Compliance,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Integration => "integration",
            EvidenceKind::E2e => "e2e",
            EvidenceKind::Performance => "performance",
            EvidenceKind::Compliance => "compliance",
        }
    }
}

/// Per kind of evidence, the IAM principals (role or user ARNs) whose recordings of that kind a
/// service accepts and its gates count. A kind nobody is listed for is not accepted at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecorders {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integration: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub e2e: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance: Vec<String>,
}

/// At most this many recorders per kind.
const MAX_RECORDERS: usize = 20;

impl EvidenceRecorders {
    pub const KINDS: [EvidenceKind; 4] = [
        EvidenceKind::Integration,
        EvidenceKind::E2e,
        EvidenceKind::Performance,
        EvidenceKind::Compliance,
    ];

    pub fn is_empty(&self) -> bool {
        Self::KINDS.iter().all(|k| self.of(*k).is_empty())
    }

    /// The principals listed for `kind`.
    pub fn of(&self, kind: EvidenceKind) -> &[String] {
        match kind {
            EvidenceKind::Integration => &self.integration,
            EvidenceKind::E2e => &self.e2e,
            EvidenceKind::Performance => &self.performance,
            EvidenceKind::Compliance => &self.compliance,
        }
    }

    /// Whether `caller` (any session of a listed role, or a listed user) may record `kind`.
    pub fn allows(&self, kind: EvidenceKind, caller: &str) -> bool {
        let who = principal(caller);
        self.of(kind).iter().any(|r| principal(r) == who)
    }

    pub fn validate(&self) -> Result<(), String> {
        for kind in Self::KINDS {
            let listed = self.of(kind);
            if listed.len() > MAX_RECORDERS {
                return Err(format!(
                    "evidence_recorders.{}: at most {MAX_RECORDERS} principals",
                    kind.as_str()
                ));
            }
            if let Some(bad) = listed.iter().find(|r| !iam_principal_ok(r)) {
                return Err(format!(
                    "evidence_recorders.{}: {bad:?} is not an IAM role or user ARN (arn:aws:iam::<12-digit account>:role/<name>)",
                    kind.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// One result CI recorded for a version in an environment. Append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Unique per recording (the API request that recorded it), so a retried request is not
    /// recorded twice.
    pub id: String,
    pub service: String,
    pub version: String,
    pub environment: String,
    pub kind: EvidenceKind,
    #[serde(default)]
    pub passed: Option<u32>,
    #[serde(default)]
    pub total: Option<u32>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub controls_passed: Option<u32>,
    #[serde(default)]
    pub controls_total: Option<u32>,
    #[serde(default)]
    pub link: Option<String>,
    /// The image the results are for (required when recorded; evidence stored before it was
    /// has none, and counts for no image).
    #[serde(default)]
    pub image_digest: Option<String>,
    pub recorded_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvidence(pub String);

impl Evidence {
    /// The fields each kind needs, with consistent numbers.
    pub fn validate(&self) -> Result<(), InvalidEvidence> {
        let bad = |m: String| Err(InvalidEvidence(m));
        let counts = |passed: Option<u32>, total: Option<u32>, what: &str| match (passed, total) {
            (Some(p), Some(t)) if p <= t && t > 0 => Ok(()),
            (Some(_), Some(_)) => Err(InvalidEvidence(format!(
                "{what}: passed must be at most total, and total at least 1"
            ))),
            _ => Err(InvalidEvidence(format!("{what}: both are required"))),
        };
        match self.kind {
            EvidenceKind::Integration | EvidenceKind::E2e => {
                counts(self.passed, self.total, "passed and total")?
            }
            EvidenceKind::Performance => match self.p99_ms {
                Some(v) if v.is_finite() && v >= 0.0 => {}
                _ => return bad("p99_ms: a non-negative number of milliseconds is required".into()),
            },
            EvidenceKind::Compliance => counts(
                self.controls_passed,
                self.controls_total,
                "controls_passed and controls_total",
            )?,
        }
        if let Some(link) = &self.link
            && (link.len() > 2048 || !(link.starts_with("https://") || link.starts_with("http://")))
        {
            return bad("link must be an http(s) URL of at most 2048 characters".into());
        }
        match &self.image_digest {
            Some(d) => {
                super::ImageDigest::parse(d).map_err(|e| InvalidEvidence(e.to_string()))?;
            }
            None => {
                return bad(
                    "image_digest is required (sha256:<64 lowercase hex>): results count only for the image they were measured on"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Quarantine and scans
// ---------------------------------------------------------------------------------------------

/// A version rolled back somewhere: it is not promoted until someone clears it with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    pub service: String,
    pub version: String,
    pub environment: String,
    pub deployment_id: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(default)]
    pub cleared: bool,
    #[serde(default)]
    pub cleared_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub cleared_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub clear_reason: Option<String>,
}

impl Quarantine {
    /// The quarantine a rolled-back deployment puts on its version.
    pub fn of(record: &DeploymentRecord, now: OffsetDateTime) -> Self {
        Quarantine {
            service: record.service.clone(),
            version: record.version.clone(),
            environment: record.environment.clone(),
            deployment_id: record.id.clone(),
            reason: record
                .reason
                .clone()
                .unwrap_or_else(|| "rolled back".to_string()),
            since: now,
            cleared: false,
            cleared_by: None,
            cleared_at: None,
            clear_reason: None,
        }
    }
}

/// What an image scan found: its status and the number of findings per severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// `COMPLETE`, `IN_PROGRESS`, `FAILED`, … as ECR reports it.
    pub status: String,
    pub severity_counts: BTreeMap<String, u32>,
}

/// Per service: what a promotion requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionPolicy {
    /// The performance gate passes when the recorded P99 is under this.
    #[serde(default = "default_p99_limit_ms")]
    pub p99_limit_ms: f64,
    /// Scan severities that block a promotion.
    #[serde(default = "default_blocking_severities")]
    pub blocking_severities: Vec<String>,
}

fn default_p99_limit_ms() -> f64 {
    100.0
}

fn default_blocking_severities() -> Vec<String> {
    vec!["CRITICAL".to_string()]
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        PromotionPolicy {
            p99_limit_ms: default_p99_limit_ms(),
            blocking_severities: default_blocking_severities(),
        }
    }
}

pub const SEVERITIES: [&str; 6] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNDEFINED",
];

impl PromotionPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.p99_limit_ms.is_finite()
            && self.p99_limit_ms > 0.0
            && self.p99_limit_ms <= 600_000.0)
        {
            return Err("promotion.p99_limit_ms must be between 0 and 600000".into());
        }
        if let Some(s) = self
            .blocking_severities
            .iter()
            .find(|s| !SEVERITIES.contains(&s.as_str()))
        {
            return Err(format!(
                "promotion.blocking_severities: {s:?} is not one of {}",
                SEVERITIES.join(", ")
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Approval
// ---------------------------------------------------------------------------------------------

pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u64 = 24 * 3600;

/// Whether deployments to an environment wait for a person's approval, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    pub required: bool,
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u64,
}

fn default_approval_timeout() -> u64 {
    DEFAULT_APPROVAL_TIMEOUT_SECONDS
}

impl ApprovalPolicy {
    /// Production environments need approval unless configured otherwise.
    pub fn default_for(environment: &str) -> Self {
        ApprovalPolicy {
            required: is_production(environment),
            timeout_seconds: DEFAULT_APPROVAL_TIMEOUT_SECONDS,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        // Step Functions allows a task up to a year; a week is plenty for a person.
        if !(1..=7 * 24 * 3600).contains(&self.timeout_seconds) {
            return Err("approval.timeout_seconds must be between 1 and 604800 (7 days)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    TimedOut,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "PENDING",
            ApprovalState::Approved => "APPROVED",
            ApprovalState::Rejected => "REJECTED",
            ApprovalState::TimedOut => "TIMED_OUT",
        }
    }
}

/// The approval of one deployment, as stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub state: ApprovalState,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    pub timeout_seconds: u64,
    /// The Step Functions task token that resumes the execution. Never shown.
    #[serde(default)]
    pub task_token: Option<String>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A person's (or the clock's) decision on a pending approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    pub state: ApprovalState,
    pub by: String,
    pub at: OffsetDateTime,
    pub comment: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Gates
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    UpstreamSucceeded,
    IntegrationTests,
    Performance,
    Compliance,
    ImageScan,
    NotQuarantined,
}

impl Gate {
    pub const ALL: [Gate; 6] = [
        Gate::UpstreamSucceeded,
        Gate::IntegrationTests,
        Gate::Performance,
        Gate::Compliance,
        Gate::ImageScan,
        Gate::NotQuarantined,
    ];

    /// How the checklist names it.
    pub fn title(self) -> &'static str {
        match self {
            Gate::UpstreamSucceeded => "Same image succeeded upstream",
            Gate::IntegrationTests => "Integration tests",
            Gate::Performance => "Performance P99",
            Gate::Compliance => "Compliance controls",
            Gate::ImageScan => "Image scan",
            Gate::NotQuarantined => "Not quarantined",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: Gate,
    pub passed: bool,
    pub detail: String,
    /// The upstream deployment whose image is promoted (on the upstream gate, when one
    /// succeeded there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamDeployment>,
}

/// A deployment in the environment a version is promoted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDeployment {
    pub environment: String,
    pub deployment_id: String,
}

/// Everything the gates judge, read by the caller.
#[derive(Debug, Clone, Copy)]
pub struct GateInputs<'a> {
    pub version: &'a str,
    pub from: &'a str,
    /// Deployments of this version in `from`, any status, newest first.
    pub upstream: &'a [DeploymentRecord],
    /// The version's evidence, in any order.
    pub evidence: &'a [Evidence],
    /// The image's scan; `None` when it was never scanned.
    pub scan: Option<&'a ScanSummary>,
    pub quarantine: Option<&'a Quarantine>,
    pub policy: &'a PromotionPolicy,
    /// Whose evidence counts, per kind (the service's `evidence_recorders`, as it is now).
    pub recorders: &'a EvidenceRecorders,
}

/// The deployment whose image is promoted: the newest that succeeded upstream.
pub fn promoted_deployment(upstream: &[DeploymentRecord]) -> Option<&DeploymentRecord> {
    upstream
        .iter()
        .filter(|r| r.status == DeploymentStatus::Succeeded)
        .max_by_key(|r| (r.finished_at, r.started_at))
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

/// Why one piece of evidence does not count for the promoted image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ignored {
    /// Recorded by a principal not (or no longer) listed for its kind.
    NotListed(String),
    /// Recorded without an image digest.
    NoDigest,
    /// For another image than the promoted one.
    OtherImage,
    /// There is no promoted image to match it against.
    NoImage,
}

/// The evidence of `kind` in `from` that counts for the promoted image (`digest`): the newest
/// recorded by a principal listed for the kind, for exactly that digest; and why the rest of
/// that kind in `from` does not count, in words (`None` when all of it counts).
fn counted<'a>(
    i: &GateInputs<'a>,
    kind: EvidenceKind,
    digest: Option<&str>,
) -> (Option<&'a Evidence>, Option<String>) {
    let mut ignored: Vec<Ignored> = Vec::new();
    let mut best: Option<&'a Evidence> = None;
    for e in i
        .evidence
        .iter()
        .filter(|e| e.kind == kind && e.environment == i.from)
    {
        let why = if !i.recorders.allows(kind, &e.recorded_by) {
            Some(Ignored::NotListed(principal(&e.recorded_by)))
        } else {
            match (e.image_digest.as_deref(), digest) {
                (None, _) => Some(Ignored::NoDigest),
                (Some(_), None) => Some(Ignored::NoImage),
                (Some(mine), Some(wanted)) if mine != wanted => Some(Ignored::OtherImage),
                _ => None,
            }
        };
        match why {
            Some(w) => ignored.push(w),
            None if best.is_none_or(|b| e.recorded_at >= b.recorded_at) => best = Some(e),
            None => {}
        }
    }
    if ignored.is_empty() {
        return (best, None);
    }
    ignored.sort();
    let mut parts: Vec<String> = Vec::new();
    let mut not_listed: Vec<&str> = Vec::new();
    let count = |what: &Ignored| ignored.iter().filter(|x| *x == what).count();
    for w in &ignored {
        if let Ignored::NotListed(p) = w
            && !not_listed.contains(&p.as_str())
        {
            not_listed.push(p);
        }
    }
    let unlisted = ignored
        .iter()
        .filter(|w| matches!(w, Ignored::NotListed(_)))
        .count();
    if unlisted > 0 {
        parts.push(format!(
            "{unlisted} recorded by {} (not in the service's evidence_recorders.{})",
            not_listed.join(", "),
            kind.as_str()
        ));
    }
    let no_digest = count(&Ignored::NoDigest);
    if no_digest > 0 {
        parts.push(format!("{no_digest} recorded without an image digest"));
    }
    let other = count(&Ignored::OtherImage);
    if other > 0 {
        parts.push(format!(
            "{other} for another image than {}",
            digest.map_or_else(String::new, short)
        ));
    }
    let no_image = count(&Ignored::NoImage);
    if no_image > 0 {
        parts.push(format!("{no_image} with no promoted image digest to match"));
    }
    (best, Some(format!("ignored {}", parts.join("; "))))
}

/// `detail`, then why evidence was ignored, if any was.
fn with_ignored(detail: String, ignored: Option<String>) -> String {
    match ignored {
        Some(why) => format!("{detail}; {why}"),
        None => detail,
    }
}

fn fmt_ms(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.1}ms")
    }
}

/// The checklist: every gate, in order, passed or failed with its number.
pub fn gates(i: &GateInputs<'_>) -> Vec<GateResult> {
    let env = i.from.to_uppercase();
    let promoted = promoted_deployment(i.upstream);
    let digest = promoted.and_then(|r| r.image_digest.as_deref());
    let missing = |what: &str| format!("no {what} recorded for v{} in {env}", i.version);

    let upstream = match (promoted, digest) {
        (Some(r), Some(d)) => (
            true,
            format!(
                "v{} ({}) SUCCEEDED in {env} (deployment {})",
                i.version,
                short(d),
                r.id
            ),
        ),
        (Some(r), None) => (
            false,
            format!(
                "v{} succeeded in {env} (deployment {}) without a recorded image digest; deploy it by digest so the same image can be promoted",
                i.version, r.id
            ),
        ),
        (None, _) => {
            let last = i.upstream.first().map_or_else(String::new, |r| {
                format!("; the latest there is {} ({})", r.status.as_str(), r.id)
            });
            (
                false,
                format!("v{} has not succeeded in {env}{last}", i.version),
            )
        }
    };

    let (found, ignored) = counted(i, EvidenceKind::Integration, digest);
    let integration = match found {
        Some(e) => {
            let (p, t) = (e.passed.unwrap_or(0), e.total.unwrap_or(0));
            (t > 0 && p == t, format!("{p}/{t} passed"))
        }
        None => (false, missing("integration test results")),
    };
    let integration = (integration.0, with_ignored(integration.1, ignored));

    let (found, ignored) = counted(i, EvidenceKind::Performance, digest);
    let performance = match found {
        Some(e) => {
            let p99 = e.p99_ms.unwrap_or(f64::INFINITY);
            let limit = i.policy.p99_limit_ms;
            if p99 < limit {
                (true, format!("P99 {} < {}", fmt_ms(p99), fmt_ms(limit)))
            } else {
                (
                    false,
                    format!("P99 {} is not under {}", fmt_ms(p99), fmt_ms(limit)),
                )
            }
        }
        None => (false, missing("performance results")),
    };
    let performance = (performance.0, with_ignored(performance.1, ignored));

    let (found, ignored) = counted(i, EvidenceKind::Compliance, digest);
    let compliance = match found {
        Some(e) => {
            let (p, t) = (
                e.controls_passed.unwrap_or(0),
                e.controls_total.unwrap_or(0),
            );
            (t > 0 && p == t, format!("{p}/{t} controls passed"))
        }
        None => (false, missing("compliance evidence")),
    };
    let compliance = (compliance.0, with_ignored(compliance.1, ignored));

    let scan = match (i.scan, digest) {
        (_, None) => (
            false,
            "no image digest to look up scan findings for".to_string(),
        ),
        (None, Some(d)) => (
            false,
            format!(
                "{} has no scan results; scan the image before promoting it",
                short(d)
            ),
        ),
        (Some(s), Some(_)) if s.status != "COMPLETE" => {
            (false, format!("scan is {}, not COMPLETE", s.status))
        }
        (Some(s), Some(_)) => {
            let blocking: Vec<String> = i
                .policy
                .blocking_severities
                .iter()
                .map(|sev| (sev, s.severity_counts.get(sev).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .map(|(sev, n)| format!("{n} {sev}"))
                .collect();
            let others: Vec<String> = SEVERITIES
                .iter()
                .filter(|sev| !i.policy.blocking_severities.iter().any(|b| b == *sev))
                .filter_map(|sev| {
                    s.severity_counts
                        .get(*sev)
                        .filter(|n| **n > 0)
                        .map(|n| format!("{n} {sev}"))
                })
                .collect();
            let rest = if others.is_empty() {
                String::new()
            } else {
                format!(" ({})", others.join(", "))
            };
            if blocking.is_empty() {
                (
                    true,
                    format!("0 {}{rest}", i.policy.blocking_severities.join("/")),
                )
            } else {
                (false, format!("{} findings{rest}", blocking.join(", ")))
            }
        }
    };

    let quarantine = match i.quarantine {
        Some(q) if !q.cleared => (
            false,
            format!(
                "quarantined: rolled back in {} ({}): {}; clear it with a reason to promote",
                q.environment.to_uppercase(),
                q.deployment_id,
                q.reason
            ),
        ),
        Some(q) => (
            true,
            format!(
                "quarantine cleared by {}: {}",
                q.cleared_by.as_deref().unwrap_or("unknown"),
                q.clear_reason.as_deref().unwrap_or("")
            ),
        ),
        None => (true, "never rolled back".to_string()),
    };

    [
        upstream,
        integration,
        performance,
        compliance,
        scan,
        quarantine,
    ]
    .into_iter()
    .zip(Gate::ALL)
    .map(|((passed, detail), gate)| GateResult {
        gate,
        passed,
        detail,
        upstream: promoted
            .filter(|_| gate == Gate::UpstreamSucceeded)
            .map(|r| UpstreamDeployment {
                environment: i.from.to_string(),
                deployment_id: r.id.clone(),
            }),
    })
    .collect()
}

/// `2 of 6 gates failed: Integration tests (…); Image scan (…)`.
pub fn refusal(results: &[GateResult]) -> Option<String> {
    let failed: Vec<&GateResult> = results.iter().filter(|g| !g.passed).collect();
    if failed.is_empty() {
        return None;
    }
    Some(format!(
        "{} of {} gates failed: {}",
        failed.len(),
        results.len(),
        failed
            .iter()
            .map(|g| format!("{} ({})", g.gate, g.detail))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phase;
    use time::macros::datetime;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const CI_ROLE: &str = "arn:aws:iam::123456789012:role/ci/ci-tests";
    const CI_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/ci-tests/gh-alice";

    /// CI's role may record every kind.
    fn ci_records_all() -> EvidenceRecorders {
        let ci = vec![CI_ROLE.to_string()];
        EvidenceRecorders {
            integration: ci.clone(),
            e2e: ci.clone(),
            performance: ci.clone(),
            compliance: ci,
        }
    }

    fn upstream(status: Phase, digest: Option<&str>) -> DeploymentRecord {
        let mut r = crate::fakes::sample::record(Phase::DeployingGreen);
        r.environment = "tst".into();
        r.image_digest = digest.map(str::to_string);
        r.finish(status, datetime!(2025-01-03 10:12:00 UTC), None);
        r
    }

    fn ev(kind: EvidenceKind, minute: u8, digest: Option<&str>) -> Evidence {
        Evidence {
            id: format!("e-{minute}"),
            service: "checkout".into(),
            version: "1.3.0".into(),
            environment: "tst".into(),
            kind,
            passed: Some(156),
            total: Some(156),
            p99_ms: Some(87.0),
            controls_passed: Some(23),
            controls_total: Some(23),
            link: None,
            image_digest: digest.map(str::to_string),
            recorded_by: CI_SESSION.into(),
            recorded_at: datetime!(2025-01-03 11:00:00 UTC)
                + time::Duration::minutes(i64::from(minute)),
        }
    }

    fn complete(counts: &[(&str, u32)]) -> ScanSummary {
        ScanSummary {
            status: "COMPLETE".into(),
            severity_counts: counts.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        }
    }

    fn judged(
        up: &[DeploymentRecord],
        evidence: &[Evidence],
        scan: Option<&ScanSummary>,
        policy: &PromotionPolicy,
    ) -> Vec<(Gate, bool, String)> {
        judged_with(up, evidence, scan, policy, &ci_records_all())
    }

    fn judged_with(
        up: &[DeploymentRecord],
        evidence: &[Evidence],
        scan: Option<&ScanSummary>,
        policy: &PromotionPolicy,
        recorders: &EvidenceRecorders,
    ) -> Vec<(Gate, bool, String)> {
        gates(&GateInputs {
            version: "1.3.0",
            from: "tst",
            upstream: up,
            evidence,
            scan,
            quarantine: None,
            policy,
            recorders,
        })
        .into_iter()
        .map(|g| (g.gate, g.passed, g.detail))
        .collect()
    }

    fn all_kinds(digest: Option<&str>) -> Vec<Evidence> {
        [
            EvidenceKind::Integration,
            EvidenceKind::Performance,
            EvidenceKind::Compliance,
        ]
        .into_iter()
        .map(|k| ev(k, 0, digest))
        .collect()
    }

    #[test]
    fn everything_in_order_passes_with_its_numbers() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        let got = judged(
            &up,
            &all_kinds(Some(D1)),
            Some(&complete(&[("HIGH", 1)])),
            &PromotionPolicy::default(),
        );
        let details: Vec<&str> = got.iter().map(|(_, _, d)| d.as_str()).collect();
        assert!(got.iter().all(|(_, ok, _)| *ok), "{got:?}");
        assert_eq!(
            details,
            [
                "v1.3.0 (sha256:111111111111) SUCCEEDED in TST (deployment checkout-dev-1-3-0-0001)",
                "156/156 passed",
                "P99 87ms < 100ms",
                "23/23 controls passed",
                "0 CRITICAL (1 HIGH)",
                "never rolled back",
            ]
        );
        assert_eq!(
            refusal(&gates(&GateInputs {
                version: "1.3.0",
                from: "tst",
                upstream: &up,
                evidence: &all_kinds(Some(D1)),
                scan: Some(&complete(&[])),
                quarantine: None,
                policy: &PromotionPolicy::default(),
                recorders: &ci_records_all(),
            })),
            None
        );
    }

    #[test]
    fn evidence_for_another_image_does_not_count_and_the_latest_result_wins() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        // results for D2 (another build of the same tag) are ignored
        let got = judged(
            &up,
            &all_kinds(Some(D2)),
            Some(&complete(&[])),
            &PromotionPolicy::default(),
        );
        assert_eq!(got.iter().filter(|(_, ok, _)| !ok).count(), 3, "{got:?}");
        assert_eq!(
            got[1].2,
            "no integration test results recorded for v1.3.0 in TST; ignored 1 for another image than sha256:111111111111"
        );
        // a later failing run overrides an earlier pass, and the reverse
        let mut evidence = all_kinds(Some(D1));
        let mut later = ev(EvidenceKind::Integration, 5, Some(D1));
        later.passed = Some(150);
        evidence.push(later);
        let got = judged(
            &up,
            &evidence,
            Some(&complete(&[])),
            &PromotionPolicy::default(),
        );
        assert_eq!(
            got[1],
            (Gate::IntegrationTests, false, "150/156 passed".into())
        );
        let mut fixed = ev(EvidenceKind::Integration, 9, Some(D1));
        fixed.passed = Some(156);
        evidence.push(fixed);
        let got = judged(
            &up,
            &evidence,
            Some(&complete(&[])),
            &PromotionPolicy::default(),
        );
        assert!(got[1].1);
    }

    #[test]
    fn the_upstream_gate_needs_a_success_with_a_digest() {
        let policy = PromotionPolicy::default();
        let none = judged(
            &[upstream(Phase::RolledBack, Some(D1))],
            &all_kinds(None),
            None,
            &policy,
        );
        assert!(!none[0].1);
        assert!(
            none[0]
                .2
                .contains("has not succeeded in TST; the latest there is ROLLED_BACK"),
            "{}",
            none[0].2
        );
        assert_eq!(
            none[4],
            (
                Gate::ImageScan,
                false,
                "no image digest to look up scan findings for".into()
            )
        );
        let tag_only = judged(
            &[upstream(Phase::Succeeded, None)],
            &all_kinds(None),
            None,
            &policy,
        );
        assert!(!tag_only[0].1);
        assert!(
            tag_only[0].2.contains("without a recorded image digest"),
            "{}",
            tag_only[0].2
        );
    }

    #[test]
    fn scans_block_when_missing_unfinished_or_with_blocking_findings() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        let ev = all_kinds(Some(D1));
        let default = PromotionPolicy::default();
        let scan_gate = |scan: Option<&ScanSummary>, policy: &PromotionPolicy| {
            judged(&up, &ev, scan, policy).remove(4)
        };
        assert!(!scan_gate(None, &default).1);
        let running = ScanSummary {
            status: "IN_PROGRESS".into(),
            severity_counts: BTreeMap::new(),
        };
        assert_eq!(
            scan_gate(Some(&running), &default),
            (
                Gate::ImageScan,
                false,
                "scan is IN_PROGRESS, not COMPLETE".into()
            )
        );
        assert_eq!(
            scan_gate(Some(&complete(&[("CRITICAL", 2), ("MEDIUM", 4)])), &default),
            (
                Gate::ImageScan,
                false,
                "2 CRITICAL findings (4 MEDIUM)".into()
            )
        );
        let strict = PromotionPolicy {
            blocking_severities: vec!["CRITICAL".into(), "HIGH".into()],
            ..default.clone()
        };
        assert!(!scan_gate(Some(&complete(&[("HIGH", 1)])), &strict).1);
        assert!(scan_gate(Some(&complete(&[("LOW", 9)])), &strict).1);
    }

    #[test]
    fn performance_is_judged_against_the_services_limit() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        let tight = PromotionPolicy {
            p99_limit_ms: 80.0,
            ..PromotionPolicy::default()
        };
        let got = judged(&up, &all_kinds(Some(D1)), Some(&complete(&[])), &tight);
        assert_eq!(
            got[2],
            (
                Gate::Performance,
                false,
                "P99 87ms is not under 80ms".into()
            )
        );
    }

    #[test]
    fn evidence_must_carry_the_numbers_its_kind_needs() {
        let mut e = ev(EvidenceKind::Performance, 0, None);
        e.p99_ms = None;
        assert!(e.validate().is_err());
        e.p99_ms = Some(f64::NAN);
        assert!(e.validate().is_err());
        let mut c = ev(EvidenceKind::Compliance, 0, None);
        c.controls_total = Some(0);
        c.controls_passed = Some(0);
        assert!(c.validate().is_err());
        let mut i = ev(EvidenceKind::Integration, 0, Some("sha256:XYZ"));
        assert!(i.validate().is_err());
        i.image_digest = None;
        assert!(
            i.validate()
                .is_err_and(|e| e.0.contains("image_digest is required")),
            "results must name the image they were measured on"
        );
        i.image_digest = Some(D1.into());
        assert_eq!(i.validate(), Ok(()));
    }

    /// Finding 7 of the security review: evidence counts only from a recorder the service
    /// lists for its kind, and only for the promoted image's digest.
    #[test]
    fn an_unlisted_recorders_passing_evidence_does_not_open_a_gate() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        // GIVEN a failing run by CI, then a newer passing "run" by someone else
        let mut failing = ev(EvidenceKind::Integration, 0, Some(D1));
        failing.passed = Some(150);
        let mut forged = ev(EvidenceKind::Integration, 5, Some(D1));
        forged.recorded_by = "arn:aws:sts::123456789012:assumed-role/developer/mallory".into();
        let got = judged(
            &up,
            &[failing, forged.clone()],
            Some(&complete(&[])),
            &PromotionPolicy::default(),
        );
        // THEN CI's failing run is what counts, and the checklist says what was ignored
        assert_eq!(
            got[1],
            (
                Gate::IntegrationTests,
                false,
                "150/156 passed; ignored 1 recorded by arn:aws:iam::123456789012:role/developer (not in the service's evidence_recorders.integration)".into()
            )
        );
        // alone, the forged run opens nothing either
        let got = judged(
            &up,
            &[forged],
            Some(&complete(&[])),
            &PromotionPolicy::default(),
        );
        assert!(!got[1].1);
        assert!(
            got[1].2.starts_with("no integration test results"),
            "{}",
            got[1].2
        );
        // a kind listed for CI but recorded for integration only: CI is not a performance
        // recorder when the service does not say so
        let integration_only = EvidenceRecorders {
            integration: vec![CI_ROLE.into()],
            ..EvidenceRecorders::default()
        };
        let got = judged_with(
            &up,
            &all_kinds(Some(D1)),
            Some(&complete(&[])),
            &PromotionPolicy::default(),
            &integration_only,
        );
        assert_eq!(
            got.iter().map(|(_, ok, _)| *ok).collect::<Vec<_>>(),
            [true, true, false, false, true, true]
        );
    }

    #[test]
    fn a_recorder_removed_from_the_list_no_longer_counts() {
        let up = [upstream(Phase::Succeeded, Some(D1))];
        let evidence = all_kinds(Some(D1));
        let policy = PromotionPolicy::default();
        assert!(
            judged(&up, &evidence, Some(&complete(&[])), &policy)
                .iter()
                .all(|(_, ok, _)| *ok)
        );
        // WHEN the service stops listing CI's role for compliance
        let mut recorders = ci_records_all();
        recorders.compliance.clear();
        let got = judged_with(&up, &evidence, Some(&complete(&[])), &policy, &recorders);
        // THEN its recorded compliance evidence stops counting
        assert_eq!(
            got[3],
            (
                Gate::Compliance,
                false,
                "no compliance evidence recorded for v1.3.0 in TST; ignored 1 recorded by arn:aws:iam::123456789012:role/ci-tests (not in the service's evidence_recorders.compliance)".into()
            )
        );
        // and evidence recorded before digests were required counts for no image
        let old = all_kinds(None);
        let got = judged(&up, &old, Some(&complete(&[])), &policy);
        assert!(
            got[1]
                .2
                .ends_with("ignored 1 recorded without an image digest"),
            "{}",
            got[1].2
        );
    }

    #[test]
    fn recorders_are_listed_as_iam_roles_or_users() {
        let mut r = ci_records_all();
        assert_eq!(r.validate(), Ok(()));
        assert!(r.allows(EvidenceKind::E2e, CI_SESSION));
        assert!(!r.allows(
            EvidenceKind::E2e,
            "arn:aws:sts::123456789012:assumed-role/ci-test/gh-alice"
        ));
        r.e2e.push("arn:aws:iam::123456789012:role/*".into());
        assert!(
            r.validate()
                .is_err_and(|e| e.contains("evidence_recorders.e2e"))
        );
        let too_many = EvidenceRecorders {
            performance: vec![CI_ROLE.to_string(); 21],
            ..EvidenceRecorders::default()
        };
        assert!(too_many.validate().is_err());
        assert!(EvidenceRecorders::default().is_empty());
        assert!(!EvidenceRecorders::default().allows(EvidenceKind::Integration, CI_SESSION));
    }

    #[test]
    fn production_needs_approval_by_default() {
        assert!(ApprovalPolicy::default_for("prd").required);
        assert!(ApprovalPolicy::default_for("Production").required);
        assert!(!ApprovalPolicy::default_for("tst").required);
        assert!(
            ApprovalPolicy {
                required: true,
                timeout_seconds: 0
            }
            .validate()
            .is_err()
        );
        assert!(
            PromotionPolicy {
                blocking_severities: vec!["SEVERE".into()],
                ..PromotionPolicy::default()
            }
            .validate()
            .is_err()
        );
    }
}
