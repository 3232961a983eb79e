#!/usr/bin/env bash
# The CPU against the memory floor (issue 13): whole-process times by hyperfine (each command's
# runs back to back) of `divgpu --backend cpu`, of benches/reference/mmap_sum.c (a plain sum of
# the same memory map on the same threads: the floor) and of its histogram mode up to the post's
# largest threshold (one increment per element: the ceiling of divgpu's histogram path) over the
# same .npy files, and divgpu's peak RSS.
#
#     benches/memory_floor.sh [DIR] [DIVGPU]
#
# DIR holds the files (made once, about 11 GB: 2 GB and 8 GB int64, 1 GB int32, values in
# [0, 10^6]); DIVGPU is the binary to measure (default: target/release/divgpu, built first).
# Needs hyperfine, a C compiler and a Python with numpy ($PYTHON; default: the test command's
# .venv).
#
# The page cache's state moves the floor several times over (docs/performance.md, third step):
# files just written map slowly, and so does the floor. REREAD=1 (as root) drops the cache and
# reads each file back first, so that every program maps it from pages read in; without it, the
# files are measured in whatever state they are in.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/divgpu-floor}"
divgpu="${2:-target/release/divgpu}"
if [ "$divgpu" = target/release/divgpu ]; then
    cargo build --release --locked --quiet
fi
mkdir -p "$dir"
cc -O2 -pthread -o "$dir/mmap_sum" benches/reference/mmap_sum.c
[ -f "$dir/i64-2g.npy" ] || "$divgpu" gen --size 250000000 -o "$dir/i64-2g.npy"
[ -f "$dir/i64-8g.npy" ] || "$divgpu" gen --size 1000000000 -o "$dir/i64-8g.npy"
if [ ! -f "$dir/i32-1g.npy" ]; then
    # the 2 GB file's values, at 4 bytes each
    "${PYTHON:-.venv/bin/python}" - "$dir" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
np.save(f"{d}/i32-1g.npy", np.load(f"{d}/i64-2g.npy", mmap_mode="r").astype(np.int32))
EOF
fi
for f in i64-2g i32-1g i64-8g; do
    if [ "${REREAD:-0}" = 1 ]; then
        sync
        echo 1 >/proc/sys/vm/drop_caches
        cat "$dir/$f.npy" >/dev/null
        echo "$f: the page cache dropped and the file read back"
    fi
    runs=10
    [ "$f" = i64-8g ] && runs=5
    hyperfine -N -w 1 -r "$runs" --export-json "$dir/$f.json" \
        "$dir/mmap_sum $dir/$f.npy 2" "$dir/mmap_sum $dir/$f.npy 2 500000" \
        "$divgpu --input $dir/$f.npy --backend cpu --threads 2"
    /usr/bin/time -f "$f: peak RSS %M KiB" "$divgpu" --input "$dir/$f.npy" --backend cpu \
        --threads 2 >/dev/null
    ls -l "$dir/$f.npy"
done
