//! Who a caller is, for the rule that a person cannot approve their own deployment.
//!
//! API Gateway names an IAM caller by the ARN of its session: a role's caller is
//! `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, and the session name is whatever the
//! caller chose when assuming the role. Comparing session ARNs would let one role approve its
//! own deployment under a second session name, so callers are compared as principals: the role
//! (`arn:aws:iam::ACCOUNT:role/ROLE`, paths are not part of a session ARN), the IAM user, or
//! the federated user. Two people who share one role are one principal here: an approver needs
//! a role of their own (the approver policy), which is what four eyes means in IAM terms.

/// The principal behind an identity API Gateway reports (an ARN; anything else as given).
pub fn principal(identity: &str) -> String {
    let id = identity.trim();
    let Some(rest) = id.strip_prefix("arn:") else {
        return id.to_string();
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, "sts", _region, account, resource] = parts.as_slice() else {
        return id.to_string();
    };
    match resource.split_once('/') {
        Some(("assumed-role", role_and_session)) => {
            let role = role_and_session.split('/').next().unwrap_or_default();
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        _ => id.to_string(),
    }
}

/// Whether two identities are the same principal (sessions of one role are).
pub fn same_principal(a: &str, b: &str) -> bool {
    principal(a) == principal(b)
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
}
