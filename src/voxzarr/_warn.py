"""Warnings attributed to the caller's own line, however deep inside voxzarr they start.

One call may reach the same warning through an accessor, a wrapper or the xarray backend at
different depths, so a fixed ``stacklevel`` would point into a library: :func:`warn` walks
up to the first frame outside the named packages.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn"]


def warn(message: str, category: type[Warning] = UserWarning, *,
         skip: tuple[str, ...] = ("voxzarr",)) -> None:
    """Warn, attributed to the first caller whose top-level package is not in ``skip``."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] \
            in skip:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
