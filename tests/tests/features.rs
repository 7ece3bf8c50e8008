//! One cargo feature per adapter (shared/Cargo.toml): every function enables exactly the adapters
//! its sources call, so no package links an AWS client it never uses and none misses one it
//! needs (which would be a named "built without" error at run time, see
//! `shared::adapters::access::not_built`).
//!
//! What a function's sources call is read from them, never listed here:
//! - `shared::adapters::<name>` names the adapter;
//! - a `shared::runtime` helper needs the features on its `#[cfg]` (`phase_deps`, `control_deps`);
//! - a port call through `EnvironmentAccess` (`.router(`, `.compute(`, ...) needs the features
//!   `AwsAccess` builds that port with (read from its `#[cfg(feature = ...)]` arms);
//! - the shared modules a function uses (`shared::usecases::rollback`, ...) count with their own port
//!   calls, and those of the modules they use in turn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    paths.sort();
    paths
}

/// Every `.rs` file under `dir`, without its tests: a file named `tests.rs` is left out, and a
/// file's text stops at its `#[cfg(test)]` module (the house style puts it last).
fn sources(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in entries(dir) {
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(without_tests(&read(&path)));
        }
    }
    out
}

fn without_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// The identifiers right after each occurrence of `prefix` (`a` in `prefix a`, and `a`, `b` in
/// `prefix {a, b::c}`).
fn idents_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = list.split('}').next().unwrap_or_default();
            out.extend(list.split(',').map(ident).filter(|s| !s.is_empty()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The module paths right after each occurrence of `prefix`: `a::b` in `prefix a::b::C`, and
/// `a::b`, `a::c::d` in `prefix a::{b, c::d}`.
fn paths_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let head: String = rest.chars().take_while(|c| is_path(*c)).collect();
        let after = &rest[head.len()..];
        let head = head.trim_end_matches(':');
        if head.is_empty() {
            continue;
        }
        match after.strip_prefix('{') {
            Some(list) if rest[..rest.len() - after.len()].ends_with("::") => {
                for item in list.split('}').next().unwrap_or_default().split(',') {
                    let item: String = item.trim().chars().take_while(|c| is_path(*c)).collect();
                    let item = item.trim_end_matches(':');
                    if item.is_empty() || item == "self" {
                        out.insert(head.to_string());
                    } else {
                        out.insert(format!("{head}::{item}"));
                    }
                }
            }
            _ => {
                out.insert(head.to_string());
            }
        }
    }
    out
}

/// The features named in `#[cfg(...)]` attributes in `text`.
fn cfg_features(text: &str) -> BTreeSet<String> {
    text.split("feature = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The shared crate's modules by path (`usecases::rollback`), each with its own file's sources
/// (tests left out); the adapters, the runtime and the test doubles are not use cases.
fn collect_modules(dir: &Path, parent: &str, modules: &mut BTreeMap<String, String>) {
    for path in entries(dir) {
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        if parent.is_empty() && matches!(name, "lib" | "adapters" | "runtime" | "fakes" | "faults")
        {
            continue;
        }
        let key = if parent.is_empty() {
            name.to_string()
        } else if name == "mod" {
            parent.to_string()
        } else {
            format!("{parent}::{name}")
        };
        if path.is_dir() {
            collect_modules(&path, &key, modules);
        } else if path.extension().is_some_and(|e| e == "rs") {
            modules.insert(key, without_tests(&read(&path)));
        }
    }
}

/// How sources reach adapters, read from the shared crate.
struct Model {
    /// The adapter features: one per module in shared/src/adapters (but `http`).
    adapters: BTreeSet<String>,
    /// `shared::runtime` helper → the features on its `#[cfg]`.
    helpers: BTreeMap<String, BTreeSet<String>>,
    /// `EnvironmentAccess` port → the features `AwsAccess` builds it with.
    ports: BTreeMap<String, BTreeSet<String>>,
    /// shared module path → its file's sources (tests left out).
    modules: BTreeMap<String, String>,
}

impl Model {
    fn read() -> Self {
        let shared = root().join("shared/src");
        let adapters: BTreeSet<String> = entries(&shared.join("adapters"))
            .iter()
            .filter_map(|p| {
                let name = p.file_stem()?.to_str()?.to_string();
                (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
            })
            .filter(|n| n != "mod" && n != "http")
            .collect();

        let runtime = without_tests(&read(&shared.join("runtime.rs")));
        let mut helpers = BTreeMap::new();
        let lines: Vec<&str> = runtime.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // the attributes and doc comment right above the item
            let above = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with('}'))
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            helpers.insert(name, cfg_features(&above));
        }

        let access = read(&shared.join("adapters/access.rs"));
        let body = access
            .split("impl EnvironmentAccess for AwsAccess")
            .nth(1)
            .unwrap_or_else(|| panic!("access.rs: no `impl EnvironmentAccess for AwsAccess`"));
        let body = without_tests(body);
        let mut ports = BTreeMap::new();
        for method in body.split("async fn ").skip(1) {
            let name: String = method
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            ports.insert(name, cfg_features(method));
        }

        let mut modules = BTreeMap::new();
        collect_modules(&shared, "", &mut modules);
        Self {
            adapters,
            helpers,
            ports,
            modules,
        }
    }

    /// The module an item path is in: its longest prefix that is a module.
    fn module_of(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| self.modules.contains_key(m))
    }

    /// The adapters `sources` (a crate's, outside the shared crate) call; port calls count when
    /// the crate's ports are `AwsAccess` (the functions'), not when they are fakes (tests').
    fn used(&self, sources: &str, through_access: bool) -> BTreeSet<String> {
        let mut used: BTreeSet<String> = idents_after(sources, "shared::adapters::")
            .into_iter()
            .filter(|a| self.adapters.contains(a))
            .collect();
        for (helper, features) in &self.helpers {
            if sources.contains(&format!("runtime::{helper}(")) {
                used.extend(features.iter().cloned());
            }
        }
        // the crate's own port calls, then those of the shared modules it uses, transitively
        let mut texts = vec![sources.to_string()];
        let mut seen = BTreeSet::new();
        let mut pending: Vec<String> = paths_after(sources, "shared::").into_iter().collect();
        while let Some(path) = pending.pop() {
            if let Some(module) = self.module_of(&path)
                && seen.insert(module.clone())
            {
                let text = &self.modules[&module];
                texts.push(text.clone());
                pending.extend(paths_after(text, "crate::"));
            }
        }
        for text in texts.iter().filter(|_| through_access) {
            for (port, features) in &self.ports {
                if text.contains(&format!(".{port}(")) {
                    used.extend(features.iter().cloned());
                }
            }
        }
        used.retain(|a| self.adapters.contains(a));
        used
    }
}

/// The features a crate's Cargo.toml enables on `shared` in `[dependencies]`, and the AWS SDK
/// crates it depends on itself.
fn manifest(cargo_toml: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let deps = cargo_toml
        .split("\n[dependencies]\n")
        .nth(1)
        .unwrap_or_default()
        .split("\n[")
        .next()
        .unwrap_or_default();
    let mut features = BTreeSet::new();
    let mut sdks = BTreeSet::new();
    for line in deps.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        if name == "shared" {
            if let Some(list) = line.split("features = [").nth(1) {
                let list = list.split(']').next().unwrap_or_default();
                features.extend(
                    list.split(',')
                        .map(|f| f.trim().trim_matches('"').to_string())
                        .filter(|f| !f.is_empty()),
                );
            }
        } else if name.starts_with("aws-sdk-") {
            sdks.insert(name.to_string());
        }
    }
    (features, sdks)
}

/// What is wrong with a crate's adapter features: each adapter it enables but does not call,
/// each it calls but does not enable, and each AWS SDK it depends on without naming it.
fn findings(model: &Model, name: &str, cargo_toml: &str, sources: &str) -> Vec<String> {
    check(model, name, cargo_toml, sources, true)
}

fn check(
    model: &Model,
    name: &str,
    cargo_toml: &str,
    sources: &str,
    through_access: bool,
) -> Vec<String> {
    let (features, sdks) = manifest(cargo_toml);
    let enabled: BTreeSet<String> = features
        .into_iter()
        .filter(|f| model.adapters.contains(f))
        .collect();
    let used = model.used(sources, through_access);
    let mut out = Vec::new();
    for a in enabled.difference(&used) {
        out.push(format!(
            "{name}: enables the adapter feature `{a}` but its sources call no {a} adapter"
        ));
    }
    for a in used.difference(&enabled) {
        out.push(format!(
            "{name}: calls the {a} adapter without enabling the feature `{a}` of shared"
        ));
    }
    for sdk in sdks {
        if !sources.contains(&sdk.replace('-', "_")) {
            out.push(format!(
                "{name}: depends on {sdk} but its sources never name it (adapters bring their SDK)"
            ));
        }
    }
    out
}

fn function_crates() -> Vec<PathBuf> {
    entries(&root().join("functions"))
        .into_iter()
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect()
}

#[test]
fn every_function_enables_exactly_the_adapters_it_calls() {
    let model = Model::read();
    let crates = function_crates();
    assert_eq!(crates.len(), 10, "{crates:?}");
    let mut all = Vec::new();
    for dir in &crates {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        all.extend(findings(
            &model,
            &format!("functions/{name}"),
            &read(&dir.join("Cargo.toml")),
            &sources(&dir.join("src")).join("\n"),
        ));
    }
    assert_eq!(all, Vec::<String>::new());
}

#[test]
fn the_other_crates_enable_exactly_the_adapters_they_call() {
    let model = Model::read();
    let mut all = Vec::new();
    for (dir, section) in [
        ("local-stack", "[dependencies]"),
        ("bench", "[dependencies]"),
        ("cli", "[dependencies]"),
        // the integration tests' shared dependency is a dev-dependency
        ("tests", "[dev-dependencies]"),
    ] {
        let path = root().join(dir);
        let cargo_toml = read(&path.join("Cargo.toml")).replace(section, "[dependencies]");
        // their tests are what they are for: read them too (all but this file, whose examples
        // name adapters)
        let mut texts = Vec::new();
        for sub in ["src", "tests"] {
            if path.join(sub).is_dir() {
                texts.extend(all_text(&path.join(sub)));
            }
        }
        // their ports are fakes or their own: only named adapters and helpers count
        let mut found = check(&model, dir, &cargo_toml, &texts.join("\n"), false);
        // these crates may name SDK clients of their own (the local stack drives moto with them)
        found.retain(|f| !f.contains("depends on aws-sdk-"));
        all.extend(found);
    }
    assert_eq!(all, Vec::<String>::new());
}

fn all_text(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in entries(dir) {
        if path.is_dir() {
            out.extend(all_text(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "features.rs")
        {
            out.push(read(&path));
        }
    }
    out
}

#[test]
fn every_adapter_is_built_only_with_its_own_feature() {
    let model = Model::read();
    let manifest = read(&root().join("shared/Cargo.toml"));
    let declared = manifest
        .split("\n[features]\n")
        .nth(1)
        .unwrap_or_else(|| panic!("shared/Cargo.toml: no [features]"));
    let modules = read(&root().join("shared/src/adapters/mod.rs"));
    for a in &model.adapters {
        assert!(
            declared.contains(&format!("\n{a} = [")),
            "shared/Cargo.toml: no feature `{a}` for the {a} adapter"
        );
        assert!(
            modules.contains(&format!("#[cfg(feature = \"{a}\")]\npub mod {a};")),
            "shared/src/adapters/mod.rs: `pub mod {a}` is not behind its feature"
        );
    }
    // an SDK is a dependency only through an adapter's feature
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|d| d.split("\n[").next())
        .unwrap_or_default();
    for line in deps.lines().filter(|l| l.starts_with("aws-sdk-")) {
        assert!(
            line.contains("optional = true"),
            "shared/Cargo.toml: `{line}` is linked into every crate"
        );
    }
    // the model read what it needs: each port and helper names its adapters
    assert!(model.adapters.len() >= 9, "{:?}", model.adapters);
    for port in ["router", "targets", "compute", "signals"] {
        assert!(
            model.ports.get(port).is_some_and(|f| !f.is_empty()),
            "AwsAccess::{port} names no adapter feature: {:?}",
            model.ports
        );
    }
    assert!(
        model.ports["compute"].contains("ecs") && model.ports["compute"].contains("eks"),
        "{:?}",
        model.ports
    );
    for helper in ["phase_deps", "control_deps"] {
        assert!(
            model
                .helpers
                .get(helper)
                .is_some_and(|f| f.contains("dynamodb") && f.contains("access")),
            "runtime::{helper}: {:?}",
            model.helpers
        );
    }
}

/// The check itself: each way of calling an adapter counts, and both directions are reported.
#[test]
fn a_function_that_enables_an_adapter_it_does_not_call_or_calls_one_it_does_not_enable_is_named() {
    let model = Model::read();
    let toml = |features: &str| {
        format!(
            "[package]\nname = \"f\"\n\n[dependencies]\nshared = {{ workspace = true, features = [{features}] }}\ntokio.workspace = true\n\n[dev-dependencies]\nshared = {{ workspace = true, features = [\"fakes\", \"ecs\"] }}\n"
        )
    };
    let phase = "let deps = shared::runtime::phase_deps().await?;";
    let base = "\"access\", \"dynamodb\", \"registry\"";
    // exactly right: nothing to say
    assert_eq!(
        findings(&model, "f", &toml(base), phase),
        Vec::<String>::new()
    );
    // linking ECS without a compute call
    assert_eq!(
        findings(&model, "f", &toml(&format!("{base}, \"ecs\"")), phase),
        vec!["f: enables the adapter feature `ecs` but its sources call no ecs adapter"]
    );
    // a compute call needs every platform AwsAccess can build
    let compute = format!("{phase}\nlet c = deps.access.compute(&reach, p).await?;");
    assert_eq!(
        findings(&model, "f", &toml(&format!("{base}, \"ecs\"")), &compute),
        vec!["f: calls the eks adapter without enabling the feature `eks` of shared"]
    );
    // a helper's cfg counts, a use case's port calls count, a named adapter counts
    assert_eq!(
        findings(
            &model,
            "f",
            &toml("\"dynamodb\""),
            "shared::runtime::phase_deps(); shared::usecases::rollback::roll_back(); use shared::adapters::{sfn, http};"
        ),
        vec![
            "f: calls the access adapter without enabling the feature `access` of shared",
            "f: calls the elbv2 adapter without enabling the feature `elbv2` of shared",
            "f: calls the registry adapter without enabling the feature `registry` of shared",
            "f: calls the sfn adapter without enabling the feature `sfn` of shared",
        ]
    );
    // a direct SDK dependency bypasses the features
    let with_sdk = toml(base).replace(
        "tokio.workspace = true",
        "tokio.workspace = true\naws-sdk-ecs.workspace = true",
    );
    assert_eq!(
        findings(&model, "f", &with_sdk, phase),
        vec!["f: depends on aws-sdk-ecs but its sources never name it (adapters bring their SDK)"]
    );
}

/// `sam build` runs `cargo lambda build --bin <Binary>` in the function's CodeUri: from the
/// workspace root cargo would resolve every member's features together and link every adapter
/// into every function; from the function's own crate, only the adapters that crate enables.
#[test]
fn every_function_is_built_from_its_own_crate() {
    let template = std::fs::read_to_string(root().join("template.yaml"))
        .unwrap_or_else(|e| panic!("template.yaml: {e}"));
    let mut built = Vec::new();
    for part in template.split("BuildProperties: { Binary: ").skip(1) {
        let binary = part.split(' ').next().unwrap_or_default();
        let properties = part.split("\n    Properties:\n").nth(1).unwrap_or_default();
        let code_uri = properties
            .lines()
            .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
            .find_map(|l| l.trim().strip_prefix("CodeUri: "));
        assert_eq!(
            code_uri,
            Some(format!("functions/{binary}").as_str()),
            "template.yaml: the function with Binary {binary} must build from functions/{binary}"
        );
        built.push(binary.to_string());
    }
    assert_eq!(built.len(), function_crates().len(), "{built:?}");
}
