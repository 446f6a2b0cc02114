"""Registries through which a lower layer reaches an implementation that lives above it.

Imports in voxzarr only go down (``spec/architecture.md``). Where a lower layer must still
call into a higher one, the higher one is found by name here instead of imported: the package
facade (``voxzarr/__init__.py``) registers it as a lazy ``"module:attribute"`` reference,
loaded on first use, so the wiring costs no import at start-up and the lower layer never names
the higher one. Like zarr-python's ``zarr.registry``.

Registered today:

- :data:`HALO_DEPTH_RULES` ``"filter"``: turns the ``for_filter=`` spec of
  :func:`voxzarr.halo.write_halo` into a depth rule (:func:`voxzarr.filters.halo_depth_rule`);
  halo storage itself knows voxel depths only.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["HALO_DEPTH_RULES", "Registry"]


class Registry:
    """Named implementations, each an object or a lazy ``"module:attribute"`` reference.

    Parameters
    ----------
    what
        What the entries are, for messages (``"halo depth rule"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        """Register ``target`` (an object, or ``"module:attribute"`` to import on first use)."""
        self._entries[name] = target

    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported now if it was a reference)."""
        try:
            target = self._entries[name]
        except KeyError:
            raise LookupError(f"no {self.what} registered as {name!r}; "
                              f"registered: {sorted(self._entries)}") from None
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(import_module(module), attr)
            self._entries[name] = target
        return target

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)


#: ``name -> callable(spec) -> depth rule``; a depth rule maps ``(dims, voxel_size)`` of one
#: level to ``(depth per dim, boundary mode or None)`` (see :mod:`voxzarr.halo.store`)
HALO_DEPTH_RULES = Registry("halo depth rule")
