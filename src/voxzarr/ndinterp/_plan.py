"""The chunk planner: which input region each output chunk reads, and which path runs it.

Each output chunk's corners are mapped through the transform; the bounding box of the input
they reach, plus a margin (spline support, prefilter depth, smoothing radius), with the
boundary mode folded in, is the region its task receives (:func:`_axis_box`). A chunk that
lies wholly in the constant region reads nothing (:func:`_outside`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from typing import Any

import dask.array as da
import numpy as np

from .._xp import is_cupy
from ._blocks import _affine_block, _separable_block
from ._checks import _REFLECTS, _WRAPS
from ._cval import _affine_cval_fix, _needs_cval_fix
from ._graph import _build, _default_chunks
from ._matrix import _is_diagonal
from ._taps import _PAD_REACH, _PREPAD_MODES, _spline_margin, prefilter_depth, taps_1d


def _axis_box(lo_f: float, hi_f: float, n: int, mode: str, margin: int,
              periodic_edges: bool) -> tuple[int, int]:
    """Input range ``[lo, hi)`` holding every voxel the coordinates ``[lo_f, hi_f]`` read.

    ``margin`` covers the spline support (and prefilter / smoothing halos). Boundary modes
    decide what lies beyond the image: ``nearest`` and the constant modes need only the edge,
    reflections need the mirrored range near the same edge, wraps the far side (taken as the
    whole axis). ``periodic_edges`` (a periodic prefilter or smoothing) also makes a region
    that touches an edge take the whole axis, since the filter there reads the far side.

    For ``nearest`` and ``grid-constant`` scipy pre-pads 12 voxels and prefilters the padded
    array, so a point far outside reads the outermost padded coefficients, and those depend
    on the data near the edge (decaying with the pole per voxel): coordinates are clamped to
    :data:`_PAD_REACH` outside the image, so the box keeps ``margin`` voxels of that data
    instead of shrinking to the edge voxel.
    """
    if mode in _PREPAD_MODES:
        lo_f = min(max(lo_f, -_PAD_REACH), n - 1 + _PAD_REACH)
        hi_f = min(max(hi_f, -_PAD_REACH), n - 1 + _PAD_REACH)
    lo = int(math.floor(lo_f)) - margin
    hi = int(math.floor(hi_f)) + margin + 1
    if mode in _WRAPS:
        if lo < 0 or hi > n or (periodic_edges and (lo <= 0 or hi >= n)):
            return 0, n
        return lo, hi
    if mode in _REFLECTS or (mode == "grid-constant" and margin > 2):
        # reflections (and the prefilter pad of grid-constant) read near the same edge
        if lo < 0:
            hi = max(hi, -lo + 1)
        if hi > n:
            lo = min(lo, 2 * n - hi - 1)
        return max(lo, 0), min(hi, n)
    lo = min(max(lo, 0), n - 1)
    return lo, max(min(hi, n), lo + 1)


def _outside(lo_f: float, hi_f: float, n: int, mode: str, order: int,
             slack: float = 0.0) -> bool:
    """Whether every coordinate in ``[lo_f, hi_f]`` yields cval along this axis.

    ``slack`` bounds how far scipy's own rounding of a coordinate may lie from the bounds
    given (computed another way): only chunks outside by more are filled.
    """
    if mode == "constant":
        return hi_f < -slack or lo_f > n - 1 + slack
    if mode == "grid-constant" and order <= 1:
        return hi_f <= -1 - slack or lo_f >= n + slack
    return False


def _radius(sigma: float, truncate: float) -> int:
    return int(truncate * float(sigma) + 0.5) if sigma > 0 else 0


def _general(image: da.Array, matrix: np.ndarray, offset: np.ndarray,
             out_shape: tuple[int, ...], order: int, mode: str, cval: float, prefilter: bool,
             out_chunks: Any, dtype: np.dtype, sigma: Sequence[float] | None,
             truncate: float, *, shift_first: bool = False,
             planes: tuple[int, ...] | None = None) -> da.Array:
    """Any affine map; ``planes`` makes the other axes pass through (rotate's N-D rule)."""
    n_in = image.shape
    depth = prefilter_depth(order) if prefilter and order > 1 else 0
    radii = [_radius(s, truncate) for s in sigma] if sigma is not None else [0] * image.ndim
    margins = [_spline_margin(order) + depth + r for r in radii]
    periodic = [mode == "grid-wrap" and depth > 0 or r > 0 for r in radii]
    # results that jump at a rounding tie or at the image edge need scipy's exact coordinates
    # (and integer outputs, whose rounding must match at ties)
    exact = order == 0 or mode in ("constant", "wrap") or dtype.kind in "iub"

    def planner(start: tuple[int, ...], shape: tuple[int, ...]) -> Any:
        corners = np.array(list(product(*[(s, s + k - 1) for s, k in zip(start, shape,
                                                                           strict=True)])),
                           dtype=np.float64)
        mapped = corners @ matrix.T + offset
        lo_f, hi_f = mapped.min(axis=0), mapped.max(axis=0)
        # scipy sums o_l * M[h, l] one term at a time, rounding differently from the matmul
        slack = 1e-9 * (1.0 + np.abs(offset) + np.abs(corners).max(axis=0) @ np.abs(matrix).T)
        if any(_outside(lo_f[a], hi_f[a], n_in[a], mode, order, slack[a])
               for a in range(image.ndim)):
            return ("fill", cval)
        box = [_axis_box(lo_f[a], hi_f[a], n_in[a], mode, margins[a], periodic[a])
               if planes is None or a in planes else (start[a], start[a] + shape[a])
               for a in range(image.ndim)]
        lo = np.array([b[0] for b in box], dtype=np.float64)
        sels = [np.arange(b0, b1) for b0, b1 in box]
        return sels, _affine_block, (matrix, offset, start, shape, lo, order, mode, cval,
                                     prefilter, dtype, sigma, truncate, exact, shift_first,
                                     planes)

    return _build(image, out_shape, out_chunks, dtype, planner, "vz-affine",
                  (matrix, offset, order, mode, cval, prefilter, sigma, truncate, shift_first,
                   planes))


def _separable(image: da.Array, scale: np.ndarray, offset: np.ndarray,
               out_shape: tuple[int, ...], order: int, mode: str, cval: float,
               out_chunks: Any, dtype: np.dtype, sigma: Sequence[float] | None,
               truncate: float, *, shift_first: bool = False) -> da.Array:
    """Diagonal maps of order 0 or 1, one axis at a time (``shift_first``: as scipy rounds a
    1-D matrix, ``(o + offset / m) * m``)."""
    n_in = image.shape
    radii = [_radius(s, truncate) for s in sigma] if sigma is not None else [0] * image.ndim
    tables = []
    for ax in range(image.ndim):
        o = np.arange(out_shape[ax], dtype=np.float64)
        if (scale[ax] == 1.0 and offset[ax] == 0.0 and out_shape[ax] <= n_in[ax]
                and not radii[ax]):
            tables.append(None)  # identity axis (t, c, unchanged spatial axes)
            continue
        # offset + o * scale rounds exactly as scipy's matrix loop does for a diagonal
        cc = o * scale[ax] + offset[ax]
        if shift_first and scale[ax] != 0:
            cc = (o + offset[ax] / scale[ax]) * scale[ax]
        idx, w = taps_1d(cc, n_in[ax], order, mode)
        if w is not None and not w[:, 1].any():
            w = None  # integer shift: a pure gather
            idx = idx[:, :1]
        tables.append((idx, w))

    def planner(start: tuple[int, ...], shape: tuple[int, ...]) -> Any:
        sels, local = [], []
        for ax, (s0, k) in enumerate(zip(start, shape, strict=True)):
            n = n_in[ax]
            if tables[ax] is None:
                sels.append(np.arange(s0, s0 + k))
                local.append(None)
                continue
            idx, w = tables[ax]
            idx = idx[s0:s0 + k]
            used = np.unique(idx[idx < n])
            if used.size == 0:
                return ("fill", cval)
            r = radii[ax]
            if r:
                lo, hi = int(used[0]) - r, int(used[-1]) + r + 1
                if mode in _WRAPS and (lo <= 0 or hi >= n):
                    lo, hi = 0, n
                used = np.arange(max(lo, 0), min(hi, n))
            pos = np.searchsorted(used, np.minimum(idx, n - 1))
            pos = np.where(idx >= n, used.size, pos).astype(np.int64)
            sels.append(used)
            local.append((pos, None if w is None else w[s0:s0 + k]))
        return sels, _separable_block, (local, cval, dtype, sigma, mode, truncate)

    return _build(image, out_shape, out_chunks, dtype, planner, "vz-separable",
                  (scale, offset, order, mode, cval, sigma, truncate, shift_first))


def _transform(image: da.Array, matrix: np.ndarray, offset: np.ndarray,
               out_shape: tuple[int, ...], order: int, mode: str, cval: float,
               prefilter: bool, output_chunks: Any, dtype: np.dtype, *,
               shift_first: bool = False, planes: tuple[int, ...] | None = None) -> da.Array:
    """Dispatch a validated transform to the separable or the general path."""
    if 0 in out_shape:  # nothing to compute (scipy returns an empty array too)
        return da.zeros(out_shape, dtype=dtype)
    chunks = _default_chunks(image, out_shape, output_chunks)
    if order <= 1 and _is_diagonal(matrix):
        out = _separable(image, np.diagonal(matrix).copy(), offset, out_shape, order, mode,
                         cval, chunks, dtype, None, 4.0, shift_first=shift_first)
    else:
        out = _general(image, matrix, offset, out_shape, order, mode, cval, prefilter, chunks,
                       dtype, None, 4.0, shift_first=shift_first, planes=planes)
    if _needs_cval_fix(mode, order, dtype, cval) and not is_cupy(image._meta):
        out = out.map_blocks(_affine_cval_fix, matrix, offset, tuple(image.shape), order, cval,
                             prefilter, dtype, shift_first, planes, dtype=dtype)
    return out
