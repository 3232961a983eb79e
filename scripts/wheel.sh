#!/usr/bin/env bash
# Builds divgpu's Python distributions into dist/ (or the folder given):
# - one abi3 wheel for CPython 3.9 and later on manylinux2014 x86-64 (glibc 2.17) or newer,
#   linked by zig (maturin --zig, with ziglang from PyPI) against that glibc, so it installs
#   with no compiler; auditwheel then shows its tag and the libraries it needs;
# - the sdist, which builds the same wheel from source (it needs a Rust toolchain).
# The build tools go into their own virtual environment (.wheel-tools, or $DIVGPU_WHEEL_TOOLS).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-dist}"
tools="${DIVGPU_WHEEL_TOOLS:-$PWD/.wheel-tools}"
if [ ! -x "$tools/bin/maturin" ]; then
    python3 -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
        "maturin>=1.7,<2" "ziglang>=0.13" "auditwheel>=6"
fi
rm -rf "$out"
mkdir -p "$out"
# maturin runs `python -m ziglang` for the linker: its own environment's python
PATH="$tools/bin:$PATH" maturin build --release --locked --zig \
    --compatibility manylinux2014 --out "$out"
PATH="$tools/bin:$PATH" maturin sdist --out "$out"
"$tools/bin/auditwheel" show "$out"/*.whl
ls -l "$out"
