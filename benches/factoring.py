"""divgpu's factoring against a reference program, whole-process, side by side (numbers, not a
test).

    python3 benches/factoring.py --divgpu target/release/divgpu --reference "CMD" \\
        [--reps 5] [--threads 2] [--dir DIR] [--sizes 50000,500000]

Writes the four classes of values the factoring is measured on (seeded, one value per line):
(a) uniform u64, (b) products of two random primes in [2^31, 2^32), (c) uniform in
[2^32, 2^40), (d) uniform u32. Then, for each file, over `--reps` rounds in alternating order:

- divgpu: `divgpu -i FILE.txt --backend cpu --threads T --thresholds 18446744073709551615
  --json`, one pass that computes c(x) of every element;
- the reference: `CMD FILE.txt T`, which must print a line whose second word is the sum of the
  divisor counts of the file's values (a driver built on the EPR library, hurchalla/factoring,
  kept outside this repository; or any program that prints the same).

Both sums must agree on every run. Prints each side's median time and the median of the ratios
of the pairs.
"""

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import time


def is_prime(n):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def prime_in(rng, lo, hi):
    while True:
        p = rng.randrange(lo, hi) | 1
        if is_prime(p):
            return p


CLASSES = {
    "a": lambda rng: rng.randrange(1, 2**64),
    "b": lambda rng: prime_in(rng, 2**31, 2**32) * prime_in(rng, 2**31, 2**32),
    "c": lambda rng: rng.randrange(2**32, 2**40),
    "d": lambda rng: rng.randrange(1, 2**32),
}


def write(directory, name, count):
    path = os.path.join(directory, f"{name}_{count}.txt")
    if not os.path.exists(path):
        rng = random.Random(f"{name} {count}")
        with open(path, "w") as f:
            f.writelines(f"{CLASSES[name](rng)}\n" for _ in range(count))
    return path


def run(command):
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--divgpu", default="target/release/divgpu")
    parser.add_argument("--reference", required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default="/tmp/divgpu-factoring")
    parser.add_argument("--sizes", default="50000")
    parser.add_argument("--classes", default="a,b,c,d")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    reference = shlex.split(args.reference)
    print(f"{'file':<16}{'divgpu ms':>11}{'reference ms':>14}{'ratio':>8}  sum")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name in args.classes.split(","):
            path = write(args.dir, name, size)
            ours_cmd = [args.divgpu, "-i", path, "--backend", "cpu", "--threads",
                        str(args.threads), "--thresholds", str(2**64 - 1), "--json"]
            ref_cmd = reference + [path, str(args.threads)]
            ours, theirs, ratios = [], [], []
            for rep in range(args.reps):
                order = [0, 1] if rep % 2 == 0 else [1, 0]
                times, sums = {}, {}
                for side in order:
                    if side == 0:
                        t, out = run(ours_cmd)
                        sums[0] = json.loads(out)["results"][0]
                    else:
                        t, out = run(ref_cmd)
                        sums[1] = int(out.split()[1])
                    times[side] = t
                assert sums[0] == sums[1], f"{path}: divgpu {sums[0]}, reference {sums[1]}"
                ours.append(times[0])
                theirs.append(times[1])
                ratios.append(times[0] / times[1])
            print(f"{os.path.basename(path):<16}{statistics.median(ours) * 1e3:11.1f}"
                  f"{statistics.median(theirs) * 1e3:14.1f}{statistics.median(ratios):8.2f}  "
                  f"{sums[0]}")


if __name__ == "__main__":
    main()
