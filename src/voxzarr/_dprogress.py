"""Progress of dask work on a ``dask.distributed`` cluster, counted on its scheduler.

dask's local callbacks see nothing of a graph that runs on a cluster, so a small scheduler
plugin counts, per client, the tasks that client submitted and how many of them have
finished; :func:`voxzarr._progress.progress` polls it from a thread and drives the bar.
This module is imported on the scheduler: keep it free of heavy imports.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["TaskCounter", "PLUGIN_NAME", "counts"]

PLUGIN_NAME = "voxzarr-progress"
_DONE = {"memory", "erred", "forgotten", "released"}


class TaskCounter(SchedulerPlugin):
    """Count tasks per client: ``total`` submitted, ``done`` finished (or dropped)."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.owner: dict[Any, str] = {}
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def update_graph(self, scheduler: Any, *, client: str, tasks: Any = (), **kwargs: Any
                     ) -> None:
        for key in tasks:
            if key not in self.owner:
                self.owner[key] = client
                self.total[client] = self.total.get(client, 0) + 1

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish in _DONE and start not in _DONE:
            client = self.owner.pop(key, None)
            if client is not None:
                self.done[client] = self.done.get(client, 0) + 1

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.total.pop(client, None)
        self.done.pop(client, None)
        for key in [k for k, c in self.owner.items() if c == client]:
            del self.owner[key]


def counts(dask_scheduler: Any, client: str) -> tuple[int, int]:
    """``(total, done)`` for ``client`` (run on the scheduler by ``Client.run_on_scheduler``)."""
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is None:
        return 0, 0
    return plugin.total.get(client, 0), plugin.done.get(client, 0)
