"""The examples run: python/examples/post.py prints the post's three lines and its answers, and
python/examples/dask_zarr.py its table, both checked against oracles."""

import json
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


DASK_EXAMPLE = EXAMPLE.parent / "dask_zarr.py"


def test_the_dask_example_runs_and_its_answers_match_a_sieve(tmp_path):
    import zarr

    store, report = tmp_path / "values.zarr", tmp_path / "report.json"
    subprocess.run(
        [sys.executable, str(DASK_EXAMPLE), str(store), "--gigabytes", "0.0016",
         "--chunk-mb", "0.1", "--runs", "1", "--backend", "cpu", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = json.loads(report.read_text())["rows"]
    assert [r["how"].split(":")[0].split(",")[0] for r in rows] == [
        "one process", "one process", "LocalCluster", "LocalCluster"
    ]
    # divisor counts by a sieve over every value up to the largest (no divgpu code), 1 for 0
    values = zarr.open_array(str(store), mode="r")[:]
    assert values.size == 200_000
    top = int(values.max())
    d = np.zeros(top + 1, dtype=np.int64)
    for k in range(1, top + 1):
        d[k::k] += 1
    d[0] = 1
    inputs = [100_000 * i for i in [1, 4, 1, 2, 4, 5, 1, 1, 2, 3, 4, 1, 2]]
    assert rows[0]["answer"] == [int(d[values[values <= n]].sum()) for n in inputs]
