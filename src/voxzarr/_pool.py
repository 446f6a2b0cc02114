"""The process-wide thread pool chunk codecs run on (Blosc releases the GIL).

Work submitted here never submits more work to the pool, so a read or write nested inside
a dask task (itself on a thread pool) cannot deadlock, and at most one pool's worth of extra
threads exists per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["cores", "pmap", "pool"]

T = TypeVar("T")
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()


def cores() -> int:
    """Cores this process may run on (CPU affinity and cgroup quota), as dask counts them."""
    from dask.system import CPU_COUNT

    return max(1, CPU_COUNT)


def pool() -> ThreadPoolExecutor:
    """The shared pool, one thread per core, created on first use."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(cores(), thread_name_prefix="voxzarr-codec")
        return _POOL


def pmap(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[fn(i) for i in items]``, on the pool when there is more than one item.

    ``fn`` must not itself call :func:`pmap`.
    """
    if len(items) <= 1:
        return [fn(i) for i in items]
    return list(pool().map(fn, items))
