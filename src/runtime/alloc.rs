//! The allocator: mimalloc for everything the crate allocates, and glibc tuning for what others
//! allocate in the same process (numpy's and Python's own buffers).
//!
//! Payloads are allocated on one thread and freed on another: a caller's input is freed on the
//! worker that consumed it, a worker's output on the caller. glibc returns such a block to the
//! allocating thread's arena under that arena's lock, so caller and worker contended for it on
//! every run (futex waits inside `free`, seen with `perf` on the 3-node pass-through pipeline, p99
//! 21-56 µs). mimalloc hands cross-thread frees back through a lock-free list: p99 8-11 µs on the
//! same loop, medians unchanged within noise.
//!
//! Buffers of a second of audio (96-192 KB) were the earlier concern, while the crate still
//! allocated through glibc, which serves blocks above its mmap threshold (128 KB, then adjusted as blocks are freed) with
//! fresh `mmap`s: each run then page-faults its buffers in, and every `munmap` interrupts the
//! other cores for a TLB shootdown. Measured with the batch benchmark (64 items of 1 s, 2 cores):
//! 2712 items/s on 1 worker and 3174 on 2 (1.17x) with glibc's defaults; 4065 and 6131 (1.51x)
//! with a fixed 32 MB mmap threshold and a 256 MB trim threshold. So the first worker pool sets
//! those, unless the process chose its own (`MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`)
//! or `REMOTEMEDIA_KEEP_MALLOC=1` asks us to leave malloc alone. The cost: freed memory up to the
//! trim threshold stays with the process instead of going back to the system at once. The tuning
//! stays for the buffers numpy and Python allocate through glibc in the same process (a caller's
//! inputs, its own arrays).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (Linux; elsewhere nothing happens): the
/// command's binary before `main` (src/main.rs: the Rust runtime allocates before `main`), the
/// pip `remotemedia` script when the extension starts the command in a process of its own.
///
/// Why: mimalloc asks for huge pages on the memory it reserves (`MADV_HUGEPAGE`, honoured by
/// kernels whose THP mode is `madvise` or `always`), and each worker's heap then faults its
/// memory in 2 MB at a time, every page zeroed whole, used or not. Measured with `remotemedia
/// batch` on 2,048 WAV files of 1 s (2-core VM, tmpfs): with 16 workers, 240 MB of peak RSS,
/// 0.39-0.52 s of system time and half of all CPU samples in the kernel's page clearing, against
/// 115-124 MB, 0.16-0.19 s and 8,000-8,400 items/s instead of 5,200-6,000 without huge pages;
/// with 2 workers 77-85 MB against 34-48 MB and 8,800-10,700 items/s against 8,300-12,100; with
/// 1 worker the same speed. A command's process lives for one batch, so the huge pages' one
/// advantage (fewer TLB misses in a long-lived working set) never pays their cost back. Not
/// done where the extension runs in someone's program (`run_batch`, or `cli.main([...])`
/// called from code): that process is the caller's, not ours. Children (the processes `spawn`
/// starts) inherit the setting.
pub fn no_huge_pages_for_this_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map; the other
    // arguments must be zero.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Applies the glibc tuning once per process (glibc on Linux only; elsewhere nothing happens).
pub(crate) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // glibc's own variables count when set at all; ours is a strict flag (tuning.rs).
            let chosen = crate::tuning::flag_on(crate::tuning::KEEP_MALLOC)
                || ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"].iter().any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
            if chosen {
                return;
            }
            // SAFETY: mallopt only changes glibc's allocation thresholds; it is thread-safe.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
        });
    }
}
