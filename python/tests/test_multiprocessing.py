"""divgpu in other processes: forked workers that inherit an Index, and Indexes handed to
workers of every start method by pickling.

Every count a worker returns is checked against the oracle (conftest), and every pool is
waited on with a timeout: a hang fails the test instead of stopping the suite.
"""

import concurrent.futures
import multiprocessing
import pickle
import random
import threading
import warnings

import numpy as np
import pytest

import divgpu
from conftest import oracle

# a worker that hangs fails the test after this long (each map takes well under a second)
TIMEOUT = 120

# the Index a forked worker inherits from its parent (set before the pool starts)
_inherited = None


def _count_inherited(thresholds):
    return _inherited.count(thresholds).tolist()


def _count_given(index, thresholds):
    return index.count(thresholds).tolist()


def _count_on_a_new_index(values, thresholds, backend):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with divgpu.Index(np.array(values, dtype=np.int64), backend=backend) as index:
            answer = index.backend, index.count(thresholds).tolist()
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return answer + (said,)


def _devices():
    return divgpu.devices()


def _values(seed):
    rng = random.Random(seed)
    # small values (the dense table on the CPU) and a few wide ones (a sorted index)
    values = [rng.randint(-20, 50_000) for _ in range(3000)]
    values += [rng.randint(2**32, 2**33) for _ in range(20)]
    return values


def _expected(values, batches):
    """The oracle's answers for every batch, from one pass of the oracle."""
    flat = oracle(values, [t for b in batches for t in b])
    answers, at = [], 0
    for b in batches:
        answers.append(flat[at : at + len(b)])
        at += len(b)
    return answers


def _batches(values, seed, count=6):
    rng = random.Random(seed)
    batches = []
    for _ in range(count):
        batch = [rng.choice(values) + rng.randint(-1, 1) for _ in range(rng.randint(1, 40))]
        batch.append(rng.choice([-(2**63), 0, 2**64 - 1, 60_000]))
        batches.append(batch)
    return batches


def _map(pool, function, batches):
    return pool.map_async(function, batches).get(timeout=TIMEOUT)


@pytest.mark.parametrize("threads", [None, 1, 2])
@pytest.mark.parametrize("algorithm", ["fast", "naive"])
@pytest.mark.parametrize("counted_before", [False, True], ids=["fresh", "counted"])
def test_a_forked_worker_counts_on_a_cpu_index_it_inherited(algorithm, threads, counted_before):
    global _inherited
    values = _values(1)
    batches = _batches(values, 2)
    array = np.array(values, dtype=np.int64)
    _inherited = divgpu.Index(array, backend="cpu", algorithm=algorithm, threads=threads)
    try:
        if counted_before:
            # the parent's pool is started (and with `fast`, its index built)
            assert _inherited.count(batches[0]).tolist() == oracle(values, batches[0])
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = _map(pool, _count_inherited, batches)
        assert got == _expected(values, batches)
        # and the parent's Index still counts, on its own pool
        assert _inherited.count(batches[1]).tolist() == oracle(values, batches[1])
    finally:
        _inherited.close()
        _inherited = None


def test_a_forked_worker_never_uses_the_parents_gpu(gpu_backend):
    global _inherited
    values = _values(3)
    batches = _batches(values, 4)
    # below the wide values: counting up to it leaves those uncounted
    top = 50_000
    array = np.array(values, dtype=np.int64)
    context = multiprocessing.get_context("fork")
    for algorithm in ["fast", "naive"]:
        _inherited = divgpu.Index(array, backend=gpu_backend, algorithm=algorithm)
        try:
            with context.Pool(1) as pool:
                with pytest.raises(divgpu.DivgpuError, match="do not survive a fork"):
                    _map(pool, _count_inherited, batches)
        finally:
            _inherited.close()
    # an index the parent has counted up to every threshold answers by look-ups alone, with no
    # GPU; a threshold beyond what it counted needs the GPU, and is the same error
    _inherited = divgpu.Index(array, backend=gpu_backend)
    try:
        assert _inherited.count([top]).tolist() == oracle(values, [top])
        below = [[t for t in b if t <= top] or [top] for b in batches]
        with context.Pool(2) as pool:
            assert _map(pool, _count_inherited, below) == _expected(values, below)
            with pytest.raises(divgpu.DivgpuError, match="do not survive a fork"):
                _map(pool, _count_inherited, [[2**64 - 1]])
    finally:
        _inherited.close()
        _inherited = None


def test_a_forked_worker_opens_no_gpu_of_its_own_once_the_parent_has(gpu_backend):
    values = _values(5)
    batches = _batches(values, 6, count=2)
    # the parent has opened a GPU and counted on it before the fork (Mesa's GL hung in a child
    # that opened one afterwards)
    with divgpu.Index(np.array(values, dtype=np.int64), backend=gpu_backend) as parent:
        assert parent.count(batches[0]).tolist() == oracle(values, batches[0])
        with multiprocessing.get_context("fork").Pool(1) as pool:
            with pytest.raises(divgpu.DivgpuError, match="do not survive a fork"):
                pool.apply_async(_count_on_a_new_index, (values, batches[0], "gpu")).get(TIMEOUT)
            with pytest.raises(divgpu.DivgpuError, match="do not survive a fork"):
                pool.apply_async(_devices).get(TIMEOUT)
            # "auto" counts on the CPU there, and says why
            got = pool.starmap_async(
                _count_on_a_new_index, [(values, b, "auto") for b in batches]
            ).get(timeout=TIMEOUT)
    for (backend, answer, said), expected in zip(got, _expected(values, batches)):
        assert (backend, answer) == ("cpu", expected)
        assert len(said) == 1 and "counting on the CPU: this process was forked" in said[0], said


def test_an_index_in_memory_refuses_to_pickle_and_says_to_save_it(backend):
    index = divgpu.Index(np.arange(10), backend=backend)
    with pytest.raises(TypeError, match=r"save it first"):
        pickle.dumps(index)
    index.close()
    with pytest.raises(divgpu.DivgpuError, match="closed"):
        pickle.dumps(index)


def test_a_saved_or_loaded_index_pickles_as_its_file(backend, tmp_path):
    values = _values(7)
    batches = _batches(values, 8)
    path = tmp_path / "values.divi"
    index = divgpu.Index(np.array(values, dtype=np.int64), backend=backend, threads=2)
    index.save(path)
    loaded = divgpu.Index.load(path, threads=1)
    for original in [index, loaded]:
        copy = pickle.loads(pickle.dumps(original))
        assert copy.backend == "cpu" and copy.stats()["kind"] == "file"
        assert copy.threads == (2 if original is index else 1)
        assert [copy.count(b).tolist() for b in batches] == _expected(values, batches)
        # the pickle holds the path and a fingerprint, not the index
        assert len(pickle.dumps(original)) < 1000
    # a file rewritten since: the unpickled Index refuses it rather than answer from it
    blob = pickle.dumps(loaded)
    divgpu.Index(np.array(values[:-1], dtype=np.int64), backend="cpu").save(path)
    with pytest.raises(divgpu.DivgpuError, match="rewritten"):
        pickle.loads(blob)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_workers_of_every_start_method_take_a_saved_index(tmp_path, method):
    values = _values(9)
    batches = _batches(values, 10)
    path = tmp_path / "values.divi"
    index = divgpu.Index(np.array(values, dtype=np.int64), backend="cpu")
    index.save(path)
    expected = _expected(values, batches)
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        got = pool.starmap_async(_count_given, [(index, b) for b in batches]).get(TIMEOUT)
    assert got == expected
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [pool.submit(_count_given, divgpu.Index.load(path), b) for b in batches]
        assert [f.result(timeout=TIMEOUT) for f in futures] == expected


def _count_or_error(thresholds):
    try:
        return ("ok", _inherited.count(thresholds).tolist())
    except divgpu.DivgpuError as e:
        return ("error", str(e))


def test_a_fork_while_another_thread_counts_neither_hangs_nor_answers_from_half_counted_sums():
    global _inherited
    # two million 41-bit values: about 2 s of factoring on one thread here, and the fork comes
    # within about 50 ms of its start
    values = np.random.default_rng(11).integers(2**40, 2**41, 2_000_000, dtype=np.int64)
    _inherited = divgpu.Index(values, backend="cpu", threads=1)
    counting_started = threading.Event()

    def heard(done, total):
        if total > 0:
            counting_started.set()

    try:
        counting = threading.Thread(
            target=_inherited.count, args=([2**42],), kwargs={"progress": heard}
        )
        counting.start()
        assert counting_started.wait(TIMEOUT)
        # forked while the other thread holds the index's locks and writes its sums
        with multiprocessing.get_context("fork").Pool(1) as pool:
            cut_off = pool.apply_async(_count_or_error, ([2**42],)).get(TIMEOUT)
        counting.join()
        assert cut_off[0] == "error" and "being counted by another thread" in cut_off[1], cut_off
        # forked once the count is done: the child answers as the parent does
        with multiprocessing.get_context("fork").Pool(1) as pool:
            after = pool.apply_async(_count_or_error, ([2**42, 2**40 + 10**9],)).get(TIMEOUT)
        assert after == ("ok", _inherited.count([2**42, 2**40 + 10**9]).tolist())
    finally:
        _inherited.close()
        _inherited = None
