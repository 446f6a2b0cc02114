"""Run a write's dask graphs so that no task is still writing once an error leaves the write.

dask re-raises the first failing task at once while other tasks may still be writing. Local
writes go to a hidden folder that is removed on error, so every task must have stopped
before that happens:

* on the local threaded scheduler the graph runs on a thread pool that is joined (queued
  tasks cancelled, running ones finished) on the way out;
* when a ``dask.distributed`` Client is the active scheduler, the graph runs on its cluster;
  on an error the pending tasks are cancelled and the call returns only once no task of the
  graph is still executing on any worker.

Either way a failed write raises only after its tasks have stopped, and the caller's
cleanup (or metadata-last rule, on object storage) leaves no complete-looking dataset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import dask
from dask.core import flatten
from dask.utils import ensure_dict

from .._cluster import current_client

__all__ = ["joined_pool", "current_client", "JoinedClient"]

#: local schedulers that already stop every task before an error leaves them
_SELF_JOINING = {"sync", "synchronous", "single-threaded", "processes", "multiprocessing"}
#: how often the workers are asked whether a cancelled task is still running (seconds)
_POLL_S = 0.05


def _running_keys(dask_worker: Any = None) -> list:
    """Keys of the tasks executing on this worker (run there by ``Client.run``); a
    cancelled task stays in these sets until its thread returns."""
    state = dask_worker.state
    return [ts.key for ts in (*state.executing, *getattr(state, "long_running", ()))]


class JoinedClient:
    """A dask scheduler (``scheduler=JoinedClient(client)``) that runs graphs on ``client``
    and, when a task fails, returns only after every task of the graph has stopped."""

    def __init__(self, client: Any):
        self.client = client

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        from distributed import as_completed

        futures = self.client.get(dsk, keys, sync=False, **kwargs)
        flat = [f for f in flatten([futures]) if hasattr(f, "key")]
        failed = None
        done = as_completed(flat)
        try:
            for f in done:
                if f.status == "error":
                    failed = f
                    break
        except BaseException:  # an interrupt too: stop the graph before leaving
            self._join(dsk, flat)
            raise
        finally:
            done.clear()
        if failed is not None:
            self._join(dsk, flat)
            failed.result()  # raises the task's own error
        return self.client.gather(futures)

    def _join(self, dsk: Any, futures: list) -> None:
        """Cancel what has not run and wait until no task of ``dsk`` executes anywhere."""
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        keys = set(ensure_dict(graph))
        self.client.cancel([f for f in futures if f.status not in ("finished", "error")])
        while any(k in keys for running in self.client.run(_running_keys).values()
                  for k in running):
            time.sleep(_POLL_S)


@contextmanager
def joined_pool(num_workers: int | None = None) -> Iterator[None]:
    """Run the dask computations inside the block so that none outlives a failure.

    With an active ``distributed`` Client they run on its cluster through
    :class:`JoinedClient`; otherwise on the threaded scheduler (or the local scheduler the
    configuration names) with a thread pool joined on the way out. The pool also serves any
    computation that asks for ``scheduler="threads"`` explicitly (writes to a store living
    in this process only), client or not.
    """
    client = current_client()
    chosen = dask.config.get("scheduler", None)
    if client is None and isinstance(chosen, str) and chosen.lower() in _SELF_JOINING:
        yield
        return
    pool = ThreadPoolExecutor(num_workers or os.cpu_count() or 1,
                              thread_name_prefix="voxzarr-convert")
    scheduler = JoinedClient(client) if client is not None else (chosen or "threads")
    try:
        with dask.config.set(pool=pool, scheduler=scheduler):
            yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
