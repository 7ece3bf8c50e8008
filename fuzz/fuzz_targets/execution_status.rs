//! The execution-status trigger: an EventBridge `Step Functions Execution Status Change`
//! event, on the in-memory world with a deployment at 10 %. Refused events change nothing.
#![no_main]
use bluegreen_fuzz::shared::error::PhaseError;
use bluegreen_fuzz::{assert_unchanged, block_on, fingerprint, json, world};

bluegreen_fuzz::json_mutator!();

const STATE_MACHINE: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:bluegreen-blue-green";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = json(data) else { return };
    let parsed = execution_status::parse(input.clone());
    let w = world(true);
    let deps = execution_status::Deps {
        store: w.store.clone(),
        access: w.access.clone(),
        clock: w.clock.clone(),
        state_machine_arn: STATE_MACHINE.into(),
    };
    let before = fingerprint(&w);
    let handled = block_on(execution_status::handle(&deps, input));
    if let Err(PhaseError::InvalidInput(_)) = handled {
        assert_unchanged(&w, &before, "execution-status");
    }
    if parsed.is_err() {
        assert!(
            matches!(handled, Err(PhaseError::InvalidInput(_))),
            "parse refused the event but handle did not: {handled:?}"
        );
    }
});
