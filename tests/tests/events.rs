//! Every file in `events/` is parsed here, so the samples cannot rot: execution inputs as the
//! state machine's input (a deployment request), task inputs as the state a phase receives.

use serde_json::Value;
use shared::contracts::{DeploymentRequest, ExecutionState};
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_event_file_parses_as_what_its_name_says() {
    let mut all = vec![];
    files(&events_dir(), &mut all);
    assert!(all.len() >= 8, "expected the sample events, found {all:?}");
    for path in all {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let value = json(&path);
        match (parent, name.as_str()) {
            ("events", n) if n.starts_with("execution-input") => {
                let req: DeploymentRequest = serde_json::from_value(value)
                    .unwrap_or_else(|e| panic!("{name}: not a deployment request: {e}"));
                req.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            ("tasks", n) => {
                let state =
                    ExecutionState::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
                let needs_progress = n != "deploy-green.json";
                assert_eq!(state.progress.is_some(), needs_progress, "{name}");
                assert_eq!(state.error.is_some(), n == "rollback.json", "{name}");
                let function = n.trim_end_matches(".json");
                let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../functions")
                    .join(function);
                assert!(crate_dir.is_dir(), "{name} names no function in functions/");
            }
            _ => panic!(
                "{}: no test parses this kind of event; add it to events.rs",
                path.display()
            ),
        }
    }
}

#[test]
fn the_full_example_spells_out_the_defaults() {
    let full: DeploymentRequest =
        serde_json::from_value(json(&events_dir().join("execution-input.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    let minimal: DeploymentRequest =
        serde_json::from_value(json(&events_dir().join("execution-input-minimal.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.steps, minimal.steps);
    assert_eq!(full.timings, minimal.timings);
    assert_eq!(full.thresholds, minimal.thresholds);
}
