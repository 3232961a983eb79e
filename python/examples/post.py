"""The original post's experiment, ported to divgpu.

The post kept 1M random integers in [0, 10**6] in memory and, for each of 13 thresholds n,
summed the divisor counts of the elements <= n, with the same inline C three ways: `map` on
one thread, a thread pool with the GIL held (no faster), and a thread pool with the GIL released
(3x on a quad-core i7). Here the kernel is divgpu's `naive` algorithm, the post's loop as
written, on one thread per call (`threads=1`), so that the cores come from the Python threads:

- "Singlethread": `map` over the thresholds;
- "Naive Multithread": a thread pool whose calls take one lock, as a GIL-holding extension
  would (the post's weave code without Py_BEGIN_ALLOW_THREADS);
- "ReleaseGIL Multithread": a thread pool, divgpu releasing the GIL as every count does.

Then divgpu's own way: `fast` answers all 13 thresholds in one pass, and a second call is
answered from the table the Index keeps; and the GPU, where there is one.

    python python/examples/post.py [--size N] [--threads T]
"""

import argparse
import concurrent.futures
import os
import threading
import time

import numpy as np

import divgpu

HT = 100 * 1000  # hundred thousand
INPUTS = [HT * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]


def timed(label, work, show=False):
    """Runs `work`; prints its result (as the post did) when `show`, then the time."""
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    if show:
        print(result)
    print(f"{label} {elapsed:.2f}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="elements (default 1M)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    common = rng.integers(0, 10 * HT, size=args.size, endpoint=True)

    naive = divgpu.Index(common, backend="cpu", algorithm="naive", threads=1)
    held = threading.Lock()

    def holding_the_gil(n):
        with held:
            return naive.count(n)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.threads)
    list(pool.map(naive.count, [0] * args.threads))  # start the pool's threads
    single = timed("Singlethread", lambda: list(map(naive.count, INPUTS)), show=True)
    held_results = timed(
        "Naive Multithread", lambda: list(pool.map(holding_the_gil, INPUTS)), show=True
    )
    released = timed(
        "ReleaseGIL Multithread", lambda: list(pool.map(naive.count, INPUTS)), show=True
    )
    pool.shutdown()
    assert single == held_results == released

    fast = divgpu.Index(common, backend="cpu", algorithm="fast")
    first = timed("divgpu fast, first batch", lambda: fast.count(INPUTS))
    later = timed("divgpu fast, later batch (table)", lambda: fast.count(INPUTS))
    assert first.tolist() == later.tolist() == single

    hardware = [d for d in divgpu.devices() if d["device_type"] not in ("cpu (software)",)]
    if hardware:
        gpu = timed("divgpu GPU: open and upload", lambda: divgpu.Index(common, backend="gpu"))
        timed(f"divgpu GPU fast ({gpu.adapter['name']}), first batch", lambda: gpu.count(INPUTS))
        on_gpu = timed("divgpu GPU fast, later batch", lambda: gpu.count(INPUTS))
        assert on_gpu.tolist() == single
    else:
        print("no hardware GPU: divgpu.Index(values, backend='gpu') would use a software adapter")


if __name__ == "__main__":
    main()
