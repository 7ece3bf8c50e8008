//! The namespace Role an EKS environment applies (deploy/eks/rbac.yaml) allows exactly the
//! Kubernetes calls the EKS adapter makes: nothing it calls is missing (a deployment would fail
//! with a 403), and nothing it never calls is granted.

use serde_yaml::Value;
use shared::adapters::eks::kube::CALLS;
use std::collections::BTreeSet;

const MANIFEST: &str = include_str!("../../deploy/eks/rbac.yaml");

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s:?}"))
                .to_string()
        })
        .collect()
}

fn documents() -> Vec<Value> {
    MANIFEST
        .split("\n---\n")
        .map(|d| serde_yaml::from_str(d).unwrap_or_else(|e| panic!("rbac.yaml: {e}")))
        .collect()
}

fn granted() -> BTreeSet<(String, String, String)> {
    let docs = documents();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role")
        .unwrap_or_else(|| panic!("rbac.yaml has no Role"));
    let rules = role["rules"]
        .as_sequence()
        .unwrap_or_else(|| panic!("the Role has no rules"));
    let mut out = BTreeSet::new();
    for r in rules {
        for g in &strings(&r["apiGroups"]) {
            for res in &strings(&r["resources"]) {
                for v in &strings(&r["verbs"]) {
                    assert!(
                        v != "*" && res != "*" && g != "*",
                        "no wildcards: {g} {res} {v}"
                    );
                    out.insert((v.clone(), g.clone(), res.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn the_role_allows_exactly_the_calls_the_adapter_makes() {
    let used: BTreeSet<(String, String, String)> = CALLS
        .iter()
        .map(|(v, g, r)| (v.to_string(), g.to_string(), r.to_string()))
        .collect();
    assert_eq!(granted(), used);
}

#[test]
fn the_binding_gives_the_role_to_the_access_entry_group_only() {
    let docs = documents();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role")
        .unwrap_or_else(|| panic!("no Role"));
    assert_eq!(
        role["kind"], "Role",
        "a namespace Role, never a ClusterRole"
    );
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "RoleBinding")
        .unwrap_or_else(|| panic!("no RoleBinding"));
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subjects = binding["subjects"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no subjects"));
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "Group");
    assert_eq!(subjects[0]["name"], "bluegreen-controller");
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding"),
        "nothing cluster-wide"
    );
}
