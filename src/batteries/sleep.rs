//! `sleep(ms)`: waits without holding a thread (the run suspends; see
//! [`crate::executor::wait`]), bounded by the request's budget: a sleep past it ends the
//! run as a timeout (504).

use std::time::Duration;

use rhai::{Engine, NativeCallContext};

use super::{at, budget, script_error, timed_out, ScriptResult};

/// Registers the global `sleep(ms)`.
pub fn register(engine: &mut Engine) {
    engine.register_fn("sleep", |ctx: NativeCallContext, ms: i64| {
        at(&ctx, sleep(ms))
    });
    // Rhai's own `sleep(float)` blocks the thread (and panics past `Duration`'s range):
    // the same milliseconds here, rounded up.
    engine.register_fn("sleep", |ctx: NativeCallContext, ms: rhai::FLOAT| {
        let whole = if ms.is_finite() && ms >= 0.0 {
            ms.ceil().min(i64::MAX as rhai::FLOAT) as i64
        } else {
            -1
        };
        at(&ctx, sleep(whole))
    });
}

fn sleep(ms: i64) -> ScriptResult<()> {
    let Ok(ms) = u64::try_from(ms) else {
        return Err(script_error(format!(
            "sleep({ms}): the time must be 0 or more milliseconds"
        )));
    };
    let wanted = Duration::from_millis(ms);
    let left = budget()?;
    let nap = actix_web::rt::time::sleep(wanted.min(left));
    // A streaming run may sleep for long between events: at shutdown its sleep ends early,
    // so that its next write fails with "shutting down" now, not after the sleep (and the
    // server need not wait out the grace); once its client has gone, the sleep is the
    // error "client closed" itself (a stream that writes only now and then would otherwise
    // go on for nobody).
    let gone = crate::script::stream::is_streaming().then(crate::script::stream::client_gone);
    let woken = crate::executor::wait(async move {
        let Some(gone) = gone else {
            nap.await;
            return Woken::Slept;
        };
        tokio::select! {
            () = nap => Woken::Slept,
            () = crate::script::stream::until_shutdown() => Woken::ShuttingDown,
            () = gone => Woken::ClientGone,
        }
    });
    match woken {
        crate::executor::Waited::Done(Woken::ShuttingDown) => Ok(()),
        crate::executor::Waited::Done(Woken::ClientGone) => {
            Err(crate::script::stream::CLIENT_CLOSED.into())
        }
        crate::executor::Waited::Done(Woken::Slept) if wanted <= left => Ok(()),
        _ => Err(timed_out()),
    }
}

/// Why a sleep ended.
enum Woken {
    Slept,
    ShuttingDown,
    ClientGone,
}
