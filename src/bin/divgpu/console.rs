//! Progress on stderr, and Ctrl-C as a request to stop: the binary's `Observer`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use divgpu::Observer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The exit code after Ctrl-C, as shells report a SIGINT death.
pub const INTERRUPTED: u8 = 130;

/// Progress on stderr for runs longer than about a second (never when stderr is not a
/// terminal), and Ctrl-C as a request to stop.
pub struct Console {
    bar: ProgressBar,
    created: Instant,
    /// When the work shown began, in nanoseconds after `created`: the run's start, or the
    /// current batch's in a `--queries` stream.
    started_ns: AtomicU64,
    shown: AtomicBool,
    interrupted: Arc<AtomicBool>,
}

impl Console {
    pub fn new() -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        // The first Ctrl-C asks the run to stop at its next check (well under a second); a
        // second one leaves at once.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(INTERRUPTED));
            }
        });
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Console {
            bar,
            created: Instant::now(),
            started_ns: AtomicU64::new(0),
            shown: AtomicBool::new(false),
            interrupted,
        }
    }

    /// A new piece of work (a batch of a stream): the bar, if shown, is cleared, and shows
    /// again only once this work has taken a second.
    pub fn restart(&self) {
        if self.shown.swap(false, Ordering::Relaxed) {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        self.bar.reset();
        self.started_ns.store(self.elapsed_ns(), Ordering::Relaxed);
    }

    /// The work is done: the bar, if shown, is cleared.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Observer for Console {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
        let started = self.started_ns.load(Ordering::Relaxed);
        if self.elapsed_ns().saturating_sub(started) > Duration::from_secs(1).as_nanos() as u64
            && std::io::stderr().is_terminal()
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}
