"""divgpu.Index against the oracle: every dtype and byte order, memmaps, views, edge values,
threshold types, every error, many threads, Ctrl-C, and the write lock; CPU and GPU."""

import concurrent.futures
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import divgpu
from conftest import INT_DTYPES, oracle, random_thresholds, random_values

ALGORITHMS = ["fast", "naive"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_dtype_and_byte_order_matches_the_oracle(backend, dtype, order, algorithm):
    rng = random.Random(f"{dtype} {order} {algorithm}")
    values = random_values(rng, dtype, 300)
    array = np.array(values, dtype=np.dtype(dtype).newbyteorder(order))
    thresholds = random_thresholds(rng, dtype, 6)
    expected = oracle(values, thresholds)
    index = divgpu.Index(array, backend=backend, algorithm=algorithm)
    got = index.count(thresholds)
    assert got.dtype == np.uint64
    assert got.tolist() == expected
    # a second batch: the CPU's table where the values allow one, the uploaded array on the GPU
    assert index.count(thresholds[::-1]).tolist() == expected[::-1]
    assert len(index) == len(values)
    assert index.backend == backend
    assert index.algorithm == algorithm


def test_a_later_batch_on_the_cpu_is_answered_from_the_dense_table():
    values = np.arange(-5, 5000, dtype=np.int32)
    index = divgpu.Index(values, backend="cpu")
    assert index.stats()["index"] == "not built"
    first = index.count([10, 4999])
    assert index._session.has_index
    assert index.stats()["kind"] == "dense"
    assert index.count([10, 4999]).tolist() == first.tolist() == oracle(values, [10, 4999])


def wide_values(seed, n, distinct, bits=34):
    """`n` values drawn from `distinct` ones spread over [-2**bits, 2**bits] (far wider than a
    dense table; small enough for the oracle's trial division), edges among them."""
    rng = random.Random(seed)
    pool = [rng.randint(-(2**bits), 2**bits) for _ in range(distinct)] + [0, 1, 2, 2**bits]
    return [rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint32"])
def test_any_range_gets_a_sorted_index_that_answers_like_the_oracle(backend, dtype):
    info = np.iinfo(dtype)
    bits = 34 if info.bits == 64 else 31
    values = [v for v in wide_values(dtype, 3000, 150, bits) if info.min <= v <= info.max]
    values += [int(info.min), int(info.max)]
    array = np.array(values, dtype=dtype)
    index = divgpu.Index(array, backend=backend)
    rng = random.Random(1)
    thresholds = [rng.choice(values) + rng.randint(-1, 1) for _ in range(40)]
    thresholds += [-(2**63), -1, 0, 1, 2**64 - 1, int(info.min), int(info.max)]
    expected = oracle(values, thresholds)
    assert index.count(thresholds).tolist() == expected
    stats = index.stats()
    assert stats["index"] == "ready" and stats["kind"] == "sorted", stats
    assert stats["distinct"] == len(set(values))
    assert stats["bytes"] == stats["distinct"] * (array.itemsize + 8)
    assert stats["elements"] == len(values)
    # later batches: look-ups, the same answers, in the given order
    assert index.count(thresholds[::-1]).tolist() == expected[::-1]
    assert index.count(thresholds[3]) == expected[3]


def test_build_index_builds_at_construction_and_index_memory_caps_it(backend):
    values = wide_values(3, 2000, 200)
    array = np.array(values, dtype=np.int64)
    thresholds = [-5, 0, 2**33, 2**35]
    expected = oracle(values, thresholds)
    eager = divgpu.Index(array, backend=backend, build_index=True)
    stats = eager.stats()
    assert stats["index"] == "ready" and stats["build_seconds"] >= 0, stats
    assert eager.count(thresholds).tolist() == expected
    needed = len(set(values)) * 16
    for limit in [0, needed - 1]:
        capped = divgpu.Index(array, backend=backend, index_memory=limit, build_index=True)
        stats = capped.stats()
        assert stats["index"] == "over memory" and stats["index_memory"] == limit, stats
        assert str(needed) in stats["message"] and "pass" in stats["message"]
        assert capped.count(thresholds).tolist() == expected
        assert capped.count(thresholds).tolist() == expected
    fits = divgpu.Index(array, backend=backend, index_memory=needed)
    assert fits.count(thresholds).tolist() == expected
    assert fits.stats()["index"] == "ready"


def test_sessions_without_an_index_say_so():
    array = np.array([1, 2, 3])
    assert divgpu.Index(array, backend="cpu", algorithm="naive").stats()["index"] == "off"
    with pytest.raises(ValueError, match="build_index"):
        divgpu.Index(array, backend="cpu", algorithm="naive", build_index=True)
    # the array is given back its write flag after a failed construction
    array[0] = 1


@pytest.mark.parametrize(
    "options, error",
    [
        ({"index_memory": "1G"}, TypeError),
        ({"index_memory": 1.5}, TypeError),
        ({"index_memory": True}, TypeError),
        ({"index_memory": -1}, ValueError),
        ({"index_memory": 2**64}, ValueError),
        ({"build_index": 1}, TypeError),
        ({"build_index": "yes"}, TypeError),
    ],
)
def test_index_options_are_checked(options, error):
    with pytest.raises(error):
        divgpu.Index(np.array([1, 2, 3]), backend="cpu", **options)


def test_many_threads_on_a_fresh_index_build_it_once_and_agree(backend):
    values = wide_values(4, 5000, 300)
    array = np.array(values, dtype=np.int64)
    index = divgpu.Index(array, backend=backend)
    rng = random.Random(6)
    batches = [[rng.choice(values) for _ in range(7)] for _ in range(16)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda ts: index.count(ts).tolist(), batches))
    assert got == [oracle(values, ts) for ts in batches]
    assert index.stats()["index"] == "ready"


@pytest.mark.parametrize("mode", ["np.load", "np.memmap"])
def test_memmapped_arrays_are_read_in_place(backend, tmp_path, mode):
    rng = random.Random(8)
    values = [rng.randint(-3, 30_000) for _ in range(5000)]
    path = tmp_path / "values.npy"
    np.save(path, np.array(values, dtype=">i4"))
    if mode == "np.load":
        array = np.load(path, mmap_mode="r")
    else:
        raw = tmp_path / "values.raw"
        np.array(values, dtype="<u4").astype("<i8").tofile(raw)
        array = np.memmap(raw, dtype="<i8", mode="r+", shape=(len(values),))
    assert isinstance(array, np.memmap)
    thresholds = [0, 100, 29_999, -3]
    assert divgpu.Index(array, backend=backend).count(thresholds).tolist() == oracle(
        values, thresholds
    )


def views(base):
    """Strided, reversed, transposed and misaligned views of `base`'s values."""
    yield "every third", base[::3]
    yield "reversed", base[::-1]
    two_d = base[: (len(base) // 6) * 6].reshape(-1, 6)
    yield "transposed", two_d.T
    yield "column", two_d[:, 4]
    yield "2-D strided", two_d[::2, ::-3]
    raw = bytearray(base.nbytes + 1)
    misaligned = np.frombuffer(raw, dtype=base.dtype, offset=1, count=len(base))
    misaligned[...] = base
    yield "misaligned", misaligned
    yield "misaligned strided", misaligned[1::2]


@pytest.mark.parametrize("dtype", ["int16", "uint32", ">i8", "<u8"])
def test_non_contiguous_and_misaligned_arrays_match_the_oracle(backend, dtype):
    rng = random.Random(11)
    base = np.array([rng.randint(0, 5000) for _ in range(601)], dtype=dtype)
    for name, view in views(base):
        flat = [int(v) for v in view.reshape(-1)]
        thresholds = [rng.randint(0, 5000) for _ in range(5)]
        for algorithm in ALGORITHMS:
            got = divgpu.count(view, thresholds, backend=backend, algorithm=algorithm)
            assert got.tolist() == oracle(flat, thresholds), (name, algorithm)


def test_empty_arrays_count_nothing(backend):
    for array in [np.array([], dtype=np.int64), np.zeros((3, 0), dtype=np.uint8)]:
        index = divgpu.Index(array, backend=backend)
        assert len(index) == 0
        assert index.count(5) == 0
        assert index.count([-(2**63), 2**64 - 1]).tolist() == [0, 0]


def test_edge_values_and_thresholds(backend):
    values = np.array(
        [np.iinfo(np.int64).min, -1, 0, 1, 2, np.iinfo(np.int64).max, 4294967291],
        dtype=np.int64,
    )
    thresholds = [-(2**63), -2, -1, 0, 1, 2, 2**31, 2**63 - 1, 2**64 - 1]
    for algorithm in ALGORITHMS:
        got = divgpu.count(values, thresholds, backend=backend, algorithm=algorithm)
        assert got.tolist() == oracle(values.tolist(), thresholds)
    top = np.array([2**64 - 1, 2**63, 0], dtype=np.uint64)
    assert divgpu.count(top, [2**64 - 1, 2**63 - 1], backend=backend).tolist() == oracle(
        top.tolist(), [2**64 - 1, 2**63 - 1]
    )


def test_threshold_types(backend):
    values = np.arange(100)
    index = divgpu.Index(values, backend=backend)
    expected = oracle(values.tolist(), [10, 50, 99])
    one = index.count(10)
    assert type(one) is int and one == expected[0]
    assert index.count(np.int64(50)) == expected[1]
    assert index.count(np.uint8(10)) == expected[0]
    assert index.count(np.array(99)) == expected[2]
    for given in [
        [10, 50, 99],
        (10, 50, 99),
        range(10, 100, 40),
        (t for t in [10, 50, 99]),
        np.array([10, 50, 99], dtype=np.int16),
        np.array([10, 50, 99], dtype=">u8"),
        np.array([10, 50, 99], dtype=object),
        [np.int32(10), np.uint64(50), 99],
    ]:
        got = index.count(given)
        assert isinstance(got, np.ndarray) and got.dtype == np.uint64
        want = expected if not isinstance(given, range) else oracle(values.tolist(), list(given))
        assert got.tolist() == want, given
    grid = index.count(np.array([[10, 50], [99, 10]]))
    assert grid.shape == (2, 2)
    assert grid.tolist() == [[expected[0], expected[1]], [expected[2], expected[0]]]
    # the given order, duplicates kept
    many = [99, 10, 99, -5, 50]
    assert index.count(many).tolist() == oracle(values.tolist(), many)


def test_errors():
    values = np.arange(10)
    for bad_array in [np.arange(3.0), np.array([True, False]), np.array(["1"]), [1.5]]:
        with pytest.raises(TypeError):
            divgpu.Index(bad_array)
    for error, options in [
        (ValueError, {"backend": "tpu"}),
        (ValueError, {"algorithm": "slow"}),
        (TypeError, {"backend": 1}),
        (ValueError, {"threads": 0}),
        (ValueError, {"threads": divgpu._divgpu.MAX_THREADS + 1}),
        # past any C integer too: the same ValueError, not an OverflowError
        (ValueError, {"threads": 2**64}),
        (TypeError, {"threads": "2"}),
        (TypeError, {"threads": 2.0}),
        (ValueError, {"chunk_elements": 0}),
        # an int is an adapter's number (test_sharing.py); other types are not adapters
        (TypeError, {"adapter": 3.0}),
        (TypeError, {"adapter": True}),
        (ValueError, {"adapter": -1}),
    ]:
        with pytest.raises(error):
            divgpu.Index(values, **options)
        assert values.flags.writeable, options  # a failed Index leaves the array as it was
    index = divgpu.Index(values, backend="cpu")
    bad_kinds = [1.5, "5", b"5", True, np.bool_(True), [1, 2.5], [True], [np.bool_(True)]]
    for bad in bad_kinds + [[None], None, object()]:
        with pytest.raises(TypeError):
            index.count(bad)
    with pytest.raises(TypeError):
        index.count(np.array([1.0, 2.0]))
    for bad in [2**64, -(2**63) - 1, [0, 2**70], [-(2**100)]]:
        with pytest.raises(ValueError):
            index.count(bad)
    for empty in [[], (), np.array([], dtype=np.int64)]:
        with pytest.raises(ValueError):
            index.count(empty)
    assert issubclass(divgpu.DivgpuError, RuntimeError)
    index.close()
    with pytest.raises(divgpu.DivgpuError):
        index.count(5)


def test_gpu_errors_are_divgpu_errors(gpu_backend):
    with pytest.raises(divgpu.DivgpuError, match="no adapter"):
        divgpu.Index([1, 2], backend="gpu", adapter="no such adapter anywhere")
    with pytest.raises(ValueError, match="chunk_elements"):
        divgpu.Index([1, 2], backend="gpu", chunk_elements=2**40)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_many_threads_on_one_index(backend, algorithm):
    rng = random.Random(21)
    values = [rng.randint(-5, 40_000) for _ in range(4000)] + [4294967291]
    index = divgpu.Index(np.array(values), backend=backend, algorithm=algorithm, threads=1)
    batches = [[rng.randint(-10, 41_000) for _ in range(rng.randint(1, 9))] for _ in range(24)]
    expected = [oracle(values, b) for b in batches]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda b: index.count(b).tolist(), batches))
    assert got == expected


def test_backend_both_compares():
    values = np.arange(-3, 3000)
    index = divgpu.Index(values, backend="both") if not _no_gpu() else None
    if index is None:
        pytest.skip("DIVGPU_SKIP_GPU_TESTS=1")
    assert index.backend == "both"
    assert index.count([5, 2999]).tolist() == oracle(values.tolist(), [5, 2999])


def _no_gpu():
    return os.environ.get("DIVGPU_SKIP_GPU_TESTS") == "1"


def test_the_array_is_locked_while_an_index_lives(backend):
    values = np.arange(50)
    base_view = values[10:]
    first = divgpu.Index(base_view, backend=backend)
    second = divgpu.Index(values, backend=backend)
    expected = oracle(list(range(10, 50)), [30])
    for target in (values, base_view):
        with pytest.raises(ValueError):
            target[0] = 7
    first.close()
    with pytest.raises(ValueError):
        values[0] = 7  # the second Index still holds it
    assert second.count([30]).tolist() == oracle(list(range(50)), [30])
    del second
    values[0] = 7  # writeable again once no Index holds it
    assert values[0] == 7
    # made writeable by hand under a live Index: counts refuse
    index = divgpu.Index(values, backend=backend)
    values.flags.writeable = True
    with pytest.raises(divgpu.DivgpuError, match="writeable"):
        index.count(30)
    index.close()
    # an array that was read-only stays read-only
    frozen = np.arange(5)
    frozen.flags.writeable = False
    divgpu.count(frozen, [3], backend=backend)
    assert not frozen.flags.writeable
    assert expected == oracle(list(range(10, 50)), [30])


def test_count_leaves_the_write_flag_as_it_was():
    values = np.arange(20)
    divgpu.count(values, [5])
    values[0] = 3
    with divgpu.Index(values) as index:
        assert not values.flags.writeable
        index.count(4)
    assert values.flags.writeable


def test_keyboard_interrupt_stops_a_long_count():
    # the naive kernel over large primes: seconds of work per threshold on one thread
    values = np.full(400_000, 4294967291, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive", threads=1)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        index.count([2**33] * 50)
    elapsed = time.monotonic() - start
    timer.join()
    # the half-second latency is measured by benches/python_session.py; this catches a hang
    assert elapsed < 5, elapsed
    # the Index still answers after an interrupt
    assert index.count([5]).tolist() == [0]


def test_devices_lists_dicts():
    found = divgpu.devices()
    assert isinstance(found, list)
    if not _no_gpu():
        assert found, "the GPU tests need an adapter"
    for device in found:
        assert {"name", "backend", "device_type", "shader_int64"} <= device.keys(), device


def test_help_is_useful():
    doc = divgpu.Index.__doc__
    for word in ["backend", "algorithm", "threads", "writeable", "KeyboardInterrupt"]:
        assert word in doc
    assert "uint64" in divgpu.Index.count.__doc__


def test_a_saved_index_loads_and_answers_like_the_index_that_saved_it(backend, tmp_path):
    values = wide_values(9, 4000, 300) + list(range(-5, 200))
    array = np.array(values, dtype=np.int64)
    rng = random.Random(2)
    thresholds = [rng.choice(values) + rng.randint(-1, 1) for _ in range(60)]
    thresholds += [-(2**63), -1, 0, 1, 2**64 - 1]
    expected = oracle(values, thresholds)
    index = divgpu.Index(array, backend=backend)
    path = tmp_path / "values.divi"
    index.save(path)
    assert index.stats()["counted"] == len(set(values))
    loaded = divgpu.Index.load(path)
    assert loaded.count(thresholds).tolist() == expected
    assert loaded.count(thresholds[4]) == expected[4]
    assert len(loaded) == len(values) and loaded.backend == "cpu"
    stats = loaded.stats()
    assert stats["index"] == "ready" and stats["kind"] == "file", stats
    assert stats["distinct"] == len(set(values))
    # str paths too, and saving a loaded index again gives the same file
    again = tmp_path / "again.divi"
    loaded.save(str(again))
    assert again.read_bytes() == path.read_bytes()


def _count_in_child(path, thresholds):
    return divgpu.Index.load(path).count(thresholds).tolist()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_processes_share_a_saved_index_by_its_path(tmp_path, method):
    import multiprocessing

    values = list(range(-10, 30_000, 7)) + [2**40 + 1]
    path = tmp_path / "shared.divi"
    divgpu.Index(np.array(values, dtype=np.int64), backend="cpu").save(path)
    batches = [[100, 2**41], [-3, 20_000], [5]]
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        got = pool.starmap(_count_in_child, [(str(path), b) for b in batches])
    assert got == [oracle(values, b) for b in batches]


def test_bad_index_files_raise_divgpu_error(tmp_path):
    path = tmp_path / "a.divi"
    divgpu.Index(np.array([1, 2, 3, 2**40]), backend="cpu").save(path)
    good = path.read_bytes()
    cases = {
        "truncated": good[:-9],
        "not a divgpu index": b"\x93NUMPY" + good[6:],
        "header is damaged": good[:30] + bytes([good[30] ^ 1]) + good[31:],
    }
    for needle, data in cases.items():
        bad = tmp_path / "bad.divi"
        bad.write_bytes(data)
        with pytest.raises(divgpu.DivgpuError, match=needle):
            divgpu.Index.load(bad)
    with pytest.raises(divgpu.DivgpuError, match="No such file"):
        divgpu.Index.load(tmp_path / "missing.divi")
    # a damaged block is found when a count reads it, and stays an error
    damaged = bytearray(good)
    damaged[128] ^= 1
    bad.write_bytes(bytes(damaged))
    index = divgpu.Index.load(bad)
    for _ in range(2):
        with pytest.raises(divgpu.DivgpuError, match="damaged"):
            index.count(2)


def test_an_index_without_an_index_cannot_be_saved(tmp_path):
    array = np.array([1, 2, 3, 2**40])
    with pytest.raises(ValueError, match="algorithm 'fast'"):
        divgpu.Index(array, backend="cpu", algorithm="naive").save(tmp_path / "x.divi")
    with pytest.raises(divgpu.DivgpuError, match="no index to save"):
        divgpu.Index(array, backend="cpu", index_memory=0).save(tmp_path / "x.divi")
    assert not (tmp_path / "x.divi").exists()
    with pytest.raises(TypeError):
        divgpu.Index.load(tmp_path / "x.divi", threads="2")


def test_without_xdg_runtime_dir_nothing_but_divgpu_writes_to_stderr(tmp_path):
    # Mesa's Vulkan drivers printed "error: XDG_RUNTIME_DIR is invalid or not set in the
    # environment." on every adapter enumeration where the variable is unset (containers,
    # cron, CI); every backend is enumerated here (WGPU_BACKEND unset)
    script = "import divgpu\nassert divgpu.count([1, 2, 3], 3) == 5\ndivgpu.devices()\n"
    if not _no_gpu():
        script += "assert divgpu.Index([4, 6], backend='gpu').count(6) == 7\n"
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "WGPU_BACKEND")}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
