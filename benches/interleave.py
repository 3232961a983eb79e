"""Whole-process wall times of several commands, interleaved: round r runs every command once,
in turn, so that a noisy machine's slow moments fall on all of them alike. Prints each
command's median and range, and its median's ratio to the first command's (the floor).

    python3 benches/interleave.py [--runs 7] [--warmup 1] -- "CMD1" "CMD2" ...

Each command's stdout is dropped; a command that fails stops the run.
"""

import argparse
import shlex
import statistics
import subprocess
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    commands = [shlex.split(c) for c in args.commands]
    times = [[] for _ in commands]
    for r in range(args.warmup + args.runs):
        for i, command in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            if r >= args.warmup:
                times[i].append(time.perf_counter() - start)
    floor = statistics.median(times[0])
    for text, t in zip(args.commands, times):
        median = statistics.median(t)
        print(f"{median * 1e3:9.1f} ms  [{min(t) * 1e3:.1f} .. {max(t) * 1e3:.1f}]  "
              f"x{median / floor:5.2f}  {text}")


if __name__ == "__main__":
    main()
