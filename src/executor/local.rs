//! Values kept per run: a module declares a `static` [`RunLocal`] and reads and writes it
//! from inside runs; each run sees only its own value, also across suspensions (the
//! executor puts a suspended run's values aside and back).

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The indexes given out to [`RunLocal`]s so far (0 = none yet).
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The values of the run on this thread right now, by [`RunLocal`] index.
    static LOCALS: RefCell<Locals> = const { RefCell::new(Locals(Vec::new())) };
}

/// One run's values. Empty (no allocation) for a run that keeps none.
#[derive(Default)]
pub(super) struct Locals(Vec<Option<Box<dyn Any>>>);

impl Locals {
    /// Takes the values of the run on this thread out (it suspends, or it ended).
    pub(super) fn take() -> Locals {
        LOCALS.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    /// Puts a run's values back (it resumes). The run's values are dropped outside the
    /// borrow: a value's `Drop` may read another run-local.
    pub(super) fn restore(self) {
        let old = LOCALS.with(|l| std::mem::replace(&mut *l.borrow_mut(), self));
        drop(old);
    }
}

/// A value of type `T` per run, declared once as a `static`, as `script/stream.rs` keeps
/// the sender of a streamed response: `static OPEN: RunLocal<Open> = RunLocal::new();`.
pub struct RunLocal<T: 'static> {
    /// 1 + the index of this value in a run's [`Locals`]; 0 until first used.
    index: AtomicUsize,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> Default for RunLocal<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> RunLocal<T> {
    pub const fn new() -> RunLocal<T> {
        RunLocal {
            index: AtomicUsize::new(0),
            _value: PhantomData,
        }
    }

    fn index(&self) -> usize {
        let index = self.index.load(Ordering::Relaxed);
        if index != 0 {
            return index - 1;
        }
        let new = NEXT_INDEX.fetch_add(1, Ordering::Relaxed);
        match self
            .index
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new - 1,
            Err(set) => set - 1,
        }
    }

    /// Sets the value of the run on this thread; the value it replaces, if any.
    pub fn set(&self, value: T) -> Option<T> {
        let index = self.index();
        let old = LOCALS.with(|l| {
            let mut locals = l.borrow_mut();
            if locals.0.len() <= index {
                locals.0.resize_with(index + 1, || None);
            }
            locals.0[index].replace(Box::new(value))
        });
        old.and_then(|b| b.downcast().ok()).map(|b| *b)
    }

    /// Takes the value of the run on this thread out.
    pub fn take(&self) -> Option<T> {
        let index = self.index();
        let taken = LOCALS.with(|l| l.borrow_mut().0.get_mut(index).and_then(Option::take));
        taken.and_then(|b| b.downcast().ok()).map(|b| *b)
    }

    /// Calls `f` with the value of the run on this thread, if it has one. `f` must not use
    /// another [`RunLocal`] (they share one borrow).
    pub fn with<R>(&self, f: impl FnOnce(Option<&mut T>) -> R) -> R {
        let index = self.index();
        LOCALS.with(|l| {
            let mut locals = l.borrow_mut();
            let value = locals
                .0
                .get_mut(index)
                .and_then(Option::as_mut)
                .and_then(|b| b.downcast_mut::<T>());
            f(value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NUMBER: RunLocal<u32> = RunLocal::new();
    static TEXT: RunLocal<String> = RunLocal::new();

    #[test]
    fn each_run_sees_its_own_values() {
        assert_eq!(NUMBER.set(1), None);
        TEXT.set("first".into());
        let first = Locals::take();
        assert_eq!(NUMBER.take(), None, "a new run starts with none");
        NUMBER.set(2);
        let second = Locals::take();
        first.restore();
        assert_eq!(NUMBER.with(|n| n.copied()), Some(1));
        assert_eq!(TEXT.take().as_deref(), Some("first"));
        second.restore();
        assert_eq!(NUMBER.set(3), Some(2));
        Locals::take();
    }
}
