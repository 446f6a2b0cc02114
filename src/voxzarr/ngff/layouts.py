"""voxzarr's own storage layouts: the one ``"voxzarr"`` attribute key and its versions.

All voxzarr-specific metadata lives under one attribute key, :data:`VOXZARR_KEY`, beside
(never inside) the ``"ome"`` key, so every NGFF reader still reads the data. Each layout
records ``{"layout": <name>, "version": "MAJOR.MINOR", ...}`` there:

=========  =========  ==============================================
layout     version    written down in
=========  =========  ==============================================
``halo``   ``"1.0"``  ``spec/halo.md`` (halo arrays and their group)
``series`` ``"0.1"``  ``spec/series.md`` (series stores)
=========  =========  ==============================================

Versions are written as ``"MAJOR.MINOR"`` strings; a reader accepts its own major version.
Halo arrays written before version strings record the integer ``1``, read as ``"1.0"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import MetadataError

__all__ = [
    "HALO_LAYOUT",
    "HALO_VERSION",
    "SERIES_LAYOUT",
    "SERIES_VERSION",
    "VOXZARR_KEY",
    "check_version",
    "parse_version",
    "voxzarr_attrs",
]

#: the attribute key holding every voxzarr-specific field, beside ``"ome"``
VOXZARR_KEY = "voxzarr"

HALO_LAYOUT = "halo"
HALO_VERSION = "1.0"
SERIES_LAYOUT = "series"
SERIES_VERSION = "0.1"


def voxzarr_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``"voxzarr"`` entry of a node's attributes (a copy; ``{}`` when absent or not a
    mapping)."""
    raw = attrs.get(VOXZARR_KEY)
    return dict(raw) if isinstance(raw, Mapping) else {}


def parse_version(value: Any) -> tuple[int, int] | None:
    """``(major, minor)`` of a recorded layout version: ``"0.1"``, ``"1.0"``, ``"1"`` or the
    integer ``1`` of early halo arrays; ``None`` when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value, 0) if value >= 0 else None
    if not isinstance(value, str):
        return None
    parts = value.split(".")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def check_version(value: Any, current: str, *, layout: str, path: object = None) -> str:
    """The recorded ``value`` as ``"MAJOR.MINOR"`` when this voxzarr reads it (same major
    version as ``current``), else a :class:`~voxzarr.errors.MetadataError` naming
    ``voxzarr.version``."""
    got = parse_version(value)
    want = parse_version(current)
    if got is None or want is None or got[0] != want[0]:
        raise MetadataError(f"{layout} layout version {value!r} is not supported (this "
                            f"voxzarr reads version {current})", path=path,
                            field=f"{VOXZARR_KEY}.version")
    return f"{got[0]}.{got[1]}"
