#!/usr/bin/env bash
# The prepared check for a machine with a real GPU, in two steps.
#
# Here, where the Rust toolchain is (about 4 minutes, most of it the wheel):
#   scripts/gpu-check.sh --prepare DIR [--wheel FILE]
# gathers into DIR (at most 64 MiB): the release binary, the GPU test executables (stripped and
# xz-compressed), the abi3 wheel, the Vulkan loader's package, and these scripts. There, the
# wheel is unpacked beside the machine's python3 and numpy.
#
# There (no Rust, no registry; Python 3 with numpy, and CuPy where it is installed):
#   DIR/gpu-check.sh [--allow-software] [--big-bytes N] [--out FILE] [--skip-tests] [--smoke]
# runs `divgpu devices`, --adapter by number and bus id, every GPU test executable, `divgpu
# bench --json`, a 4 GiB array streamed through the GPU and checked against the CPU, the post's
# workload from Python (first and later batches), and the same workload in CuPy as the anchor a
# CUDA user would pick; it writes one JSON summary (default: DIR/gpu-check.json) and exits 1 if
# any check failed. Without --allow-software it refuses to count a software adapter as a GPU:
# here, `WGPU_BACKEND=vulkan DIR/gpu-check.sh --allow-software` runs it on lavapipe (with a
# 256 MiB array unless --big-bytes says otherwise). CI runs it so, with a 1 MiB array,
# --skip-tests (it runs the tests itself) and --smoke (small workloads), so that the script
# keeps working.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

prepare() {
    local dir="$1" wheel="${2:-}"
    local root
    root="$(cd "$here/.." && pwd)"
    cd "$root"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    rm -rf "${dir:?}/tests" "${dir:?}/debs"
    mkdir -p "$dir/tests" "$dir/debs"
    echo "gpu-check: building the release binary and the test executables" >&2
    # with the test-only fault-injection feature, as scripts/test.sh builds them (so that CI
    # reuses its build): its hooks do nothing unless DIVGPU_FAULT is set
    local features=(--features fault-injection)
    cargo build --release --locked "${features[@]}"
    # the GPU tests: every test binary that opens an adapter (cli's needs the binary at the
    # path it was built with, so the adapter checks it makes are made by gpu_check.py instead)
    local names="backends index index_file loop_budget differential"
    cargo test --release --locked "${features[@]}" --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
wanted = set(sys.argv[1].split())
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in wanted and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' "$names" | while read -r name exe; do
        strip -o "$dir/tests/$name" "$exe"
        xz -T0 -4 -f "$dir/tests/$name"
    done
    strip -o "$dir/divgpu" target/release/divgpu
    xz -T0 -4 -f "$dir/divgpu"
    if [ -z "$wheel" ]; then
        scripts/wheel.sh >&2
        wheel="$(ls -t dist/divgpu-*-abi3-*.whl | head -1)"
    fi
    rm -f "$dir"/divgpu-*.whl
    cp "$wheel" "$dir/"
    # the Vulkan loader, for a machine whose image lacks it (unpacked under DIR, not into /)
    (cd "$dir/debs" && apt-get download libvulkan1 >/dev/null 2>&1) ||
        echo "gpu-check: could not download libvulkan1; the machine must have the loader" >&2
    cp scripts/gpu-check.sh scripts/gpu_check.py "$dir/"
    local bytes
    bytes=$(du -sb "$dir" | cut -f1)
    echo "gpu-check: prepared $dir ($bytes bytes)" >&2
    if [ "$bytes" -gt $((64 << 20)) ]; then
        echo "gpu-check: $dir is over 64 MiB" >&2
        exit 1
    fi
}

run() {
    local dir="$here"
    local work="${TMPDIR:-/tmp}/divgpu-gpu-check"
    rm -rf "$work"
    mkdir -p "$work/tests"
    # the Vulkan loader, where the image has none
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
        for deb in "$dir"/debs/libvulkan1*.deb; do
            [ -e "$deb" ] || continue
            dpkg -x "$deb" "$work/root"
            export LD_LIBRARY_PATH="$(dirname "$(find "$work/root" -name 'libvulkan.so.1' | head -1)"):${LD_LIBRARY_PATH:-}"
        done
    fi
    # NVIDIA's Vulkan ICD where the container runtime put it but the loader does not look
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -e "$icd" ] &&
        ! ls /etc/vulkan/icd.d/nvidia* /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
        export VK_DRIVER_FILES="$icd"
    fi
    export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
    xz -dc "$dir/divgpu.xz" >"$work/divgpu"
    chmod +x "$work/divgpu"
    for t in "$dir"/tests/*.xz; do
        local name
        name="$(basename "$t" .xz)"
        xz -dc "$t" >"$work/tests/$name"
        chmod +x "$work/tests/$name"
    done
    # the wheel unpacked beside the machine's own Python and numpy (a wheel is a zip; no venv,
    # pip or registry needed: some images have no ensurepip)
    python3 -m zipfile -e "$(ls "$dir"/divgpu-*.whl | head -1)" "$work/site"
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    # numpy: the machine's (the lent GPU machines have it), else from the registry where one is
    python3 -c "import numpy" 2>/dev/null ||
        python3 -m pip install --quiet --target "$work/site" numpy
    exec python3 "$dir/gpu_check.py" --bin "$work/divgpu" --tests "$work/tests" \
        --work "$work" --out "$dir/gpu-check.json" "$@"
}

case "${1:-}" in
--prepare)
    [ $# -ge 2 ] || {
        echo "usage: scripts/gpu-check.sh --prepare DIR [--wheel FILE]" >&2
        exit 2
    }
    dir="$2"
    shift 2
    wheel=""
    if [ "${1:-}" = "--wheel" ]; then wheel="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; fi
    prepare "$dir" "$wheel"
    ;;
*)
    run "$@"
    ;;
esac
