"""Dimension names and their NGFF axis types.

Plain constants, kept apart from :mod:`voxzarr.coords` (which needs xarray) so that the light
modules (NGFF parsing, :mod:`voxzarr._locate`, ``voxzarr info``) can use them without
importing xarray. :mod:`voxzarr.coords` re-exports them.
"""

from __future__ import annotations

__all__ = ["DIM_ORDER", "SPATIAL", "AXIS_TYPES"]

DIM_ORDER: tuple[str, ...] = ("t", "c", "z", "y", "x")
SPATIAL: tuple[str, ...] = ("z", "y", "x")
AXIS_TYPES: dict[str, str] = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
