//! The execution input (a deployment request) and the execution state every phase parses:
//! serde, then the cross-field validation. Whatever validates must survive a round trip.
#![no_main]
use bluegreen_fuzz::json;
use bluegreen_fuzz::shared::contracts::{DeploymentRequest, ExecutionState};
use serde_json::json as j;

bluegreen_fuzz::json_mutator!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(value) = json(data) else { return };
    if let Ok(req) = serde_json::from_value::<DeploymentRequest>(value.clone())
        && req.validate().is_ok()
    {
        let again: DeploymentRequest = serde_json::to_value(&req)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|e| panic!("a valid request does not round-trip: {e}"));
        assert_eq!(again, req, "a valid request changes in a round trip");
        if let Err(e) = again.validate() {
            panic!("a valid request is invalid after a round trip: {e}");
        }
        let _ = req.forward_target();
        let _ = req.digest();
    }
    // The same value as the request of an execution state, then as the state itself.
    let state = j!({
        "deployment_id": "checkout-dev-1-3-0-0001",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:blue-green:checkout-dev-1-3-0-0001",
        "started_at": "2025-01-03T10:00:00Z",
        "request": value.clone(),
    });
    for v in [state, value] {
        if let Ok(s) = ExecutionState::from_value(v) {
            bluegreen_fuzz::assert_reparses(&s, "execution state");
            if let Some(e) = &s.error {
                let _ = e.message();
            }
        }
    }
});
