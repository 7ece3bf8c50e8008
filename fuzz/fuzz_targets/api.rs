//! The HTTP API end to end on the in-memory world: an API Gateway HTTP API (payload 2.0)
//! event, routed, its path, query and body parsed, the route run. Every reply is JSON with a
//! status; no reply is a 5xx (the fakes never fail); a 4xx changes nothing.
#![no_main]
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use bluegreen_fuzz::{assert_unchanged, block_on, fingerprint, json, world};

bluegreen_fuzz::json_mutator!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = json(data) else { return };
    // What the Lambda runtime does first; an event that is not this shape never reaches us.
    let Ok(req) = serde_json::from_value::<ApiGatewayV2httpRequest>(input) else {
        return;
    };
    let w = world(true);
    let deps = api::ApiDeps {
        registry: w.registry.clone(),
        store: w.store.clone(),
        executions: w.executions.clone(),
        access: w.access.clone(),
        images: w.images.clone(),
        clock: w.clock.clone(),
        ci_roles: Vec::new(),
    };
    let before = fingerprint(&w);
    let res = block_on(api::handle(&deps, req));
    let status = res.status_code;
    let body = match &res.body {
        Some(Body::Text(t)) => t.as_bytes(),
        Some(Body::Binary(b)) => b.as_slice(),
        _ => &[],
    };
    if serde_json::from_slice::<serde_json::Value>(body).is_err() {
        panic!(
            "status {status}: the body is not JSON: {:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(
        status < 500,
        "status {status} from the in-memory world: {:?}",
        String::from_utf8_lossy(body)
    );
    if (400..500).contains(&status) {
        assert_unchanged(&w, &before, &format!("api (status {status})"));
    }
});
