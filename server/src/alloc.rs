//! tree-sitter's allocator for the commands that run to their end (`conductor scan`, `fix`,
//! `eval`, …): mimalloc, with freed pages handed back lazily.
//!
//! A whole-workspace scan is millions of small allocations of syntax-tree nodes, freed when
//! each file is done; with glibc's allocator that costs the scan about a fourteenth of its CPU
//! (docs/performance.md, "tree-sitter on mimalloc"). The server keeps libc's allocator for
//! everything: with mimalloc its resident size with the 10,000-line file open rose from 32 to
//! 79 MB (34 MB tuned), against a 30 MB target, for no keystroke gain.
use std::ffi::c_void;

/// Routes tree-sitter's `malloc`/`calloc`/`realloc`/`free` to mimalloc, tuned for a process
/// that runs to its end. Call it before any parser, tree or query exists in the process
/// (`cli::main` does, once it knows the command is not the server); later calls do nothing.
/// Without it tree-sitter keeps libc's allocator, which is correct, only slower. Rust's own
/// allocations stay on the system allocator either way.
pub fn install_for_batch() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tune_for_batch();
        let allocator = tree_sitter::Allocator {
            malloc: ts_malloc,
            calloc: ts_calloc,
            realloc: ts_realloc,
            free: ts_free,
        };
        // SAFETY: the four functions are one allocator family (mimalloc), never return null
        // for a non-zero size (they abort instead, as tree-sitter's own defaults do), and
        // return memory aligned as `malloc`'s is. `Once` makes this run once, and the
        // caller's contract is that no tree-sitter object exists yet.
        unsafe { tree_sitter::set_allocator(Some(allocator)) };
    });
}

/// mimalloc's `mi_option_purge_decommits` (the same place in its v2 and v3 option lists;
/// the test below checks it by its default).
const PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;

/// For a process that runs to its end (`conductor scan`, `fix`, `eval`): pages mimalloc no
/// longer uses are handed back lazily (`MADV_FREE`: the kernel takes them when it needs them)
/// instead of at once (`MADV_DONTNEED`, which the next allocation faults in again). Measured
/// with the whole-corpus scan (docs/performance.md, "tree-sitter on mimalloc").
fn tune_for_batch() {
    // SAFETY: `mi_option_set` takes no pointers; options may be changed at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DECOMMITS, 0) };
}

fn non_null(pointer: *mut c_void, size: usize) -> *mut c_void {
    if pointer.is_null() && size != 0 {
        // tree-sitter cannot handle a failed allocation, and neither does its own default.
        eprintln!("conductor: out of memory ({size} bytes for the parser)");
        std::process::abort();
    }
    pointer
}

unsafe extern "C" fn ts_malloc(size: usize) -> *mut c_void {
    // SAFETY: `mi_malloc` accepts any size.
    non_null(unsafe { libmimalloc_sys::mi_malloc(size) }, size)
}

unsafe extern "C" fn ts_calloc(count: usize, size: usize) -> *mut c_void {
    // SAFETY: `mi_calloc` accepts any sizes and checks their product for overflow.
    non_null(
        unsafe { libmimalloc_sys::mi_calloc(count, size) },
        count.saturating_mul(size),
    )
}

unsafe extern "C" fn ts_realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: tree-sitter passes null or a pointer it got from these functions.
    non_null(unsafe { libmimalloc_sys::mi_realloc(pointer, size) }, size)
}

unsafe extern "C" fn ts_free(pointer: *mut c_void) {
    // SAFETY: tree-sitter passes null or a pointer it got from these functions.
    unsafe { libmimalloc_sys::mi_free(pointer) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_option_is_the_one_its_index_names() {
        // mimalloc's defaults for the options around it differ (`arena_eager_commit` is 2,
        // `allow_large_os_pages` 0 and `purge_delay` 1000), so the default of 1 pins the index;
        // then setting it is seen by mimalloc.
        // SAFETY: as in `tune_for_batch`.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DECOMMITS), 1);
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DECOMMITS - 1), 2);
        }
        tune_for_batch();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(PURGE_DECOMMITS) },
            0
        );
        // SAFETY: as above; other tests in this process keep the default.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DECOMMITS, 1) };
    }
}
