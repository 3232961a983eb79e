"""Inputs other than numpy arrays: Arrow (pyarrow, polars, pandas), DLPack, read in place.

Each kind is checked against the oracle on seeded random values of every integer type, split
into random chunks where the kind has chunks; nulls are refused with their count and the first
one's index; memory is measured in a fresh process.
"""

import json
import random
import subprocess
import sys

import numpy as np
import pytest

import divgpu
from conftest import INT_DTYPES, oracle, random_thresholds, random_values

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
pd = pytest.importorskip("pandas")

POLARS = {
    "int8": pl.Int8,
    "uint8": pl.UInt8,
    "int16": pl.Int16,
    "uint16": pl.UInt16,
    "int32": pl.Int32,
    "uint32": pl.UInt32,
    "int64": pl.Int64,
    "uint64": pl.UInt64,
}


def _split(rng, values):
    """`values` cut at random places (empty pieces included)."""
    cuts = sorted(rng.randint(0, len(values)) for _ in range(rng.randint(0, 6)))
    bounds = [0] + cuts + [len(values)]
    return [values[a:b] for a, b in zip(bounds, bounds[1:])]


def _as(kind, rng, values, dtype):
    array = np.array(values, dtype=dtype)
    if kind == "pyarrow.Array":
        # a slice: an offset into its buffers
        return pa.array(np.concatenate([array[:1], array]))[1:]
    if kind == "pyarrow.ChunkedArray":
        return pa.chunked_array([pa.array(p) for p in _split(rng, array)], type=pa.from_numpy_dtype(dtype))
    if kind == "polars.Series":
        pieces = [pl.Series(p, dtype=POLARS[dtype]) for p in _split(rng, array)]
        series = pieces[0]
        for p in pieces[1:]:
            series.append(p)
        return series
    if kind == "pandas numpy":
        return pd.Series(array)
    if kind == "pandas arrow":
        return pd.Series(array, dtype=pd.ArrowDtype(pa.from_numpy_dtype(dtype)))
    if kind == "pandas masked":
        return pd.Series(array, dtype=dtype.capitalize().replace("Uint", "UInt"))
    if kind == "dlpack":
        return _DLPackOnly(array)
    raise AssertionError(kind)


class _DLPackOnly:
    """Offers nothing but DLPack (as a torch or jax CPU tensor does)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


KINDS = [
    "pyarrow.Array",
    "pyarrow.ChunkedArray",
    "polars.Series",
    "pandas numpy",
    "pandas arrow",
    "pandas masked",
    "dlpack",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_every_kind_and_dtype_matches_the_oracle(backend, kind, seed):
    rng = random.Random(seed * 101 + KINDS.index(kind))
    for dtype in INT_DTYPES:
        values = random_values(rng, dtype, rng.randint(0, 300))
        thresholds = random_thresholds(rng, dtype, 20)
        data = _as(kind, rng, values, dtype)
        for algorithm in ["fast", "naive"]:
            with divgpu.Index(data, backend=backend, algorithm=algorithm) as index:
                assert len(index) == len(values)
                got = index.count(thresholds).tolist()
                assert got == oracle(values, thresholds), (kind, dtype, algorithm)


def test_chunked_inputs_save_and_load_like_one_array(tmp_path):
    rng = random.Random(7)
    values = random_values(rng, "int64", 2000)
    data = _as("pyarrow.ChunkedArray", rng, values, "int64")
    path = tmp_path / "chunks.divi"
    divgpu.Index(data, backend="cpu").save(path)
    thresholds = random_thresholds(rng, "int64", 30)
    assert divgpu.Index.load(path).count(thresholds).tolist() == oracle(values, thresholds)


@pytest.mark.parametrize(
    "make",
    [
        lambda: pa.array([4, None, 6, None]),
        lambda: pa.chunked_array([[1, 2, 3], [4, None], [None, None]]),
        lambda: pl.Series([4, None, 6, None]),
        lambda: pd.Series([4, None, 6, None], dtype="Int64"),
        lambda: pd.Series([4, None, 6, None], dtype="int64[pyarrow]"),
        # pandas' own missing ints: NaN in a float64 Series
        lambda: pd.Series([4, None, 6, None]),
    ],
)
def test_nulls_are_refused_with_their_count_and_the_first_index(make):
    data = make()
    values = data.to_list() if hasattr(data, "to_list") else data.to_pylist()
    missing = [i for i, v in enumerate(values) if v is None or v is pd.NA or v != v]
    nulls, first = len(missing), missing[0]
    plural = "s" if nulls != 1 else ""
    with pytest.raises(ValueError, match=rf"has {nulls} null{plural} \(the first at index {first}\)"):
        divgpu.Index(data, backend="cpu")


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: pa.array([1.5, 2.0]), "double"),
        (lambda: pa.array(["a", "b"]), "Utf8"),
        (lambda: pl.Series([1.5, 2.0]), "Float64"),
        (lambda: pa.array([1, 2]).dictionary_encode(), "Dictionary"),
    ],
)
def test_arrow_types_that_are_not_integers_are_type_errors(make, name):
    with pytest.raises(TypeError, match="divgpu counts arrays of integers"):
        divgpu.Index(make(), backend="cpu")


RSS_SCRIPT = """
import json, sys
import numpy as np, pyarrow as pa, polars as pl, pandas as pd
import divgpu

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

kind, n = sys.argv[1], int(sys.argv[2])
values = (np.arange(n, dtype=np.int64) % 5000)
if kind == "pyarrow.Array":
    data = pa.array(values)
elif kind == "pyarrow.ChunkedArray":
    data = pa.chunked_array(np.array_split(values, 7))
elif kind == "polars.Series":
    data = pl.Series(values)
elif kind == "pandas arrow":
    data = pd.Series(pa.array(values), dtype=pd.ArrowDtype(pa.int64()))
elif kind == "dlpack":
    class Only:
        def __dlpack__(self, **k): return values.__dlpack__(**k)
        def __dlpack_device__(self): return values.__dlpack_device__()
    data = Only()
before = rss()
index = divgpu.Index(data, backend="cpu", algorithm="fast")
counts = index.count([100, 4999])
print(json.dumps({"grew": rss() - before, "bytes": values.nbytes, "counts": counts.tolist()}))
"""


@pytest.mark.parametrize(
    "kind", ["pyarrow.Array", "pyarrow.ChunkedArray", "polars.Series", "pandas arrow", "dlpack"]
)
def test_large_inputs_are_read_in_place(kind):
    n = 20_000_000
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, kind, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    # a copy would add the array's 160 MB; the index over 5000 distinct values is small
    assert result["grew"] < result["bytes"] // 4, result
    per_value = n // 5000
    assert result["counts"][1] == per_value * sum(
        oracle(range(5000), [4999])
    ), result


def test_a_nullable_pandas_series_is_locked_while_an_index_reads_it():
    # its values stay in pandas' own writable numpy array, which the Index reads in place
    series = pd.Series([1, 2, 3, 4], dtype="Int64")
    index = divgpu.Index(series, backend="cpu", algorithm="naive")
    with pytest.raises(ValueError):
        series[0] = 100
    assert index.count(4) == oracle([1, 2, 3, 4], [4])[0]
    index.close()
    series[0] = 100
    assert divgpu.Index(series, backend="cpu").count(4) == oracle([100, 2, 3, 4], [4])[0]
