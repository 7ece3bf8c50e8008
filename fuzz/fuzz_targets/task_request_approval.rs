//! The request-approval handler (`{"state": <execution state>, "task_token": ...}`) on the
//! in-memory world.
#![no_main]
use bluegreen_fuzz::shared::error::PhaseError;
use bluegreen_fuzz::{assert_unchanged, block_on, fingerprint, json, world};

bluegreen_fuzz::json_mutator!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = json(data) else { return };
    let w = world(false);
    let deps = w.phase_deps();
    let before = fingerprint(&w);
    if let Err(PhaseError::InvalidInput(_)) = block_on(request_approval::handle(&deps, input)) {
        assert_unchanged(&w, &before, "request-approval");
    }
});
