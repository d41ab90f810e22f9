//! The process allocator, counting what each thread allocates so that a script's memory
//! can be budgeted.
//!
//! Rhai's own size limits (strings, arrays, maps) re-measure a whole value, recursively, after
//! every change: building a 100-item list of maps costs as much again as the script itself,
//! and grows with the square of the list. A per-thread byte counter bounds the same thing
//! (how much a script can build) for the price of one add per allocation: the script's
//! progress callback compares it with the run's limit on every operation.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// mimalloc under a byte counter. mimalloc is markedly faster than glibc's malloc for the
/// many small allocations a Rhai interpreter makes.
pub struct CountingAlloc;

thread_local! {
    /// Net bytes allocated by this thread since it started (negative when it freed more
    /// than it allocated). Const-initialised, no destructor: safe to use in an allocator.
    static ALLOCATED: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = ALLOCATED.try_with(|a| a.set(a.get().wrapping_add(delta)));
}

/// Transparent huge pages off for this process, before anything allocates.
///
/// mimalloc asks the kernel for huge pages on its arena (`MADV_HUGEPAGE`), so each 2 MiB
/// region the heap touches becomes resident whole: an idle server held 10 MiB of huge pages
/// for about 2 MiB of live heap. On small pages idle RSS is 13 MiB instead of 22 MiB, with
/// no change in throughput we could measure (bench/RESULTS.md, part 3).
/// `MIMALLOC_ALLOW_THP=0` makes mimalloc do the same, but it is read from the environment;
/// this runs as an ELF constructor ordered before mimalloc's own (priority 101), since the
/// first pages are touched before `main`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

#[cfg(target_os = "linux")]
extern "C" fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Net bytes this thread has allocated so far; differences between two reads are what the
/// thread allocated (and kept) in between.
pub fn thread_allocated() -> isize {
    ALLOCATED.try_with(Cell::get).unwrap_or(0)
}

/// Runs `make` and leaves what it allocated and kept out of this thread's count: for what a
/// run hands over to be freed outside it (a wait's boxed future, freed by the executor; a
/// job for another thread). Counted, such memory would stay charged to the run after it was
/// freed, since a run's budget carries over its pauses, and a run that waits in a loop
/// would end "out of memory" while holding nothing.
pub fn uncounted<T>(make: impl FnOnce() -> T) -> T {
    let before = thread_allocated();
    let made = make();
    let kept = thread_allocated().wrapping_sub(before);
    if kept > 0 {
        count(-kept);
    }
    made
}

/// `bytes` for a message: `512 bytes`, `3.2 MB`, `1.1 TB` (units of 1024, as `--max-memory`).
pub fn human_size(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

// SAFETY: every call is forwarded to mimalloc unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `layout` is passed on to mimalloc unchanged.
        let ptr = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (which is mimalloc) with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from mimalloc with `layout`; the caller guarantees `new_size`.
        let new = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}
