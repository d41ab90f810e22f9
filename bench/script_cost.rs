//! The bare cost of the work route's script, without the server: the server's allocator
//! (mimalloc), one shared Engine with max_operations and fast string concatenation set (as
//! the server has), the route file compiled once, its GET() called with
//! `call_fn_with_caches` (eval_ast = false, caches kept between calls as the server keeps them). Best of 5 loops of 5,000 calls, one thread.
//!
//! Prints two lines that bench/run.sh reads:
//!   script_call_us <µs per call>            the call alone
//!   script_call_json_us <µs per call>       the call plus serde_json::to_vec of the result
//!
//! Run: cargo run --release --example script-cost -- [bench/app/pages/api/work.rhai]
//!
//! Under a profiler: `PROFILE_CALLS=200 valgrind --tool=callgrind target/release/examples/script-cost`
//! makes that many calls and nothing else (no timing loops).

use std::time::Instant;

use rhai::{Caches, CallFnOptions, Dynamic, Engine, Scope};

// The same allocator as the server (src/memory.rs wraps it in a byte counter), so that
// "per request - bare call" is the server's own cost, not an allocator difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LOOPS: usize = 5;
const CALLS: usize = 5_000;

fn best_of<F: FnMut()>(mut f: F) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..LOOPS {
        let start = Instant::now();
        for _ in 0..CALLS {
            f();
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / CALLS as f64;
        best = best.min(us);
    }
    best
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/app/pages/api/work.rhai".to_string());
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));

    let mut engine = Engine::new();
    engine.set_max_operations(10_000_000);
    // As the server sets it (src/script/engine.rs).
    engine.set_fast_string_concat(true);
    // The server checks its wall-clock deadline every 256 operations; do the same.
    let deadline = Instant::now() + std::time::Duration::from_secs(3600);
    engine.on_progress(move |ops| {
        if ops & 0xFF == 0 && Instant::now() > deadline {
            Some(Dynamic::UNIT)
        } else {
            None
        }
    });
    let ast = engine.compile(&source).expect("compile");
    // Function lookups kept from one call to the next, as the server keeps them per route.
    let caches = std::cell::RefCell::new(Caches::new());
    let call = |engine: &Engine| -> Dynamic {
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let mut scope = Scope::new();
        engine
            .call_fn_with_caches::<Dynamic>(
                options,
                &mut scope,
                &ast,
                "GET",
                (),
                &mut caches.borrow_mut(),
            )
            .expect("call")
    };

    // Sanity: the result is the 100-item map.
    let out = call(&engine);
    let json = serde_json::to_vec(&out).expect("json");
    assert!(
        json.len() > 5_000,
        "unexpected result: {} bytes",
        json.len()
    );

    if let Ok(n) = std::env::var("PROFILE_CALLS") {
        for _ in 0..n.parse::<usize>().unwrap() {
            let _ = std::hint::black_box(call(&engine));
        }
        return;
    }
    // Warm-up, then measure.
    for _ in 0..500 {
        let _ = std::hint::black_box(call(&engine));
    }
    let call_us = best_of(|| {
        let _ = std::hint::black_box(call(&engine));
    });
    let call_json_us = best_of(|| {
        let v = call(&engine);
        std::hint::black_box(serde_json::to_vec(&v).unwrap());
    });
    println!("script_call_us {call_us:.2}");
    println!("script_call_json_us {call_json_us:.2}");
    eprintln!(
        "({} bytes of JSON per call; best of {LOOPS} x {CALLS} calls)",
        json.len()
    );
}
