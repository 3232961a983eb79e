"""divgpu on Dask: an array stored as zarr chunks on disk, counted on a LocalCluster.

Writes (once) an int64 zarr array of random values in [0, 10**6], the post's values, of the
size asked for (4 GB by default), then answers the post's 13 thresholds on it:

- one process: ``divgpu.count`` on the array read into memory (``zarr[:]``);
- one process, Dask's threaded scheduler: ``divgpu.dask.count(da.from_zarr(path))``;
- a ``distributed.LocalCluster`` of 1, then 2, worker processes (one thread each), the same
  call: each worker reads its own chunks from disk and counts them.

Beside each, its floor: the same reading and decompressing of the chunks with a numpy sum
of each in place of the count (``zarr[:].sum()``, ``x.sum()``). Every answer is checked against
the first; a table (markdown) goes to stdout, and with ``--json`` every time to a file.

    python python/examples/dask_zarr.py PATH.zarr [--gigabytes 4] [--chunk-mb 64]
        [--workers 1 2] [--runs 3] [--backend auto] [--uncompressed] [--json out.json]
"""

import argparse
import json
import logging
import os
import platform
import statistics
import time

import dask
import dask.array as da
import numpy as np
import zarr
from distributed import Client, LocalCluster

import divgpu
import divgpu.dask

HT = 100 * 1000
INPUTS = [HT * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]


def write_store(path, elements, chunk_elements, seed, compress):
    """The values, chunk by chunk (never the whole array in memory), unless already there."""
    if os.path.exists(path):
        store = zarr.open_array(path, mode="r")
        if store.shape == (elements,) and store.chunks == (chunk_elements,):
            return False
        raise SystemExit(f"{path} holds another array ({store.shape}, chunks {store.chunks})")
    values = da.random.default_rng(seed).integers(
        0, 10 * HT, size=elements, chunks=chunk_elements, dtype=np.int64, endpoint=True
    )
    codecs = {}
    if not compress:  # zarr 3 names them `compressors`, zarr 2 `compressor`
        codecs = {"compressors" if zarr.__version__[0] >= "3" else "compressor": None}
    with dask.config.set(scheduler="threads"):
        values.to_zarr(path, **codecs)
    return True


def timed(work, runs):
    """Every run's seconds and the last run's answer."""
    times, answer = [], None
    for _ in range(runs):
        start = time.perf_counter()
        answer = work()
        times.append(time.perf_counter() - start)
    return times, answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="the zarr store (written if absent)")
    parser.add_argument("--gigabytes", type=float, default=4.0)
    parser.add_argument("--chunk-mb", type=float, default=64.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="auto", choices=["auto", "gpu", "cpu", "both"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--uncompressed", action="store_true",
                        help="write the store without compression (zarr's default: zstd)")
    parser.add_argument("--json", help="write every time here")
    args = parser.parse_args()

    elements = int(args.gigabytes * 1e9) // 8
    chunk_elements = max(1, int(args.chunk_mb * 1e6) // 8)
    start = time.perf_counter()
    wrote = write_store(args.path, elements, chunk_elements, args.seed, not args.uncompressed)
    if wrote:
        print(f"wrote {args.path} in {time.perf_counter() - start:.1f} s")
    store = zarr.open_array(args.path, mode="r")
    chunks = -(-elements // chunk_elements)
    cores = os.cpu_count()
    rows = []

    def row(name, times, answer, floor, note=""):
        rows.append({
            "how": name,
            "seconds": times,
            "median_s": statistics.median(times),
            "floor_s": statistics.median(floor),
            "note": note,
        })
        if rows[0].get("answer") is None:
            rows[0]["answer"] = [int(v) for v in answer]
        elif [int(v) for v in answer] != rows[0]["answer"]:
            raise SystemExit(f"{name} disagrees: {list(answer)} against {rows[0]['answer']}")

    # one process: read the whole array, then count it
    def whole():
        read = time.perf_counter()
        values = store[:]
        read = time.perf_counter() - read
        count = time.perf_counter()
        answer = divgpu.count(values, INPUTS, backend=args.backend)
        whole.split.append((read, time.perf_counter() - count))
        return answer

    whole.split = []
    times, answer = timed(whole, args.runs)
    read, count = (statistics.median(s) for s in zip(*whole.split))
    floor, _ = timed(lambda: store[:].sum(), args.runs)
    row("one process: zarr[:] then divgpu.count", times, answer, floor,
        f"read {read:.2f} s + count {count:.2f} s; {cores} threads")

    # the floor of each way: reading and decompressing the chunks, and a numpy sum of each
    x = da.from_zarr(args.path)
    with dask.config.set(scheduler="threads"):
        times, answer = timed(
            lambda: divgpu.dask.count(x, INPUTS, backend=args.backend).compute(), args.runs
        )
        floor, _ = timed(lambda: x.sum().compute(), args.runs)
    row("one process: divgpu.dask, threaded scheduler", times, answer, floor,
        f"{cores} threads")

    for n in args.workers:
        with LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            times, answer = timed(
                lambda: divgpu.dask.count(x, INPUTS, backend=args.backend).compute(), args.runs
            )
            floor, _ = timed(lambda: x.sum().compute(), args.runs)
            adapters = client.run(divgpu.dask.worker_gpu, args.backend)
            where = {a["name"] if a else "cpu" for a in adapters.values()}
            row(f"LocalCluster, {n} worker process{'es' if n > 1 else ''} x 1 thread",
                times, answer, floor, "on " + ", ".join(sorted(where)))

    # zarr 3 names its codecs `compressors`, zarr 2 `compressor`
    if zarr.__version__[0] >= "3":
        codecs = store.compressors or "nothing"
    else:
        codecs = store.compressor or "nothing"
    print(f"{args.gigabytes:g} GB int64 zarr ({elements:,} values, {chunks} chunks of "
          f"{args.chunk_mb:g} MB, compressed by {codecs}), backend={args.backend}, "
          f"{args.runs} runs, {platform.machine()} with {cores} cores")
    print()
    print("| how | median s | runs (s) | GB/s | read + sum floor s | x floor | |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r["seconds"])
        rate = args.gigabytes / r["median_s"]
        print(f"| {r['how']} | {r['median_s']:.2f} | {runs} | {rate:.2f} | {r['floor_s']:.2f} "
              f"| {r['median_s'] / r['floor_s']:.2f} | {r['note']} |")
    print()
    print("answers:", rows[0]["answer"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"elements": elements, "chunk_elements": chunk_elements, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
