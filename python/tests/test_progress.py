"""progress=: the callback's calls, the bar or lines on stderr, and stopping."""

import os
import signal
import sys
import threading

import numpy as np
import pytest

import divgpu
from divgpu import _progress
from conftest import oracle


class Calls:
    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def __call__(self, done, total):
        self.calls.append((done, total))
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise RuntimeError("stop here")


def _stages(calls):
    """The calls split where a stage starts again (its total changes, or done goes back)."""
    stages = []
    for done, total in calls:
        if not stages or total != stages[-1][-1][1] or done < stages[-1][-1][0]:
            stages.append([])
        stages[-1].append((done, total))
    return stages


def test_a_callable_hears_each_pass_to_its_end(backend):
    values = np.arange(-5, 60_000, dtype=np.int64)
    thresholds = [7, 30_000, 59_999]
    index = divgpu.Index(values, backend=backend, algorithm="naive")
    calls = Calls()
    assert index.count(thresholds, progress=calls).tolist() == oracle(values, thresholds)
    assert calls.calls, "no call"
    for stage in _stages(calls.calls):
        dones = [done for done, _ in stage]
        assert dones == sorted(dones) and all(0 <= d <= stage[0][1] for d in dones)
    # the last call is the end of the work, and the work is every element against each
    # threshold (the CPU's naive pass is one pass per threshold)
    done, total = calls.calls[-1]
    assert done == total > 0
    if backend == "cpu":
        assert total == len(values) * len(thresholds)


def test_the_index_counts_its_values_with_progress(backend):
    rng = np.random.default_rng(3)
    values = rng.integers(2**33, 2**34, 5000, dtype=np.int64)
    calls = Calls()
    index = divgpu.Index(values, backend=backend, build_index=True, progress=calls)
    distinct = len(np.unique(values))
    assert calls.calls[-1] == (distinct, distinct)
    # then every count is look-ups: nothing to show
    calls.calls.clear()
    low = int(values.min())
    assert index.count(low) == oracle(values[values == low], [low])[0]
    assert calls.calls == []
    # save has nothing left to count
    assert index.stats()["counted"] == distinct


def test_a_callback_that_raises_stops_the_work():
    values = np.full(400_000, 4294967291, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive", threads=1)
    calls = Calls(stop_after=1)
    with pytest.raises(RuntimeError, match="stop here"):
        index.count([2**33] * 50, progress=calls)
    done, total = calls.calls[0]
    assert done < total
    assert index.count([5]).tolist() == [0]


def test_ctrl_c_stops_a_count_that_shows_progress():
    values = np.full(400_000, 4294967291, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive", threads=1)
    calls = Calls()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        index.count([2**33] * 50, progress=calls)
    timer.join()
    assert calls.calls and calls.calls[-1][0] < calls.calls[-1][1]


def test_true_shows_lines_on_stderr_without_tqdm_and_nothing_for_quick_work(
    capfd, monkeypatch
):
    values = np.arange(200_000, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive", progress=True)
    # quick work (under DELAY) shows nothing
    index.count([10, 20])
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setattr(_progress, "LINE_EVERY", 0.0)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert index.count([10, 20]).tolist() == oracle(range(200_000), [10, 20])
    err = capfd.readouterr().err
    assert f"divgpu: count: 100% ({2 * len(values):,} of {2 * len(values):,})" in err, err
    # False for this count only
    index.count([10, 20], progress=False)
    assert capfd.readouterr().err == ""


def test_true_shows_a_tqdm_bar_where_tqdm_is_installed(capfd, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    index = divgpu.Index(np.arange(100_000, dtype=np.int64), backend="cpu", algorithm="naive")
    index.count([10, 20], progress=True)
    err = capfd.readouterr().err
    assert "divgpu: count" in err and ("it/s" in err or "it]" in err), err


@pytest.mark.parametrize("bad", ["yes", 1, 2.0])
def test_progress_must_be_a_bool_or_a_callable(bad):
    with pytest.raises(TypeError, match="progress must be"):
        divgpu.Index([1, 2], backend="cpu", progress=bad)
    with pytest.raises(TypeError, match="progress must be"):
        divgpu.Index([1, 2], backend="cpu").count(1, progress=bad)


def test_a_stderr_that_cannot_be_written_loses_lines_not_the_count(monkeypatch):
    import io

    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    values = np.arange(200_000, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive")
    assert index.count([10, 20], progress=True).tolist() == oracle(range(200_000), [10, 20])
