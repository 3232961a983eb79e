"""Type stubs of the extension module divgpu._divgpu (built from python/src/lib.rs)."""

from typing import Iterable, List, Optional

import numpy as np
import numpy.typing as npt

MAX_THREADS: int
MIN_THRESHOLD: int
MAX_THRESHOLD: int

class DivgpuError(RuntimeError):
    """A GPU or runtime error: no adapter, a lost device, an array changed underneath."""

class Gpu:
    """A GPU opened once for a backend and an adapter, shared by many sessions."""

    def __init__(self, backend: str, adapter: Optional[str]) -> None: ...
    @property
    def adapter_json(self) -> Optional[str]: ...

class Session:
    def __init__(
        self,
        values: np.ndarray,
        backend: str,
        algorithm: str,
        threads: int,
        adapter: Optional[str],
        chunk_elements: Optional[int],
        keep_table: bool = True,
        gpu: Optional[Gpu] = None,
    ) -> None: ...
    def count_one(self, threshold: int, interruptible: bool) -> int: ...
    def count_seq(self, thresholds: Iterable[int], interruptible: bool) -> npt.NDArray[np.uint64]: ...
    def count_i64(self, thresholds: npt.NDArray[np.int64], interruptible: bool) -> npt.NDArray[np.uint64]: ...
    def count_u64(self, thresholds: npt.NDArray[np.uint64], interruptible: bool) -> npt.NDArray[np.uint64]: ...
    def __len__(self) -> int: ...
    @property
    def backend(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def threads(self) -> Optional[int]: ...
    @property
    def adapter_json(self) -> Optional[str]: ...
    @property
    def has_table(self) -> bool: ...
    @property
    def notes(self) -> List[str]: ...

def devices_json() -> str: ...
