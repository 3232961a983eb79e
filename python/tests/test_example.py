"""python/examples/post.py runs and prints the post's three lines and its answers."""

import pathlib
import subprocess
import sys

import numpy as np

from conftest import oracle

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "post.py"


def test_the_posts_example_runs_and_its_answers_match_the_oracle():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--size", "3000", "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    lines = out.splitlines()
    for label in ["Singlethread", "Naive Multithread", "ReleaseGIL Multithread"]:
        assert any(line.startswith(label + " ") for line in lines), out
    # the answers it printed, against the oracle on the same array
    common = np.random.default_rng(1).integers(0, 10**6, size=3000, endpoint=True)
    inputs = [100_000 * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]
    assert lines[0] == str(oracle(common.tolist(), inputs)), out
