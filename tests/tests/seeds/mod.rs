//! The chaos campaigns' seeds. CI runs the committed list in `<campaign>.txt` (one seed a line,
//! `#` starts a comment): a fixed set, so a CI run is reproducible, and every seed that ever
//! found a bug stays in it as a regression case. `<VAR>=<seed>` runs that one campaign;
//! `<VAR>=random` explores a new one (what `make chaos` does), printing its seed.

use std::path::Path;

/// The master seeds to run: the variable's seed, a fresh one for `random`, or the committed list.
pub fn campaign_seeds(var: &str, campaign: &str) -> Vec<u64> {
    match std::env::var(var).ok().as_deref().map(str::trim) {
        Some("random") => vec![fresh()],
        Some(v) if !v.is_empty() => match v.parse() {
            Ok(seed) => vec![seed],
            Err(e) => panic!("{var}={v:?}: a seed is a u64 or `random` ({e})"),
        },
        _ => committed(campaign),
    }
}

fn fresh() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 ^ 0x5eed)
        .unwrap_or(0x5eed)
}

fn committed(campaign: &str) -> Vec<u64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/seeds")
        .join(format!("{campaign}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let seeds: Vec<u64> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse()
                .unwrap_or_else(|e| panic!("{}: {l:?} is not a seed: {e}", path.display()))
        })
        .collect();
    assert!(!seeds.is_empty(), "{} lists no seed", path.display());
    seeds
}
