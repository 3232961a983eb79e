"""What the Python package costs and buys, measured side by side in one run (numbers, not a test).

    python benches/python_session.py [--size N] [--rounds R] [--skip-gpu] [--skip-numba]

Rows:
1. per-call overhead: `index.count([t])` on a 1,000-element array on the CPU (microseconds per
   call, median of rounds of 2,000 calls);
2. the session: the post's workload (1M values in [0, 10**6], 13 thresholds), the first batch
   against later ones, on the CPU (`fast`: later batches come from the table) and on the GPU
   (whatever adapter wgpu picks: a software one measures work, not GPU speed);
3. the post's experiment: `naive` with threads=1 from 1 and from every Python thread (the
   cores come from the threads), beside divgpu `fast`, numba's `prange` (when numba is
   installed: it belongs in a benchmark virtual environment, not in divgpu's dependencies) and
   the post's own numbers;
4. Ctrl-C: the time from SIGINT to KeyboardInterrupt during a long count on the main thread.

Every result is checked against the first before it is reported.
"""

import argparse
import concurrent.futures
import os
import platform
import signal
import statistics
import threading
import time

import numpy as np

import divgpu

HT = 100 * 1000
INPUTS = [HT * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]
# The post: 1M values, quad-core i7, scipy.weave inline C.
POST = {"Singlethread": 4.78, "Naive Multithread": 4.77, "ReleaseGIL Multithread": 1.54}


def seconds(work, rounds):
    times = []
    result = None
    for _ in range(rounds):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def per_call_overhead(rounds):
    values = np.random.default_rng(3).integers(0, 10**6, size=1000)
    index = divgpu.Index(values, backend="cpu")
    expected = int(index.count([500_000])[0])
    calls = 2000
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            index.count([500_000])
        per_call.append((time.perf_counter() - start) / calls)
    assert int(index.count([500_000])[0]) == expected
    scalar = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            index.count(500_000)
        scalar.append((time.perf_counter() - start) / calls)
    print(f"per-call overhead, index.count([t]), 1,000 elements, cpu: "
          f"{statistics.median(per_call) * 1e6:.1f} us (index.count(t): "
          f"{statistics.median(scalar) * 1e6:.1f} us)")


def session_rows(common, rounds, skip_gpu):
    reference = None
    for backend in ["cpu"] + ([] if skip_gpu else ["gpu"]):
        start = time.perf_counter()
        index = divgpu.Index(common, backend=backend)
        built = time.perf_counter() - start
        start = time.perf_counter()
        first = index.count(INPUTS)
        first_s = time.perf_counter() - start
        later_s, later = seconds(lambda: index.count(INPUTS), rounds)
        reference = first.tolist() if reference is None else reference
        assert first.tolist() == later.tolist() == reference
        where = backend if index.adapter is None else f"gpu ({index.adapter['name']}, {index.adapter['backend']})"
        print(f"session, {where}: Index() {built * 1e3:.1f} ms, first batch {first_s * 1e3:.2f} ms, "
              f"later batches {later_s * 1e3:.3f} ms (median of {rounds})")
    return reference


def post_experiment(common, reference, rounds, skip_numba):
    threads = os.cpu_count() or 1
    naive = divgpu.Index(common, backend="cpu", algorithm="naive", threads=1)
    one, got = seconds(lambda: list(map(naive.count, INPUTS)), rounds)
    assert got == reference
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        many, got = seconds(lambda: list(pool.map(naive.count, INPUTS)), rounds)
    assert got == reference
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        two, got = seconds(lambda: list(pool.map(naive.count, INPUTS)), rounds)
    assert got == reference
    fast_pass = divgpu.Index(common, backend="cpu", algorithm="fast")
    fast_s, got = seconds(lambda: fast_pass.count(INPUTS).tolist(), 1)
    assert got == reference
    print(f"post's experiment, {len(common):,} elements, 13 thresholds, {threads} cores:")
    print(f"  divgpu naive, map on 1 thread:          {one:.3f} s")
    print(f"  divgpu naive, 2 Python threads:         {two:.3f} s  ({two / one:.2f} of 1 thread)")
    print(f"  divgpu naive, {threads} Python threads:         {many:.3f} s  ({many / one:.2f} of 1 thread)")
    print(f"  divgpu fast, first batch (all cores):   {fast_s * 1e3:.2f} ms")
    if not skip_numba:
        try:
            numba_rows(common, reference, rounds)
        except ImportError:
            print("  numba: not installed (pip install numba in a benchmark venv)")
    for label, s in POST.items():
        print(f"  the post, {label} (quad-core i7, weave): {s:.2f} s")


def numba_rows(common, reference, rounds):
    import numba

    @numba.njit(parallel=True, cache=False)
    def count_divisors_under(common, n):
        ret = 0
        for i in numba.prange(common.shape[0]):
            x = common[i]
            if x <= n:
                r = 1
                if x > 1:
                    r += 1
                j = 2
                while j * j <= x:
                    if x % j == 0:
                        r += 1
                        if j * j < x:
                            r += 1
                    j += 1
                ret += r
        return ret

    count_divisors_under(common[:10], 5)  # compile
    s, got = seconds(lambda: [int(count_divisors_under(common, n)) for n in INPUTS], rounds)
    assert got == reference
    print(f"  numba {numba.__version__} prange, the post's loop (all cores): {s:.3f} s")


def ctrl_c_latency():
    values = np.full(400_000, 4294967291, dtype=np.int64)
    index = divgpu.Index(values, backend="cpu", algorithm="naive", threads=1)
    latencies = []
    for _ in range(3):
        sent = []

        def interrupt():
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(0.3, interrupt)
        timer.start()
        try:
            index.count([2**33] * 50)
        except KeyboardInterrupt:
            latencies.append(time.perf_counter() - sent[0])
        timer.join()
    print(f"Ctrl-C during a long naive count: KeyboardInterrupt after "
          f"{', '.join(f'{s * 1e3:.0f}' for s in latencies)} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-gpu", action="store_true")
    parser.add_argument("--skip-numba", action="store_true")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, divgpu {divgpu.__version__}")
    common = np.random.default_rng(1).integers(0, 10 * HT, size=args.size, endpoint=True)
    per_call_overhead(args.rounds)
    reference = session_rows(common, args.rounds, args.skip_gpu)
    post_experiment(common, reference, max(1, args.rounds // 2), args.skip_numba)
    ctrl_c_latency()


if __name__ == "__main__":
    main()
