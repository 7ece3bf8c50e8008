//! Who a caller is, for the rules that a person cannot approve their own deployment and that
//! only listed recorders vouch for a version.
//!
//! API Gateway names an IAM caller by the ARN of its session: a role's caller is
//! `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, and the session name is whatever the
//! caller chose when assuming the role. Comparing session ARNs would let one role approve its
//! own deployment under a second session name, so callers are compared as principals: the role
//! (`arn:aws:iam::ACCOUNT:role/ROLE`, without its path: a session ARN carries none, and a role
//! name is unique in its account whatever its path), the IAM user (likewise without its path),
//! or the federated user. Two people who share one role are one principal here: an approver
//! needs a role of their own (the approver policy), which is what four eyes means in IAM terms.
//!
//! CI is one principal for every person who runs it. The person behind a GitHub Actions run is
//! in its session name (`gh-<login>`: the workflows set it, the roles' trust requires it), so a
//! deployment CI starts records that person as `github:<login>`, and that person cannot approve
//! it under their own principal either.

use std::collections::BTreeMap;

/// The prefix of the session names GitHub Actions roles are assumed with (`gh-<login>`).
pub const GITHUB_SESSION_PREFIX: &str = "gh-";
/// How a deployment records the GitHub user who triggered it (`github:<login>`).
pub const GITHUB_TRIGGER_PREFIX: &str = "github:";

/// The parts of an IAM or STS ARN: partition, service, account and resource.
fn arn_parts(id: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = id.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    match parts.as_slice() {
        [partition, service, _region, account, resource] => {
            Some((partition, service, account, resource))
        }
        _ => None,
    }
}

/// The principal behind an identity API Gateway reports (an ARN; anything else as given).
pub fn principal(identity: &str) -> String {
    let id = identity.trim();
    let Some((partition, service, account, resource)) = arn_parts(id) else {
        return id.to_string();
    };
    match (service, resource.split_once('/')) {
        ("sts", Some(("assumed-role", role_and_session))) => {
            let role = role_and_session.split('/').next().unwrap_or_default();
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        // A role or user ARN with a path (`role/team/deployer`): the name is the last part.
        ("iam", Some((kind @ ("role" | "user"), path_and_name))) => {
            let name = path_and_name.rsplit('/').next().unwrap_or_default();
            format!("arn:{partition}:iam::{account}:{kind}/{name}")
        }
        _ => id.to_string(),
    }
}

/// Whether two identities are the same principal (sessions of one role are).
pub fn same_principal(a: &str, b: &str) -> bool {
    principal(a) == principal(b)
}

/// The session name of an assumed-role identity.
pub fn session_name(identity: &str) -> Option<&str> {
    match arn_parts(identity.trim())? {
        (_, "sts", _, resource) => resource
            .strip_prefix("assumed-role/")
            .and_then(|r| r.split_once('/'))
            .map(|(_, session)| session)
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}

/// The name a person goes by in an identity: an assumed role's session name, or an IAM user's
/// name.
pub fn person_name(identity: &str) -> Option<&str> {
    match arn_parts(identity.trim())? {
        (_, "iam", _, resource) => resource
            .strip_prefix("user/")
            .and_then(|p| p.rsplit('/').next())
            .filter(|s| !s.is_empty()),
        _ => session_name(identity),
    }
}

/// `arn:<partition>:iam::<12 digits>:role/[path/]name` or `user/[path/]name`, no wildcard.
pub fn iam_principal_ok(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let name_ok = |rest: &str| {
        !rest.is_empty()
            && rest.len() <= 512
            && !rest.starts_with('/')
            && !rest.ends_with('/')
            && !rest.contains("//")
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
    };
    matches!(parts.as_slice(), ["arn", p, "iam", "", account, res]
        if p.starts_with("aws") && super::is_account_id(account)
            && (res.strip_prefix("role/").is_some_and(name_ok) || res.strip_prefix("user/").is_some_and(name_ok)))
}

/// One role session's ARN: `arn:<partition>:sts::<12 digits>:assumed-role/<role>/<session>`.
pub fn role_session_ok(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    matches!(parts.as_slice(), ["arn", p, "sts", "", account, res]
        if p.starts_with("aws") && super::is_account_id(account)
            && res.strip_prefix("assumed-role/").and_then(|r| r.split_once('/')).is_some_and(|(role, session)| ok(role) && ok(session)))
}

/// Whether `login` can be a GitHub login: 1-39 letters, digits or single hyphens, neither first
/// nor last.
pub fn github_login_ok(login: &str) -> bool {
    (1..=39).contains(&login.len())
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// Why a CI role's caller names nobody behind it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{caller} is a CI role, and its session name does not carry the GitHub user who triggered the run: assume it with role-session-name gh-<login> (the workflows use gh-${{{{ github.triggering_actor }}}})"
)]
pub struct CiActorUnknown {
    pub caller: String,
}

/// Who triggered a request of `caller`, when the caller is one of the CI roles `ci_roles`
/// (`github:<login>`, from its `gh-<login>` session name); `None` for any other caller.
pub fn ci_trigger(caller: &str, ci_roles: &[String]) -> Result<Option<String>, CiActorUnknown> {
    let who = principal(caller);
    if !ci_roles.iter().any(|r| principal(r) == who) {
        return Ok(None);
    }
    session_name(caller)
        .and_then(|s| s.strip_prefix(GITHUB_SESSION_PREFIX))
        .filter(|login| github_login_ok(login))
        .map(|login| Some(format!("{GITHUB_TRIGGER_PREFIX}{login}")))
        .ok_or_else(|| CiActorUnknown {
            caller: caller.to_string(),
        })
}

/// Whether `key` (an entry of a service's `github_logins`: an IAM role or user ARN, or one
/// role session's ARN) names the caller `identity`.
fn names(key: &str, identity: &str) -> bool {
    if !same_principal(key, identity) {
        return false;
    }
    match session_name(key) {
        Some(session) => session_name(identity) == Some(session),
        None => true,
    }
}

/// Whether the person deciding as `approver` is the one who triggered a deployment recorded
/// with `triggered_by` (`github:<login>`): the approver's session or user name is that login
/// (GitHub logins are case-insensitive; a `gh-` session prefix is ignored), or the service's
/// `github_logins` maps the approver to it.
pub fn triggered_it(
    approver: &str,
    triggered_by: Option<&str>,
    github_logins: &BTreeMap<String, String>,
) -> bool {
    let Some(login) = triggered_by.and_then(|t| t.strip_prefix(GITHUB_TRIGGER_PREFIX)) else {
        return false;
    };
    let same = |name: &str| name.eq_ignore_ascii_case(login);
    let by_name = person_name(approver).is_some_and(|n| {
        same(n)
            || n.get(..GITHUB_SESSION_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(GITHUB_SESSION_PREFIX))
                && n.get(GITHUB_SESSION_PREFIX.len()..).is_some_and(same)
    });
    by_name
        || github_logins
            .iter()
            .any(|(key, mapped)| same(mapped) && names(key, approver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_of_one_role_are_one_principal() {
        let first = "arn:aws:sts::123456789012:assumed-role/deployer/alice";
        let second = "arn:aws:sts::123456789012:assumed-role/deployer/approving-myself";
        assert!(same_principal(first, second));
        assert_eq!(principal(first), "arn:aws:iam::123456789012:role/deployer");
        assert_eq!(
            principal("arn:aws-cn:sts::123456789012:assumed-role/r/s"),
            "arn:aws-cn:iam::123456789012:role/r"
        );
    }

    #[test]
    fn paths_are_not_part_of_a_principal() {
        // a session ARN carries no path; the role's ARN does: they are one principal
        let session = "arn:aws:sts::123456789012:assumed-role/bluegreen-promotion/gh-alice";
        let role = "arn:aws:iam::123456789012:role/bluegreen.promotion/bluegreen-promotion";
        assert_eq!(
            principal(role),
            "arn:aws:iam::123456789012:role/bluegreen-promotion"
        );
        assert!(same_principal(session, role));
        assert_eq!(
            principal("arn:aws:iam::123456789012:user/division/team/bob"),
            "arn:aws:iam::123456789012:user/bob"
        );
        // a role named like another role's path is still another role
        assert!(!same_principal(
            "arn:aws:iam::123456789012:role/bluegreen.promotion/x",
            "arn:aws:iam::123456789012:role/bluegreen.promotion"
        ));
    }

    #[test]
    fn only_iam_role_and_user_arns_are_principals_to_list() {
        for ok in [
            "arn:aws:iam::123456789012:role/ci-tests",
            "arn:aws:iam::123456789012:role/team/ci-tests",
            "arn:aws-cn:iam::123456789012:user/bob",
        ] {
            assert!(iam_principal_ok(ok), "{ok}");
        }
        for bad in [
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::1234:role/ci",
            "arn:aws:iam::123456789012:group/ci",
            "arn:aws:sts::123456789012:assumed-role/ci/s",
            "ci-tests",
            "*",
        ] {
            assert!(!iam_principal_ok(bad), "{bad}");
        }
        assert!(role_session_ok(
            "arn:aws:sts::123456789012:assumed-role/approver/carol@example.com"
        ));
        assert!(!role_session_ok(
            "arn:aws:sts::123456789012:assumed-role/approver/*"
        ));
        assert!(!role_session_ok(
            "arn:aws:sts::123456789012:assumed-role/approver"
        ));
    }

    #[test]
    fn different_roles_users_and_accounts_are_different_principals() {
        let role = "arn:aws:sts::123456789012:assumed-role/deployer/alice";
        assert!(!same_principal(
            role,
            "arn:aws:sts::123456789012:assumed-role/approver/alice"
        ));
        assert!(!same_principal(
            role,
            "arn:aws:sts::210987654321:assumed-role/deployer/alice"
        ));
        let user = "arn:aws:iam::123456789012:user/bob";
        assert_eq!(principal(user), user);
        assert!(!same_principal(
            user,
            "arn:aws:iam::123456789012:user/carol"
        ));
        // a role named like a user is still a role
        assert!(!same_principal(
            "arn:aws:sts::123456789012:assumed-role/bob/x",
            user
        ));
        // federated users and non-ARN identities are compared as given
        let fed = "arn:aws:sts::123456789012:federated-user/dave";
        assert_eq!(principal(fed), fed);
        assert_eq!(principal(" AIDAEXAMPLE "), "AIDAEXAMPLE");
    }

    const CI: &str = "arn:aws:iam::123456789012:role/bluegreen-github-deploy";

    #[test]
    fn a_ci_role_session_names_the_github_user_behind_it() {
        let roles = vec![CI.to_string()];
        assert_eq!(
            ci_trigger(
                "arn:aws:sts::123456789012:assumed-role/bluegreen-github-deploy/gh-alice-1",
                &roles
            ),
            Ok(Some("github:alice-1".into()))
        );
        // not a CI role: nobody is recorded behind it
        assert_eq!(
            ci_trigger(
                "arn:aws:sts::123456789012:assumed-role/deployer/gh-alice",
                &roles
            ),
            Ok(None)
        );
        assert_eq!(
            ci_trigger("arn:aws:iam::123456789012:user/bob", &roles),
            Ok(None)
        );
        // a CI session without an actor is refused, whatever else it says
        for session in [
            "deploy-dev-1234",
            "gh-",
            "gh--alice",
            "gh-alice-",
            "gh-a_b",
            "alice",
        ] {
            let caller =
                format!("arn:aws:sts::123456789012:assumed-role/bluegreen-github-deploy/{session}");
            assert!(ci_trigger(&caller, &roles).is_err(), "{session}");
        }
        // the role itself (no session) is no actor either
        assert!(ci_trigger(CI, &roles).is_err());
    }

    #[test]
    fn the_person_who_triggered_it_is_known_by_name_or_by_the_services_map() {
        let none = BTreeMap::new();
        let by = Some("github:Alice");
        // an assumed role's session name, an IAM user's name, a gh- session: case-insensitive
        for approver in [
            "arn:aws:sts::123456789012:assumed-role/approver/alice",
            "arn:aws:iam::123456789012:user/people/ALICE",
            "arn:aws:sts::123456789012:assumed-role/approver/gh-alice",
        ] {
            assert!(triggered_it(approver, by, &none), "{approver}");
        }
        let carol = "arn:aws:sts::123456789012:assumed-role/approver/carol@example.com";
        assert!(!triggered_it(carol, by, &none));
        assert!(!triggered_it(carol, None, &none));
        assert!(!triggered_it(carol, Some("ecr-push:checkout:1.3.0"), &none));
        // the map names carol's session (or her role, or her user) as GitHub user alice
        let session_map = BTreeMap::from([(carol.to_string(), "alice".to_string())]);
        assert!(triggered_it(carol, by, &session_map));
        let other_session = "arn:aws:sts::123456789012:assumed-role/approver/dave@example.com";
        assert!(!triggered_it(other_session, by, &session_map));
        let role_map = BTreeMap::from([(
            "arn:aws:iam::123456789012:role/teams/approver".to_string(),
            "alice".to_string(),
        )]);
        assert!(triggered_it(other_session, by, &role_map));
        let user_map = BTreeMap::from([(
            "arn:aws:iam::123456789012:user/carol".to_string(),
            "ALICE".to_string(),
        )]);
        assert!(triggered_it(
            "arn:aws:iam::123456789012:user/ops/carol",
            by,
            &user_map
        ));
        assert!(!triggered_it(
            "arn:aws:iam::123456789012:user/dave",
            by,
            &user_map
        ));
    }
}
