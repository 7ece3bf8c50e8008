//! The workflows run only code they name by commit: every `uses:` in `.github/workflows/` is
//! pinned to a full 40-hex commit SHA with the release it was taken from in a trailing comment
//! (`uses: actions/checkout@<sha> # v4.4.0`). A tag or branch can be moved to other code by
//! whoever controls the action's repository; a job that may mint AWS credentials
//! (`id-token: write`) would then run that code with them.
//!
//! Every role session a workflow assumes names the person who triggered the run
//! (`role-session-name: gh-${{ github.triggering_actor }}`): the GitHub roles' trust requires
//! `gh-?*`, and the API records that person behind a CI deployment so they cannot approve it.
//!
//! Each check returns findings; the tests at the bottom break copies of a workflow and show
//! each break is reported.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every workflow file: (name, text).
fn workflows() -> Vec<(String, String)> {
    let dir = root().join(".github/workflows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = read(&format!(".github/workflows/{n}"));
            (n, text)
        })
        .collect()
}

/// `owner/repo[/path]@<40 lowercase hex>`; local actions (`./…`) are code of this repository.
fn pinned(reference: &str) -> bool {
    if reference.starts_with("./") {
        return true;
    }
    match reference.rsplit_once('@') {
        Some((action, sha)) => {
            action.contains('/')
                && sha.len() == 40
                && sha
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        None => false,
    }
}

/// Every `uses:` line of a workflow's text: pinned to a commit, with a comment naming what the
/// commit is (`# v4.4.0`), so a reviewer sees an upgrade as a version change.
fn pin_findings(file: &str, text: &str) -> Vec<String> {
    let mut findings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start().trim_start_matches("- ");
        let Some(rest) = code.strip_prefix("uses:") else {
            continue;
        };
        let (reference, comment) = match rest.split_once(" #") {
            Some((r, c)) => (r.trim(), c.trim()),
            None => (rest.trim(), ""),
        };
        let reference = reference.trim_matches(|c| c == '"' || c == '\'');
        if !pinned(reference) {
            findings.push(format!(
                "{file}:{}: {reference} is not pinned to a 40-hex commit SHA",
                n + 1
            ));
        } else if !reference.starts_with("./") && comment.is_empty() {
            findings.push(format!(
                "{file}:{}: {reference} has no `# <version>` comment",
                n + 1
            ));
        }
    }
    findings
}

/// Whether `permissions` grants `id-token: write` (also through `write-all`).
fn mints_tokens(permissions: &Value) -> bool {
    match permissions {
        Value::String(s) => s == "write-all",
        Value::Mapping(m) => m
            .get(Value::from("id-token"))
            .and_then(Value::as_str)
            .is_some_and(|v| v == "write"),
        _ => false,
    }
}

/// Every job that may mint an OIDC token (its own `permissions`, or the workflow's when it has
/// none) uses only pinned actions and reusable workflows. Parsed, so it holds however the
/// steps are written.
fn token_job_findings(file: &str, text: &str) -> Vec<String> {
    let doc: Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
    let mut findings = Vec::new();
    let Some(jobs) = doc["jobs"].as_mapping() else {
        return vec![format!("{file}: no jobs")];
    };
    for (name, job) in jobs {
        let name = name.as_str().unwrap_or_default();
        let permissions = match job.get("permissions") {
            Some(p) => p,
            None => &doc["permissions"],
        };
        if !mints_tokens(permissions) {
            continue;
        }
        let steps = job["steps"].as_sequence().cloned().unwrap_or_default();
        let uses = job
            .get("uses")
            .into_iter()
            .chain(steps.iter().filter_map(|s| s.get("uses")));
        for u in uses {
            let reference = u.as_str().unwrap_or_default();
            if !pinned(reference) {
                findings.push(format!(
                    "{file}: job {name} has id-token: write and uses {reference}, not pinned to a commit"
                ));
            }
        }
    }
    findings
}

/// The session name every AWS role session of the workflows carries.
const SESSION_NAME: &str = "gh-${{ github.triggering_actor }}";

/// Every `configure-aws-credentials` step assumes its role with `role-session-name:`
/// [`SESSION_NAME`]. Parsed, so it holds however the steps are written.
fn session_name_findings(file: &str, text: &str) -> Vec<String> {
    let doc: Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
    let mut findings = Vec::new();
    for (name, job) in doc["jobs"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        for step in job["steps"].as_sequence().into_iter().flatten() {
            let uses = step["uses"].as_str().unwrap_or_default();
            if !uses.starts_with("aws-actions/configure-aws-credentials@") {
                continue;
            }
            let session = step["with"]["role-session-name"].as_str();
            if session != Some(SESSION_NAME) {
                findings.push(format!(
                    "{file}: job {name} assumes its role with role-session-name {session:?}, not {SESSION_NAME:?} (the person who triggered the run)"
                ));
            }
        }
    }
    findings
}

/// How many `configure-aws-credentials` steps the workflows have.
fn credential_steps(text: &str) -> usize {
    text.matches("aws-actions/configure-aws-credentials@")
        .count()
}

#[test]
fn every_aws_session_names_the_person_who_triggered_the_run() {
    let all = workflows();
    // the deploy workflows assume roles; if none did, the check would hold vacuously
    let steps: usize = all.iter().map(|(_, t)| credential_steps(t)).sum();
    assert!(
        steps >= 2,
        "expected the two deploy workflows' credentials steps"
    );
    let findings: Vec<String> = all
        .iter()
        .flat_map(|(f, t)| session_name_findings(f, t))
        .collect();
    assert_eq!(findings, Vec::<String>::new());
}

#[test]
fn every_action_is_pinned_to_a_commit_with_its_version() {
    let all = workflows();
    assert!(all.len() >= 3, "found only {all:?}");
    let findings: Vec<String> = all.iter().flat_map(|(f, t)| pin_findings(f, t)).collect();
    assert_eq!(findings, Vec::<String>::new());
}

#[test]
fn jobs_that_mint_aws_credentials_run_only_pinned_actions() {
    let all = workflows();
    // The deploy workflows are such jobs; if none were, the check would hold vacuously.
    let minting = all
        .iter()
        .filter(|(f, t)| {
            let doc: Value = serde_yaml::from_str(t).unwrap_or_else(|e| panic!("{f}: {e}"));
            mints_tokens(&doc["permissions"])
        })
        .count();
    assert!(
        minting >= 2,
        "expected the two deploy workflows to mint tokens"
    );
    let findings: Vec<String> = all
        .iter()
        .flat_map(|(f, t)| token_job_findings(f, t))
        .collect();
    assert_eq!(findings, Vec::<String>::new());
}

mod broken_copies {
    use super::*;

    fn broken(file: &str, from: &str, to: &str) -> String {
        let text = read(&format!(".github/workflows/{file}"));
        assert!(text.contains(from), "{file} no longer has {from:?}");
        text.replacen(from, to, 1)
    }

    fn assert_caught(findings: &[String], reason: &str) {
        assert!(
            findings.iter().any(|f| f.contains(reason)),
            "expected a finding with {reason:?}, got {findings:?}"
        );
    }

    #[test]
    fn an_action_by_tag() {
        let text = broken(
            "ci.yaml",
            "actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0",
            "actions/checkout@v4",
        );
        assert_caught(
            &pin_findings("ci.yaml", &text),
            "actions/checkout@v4 is not pinned",
        );
    }

    #[test]
    fn an_action_by_short_sha() {
        let text = broken(
            "ci.yaml",
            "actions/checkout@11d5960a326750d5838078e36cf38b85af677262",
            "actions/checkout@11d5960",
        );
        assert_caught(&pin_findings("ci.yaml", &text), "is not pinned");
    }

    #[test]
    fn a_pin_without_its_version() {
        let text = broken(
            "ci.yaml",
            "6323deb102c322ba6fcbdcafc7e3dddab59af2b6 # v2.9.2",
            "6323deb102c322ba6fcbdcafc7e3dddab59af2b6",
        );
        assert_caught(
            &pin_findings("ci.yaml", &text),
            "has no `# <version>` comment",
        );
    }

    #[test]
    fn a_credentials_action_by_branch_in_a_deploy_job() {
        let text = broken(
            "deploy-prd.yaml",
            "aws-actions/configure-aws-credentials@7474bc4690e29a8392af63c5b98e7449536d5c3a # v4.3.1",
            "aws-actions/configure-aws-credentials@main",
        );
        assert_caught(
            &token_job_findings("deploy-prd.yaml", &text),
            "job promote has id-token: write and uses aws-actions/configure-aws-credentials@main",
        );
    }

    #[test]
    fn a_session_named_after_the_run_instead_of_the_person() {
        let text = broken(
            "deploy-dev.yaml",
            "role-session-name: gh-${{ github.triggering_actor }}",
            "role-session-name: deploy-dev-${{ github.run_id }}",
        );
        assert_caught(
            &session_name_findings("deploy-dev.yaml", &text),
            "job deploy assumes its role with role-session-name Some(\"deploy-dev-${{ github.run_id }}\")",
        );
        // github.actor names who started the first attempt; a re-run's person is another
        let text = broken(
            "deploy-prd.yaml",
            "role-session-name: gh-${{ github.triggering_actor }}",
            "role-session-name: gh-${{ github.actor }}",
        );
        assert_caught(
            &session_name_findings("deploy-prd.yaml", &text),
            "job promote assumes its role",
        );
        let text = broken(
            "deploy-prd.yaml",
            "          role-session-name: gh-${{ github.triggering_actor }}\n",
            "",
        );
        assert_caught(
            &session_name_findings("deploy-prd.yaml", &text),
            "role-session-name None",
        );
    }

    #[test]
    fn a_job_that_grants_itself_tokens_and_runs_a_tag() {
        // ci.yaml grants no tokens at the top; a job that asks for them is checked on its own.
        let text = broken(
            "ci.yaml",
            "    needs: package\n",
            "    needs: package\n    permissions:\n      id-token: write\n",
        );
        let text = text.replacen(
            "aquasecurity/trivy-action@915b19bbe73b92a6cf82a1bc12b087c9a19a5fe2 # v0.28.0",
            "aquasecurity/trivy-action@0.28.0",
            1,
        );
        assert_caught(
            &token_job_findings("ci.yaml", &text),
            "job scan has id-token: write and uses aquasecurity/trivy-action@0.28.0",
        );
    }
}
