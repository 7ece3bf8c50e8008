//! The alarm trigger, both deliveries: an EventBridge `CloudWatch Alarm State Change` event and
//! a CloudWatch alarm's Lambda action, on the in-memory world with a deployment at 10 %.
//! Refused events change nothing.
#![no_main]
use bluegreen_fuzz::shared::error::PhaseError;
use bluegreen_fuzz::{assert_unchanged, block_on, fingerprint, json, world};

bluegreen_fuzz::json_mutator!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = json(data) else { return };
    let parsed = alarm_trigger::parse(input.clone());
    let w = world(true);
    let deps = alarm_trigger::Deps {
        registry: w.registry.clone(),
        store: w.store.clone(),
        access: w.access.clone(),
        executions: w.executions.clone(),
        clock: w.clock.clone(),
    };
    let before = fingerprint(&w);
    let handled = block_on(alarm_trigger::handle(&deps, input));
    if let Err(PhaseError::InvalidInput(_)) = handled {
        assert_unchanged(&w, &before, "alarm-trigger");
    }
    if parsed.is_err() {
        assert!(
            matches!(handled, Err(PhaseError::InvalidInput(_))),
            "parse refused the event but handle did not: {handled:?}"
        );
    }
});
