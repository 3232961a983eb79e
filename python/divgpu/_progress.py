"""Progress on long work: what ``progress=`` turns into.

The extension calls the callback as ``callback(done, total)`` from the thread that waits on the
work, about 20 times a second while it advances and once more when it is done. ``total`` is the
units of one stage of the work (elements passed over, or distinct values counted for the value
index); a new stage starts again from 0.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

Callback = Callable[[int, int], Any]

# Work that ends sooner shows nothing.
DELAY = 1.0
# Seconds between two lines on stderr (without tqdm).
LINE_EVERY = 2.0


def callback(progress: Any, what: str) -> Optional[Callback]:
    """The callback for ``progress=``: None (or False) for none, True for a bar (tqdm, where it
    is installed) or lines on stderr, or the caller's own callable."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return Shown(what)
    if callable(progress):
        return progress
    raise TypeError(
        f"progress must be a bool or a callable(done, total), not {type(progress).__name__}"
    )


def close(callback: Optional[Callback]) -> None:
    if isinstance(callback, Shown):
        callback.close()


class Shown:
    """Shows the progress of work that lasts more than :data:`DELAY` seconds: a tqdm bar on
    stderr where tqdm is installed, else a line every :data:`LINE_EVERY` seconds."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.bar: Any = None
        self.total: Optional[int] = None
        self.last_line = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.started < DELAY:
            return
        if total != self.total:
            self.close()
            self.total = total
            self.bar = _bar(self.what, total)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif done >= total or now - self.last_line >= LINE_EVERY:
            self.last_line = now
            share = 100.0 * done / total if total else 100.0
            try:
                sys.stderr.write(f"divgpu: {self.what}: {share:.0f}% ({done:,} of {total:,})\n")
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                # a closed or missing stderr loses the line, never the count
                pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _bar(what: str, total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"divgpu: {what}", unit_scale=True, leave=False)
