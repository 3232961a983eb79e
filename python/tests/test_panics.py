"""A panic inside the extension is a DivgpuError, never PyO3's PanicException, and poisons the
Index it happened in.

Panics are injected (`DIVGPU_FAULT=<point>`) into a build of the extension with the
`fault-injection` feature, which users never get: scripts/test.sh builds one and names its
folder in DIVGPU_FAULT_BUILD. Each case runs in a fresh process that imports that build.
"""

import os
import subprocess
import sys

import pytest

BUILD = os.environ.get("DIVGPU_FAULT_BUILD")

pytestmark = pytest.mark.skipif(
    not BUILD, reason="needs DIVGPU_FAULT_BUILD (scripts/test.sh builds the fault-injection build)"
)

SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import divgpu
assert divgpu.__file__.startswith(sys.argv[1]), divgpu.__file__

def fails(call, needle):
    try:
        call()
    except divgpu.DivgpuError as e:
        assert needle in str(e) and "internal error" in str(e), str(e)
    except BaseException as e:
        raise AssertionError(f"not a DivgpuError: {type(e).__name__}: {e}")
    else:
        raise AssertionError("no error")

backend = sys.argv[2]
values = np.arange(-5, 3000, dtype=np.int64)

# in the extension itself, outside any session
os.environ["DIVGPU_FAULT"] = "python-open"
fails(lambda: divgpu.Index(values, backend=backend), "opening the Index")
del os.environ["DIVGPU_FAULT"]

# in a session's work: the Index is poisoned, the fault gone or not
point = "cpu-pass" if backend == "cpu" else "gpu-query"
index = divgpu.Index(values, backend=backend, algorithm="naive")
os.environ["DIVGPU_FAULT"] = point
fails(lambda: index.count([5, 100]), point)
del os.environ["DIVGPU_FAULT"]
fails(lambda: index.count(5), point)
fails(lambda: index.count([1, 2]), point)
# a new Index answers: seven elements <= 1 (c = 1 each), then d(2) + d(3) + d(4) + d(5)
assert divgpu.Index(values, backend=backend, algorithm="naive").count(5) == 7 + 2 + 2 + 3 + 2
print("ok")
"""


def test_an_injected_panic_is_a_divgpu_error_and_poisons_the_index(backend):
    # RUST_BACKTRACE keeps Rust's own panic message, for whoever debugs divgpu
    env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "DIVGPU_FAULT")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, BUILD, backend],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
    assert "panicked at" not in out.stderr, out.stderr
