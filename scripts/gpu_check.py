"""The checks of scripts/gpu-check.sh, run from its prepared folder (see that script).

Each step has a time limit and records what it saw; a failed step does not stop the others.
The summary (one JSON object) names the machine, the adapter, every step's outcome and its
numbers, and `ok`. Exit status: 0 when every step passed, 1 otherwise.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

# The post's 13 queries and its 1M values in [0, 10**6].
HT = 100 * 1000
POST_THRESHOLDS = [HT * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]
HARDWARE = ("discrete", "integrated")


class Steps:
    def __init__(self, budget_s):
        self.start = time.monotonic()
        self.budget_s = budget_s
        self.results = {}

    def run(self, name, work):
        began = time.monotonic()
        print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
        try:
            outcome = work()
            outcome.setdefault("ok", True)
        except Exception as e:  # a step's failure is its result, not the end of the check
            outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        outcome["seconds"] = round(time.monotonic() - began, 3)
        self.results[name] = outcome
        print(
            f"gpu-check: {name}: {'ok' if outcome['ok'] else 'FAILED'} "
            f"({outcome['seconds']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        return outcome

    def left(self):
        return self.budget_s - (time.monotonic() - self.start)


def command(args, timeout, env=None):
    """Runs a command; its exit status, stdout and the tail of stderr."""
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        return done.returncode, done.stdout, done.stderr[-4000:]
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, "", f"timed out after {timeout} s; " + err[-4000:]


def machine():
    info = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if shutil.which("nvidia-smi"):
        status, out, _ = command(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,pci.bus_id",
             "--format=csv,noheader"],
            30,
        )
        if status == 0:
            info["nvidia_smi"] = [line.strip() for line in out.splitlines() if line.strip()]
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--tests", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--allow-software", action="store_true")
    parser.add_argument("--big-bytes", type=int, default=None)
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for every step")
    parser.add_argument(
        "--skip-tests", action="store_true", help="leave the test executables out (CI runs them)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="small workloads: that every step runs, not what it measures (CI)",
    )
    args = parser.parse_args()
    big_bytes = args.big_bytes or ((256 << 20) if args.allow_software else (4 << 30))
    steps = Steps(args.budget)
    binary = args.bin
    summary = {"machine": machine(), "wgpu_backend": os.environ.get("WGPU_BACKEND")}

    def devices():
        status, out, err = command([binary, "devices", "--json"], 60)
        if status != 0:
            return {"ok": False, "error": err}
        listed = json.loads(out)
        hardware = [d for d in listed if d["device_type"] in HARDWARE]
        summary["adapter"] = (hardware or listed or [None])[0]
        ok = bool(hardware) or (args.allow_software and bool(listed))
        why = None if ok else "no hardware adapter (pass --allow-software to use a software one)"
        return {"ok": ok, "devices": listed, "error": why}

    found = steps.run("devices", devices)
    if not found["ok"]:
        return finish(summary, steps, args.out)
    listed = found["devices"]

    def adapters():
        checked = []
        for device in listed:
            selectors = [str(device["index"])]
            if device.get("pci_bus_id"):
                selectors.append(device["pci_bus_id"])
            for selector in selectors:
                status, out, err = command(
                    [binary, "--backend", "gpu", "--adapter", selector, "--size", "20000",
                     "--json"],
                    120,
                )
                if status != 0:
                    return {"ok": False, "error": f"--adapter {selector}: {err}"}
                got = json.loads(out)["adapter"]
                if (got["name"], got["backend"]) != (device["name"], device["backend"]):
                    return {"ok": False, "error": f"--adapter {selector} ran on {got}"}
                checked.append(selector)
        return {"checked": checked}

    steps.run("adapter choice", adapters)

    def tests():
        env = dict(os.environ, DIVGPU_EXPECT_BACKEND=os.environ["WGPU_BACKEND"])
        env.setdefault("DIVGPU_DIFF_SECONDS", "60")
        runs = {}
        for name in sorted(os.listdir(args.tests)):
            limit = max(30, min(240, steps.left() - 200))
            status, out, err = command(
                [os.path.join(args.tests, name), "--test-threads", str(os.cpu_count() or 2)],
                limit,
                env,
            )
            lines = [l for l in (out + err).splitlines() if "test result" in l or "suite:" in l]
            runs[name] = {"ok": status == 0, "status": status, "summary": lines}
            if status != 0:
                runs[name]["tail"] = (out + err)[-3000:]
        return {"ok": all(r["ok"] for r in runs.values()), "runs": runs}

    if not args.skip_tests:
        steps.run("test executables", tests)

    def bench():
        size = ["--size", "20000"] if args.smoke else []
        status, out, err = command(
            [binary, "bench", "--json", *size], max(60, min(180, steps.left()))
        )
        if status != 0:
            return {"ok": False, "error": err}
        report = json.loads(out)
        return {"ok": all(r["results_match"] for r in report["rows"]), "report": report}

    steps.run("bench", bench)

    def streamed():
        path = os.path.join(args.work, "big.npy")
        elements = big_bytes // 8
        status, _, err = command(
            [binary, "gen", "--size", str(elements), "--max-value", str(2**32 - 1), "-o", path],
            240,
        )
        if status != 0:
            return {"ok": False, "error": err}
        thresholds = "0,1,1000000,4294967291,2147483648,4294967295,65536"
        runs = {}
        for backend in ("both", "gpu"):
            status, out, err = command(
                [binary, "-i", path, "--backend", backend, "--thresholds", thresholds, "--json"],
                max(60, min(300, steps.left())),
            )
            if status != 0:
                return {"ok": False, "error": f"--backend {backend}: {err}", "runs": runs}
            report = json.loads(out)
            runs[backend] = {
                "timings_ms": report["timings_ms"],
                "results": report["results"],
                "comparison_first_mismatch": (report.get("comparison") or {}).get(
                    "first_mismatch"
                ),
                "stderr": err[-1000:],
            }
        os.remove(path)
        agree = runs["both"]["comparison_first_mismatch"] is None and (
            runs["both"]["results"] == runs["gpu"]["results"]
        )
        return {"ok": agree, "bytes": elements * 8, "elements": elements, "runs": runs}

    steps.run("streamed array", streamed)

    rng = np.random.default_rng(2013)
    values = rng.integers(0, 10**6, size=10**4 if args.smoke else 10**6, endpoint=True, dtype=np.int64)

    def python_workload():
        import divgpu

        expected = divgpu.count(values, POST_THRESHOLDS, backend="cpu").tolist()
        rows = {}
        for label, options in (
            ("gpu, value index", {"backend": "gpu"}),
            ("gpu, a pass per batch", {"backend": "gpu", "index_memory": 0}),
            ("gpu naive (the post's loop)", {"backend": "gpu", "algorithm": "naive"}),
            ("cpu, value index", {"backend": "cpu"}),
        ):
            start = time.perf_counter()
            index = divgpu.Index(values, **options)
            opened = time.perf_counter() - start
            start = time.perf_counter()
            first = index.count(POST_THRESHOLDS).tolist()
            first_s = time.perf_counter() - start
            later = []
            for _ in range(5 if "naive" in label else 20):
                start = time.perf_counter()
                again = index.count(POST_THRESHOLDS).tolist()
                later.append(time.perf_counter() - start)
                if again != expected:
                    return {"ok": False, "error": f"{label}: a later batch differs"}
            if first != expected:
                return {"ok": False, "error": f"{label}: the first batch differs"}
            rows[label] = {
                "open_s": opened,
                "first_batch_s": first_s,
                "later_batch_median_s": statistics.median(later),
                "adapter": index.adapter,
            }
        return {"rows": rows, "expected": expected}

    workload = steps.run("python workload", python_workload)

    def cupy_anchor():
        try:
            import cupy as cp
        except Exception as e:
            return {"ok": True, "skipped": f"CuPy is not importable: {e}"}
        expected = workload.get("expected")
        x = cp.asarray(values)
        t = cp.asarray(np.array(POST_THRESHOLDS, dtype=np.int64))
        naive = cp.RawKernel(
            r"""
extern "C" __global__ void naive(const long long* x, long long n, const long long* t,
                                 int nt, unsigned long long* sums) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long v = x[i];
    // the post's kernel: 1, and 1 more for v > 1, and 2 for each divisor pair below sqrt
    unsigned long long ret = 1;
    if (v > 1) ret += 1;
    for (long long j = 2; j * j <= v; j++) {
        if (v % j == 0) { ret += 1; if (j * j < v) ret += 1; }
    }
    for (int k = 0; k < nt; k++) if (v <= t[k]) atomicAdd(&sums[k], ret);
}
""",
            "naive",
        )
        sieve = cp.RawKernel(
            r"""
extern "C" __global__ void sieve(unsigned int* table, long long top) {
    long long d = (long long)blockIdx.x * blockDim.x + threadIdx.x + 1;
    if (d > top) return;
    for (long long m = d; m <= top; m += d) atomicAdd(&table[m], 1u);
}
""",
            "sieve",
        )

        def run_naive():
            sums = cp.zeros(len(POST_THRESHOLDS), dtype=cp.uint64)
            threads = 256
            naive(((x.size + threads - 1) // threads,), (threads,),
                  (x, cp.int64(x.size), t, cp.int32(t.size), sums))
            return sums.get().tolist()

        def run_fast():
            top = int(x.max())
            table = cp.zeros(top + 1, dtype=cp.uint32)
            sieve(((top + 255) // 256,), (256,), (table, cp.int64(top)))
            table[:2] = 1
            c = table[cp.clip(x, 0, None)].astype(cp.uint64)
            c[x <= 1] = 1
            order = cp.argsort(x)
            running = cp.cumsum(c[order])
            at = cp.searchsorted(x[order], t, side="right")
            sums = cp.where(at > 0, running[cp.maximum(at - 1, 0)], 0)
            return sums.get().tolist()

        rows = {}
        for label, work in (("cupy naive (the post's loop)", run_naive), ("cupy fast", run_fast)):
            first_start = time.perf_counter()
            got = work()
            cp.cuda.Device().synchronize()
            first = time.perf_counter() - first_start
            later = []
            for _ in range(5):
                start = time.perf_counter()
                work()
                cp.cuda.Device().synchronize()
                later.append(time.perf_counter() - start)
            if expected is not None and got != expected:
                return {"ok": False, "error": f"{label} differs from divgpu's CPU"}
            rows[label] = {"first_s": first, "median_s": statistics.median(later)}
        return {"rows": rows, "cupy": cp.__version__}

    steps.run("cupy anchor", cupy_anchor)
    workload.pop("expected", None)
    return finish(summary, steps, args.out)


def finish(summary, steps, out):
    summary["steps"] = steps.results
    summary["ok"] = all(s["ok"] for s in steps.results.values())
    summary["seconds"] = round(time.monotonic() - steps.start, 1)
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"gpu-check: {'ok' if summary['ok'] else 'FAILED'}; summary in {out}", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
