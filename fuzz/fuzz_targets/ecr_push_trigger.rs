//! The ECR push trigger: an EventBridge `ECR Image Action` event, parsed, then (for a release
//! push) deployments started on the in-memory world. Refused events change nothing.
#![no_main]
use bluegreen_fuzz::shared::error::PhaseError;
use bluegreen_fuzz::{assert_unchanged, block_on, fingerprint, json, world};

bluegreen_fuzz::json_mutator!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = json(data) else { return };
    let parsed = ecr_push_trigger::parse(input.clone());
    let w = world(false);
    let deps = w.start_deps();
    let before = fingerprint(&w);
    let handled = block_on(ecr_push_trigger::handle(&deps, input));
    if let Err(PhaseError::InvalidInput(_)) = handled {
        assert_unchanged(&w, &before, "ecr-push-trigger");
    }
    if parsed.is_err() {
        assert!(
            matches!(handled, Err(PhaseError::InvalidInput(_))),
            "parse refused the event but handle did not: {handled:?}"
        );
    }
});
