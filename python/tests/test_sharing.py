"""One GPU device per process, shared by every Index, and exact under many threads.

The case that once panicked on llvmpipe-GL (wgpu's GL context lock, "most-likely a deadlock"):
eight threads counting on one GPU Index, 50,000 values below 2^32, batches of 3 to 1,500
thresholds. The product takes GL's turns itself now; these tests take none.
"""

import concurrent.futures
import json
import random

import numpy as np
import pytest

import divgpu
from conftest import divisor_count


def _opened():
    """The adapters of the devices this process has opened (its registry's)."""
    return json.loads(divgpu._divgpu.opened_json())


def _workload(seed, n=50_000, big=150):
    """`n` values below 2^32 (a third of them drawn from `big` values of 2^16 and above), and
    their exact counts: a sieve for the small ones, factoring for the rest."""
    rng = np.random.default_rng(seed)
    small_counts = np.zeros(1 << 16, dtype=np.uint64)
    for d in range(1, 1 << 16):
        small_counts[d::d] += 1
    small_counts[:2] = 1
    pool = rng.integers(1 << 16, 1 << 32, size=big, dtype=np.uint64)
    pool_counts = np.array([divisor_count(int(x)) for x in pool], dtype=np.uint64)
    wide = rng.random(n) < 1 / 3
    picks = rng.integers(0, big, size=n)
    smalls = rng.integers(0, 1 << 16, size=n, dtype=np.uint64)
    values = np.where(wide, pool[picks], smalls).astype(np.uint32)
    counts = np.where(wide, pool_counts[picks], small_counts[smalls.astype(np.int64)])
    return values, counts


def _oracle(values, counts):
    """The sums for any thresholds, by a sort and running sums."""
    order = np.argsort(values, kind="stable")
    sorted_values, running = values[order], np.cumsum(counts[order])

    def expected(thresholds):
        at = np.searchsorted(sorted_values.astype(np.int64), np.asarray(thresholds), side="right")
        return [int(running[i - 1]) if i else 0 for i in at]

    return expected


def _batches(seed, count, top=1 << 32):
    rng = random.Random(seed)
    return [
        [rng.randrange(-5, top + 5) for _ in range(rng.randint(3, 1_500))] for _ in range(count)
    ]


@pytest.mark.parametrize("index_memory", [None, 0], ids=["value index", "a pass per batch"])
def test_eight_threads_on_one_gpu_index(gpu_backend, index_memory):
    values, counts = _workload(41)
    expected = _oracle(values, counts)
    # index_memory=0: no value index, so every batch of every thread is a pass on the GPU;
    # otherwise the threads race to build the index (on the GPU) and then look up
    index = divgpu.Index(values, backend="gpu", index_memory=index_memory)
    batches = _batches(42, 24)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda b: index.count(b).tolist(), batches))
    for batch, answer in zip(batches, got):
        assert answer == expected(batch)


def test_eight_threads_over_four_indexes_share_one_device(gpu_backend):
    values, counts = _workload(43)
    before = _opened()
    assert before, "the gpu_backend fixture opened the GPU"
    quarters = np.array_split(values, 4)
    oracles = [_oracle(q, c) for q, c in zip(quarters, np.array_split(counts, 4))]
    indexes = [divgpu.Index(q, backend="gpu", index_memory=0) for q in quarters]
    assert _opened() == before, "a new Index opened a device of its own"
    assert all(ix.adapter == indexes[0].adapter for ix in indexes)
    work = [(k % 4, batch) for k, batch in enumerate(_batches(44, 24))]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda w: indexes[w[0]].count(w[1]).tolist(), work))
    for (k, batch), answer in zip(work, got):
        assert answer == oracles[k](batch), k
    # every count with auto, gpu or both on this adapter uses the same device
    divgpu.count(quarters[0][:100], [1 << 31], backend="gpu")
    assert _opened() == before


def test_the_auto_probe_is_kept_for_the_process():
    # the answer of the first probe (a hardware GPU, or none) is kept: a later count neither
    # enumerates the adapters again nor opens anything new
    values = np.arange(1_000)
    first = divgpu.Index(values).adapter
    opened = _opened()
    for _ in range(5):
        assert divgpu.Index(values).adapter == first
    assert _opened() == opened


def test_adapter_by_number_and_by_bus_id(gpu_backend):
    devices = divgpu.devices()
    assert [d["index"] for d in devices] == list(range(len(devices)))
    values = np.arange(2_000)
    expected = divgpu.count(values, [10, 1_999], backend="cpu").tolist()
    for device in devices:
        selectors = [device["index"], str(device["index"])]
        if device["pci_bus_id"] is not None:
            selectors.append(device["pci_bus_id"])
        for selector in selectors:
            index = divgpu.Index(values, backend="gpu", adapter=selector)
            assert (index.adapter["name"], index.adapter["backend"]) == (
                device["name"],
                device["backend"],
            ), selector
            assert index.count([10, 1_999]).tolist() == expected
    with pytest.raises(divgpu.DivgpuError, match="no adapter is"):
        divgpu.Index(values, backend="gpu", adapter=len(devices))
    with pytest.raises(ValueError, match="from 0"):
        divgpu.Index(values, backend="gpu", adapter=-1)
    with pytest.raises(TypeError, match="adapter must be"):
        divgpu.Index(values, backend="gpu", adapter=1.0)
