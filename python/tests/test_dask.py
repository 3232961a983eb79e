"""divgpu.dask on a real distributed.LocalCluster of 2 worker processes: every dtype in many
chunks against the single-process answer and the oracle, zarr and .npy stores on disk, blocks
misaligned or moved between workers, a worker killed mid-compute, errors inside blocks, the
GPU opened once per process, the thresholds sent once, the exact adding tree; CPU and GPU."""

import json
import logging
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

import divgpu
import divgpu.dask as dd
from conftest import EXPECT_BACKEND, INT_DTYPES, oracle, random_thresholds, random_values

# the workers unpickle this module's block functions by value: they cannot import it
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def local_cluster(**options):
    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        **options,
    )


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        yield client


def random_chunks(rng, n, pieces):
    """`pieces` chunk lengths adding up to `n`, uneven, some of them 0 or 1."""
    cuts = sorted(rng.randint(0, n) for _ in range(pieces - 1))
    return tuple(b - a for a, b in zip([0] + cuts, cuts + [n]))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_every_dtype_in_many_chunks_matches_one_process(client, backend, dtype):
    rng = random.Random(f"dask {dtype}")
    values = random_values(rng, dtype, 1500)
    order = rng.choice("<>")
    array = np.array(values, dtype=np.dtype(dtype).newbyteorder(order))
    thresholds = random_thresholds(rng, dtype, 7)
    expected = divgpu.count(array, thresholds, backend=backend)
    assert expected.tolist() == oracle(values, thresholds)
    flat = da.from_array(array, chunks=(random_chunks(rng, array.size, 17),))
    got = dd.count(flat, thresholds, backend=backend).compute()
    assert got.dtype == np.uint64
    assert got.tolist() == expected.tolist()
    # and 1,500 of them as a 2-d array, chunked along both axes
    grid = array[:1500].reshape(30, 50)
    x = da.from_array(grid, chunks=(random_chunks(rng, 30, 4), 13))
    got = dd.count(x, thresholds, backend=backend).compute()
    assert got.tolist() == divgpu.count(grid, thresholds, backend=backend).tolist()


def test_options_pass_through_to_every_block(client, backend):
    rng = random.Random(11)
    values = random_values(rng, "int64", 2000)
    array = np.array(values, dtype=np.int64)
    thresholds = random_thresholds(rng, "int64", 5)
    expected = oracle(values, thresholds)
    x = da.from_array(array, chunks=250)
    for options in (
        {"algorithm": "naive"},
        {"algorithm": "fast", "threads": 2},
        {"chunk_elements": 64} if backend == "gpu" else {"threads": 1},
    ):
        got = dd.count(x, thresholds, backend=backend, **options).compute()
        assert got.tolist() == expected, options
    if backend == "gpu":
        got = dd.count(x, thresholds, backend="both").compute()
        assert got.tolist() == expected
        # the adapter reaches the workers: one that no worker has fails there, loudly
        with pytest.raises(divgpu.DivgpuError):
            dd.count(x, thresholds, backend="gpu", adapter="no such adapter").compute()


def test_thresholds_of_every_kind_and_shape(client):
    array = np.arange(-5, 3000, dtype=np.int64)
    x = da.from_array(array, chunks=400)
    for thresholds in (
        [3, -(2**63), 2**64 - 1, 100],  # both ends: an object array on the way
        np.array([[10, 20], [30, 2999]], dtype=np.int16),
        np.array([2**64 - 1, 7], dtype=np.uint64),
        np.array([np.int64(4), 2**64 - 2, -1], dtype=object),
        range(0, 3000, 250),
    ):
        expected = divgpu.count(array, thresholds, backend="cpu")
        got = dd.count(x, thresholds, backend="cpu").compute()
        assert np.shape(got) == np.shape(expected)
        assert got.tolist() == expected.tolist()
    one = dd.count(x, 1000, backend="cpu")
    assert one.shape == ()
    assert int(one.compute()) == divgpu.count(array, 1000, backend="cpu")


def test_the_index_and_dask_classify_thresholds_alike(client):
    """Index.count and divgpu.dask share one classification of thresholds: each kind, good or
    bad, gets the same sums in the same shape, or the same error (type and message), from
    both."""
    array = np.arange(-5, 300, dtype=np.int64)
    index = divgpu.Index(array, backend="cpu")
    x = da.from_array(array, chunks=100)
    kinds = [
        lambda: 7,
        lambda: np.uint64(2**64 - 1),
        lambda: np.array(9),
        lambda: np.array([[1, 2], [3, 250]], dtype=np.uint8),
        lambda: [3, -(2**63), 2**64 - 1],
        lambda: (t for t in [5, 6]),
        lambda: range(0, 300, 77),
        lambda: np.array([1, 2**64 - 1, -1], dtype=object),
        lambda: np.array(5, dtype=object),
        lambda: [np.int32(10), np.uint64(50), 99],
        lambda: True,
        lambda: 1.5,
        lambda: "5",
        lambda: [1, 2.5],
        lambda: [True],
        lambda: [np.bool_(False)],
        lambda: [None],
        lambda: [2**64, 1.5],
        lambda: np.array([1.0]),
        lambda: 2**64,
        lambda: [-(2**100)],
        lambda: object(),
        lambda: None,
    ]

    def outcome(count, thresholds):
        try:
            got = np.asarray(count(thresholds))
        except (TypeError, ValueError) as e:
            return type(e), str(e)
        return got.shape, got.tolist()

    for kind in kinds:
        by_index = outcome(index.count, kind())
        by_dask = outcome(lambda t: dd.count(x, t, backend="cpu").compute(), kind())
        assert by_index == by_dask, kind()


def task_sizes(result):
    """The pickled size of every task of `result`'s optimized graph, largest first."""
    graph = result.__dask_optimize__(result.__dask_graph__(), result.__dask_keys__())
    return sorted((len(pickle.dumps(task)) for task in dict(graph).values()), reverse=True)


def test_zarr_store_on_disk_is_read_by_the_workers(client, backend, tmp_path):
    rng = np.random.default_rng(3)
    array = rng.integers(-100, 30_000, size=(400, 250), dtype=np.int32)
    path = str(tmp_path / "values.zarr")
    store = zarr.open_array(path, mode="w", shape=array.shape, chunks=(64, 100), dtype=array.dtype)
    store[:] = array
    x = da.from_zarr(path)
    assert x.npartitions > 20
    thresholds = [int(t) for t in rng.integers(-200, 31_000, size=20)]
    result = dd.count(x, thresholds, backend=backend)
    # each task reads its block itself: none carries the data (400 KB) with it
    assert task_sizes(result)[0] < 10_000
    expected = divgpu.count(zarr.open_array(path, mode="r")[:], thresholds, backend=backend)
    assert result.compute().tolist() == expected.tolist()


def test_npy_files_are_mapped_by_the_workers(client, backend, tmp_path):
    rng = np.random.default_rng(4)
    parts = [
        rng.integers(0, 50_000, size=n, dtype=np.int64).astype(dtype)
        for n, dtype in ((70_000, "<i8"), (1, "<i8"), (33_333, "<i8"))
    ]
    paths = []
    for i, part in enumerate(parts):
        paths.append(str(tmp_path / f"part{i}.npy"))
        np.save(paths[-1], part)
    x = dd.from_npy(paths, chunks=9_000)
    assert x.shape == (103_334,)
    thresholds = [int(t) for t in rng.integers(-5, 51_000, size=9)]
    result = dd.count(x, thresholds, backend=backend)
    assert task_sizes(result)[0] < 10_000
    expected = divgpu.count(np.concatenate(parts), thresholds, backend=backend)
    assert result.compute().tolist() == expected.tolist()
    # big-endian, Fortran order, 2-d: read as they are
    grid = rng.integers(-9, 9_000, size=(300, 40)).astype(">i2")
    np.save(tmp_path / "grid.npy", np.asfortranarray(grid))
    got = dd.count(dd.from_npy(tmp_path / "grid.npy", chunks=(64, 16)), thresholds, backend=backend)
    assert got.compute().tolist() == divgpu.count(grid, thresholds, backend="cpu").tolist()


def test_npy_files_that_do_not_join_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(5, dtype=np.int32))
    np.save(tmp_path / "b.npy", np.zeros(5, dtype=np.int64))
    (tmp_path / "c.npy").write_bytes(b"not a numpy file at all")
    with pytest.raises(ValueError, match="does not join"):
        dd.from_npy([tmp_path / "a.npy", tmp_path / "b.npy"])
    with pytest.raises(ValueError, match="not a .npy file"):
        dd.from_npy(tmp_path / "c.npy")


def misaligned(values, dtype, order):
    """`values` as an array whose data starts one byte past an aligned address."""
    dtype = np.dtype(dtype).newbyteorder(order)
    raw = bytearray(len(values) * dtype.itemsize + 1)
    array = np.frombuffer(raw, dtype=dtype, count=len(values), offset=1)
    array[:] = values
    return array


def test_misaligned_strided_and_moved_blocks(client, backend):
    rng = random.Random(21)
    values = random_values(rng, "int64", 3000)[:3000]
    thresholds = random_thresholds(rng, "int64", 6)
    expected = oracle(values, thresholds)

    # blocks made on the workers: misaligned, strided, big-endian
    def block(i, kind):
        part = values[i * 500 : (i + 1) * 500]
        if kind == 0:
            return misaligned(part, "int64", ">")
        if kind == 1:
            return np.repeat(np.array(part, dtype=np.int64), 2)[::2]
        return misaligned(part, "int64", "<")

    blocks = [
        da.from_delayed(dask.delayed(block)(i, i % 3), shape=(500,), dtype=np.int64)
        for i in range(6)
    ]
    x = da.concatenate(blocks)
    assert dd.count(x, thresholds, backend=backend).compute().tolist() == expected

    # blocks held by one worker and counted by the other: they arrive by pickling, and may land
    # at any alignment
    first, second = sorted(client.scheduler_info()["workers"])
    held = client.persist(
        da.from_array(np.array(values, dtype=np.int64), chunks=113), workers=[first]
    )
    counted = client.compute(dd.count(held, thresholds, backend=backend), workers=[second])
    assert counted.result().tolist() == expected


def test_gpu_is_opened_once_per_worker_process(client, gpu_backend):
    rng = np.random.default_rng(5)
    array = rng.integers(0, 20_000, size=40_000, dtype=np.int32)
    x = da.from_array(array, chunks=1_000)
    thresholds = [10, 1_000, 19_999]
    expected = divgpu.count(array, thresholds, backend="cpu").tolist()
    for _ in range(2):
        assert dd.count(x, thresholds, backend="gpu").compute().tolist() == expected
    opened = client.run(_opened_devices)
    assert sum(opened.values()) >= 1
    assert all(n <= 1 for n in opened.values()), opened
    adapters = client.run(dd.worker_gpu, "gpu")
    for adapter in adapters.values():
        assert adapter is not None
        if EXPECT_BACKEND:
            assert adapter["backend"] == EXPECT_BACKEND, adapter


def test_gpu_workers_as_the_docs_set_them_up(gpu_backend):
    # docs/dask.md: workers that declare a GPU resource, a plugin that opens it at start, and
    # the count's tasks asking for it
    with local_cluster(resources={"GPU": 1}) as cluster, Client(cluster) as client:
        client.register_plugin(dd.DivgpuPlugin(backend="gpu"))
        opened = client.run(_opened_devices)
        assert list(opened.values()) == [1, 1], opened
        x = da.from_array(np.arange(5_000, dtype=np.uint16), chunks=700)
        sums = dd.count(x, [0, 4_999], backend="gpu")
        got = client.compute(sums, resources={"GPU": 1}).result()
        assert got.tolist() == divgpu.count(np.arange(5_000), [0, 4_999], backend="cpu").tolist()
        assert client.run(_opened_devices) == opened


def _opened_devices() -> int:
    """How many GPU devices this worker process has opened (its registry's count)."""
    return len(json.loads(divgpu._divgpu.opened_json()))


def kill_once(block, marker, after):
    """The identity, except that the `after`-th block this process sees kills the process
    (SIGKILL, as the OOM killer would) the first time, once the others are done."""
    global _seen
    _seen = globals().get("_seen", 0) + 1
    if _seen == after:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return block
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    return block


def test_a_worker_killed_mid_compute_is_retried_exactly(tmp_path):
    rng = np.random.default_rng(6)
    array = rng.integers(-10, 40_000, size=60_000, dtype=np.int64)
    thresholds = [int(t) for t in rng.integers(-20, 41_000, size=11)]
    expected = divgpu.count(array, thresholds, backend="cpu").tolist()
    marker = str(tmp_path / "killed")
    with local_cluster() as cluster, Client(cluster) as client:
        x = da.from_array(array, chunks=2_500).map_blocks(kill_once, marker, 4, dtype=np.int64)
        got = client.compute(dd.count(x, thresholds, backend="cpu")).result()
        assert os.path.exists(marker), "no worker was killed"
        assert got.tolist() == expected
        # the nanny started the killed worker again
        client.wait_for_workers(2, timeout=60)


def test_an_error_inside_a_block_reaches_the_caller(client):
    ints = da.from_array(np.arange(1_000, dtype=np.int64), chunks=100)
    floats = da.from_delayed(
        dask.delayed(np.linspace)(0, 1, 100), shape=(100,), dtype=np.int64  # says int, is not
    )
    x = da.concatenate([ints, floats])
    with pytest.raises(TypeError, match="float64, not of integers"):
        dd.count(x, [5, 50], backend="cpu").compute()
    # and divgpu's own errors, from the Rust core, keep their type
    with pytest.raises(divgpu.DivgpuError):
        dd.count(ints, [5], backend="gpu", adapter="no such adapter").compute()


def test_bad_arguments_are_refused_on_the_client():
    x = da.from_array(np.arange(10), chunks=3)
    with pytest.raises(TypeError, match="dask array"):
        dd.count(np.arange(10), [1])
    with pytest.raises(TypeError, match="float64"):
        dd.count(da.from_array(np.linspace(0, 1, 10), chunks=3), [1])
    with pytest.raises(ValueError, match="backend"):
        dd.count(x, [1], backend="tpu")
    with pytest.raises(ValueError, match="algorithm"):
        dd.count(x, [1], algorithm="slow")
    with pytest.raises(ValueError, match="threads"):
        dd.count(x, [1], threads=0)
    with pytest.raises(ValueError, match="threads"):
        dd.count(x, [1], threads=divgpu.MAX_THREADS + 1)
    with pytest.raises(ValueError, match="threads"):
        dd.count(x, [1], threads=2**64)
    with pytest.raises(ValueError, match="no thresholds"):
        dd.count(x, [])
    with pytest.raises(ValueError, match="outside"):
        dd.count(x, [2**64])
    with pytest.raises(TypeError, match="bool"):
        dd.count(x, [True])
    with pytest.raises(TypeError, match="float"):
        dd.count(x, [1.5])
    with pytest.raises(TypeError, match="float"):
        dd.count(x, np.array([1.5]))
    with pytest.raises(TypeError):
        dd.count(x, "12")


def test_the_adding_tree_is_exact_and_refuses_to_wrap(monkeypatch):
    rng = random.Random(8)
    for _ in range(50):
        rows = rng.randint(1, 40)
        parts = [[rng.randrange(2**64 // rows) for _ in range(5)] for _ in range(rows)]
        got = dd._checked_sum(np.array(parts, dtype=np.uint64), axis=0)
        assert got.tolist() == [sum(column) for column in zip(*parts)]
    near = np.array([[2**63, 5], [2**63 - 1, 2**64 - 5]], dtype=np.uint64)
    assert dd._checked_sum(near[:, :1], axis=0).tolist() == [2**64 - 1]
    with pytest.raises(OverflowError, match="threshold #1"):
        dd._checked_sum(near, axis=0)

    # through the whole graph: partials whose total passes 2**64 - 1 raise, not wrap
    def huge(block, thresholds, ndim, **options):
        return np.full((1,) * ndim + (thresholds.size,), 2**62, dtype=np.uint64)

    monkeypatch.setattr(dd, "_block_partials", huge)
    x = da.from_array(np.arange(10), chunks=2)
    with pytest.raises(OverflowError, match="above 2"):
        dd.count(x, [1, 2], backend="cpu").compute(scheduler="sync")


def test_the_thresholds_travel_once_not_with_every_block():
    x = da.from_array(np.arange(100_000, dtype=np.int32), chunks=1_000)
    thresholds = np.arange(200_000, dtype=np.int64)  # 1.6 MB
    sizes = task_sizes(dd.count(x, thresholds, backend="cpu"))
    assert sizes[0] > thresholds.nbytes  # the one key that holds them
    assert sizes[1] < 10_000


def test_local_schedulers_and_unknown_chunk_sizes():
    array = np.arange(-3, 7_000, dtype=np.int32)
    x = da.from_array(array, chunks=900)
    expected = divgpu.count(array, [4, 600, 6_999], backend="cpu").tolist()
    for scheduler in ("sync", "threads"):
        got = dd.count(x, [4, 600, 6_999], backend="cpu").compute(scheduler=scheduler)
        assert got.tolist() == expected
    # blocks of unknown length: a filtered array
    kept = x[x % 3 == 0]
    assert np.isnan(kept.chunks[0][0])
    got = dd.count(kept, [4, 600, 6_999], backend="cpu").compute(scheduler="threads")
    assert got.tolist() == divgpu.count(array[array % 3 == 0], [4, 600, 6_999], backend="cpu").tolist()


def test_divgpu_imports_without_dask():
    blocked = (
        "import sys\n"
        "for name in ('dask', 'dask.array', 'distributed'):\n"
        "    sys.modules[name] = None\n"
        "import divgpu\n"
        "assert divgpu.count([4, 7, 6, 8, 11, 9], 7, backend='cpu') == 9\n"
        "try:\n"
        "    import divgpu.dask\n"
        "except ImportError as e:\n"
        "    assert 'pip install' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('divgpu.dask imported without dask')\n"
    )
    subprocess.run([sys.executable, "-c", blocked], check=True)


def test_a_dask_index_answers_every_count_from_blocks_kept_on_the_workers(tmp_path):
    rng = np.random.default_rng(23)
    pool = rng.integers(-(2**40), 2**40, size=3_000)
    array = pool[rng.integers(0, pool.size, size=40_000)]
    thresholds = [int(t) for t in rng.choice(pool, size=9)] + [-(2**63), 2**64 - 1, 0]
    expected = divgpu.count(array, thresholds, backend="cpu").tolist()
    with local_cluster() as cluster, Client(cluster) as client:
        x = da.from_array(array, chunks=3_000)
        index = dd.index(x, backend="cpu")
        assert index.count(thresholds).tolist() == expected
        assert index.count(np.array(thresholds[:3]).reshape(3, 1)).shape == (3, 1)
        assert index.count(thresholds[0]) == expected[0]
        stats = index.stats()
        assert stats["blocks"] == x.npartitions and stats["ready"] == x.npartitions, stats
        assert stats["elements"] == array.size
        # built once per block, on the workers: later counts only look up
        built = sum(client.run(lambda: dd._built).values())
        assert built == x.npartitions
        # a worker dies: Dask builds its blocks' indexes again, and the answer stays exact
        first = sorted(client.scheduler_info()["workers"])[0]
        pid = client.run(os.getpid, workers=[first])[first]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while first in client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first not in client.scheduler_info()["workers"], "the worker did not die"
        assert index.count(thresholds).tolist() == expected
        assert index.count(thresholds).tolist() == expected


def test_a_dask_index_without_a_client_and_its_errors():
    array = np.arange(-50, 5_000, dtype=np.int32)
    x = da.from_array(array, chunks=700)
    with dask.config.set(scheduler="threads"):
        index = dd.index(x, backend="cpu")
        assert index.count([0, 10, 4_999]).tolist() == divgpu.count(
            array, [0, 10, 4_999], backend="cpu"
        ).tolist()
    with pytest.raises(TypeError):
        dd.index(array)
    with pytest.raises(ValueError):
        dd.index(x, backend="both")
    with pytest.raises(ValueError):
        dd.index(x, index_memory=-1)
    with pytest.raises(TypeError):
        dd.index(da.from_array(np.zeros(4)), backend="cpu")
