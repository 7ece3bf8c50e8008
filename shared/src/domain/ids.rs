//! The identifiers that travel between the API, the triggers, the state machine and the
//! registry: image digest, service, environment, deployment id, role ARN, account id. Each is
//! checked once, when parsed (also when deserialized), and carried typed; on the wire each is
//! the plain string it always was.

use super::names::{InvalidName, invalid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A checked string: the type, what its errors call it, and the check (`Err(why)`).
macro_rules! checked_string {
    ($(#[$doc:meta])* $t:ident, $what:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $t(String);

        impl $t {
            /// What error messages call it.
            pub const WHAT: &'static str = $what;

            pub fn parse(s: &str) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|why| invalid(Self::WHAT, s, why))?;
                Ok(Self(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = InvalidName;
            fn try_from(s: String) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(&s).map_err(|why| invalid(Self::WHAT, &s, why))?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $t {
            type Error = InvalidName;
            fn try_from(s: &str) -> Result<Self, InvalidName> {
                Self::parse(s)
            }
        }

        impl std::str::FromStr for $t {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, InvalidName> {
                Self::parse(s)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                self == &other.0
            }
        }

        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }
    };
}

/// `[A-Za-z0-9_-]` only, 1 to `max` characters.
fn word(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn name_check(s: &str) -> Result<(), &'static str> {
    if word(s, 64) {
        Ok(())
    } else {
        Err("must be 1-64 of [A-Za-z0-9_-]")
    }
}

/// Whether `s` is an AWS account id: exactly 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

checked_string!(
    /// An image's content digest: `sha256:<64 lowercase hex>`.
    ImageDigest,
    "image_digest",
    |s| match s.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(()),
        _ => Err("must be sha256:<64 lowercase hex>"),
    }
);

impl ImageDigest {
    /// `sha256:` and the first 12 hex digits, as people quote a digest.
    pub fn short(&self) -> &str {
        &self.0[..7 + 12]
    }

    /// The 64 hex digits without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
}

checked_string!(
    /// A service's name, as the registry stores it: 1-64 of `[A-Za-z0-9_-]`.
    ServiceName,
    "service",
    name_check
);

checked_string!(
    /// An environment's name (`dev`, `prd`, ...): 1-64 of `[A-Za-z0-9_-]`.
    EnvironmentName,
    "environment",
    name_check
);

checked_string!(
    /// A deployment's id, which is its Step Functions execution name: 1-80 of `[A-Za-z0-9_-]`
    /// (execution names may hold more, but the API addresses deployments by this id in its
    /// paths, and CloudWatch logs need these characters).
    DeploymentId,
    "deployment id",
    |s| {
        if word(s, 80) {
            Ok(())
        } else {
            Err("must be 1-80 of [A-Za-z0-9_-]")
        }
    }
);

checked_string!(
    /// The IAM role the phases assume in an environment's account:
    /// `arn:<aws partition>:iam::<12-digit account>:role/<name of at most 512 characters>`.
    RoleArn,
    "role_arn",
    |s| {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", p, "iam", "", account, res]
                if p.starts_with("aws")
                    && is_account_id(account)
                    && res
                        .strip_prefix("role/")
                        .is_some_and(|n| !n.is_empty() && n.len() <= 512) =>
            {
                Ok(())
            }
            _ => Err("must be arn:aws:iam::<12-digit account>:role/<name>"),
        }
    }
);

impl RoleArn {
    /// The 12-digit account the role is in.
    pub fn account(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }
}

checked_string!(
    /// An AWS account id: 12 digits.
    AccountId,
    "account id",
    |s| {
        if is_account_id(s) {
            Ok(())
        } else {
            Err("must be 12 digits")
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const ROLE: &str = "arn:aws:iam::210987654321:role/bluegreen-environment-checkout-prd";

    fn msg<T>(r: Result<T, InvalidName>) -> String {
        match r {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn image_digests_are_sha256_of_64_lowercase_hex() {
        assert_eq!(
            ImageDigest::parse(DIGEST).map(|d| d.to_string()),
            Ok(DIGEST.into())
        );
        assert_eq!(
            ImageDigest::parse(DIGEST).map(|d| (d.short().to_string(), d.hex().len())),
            Ok(("sha256:0123456789ab".into(), 64))
        );
        let upper = DIGEST.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            &DIGEST[7..],
            &format!("{DIGEST}0"),
            &DIGEST[..DIGEST.len() - 1],
            &upper,
            &DIGEST.replace("sha256", "sha512"),
            &DIGEST.replace('f', "g"),
            &format!(" {DIGEST}"),
        ] {
            assert!(ImageDigest::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            msg(ImageDigest::parse("sha256:xyz")),
            "image_digest \"sha256:xyz\" is invalid: must be sha256:<64 lowercase hex>"
        );
    }

    #[test]
    fn service_and_environment_names_are_1_to_64_of_a_small_alphabet() {
        for ok in ["checkout", "a", "A_b-9", &"x".repeat(64)] {
            assert!(ServiceName::parse(ok).is_ok(), "{ok:?}");
            assert!(EnvironmentName::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "check out", "a/b", "a.b", "é", "prd\n", &"x".repeat(65)] {
            assert!(ServiceName::parse(bad).is_err(), "{bad:?} accepted");
            assert!(EnvironmentName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            msg(ServiceName::parse("check out")),
            "service \"check out\" is invalid: must be 1-64 of [A-Za-z0-9_-]"
        );
        assert_eq!(
            msg(EnvironmentName::parse("")),
            "environment \"\" is invalid: must be 1-64 of [A-Za-z0-9_-]"
        );
    }

    #[test]
    fn deployment_ids_are_1_to_80_of_a_small_alphabet() {
        for ok in ["checkout-dev-1-3-0-abc", "x", &"a".repeat(80)] {
            assert!(DeploymentId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", &"a".repeat(81), "a.b", "a b", "a/b", "ü"] {
            assert!(DeploymentId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            msg(DeploymentId::parse("a b")),
            "deployment id \"a b\" is invalid: must be 1-80 of [A-Za-z0-9_-]"
        );
    }

    #[test]
    fn role_arns_name_a_role_in_a_12_digit_account() {
        let role = RoleArn::parse(ROLE).map_err(|e| e.to_string());
        assert_eq!(role.as_ref().map(|r| r.account()), Ok("210987654321"));
        for ok in [
            "arn:aws-cn:iam::123456789012:role/x",
            "arn:aws-us-gov:iam::123456789012:role/path/x",
            &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(512)),
        ] {
            assert!(RoleArn::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "not-an-arn",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::1234567890123:role/x",
            "arn:aws:iam::12345678901a:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:role/x",
            "arn:gcp:iam::123456789012:role/x",
            &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(513)),
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            msg(RoleArn::parse("not-an-arn")),
            "role_arn \"not-an-arn\" is invalid: must be arn:aws:iam::<12-digit account>:role/<name>"
        );
    }

    #[test]
    fn account_ids_are_12_digits() {
        assert!(AccountId::parse("210987654321").is_ok());
        for bad in [
            "",
            "12345",
            "1234567890123",
            "12345678901a",
            " 12345678901",
            "１２３４５６７８９０１２",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?} accepted");
            assert!(!is_account_id(bad), "{bad:?}");
        }
        assert_eq!(
            msg(AccountId::parse("12345")),
            "account id \"12345\" is invalid: must be 12 digits"
        );
    }

    #[test]
    fn deserializing_checks_and_serializing_gives_the_plain_string() {
        let d: Result<ServiceName, _> = serde_json::from_str("\"checkout\"");
        assert_eq!(
            d.map(|s| s == "checkout").map_err(|e| e.to_string()),
            Ok(true)
        );
        let bad =
            serde_json::from_str::<RoleArn>("\"arn:aws:iam::1:role/x\"").map_err(|e| e.to_string());
        assert!(
            bad.as_ref().is_err_and(|e| e.contains("role_arn")),
            "{bad:?}"
        );
        assert!(serde_json::from_str::<AccountId>("210987654321").is_err());
        let json = ImageDigest::parse(DIGEST)
            .map_err(|e| e.to_string())
            .and_then(|d| serde_json::to_string(&d).map_err(|e| e.to_string()));
        assert_eq!(json, Ok(format!("\"{DIGEST}\"")));
    }

    /// Serializes `v`, deserializes it back and checks both the wire text and the value.
    fn round_trip<T>(v: &T) -> Result<(), TestCaseError>
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug + AsRef<str>,
    {
        let json = serde_json::to_string(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            &json,
            &serde_json::to_string(v.as_ref()).unwrap_or_default()
        );
        let back: T =
            serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, v);
        Ok(())
    }

    proptest! {
        #[test]
        fn valid_values_round_trip_through_serde(
            hex in "[0-9a-f]{64}",
            name in "[A-Za-z0-9_-]{1,64}",
            id in "[A-Za-z0-9_-]{1,80}",
            account in "[0-9]{12}",
            role in "[A-Za-z0-9+=,.@_/-]{1,512}",
        ) {
            let parsed = (
                ImageDigest::parse(&format!("sha256:{hex}")),
                ServiceName::parse(&name),
                EnvironmentName::parse(&name),
                DeploymentId::parse(&id),
                RoleArn::parse(&format!("arn:aws:iam::{account}:role/{role}")),
                AccountId::parse(&account),
            );
            match parsed {
                (Ok(d), Ok(s), Ok(e), Ok(i), Ok(r), Ok(a)) => {
                    round_trip(&d)?;
                    round_trip(&s)?;
                    round_trip(&e)?;
                    round_trip(&i)?;
                    round_trip(&r)?;
                    round_trip(&a)?;
                    prop_assert_eq!(r.account(), a.as_str());
                }
                other => prop_assert!(false, "refused: {:?}", other),
            }
        }

        #[test]
        fn parse_and_deserialize_agree_on_any_string(s in "\\PC{0,90}|sha256:[0-9a-fA-F]{62,66}|arn:aws:iam::[0-9]{11,13}:role/[a-z]{0,3}|[0-9]{11,13}") {
            let json = serde_json::Value::String(s.clone());
            prop_assert_eq!(ImageDigest::parse(&s).is_ok(), serde_json::from_value::<ImageDigest>(json.clone()).is_ok());
            prop_assert_eq!(ServiceName::parse(&s).is_ok(), serde_json::from_value::<ServiceName>(json.clone()).is_ok());
            prop_assert_eq!(EnvironmentName::parse(&s).is_ok(), serde_json::from_value::<EnvironmentName>(json.clone()).is_ok());
            prop_assert_eq!(DeploymentId::parse(&s).is_ok(), serde_json::from_value::<DeploymentId>(json.clone()).is_ok());
            prop_assert_eq!(RoleArn::parse(&s).is_ok(), serde_json::from_value::<RoleArn>(json.clone()).is_ok());
            prop_assert_eq!(AccountId::parse(&s).is_ok(), serde_json::from_value::<AccountId>(json).is_ok());
            // whatever is accepted serializes back to exactly what was given
            if let Ok(d) = ImageDigest::parse(&s) {
                prop_assert_eq!(d.as_str(), s.as_str());
            }
            if let Ok(r) = RoleArn::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }
    }
}
