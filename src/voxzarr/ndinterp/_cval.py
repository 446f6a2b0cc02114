"""scipy's own sums where every spline tap of a point is ``cval`` (``grid-constant``).

Integer outputs round such points with the last bits of scipy's weights when ``cval`` is a
rounding tie; chunks cannot see those bits, so these helpers recompute the points from their
global coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as _scipy_ndimage

from ._dtypes import _cast
from ._matrix import _global_coords
from ._taps import _NPAD


def _near_tie(cval: float) -> bool:
    """Whether ``cval`` sits on a rounding tie of integer outputs (``k + 0.5``)."""
    return abs(abs(cval) % 1.0 - 0.5) <= 1e-12 * max(1.0, abs(cval))


def _needs_cval_fix(mode: str, order: int, dtype: np.dtype, cval: float) -> bool:
    """Whether integer results need scipy's own cval-only sums (:func:`_cval_only`)."""
    return mode == "grid-constant" and order > 0 and dtype.kind in "iu" and _near_tie(cval)


def _cval_only(coords: np.ndarray, n_in: Sequence[int], order: int, cval: float,
               prefilter: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """scipy's values at the points whose spline taps all lie outside the input (grid-constant).

    scipy sums ``cval * weights`` there, and the weights add up to 1 only within rounding, so
    at a tie cval (``k + 0.5``) an integer result rounds up or down with the weights' last
    bits. Chunks fill such points with ``cval`` or weigh them from region-local coordinates,
    so this recomputes them from the global ``coords`` (``(ndim, ...)``), by scipy itself on
    a zero-stride stand-in for the (pre-padded) input. ``None`` where no point is affected.
    """
    pad = _NPAD if prefilter and order > 1 else 0
    cc = coords + float(pad)  # the same double addition as scipy's ``icoor + nprepad``
    mask = np.zeros(coords.shape[1:], dtype=bool)
    for a, n in enumerate(n_in):
        first = np.floor(cc[a] if order % 2 else cc[a] + 0.5) - order // 2
        mask |= (first + order < 0) | (first >= n + 2 * pad)
    if not mask.any():
        return None
    stand_in = np.broadcast_to(np.zeros((), dtype=np.float64), tuple(n + 2 * pad for n in n_in))
    values = _scipy_ndimage.map_coordinates(stand_in, cc[:, mask], order=order,
                                            mode="grid-constant", cval=cval, prefilter=False,
                                            output=np.float64)
    return mask, values


def _affine_cval_fix(block: Any, matrix: np.ndarray, offset: np.ndarray, n_in: tuple[int, ...],
                     order: int, cval: float, prefilter: bool, dtype: np.dtype,
                     shift_first: bool, planes: tuple[int, ...] | None,
                     block_info: Any = None) -> Any:
    """Put scipy's cval-only sums (:func:`_cval_only`) into one output chunk."""
    if not isinstance(block, np.ndarray) or block.size == 0:
        return block  # CuPy results agree with scipy within float32 rounding anyway
    start = tuple(int(a) for a, _ in block_info[None]["array-location"])
    coords = _global_coords(np, matrix, offset, start, block.shape, shift_first)
    axes = list(range(len(n_in))) if planes is None else list(planes)
    found = _cval_only(coords[axes], [n_in[a] for a in axes], order, cval, prefilter)
    if found is None:
        return block
    block = block.copy()
    block[found[0]] = _cast(found[1], dtype)
    return block


def _map_cval_fix(block: Any, coords: Any, n_in: tuple[int, ...], order: int, cval: float,
                  prefilter: bool, dtype: np.dtype) -> Any:
    """:func:`_affine_cval_fix` for one chunk of :func:`map_coordinates`."""
    if not isinstance(block, np.ndarray) or block.size == 0:
        return block
    found = _cval_only(np.asarray(coords, dtype=np.float64), n_in, order, cval, prefilter)
    if found is None:
        return block
    block = block.copy()
    block[found[0]] = _cast(found[1], dtype)
    return block
