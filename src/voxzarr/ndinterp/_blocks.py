"""The task of one output chunk: interpolate the input region it was handed.

Two paths, each for numpy and CuPy regions: :func:`_affine_block` (any affine map, through
scipy or cupyx) and :func:`_separable_block` (diagonal maps of order 0 or 1, one axis at a
time: numpy passes in :mod:`._cpu`, one fused CUDA kernel in :mod:`._gpu`). Both may first
smooth the region with the anti-aliasing Gaussian.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._kernels import gaussian1d_kept
from .._xp import array_module, is_cupy, ndimage_module
from ._cpu import _pass_cpu, _round_cpu, _scipy_sum
from ._dtypes import _cast, _compute_dtype
from ._gpu import _gpu_separable
from ._graph import _assemble
from ._matrix import _global_coords

# mode for the anti-aliasing Gaussian that matches each interpolation mode
_GAUSS_MODE = {"grid-constant": "constant", "grid-mirror": "reflect", "grid-wrap": "wrap"}


def _smooth(region: Any, sigma: Sequence[float], mode: str, cval: float,
            truncate: float, cdtype: np.dtype) -> Any:
    """Anti-aliasing Gaussian (only axes with ``sigma > 0``).

    On the CPU each pass is the compiled one of :func:`voxzarr._kernels.gaussian1d_kept`
    (bit-identical to scipy's ``gaussian_filter1d``, without the GIL and split over the
    cores for large regions; scipy where it does not apply); on the GPU cupyx's.
    """
    gpu = is_cupy(region)
    ndi = ndimage_module(region)
    out = region.astype(cdtype, copy=False)
    gmode = _GAUSS_MODE.get(mode, mode)
    for ax, s in enumerate(sigma):
        if s <= 0:
            continue
        if gpu:
            out = ndi.gaussian_filter1d(out, s, axis=ax, mode=gmode, cval=cval,
                                        truncate=truncate, output=cdtype)
        else:
            out = gaussian1d_kept(out, s, ax, 0, gmode, cval, truncate, None, slice(None))
    return out


def _affine_block(parts: Any, matrix: np.ndarray, offset: np.ndarray, start: tuple[int, ...],
                  out_shape: tuple[int, ...], lo: np.ndarray, order: int, mode: str,
                  cval: float, prefilter: bool, dtype: np.dtype,
                  sigma: Sequence[float] | None, truncate: float, exact: bool,
                  shift_first: bool = False, planes: tuple[int, ...] | None = None) -> Any:
    """General path: scipy / cupyx interpolation of one input region.

    With ``exact`` the task builds the chunk's global coordinates and calls
    ``map_coordinates``, for results that jump where a coordinate crosses a rounding tie or
    the image edge (order 0, ``constant``, ``wrap``). Otherwise ``affine_transform`` with the
    offset moved to the region, which differs from the whole-array call only by rounding.
    With ``planes`` (two axes) each plane along them is transformed on its own, as
    :func:`scipy.ndimage.rotate` does (see :func:`_plane_transform`).
    """
    region = _assemble(parts)
    gpu = is_cupy(region)
    xp = array_module(region)
    ndi = ndimage_module(region)
    cdtype = _compute_dtype(np.dtype(region.dtype), dtype, gpu)
    if sigma is not None:
        region = _smooth(region, sigma, mode, cval, truncate, cdtype)
    if planes is not None:
        out = _plane_transform(region, matrix, offset, start, out_shape, lo, order, mode, cval,
                               prefilter, cdtype, exact, planes)
        return _cast(out, dtype)
    if gpu:
        region = xp.ascontiguousarray(region)
    if exact:
        coords = _global_coords(xp, matrix, offset, start, out_shape, shift_first)
        coords -= xp.asarray(lo, dtype=np.float64).reshape((-1,) + (1,) * len(out_shape))
        out = ndi.map_coordinates(region, coords, order=order, mode=mode, cval=cval,
                                  prefilter=prefilter, output=cdtype)
    else:
        local = offset + matrix @ np.asarray(start, dtype=np.float64) - lo
        out = ndi.affine_transform(region, xp.asarray(matrix), tuple(local.tolist()),
                                   output_shape=out_shape, order=order, mode=mode, cval=cval,
                                   prefilter=prefilter, output=cdtype)
    return _cast(out, dtype)


def _plane_transform(region: Any, matrix: np.ndarray, offset: np.ndarray,
                     start: tuple[int, ...], out_shape: tuple[int, ...], lo: np.ndarray,
                     order: int, mode: str, cval: float, prefilter: bool, cdtype: np.dtype,
                     exact: bool, planes: tuple[int, ...]) -> Any:
    """One 2-D transform per plane along ``planes``: :func:`scipy.ndimage.rotate`'s N-D rule.

    scipy rotates an N-D array plane by plane, so the other axes are never prefiltered or
    interpolated (a 3-D spline would smooth them, or prefilter them where scipy does not).
    Along those axes the region is exactly the output chunk.
    """
    xp = array_module(region)
    ndi = ndimage_module(region)
    ax = list(planes)
    m2 = np.ascontiguousarray(matrix[np.ix_(ax, ax)])
    start2 = tuple(start[a] for a in ax)
    shape2 = tuple(out_shape[a] for a in ax)
    src = xp.moveaxis(region, ax, (-2, -1))
    out = xp.empty(src.shape[:-2] + shape2, dtype=cdtype)
    if exact:
        coords = _global_coords(xp, m2, offset[ax], start2, shape2)
        coords -= xp.asarray(lo[ax], dtype=np.float64).reshape(-1, 1, 1)
    else:
        local = offset[ax] + m2 @ np.asarray(start2, dtype=np.float64) - lo[ax]
        mat = xp.asarray(m2)
    for idx in np.ndindex(*src.shape[:-2]):
        plane = xp.ascontiguousarray(src[idx])
        if exact:
            ndi.map_coordinates(plane, coords, order=order, mode=mode, cval=cval,
                                prefilter=prefilter, output=out[idx])
        else:
            ndi.affine_transform(plane, mat, tuple(local.tolist()), output_shape=shape2,
                                 order=order, mode=mode, cval=cval, prefilter=prefilter,
                                 output=out[idx])
    return xp.moveaxis(out, (-2, -1), ax)


def _separable_block(parts: Any, tables: Sequence[Any], cval: float, dtype: np.dtype,
                     sigma: Sequence[float] | None, mode: str, truncate: float) -> Any:
    """Axis-aligned path: 1-D interpolation along each axis of one input region.

    ``tables[ax]`` is ``None`` (the region already equals the output along ``ax``) or
    ``(idx, w)`` from :func:`taps_1d`, re-indexed into the region, ``len(region)`` = cval.
    """
    region = _assemble(parts)
    gpu = is_cupy(region)
    cdtype = _compute_dtype(np.dtype(region.dtype), dtype, gpu)
    if sigma is not None:
        region = _smooth(region, sigma, mode, cval, truncate, cdtype)
    if gpu:
        out = _gpu_separable(region, tables, cval, dtype, cdtype)
        if out is not None:
            return out
    res = _separable_passes(region, tables, cval, cdtype)
    if dtype.kind in "iu" and not gpu and res.dtype.kind == "f":
        # with one weighted axis the passes add the taps in scipy's order already (bit for
        # bit); with more, half-integer ties may round differently and are redone
        weighted = sum(t is not None and t[1] is not None for t in tables)
        exact = (lambda pts: _scipy_sum(pts, region, tables, cval, mode)) \
            if weighted >= 2 else None
        return _round_cpu(res, dtype, exact)
    return _cast(res, dtype)


def _separable_passes(region: Any, tables: Sequence[Any], cval: float, cdtype: np.dtype) -> Any:
    """Apply the 1-D tables one axis at a time, shrinking axes first to save work."""
    xp = array_module(region)
    out = region
    todo = [ax for ax, t in enumerate(tables) if t is not None]
    todo.sort(key=lambda ax: tables[ax][0].shape[0] / max(region.shape[ax], 1))
    for ax in todo:
        idx, w = tables[ax]
        n = out.shape[ax]
        if int(idx.max(initial=0)) >= n:  # constant taps read an appended cval slab
            if out.dtype.kind != "f":
                out = out.astype(cdtype)
            slab = list(out.shape)
            slab[ax] = 1
            out = xp.concatenate([out, xp.full(slab, cval, dtype=out.dtype)], axis=ax)
        if xp is np:
            out = _pass_cpu(out, ax, idx, w, cdtype)
            continue
        if w is None:
            out = xp.take(out, xp.asarray(idx[:, 0]), axis=ax)
            continue
        shape = [1] * out.ndim
        shape[ax] = -1
        acc = xp.multiply(xp.take(out, xp.asarray(idx[:, 0]), axis=ax),
                          xp.asarray(w[:, 0], dtype=cdtype).reshape(shape), dtype=cdtype)
        acc += xp.multiply(xp.take(out, xp.asarray(idx[:, 1]), axis=ax),
                           xp.asarray(w[:, 1], dtype=cdtype).reshape(shape), dtype=cdtype)
        out = acc
    return out.astype(cdtype, copy=False) if out is region else out
