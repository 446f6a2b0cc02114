"""Progress bars for dask computations (tqdm), switched off in CI and when asked.

On the local schedulers a dask callback counts tasks; when a ``dask.distributed`` client is
the active scheduler, a scheduler plugin (:mod:`voxzarr._dprogress`) counts the tasks this
client submitted and a thread polls it, so ``--scheduler`` runs show the same bar.

Every public function that shows progress takes one keyword, ``progress=`` (``None``: on for
an interactive terminal, off under CI). The older spelling ``progress_bar=`` is still
accepted, with a ``DeprecationWarning``, through :func:`progress_keyword`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from dask.callbacks import Callback
from tqdm.auto import tqdm

from ._warn import warn

__all__ = ["progress", "progress_keyword", "want_progress"]

F = TypeVar("F", bound=Callable[..., Any])


def progress_keyword(fn: F) -> F:
    """Let ``fn(..., progress=...)`` also be called with the old ``progress_bar=``.

    The old keyword is renamed with a ``DeprecationWarning`` (pointing at the caller's
    line); giving both is an :class:`~voxzarr.errors.ArgumentError`. The one place
    where this rule lives: every public function with a progress bar uses it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "progress_bar" in kwargs:
            old = kwargs.pop("progress_bar")
            if kwargs.get("progress") is not None:
                from .errors import ArgumentError

                raise ArgumentError("give progress= only (progress_bar= is its old "
                                    "name)", field="progress_bar")
            warn(f"{fn.__name__}(progress_bar=...) is deprecated; use progress=",
                 DeprecationWarning)
            kwargs["progress"] = old
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def want_progress(flag: bool | None) -> bool:
    """``flag`` if given, else on for an interactive terminal and off under CI."""
    if flag is not None:
        return flag
    return sys.stderr.isatty() and not os.environ.get("CI")


class _TqdmCallback(Callback):
    def __init__(self, desc: str):
        super().__init__()
        self._desc = desc
        self._bar: tqdm | None = None

    def _start_state(self, dsk, state):  # noqa: D401 - dask hook
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, desc=self._desc, unit="task", leave=False)

    def _posttask(self, key, result, dsk, state, worker_id):
        if self._bar is not None:
            self._bar.update(1)

    def _finish(self, dsk, state, errored):
        if self._bar is not None:
            self._bar.close()


#: seconds between polls of the scheduler's task counts
_POLL_S = 0.5


@contextmanager
def _cluster_bar(client: Any, desc: str, poll_s: float = _POLL_S) -> Iterator[tqdm]:
    """A bar fed by the cluster scheduler's count of this client's tasks."""
    from ._dprogress import TaskCounter, counts

    me = client.id
    bar = tqdm(total=0, desc=desc, unit="task", leave=False)
    try:
        client.register_plugin(TaskCounter())  # idempotent: one counter per scheduler
        start_total, start_done = client.run_on_scheduler(counts, client=me)
    except Exception as exc:  # e.g. a scheduler without voxzarr installed: work goes on
        bar.write(f"{desc}: no progress from this cluster ({type(exc).__name__})")
        bar.close()
        yield bar
        return
    stop = threading.Event()

    def update() -> None:
        total, done = client.run_on_scheduler(counts, client=me)
        bar.total = max(total - start_total, 0)
        bar.n = min(max(done - start_done, 0), bar.total)
        bar.refresh()

    def poll() -> None:
        while not stop.wait(poll_s):
            try:
                update()
            except Exception:  # a bar must never break the work it shows
                return

    thread = threading.Thread(target=poll, name="voxzarr-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
        try:
            update()
        except Exception:
            pass
        bar.close()


@contextmanager
def progress(desc: str, enabled: bool | None = None) -> Iterator[None]:
    """Show a tqdm bar for the dask computations run inside the block, on the local
    schedulers or on the active ``dask.distributed`` client's cluster."""
    if not want_progress(enabled):
        yield
        return
    from ._cluster import current_client

    client = current_client()
    if client is not None:
        with _cluster_bar(client, desc):
            yield
        return
    with _TqdmCallback(desc):
        yield
