//! What the fuzz targets share: a JSON-aware mutator (so the seed events stay JSON while their
//! values go wrong), the in-memory world the handlers run against, and a fingerprint of every
//! side effect that world can record, so a target can check that refused input changed nothing.

use serde_json::{Map, Number, Value};
use shared::fakes::sample::World;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// One single-threaded runtime for the whole fuzzing process: the fakes never wait.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
    .block_on(f)
}

/// The input as JSON, or `None` when it is not JSON at all (the Lambda runtime would refuse it
/// before any handler runs).
pub fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// A world with the sample service and environment registered, and, when `shifted` is set, the
/// sample deployment begun and shifted to 10 % (what the later phases expect to find).
pub fn world(shifted: bool) -> World {
    block_on(async {
        let w = World::default().with_registry().await;
        if shifted {
            w.shifted_to(10, 0).await
        } else {
            w
        }
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sorted<I: IntoIterator<Item = D>, D: Debug>(items: I) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(|i| format!("{i:?}")).collect();
    v.sort();
    v
}

/// Every write any fake can record (store, registry, listener, compute, executions), in a
/// stable order. Two equal fingerprints mean nothing was written in between.
pub fn fingerprint(w: &World) -> Vec<Vec<String>> {
    fingerprint_but_requests(w, false)
}

/// [`fingerprint`], leaving out the records of started executions that are only REQUESTED
/// when `skip_requests` is set: an execution's first phase records the request before anything
/// can refuse it (every started execution is in history), and that is all it may change.
fn fingerprint_but_requests(w: &World, skip_requests: bool) -> Vec<Vec<String>> {
    let s = &w.store;
    let x = &w.executions;
    let records = lock(&s.records);
    let records = records.iter().filter(|(_, r)| {
        !(skip_requests
            && r.phase == shared::domain::Phase::Requested
            && r.colors().is_none()
            && r.finished_at.is_none())
    });
    vec![
        sorted(records),
        sorted(lock(&s.envs).iter()),
        sorted(lock(&s.steps).iter()),
        sorted(lock(&s.ledger).iter()),
        sorted(lock(&s.lock_taken_at).iter()),
        sorted(lock(&s.evidence).iter()),
        sorted(lock(&s.quarantines).iter()),
        sorted(lock(&w.registry.services).iter()),
        sorted(lock(&w.registry.environments).iter()),
        sorted(lock(&w.router.writes).iter()),
        sorted(lock(&w.compute.deploys).iter()),
        sorted(lock(&x.started).iter()),
        sorted(lock(&x.stopped).iter()),
        sorted(lock(&x.resumed).iter()),
        sorted(lock(&x.failed_tasks).iter()),
    ]
}

/// Panics (a finding) when `before` and the world's state now differ: for input the handler
/// refused as invalid.
pub fn assert_unchanged(w: &World, before: &[Vec<String>], what: &str) {
    let after = fingerprint(w);
    if after != before {
        panic!(
            "{what}: refused as invalid input, yet the world changed:\nbefore {before:#?}\nafter {after:#?}"
        );
    }
}

/// [`assert_unchanged`] for an execution's first phase: besides the record of the request (one
/// REQUESTED record, nothing else about it known), nothing may have changed.
pub fn assert_only_requested(w: &World, before: &[Vec<String>], what: &str) {
    let requests = lock(&w.store.records)
        .values()
        .filter(|r| r.phase == shared::domain::Phase::Requested)
        .count();
    let after = fingerprint_but_requests(w, true);
    if requests > 1 || after != before {
        panic!(
            "{what}: refused as invalid input, yet the world changed beyond recording the request ({requests} requested):\nbefore {before:#?}\nafter {after:#?}"
        );
    }
}

/// A small xorshift generator: the mutator must be deterministic in libFuzzer's seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u32) -> Self {
        Rng(u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that sit on or just past the limits the parsers check.
fn interesting(rng: &mut Rng, donor: Option<&Value>) -> Value {
    let s = |x: &str| Value::String(x.to_string());
    let n = |x: i64| Value::Number(Number::from(x));
    let u = |x: u64| Value::Number(Number::from(x));
    match rng.below(32) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => n(0),
        3 => n(-1),
        4 => n(1),
        5 => n(99),
        6 => n(100),
        7 => n(101),
        8 => n(999),
        9 => n(1000),
        10 => u(u64::from(u32::MAX) + 1),
        11 => u(u64::MAX),
        12 => n(i64::MIN),
        13 => Number::from_f64(1e308).map_or(Value::Null, Value::Number),
        14 => Number::from_f64(-0.5).map_or(Value::Null, Value::Number),
        15 => Number::from_f64(f64::MIN_POSITIVE).map_or(Value::Null, Value::Number),
        16 => s(""),
        17 => s(" "),
        18 => Value::String("x".repeat(1 + rng.below(1100))),
        19 => s("é\u{0}🙂\u{202e}"),
        20 => s("sha256:"),
        21 => s("0.0.0-rc.1+build.5"),
        22 => s("2025-13-40T25:61:61Z"),
        23 => s("9999-12-31T23:59:59.999999999-23:59"),
        24 => s("arn:aws:iam::123456789012:role/"),
        25 => s("../../etc/passwd"),
        26 => s("%2F%00%ZZ"),
        27 => s("AAAA===="),
        28 => Value::Array(vec![]),
        29 => Value::Object(Map::new()),
        _ => donor.cloned().unwrap_or(Value::Null),
    }
}

/// Paths (indices and keys) to every node, root first.
fn paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(PathStep::Index(i));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                at.push(PathStep::Key(k.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum PathStep {
    Index(usize),
    Key(String),
}

fn node<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match (step, v) {
        (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i),
        (PathStep::Key(k), Value::Object(o)) => o.get_mut(k),
        _ => None,
    })
}

/// One structural change to one node of a JSON document.
fn mutate_value(v: &mut Value, rng: &mut Rng) {
    let mut all = vec![];
    paths(v, &mut vec![], &mut all);
    let donor = {
        let p = &all[rng.below(all.len())];
        let mut copy = v.clone();
        node(&mut copy, p).map(|n| n.clone())
    };
    let p = &all[rng.below(all.len())];
    let Some(target) = node(v, p) else { return };
    match (rng.below(6), target) {
        (0, Value::Object(o)) if !o.is_empty() => {
            let k = o
                .keys()
                .nth(rng.below(o.len()))
                .cloned()
                .unwrap_or_default();
            o.shift_remove(&k);
        }
        (1, Value::Object(o)) => {
            let k = [
                "unknown", "Error", "Cause", "progress", "detail", "body", "steps",
            ][rng.below(7)];
            o.insert(k.to_string(), interesting(rng, donor.as_ref()));
        }
        (0, Value::Array(a)) if !a.is_empty() => {
            a.remove(rng.below(a.len()));
        }
        (1, Value::Array(a)) => {
            let x = a.get(rng.below(a.len().max(1))).cloned();
            a.push(x.unwrap_or_else(|| interesting(rng, donor.as_ref())));
        }
        (2, Value::String(s)) if !s.is_empty() => {
            let mut cut = rng.below(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        (3, Value::String(s)) => {
            s.push_str(["-", ".", ":", "/", "0", "A", " ", "\u{1f642}"][rng.below(8)]);
        }
        (_, t) => *t = interesting(rng, donor.as_ref()),
    }
}

/// libFuzzer's custom mutator: most of the time, one JSON-aware change to a JSON input (so the
/// fuzzer spends its time past the JSON syntax check); otherwise libFuzzer's byte mutations.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = Rng::new(seed);
    if rng.below(4) != 0
        && let Some(mut v) = json(&data[..size])
    {
        for _ in 0..=rng.below(3) {
            mutate_value(&mut v, &mut rng);
        }
        if let Ok(out) = serde_json::to_vec(&v)
            && out.len() <= max_size
        {
            data[..out.len()].copy_from_slice(&out);
            return out.len();
        }
    }
    libfuzzer_sys::fuzzer_mutate(data, size, max_size)
}

/// Declares the JSON-aware mutator in a fuzz target.
#[macro_export]
macro_rules! json_mutator {
    () => {
        libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
            $crate::mutate(data, size, max_size, seed)
        });
    };
}

pub use libfuzzer_sys;
pub use shared;

/// A phase's output is the next phase's input: it must parse and validate again.
pub fn assert_reparses(out: &shared::contracts::ExecutionState, what: &str) {
    let v = serde_json::to_value(out).unwrap_or_else(|e| panic!("{what}: output: {e}"));
    if let Err(e) = shared::contracts::ExecutionState::from_value(v) {
        panic!("{what}: its own output is not a valid execution state: {e}");
    }
}

/// A fuzz target for one phase handler on the sample world: no panic; refused input
/// (`BlueGreen.InvalidInput`) changes nothing; accepted input returns a valid next state.
#[macro_export]
macro_rules! phase_target {
    ($handler:path, shifted = $shifted:expr, $name:literal) => {
        $crate::phase_target!($handler, shifted = $shifted, $name, $crate::assert_unchanged);
    };
    ($handler:path, shifted = $shifted:expr, $name:literal, $unchanged:path) => {
        $crate::json_mutator!();
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            let Some(input) = $crate::json(data) else {
                return;
            };
            let w = $crate::world($shifted);
            let deps = w.phase_deps();
            let before = $crate::fingerprint(&w);
            match $crate::block_on($handler(&deps, input)) {
                Err($crate::shared::error::PhaseError::InvalidInput(_)) => {
                    $unchanged(&w, &before, $name)
                }
                Ok(out) => $crate::assert_reparses(&out, $name),
                Err(_) => {}
            }
        });
    };
}
