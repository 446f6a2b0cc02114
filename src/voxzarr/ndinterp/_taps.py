"""Spline facts shared by the planners: support, prefilter depth and 1-D taps.

:func:`taps_1d` reproduces scipy's coordinate mapping and tap weights along one axis (orders
0 and 1), which the separable path applies axis by axis; :func:`_map_coordinate` is scipy's
mapping of out-of-range coordinates, vectorised, which the sparse-point planner
(:mod:`._points`) uses too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import GeometryError
from ._checks import _check_mode, _check_order

#: relative error the chunked spline prefilter may leave (float32 resolves 6e-8)
PREFILTER_TOL = 1e-8
# scipy pre-pads the input by 12 voxels before the prefilter in these modes
_PREPAD_MODES = ("nearest", "grid-constant")
_NPAD = 12
# a coordinate this far outside the image (12 pad voxels plus the widest spline half-support)
# reads only the outermost padded coefficients: the result no longer depends on it
_PAD_REACH = _NPAD + 3


_POLES: dict[int, tuple[float, ...]] = {
    0: (),
    1: (),
    2: (math.sqrt(8.0) - 3.0,),
    3: (math.sqrt(3.0) - 2.0,),
    4: (math.sqrt(664.0 - math.sqrt(438976.0)) + math.sqrt(304.0) - 19.0,
        math.sqrt(664.0 + math.sqrt(438976.0)) - math.sqrt(304.0) - 19.0),
    5: (math.sqrt(67.5 - math.sqrt(4436.25)) + math.sqrt(26.25) - 6.5,
        math.sqrt(67.5 + math.sqrt(4436.25)) - math.sqrt(26.25) - 6.5),
}


def prefilter_depth(order: int, tol: float = PREFILTER_TOL) -> int:
    """Halo (voxels) after which a chunk edge changes spline coefficients by < ``tol``.

    A line cut short injects an error that the recursive filter carries inward, shrinking by
    the largest pole magnitude ``|z|`` per voxel, so ``depth = ceil(ln tol / ln |z|)``:
    order 2: 11, 3: 14, 4: 19, 5: 22 voxels at the default ``tol = 1e-8``. Orders 0 and 1
    need no prefilter (0).
    """
    poles = _POLES[_check_order(order)]
    if not poles:
        return 0
    zmax = max(abs(p) for p in poles)
    return int(math.ceil(math.log(tol) / math.log(zmax)))


def _spline_margin(order: int) -> int:
    # taps reach floor(x) - order//2 .. floor(x + 0.5) + order//2; one more absorbs rounding
    return 1 if order == 0 else order // 2 + 2


def _map_coordinate(cc: np.ndarray, n: int, mode: str) -> np.ndarray:
    """scipy's mapping of out-of-range coordinates, vectorised (``NaN`` = constant).

    Mirrors ``map_coordinate`` in scipy's ``ni_interpolation.c`` (scipy >= 1.6), including
    its integer truncations, so that weights and taps round the same way.
    """
    cc = np.array(cc, dtype=np.float64)
    lo, hi = cc < 0, cc > n - 1
    if mode == "constant":
        cc[lo | hi] = np.nan
        return cc
    if mode in ("grid-constant", "nearest"):
        return cc  # scipy maps only the taps for these (to cval / to the edge voxel)
    if n <= 1:
        cc[lo | hi] = 0.0
        return cc
    x = cc[lo]
    if mode == "mirror":
        s2 = 2 * n - 2
        x = s2 * np.trunc(-x / s2) + x
        cc[lo] = np.where(x <= 1 - n, x + s2, -x)
        x = cc[hi]
        x = x - s2 * np.trunc(x / s2)
        cc[hi] = np.where(x >= n, s2 - x, x)
    elif mode == "reflect":
        s2 = 2 * n
        x = np.where(x < -s2, s2 * np.trunc(-x / s2) + x, x)
        # scipy nudges -0.0 < x < 0 to 1e-15 - 1 so that -x - 1 never rounds to -1
        cc[lo] = np.where(x < -n, x + s2, np.where(x > -1e-15, 1e-15, -x) - 1)
        x = cc[hi]
        x = x - s2 * np.trunc(x / s2)
        cc[hi] = np.where(x >= n, s2 - x - 1, x)
    elif mode == "wrap":
        sz = n - 1
        cc[lo] = x + sz * (np.trunc(-x / sz) + 1)
        x = cc[hi]
        cc[hi] = x - sz * np.trunc(x / sz)
    elif mode == "grid-wrap":
        cc[lo] = x + n * (np.trunc((-1 - x) / n) + 1)
        x = cc[hi]
        cc[hi] = x - n * np.trunc(x / n)
    return cc


def _map_taps(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map tap indices that fall outside ``[0, n)``; ``n`` marks a constant (cval) tap."""
    out = idx.copy()
    bad = (idx < 0) | (idx >= n)
    if not bad.any():
        return out
    b = idx[bad]
    if mode == "grid-constant":
        b = np.full_like(b, n)
    elif n <= 1:
        b = np.zeros_like(b)
    elif mode == "grid-wrap":
        b = np.mod(b, n)
    elif mode == "reflect":
        b = np.mod(b, 2 * n)
        b = np.where(b >= n, 2 * n - 1 - b, b)
    elif mode == "mirror":
        b = np.mod(b, 2 * n - 2)
        b = np.where(b >= n, 2 * n - 2 - b, b)
    else:  # nearest, constant, wrap: such taps carry zero weight, any in-range index will do
        b = np.clip(b, 0, n - 1)
    out[bad] = b
    return out


def taps_1d(coords: Any, n: int, order: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Input taps and weights reproducing scipy's 1-D interpolation, for orders 0 and 1.

    Parameters
    ----------
    coords
        Input coordinates (index units) of the output samples along one axis.
    n
        Input length along the axis.

    Returns
    -------
    idx, w
        ``idx`` of shape ``(m, order + 1)``: input indices, where the value ``n`` stands for
        the constant ``cval``; ``w`` the matching weights (``None`` for order 0). A sample is
        ``sum_k w[:, k] * a[idx[:, k]]``, and in N-D the product over axes of these sums
        equals scipy's tensor-product interpolation, constant modes included.
    """
    order = _check_order(order)
    if order > 1:
        raise GeometryError("separable taps exist for orders 0 and 1 only", field="order")
    mode = _check_mode(mode)
    cc = _map_coordinate(np.asarray(coords, dtype=np.float64), n, mode)
    const = np.isnan(cc)
    safe = np.where(const, 0.0, cc)
    if order == 0:
        start = np.floor(safe + 0.5).astype(np.int64)
        idx = _map_taps(start, n, mode)[:, None]
        idx[const, 0] = n
        return idx, None
    start = np.floor(safe)
    frac = safe - start
    w0 = 1.0 - frac
    w = np.stack([w0, 1.0 - w0], axis=1)
    start = start.astype(np.int64)
    idx = _map_taps(np.stack([start, start + 1], axis=1), n, mode)
    idx[const] = n
    w[const] = (1.0, 0.0)
    return idx, w
