"""Run voxzarr's dask graphs on a ``dask.distributed`` cluster (the CLI's ``--scheduler`` /
``--workers``), and find the cluster client that is active (:func:`current_client`).

voxzarr never needs a cluster: every operation builds a dask graph that runs on whatever
scheduler is active. This helper only makes a ``distributed.Client`` the active scheduler for
the duration of one command and closes it (and a cluster it started) afterwards.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ArgumentError, DependencyError

__all__ = ["cluster", "current_client"]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DependencyError("needs the 'distributed' package: pip install 'voxzarr[distributed]'",
                              field="--scheduler/--workers") from None
    return distributed


def current_client() -> Any | None:
    """The ``distributed.Client`` that ``dask.compute`` would use here, or ``None``.

    ``dask.config`` wins, as in dask itself: inside ``dask.config.set(scheduler="threads")``
    there is no client even while one exists.
    """
    if "distributed" not in sys.modules:  # no client can exist; do not import it
        return None
    from dask.base import get_scheduler
    from distributed import Client

    try:
        scheduler = get_scheduler()
    except (RuntimeError, ValueError):
        return None
    owner = getattr(scheduler, "__self__", scheduler)  # dask hands out ``client.get``
    return owner if isinstance(owner, Client) else None


@contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None,
            threads_per_worker: int | None = None) -> Iterator[Any]:
    """Make a ``distributed.Client`` the active dask scheduler inside the ``with`` block.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (``tcp://host:8786``) or a scheduler file
        (``*.json``). Takes precedence over ``workers``.
    workers
        Start a local cluster of this many worker processes instead.
    threads_per_worker
        Threads of each local worker (default: the cores divided among the workers).

    Yields
    ------
    The client, or ``None`` when neither option is given (the local threaded scheduler
    stays in use).
    """
    if scheduler is None and workers is None:
        yield None
        return
    if workers is not None and workers < 1:
        raise ArgumentError(f"needs at least one worker, got {workers}", field="--workers")
    distributed = _distributed()
    local = None
    try:
        if scheduler is not None:
            if scheduler.endswith(".json"):
                client = distributed.Client(scheduler_file=scheduler)
            else:
                client = distributed.Client(scheduler)
        else:
            # no dashboard: it needs bokeh and a free port, neither of which a command has
            with warnings.catch_warnings():  # a busy default port is moved; say nothing
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                local = distributed.LocalCluster(n_workers=workers, processes=True,
                                                 threads_per_worker=threads_per_worker,
                                                 dashboard_address=None)
            client = distributed.Client(local)
    except (OSError, TimeoutError) as err:
        if local is not None:
            local.close()
        raise ArgumentError(f"cannot reach the dask scheduler ({type(err).__name__}: {err})",
                            path=scheduler, field="--scheduler") from None
    try:
        # current, not only default: a client already current in this context (a caller's
        # `with Client(...)`) would otherwise keep taking the work
        with client.as_current():
            yield client
    finally:
        client.close()
        if local is not None:
            local.close()
