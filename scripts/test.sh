#!/usr/bin/env bash
# Every test of divgpu: the Rust suites (cargo test), then the Python package as users install
# it: the wheel scripts/wheel.sh builds (abi3, manylinux2014), installed into a fresh virtual
# environment ($DIVGPU_VENV, or .venv-test) whose PATH has no Rust toolchain, and tested there
# by pytest. The GPU tests run on the adapter wgpu picks (WGPU_BACKEND chooses vulkan, gl,
# ...); they fail when there is none, unless DIVGPU_SKIP_GPU_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

# with fault injection (tests/fault.rs): a test-only feature no user build has
cargo test --release --locked --features fault-injection

# the extension once more, with fault injection, for python/tests/test_panics.py: the package's
# Python files beside it, in a folder that test imports instead of the installed wheel
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release --locked -p divgpu-python \
    --features fault-injection
fault_build="$PWD/target/fault-python"
rm -rf "$fault_build"
mkdir -p "$fault_build"
cp -r python/divgpu "$fault_build/"
rm -f "$fault_build"/divgpu/*.so
cp target/release/lib_divgpu.so "$fault_build/divgpu/_divgpu.abi3.so"
export DIVGPU_FAULT_BUILD="$fault_build"

dist="${DIVGPU_DIST:-$PWD/dist}"
scripts/wheel.sh "$dist"
wheel="$(ls "$dist"/divgpu-*.whl)"

# PATH without any folder that holds cargo or rustc: a wheel that needed compiling fails here
clean_path=""
IFS=: read -ra folders <<< "$PATH"
for folder in "${folders[@]}"; do
    if [ -n "$folder" ] && [ ! -x "$folder/cargo" ] && [ ! -x "$folder/rustc" ]; then
        clean_path="${clean_path:+$clean_path:}$folder"
    fi
done

venv="${DIVGPU_VENV:-$PWD/.venv-test}"
rm -rf "$venv"
python3 -m venv "$venv"
export PATH="$venv/bin:$clean_path"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
    echo "test.sh: a Rust toolchain is still on PATH" >&2
    exit 1
fi
# the wheel with the test extras (pytest, tqdm, pyarrow, polars, pandas, Dask, zarr)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary divgpu \
    "$wheel[test,dask]"
# the package under test is the installed wheel, not the source tree
(cd / && "$venv/bin/python" -c 'import divgpu, sys; assert "site-packages" in divgpu.__file__, divgpu.__file__')
"$venv/bin/python" -m pytest -q python/tests
