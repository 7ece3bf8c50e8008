//! Parsed identifiers: release versions, container image references and ELB ARNs. They are
//! validated once, at the edge, and carried around typed.

use super::Color;
use super::ids::{ImageDigest, is_account_id};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {why}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

pub(super) fn invalid(what: &'static str, value: &str, why: &'static str) -> InvalidName {
    InvalidName {
        what,
        value: value.chars().take(200).collect(),
        why,
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A release version: semantic versioning, an optional leading `v` is accepted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(semver::Version);

impl Version {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let bare = s.strip_prefix('v').unwrap_or(s);
        semver::Version::parse(bare)
            .map(Version)
            .map_err(|_| invalid("version", s, "expected semantic versioning like 1.3.0"))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
string_serde!(Version);

/// A container image reference: `[registry/]repository[:tag][@sha256:<64 hex>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    repository: String,
    tag: Option<String>,
    digest: Option<ImageDigest>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        const WHAT: &str = "image";
        if s.is_empty() || s.len() > 1024 {
            return Err(invalid(WHAT, s, "must be 1 to 1024 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(WHAT, s, "must not contain whitespace"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                let digest = ImageDigest::parse(digest).map_err(|_| {
                    invalid(
                        WHAT,
                        s,
                        "digest must be sha256:<64 lowercase hex characters>",
                    )
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if repository.is_empty()
            || repository.ends_with('/')
            || repository.starts_with('/')
            || repository.contains("//")
            || !repository
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "./_-:".contains(c))
        {
            return Err(invalid(
                WHAT,
                s,
                "repository must be like 123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout",
            ));
        }
        if let Some(tag) = tag
            && (tag.is_empty()
                || tag.len() > 128
                || tag.starts_with(['.', '-'])
                || !tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(invalid(
                WHAT,
                s,
                "tag must be 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            ));
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid(
                WHAT,
                s,
                "needs a tag (:1.3.0) or a digest (@sha256:...)",
            ));
        }
        Ok(Self {
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&ImageDigest> {
        self.digest.as_ref()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}
string_serde!(ImageRef);

/// Splits an ELBv2 ARN into its resource part after `:elasticloadbalancing:REGION:ACCOUNT:`.
fn elb_resource<'a>(what: &'static str, arn: &'a str) -> Result<&'a str, InvalidName> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "elasticloadbalancing",
            region,
            account,
            resource,
        ] if partition.starts_with("aws") && !region.is_empty() && is_account_id(account) => {
            Ok(resource)
        }
        _ => Err(invalid(
            what,
            arn,
            "expected arn:aws:elasticloadbalancing:<region>:<12-digit account>:<resource>",
        )),
    }
}

fn segments_ok(segments: &[&str]) -> bool {
    segments
        .iter()
        .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// A target group ARN; its `targetgroup/<name>/<id>` suffix is the CloudWatch dimension value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetGroupArn(String);

impl TargetGroupArn {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        const WHAT: &str = "target group ARN";
        let resource = elb_resource(WHAT, s)?;
        let segs: Vec<&str> = resource.split('/').collect();
        match segs.as_slice() {
            ["targetgroup", name, id] if segments_ok(&[name, id]) => Ok(Self(s.to_string())),
            _ => Err(invalid(WHAT, s, "resource must be targetgroup/<name>/<id>")),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `targetgroup/<name>/<id>`, the value of the `TargetGroup` metric dimension.
    pub fn dimension(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for TargetGroupArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(TargetGroupArn);

/// Where the weighted forward action lives: a listener's default action or one listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadBalancerTarget {
    Listener(String),
    Rule(String),
}

impl LoadBalancerTarget {
    pub fn listener(s: &str) -> Result<Self, InvalidName> {
        const WHAT: &str = "listener ARN";
        let resource = elb_resource(WHAT, s)?;
        let segs: Vec<&str> = resource.split('/').collect();
        match segs.as_slice() {
            ["listener", "app", name, lb, id] if segments_ok(&[name, lb, id]) => {
                Ok(Self::Listener(s.to_string()))
            }
            _ => Err(invalid(
                WHAT,
                s,
                "resource must be listener/app/<lb-name>/<lb-id>/<listener-id>",
            )),
        }
    }

    pub fn rule(s: &str) -> Result<Self, InvalidName> {
        const WHAT: &str = "listener rule ARN";
        let resource = elb_resource(WHAT, s)?;
        let segs: Vec<&str> = resource.split('/').collect();
        match segs.as_slice() {
            ["listener-rule", "app", name, lb, l, r] if segments_ok(&[name, lb, l, r]) => {
                Ok(Self::Rule(s.to_string()))
            }
            _ => Err(invalid(
                WHAT,
                s,
                "resource must be listener-rule/app/<lb-name>/<lb-id>/<listener-id>/<rule-id>",
            )),
        }
    }

    pub fn arn(&self) -> &str {
        match self {
            Self::Listener(a) | Self::Rule(a) => a,
        }
    }

    /// `app/<name>/<id>`, the value of the `LoadBalancer` metric dimension.
    pub fn load_balancer_dimension(&self) -> String {
        let resource = self.arn().rsplit(':').next().unwrap_or_default();
        let segs: Vec<&str> = resource.split('/').collect();
        segs.get(1..4).map(|s| s.join("/")).unwrap_or_default()
    }
}

/// Where the weighted forward lives and the two target groups it splits between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficConfig {
    /// The listener whose default action forwards to blue and green...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_arn: Option<String>,
    /// ...or one listener rule (exactly one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
    pub blue_target_group_arn: TargetGroupArn,
    pub green_target_group_arn: TargetGroupArn,
}

impl TrafficConfig {
    pub fn target(&self) -> Result<LoadBalancerTarget, InvalidName> {
        match (&self.listener_arn, &self.rule_arn) {
            (Some(l), None) => LoadBalancerTarget::listener(l),
            (None, Some(r)) => LoadBalancerTarget::rule(r),
            _ => Err(InvalidName {
                what: "traffic",
                value: String::new(),
                why: "give exactly one of listener_arn or rule_arn",
            }),
        }
    }

    pub fn target_group(&self, color: Color) -> &TargetGroupArn {
        match color {
            Color::Blue => &self.blue_target_group_arn,
            Color::Green => &self.green_target_group_arn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-green/73e2d6bc24d8a067";
    const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

    #[test]
    fn versions_accept_semver_with_optional_v() {
        assert_eq!(
            Version::parse("1.3.0").map(|v| v.to_string()),
            Ok("1.3.0".into())
        );
        assert_eq!(
            Version::parse("v1.3.1-rc.1").map(|v| v.to_string()),
            Ok("1.3.1-rc.1".into())
        );
        for bad in ["", "latest", "1.3", "1.3.0.0", "v", "1.3.x", " 1.3.0"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn image_references_parse_tag_digest_and_registry_port() {
        let img = ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0")
            .map_err(|e| e.to_string());
        assert_eq!(img.as_ref().map(|i| i.tag()), Ok(Some("1.3.0")));
        assert_eq!(
            img.as_ref().map(|i| i.repository()),
            Ok("123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout")
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let with_port = ImageRef::parse(&format!("localhost:5000/team/app@{digest}"))
            .map_err(|e| e.to_string());
        assert_eq!(with_port.as_ref().map(|i| i.tag()), Ok(None));
        assert_eq!(
            with_port.as_ref().map(|i| i.repository()),
            Ok("localhost:5000/team/app")
        );
        assert_eq!(
            with_port.map(|i| i.digest().map(|d| d.to_string())),
            Ok(Some(digest.clone()))
        );
        let round = format!("repo:1.0.0@{digest}");
        assert_eq!(ImageRef::parse(&round).map(|i| i.to_string()), Ok(round));
    }

    #[test]
    fn bad_image_references_are_refused_with_the_reason() {
        for bad in [
            "",
            "checkout",
            "checkout:",
            "/checkout:1",
            "checkout:-bad",
            "check out:1.0.0",
            "checkout@sha256:abc",
            "checkout@md5:00",
        ] {
            let err = ImageRef::parse(bad);
            assert!(err.is_err(), "{bad:?} accepted");
        }
        let err = ImageRef::parse("checkout")
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                "image \"checkout\" is invalid: needs a tag (:1.3.0) or a digest (@sha256:...)"
                    .into()
            )
        );
    }

    #[test]
    fn elb_arns_give_metric_dimensions() {
        let tg = TargetGroupArn::parse(TG).map_err(|e| e.to_string());
        assert_eq!(
            tg.map(|t| t.dimension().to_string()),
            Ok("targetgroup/checkout-dev-green/73e2d6bc24d8a067".into())
        );
        let l = LoadBalancerTarget::listener(LISTENER).map_err(|e| e.to_string());
        assert_eq!(
            l.map(|l| l.load_balancer_dimension()),
            Ok("app/bg-checkout-dev/50dc6c495c0c9188".into())
        );
        let r = LoadBalancerTarget::rule(RULE).map_err(|e| e.to_string());
        assert_eq!(
            r.map(|r| r.load_balancer_dimension()),
            Ok("app/bg-checkout-dev/50dc6c495c0c9188".into())
        );
    }

    #[test]
    fn wrong_kinds_of_arn_are_refused() {
        assert!(TargetGroupArn::parse(LISTENER).is_err());
        assert!(LoadBalancerTarget::listener(TG).is_err());
        assert!(LoadBalancerTarget::rule(LISTENER).is_err());
        assert!(
            LoadBalancerTarget::listener(
                "arn:aws:elasticloadbalancing:us-east-1:12345:listener/app/a/b/c"
            )
            .is_err()
        );
        assert!(TargetGroupArn::parse("arn:aws:s3:::bucket").is_err());
    }
}
