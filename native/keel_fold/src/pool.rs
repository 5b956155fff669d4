//! The crate's small allocations (<= 256 bytes) from free lists of 16-byte size classes,
//! carved from 64 KiB slabs; larger ones go to the system allocator (decision 0027).
//!
//! Why: the fold allocates and frees many small values a batch (decoded events, documents,
//! keys). Through glibc's malloc their frees filled its bins and every later large
//! allocation of the process (a Python list growing, SQLite's pages) paid to sort and merge
//! them: measured at 200k events, a third of the native fold's CPU was malloc_consolidate,
//! unlink_chunk and _int_malloc, and the native evolve cost more than the Python one. With
//! jemalloc preloaded the same run took 40% less CPU; this pool keeps the crate's own churn
//! out of glibc's bins the same way, with no dependency. Blocks are reused, never returned to
//! the system: the crate's live small values are one batch's (documents are held as Python
//! bytes between batches), so what the pool holds is bounded by one batch's peak.
//!
//! One lock (a spin on an atomic flag) guards the lists: the crate runs under the GIL, so it
//! is not contended; it is held for a few instructions, never across a call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

const GRAIN: usize = 16;
const CLASSES: usize = 16; // 16, 32, ... 256 bytes
const SLAB: usize = 64 * 1024;

struct Lists {
    free: [*mut u8; CLASSES], // each free block's first word points to the next
    cur: *mut u8,             // the current slab's unused part
    end: *mut u8,
}

pub struct Pool {
    lock: AtomicBool,
    lists: UnsafeCell<Lists>,
}

// The lists are only touched with the lock held.
unsafe impl Sync for Pool {}

impl Pool {
    pub const fn new() -> Self {
        Pool {
            lock: AtomicBool::new(false),
            lists: UnsafeCell::new(Lists {
                free: [ptr::null_mut(); CLASSES],
                cur: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Lists) -> T) -> T {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the flag gives this thread the lists alone until it is cleared below
        let out = f(unsafe { &mut *self.lists.get() });
        self.lock.store(false, Ordering::Release);
        out
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of `layout`, None where the system allocator serves it.
fn class(layout: &Layout) -> Option<usize> {
    let size = layout.size();
    (size != 0 && size <= GRAIN * CLASSES && layout.align() <= GRAIN)
        .then(|| size.div_ceil(GRAIN) - 1)
}

unsafe impl GlobalAlloc for Pool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(&layout) else {
            return System.alloc(layout);
        };
        self.with(|l| {
            let head = l.free[c];
            if !head.is_null() {
                l.free[c] = *(head as *mut *mut u8);
                return head;
            }
            let size = (c + 1) * GRAIN;
            if l.cur.is_null() || (l.end as usize) - (l.cur as usize) < size {
                // the old slab's tail (smaller than this block) is left unused
                let slab = System.alloc(Layout::from_size_align_unchecked(SLAB, GRAIN));
                if slab.is_null() {
                    return slab;
                }
                l.cur = slab;
                l.end = slab.add(SLAB);
            }
            let out = l.cur;
            l.cur = l.cur.add(size);
            out
        })
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(c) = class(&layout) else {
            return System.dealloc(p, layout);
        };
        self.with(|l| {
            *(p as *mut *mut u8) = l.free[c];
            l.free[c] = p;
        })
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class(&layout), class(&new)) {
            (None, None) => System.realloc(p, layout, new_size),
            (Some(a), Some(b)) if a == b => p,
            _ => {
                let q = self.alloc(new);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}
