"""divgpu on Dask: the same exact counts over an array stored in chunks, on a cluster.

    >>> import dask.array as da, divgpu.dask
    >>> x = da.from_zarr("values.zarr")                     # any integer dtype, any shape
    >>> sums = divgpu.dask.count(x, [10, 1000, 10**6])      # lazy, nothing read yet
    >>> sums.compute()                                       # == divgpu.count(x.compute(), ...)
    array([...], dtype=uint64)

Each block is counted where it is read: the task that reads a block from zarr (or from a
memory-mapped ``.npy`` file, see :func:`from_npy`) also counts it, on the worker, so the array's
data never travels through the scheduler or the client. Every block gives one partial sum per
threshold (uint64); the partials are added up in a tree, exactly, and an overflow past
2**64 - 1 raises ``OverflowError`` instead of wrapping.

The GPU (device and pipelines) is opened once per worker process, by the first block that needs
it, and kept for every later block and every later ``count``: see :class:`DivgpuPlugin` to open
it when the worker starts instead.

Needs the optional dependencies: ``pip install "divgpu[dask]"`` (``dask[array]`` and
``distributed``). ``import divgpu`` works without them.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised by a test in a clean interpreter
    raise ImportError(
        "divgpu.dask needs Dask: pip install 'divgpu[dask]' (dask[array] and distributed)"
    ) from e

try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - dask without distributed: the local schedulers
    _WorkerPlugin = object  # type: ignore[misc,assignment]

from . import _adapter_option, _check_options
from . import _thresholds as _classify
from ._divgpu import Session, gpu_json, thresholds_of

__all__ = ["count", "index", "Index", "from_npy", "DivgpuPlugin", "worker_gpu"]

_BACKENDS = ("auto", "gpu", "cpu", "both")
_ALGORITHMS = ("fast", "naive")


def worker_gpu(
    backend: str = "auto", adapter: Optional[Union[str, int]] = None
) -> Optional[Dict[str, str]]:
    """Opens (once per process) the GPU that blocks counted with these options use, and returns
    its adapter (name, backend, device_type, driver), or None where ``backend="auto"`` found no
    hardware GPU. Raises :class:`divgpu.DivgpuError` for ``"gpu"`` or ``"both"`` without one.
    Run it on every worker to see what each one has: ``client.run(divgpu.dask.worker_gpu)``."""
    adapter = _check_backend(backend, adapter)
    if backend == "cpu":
        return None
    text = gpu_json(backend, adapter)
    return None if text is None else json.loads(text)


class DivgpuPlugin(_WorkerPlugin):
    """A ``distributed`` worker plugin that opens the GPU when each worker starts (and when a
    restarted worker comes back), so that the first block pays no start-up and a worker without
    the GPU it was asked for fails at once::

        client.register_plugin(divgpu.dask.DivgpuPlugin(backend="gpu"))

    Without it, the first block on each worker opens the GPU; either way once per process.
    """

    idempotent = True
    name = "divgpu"

    def __init__(self, backend: str = "auto", adapter: Optional[Union[str, int]] = None) -> None:
        self.adapter = _check_backend(backend, adapter)
        self.backend = backend

    def setup(self, worker: Any = None) -> None:
        worker_gpu(self.backend, self.adapter)


class _NpyFile:
    """A ``.npy`` file that dask slices: memory-mapped by each process that reads a block (once
    per process), pickled as its path and header only, so a block is read by the worker that
    counts it and the data travels nowhere."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.fspath(path))
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            except ValueError as e:
                raise ValueError(f"{self.path} is not a .npy file: {e}") from None
        stat = os.stat(self.path)
        self.shape: Tuple[int, ...] = tuple(shape)
        self.dtype = dtype
        self.ndim = len(self.shape)
        self._stamp = (stat.st_size, stat.st_mtime_ns)

    def __dask_tokenize__(self) -> Any:
        return ("divgpu-npy", self.path, self._stamp, self.shape, self.dtype.str)

    def _map(self) -> np.ndarray:
        key = (self.path, self._stamp)
        with _maps_guard:
            mapped = _maps.get(key)
            if mapped is None:
                stat = os.stat(self.path)
                if (stat.st_size, stat.st_mtime_ns) != self._stamp:
                    raise ValueError(f"{self.path} changed after the dask array was made")
                mapped = np.load(self.path, mmap_mode="r")
                _maps[key] = mapped
            return mapped

    def __getitem__(self, index: Any) -> np.ndarray:
        # a view of the map: divgpu reads the block in place, without a copy
        return np.asarray(self._map()[index])


# The .npy files this process has mapped, by path and (size, mtime).
_maps: Dict[Tuple[str, Tuple[int, int]], np.ndarray] = {}
_maps_guard = threading.Lock()


def from_npy(
    paths: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]],
    chunks: Any = "auto",
) -> "da.Array":
    """A dask array over one ``.npy`` file, or several joined along their first axis (same
    dtype, same other axes), read by memory-mapping each file on the worker that counts a
    block: the data never goes through the client or the scheduler. Every worker must see the
    files at the same path (a shared file system). `chunks` is as for ``dask.array.from_array``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [_NpyFile(p) for p in paths]
    if not files:
        raise ValueError("from_npy needs at least one .npy file")
    first = files[0]
    for f in files[1:]:
        if f.dtype != first.dtype or f.shape[1:] != first.shape[1:] or f.ndim == 0:
            raise ValueError(
                f"{f.path} ({f.dtype}, shape {f.shape}) does not join {first.path} "
                f"({first.dtype}, shape {first.shape}) along the first axis"
            )
    arrays = [da.from_array(f, chunks=chunks, asarray=False, inline_array=False) for f in files]
    return arrays[0] if len(arrays) == 1 else da.concatenate(arrays, axis=0)


def _check_array(x: Any, function: str, in_memory: str) -> None:
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{function} takes a dask array (dask.array.Array), not {type(x).__name__}; for an "
            f"array in memory use {in_memory}"
        )
    if x.dtype.kind not in "iu":
        raise TypeError(
            f"divgpu counts arrays of integers (int8 ... uint64); this one is {x.dtype}"
        )


def _check_block(block: Any, declared: str) -> None:
    """A block as Dask handed it: a numpy array of integers (a float chunk behind an integer
    dtype is refused here, on the worker)."""
    if not isinstance(block, np.ndarray):
        raise TypeError(f"divgpu.dask: a block is a {type(block).__name__}, not a numpy array")
    if block.dtype.kind not in "iu":
        raise TypeError(
            f"divgpu.dask: a block of shape {block.shape} is an array of {block.dtype}, not of "
            f"integers (int8 ... uint64), though the dask array's dtype is {declared}"
        )


def _check_backend(backend: Any, adapter: Any) -> Optional[str]:
    """Checks the backend's name, and returns the adapter as the core takes it."""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, not {type(backend).__name__}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be 'auto', 'gpu', 'cpu' or 'both', not {backend!r}")
    return _adapter_option(adapter)


def _thresholds(thresholds: Any) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """The thresholds as one flat array (int64 or uint64 where they fit one, else Python ints
    in an object array) and the shape of the answer, by the package's one classification
    (`divgpu._thresholds`); checked here, on the client."""
    flat, shape = _classify(thresholds)
    if shape == ():
        flat = thresholds_of([flat])
    if flat.size == 0:
        raise ValueError("no thresholds given")
    return flat, shape


def _block_partials(
    block: Any,
    thresholds: np.ndarray,
    ndim: int,
    declared: str,
    backend: str,
    algorithm: str,
    threads: int,
    adapter: Optional[str],
    chunk_elements: Optional[int],
) -> np.ndarray:
    """One block's partial sums, shaped (1, ..., 1, len(thresholds)) for the tree that adds
    them. Runs on the worker that read the block."""
    _check_block(block, declared)
    out_shape = (1,) * ndim + (thresholds.size,)
    if block.size == 0:
        return np.zeros(out_shape, dtype=np.uint64)
    # every block counted in this process shares one device ([`divgpu::gpu::registry`])
    # keep_index=False: a block is counted once, so one pass beats building an index
    session = Session(block, backend, algorithm, threads, adapter, chunk_elements, False)
    return _answer(session, thresholds).reshape(out_shape)


def _answer(session: Session, thresholds: np.ndarray) -> np.ndarray:
    """The session's sums for the flat thresholds `_thresholds` made (int64, uint64 or ints)."""
    if thresholds.dtype in (np.int64, np.uint64):
        return session.count_array(thresholds, False)
    return session.count_seq(thresholds.tolist(), False)


def _checked_sum(parts: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Adds uint64 partials along `axis` exactly: an overflow past 2**64 - 1 raises."""
    parts = np.asarray(parts, dtype=np.uint64)
    # Each step adds split_every ** ndim partials (a few hundred): the halves below cannot wrap
    # while fewer than 2**32 are added at once.
    if parts.size >= 2**32 * max(1, parts.shape[-1] if parts.ndim else 1):
        raise ValueError("divgpu.dask: too many partials in one step; lower split_every")
    low = (parts & np.uint64(0xFFFFFFFF)).sum(axis=axis, keepdims=keepdims, dtype=np.uint64)
    high = (parts >> np.uint64(32)).sum(axis=axis, keepdims=keepdims, dtype=np.uint64)
    high = high + (low >> np.uint64(32))
    over = (high >> np.uint64(32)) != 0
    if np.any(over):
        first = np.unravel_index(int(np.argmax(over)), over.shape)[-1] if over.ndim else 0
        raise OverflowError(
            f"divgpu.dask: the sum for threshold #{first} is above 2**64 - 1"
        )
    return (high << np.uint64(32)) | (low & np.uint64(0xFFFFFFFF))


def _keep(parts: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    return parts


# How many block indexes this process built (the tests read it on every worker).
_built = 0


class _BlockIndex:
    """One block's value index, built on the worker that read the block, with every value
    counted, and kept there by Dask for as long as the :class:`Index` that persisted it lives.

    It pickles as its block and options, and is built again wherever it is unpickled: Dask
    moves it only when it must, and the answer stays exact either way."""

    def __init__(self, block: np.ndarray, options: Tuple[Any, ...]) -> None:
        global _built
        backend, threads, adapter, chunk_elements, index_memory = options
        self._block = block
        self._options = options
        self._session = Session(
            block, backend, "fast", threads, adapter, chunk_elements, True, index_memory
        )
        self._session.build_index(False)
        _built += 1

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_BlockIndex, (self._block, self._options))

    def partials(self, thresholds: np.ndarray) -> np.ndarray:
        return _answer(self._session, thresholds)

    def stats(self) -> Dict[str, Any]:
        return self._session.index_stats()


def _block_index(block: Any, declared: str, options: Tuple[Any, ...]) -> _BlockIndex:
    _check_block(block, declared)
    return _BlockIndex(block, options)


def _index_partials(index: _BlockIndex, thresholds: np.ndarray) -> np.ndarray:
    return index.partials(thresholds)


def _add_partials(parts: Sequence[np.ndarray]) -> np.ndarray:
    return _checked_sum(np.stack(parts), axis=0)


def _future_of(persisted: Any) -> Any:
    from distributed import futures_of

    (future,) = futures_of(persisted)
    return future


def _near(where: Dict[Any, Any], future: Any) -> Dict[str, Any]:
    """Task options that prefer the workers holding `future` (none where it is held nowhere)."""
    workers = list(where.get(future.key, ()))
    return {"workers": workers, "allow_other_workers": True} if workers else {}


def _client_of(persisted: Sequence[Any]) -> Any:
    """The distributed Client that holds the persisted indexes, or None (local schedulers)."""
    try:
        from distributed import futures_of
    except ImportError:  # pragma: no cover - dask without distributed
        return None
    for item in persisted:
        futures = futures_of(item)
        return futures[0].client if futures else None
    return None


class Index:
    """Value indexes of a dask array's blocks, each built once on the worker that reads the
    block and kept there across ``count`` calls (see :func:`index`)."""

    def __init__(self, x: Any, options: Tuple[Any, ...]) -> None:
        blocks = x.to_delayed().ravel() if x.ndim else [x.reshape(1).to_delayed().item()]
        build = [
            dask.delayed(_block_index, pure=True)(b, str(x.dtype), options) for b in blocks
        ]
        # persisted: with a distributed Client, each index stays on the worker that built it
        # (and is built again from its block if that worker dies); otherwise, in this process
        self._indexes = list(dask.persist(*build))
        self._elements = int(x.size)
        client = _client_of(self._indexes)
        if client is not None:
            # built now, where the blocks are read: a block's error reaches the caller here,
            # and every later look-up can be sent to the worker that holds its index
            from distributed import wait

            futures = [_future_of(ix) for ix in self._indexes]
            wait(futures)
            for f in futures:
                if f.status == "error":
                    f.result()

    def count(self, thresholds: Any) -> Any:
        """The sum of c(x) over the elements ``x <= n`` of the whole array, for each
        threshold ``n``, as :meth:`divgpu.Index.count` gives it (an ``int`` for an int, else a
        ``numpy.ndarray`` of uint64 in the thresholds' shape): each block answers from its
        index, where it is kept, and the partials are added exactly (``OverflowError`` past
        2**64 - 1). Computed now."""
        flat, shape = _thresholds(thresholds)
        client = _client_of(self._indexes)
        if not self._indexes:
            sums = np.zeros(flat.size, dtype=np.uint64)
        elif client is not None:
            # each block's look-up on the worker that keeps its index (a preference, not a
            # rule: a dead worker's index is rebuilt wherever the scheduler puts it), so that
            # no index is moved, which would build it again where it lands
            futures = [_future_of(ix) for ix in self._indexes]
            where = client.who_has(futures)
            shared = client.scatter(flat, hash=False, broadcast=False)
            parts = [
                client.submit(
                    _index_partials,
                    f,
                    shared,
                    pure=False,
                    **_near(where, f),
                )
                for f in futures
            ]
            sums = client.submit(_add_partials, parts, pure=False).result()
        else:
            # the thresholds as one key, sent to each worker once
            shared = dask.delayed(flat, pure=True, traverse=False)
            parts = [dask.delayed(_index_partials, pure=True)(ix, shared) for ix in self._indexes]
            (sums,) = dask.compute(dask.delayed(_add_partials, pure=True)(parts))
        if shape == ():
            return int(sums[0])
        return sums.reshape(shape)

    def stats(self) -> Dict[str, Any]:
        """The blocks' indexes added up: ``blocks``, ``elements``, ``distinct`` (the sum of each
        block's distinct values), ``bytes`` (kept on the workers), and ``ready`` (how many
        blocks have their index; the others are counted by a pass: over ``index_memory``)."""
        client = _client_of(self._indexes)
        if client is not None:
            futures = [_future_of(ix) for ix in self._indexes]
            where = client.who_has(futures)
            stats = client.gather(
                [
                    client.submit(
                        _BlockIndex.stats,
                        f,
                        pure=False,
                        **_near(where, f),
                    )
                    for f in futures
                ]
            )
        else:
            stats = dask.compute(*[dask.delayed(_BlockIndex.stats)(ix) for ix in self._indexes])
        return {
            "blocks": len(stats),
            "elements": self._elements,
            "distinct": sum(s["distinct"] or 0 for s in stats),
            "bytes": sum(s["bytes"] or 0 for s in stats),
            "ready": sum(s["index"] == "ready" for s in stats),
        }


def index(
    x: Any,
    *,
    backend: str = "auto",
    threads: Optional[int] = None,
    adapter: Optional[Union[str, int]] = None,
    chunk_elements: Optional[int] = None,
    index_memory: Optional[int] = None,
) -> Index:
    """Builds the value index of every block of the dask array `x`, each on the worker that
    reads the block, and keeps them there: every ``count`` on the returned :class:`Index` is
    then a look-up per threshold per block, with no block read or counted again. If a worker
    dies, Dask builds its blocks' indexes again from their blocks, and the answers stay exact.

    The options are :class:`divgpu.Index`'s (``algorithm`` is ``"fast"``: an index), for each
    block; ``threads=None`` is 1 per block, as for :func:`count`. ``index_memory`` caps each
    block's index; a block over it is counted by a pass on every ``count``.

    With a ``distributed.Client``, the indexes live on the workers for as long as the
    returned object does; without one, in this process.
    """
    _check_array(x, "divgpu.dask.index", "divgpu.Index")
    adapter = _check_backend(backend, adapter)
    threads, chunk_elements = _check_options(backend, "fast", threads, adapter, chunk_elements)
    if backend == "both":
        raise ValueError("backend='both' compares passes on every count; an index uses one")
    from . import _size_option

    index_memory = _size_option("index_memory", index_memory)
    return Index(x, (backend, threads or 1, adapter, chunk_elements, index_memory))


def count(
    x: Any,
    thresholds: Any,
    *,
    backend: str = "auto",
    algorithm: str = "fast",
    threads: Optional[int] = None,
    adapter: Optional[Union[str, int]] = None,
    chunk_elements: Optional[int] = None,
    split_every: Optional[int] = None,
) -> "da.Array":
    """The sum of c(x) over the elements ``x <= n`` of the dask array `x`, for each threshold
    ``n``: a lazy dask array of uint64, one sum per threshold in the order given (a 0-d array
    for one int), whose ``.compute()`` equals ``divgpu.count`` on the whole array.

    x
        A ``dask.array.Array`` of any integer dtype and shape. Each block is counted where it
        is read, and may be misaligned, strided or of either byte order.
    thresholds
        As for :meth:`divgpu.Index.count`: ints in [-2**63, 2**64), checked here.
    backend, algorithm, adapter, chunk_elements
        As for :class:`divgpu.Index`, for every block, on whichever worker counts it.
        ``"auto"`` takes each worker's hardware GPU where it has one, else its CPU.
    threads
        CPU threads for each block. ``None`` (the default) is 1: a Dask worker runs as many
        blocks at once as it has threads, so its threads are the parallelism. To count each
        block with more cores, start workers with fewer threads (``--nthreads``) and raise this
        so that ``nthreads * threads`` is the worker's cores.
    split_every
        How many partials each step of the adding tree takes (Dask's default if None).

    Raises ``TypeError`` for a non-dask or non-integer `x` and bad thresholds, ``ValueError``
    for an option out of range; when computed, a block's own error (``TypeError`` for a block
    that is not of integers, :class:`divgpu.DivgpuError` for the GPU, ``OverflowError`` for a
    sum above 2**64 - 1) reaches the caller.
    """
    _check_array(x, "divgpu.dask.count", "divgpu.count")
    # the names too, here: the core would see them only on the workers, at compute()
    adapter = _check_backend(backend, adapter)
    threads, chunk_elements = _check_options(backend, algorithm, threads, adapter, chunk_elements)
    threads = threads or 1
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be 'fast' or 'naive', not {algorithm!r}")
    flat, shape = _thresholds(thresholds)

    # the thresholds as one key of their own, which every block's task depends on: sent to each
    # worker once, not copied into every task
    tdask = da.from_delayed(
        dask.delayed(flat, pure=True, traverse=False), shape=flat.shape, dtype=flat.dtype
    )

    ndim = max(x.ndim, 1)
    if x.ndim == 0:
        x = x.reshape(1)
    index = tuple(range(ndim))
    q = ndim  # the thresholds' axis
    partials = da.blockwise(
        _block_partials,
        index + (q,),
        x,
        index,
        tdask,
        (q,),
        adjust_chunks={i: 1 for i in index},
        dtype=np.uint64,
        meta=np.empty((0,) * (ndim + 1), dtype=np.uint64),
        concatenate=True,
        ndim=ndim,
        declared=str(x.dtype),
        backend=backend,
        algorithm=algorithm,
        threads=threads,
        adapter=adapter,
        chunk_elements=chunk_elements,
        token="divgpu-partials",
    )
    sums = da.reduction(
        partials,
        chunk=_keep,
        combine=_checked_sum,
        aggregate=_checked_sum,
        axis=index,
        dtype=np.uint64,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,), dtype=np.uint64),
        name="divgpu-sum",
    )
    return sums.reshape(shape)
