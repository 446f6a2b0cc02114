"""Argument checks of the interpolation API and the boundary-mode vocabulary.

Bad arguments raise the builtin error types scipy raises (see :mod:`voxzarr.errors`):
:class:`~voxzarr.errors.InterpolationArgumentError` where scipy raises ``RuntimeError``,
:class:`~voxzarr.errors.GeometryError` where it raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from ..errors import GeometryError, InterpolationArgumentError

#: boundary modes, as in scipy.ndimage (``grid-mirror`` is scipy's alias of ``reflect``)
MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror", "mirror", "wrap",
         "grid-wrap")
_WRAPS = ("wrap", "grid-wrap")
_REFLECTS = ("reflect", "grid-mirror", "mirror")


def _check_order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 0 <= order <= 5:
        raise InterpolationArgumentError(f"spline order must be an integer 0-5, got {order!r}",
                                         field="order")
    return int(order)


def _check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise InterpolationArgumentError(f"unknown boundary mode {mode!r}; choose one of {MODES}",
                                         field="mode")
    return "reflect" if mode == "grid-mirror" else str(mode)


def _as_dask(image: Any, min_ndim: int = 1) -> da.Array:
    arr = image if isinstance(image, da.Array) else da.asarray(image)
    if arr.ndim < min_ndim:  # scipy: RuntimeError('input and output rank must be > 0')
        raise InterpolationArgumentError("need an array of at least one dimension", field="image")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise GeometryError("complex images are not supported; transform .real and .imag "
                            "separately", field="image")
    return arr


def _check_sigma(sigma: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Per-axis smoothing sigmas as floats, or ``None`` when there is none to apply."""
    if sigma is None:
        return None
    sig = tuple(float(x) for x in sigma)
    if len(sig) != ndim or any(not np.isfinite(x) or x < 0 for x in sig):
        raise GeometryError(f"sigma needs {ndim} finite values >= 0, got {sig}",
                            field="sigma")
    return sig if any(sig) else None


def _resolve_output(output: Any, image: da.Array) -> np.dtype:
    if output is None:
        return np.dtype(image.dtype)
    if hasattr(output, "dtype") and not isinstance(output, type | np.dtype | str):
        raise GeometryError("output must be a dtype for dask arrays (results are new arrays)",
                            field="output")
    return np.dtype(output)


def _output_shape(output_shape: Any, image: da.Array) -> tuple[int, ...]:
    """The output shape; its rank may differ from the input's (the matrix maps between)."""
    if output_shape is None:
        return tuple(int(n) for n in image.shape)
    shape = tuple(int(n) for n in output_shape)
    if not shape:
        raise InterpolationArgumentError("output_shape needs at least one dimension",
                                         field="output_shape")
    if any(n < 0 for n in shape):
        raise GeometryError(f"output_shape {shape} has a negative length", field="output_shape")
    return shape
