"""The value index, measured side by side in one run (numbers, not a test).

    python benches/index_build.py [--rounds R] [--backend cpu|gpu] [--arrays NAME,...]

For each array, interleaved over R rounds (a noisy machine's slow moments fall on every row):
- `np.unique(a, return_counts=True)`: numpy's sort and count, the first step of a user's own
  index (they would still need c(x) for every distinct value);
- `build`: `divgpu.Index(a, build_index=True)`: the index built (sort, dedupe, c once per
  distinct value, running sums);
- `first batch`: a plain first batch of 13 thresholds, one pass over the array
  (`index_memory=0`: no index);
- `later batch`: a batch of the 13 thresholds on the built index, from Python (the mean of
  2,000 calls, the median over the rounds).

The thresholds are the post's 13 for the post's array; for the others, 13 of the array's own
values spread over its range, the largest among them, so that the pass computes c(x) for the
elements an index computes it for (thresholds far below the values would spare the pass
nearly all of its work, and the index, which counts values only as far as the thresholds reach,
as much).
- for `--queries`, see benches/queries.sh.

Every answer is checked against the pass's before it is reported.
"""

import argparse
import platform
import statistics
import time

import numpy as np

import divgpu

HT = 100 * 1000
THRESHOLDS = [HT * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]


def arrays():
    rng = np.random.default_rng(2013)
    return {
        # the post's array: 1M values in [0, 10**6] (the dense table on the CPU)
        "post": lambda: rng.integers(0, 10**6, size=10**6, endpoint=True),
        "uniform uint64 (1M)": lambda: rng.integers(
            0, 2**64 - 1, size=10**6, dtype=np.uint64, endpoint=True
        ),
        "uniform uint32 (1M)": lambda: rng.integers(
            0, 2**32 - 1, size=10**6, dtype=np.uint32, endpoint=True
        ),
        "int64 in [0, 1e9] (1M)": lambda: rng.integers(0, 10**9, size=10**6, endpoint=True),
        # many repeats: 10M elements over 10,000 distinct values below 2^40
        "10M over 10k distinct": lambda: rng.integers(0, 2**40, size=10_000)[
            rng.integers(0, 10_000, size=10**7)
        ],
    }


def timed(work):
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def later_batch(index, thresholds, calls=2000):
    start = time.perf_counter()
    for _ in range(calls):
        index.count(thresholds)
    return (time.perf_counter() - start) / calls


def thresholds_of(name, a):
    if name == "post":
        return THRESHOLDS
    spread = np.sort(a, axis=None)[np.linspace(0, a.size - 1, 13).astype(np.int64)]
    return [int(t) for t in np.random.default_rng(7).permutation(spread)]


def measure(name, a, rounds, backend):
    thresholds = thresholds_of(name, a)
    rows = {"np.unique": [], "build": [], "first batch": [], "later batch": []}
    for _ in range(rounds):
        t, _ = timed(lambda: np.unique(a, return_counts=True))
        rows["np.unique"].append(t)
        t, index = timed(lambda: divgpu.Index(a, backend=backend, build_index=True))
        rows["build"].append(t)
        stats = index.stats()
        t, passed = timed(
            lambda: divgpu.Index(a, backend=backend, index_memory=0).count(thresholds)
        )
        rows["first batch"].append(t)
        assert index.count(thresholds).tolist() == passed.tolist(), name
        rows["later batch"].append(later_batch(index, thresholds))
    first = statistics.median(rows["first batch"])
    print(f"\n{name}: {a.size:,} {a.dtype}, index {stats['kind']}, "
          f"{stats['distinct'] or '-'} distinct, {stats['bytes']:,} bytes")
    for row, t in rows.items():
        median = statistics.median(t)
        unit = (f"{median * 1e6:10.1f} us" if row == "later batch" else f"{median * 1e3:10.1f} ms")
        ratio = "" if row == "later batch" else f"  x{median / first:5.2f} of a first batch"
        print(f"  {row:12} {unit}  [{min(t) * 1e3:.2f} .. {max(t) * 1e3:.2f} ms]{ratio}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--arrays", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args()
    print(f"{platform.machine()} {platform.processor() or ''}, backend {args.backend}, "
          f"{args.rounds} rounds, divgpu {divgpu.__version__}, numpy {np.__version__}")
    wanted = args.arrays.split(",") if args.arrays else None
    for name, make in arrays().items():
        if wanted and not any(w in name for w in wanted):
            continue
        measure(name, make(), args.rounds, args.backend)


if __name__ == "__main__":
    main()
