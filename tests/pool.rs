//! `cpu::Pool` joins its threads when dropped (rayon's own pool lets them exit in the
//! background, which raced with process exit on llvmpipe-GL). Its own test binary: no other
//! test starts threads beside it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads whose thread-local guard has been dropped: their exit has run its destructors.
static EXITED: AtomicUsize = AtomicUsize::new(0);

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        EXITED.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// Every worker's thread-local destructors have run by the time the pool is dropped: the
/// moment the race of finding 6 needs (a worker freeing its state while the process exits).
/// Thread-local destructors run before a join returns; the kernel may list a joined thread in
/// /proc a moment longer, so /proc is not what is counted.
#[test]
fn a_dropped_pool_has_finished_its_threads() {
    for with_this_thread in [false, true] {
        for _ in 0..20 {
            // a thread outside any pool, and a fresh one each time: a thread that has been
            // among a pool's workers stays registered with it (rayon leaks that registry)
            std::thread::spawn(move || {
                let start = EXITED.load(Ordering::SeqCst);
                let pool = divgpu::cpu::pool(4, with_this_thread).unwrap();
                let sum: u64 = pool.install(|| {
                    use rayon::prelude::*;
                    rayon::broadcast(|_| GUARD.with(|g| *g.borrow_mut() = Some(Guard)));
                    (0..100_000u64).into_par_iter().sum()
                });
                assert_eq!(sum, 4_999_950_000);
                drop(pool);
                // not eventually: at once (this thread, when among the workers, exits later)
                let started = 4 - usize::from(with_this_thread);
                assert_eq!(EXITED.load(Ordering::SeqCst) - start, started);
            })
            .join()
            .unwrap();
        }
    }
}
