//! `cpu::Pool` joins its threads when dropped (rayon's own pool lets them exit in the
//! background, which raced with process exit on llvmpipe-GL). Its own test binary: no other
//! test starts threads beside it.

/// This process's threads (Linux).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc (Linux)")
        .count()
}

#[test]
fn a_dropped_pool_has_no_threads_left() {
    for with_this_thread in [false, true] {
        for _ in 0..20 {
            // a thread outside any pool, and a fresh one each time: a thread that has been
            // among a pool's workers stays registered with it (rayon leaks that registry)
            std::thread::spawn(move || {
                let before = threads();
                let pool = divgpu::cpu::pool(4, with_this_thread).unwrap();
                let sum: u64 = pool.install(|| {
                    use rayon::prelude::*;
                    (0..100_000u64).into_par_iter().sum()
                });
                assert_eq!(sum, 4_999_950_000);
                assert_eq!(threads(), before + 4 - usize::from(with_this_thread));
                drop(pool);
                // not eventually: at once
                assert_eq!(threads(), before);
            })
            .join()
            .unwrap();
        }
    }
}
