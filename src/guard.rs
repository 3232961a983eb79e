//! No panic crosses an API boundary: a panic inside divgpu (a bug) becomes
//! [`Error::Panicked`], which the CLI prints as one `divgpu:` line and Python raises as
//! `divgpu.DivgpuError`, never Rust's panic message or Python's `PanicException`.
//!
//! [`catch`] runs work and turns its panic into that error. [`quiet_hook`] (for the binary and
//! the Python extension, which own their process's or module's hook) replaces the default
//! hook, which prints `thread ... panicked at ...` to stderr, with one that keeps the message
//! and its place for [`catch`] to report.
//!
//! Fault injection for tests: with the `fault-injection` feature, [`point`] panics where the
//! environment variable `DIVGPU_FAULT` names it. Without the feature it is empty, and release
//! builds cannot reach it.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// The last panic's message and place, kept by [`quiet_hook`]'s hook.
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Runs `work`; a panic in it (or in a rayon job it waits for) is [`Error::Panicked`] saying
/// what was being done.
pub fn catch<R>(doing: &'static str, work: impl FnOnce() -> Result<R>) -> Result<R> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        Err(Error::Panicked {
            doing,
            message: message(payload.as_ref()),
        })
    })
}

/// The panic's message: where [`quiet_hook`] kept it, with its place; else the payload's.
pub fn message(payload: &(dyn Any + Send)) -> String {
    let kept = LAST.lock().unwrap_or_else(|p| p.into_inner()).take();
    kept.unwrap_or_else(|| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".to_string())
    })
}

/// Replaces the panic hook with one that prints nothing and keeps the message for [`catch`].
/// `RUST_BACKTRACE=1` keeps the default hook, for whoever debugs divgpu.
pub fn quiet_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{text}{place}"));
    }));
}

/// A place a test can make panic (`DIVGPU_FAULT=<name>`, `fault-injection` feature only).
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var("DIVGPU_FAULT").is_ok_and(|v| v == name) {
        panic!("fault injected at {name}");
    }
}

/// Nothing: fault injection is compiled in only with the `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error_saying_what_was_done() {
        let e = catch("counting", || -> Result<()> { panic!("boom {}", 7) }).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("counting") && text.contains("boom 7"),
            "{text}"
        );
        assert_eq!(catch("counting", || Ok(5)).unwrap(), 5);
        // in a rayon job the caller waits for
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let e = catch("a pass", || {
            pool.install(|| -> Result<()> { panic!("in the pool") })
        });
        assert!(e.unwrap_err().to_string().contains("in the pool"));
    }
}
