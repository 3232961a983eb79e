//! A file truncated while it is mapped is a SIGBUS at the next read of a page past its new
//! end: without this module, a death by signal (exit 135) with no word of why. With it, a read
//! fault inside one of divgpu's live maps prints that map's message (`divgpu: FILE: the file
//! changed while being read`) and exits 1; any other SIGBUS is left to the action that was
//! there before.
//!
//! The maps register their address ranges in a small fixed table of atomics, which the handler
//! scans: a signal handler may not lock, allocate or format, only read atomics and call
//! async-signal-safe functions (`write`, `_exit`, `sigaction`, `raise`). signal-hook refuses
//! to register SIGBUS (a handler that returns would fault again), hence `libc` directly.

#[cfg(unix)]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering::SeqCst};
    use std::sync::OnceLock;

    /// Maps registered at once at most. divgpu holds two (the array, a thresholds file); a
    /// map beyond these is still read, only without the message.
    const SLOTS: usize = 64;

    const FREE: u8 = 0;
    /// Being filled or emptied: the handler skips it.
    const BUSY: u8 = 1;
    const LIVE: u8 = 2;

    struct Slot {
        state: AtomicU8,
        start: AtomicUsize,
        end: AtomicUsize,
        /// A leaked `Box<[u8]>`: the whole line to write, newline included.
        message: AtomicPtr<u8>,
        message_len: AtomicUsize,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = Slot {
        state: AtomicU8::new(FREE),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        message: AtomicPtr::new(std::ptr::null_mut()),
        message_len: AtomicUsize::new(0),
    };

    static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

    /// Set by the first handler to find its fault in a map: it alone prints and exits.
    static EXITING: AtomicBool = AtomicBool::new(false);

    /// The action SIGBUS had before [`install`], put back for a fault that is not divgpu's.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

    /// A registered range; unregistered when dropped, which must happen before the range is
    /// unmapped (so that a new map at the same address never meets a stale entry).
    #[derive(Debug)]
    pub struct Registration(usize);

    /// Registers `range` (a map's bytes) with the line to print when a read inside it faults.
    /// `None` when the table is full.
    pub fn register(range: std::ops::Range<usize>, message: String) -> Option<Registration> {
        if range.is_empty() {
            return None;
        }
        let index = TABLE.iter().position(|slot| {
            slot.state
                .compare_exchange(FREE, BUSY, SeqCst, SeqCst)
                .is_ok()
        })?;
        let slot = &TABLE[index];
        let message: Box<[u8]> = message.into_bytes().into_boxed_slice();
        slot.message_len.store(message.len(), SeqCst);
        slot.message
            .store(Box::into_raw(message).cast::<u8>(), SeqCst);
        slot.start.store(range.start, SeqCst);
        slot.end.store(range.end, SeqCst);
        slot.state.store(LIVE, SeqCst);
        Some(Registration(index))
    }

    impl Drop for Registration {
        fn drop(&mut self) {
            let slot = &TABLE[self.0];
            slot.state.store(BUSY, SeqCst);
            let len = slot.message_len.load(SeqCst);
            let ptr = slot.message.swap(std::ptr::null_mut(), SeqCst);
            // SAFETY: `register` leaked this box with this length, and only this registration
            // frees it. A handler that read LIVE before the store above only reads the message
            // for a fault inside this range, and a read inside this range cannot be under way:
            // the map is being dropped, so nothing borrows it.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
            slot.state.store(FREE, SeqCst);
        }
    }

    extern "C" fn on_sigbus(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        _context: *mut libc::c_void,
    ) {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        let (code, address) = unsafe { ((*info).si_code, fault_address(info)) };
        // si_code > 0: raised by the kernel for a fault at si_addr (not sent by kill(2))
        if code > 0 {
            for slot in &TABLE {
                if slot.state.load(SeqCst) == LIVE
                    && (slot.start.load(SeqCst)..slot.end.load(SeqCst)).contains(&address)
                {
                    // Threads reading the map fault together: one writes the line and exits;
                    // the others wait for that exit (an exit of theirs could cut the line).
                    if EXITING.swap(true, SeqCst) {
                        loop {
                            // SAFETY: pause(2) is async-signal-safe.
                            unsafe { libc::pause() };
                        }
                    }
                    let message = slot.message.load(SeqCst);
                    let len = slot.message_len.load(SeqCst);
                    // SAFETY: write(2) and _exit(2) are async-signal-safe; the message lives
                    // while the slot is LIVE. Nothing is flushed: stdout holds no partial result.
                    unsafe {
                        libc::write(libc::STDERR_FILENO, message.cast(), len);
                        libc::_exit(1);
                    }
                }
            }
        }
        // Not divgpu's: the previous action back, and the fault repeats under it when this
        // returns (a signal sent by kill is raised again).
        // SAFETY: sigaction and raise are async-signal-safe; PREVIOUS is set before the handler
        // is installed.
        unsafe {
            let previous: *const libc::sigaction = PREVIOUS.get().map_or(std::ptr::null(), |p| p);
            if previous.is_null() {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            } else {
                libc::sigaction(signal, previous, std::ptr::null_mut());
            }
            if code <= 0 {
                libc::raise(signal);
            }
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
        unsafe { (*info).si_addr() as usize }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
        unsafe { (*info).si_addr as usize }
    }

    pub fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: plain sigaction calls on zeroed structs; the handler only does what a
            // signal handler may.
            unsafe {
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                    return;
                }
                let _ = PREVIOUS.set(previous);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                // It can fail only for an invalid signal number; then SIGBUS keeps its action.
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            }
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn live(start: usize) -> usize {
            TABLE
                .iter()
                .filter(|s| s.state.load(SeqCst) == LIVE && s.start.load(SeqCst) == start)
                .count()
        }

        #[test]
        fn ranges_are_registered_until_dropped() {
            // addresses no map has: other tests register real maps meanwhile
            let (a, b) = (usize::MAX - 0x3000, usize::MAX - 0x2000);
            let first = register(a..a + 0x1000, "first\n".to_string()).unwrap();
            let second = register(b..b + 0x1000, "second\n".to_string()).unwrap();
            assert_ne!(first.0, second.0);
            assert_eq!((live(a), live(b)), (1, 1));
            drop(first);
            assert_eq!((live(a), live(b)), (0, 1));
            drop(second);
            assert_eq!(live(b), 0);
            assert!(register(a..a, String::new()).is_none());
        }
    }
}

#[cfg(not(unix))]
mod imp {
    #[derive(Debug)]
    pub struct Registration;

    pub fn register(_range: std::ops::Range<usize>, _message: String) -> Option<Registration> {
        None
    }

    pub fn install() {}
}

pub(crate) use imp::{register, Registration};

/// Makes a file truncated while divgpu reads it through a map an error of one line (`divgpu:
/// FILE: the file changed while being read`, exit 1) rather than a death by SIGBUS. For
/// programs, not libraries: it sets the process's SIGBUS action (a fault outside divgpu's maps
/// goes on to the action that was there before). Call it once, first thing in `main`; later
/// calls do nothing. Does nothing where there is no SIGBUS (not unix).
pub fn install_sigbus_handler() {
    imp::install();
}
