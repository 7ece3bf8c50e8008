//! The API's request parsers one by one, on raw bytes (bodies need not be JSON) and on
//! arbitrary path segments and query pairs: each returns a value or a 4xx error, never panics.
#![no_main]

bluegreen_fuzz::json_mutator!();

/// Splits the input into a selector byte, a few text fields and a body.
fn fields(data: &[u8]) -> Option<(u8, Vec<String>, &[u8])> {
    let (&sel, rest) = data.split_first()?;
    let mut parts = rest.splitn(4, |&b| b == 0);
    let texts: Vec<String> = (0..3)
        .map(|_| String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned())
        .collect();
    Some((sel, texts, parts.next().unwrap_or_default()))
}

fn query(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn refused<T>(r: Result<T, api::http::ApiError>) {
    if let Err(e) = r {
        assert!(
            (400..500).contains(&e.status),
            "a parser answered {}: {}",
            e.status,
            e.message
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use api::requests as r;
    // A JSON seed (a sample API event) contributes its body, so the corpus starts from real
    // request bodies.
    if let Some(v) = bluegreen_fuzz::json(data) {
        let body = v.get("body").and_then(|b| b.as_str()).map(str::as_bytes);
        let q = v
            .get("rawQueryString")
            .and_then(|b| b.as_str())
            .unwrap_or_default();
        for sel in 0..16u8 {
            run(sel, &["checkout".into(), "dev".into(), q.into()], body);
        }
        return;
    }
    let Some((sel, texts, body)) = fields(data) else {
        return;
    };
    let body = (!body.is_empty()).then_some(body);
    run(sel, &texts, body);

    fn run(sel: u8, t: &[String], body: Option<&[u8]>) {
        let q = query(&t[2]);
        // The path's scope, as the router hands it over (checked names or a 400).
        let params: Vec<api::routes::Param> =
            vec![("service", t[0].clone()), ("environment", t[1].clone())];
        let scope = match api::per_service::Scope::from_params(&params) {
            Ok(s) => s,
            Err(e) => {
                refused::<()>(Err(e));
                return;
            }
        };
        match sel % 16 {
            0 => refused(r::start(body, &scope)),
            1 => refused(r::rollback(body)),
            2 => refused(r::environment_rollback(body, &scope)),
            3 => refused(r::service(&scope, body, None)),
            4 => refused(r::environment(&scope, body, None)),
            5 => refused(r::history(&q, &scope)),
            6 => refused(r::metrics_query(&q, &scope)),
            7 => refused(r::version(&t[0])),
            8 => refused(r::evidence(body, &scope)),
            9 => refused(r::clear_quarantine(body, &scope)),
            10 => refused(r::promote(body, &scope)),
            11 => refused(r::approve(body)),
            12 => refused(r::reject(body)),
            13 => refused(r::version_query(&q, &scope)),
            14 => {
                refused(r::name("service", &t[0]));
                refused(r::deployment_id(&t[0]));
            }
            _ => {
                let _ = api::routes::route(&t[0], &t[1]);
                if let Ok(b) = r::start(body, &scope) {
                    let now = time::OffsetDateTime::UNIX_EPOCH;
                    let env = scope.environment.as_deref().unwrap_or_default();
                    for (key, request) in [(Some(t[1].as_str()), None), (None, Some(t[2].as_str()))] {
                        match r::new_deployment_id(key, request, &scope.service, env, &b.version, now) {
                            Ok(id) => assert!(
                                bluegreen_fuzz::shared::domain::DeploymentId::parse(&id).is_ok(),
                                "generated an invalid deployment id {id:?}"
                            ),
                            Err(e) => refused::<()>(Err(e)),
                        }
                    }
                }
            }
        }
    }
});
