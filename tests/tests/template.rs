//! The SAM template deploys exactly the function crates, and gives the state machine every
//! `${...}` substitution its definition uses.

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn between<'a>(text: &'a str, open: &str, close: char) -> BTreeSet<&'a str> {
    text.split(open)
        .skip(1)
        .filter_map(|rest| rest.split(close).next())
        .map(str::trim)
        .collect()
}

#[test]
fn every_function_crate_is_built_and_deployed() {
    let template = read("template.yaml");
    let binaries = between(&template, "Binary:", '}');
    let crates: BTreeSet<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions"))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
    let binaries: BTreeSet<String> = binaries.into_iter().map(str::to_string).collect();
    assert_eq!(binaries, crates);
    assert!(template.contains("BuildMethod: rust-cargolambda"));
    assert!(template.contains("Architectures: [arm64]"));
}

#[test]
fn every_substitution_in_the_definition_is_provided() {
    let asl = read("statemachine/blue-green.asl.json");
    let template = read("template.yaml");
    let used = between(&asl, "${", '}');
    assert!(used.len() >= 5, "{used:?}");
    for name in used {
        assert!(
            template.contains(&format!("        {name}: !GetAtt")),
            "template does not substitute {name}"
        );
    }
    assert!(template.contains("DefinitionUri: statemachine/blue-green.asl.json"));
}
