"""What one device per process saves, measured side by side in one process (numbers, not a test).

    python benches/device_sharing.py [--size N] [--indexes K] [--calls C]

Run it in a fresh process: the first Index is the one that opens the device.

Rows:
1. `divgpu.Index(a, backend="gpu")` K times on one array of N uint32 values: the first (which
   enumerates the adapters, opens the device and compiles the pipelines) against the 2nd to
   K-th (which share that device), each beside its own upload time;
2. `divgpu.count(small, [t])` on 1,000 values, `backend="auto"` against `backend="cpu"`, after
   the first call (which makes auto's one probe for a hardware GPU): median of C calls each,
   interleaved, so that both see the same machine.

Every answer is checked against the CPU's.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

import divgpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--indexes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    values = rng.integers(0, 1 << 20, size=args.size, dtype=np.uint32)
    thresholds = [1 << 10, 1 << 15, 1 << 19]
    expected = divgpu.count(values, thresholds, backend="cpu").tolist()

    made, uploads, adapter = [], [], None
    for _ in range(args.indexes):
        start = time.perf_counter()
        index = divgpu.Index(values, backend="gpu")
        made.append(time.perf_counter() - start)
        # (a build from before the registry has no upload time: NaN)
        uploads.append(getattr(index._session, "upload_seconds", float("nan")))
        adapter = index.adapter
        assert index.count(thresholds).tolist() == expected
        del index
    later = made[1:]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; adapter: {json.dumps(adapter)}")
    if hasattr(divgpu._divgpu, "opened_json"):
        opened = len(json.loads(divgpu._divgpu.opened_json()))
        print(f"devices opened in this process: {opened}")
    print(f"Index(a, backend='gpu'), {args.size:,} uint32 values:")
    print(f"  first: {made[0] * 1e3:8.1f} ms (upload {uploads[0] * 1e3:.1f} ms)")
    print(
        f"  2nd to last ({args.indexes - 1} Indexes): median {statistics.median(later) * 1e3:8.1f} ms, "
        f"min {min(later) * 1e3:.1f}, max {max(later) * 1e3:.1f} "
        f"(their uploads: median {statistics.median(uploads[1:]) * 1e3:.1f} ms)"
    )
    print(f"  first / later median: {made[0] / statistics.median(later):.1f}x")

    small = values[:1_000].copy()
    small_expected = divgpu.count(small, [1 << 19], backend="cpu").tolist()
    start = time.perf_counter()
    assert divgpu.count(small, [1 << 19]).tolist() == small_expected
    first_auto = time.perf_counter() - start
    times = {"auto": [], "cpu": []}
    for _ in range(args.calls):
        for backend in ("auto", "cpu"):
            start = time.perf_counter()
            got = divgpu.count(small, [1 << 19], backend=backend)
            times[backend].append(time.perf_counter() - start)
            assert got.tolist() == small_expected
    auto, cpu = (statistics.median(times[b]) for b in ("auto", "cpu"))
    print(f"divgpu.count(1,000 values, [t]), WGPU_BACKEND={os.environ.get('WGPU_BACKEND', '(unset)')}:")
    print(f"  first auto call: {first_auto * 1e3:.2f} ms")
    print(f"  later: auto {auto * 1e3:.3f} ms, cpu {cpu * 1e3:.3f} ms (medians of {args.calls}); "
          f"auto / cpu: {auto / cpu:.2f}x")


if __name__ == "__main__":
    main()
