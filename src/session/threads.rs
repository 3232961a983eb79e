//! A session's CPU threads.

use std::sync::{Arc, Mutex, OnceLock};

use crate::cpu;
use crate::error::Result;
use crate::fork::ProcessLocal;

/// The CPU threads of a session: the CPU backend's, and every session's index build.
pub(super) struct Threads {
    pub(super) threads: usize,
    /// The session's own pool, started by the first query that needs it; never for one
    /// thread, where each query runs on a thread of its own, so that callers on several
    /// threads run side by side (the post's experiment).
    pool: OnceLock<ProcessLocal<cpu::Pool>>,
    /// In a process forked after `pool` was started: the child's own pool (`pool`'s threads
    /// are the parent's, and the child has none of them; see [`crate::fork`]).
    forked: Mutex<Option<Arc<ProcessLocal<cpu::Pool>>>>,
}

impl Threads {
    pub(super) fn new(threads: usize) -> Threads {
        Threads {
            threads,
            pool: OnceLock::new(),
            forked: Mutex::new(None),
        }
    }

    /// Runs `work` on these threads: on the caller's own pool when it is one of that many
    /// threads (the CLI's), else on the session's, else (one thread) on a pool of one made for
    /// this call, so that callers on several threads each have their own.
    pub(super) fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> Result<R> {
        if rayon::current_thread_index().is_some() && rayon::current_num_threads() == self.threads {
            return Ok(work());
        }
        if self.threads == 1 {
            return Ok(cpu::pool(1, false)?.install(work));
        }
        let pool = match self.pool.get() {
            Some(pool) => pool,
            None => {
                // two first callers may both start one; one is kept, the other joined at once
                let started = ProcessLocal::new(cpu::pool(self.threads, false)?);
                match self.pool.set(started) {
                    Ok(()) => self.pool.get().expect("just set"),
                    Err(spare) => {
                        drop(spare);
                        self.pool.get().expect("set by the other caller")
                    }
                }
            }
        };
        match pool.get() {
            Some(pool) => Ok(pool.install(work)),
            None => {
                let child = self.child_pool()?;
                let pool = child.get().expect("started in this process");
                Ok(pool.install(work))
            }
        }
    }

    /// This process's pool, where it was forked from the one that started `pool`: started by
    /// its first caller, and again in a process forked from this one.
    fn child_pool(&self) -> Result<Arc<ProcessLocal<cpu::Pool>>> {
        let mut forked = self.forked.lock().unwrap_or_else(|p| p.into_inner());
        match &*forked {
            Some(pool) if pool.is_here() => Ok(pool.clone()),
            _ => {
                // a grandparent's pool, if any, is leaked by its `ProcessLocal`
                let pool = Arc::new(ProcessLocal::new(cpu::pool(self.threads, false)?));
                *forked = Some(pool.clone());
                Ok(pool)
            }
        }
    }
}
