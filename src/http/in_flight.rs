//! `--max-in-flight`: how many requests the server holds at once. Above it, a new request
//! gets `503 {"error":"Server busy"}` with `Retry-After: 1` and nothing else changes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The count of requests in flight, shared by every worker.
#[derive(Default)]
pub struct InFlight {
    count: Arc<AtomicUsize>,
}

/// One request's place in the count; freed when dropped (for a streamed response, when
/// the stream ends).
pub struct InFlightSlot(Arc<AtomicUsize>);

impl InFlight {
    /// A slot for a new request, or `None` when `max` are in flight (`max` is read per
    /// request: `rhapi.toml` may change it).
    pub fn enter(&self, max: usize) -> Option<InFlightSlot> {
        let max = max.max(1);
        let admitted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| InFlightSlot(Arc::clone(&self.count)))
    }

    /// Requests held right now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
