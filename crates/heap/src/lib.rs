//! What the C allocator holds, and giving its freed memory back.
//!
//! glibc's malloc keeps memory a process freed in its arenas for reuse:
//! after a burst (an attack's thousands of connections, closed again) the
//! process stays at its peak resident size although little of it is in use.
//! Only the top of each heap is returned on its own; free pages between
//! chunks still in use are returned by `malloc_trim`, which also consolidates
//! the free lists first.
//!
//! Both calls are foreign code, so this crate is the workspace's one
//! exception to its ban on `unsafe`: two calls without arguments that could
//! be wrong, each in its own audited block. Everywhere but Linux with glibc
//! the functions report that they cannot help ([`usage`] is `None`,
//! [`release_free_memory`] is `false`), and callers leave memory to the
//! allocator in use there.

/// What the allocator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes handed out and not yet freed, in the arenas and in blocks of
    /// their own (large allocations, mapped separately).
    pub in_use: u64,
    /// Bytes freed into the arenas and kept there for reuse (resident or
    /// not: pages already given back still count until they are reused).
    pub free: u64,
}

/// What the allocator holds now; `None` where that cannot be known (not glibc).
///
/// It walks every arena's free lists, each under its lock: cheap enough once
/// every few seconds, not for every call.
#[must_use]
pub fn usage() -> Option<Usage> {
    imp::usage()
}

/// Gives the operating system back every whole page the allocator holds
/// free, in every arena (glibc's `malloc_trim(0)`). Whether anything was
/// given back; always `false` where this cannot be done.
///
/// It blocks while it walks the arenas (milliseconds for a heap of tens of
/// megabytes): call it off the async workers (`spawn_blocking`).
pub fn release_free_memory() -> bool {
    imp::release_free_memory()
}

/// Whether this build can give freed memory back at all.
pub const SUPPORTED: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the crate's reason to exist: see the crate's documentation
mod imp {
    use super::Usage;

    pub fn usage() -> Option<Usage> {
        // SAFETY: mallinfo2 (glibc >= 2.33) takes no arguments, only reads
        // the allocator's state under its own locks, and returns a plain
        // struct by value.
        let info = unsafe { libc::mallinfo2() };
        let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Some(Usage { in_use: bytes(info.uordblks).saturating_add(bytes(info.hblkhd)), free: bytes(info.fordblks) })
    }

    pub fn release_free_memory() -> bool {
        // SAFETY: malloc_trim is thread-safe (it takes each arena's lock in
        // turn) and only returns pages that hold no allocation; a pad of 0
        // keeps nothing extra at the top of the heap.
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    use super::Usage;

    pub fn usage() -> Option<Usage> {
        None
    }

    pub fn release_free_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_freed_in_bulk_is_seen_free_and_given_back() {
        if !SUPPORTED {
            assert_eq!(usage(), None);
            assert!(!release_free_memory());
            return;
        }
        // Many small blocks, like a burst of connections' buffers (too small
        // to be mapped on their own), of which a few stay in use: the freed
        // ones are left in the arena, between blocks that pin it.
        let mut blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![u8::try_from(i % 251).unwrap_or(0); 1_000]).collect();
        let held = usage().unwrap();
        assert!(held.in_use >= 20_000 * 1_000, "{held:?}");
        let mut index = 0;
        blocks.retain(|_| {
            index += 1;
            index % 20 == 0
        });
        let freed = usage().unwrap();
        assert!(freed.free >= 10_000 * 1_000, "the freed blocks stay in the arena: {freed:?}");
        assert!(release_free_memory(), "whole free pages between the kept blocks were given back");
        assert_eq!(blocks.len(), 1_000);
    }
}
