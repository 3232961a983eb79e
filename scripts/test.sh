#!/usr/bin/env bash
# Every test of divgpu: the Rust suites (cargo test), then the Python package built from this
# tree and installed into a virtual environment (.venv, or $DIVGPU_VENV), tested by pytest.
# The GPU tests run on the adapter wgpu picks (WGPU_BACKEND chooses vulkan, gl, ...); they fail
# when there is none, unless DIVGPU_SKIP_GPU_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release --locked

venv="${DIVGPU_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# builds the extension with maturin (release) and installs it with numpy, pytest, and Dask and
# zarr for the Dask tests
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ".[test,dask]"
"$venv/bin/python" -m pytest -q python/tests
