//! What a process's threads or its GPU driver own, a forked child may neither use nor free.
//!
//! `fork()` copies a process's memory but only the thread that called it. A rayon pool made
//! before the fork has no threads in the child, so work handed to it waits forever; a GPU
//! device's driver state (its queue threads, its locks, the device's own memory) is the
//! parent's too. Python's `multiprocessing` forks by default on Linux before 3.14, and its
//! workers inherit every `divgpu.Index` of the parent.
//!
//! [`ProcessLocal`] remembers the process that made a value. In that process it is the value;
//! in a forked child [`ProcessLocal::get`] says so, and dropping it leaks the value instead of
//! freeing it: joining the parent's threads, or destroying the parent's GPU objects, from the
//! child could hang or free what the parent still uses. The leak is the child's copy only,
//! and it ends with the child.

use std::mem::ManuallyDrop;

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, TryLockError};

/// A value used only in the process that made it (see the module's documentation).
pub struct ProcessLocal<T> {
    owner: u32,
    value: ManuallyDrop<T>,
}

impl<T> ProcessLocal<T> {
    pub fn new(value: T) -> Self {
        ProcessLocal {
            owner: std::process::id(),
            value: ManuallyDrop::new(value),
        }
    }

    /// The value in the process that made it; `None` in a process forked from that one.
    pub fn get(&self) -> Option<&T> {
        self.is_here().then_some(&*self.value)
    }

    /// The value in the process that made it; in a process forked from that one,
    /// [`Error::Forked`] (for a GPU's objects, the only values this holds that one could want).
    pub fn here(&self) -> Result<&T> {
        self.get().ok_or(Error::Forked { owner: self.owner })
    }

    /// The value in any process, for reading plain data only (an adapter's name, a size):
    /// never to call into the threads or the driver behind it.
    pub fn data(&self) -> &T {
        &self.value
    }

    /// The process that made the value.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Whether this is the process that made the value.
    pub fn is_here(&self) -> bool {
        std::process::id() == self.owner
    }
}

impl<T> Drop for ProcessLocal<T> {
    fn drop(&mut self) {
        if self.is_here() {
            // SAFETY: dropped once, here, and never used again
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

/// A lock that a forked child never finds held. `fork()` copies a mutex that another thread
/// of the parent holds as held, by a thread the child does not have: the child's first `lock`
/// would wait forever. In the process that made it this is that mutex; in any other process,
/// a mutex of that process's own, and [`Held::AtFork`] says whether the maker's was held when
/// this process was forked (the work it guarded was cut off here, half done).
pub struct ForkMutex {
    here: ProcessLocal<Mutex<()>>,
    /// Each other process's own lock (a forked child's, a grandchild's), by pid.
    forked: Mutex<Vec<(u32, Arc<Mutex<()>>)>>,
}

/// What [`ForkMutex::with`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// The lock was free, or this is the process that made it.
    No,
    /// This process was forked while a thread of the maker held the lock.
    AtFork,
}

impl std::fmt::Debug for ForkMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkMutex").finish_non_exhaustive()
    }
}

impl Default for ForkMutex {
    fn default() -> Self {
        ForkMutex {
            here: ProcessLocal::new(Mutex::new(())),
            forked: Mutex::new(Vec::new()),
        }
    }
}

impl ForkMutex {
    /// Runs `f` holding this process's lock.
    pub fn with<R>(&self, f: impl FnOnce(Held) -> R) -> R {
        if let Some(lock) = self.here.get() {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            return f(Held::No);
        }
        // the maker's lock as this process inherited it: free, or held for good
        let held = match self.here.data().try_lock() {
            Err(TryLockError::WouldBlock) => Held::AtFork,
            _ => Held::No,
        };
        let pid = std::process::id();
        let lock = {
            let mut forked = self.forked.lock().unwrap_or_else(|p| p.into_inner());
            match forked.iter().find(|(p, _)| *p == pid) {
                Some((_, lock)) => lock.clone(),
                None => {
                    let lock = Arc::new(Mutex::new(()));
                    forked.push((pid, lock.clone()));
                    lock
                }
            }
        };
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        f(held)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::ProcessLocal;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_owner_uses_and_frees_the_value() {
        let drops = Arc::new(AtomicUsize::new(0));
        let local = ProcessLocal::new(Counted(drops.clone()));
        assert!(local.get().is_some());
        assert_eq!(local.owner(), std::process::id());
        drop(local);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_forked_child_never_waits_on_a_lock_held_at_the_fork() {
        use super::{ForkMutex, Held};
        let lock = Arc::new(ForkMutex::default());
        assert_eq!(lock.with(|h| h), Held::No);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                lock.with(|_| {
                    held_tx.send(()).unwrap();
                    done_rx.recv().ok();
                })
            })
        };
        held_rx.recv().unwrap();
        // SAFETY: the child takes only its own fresh lock and exits at once
        match unsafe { libc::fork() } {
            0 => {
                let first = lock.with(|h| h);
                let second = lock.with(|h| h);
                let ok = first == Held::AtFork && second == Held::AtFork;
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            -1 => panic!("fork failed"),
            child => {
                let mut status = 0;
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            }
        }
        done_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(lock.with(|h| h), Held::No);
    }

    #[test]
    fn a_forked_child_neither_uses_nor_frees_it() {
        let drops = Arc::new(AtomicUsize::new(0));
        let local = ProcessLocal::new(Counted(drops.clone()));
        // SAFETY: the child calls only what is safe after fork in a threaded process (getpid,
        // an atomic, _exit) and exits at once
        match unsafe { libc::fork() } {
            0 => {
                let usable = local.get().is_some();
                drop(local);
                let freed = drops.load(Ordering::SeqCst);
                unsafe { libc::_exit(if !usable && freed == 0 { 0 } else { 1 }) }
            }
            -1 => panic!("fork failed"),
            child => {
                let mut status = 0;
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
                assert!(libc::WIFEXITED(status), "the child ended by a signal");
                assert_eq!(
                    libc::WEXITSTATUS(status),
                    0,
                    "the child used or freed the value"
                );
                assert!(local.get().is_some());
            }
        }
    }
}
