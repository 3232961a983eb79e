"""divgpu: sums of divisor counts over a numpy array, for many thresholds, on the GPU or the CPU.

For an integer array ``A`` and a threshold ``n``, ``count(n)`` is the sum of ``c(x)`` over the
elements ``x <= n``, where ``c(x)`` is the number of divisors of ``x`` (and 1 for every
``x <= 1``). Results are exact unsigned 64-bit integers.

    >>> import numpy as np, divgpu
    >>> index = divgpu.Index(np.arange(11))
    >>> index.count(10)          # 0 and 1 count 1 each; d(2) + ... + d(10) = 26
    28
    >>> index.count([1, 5, 10])
    array([ 2, 11, 28], dtype=uint64)

An :class:`Index` reads the array in place, uploads it to the GPU once, and answers any number
of counts, from any number of threads.
"""

from __future__ import annotations

import json
import operator
import os
import threading
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _progress
from ._divgpu import (
    MAX_THREADS,
    DivgpuError,
    Session,
    check_threads,
    devices_json,
    forked_from,
    nulls_message,
    thresholds_of,
)

__all__ = ["DivgpuError", "Index", "count", "devices"]
__version__ = "0.1.0"

# How many live Indexes hold each array read-only, and whether it was writeable before the first.
_locks: Dict[int, List[Any]] = {}
_locks_guard = threading.Lock()


def _after_fork_in_child() -> None:
    # another thread of the parent may have held the guard at the fork; that thread is gone
    global _locks_guard
    _locks_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _chain(values: np.ndarray) -> List[np.ndarray]:
    """The array and every ndarray it is a view of: the arrays a write could come through."""
    arrays = []
    a: Any = values
    while isinstance(a, np.ndarray):
        arrays.append(a)
        a = a.base
    return arrays


def _lock(arrays: List[np.ndarray]) -> None:
    with _locks_guard:
        for a in arrays:
            entry = _locks.get(id(a))
            if entry is None:
                _locks[id(a)] = [1, bool(a.flags.writeable)]
                a.flags.writeable = False
            else:
                entry[0] += 1


def _unlock(arrays: List[np.ndarray]) -> None:
    with _locks_guard:
        # bases first: numpy makes a view writeable only over a writeable base
        for a in reversed(arrays):
            entry = _locks.get(id(a))
            if entry is None:
                continue
            entry[0] -= 1
            if entry[0] == 0:
                del _locks[id(a)]
                if entry[1]:
                    try:
                        a.flags.writeable = True
                    except ValueError:
                        pass


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Index:
    """Divisor-count sums over one integer array, for any number of queries.

    ``Index(values, *, backend="auto", algorithm="fast", threads=None, adapter=None,
    chunk_elements=None, index_memory=None, build_index=False)``

    values
        A numpy array of any integer dtype (int8 ... uint64, either byte order, any shape, read
        flat in C order), ``np.memmap`` included. A C-contiguous array is read in place (no
        copy in host memory); misaligned and strided arrays are read in place too, a block at
        a time. Also read in place: Arrow integer arrays from any object with the Arrow
        PyCapsule interface (a pyarrow ``Array`` or ``ChunkedArray``, a polars ``Series``:
        chunk by chunk, never joined), pandas Series (numpy-backed, Arrow-backed or nullable)
        and objects with ``__dlpack__`` in host memory. Nulls raise ``ValueError`` (with their
        count and the first one's index). Anything else ``np.asarray`` turns into an array.
        On the GPU the array is uploaded once.
    backend
        ``"auto"`` (a hardware GPU if there is one, else the CPU), ``"gpu"``, ``"cpu"``, or
        ``"both"`` (both, compared: a disagreement raises :class:`DivgpuError`).
    algorithm
        ``"fast"`` (the first count builds the Index's value index, and every later count is a
        binary search per threshold: see :meth:`stats`) or ``"naive"`` (the original post's
        loop, once per threshold, every count).
    threads
        CPU threads for each count, ``None`` for one per core (at most ``MAX_THREADS``). With
        ``threads=1`` each count runs on a thread of its own, so that counts from several
        Python threads use several cores.
    adapter
        Use this GPU adapter: its number (an ``int``, or a ``str`` of digits) or PCI bus id as
        ``divgpu.devices()`` lists them, or part of its name. Without it, ``CUDA_VISIBLE_DEVICES``
        (or ``NVIDIA_VISIBLE_DEVICES``) chooses among NVIDIA GPUs where it is set, as it does for
        CUDA; a ``RuntimeWarning`` says so where divgpu cannot map it to an adapter.
    chunk_elements
        Elements per GPU buffer (default: the most the adapter allows).
    index_memory
        The most bytes the value index may keep (``None``: no limit). The index takes at most
        16 bytes per distinct value (12 for arrays of 32 bits or fewer); an array whose index
        would take more is counted by a pass over it on every count.
    build_index
        Build the value index now, rather than on the first count (``algorithm="fast"`` and a
        backend other than ``"both"`` only, which compares both backends' passes every count).
    progress
        Show the progress of long work (a pass over the array, counting the value index's
        values, at construction with ``build_index=True`` and in :meth:`count` and
        :meth:`save`): ``True`` shows a tqdm bar on stderr where tqdm is installed, else a line
        on stderr every 2 seconds, and nothing for work done within a second; a callable is
        called as ``progress(done, total)`` about 20 times a second while the work advances
        and once at its end (``total`` counts the units of one stage: elements passed over, or
        distinct values counted; a new stage starts from 0), on the thread that waits for the
        work, and an exception it raises stops the work and is raised; ``False`` (the
        default): nothing.

    Writing to the array: the Index answers for the values the array held when it was built.
    To keep that true it makes the array, and every array it is a view of, read-only while any
    Index on it lives (a write raises numpy's ``ValueError``); :meth:`close`, or the last
    Index's deletion, restores the flag. An array made writeable again by hand makes
    :meth:`count` raise :class:`DivgpuError`. Writes through a view taken before the Index was
    built, or through another process's mapping of a file, are not seen: copy such an array
    first (``np.array(values)``).

    Errors: ``TypeError`` for a non-integer array or a threshold that is not an int;
    ``ValueError`` for an option out of range, an empty threshold list or a threshold outside
    [-2**63, 2**64); :class:`DivgpuError` for GPU and runtime errors; ``KeyboardInterrupt``
    when Ctrl-C arrives during a count on the main thread.
    """

    __slots__ = (
        "_session",
        "_values",
        "_locked",
        "_file",
        "_threads",
        "_progress",
        "__weakref__",
    )

    _session: Optional[Session]
    # the index file this Index was loaded from or last saved to, and its fingerprint
    _file: Optional[Tuple[str, int]]

    def __init__(
        self,
        values: Any,
        *,
        backend: str = "auto",
        algorithm: str = "fast",
        threads: Optional[int] = None,
        adapter: Optional[Union[str, int]] = None,
        chunk_elements: Optional[int] = None,
        index_memory: Optional[int] = None,
        build_index: bool = False,
        progress: Any = False,
    ) -> None:
        self._session = None
        self._locked: List[np.ndarray] = []
        self._file = None
        # checked now: an error here, not at the first count
        _progress.close(_progress.callback(progress, "count"))
        self._progress = progress
        values, writable = _input(values)
        if isinstance(values, np.ndarray) and values.dtype.kind not in "iu":
            raise TypeError(
                f"divgpu counts arrays of integers (int8 ... uint64); this one is {values.dtype}"
            )
        adapter = _adapter_option(adapter)
        threads, chunk_elements = _check_options(
            backend, algorithm, threads, adapter, chunk_elements
        )
        index_memory = _size_option("index_memory", index_memory)
        if not isinstance(build_index, (bool, np.bool_)):
            raise TypeError(f"build_index must be a bool, not {type(build_index).__name__}")
        # a numpy array (or the numpy array under a pandas Series) is made read-only while the
        # Index lives; Arrow arrays are immutable
        arrays = _chain(writable) if writable is not None else []
        _lock(arrays)
        try:
            session = Session(
                values,
                backend,
                algorithm,
                threads or 0,
                adapter,
                chunk_elements,
                index_memory=index_memory,
            )
            if build_index:
                shown = self._progress_for(None, "index")
                try:
                    session.build_index(_is_main_thread(), shown)
                finally:
                    _progress.close(shown)
        except BaseException:
            _unlock(arrays)
            raise
        self._session = session
        self._values = values
        self._locked = arrays
        self._threads = threads
        if session.choice_note is not None:
            warnings.warn(f"divgpu: {session.choice_note}", RuntimeWarning, stacklevel=2)
        parent = forked_from()
        if backend == "auto" and session.backend == "cpu" and parent is not None:
            warnings.warn(
                f"divgpu: counting on the CPU: this process was forked from process {parent} "
                "after that one had opened a GPU, and GPU drivers do not survive a fork (start "
                "workers with 'spawn' or 'forkserver' to count on the GPU there)",
                RuntimeWarning,
                stacklevel=2,
            )

    def count(self, thresholds: Any, *, progress: Any = None) -> Any:
        """The sum of c(x) over the elements ``x <= n``, for each threshold ``n``.

        An ``int`` (or numpy integer) gives an ``int``; a sequence or an array of ints gives a
        ``numpy.ndarray`` of ``uint64`` in the same order (and an array's shape). Thresholds
        are any integers in [-2**63, 2**64). The GIL is released while counting.

        ``progress``: as the Index's option, for this count (``None``: the Index's).
        """
        session = self._check()
        shown = self._progress_for(progress, "count")
        try:
            return _count(session, thresholds, _is_main_thread(), shown)
        finally:
            _progress.close(shown)

    def _progress_for(self, progress: Any, what: str) -> Any:
        return _progress.callback(self._progress if progress is None else progress, what)

    def save(self, path: Union[str, "os.PathLike[str]"], *, progress: Any = None) -> None:
        """Saves the value index to ``path`` (by convention ``.divi``), building it first, every
        value counted, where it is not yet. The file is written beside ``path``, synced, then
        renamed into place: a reader sees the old file or the new one, never part of one.
        :meth:`Index.load` (in any process) and ``divgpu -i PATH`` answer from it, mapped.
        ``ValueError`` for an Index with no index (``algorithm="naive"``, ``backend="both"``);
        :class:`DivgpuError` for one over ``index_memory``, or a file that cannot be written.

        Once saved, the Index pickles as the file's path (see :meth:`load`). ``progress``: as
        the Index's option, for the counting the save does (``None``: the Index's)."""
        session = self._check()
        path = os.path.abspath(os.fspath(path))
        shown = self._progress_for(progress, "index")
        try:
            fingerprint = session.save(path, _is_main_thread(), shown)
        finally:
            _progress.close(shown)
        self._file = (path, fingerprint)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"], *, threads: Optional[int] = None) -> "Index":
        """An Index that answers from a saved index file, exactly as the Index that saved it.

        The file is memory-mapped, not read: processes that load one file share one copy of it
        in the page cache. Its header is checked now, and each block of it when a count first
        reads it; a file that is truncated, damaged, not an index or of a newer format raises
        :class:`DivgpuError`, and so does a count that reads a damaged block. The Index has no
        array: ``backend`` is ``"cpu"`` and every count is look-ups.

        Pickling: an Index loaded from a file, or saved to one, pickles as the file's absolute
        path, its fingerprint and ``threads``, so ``multiprocessing`` and
        ``concurrent.futures.ProcessPoolExecutor`` workers, started by any method, each map the
        same file. A worker that finds a different file at that path (rewritten since)
        raises :class:`DivgpuError` rather than answer from it.
        """
        return cls._load(path, threads, None)

    @classmethod
    def _load(cls, path: Any, threads: Any, fingerprint: Optional[int]) -> "Index":
        threads = _threads_option(threads)
        path = os.path.abspath(os.fspath(path))
        session = Session.load(path, threads or 0)
        found = session.file_fingerprint
        if fingerprint is not None and found != fingerprint:
            raise DivgpuError(
                f"{path}: not the index file this Index was pickled from (it was rewritten "
                "since): pickle the Index again"
            )
        index = cls.__new__(cls)
        index._locked = []
        index._values = None
        index._threads = threads
        index._progress = False
        index._file = (path, found)
        index._session = session
        return index

    def __reduce__(self) -> Any:
        self._check()
        if self._file is None:
            raise TypeError(
                "a divgpu.Index over an array in memory does not pickle (that would copy the "
                "array): save it first (index.save('values.divi')), then pickle it or pass it "
                "to workers, and each maps the file (see Index.load)"
            )
        path, fingerprint = self._file
        return (_unpickle, (path, self._threads, fingerprint))

    def stats(self) -> Dict[str, Any]:
        """Where the Index's value index stands, as a dict:

        ``index``
            ``"ready"`` (every count is a binary search per threshold), ``"not built"`` (the
            next ``fast`` count builds it), ``"over memory"`` (it would take more than
            ``index_memory``: every count is a pass over the array) or ``"off"``
            (``algorithm="naive"`` or ``backend="both"``: every count is a pass).
        ``kind``
            ``"dense"`` (one sum per value of the array's range: values spanning at most
            2**22, up to 2**24, on the CPU), ``"sorted"`` (the distinct values and their
            running sums) or ``"file"`` (a saved index, mapped: :meth:`load`), or ``None``.
        ``elements``, ``distinct``, ``counted``, ``bytes``, ``build_seconds``
            The array's length; the distinct values and how many of them have their ``c(x)``
            computed so far (a sorted index computes them, from the smallest, as far as the
            largest threshold asked: a later count that reaches further computes the rest it
            needs first; ``build_index=True`` computes them all); the bytes the index keeps and
            the time its build took, or ``None``.
        ``index_memory``
            The limit given, or ``None``.
        ``message``
            One line saying the same.
        """
        return self._check().index_stats()

    def _check(self) -> Session:
        if self._session is None:
            raise DivgpuError("this Index is closed")
        for a in self._locked:
            if a.flags.writeable:
                raise DivgpuError(
                    "the array was made writeable again after the Index was built; its "
                    "answers could mix old and new values: build a new Index"
                )
        return self._session

    def close(self) -> None:
        """Frees the GPU buffers and the CPU table, and gives the array back its write flag."""
        self._session = None
        locked, self._locked = self._locked, []
        if locked:
            _unlock(locked)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return len(self._check())

    @property
    def backend(self) -> str:
        """``"gpu"``, ``"cpu"`` or ``"both"``: where the counts run (``"auto"`` resolved)."""
        return self._check().backend

    @property
    def algorithm(self) -> str:
        """``"fast"`` or ``"naive"``."""
        return self._check().algorithm

    @property
    def adapter(self) -> Optional[Dict[str, str]]:
        """The GPU adapter (name, backend, device_type, driver), or None on the CPU."""
        text = self._check().adapter_json
        return None if text is None else json.loads(text)

    @property
    def threads(self) -> Optional[int]:
        """CPU threads per count; None when only the GPU counts."""
        return self._check().threads

    def __repr__(self) -> str:
        if self._session is None:
            return "<divgpu.Index (closed)>"
        where = self.backend
        if self.adapter is not None:
            where += f" on {self.adapter['name']}"
        return f"<divgpu.Index of {len(self)} elements, {self.algorithm}, {where}>"


def _input(values: Any) -> Tuple[Any, Optional[np.ndarray]]:
    """What the extension reads of `values`, without a copy where its layout allows (a numpy
    array, or an object with the Arrow PyCapsule interface, read in place chunk by chunk), and
    the numpy array whose memory it reads, to lock against writes (None for Arrow memory)."""
    if isinstance(values, np.ndarray):
        return values, values
    if type(values).__module__.partition(".")[0] == "pandas":
        if isinstance(getattr(values, "dtype", None), np.dtype):
            # numpy-backed: its array, not a copy
            array = values.to_numpy()
            if array.dtype.kind == "f":
                # pandas' missing ints without a nullable dtype: NaN in a float64 Series
                missing = np.flatnonzero(np.isnan(array))
                if len(missing):
                    raise ValueError(nulls_message(len(missing), int(missing[0])))
            return array, array
        # Arrow-backed, or nullable (masked): as Arrow, where pandas exports it. A masked
        # array's values stay in its own writable numpy array, which pyarrow wraps without a
        # copy: that one is locked
        data = getattr(getattr(values, "array", None), "_data", None)
        writable = data if isinstance(data, np.ndarray) else None
        if not hasattr(values, "__arrow_c_stream__"):
            array = getattr(values, "array", None)
            if hasattr(array, "__arrow_array__"):
                return array.__arrow_array__(), writable
        return values, writable
    if hasattr(values, "__arrow_c_array__") or hasattr(values, "__arrow_c_stream__"):
        return values, None
    if hasattr(values, "__dlpack__"):
        try:
            array = np.from_dlpack(values)
        except (BufferError, RuntimeError, TypeError, ValueError) as e:
            raise TypeError(f"divgpu reads DLPack arrays in host memory only: {e}") from None
        return array, array
    array = np.asarray(values)
    return array, array


def _count(session: Session, t: Any, main: bool, shown: Any) -> Any:
    """`Index.count` on `session`, for each kind of threshold (see there)."""
    flat, shape = _thresholds(t)
    if shape == ():
        return session.count_one(flat, main, shown)
    if flat.dtype == object:
        return session.count_seq(flat, main, shown).reshape(shape)
    return session.count_array(flat, main, shown).reshape(shape)


def _thresholds(t: Any) -> Tuple[Any, Tuple[int, ...]]:
    """The one classification of thresholds, for `Index.count` and `divgpu.dask`: a single int
    (the answer's shape is then ``()``), or a flat int64, uint64 or (ints that neither holds)
    object array, and the answer's shape. Every element of a sequence or an object array is
    checked by the extension (`thresholds_of`: an int, not a bool, in [-2**63, 2**64)); a
    single int is checked by the count (`count_one`, or `thresholds_of` in divgpu.dask)."""
    if type(t) is int:  # the common case first (a bool's type is bool)
        return t, ()
    if isinstance(t, (bool, np.bool_)):
        raise TypeError("a threshold is an int, not a bool")
    if isinstance(t, (int, np.integer)):
        return int(t), ()
    if isinstance(t, np.ndarray):
        if t.dtype.kind in "iu":
            dtype = np.int64 if t.dtype.kind == "i" else np.uint64
            flat = np.ascontiguousarray(t, dtype=dtype).reshape(-1)
            return (int(flat[0]), ()) if t.ndim == 0 else (flat, t.shape)
        if t.dtype.kind != "O":
            raise TypeError(f"thresholds must be integers, not an array of {t.dtype}")
        if t.ndim == 0:
            return _thresholds(t.item())
        return thresholds_of(t.reshape(-1).tolist()), t.shape
    if isinstance(t, (str, bytes, bytearray, float, complex)):
        raise TypeError(f"thresholds must be an int or a sequence of ints, not {type(t).__name__}")
    try:
        iter(t)
    except TypeError:
        raise TypeError(
            f"thresholds must be an int or a sequence of ints, not {type(t).__name__}"
        ) from None
    flat = thresholds_of(t)
    return flat, flat.shape


def _unpickle(path: str, threads: Optional[int], fingerprint: int) -> Index:
    return Index._load(path, threads, fingerprint)


def _check_options(
    backend: Any, algorithm: Any, threads: Any, adapter: Any, chunk_elements: Any
) -> Tuple[Optional[int], Optional[int]]:
    """The options' types, and `threads` and `chunk_elements` as ints in range (or None), for
    an Index and for divgpu.dask. The backend's and algorithm's names are the core's to check."""
    for name, value in (("backend", backend), ("algorithm", algorithm)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if adapter is not None and not isinstance(adapter, str):
        raise TypeError(f"adapter must be a str or None, not {type(adapter).__name__}")
    return _threads_option(threads), _count_option("chunk_elements", chunk_elements)


def _adapter_option(adapter: Any) -> Optional[str]:
    """An adapter's number (an int) as the core takes it, a str as it is, or None."""
    if isinstance(adapter, (int, np.integer)) and not isinstance(adapter, (bool, np.bool_)):
        if adapter < 0:
            raise ValueError(f"adapter must be a number from 0, not {adapter}")
        return str(int(adapter))
    if adapter is not None and not isinstance(adapter, str):
        raise TypeError(f"adapter must be an int, a str or None, not {type(adapter).__name__}")
    return adapter


def _threads_option(threads: Any) -> Optional[int]:
    """`threads` as an int from 1 to the core's limit (`check_threads`), or None."""
    threads = _count_option("threads", threads)
    if threads is not None:
        check_threads(threads)
    return threads


def _int_option(name: str, value: Any) -> Optional[int]:
    """`value` as an int (anything with ``__index__``, not a bool), or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or None, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}") from None


def _count_option(name: str, value: Any) -> Optional[int]:
    """A count of at least 1, or None."""
    value = _int_option(name, value)
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def _size_option(name: str, value: Any) -> Optional[int]:
    """A byte count in [0, 2**64), or None."""
    value = _int_option(name, value)
    if value is not None and not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), not {value}")
    return value


def count(values: Any, thresholds: Any, **options: Any) -> Any:
    """``Index(values, **options).count(thresholds)`` in one call; the array's write flag is
    as it was afterwards."""
    with Index(values, **options) as index:
        return index.count(thresholds)


def devices() -> List[Dict[str, Any]]:
    """Every GPU adapter wgpu sees, as ``divgpu devices --json`` prints them."""
    return json.loads(devices_json())
