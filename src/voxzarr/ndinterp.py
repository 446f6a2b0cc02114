"""Chunked interpolation on dask arrays with :mod:`scipy.ndimage` semantics.

Drop-in for ``dask_image.ndinterp`` (same function names and parameters) without its limits:
every scipy boundary mode, spline orders 0-5 with a correct chunked prefilter, 1-D (diagonal),
2-D and homogeneous matrices, and numpy or CuPy chunks.

How it works. Each output chunk is one task. The planner maps the chunk's corners through the
transform, takes the bounding box of the input it needs plus a margin (spline support, the
prefilter depth, a smoothing radius), and the task receives exactly the input blocks that
cover that box. Where a boundary mode maps coordinates to the far side of the image (wrap) or
further than the box (reflect/mirror), the region grows to include what the mode reads, up to
the whole axis. At a true image edge the region edge *is* the image edge, so scipy applies the
mode there exactly as on the whole array.

Axis-aligned transforms (a diagonal matrix) of order 0 or 1 take a separable path: per axis, a
table of input taps and weights reproduces scipy's coordinate mapping for the mode, and the
chunk is interpolated one axis at a time (trilinear equals three 1-D linear passes). This is
several times faster than a 3-D spline kernel and exact to float rounding; on CuPy one fused
kernel does all axes in a single pass.

Like scipy, :func:`rotate` turns an N-D array plane by plane (the other axes are neither
prefiltered nor interpolated); complex input is processed as its real and imaginary parts;
an ``(ndim, k)`` matrix maps a ``k``-D output; bad arguments raise the builtin error types
scipy raises (:class:`~voxzarr.errors.ArgumentError` is a ``RuntimeError`` and a
``ValueError``).

The spline prefilter is an infinite-impulse-response filter, so chunked prefiltering is exact
only to a tolerance: the error a truncated line injects decays by ``|z|`` per voxel (``z`` the
filter pole with the largest magnitude: 0.268 for cubic, 0.430 for quintic).
:func:`prefilter_depth` gives the halo after which it is below ``1e-8`` of the data, well
under float32 resolution.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from scipy import ndimage as _scipy_ndimage
from scipy import special

from ._xp import array_module, empty_meta, is_cupy, ndimage_module
from .errors import ArgumentError, ArgumentTypeError, GeometryError

__all__ = [
    "MODES",
    "affine_transform",
    "map_coordinates",
    "prefilter_depth",
    "rotate",
    "scale_translate",
    "smoothed_affine",
    "spline_filter",
    "spline_filter1d",
    "taps_1d",
]

#: boundary modes, as in scipy.ndimage (``grid-mirror`` is scipy's alias of ``reflect``)
MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror", "mirror", "wrap",
         "grid-wrap")
_WRAPS = ("wrap", "grid-wrap")
_REFLECTS = ("reflect", "grid-mirror", "mirror")
# mode for the anti-aliasing Gaussian that matches each interpolation mode
_GAUSS_MODE = {"grid-constant": "constant", "grid-mirror": "reflect", "grid-wrap": "wrap"}
#: relative error the chunked spline prefilter may leave (float32 resolves 6e-8)
PREFILTER_TOL = 1e-8
# scipy pre-pads the input by 12 voxels before the prefilter in these modes
_PREPAD_MODES = ("nearest", "grid-constant")
_NPAD = 12
# a coordinate this far outside the image (12 pad voxels plus the widest spline half-support)
# reads only the outermost padded coefficients: the result no longer depends on it
_PAD_REACH = _NPAD + 3


# --------------------------------------------------------------------------- validation
def _check_order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 0 <= order <= 5:
        raise ArgumentError(f"spline order must be an integer 0-5, got {order!r}", field="order")
    return int(order)


def _check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise ArgumentError(f"unknown boundary mode {mode!r}; choose one of {MODES}",
                            field="mode")
    return "reflect" if mode == "grid-mirror" else str(mode)


def _as_dask(image: Any, min_ndim: int = 1) -> da.Array:
    arr = image if isinstance(image, da.Array) else da.asarray(image)
    if arr.ndim < min_ndim:  # scipy: RuntimeError('input and output rank must be > 0')
        raise ArgumentError("need an array of at least one dimension", field="image")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise GeometryError("complex images are not supported; transform .real and .imag "
                            "separately", field="image")
    return arr


def normalize_matrix(matrix: Any, offset: Any, ndim: int,
                     out_ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(M, offset)`` as a ``(ndim, out_ndim)`` matrix and ``(ndim,)`` vector.

    Accepts what scipy accepts: a diagonal ``(ndim,)``, a linear ``(ndim, out_ndim)`` (with
    ``offset``; ``out_ndim`` is the output rank, by default ``ndim``), or homogeneous
    ``(ndim, ndim + 1)`` / ``(ndim + 1, ndim + 1)`` matrices whose last column is the offset
    (``offset`` is then ignored). Shape errors are :class:`ArgumentError` (scipy raises
    ``RuntimeError``), a bad homogeneous row a :class:`GeometryError` (``ValueError``).
    """
    out_ndim = ndim if out_ndim is None else int(out_ndim)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[0] < 1:
        raise ArgumentError(f"no proper affine matrix provided (shape {m.shape})",
                            field="matrix")
    lin, off = m, offset
    if m.ndim == 2 and m.shape[1] == ndim + 1 and m.shape[0] in (ndim, ndim + 1):
        if m.shape[0] == ndim + 1:
            expect = np.zeros(ndim + 1)
            expect[-1] = 1.0
            if not np.array_equal(m[-1], expect):
                raise GeometryError(f"last row of a homogeneous matrix must be {expect.tolist()}"
                                    f", got {m[-1].tolist()}", field="matrix")
        lin, off = m[:ndim, :ndim], m[:ndim, ndim]
    if lin.shape[0] != ndim:
        raise ArgumentError(
            f"matrix of shape {m.shape} does not fit a {ndim}-D image; expected ({ndim},), "
            f"({ndim}, {out_ndim}), ({ndim}, {ndim + 1}) or ({ndim + 1}, {ndim + 1})",
            field="matrix")
    field = "matrix" if out_ndim == ndim else "output_shape"
    if lin.ndim == 1:
        if out_ndim != ndim:
            raise ArgumentError(f"a diagonal matrix needs an output of rank {ndim}, got "
                                f"{out_ndim}", field=field)
        lin = np.diag(lin)
    elif lin.shape[1] != out_ndim:
        raise ArgumentError(f"affine matrix has {lin.shape[1]} columns for an output of rank "
                            f"{out_ndim}", field=field)
    if np.ndim(off) == 0:
        off = np.full(ndim, float(np.asarray(off, dtype=np.float64)))
    off = np.asarray(off, dtype=np.float64)
    if off.shape != (ndim,):
        raise ArgumentError(f"offset needs {ndim} values, got shape {off.shape}",
                            field="offset")
    lin = np.ascontiguousarray(lin, dtype=np.float64)
    if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(off))):
        raise GeometryError("matrix and offset must be finite", field="matrix")
    return lin, off


def _is_diagonal(m: np.ndarray) -> bool:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return False
    return bool(np.count_nonzero(m - np.diag(np.diagonal(m))) == 0)


# --------------------------------------------------------------------------- prefilter
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


# --------------------------------------------------------------------------- 1-D taps
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


# --------------------------------------------------------------------------- graph helpers
def _select(block: Any, selectors: tuple[Any, ...]) -> Any:
    """Apply per-axis slices or index arrays (outer indexing, unlike numpy's default)."""
    basic = tuple(s if isinstance(s, slice) else slice(None) for s in selectors)
    out = block[basic]
    for ax, s in enumerate(selectors):
        if not isinstance(s, slice):
            out = array_module(out).take(out, array_module(out).asarray(s), axis=ax)
    return out


def _assemble(parts: Any, axis: int = 0) -> Any:
    """Concatenate a nested list of blocks (dask's ``concatenate3`` for numpy or CuPy)."""
    if not isinstance(parts, list):
        return parts
    pieces = [_assemble(p, axis + 1) for p in parts]
    if len(pieces) == 1:
        return pieces[0]
    return array_module(pieces[0]).concatenate(pieces, axis=axis)


def _as_selector(local: np.ndarray) -> slice | np.ndarray:
    if local.size and local[-1] - local[0] + 1 == local.size:
        return slice(int(local[0]), int(local[-1]) + 1)
    return local


def _gather(image: da.Array, sels: Sequence[np.ndarray]) -> Any:
    """Nested list of tasks giving ``image[np.ix_(*sels)]`` from the blocks that hold it."""
    per_axis = []
    for ax, sel in enumerate(sels):
        bounds = np.cumsum((0,) + image.chunks[ax])
        block_of = np.searchsorted(bounds, sel, side="right") - 1
        cuts = np.flatnonzero(np.diff(block_of)) + 1
        groups = []
        for piece in np.split(np.arange(sel.size), cuts):
            b = int(block_of[piece[0]])
            groups.append((b, _as_selector(sel[piece] - bounds[b])))
        per_axis.append(groups)

    def build(ax: int, key: tuple[int, ...], selectors: tuple[Any, ...]) -> Any:
        if ax == len(per_axis):
            return (_select, (image.name, *key), selectors)
        return [build(ax + 1, key + (b,), selectors + (s,)) for b, s in per_axis[ax]]

    return build(0, (), ())


def _fill(shape: tuple[int, ...], value: float, dtype: Any, gpu: bool) -> Any:
    """An output chunk that lies wholly in the constant region: no input is read."""
    if gpu:
        import cupy as xp
    else:
        xp = np
    return _cast(xp.full(shape, value, dtype=np.float64), np.dtype(dtype))


def _build(
    image: da.Array,
    out_shape: tuple[int, ...],
    out_chunks: Any,
    dtype: np.dtype,
    planner: Callable[[tuple[int, ...], tuple[int, ...]], Any],
    prefix: str,
    token: Any,
) -> da.Array:
    """One task per output chunk; ``planner(start, shape)`` says what each task does.

    The planner returns ``("fill", value)`` for a chunk that is entirely ``cval`` (no input
    is read), or ``(sels, func, args)``: ``func(region, *args)`` runs on the input region
    ``image[np.ix_(*sels)]``. Planning is eager (a Python loop over the output chunks, tens
    of microseconds each).
    """
    chunks = da.core.normalize_chunks(out_chunks, out_shape, dtype=dtype)
    name = f"{prefix}-{tokenize(image.name, out_shape, chunks, str(dtype), token)}"
    starts = [np.cumsum((0,) + c) for c in chunks]
    gpu = is_cupy(image._meta)
    dsk: dict[Any, Any] = {}
    for index in product(*(range(len(c)) for c in chunks)):
        start = tuple(int(starts[a][i]) for a, i in enumerate(index))
        shape = tuple(int(chunks[a][i]) for a, i in enumerate(index))
        plan = planner(start, shape)
        if plan[0] == "fill":
            dsk[(name, *index)] = (_fill, shape, plan[1], dtype, gpu)
            continue
        sels, func, args = plan
        dsk[(name, *index)] = (func, _gather(image, sels), *args)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[image])
    return da.Array(graph, name, chunks, meta=empty_meta(image._meta, len(out_shape), dtype))


def _default_chunks(image: da.Array, out_shape: tuple[int, ...], output_chunks: Any) -> Any:
    if output_chunks is not None:
        return output_chunks
    if len(out_shape) != image.ndim:  # another rank: the input's longest chunk on every axis
        longest = max(image.chunksize, default=1)
        return tuple(min(longest, max(n, 1)) for n in out_shape)
    return tuple(min(c, max(n, 1)) for c, n in zip(image.chunksize, out_shape, strict=True))


# --------------------------------------------------------------------------- kernels
def _compute_dtype(src: np.dtype, dst: np.dtype, gpu: bool) -> np.dtype:
    """Working precision: float32 for float32 data, float64 otherwise (CPU).

    Integer outputs are computed in float64 on the CPU so that their rounding matches
    scipy's double-precision result exactly; on the GPU everything but float64 data runs in
    float32 (results then agree with the CPU within float32 rounding).
    """
    if np.float64 in (src, dst):
        return np.dtype(np.float64)
    if gpu or (src in (np.float32, np.float16) and dst.kind == "f"):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _cast(x: Any, dtype: np.dtype) -> Any:
    """Round half away from zero and clip to the range of an integer ``dtype``."""
    xp = array_module(x)
    if dtype.kind == "b":
        return x > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if x.dtype.kind in "iub":  # order 0 gathers keep integers: nothing to round
            return x.astype(dtype, copy=False) if x.dtype == dtype else \
                xp.clip(x, info.min, info.max).astype(dtype)
        x = xp.clip(x, info.min, info.max)  # a new array: safe to work in place below
        if dtype.kind == "u":
            x += 0.5
            xp.floor(x, out=x)
        else:
            x = xp.where(x >= 0, xp.floor(x + 0.5), xp.ceil(x - 0.5))
    return x.astype(dtype, copy=False)


def _smooth(region: Any, sigma: Sequence[float], mode: str, cval: float,
            truncate: float, cdtype: np.dtype) -> Any:
    """Anti-aliasing Gaussian (only axes with ``sigma > 0``)."""
    ndi = ndimage_module(region)
    out = region.astype(cdtype, copy=False)
    gmode = _GAUSS_MODE.get(mode, mode)
    for ax, s in enumerate(sigma):
        if s > 0:
            out = ndi.gaussian_filter1d(out, s, axis=ax, mode=gmode, cval=cval,
                                        truncate=truncate, output=cdtype)
    return out


def _global_coords(xp: Any, matrix: np.ndarray, offset: np.ndarray,
                   start: Sequence[int], shape: Sequence[int], shift_first: bool = False) -> Any:
    """Input coordinates of one output chunk, rounded exactly as scipy rounds them.

    scipy starts from the offset and adds ``o_l * M[h, l]`` left to right, with the *global*
    output index ``o``. Doing the same keeps order-0 ties and points on the image edge on
    the same side as in the whole-array result. ``shift_first`` follows scipy's path for a
    1-D (diagonal) matrix instead, which computes ``(o + offset / m) * m``.
    """
    ndim = len(shape)
    grids = []
    for ax, (s0, k) in enumerate(zip(start, shape, strict=True)):
        g = xp.arange(s0, s0 + k, dtype=np.float64)
        grids.append(g.reshape((1,) * ax + (k,) + (1,) * (ndim - ax - 1)))
    out = xp.empty((matrix.shape[0], *shape), dtype=np.float64)
    for h in range(matrix.shape[0]):
        if shift_first and matrix[h, h] != 0:
            m = float(matrix[h, h])
            out[h] = (grids[h] + float(offset[h]) / m) * m
            continue
        acc = float(offset[h])
        for ax in range(ndim):
            acc = acc + grids[ax] * float(matrix[h, ax])
        out[h] = acc
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


def _pass_cpu(a: np.ndarray, ax: int, idx: np.ndarray, w: np.ndarray | None,
              cdtype: np.dtype) -> np.ndarray:
    """One 1-D pass on the CPU: ``out = a[i0] * w0 + a[i1] * w1`` along ``ax``.

    Works plane by plane (along axis 0) into one preallocated result, so the temporaries stay
    small and in cache; whole-array ``take`` temporaries cost more in page faults than in
    arithmetic. Per element the arithmetic (and so the rounding) is the vectorised one.
    """
    shape = list(a.shape)
    shape[ax] = idx.shape[0]
    if w is None:
        return np.take(a, idx[:, 0], axis=ax)
    from . import _kernels  # numba: imported on first use

    w0, w1 = w[:, 0].astype(cdtype), w[:, 1].astype(cdtype)
    out = _kernels.lerp_pass(a, ax, idx[:, 0], idx[:, 1], w0, w1, cdtype)
    if out is not None:  # compiled, one call without the GIL (the same arithmetic)
        return out
    if a.ndim == 1:  # 1-D: the "planes" are scalars, so one vectorised pass does it
        out = np.multiply(a[idx[:, 0]], w0, dtype=cdtype)
        out += np.multiply(a[idx[:, 1]], w1, dtype=cdtype)
        return out
    out = np.empty(shape, dtype=cdtype)
    tmp = np.empty(shape[1:], dtype=cdtype)
    if ax == 0:
        for j, (i, k) in enumerate(zip(idx[:, 0].tolist(), idx[:, 1].tolist(), strict=True)):
            np.multiply(a[i], w0[j], out=out[j])
            np.multiply(a[k], w1[j], out=tmp)
            out[j] += tmp
        return out
    wshape = [1] * (a.ndim - 1)
    wshape[ax - 1] = -1
    w0, w1 = w0.reshape(wshape), w1.reshape(wshape)
    i0, i1 = idx[:, 0], idx[:, 1]
    for p in range(a.shape[0]):
        np.multiply(np.take(a[p], i0, axis=ax - 1), w0, out=out[p])
        np.multiply(np.take(a[p], i1, axis=ax - 1), w1, out=tmp)
        out[p] += tmp
    return out


def _round_cpu(res: np.ndarray, dtype: np.dtype,
               exact: Callable[[tuple], np.ndarray] | None = None,
               tol: float = 1e-7) -> np.ndarray:
    """:func:`_cast` for float results on the CPU, plane by plane (temporaries in cache).

    With ``exact``, values within ``tol`` of a rounding tie are recomputed by
    ``exact(points)`` before rounding.
    """
    from . import _kernels  # numba: imported on first use

    info = np.iinfo(dtype)
    got = _kernels.round_to_int(res, dtype, tol, exact is not None)
    if got is not None:  # compiled, one call without the GIL (the same arithmetic)
        out, near = got
        if near.size:
            pts = np.unravel_index(near, res.shape)
            ex = exact(pts)
            val = np.where(ex >= 0, np.floor(ex + 0.5), np.ceil(ex - 0.5))
            out[pts] = np.clip(val, info.min, info.max)
        return out
    out = np.empty(res.shape, dtype=dtype)
    flat = res.reshape(res.shape[0] if res.ndim > 1 else 1, -1)
    oflat = out.reshape(flat.shape)
    buf = np.empty(flat.shape[1], dtype=np.float64)
    low = np.empty_like(buf)
    ties = []
    for p in range(flat.shape[0]):
        x = flat[p]
        if dtype.kind == "i":
            np.abs(x, out=buf)  # half away from zero: round |x| half up, restore the sign
        else:
            buf[...] = x
        buf += 0.5
        np.floor(buf, out=low)
        if exact is not None:
            buf -= low  # distance above the rounding threshold
            near = np.flatnonzero((buf < tol) | (buf > 1.0 - tol))
            if near.size:
                ties.append((p, near))
        if dtype.kind == "i":
            np.copysign(low, x, out=low)
        np.clip(low, info.min, info.max, out=low)
        oflat[p] = low
    if ties:
        rows = np.concatenate([np.full(n.size, p) for p, n in ties])
        cols = np.concatenate([n for _, n in ties])
        pts = np.unravel_index(rows * flat.shape[1] + cols, res.shape)
        ex = exact(pts)
        val = np.where(ex >= 0, np.floor(ex + 0.5), np.ceil(ex - 0.5))
        out[pts] = np.clip(val, info.min, info.max)
    return out


def _scipy_sum(pts: tuple[np.ndarray, ...], region: np.ndarray, tables: Sequence[Any],
               cval: float, mode: str = "") -> np.ndarray:
    """Values at ``pts`` summed over all taps in scipy's order: ``((v * w0) * w1) ...``.

    Axis-by-axis sums round differently from scipy's sum over all taps, which matters only
    where the exact value is a tie for integer rounding; there (rarely) this recomputes it,
    so integer outputs equal scipy's bit for bit. In ``constant`` mode scipy returns ``cval``
    itself (no weighted sum) once any axis leaves the image.
    """
    axes = [ax for ax, t in enumerate(tables) if t is not None]
    taps = {ax: tables[ax][0][pts[ax]] for ax in axes}
    weights = {ax: (tables[ax][1][pts[ax]] if tables[ax][1] is not None
                    else np.ones((pts[ax].size, 1))) for ax in axes}
    total = np.zeros(pts[0].size, dtype=np.float64)
    for combo in product(*(range(taps[ax].shape[1]) for ax in axes)):
        index = list(pts)
        pad = np.zeros(pts[0].size, dtype=bool)
        for ax, k in zip(axes, combo, strict=True):
            i = taps[ax][:, k]
            pad |= i >= region.shape[ax]
            index[ax] = np.minimum(i, region.shape[ax] - 1)
        coeff = np.where(pad, cval, region[tuple(index)].astype(np.float64))
        for ax, k in zip(axes, combo, strict=True):
            coeff = coeff * weights[ax][:, k]
        total = total + coeff
    if mode == "constant":  # there every tap >= len(region) marks a point outside the image
        outside = np.zeros(pts[0].size, dtype=bool)
        for ax in axes:
            outside |= (taps[ax] >= region.shape[ax]).all(axis=1)
        total = np.where(outside, cval, total)
    return total


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


# --------------------------------------------------------------------------- planning
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


def _spline_margin(order: int) -> int:
    # taps reach floor(x) - order//2 .. floor(x + 0.5) + order//2; one more absorbs rounding
    return 1 if order == 0 else order // 2 + 2


def _check_sigma(sigma: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Per-axis smoothing sigmas as floats, or ``None`` when there is none to apply."""
    if sigma is None:
        return None
    sig = tuple(float(x) for x in sigma)
    if len(sig) != ndim or any(not np.isfinite(x) or x < 0 for x in sig):
        raise GeometryError(f"sigma needs {ndim} finite values >= 0, got {sig}",
                            field="sigma")
    return sig if any(sig) else None


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
        raise ArgumentError("output_shape needs at least one dimension", field="output_shape")
    if any(n < 0 for n in shape):
        raise GeometryError(f"output_shape {shape} has a negative length", field="output_shape")
    return shape


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


# --------------------------------------------------------------------------- complex input
def _complex_output(output: Any, dtype: np.dtype) -> np.dtype:
    """The complex result dtype, as scipy's ``_get_output`` picks it for complex input."""
    if output is None:
        return np.promote_types(dtype, np.complex64)
    if isinstance(output, str):
        out = np.dtype(output)
        if out.kind != "c":
            raise ArgumentError("output must have complex dtype for complex input",
                                field="output")
        return out
    if hasattr(output, "dtype") and not isinstance(output, type | np.dtype):
        raise GeometryError("output must be a dtype for dask arrays (results are new arrays)",
                            field="output")
    out = np.dtype(output)
    if out.kind != "c":
        warnings.warn("promoting specified output dtype to complex", UserWarning, stacklevel=3)
        out = np.promote_types(out, np.complex64)
    return out


def _join_complex(re: Any, im: Any, dtype: np.dtype) -> Any:
    # assign the parts: ``re + 1j * im`` would turn an infinite imaginary part into a NaN
    # real part (inf * 0)
    out = array_module(re).empty(re.shape, dtype=dtype)
    out.real = re
    out.imag = im
    return out


def _complex_parts(func: Callable[..., da.Array]) -> Callable[..., da.Array]:
    """Decorator: a complex input runs ``func`` on its real and imaginary parts.

    scipy.ndimage processes the two parts independently (with ``cval`` split likewise) and
    so does this, then joins the two lazy results chunk by chunk.
    """
    sig = inspect.signature(func)
    data_arg = next(iter(sig.parameters))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> da.Array:
        bound = sig.bind(*args, **kwargs)
        data = bound.arguments[data_arg]
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        if np.dtype(data.dtype).kind != "c":
            return func(*args, **kwargs)
        bound.apply_defaults()
        arr = data if isinstance(data, da.Array) else da.asarray(data)
        out = _complex_output(bound.arguments.get("output"), np.dtype(arr.dtype))
        part_dtype = np.dtype(out.char.lower())  # F -> f, D -> d, G -> g
        cval = bound.arguments.get("cval", 0.0)
        parts = []
        for part, take in ((arr.real, np.real), (arr.imag, np.imag)):
            call = dict(bound.arguments, **{data_arg: part, "output": part_dtype})
            if "cval" in call:
                call["cval"] = float(take(cval))
            parts.append(func(**call))
        re, im = parts
        return da.map_blocks(_join_complex, re, im.rechunk(re.chunks), out, dtype=out,
                             meta=empty_meta(re._meta, re.ndim, out))

    return wrapper


def _scipy_map_coordinates(func: Callable[..., da.Array]) -> Callable[..., da.Array]:
    """Decorator for :func:`map_coordinates`: scipy's argument checks and error types, and
    scipy's cval-only sums at tie ``cval`` (:func:`_cval_only`) for integer outputs."""
    sig = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> da.Array:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        image, coords = a["input"], a["coordinates"]
        if not hasattr(coords, "dtype"):
            coords = np.asarray(coords)
        if np.dtype(coords.dtype).kind == "c":
            raise ArgumentTypeError("complex coordinates are not supported",
                                    field="coordinates")
        ndim_in = np.ndim(image)
        if ndim_in < 1 or np.ndim(coords) < 2:
            raise ArgumentError(f"input and output rank must be > 0 (input {ndim_in}-D, "
                                f"coordinates of shape {np.shape(coords)})",
                                field="coordinates")
        if np.shape(coords)[0] != ndim_in:
            raise ArgumentError(f"coordinates must have shape ({ndim_in}, ...), got "
                                f"{np.shape(coords)}", field="coordinates")
        out = func(*args, **kwargs)
        order, mode, cval = _check_order(a["order"]), _check_mode(a["mode"]), float(a["cval"])
        if _needs_cval_fix(mode, order, np.dtype(out.dtype), cval) and \
                not is_cupy(out._meta) and out.size:
            cd = coords if isinstance(coords, da.Array) else da.asarray(coords)
            cd = cd.astype(np.float64).rechunk(((cd.shape[0],), *out.chunks))
            idx = tuple(range(1, out.ndim + 1))
            dtype = np.dtype(out.dtype)
            out = da.blockwise(_map_cval_fix, idx, out, idx, cd, (0, *idx),
                               tuple(np.shape(image)), None, order, None, cval, None,
                               bool(a["prefilter"]), None, dtype, None, dtype=dtype,
                               concatenate=True)
        return out

    return wrapper


# --------------------------------------------------------------------------- public API
@_complex_parts
def affine_transform(
    image: Any,
    matrix: Any,
    offset: Any = 0.0,
    output_shape: Sequence[int] | None = None,
    order: int = 1,
    output_chunks: Any = None,
    *,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    output: Any = None,
    planes: Sequence[int] | None = None,
) -> da.Array:
    """Apply an affine transform to a dask array, chunk by chunk, like scipy's.

    The output voxel at index ``o`` takes the input value at ``matrix @ o + offset`` (pull
    direction, index units), as in :func:`scipy.ndimage.affine_transform`, whose result this
    equals for every chunking: exactly for order 0 and 1 (to float rounding) and within
    about ``1e-8`` relative for order 2-5, whose prefilter is chunked with
    :func:`prefilter_depth` voxels of halo.

    Parameters
    ----------
    image
        Dask (or numpy) array with numpy or CuPy chunks.
    matrix
        ``(ndim,)`` diagonal, ``(ndim, ndim)``, or homogeneous ``(ndim, ndim + 1)`` /
        ``(ndim + 1, ndim + 1)`` (offset in the last column; ``offset`` ignored). An
        ``(ndim, k)`` matrix maps a ``k``-D output (``output_shape`` of length ``k``).
    offset
        Scalar or per-axis offset in input index units.
    output_shape
        Output shape (default the input's); its rank may differ from the input's.
    order
        Spline order 0-5 (default 1, as in dask-image; scipy's default is 3).
    output_chunks
        Dask chunks of the result (default the input's chunk shape).
    mode, cval
        Any scipy boundary mode and the constant for ``constant`` / ``grid-constant``.
    prefilter
        Spline-filter the input first for order > 1 (scipy's default, needed for the
        result to interpolate the data).
    output
        Output dtype (default the input's). Integer outputs are rounded half away from zero
        and clipped to the dtype's range. Complex input transforms the real and imaginary
        parts separately (``cval`` likewise), as scipy does.
    planes
        voxzarr's extension: two axes whose planes are transformed one by one, the other
        axes passing through without prefilter or interpolation, as
        :func:`scipy.ndimage.rotate` does in N-D. The matrix must be the identity (and the
        offset zero) on the other axes.

    Returns
    -------
    dask.array.Array
        Lazy; one task per output chunk reading only the input blocks it needs.
    """
    image = _as_dask(image)
    order = _check_order(order)
    mode = _check_mode(mode)
    out_shape = _output_shape(output_shape, image)
    m, off = normalize_matrix(matrix, offset, image.ndim, len(out_shape))
    dtype = _resolve_output(output, image)
    pl = _check_planes(planes, m, off, image.shape, out_shape, order)
    # scipy runs a 1-D matrix through its zoom/shift kernel, which rounds (o + offset/m) * m
    return _transform(image, m, off, out_shape, order, mode, float(cval), bool(prefilter),
                      output_chunks, dtype, shift_first=np.ndim(matrix) == 1, planes=pl)


def _check_planes(planes: Sequence[int] | None, m: np.ndarray, off: np.ndarray,
                  in_shape: Sequence[int], out_shape: Sequence[int], order: int
                  ) -> tuple[int, ...] | None:
    """Validated ``planes`` (sorted), or ``None`` where they change nothing (orders 0-1
    sample pass-through axes at integers with weights exactly 1 and 0)."""
    if planes is None:
        return None
    nd = len(in_shape)
    pl = tuple(sorted(int(a) % nd for a in planes)) if nd else ()
    if len(pl) != 2 or pl[0] == pl[1]:
        raise GeometryError(f"planes must name two different axes, got {planes!r}",
                            field="planes")
    rest = [a for a in range(nd) if a not in pl]
    if len(out_shape) != nd or any(
            not np.array_equal(m[a], np.eye(nd)[a]) or not np.array_equal(m[:, a], np.eye(nd)[a])
            or off[a] != 0 or in_shape[a] != out_shape[a] for a in rest):
        raise GeometryError("planes: the matrix must be the identity, the offset zero and "
                            f"the shape unchanged on the other axes {rest}", field="planes")
    return pl if order > 1 and rest else None


def scale_translate(
    image: Any,
    scale: Sequence[float],
    offset: Sequence[float],
    output_shape: Sequence[int],
    order: int = 1,
    output_chunks: Any = None,
    *,
    mode: str = "nearest",
    cval: float = 0.0,
    prefilter: bool = True,
    output: Any = None,
    sigma: Sequence[float] | None = None,
    truncate: float = 4.0,
) -> da.Array:
    """Axis-aligned resampling: output index ``o`` reads input ``scale * o + offset``.

    Equals ``affine_transform(image, np.diag(scale), offset, ...)``, optionally after a
    Gaussian pre-smoothing of standard deviation ``sigma`` (input voxels, per axis; 0 = none;
    boundary mode matched to ``mode``), fused into the same tasks with the halo it needs.
    """
    image = _as_dask(image)
    order = _check_order(order)
    mode = _check_mode(mode)
    scale_a = np.asarray(scale, dtype=np.float64)
    off = np.asarray(offset, dtype=np.float64)
    out_shape = _output_shape(output_shape, image)
    m, off = normalize_matrix(scale_a, off, image.ndim, len(out_shape))
    dtype = _resolve_output(output, image)
    chunks = _default_chunks(image, out_shape, output_chunks)
    sigma = _check_sigma(sigma, image.ndim)
    if order <= 1:
        return _separable(image, np.diagonal(m).copy(), off, out_shape, order, mode,
                          float(cval), chunks, dtype, sigma, truncate)
    return _general(image, m, off, out_shape, order, mode, float(cval), bool(prefilter),
                    chunks, dtype, sigma, truncate)


def smoothed_affine(
    image: Any,
    matrix: Any,
    offset: Any,
    output_shape: Sequence[int],
    order: int = 1,
    output_chunks: Any = None,
    *,
    sigma: Sequence[float],
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    output: Any = None,
    truncate: float = 4.0,
    planes: Sequence[int] | None = None,
) -> da.Array:
    """:func:`affine_transform` after a Gaussian pre-smoothing of standard deviation
    ``sigma`` (input voxels, per axis; boundary mode matched to ``mode``), fused into the
    same tasks with the halo it needs (anti-aliasing for a map that samples coarsely).
    ``planes`` as for :func:`affine_transform`."""
    image = _as_dask(image)
    order = _check_order(order)
    mode = _check_mode(mode)
    out_shape = _output_shape(output_shape, image)
    m, off = normalize_matrix(matrix, offset, image.ndim, len(out_shape))
    pl = _check_planes(planes, m, off, image.shape, out_shape, order)
    if _is_diagonal(m) and pl is None:
        return scale_translate(image, np.diagonal(m).copy(), off, output_shape, order,
                               output_chunks, mode=mode, cval=cval, prefilter=prefilter,
                               output=output, sigma=sigma, truncate=truncate)
    dtype = _resolve_output(output, image)
    chunks = _default_chunks(image, out_shape, output_chunks)
    return _general(image, m, off, out_shape, order, mode, float(cval), bool(prefilter),
                    chunks, dtype, _check_sigma(sigma, image.ndim), truncate, planes=pl)


def rotation_matrix(angle: float, axes: Sequence[int], shape: Sequence[int],
                    reshape: bool) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """scipy's rotation about the array centre as ``(matrix, offset, output_shape)``."""
    ndim = len(shape)
    ax = [int(a) for a in axes]
    if len(ax) != 2:
        raise GeometryError("axes must name exactly two axes", field="axes")
    ax = [a + ndim if a < 0 else a for a in ax]
    if any(not 0 <= a < ndim for a in ax) or ax[0] == ax[1]:
        raise GeometryError(f"invalid rotation plane {tuple(axes)} for {ndim} dims",
                            field="axes")
    ax.sort()
    c, s = special.cosdg(angle), special.sindg(angle)
    rot = np.array([[c, s], [-s, c]])
    in_plane = np.asarray(shape)[ax]
    if reshape:
        iy, ix = in_plane
        bounds = rot @ np.array([[0, 0, iy, iy], [0, ix, 0, ix]], dtype=np.float64)
        out_plane = (np.ptp(bounds, axis=1) + 0.5).astype(int)
    else:
        out_plane = in_plane
    plane_offset = (in_plane - 1) / 2 - rot @ ((out_plane - 1) / 2)
    matrix = np.eye(ndim)
    matrix[np.ix_(ax, ax)] = rot
    offset = np.zeros(ndim)
    offset[ax] = plane_offset
    out_shape = list(shape)
    out_shape[ax[0]], out_shape[ax[1]] = int(out_plane[0]), int(out_plane[1])
    return matrix, offset, tuple(out_shape)


@_complex_parts
def rotate(
    input_arr: Any,
    angle: float,
    axes: Sequence[int] = (1, 0),
    reshape: bool = True,
    output_chunks: Any = None,
    *,
    order: int = 1,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    output: Any = None,
) -> da.Array:
    """Rotate by ``angle`` degrees in the plane of ``axes``, as :func:`scipy.ndimage.rotate`.

    ``reshape=True`` enlarges the output to hold the whole rotated input (scipy's shape).
    Like scipy, an N-D array is rotated plane by plane: the axes outside the rotation plane
    are neither prefiltered nor interpolated.
    """
    image = _as_dask(input_arr)
    if image.ndim < 2:
        raise GeometryError("rotation needs at least two dimensions", field="input_arr")
    order = _check_order(order)
    mode = _check_mode(mode)
    matrix, offset, out_shape = rotation_matrix(angle, axes, image.shape, reshape)
    dtype = _resolve_output(output, image)
    # orders 0 and 1 sample the other axes at integers with weights exactly 1 and 0, which
    # equals the per-plane result in one N-D call; splines need the planes themselves
    planes = None
    if image.ndim > 2 and order > 1:
        planes = tuple(sorted(int(a) % image.ndim for a in axes))
    return _transform(image, matrix, offset, out_shape, order, mode, float(cval),
                      bool(prefilter), output_chunks, dtype, planes=planes)


@_complex_parts
@_scipy_map_coordinates
def map_coordinates(
    input: Any,  # noqa: A002 - dask-image's and scipy's name
    coordinates: Any,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    *,
    output: Any = None,
) -> da.Array:
    """Sample ``input`` at ``coordinates`` (shape ``(ndim, ...)``), like scipy's.

    The output has the shape and chunks of ``coordinates[0]`` (numpy coordinates are chunked
    as :func:`dask.array.asarray` chunks them). Tasks read only the input chunks that the
    points' footprints touch (spline taps plus the prefilter halo), one region of at most a
    tile of chunks each, never the bounding box of all the points; points that are ``cval``
    whatever the data read nothing (see :mod:`voxzarr._points`). numpy coordinates are planned
    at once; dask coordinates in one pass over them, computed up front. ``prefilter`` defaults
    to ``True`` as in scipy (dask-image's default of ``False`` does not interpolate the data
    for order > 1).
    """
    image = _as_dask(input)
    order = _check_order(order)
    mode = _check_mode(mode)
    dtype = _resolve_output(output, image)
    from ._points import map_points  # _points builds on this module's helpers

    return map_points(image, coordinates, order, mode, float(cval), bool(prefilter), dtype)


@_complex_parts
def spline_filter1d(
    image: Any,
    order: int = 3,
    axis: int = -1,
    output: Any = np.float64,
    mode: str = "mirror",
    output_chunks: Any = None,
    *,
    depth: int | None = None,
) -> da.Array:
    """Chunked :func:`scipy.ndimage.spline_filter1d` with a halo from the filter's poles.

    ``depth`` defaults to :func:`prefilter_depth` (14 voxels for cubic), which keeps the
    difference to the whole-array filter below ``1e-8`` relative. Orders 0 and 1 return the
    input (as ``output``), for any rank, as scipy does.
    """
    image = _as_dask(image, min_ndim=0)
    order = _check_order(order)
    if order < 2:
        return _spline_overlap(image, order, (), output, mode, output_chunks, depth)
    ax = axis + image.ndim if axis < 0 else axis
    if not 0 <= ax < image.ndim:
        raise GeometryError(f"axis {axis} out of range for {image.ndim} dims", field="axis")
    return _spline_overlap(image, order, (ax,), output, mode, output_chunks, depth)


@_complex_parts
def spline_filter(
    image: Any,
    order: int = 3,
    output: Any = np.float64,
    mode: str = "mirror",
    output_chunks: Any = None,
    *,
    depth: int | None = None,
) -> da.Array:
    """Chunked :func:`scipy.ndimage.spline_filter` (all axes); see :func:`spline_filter1d`.

    As in scipy, ``order`` must be 2-5 (:class:`~voxzarr.errors.ArgumentError`, a
    ``RuntimeError``, otherwise) and a 0-d input is returned as it is.
    """
    image = _as_dask(image, min_ndim=0)
    order = _check_order(order)
    if order < 2:
        raise ArgumentError(f"spline_filter needs a spline order 2-5, got {order}",
                            field="order")
    return _spline_overlap(image, order, tuple(range(image.ndim)), output, mode,
                           output_chunks, depth)


def _spline_overlap(image: da.Array, order: int, axes: tuple[int, ...], output: Any,
                    mode: str, output_chunks: Any, depth: int | None) -> da.Array:
    mode = _check_mode(mode)
    dtype = _resolve_output(output, image)
    if output_chunks is not None:
        image = image.rechunk(output_chunks)
    if order < 2 or image.ndim == 0:
        return image.astype(dtype)
    d = prefilter_depth(order) if depth is None else int(depth)
    depths = {ax: min(d, image.shape[ax]) if ax in axes else 0 for ax in range(image.ndim)}
    # periodic init reads the far end of the line: give edge chunks the opposite face
    boundary = {ax: "periodic" if mode == "grid-wrap" and ax in axes else "none"
                for ax in range(image.ndim)}

    def block(x: Any) -> Any:
        # like scipy, each axis's pass is stored in the output dtype before the next one
        ndi = ndimage_module(x)
        out = x
        for ax in axes:
            out = ndi.spline_filter1d(out, order, axis=ax, output=dtype, mode=mode)
        return out

    return da.map_overlap(block, image, depth=depths, boundary=boundary, dtype=dtype,
                          meta=empty_meta(image._meta, image.ndim, dtype))


# --------------------------------------------------------------------------- CuPy kernel
_CTYPES = {
    "bool": "bool", "uint8": "unsigned char", "int8": "signed char",
    "uint16": "unsigned short", "int16": "short", "uint32": "unsigned int", "int32": "int",
    "uint64": "unsigned long long", "int64": "long long", "float32": "float",
    "float64": "double",
}

# The reference kernel: a block computes whole output rows (fixed batch, z, y): the KZ * KY
# input rows a row reads and their weights are looked up once, then the threads stride along
# x, each output voxel reading KX taps per input row and being written once. A tap index < 0
# reads cval. It is the fallback for regions of 2^31 output rows or more, and the yardstick
# the fast kernels below must equal bit for bit (tests/test_gpu_resample.py).
_REFERENCE_SRC = r"""
extern "C" __global__ void vz_separable(
    const SRC* __restrict__ src,
    const int* __restrict__ iz, const WT* __restrict__ wz,
    const int* __restrict__ iy, const WT* __restrict__ wy,
    const int* __restrict__ ix, const WT* __restrict__ wx,
    const long long zi, const long long yi, const long long xi,
    const int zo, const int yo, const int xo, const long long nbz, const WT cval,
    DST* __restrict__ out)
{
    for (long long bz = blockIdx.z; bz < nbz; bz += gridDim.z) {
        const long long b = bz / zo;
        const int z = (int)(bz - b * zo);
        const SRC* base = src + b * zi * yi * xi;
        for (int y = blockIdx.y; y < yo; y += gridDim.y) {
            const SRC* rows[KZ * KY];
            WT rw[KZ * KY];
            bool rc[KZ * KY];
#pragma unroll
            for (int a = 0; a < KZ; ++a) {
#pragma unroll
                for (int c = 0; c < KY; ++c) {
                    const int zz = iz[z * KZ + a];
                    const int yy = iy[y * KY + c];
                    const int r = a * KY + c;
                    rc[r] = zz < 0 || yy < 0;
                    rows[r] = rc[r] ? base : base + ((long long)zz * yi + yy) * xi;
                    rw[r] = wz[z * KZ + a] * wy[y * KY + c];
                }
            }
            DST* orow = out + (bz * yo + y) * (long long)xo;
            for (int x = threadIdx.x; x < xo; x += blockDim.x) {
                WT acc = 0;
#pragma unroll
                for (int e = 0; e < KX; ++e) {
                    const int xx = ix[x * KX + e];
                    const WT we = wx[x * KX + e];
#pragma unroll
                    for (int r = 0; r < KZ * KY; ++r) {
                        const WT v = (rc[r] || xx < 0) ? cval : (WT)rows[r][xx];
                        acc += rw[r] * we * v;
                    }
                }
                orow[x] = STORE(acc);
            }
        }
    }
}
"""

# Exact conversions for the fast kernels on full-rate ALU instructions rather than the
# quarter-rate conversion unit, which bounds 16-bit data otherwise. 2^23 + n (n < 2^23) is
# the float whose mantissa bits are n, so OR-ing n into 2^23's bits and subtracting 2^23 gives
# (float)n exactly; adding 2^23 rounding down leaves floor(y) in the mantissa for
# 0 <= y < 2^23. Half away from zero is floor(|c| + 0.5) with c's sign (the float adds round
# symmetrically). Each equals the reference kernel's cast bit for bit.
_FAST_CVT = r"""
#define F2P23 8388608.0f
__device__ __forceinline__ float vz_u2f(unsigned n) {
    return __uint_as_float(0x4B000000u | n) - F2P23;
}
__device__ __forceinline__ unsigned vz_floor_u(float y) {
    return __float_as_uint(__fadd_rd(y, F2P23)) - 0x4B000000u;
}
"""

# The fast kernel. A thread owns one (batch, y, x) output column and walks ZR output planes
# along z, re-reading its input taps only when a plane's z taps differ from the previous
# plane's: upsampling z by f (the usual isotropy case) reads each tap 1 / f as often, so the
# kernel streams output instead of re-fetching input rows from L2. The y and x taps and
# weights of the column are loaded once. Where x passes through (``XPASS``: z and/or y
# resampled only) a thread owns VEC contiguous voxels, loaded and stored as one 16-byte (or
# narrower, where rows are not so aligned) vector, with no x taps at all. Stores bypass L2
# retention (``__stcs``) so input planes stay cached. Per voxel the arithmetic is the
# reference kernel's term for term, with explicit fma so the compiler cannot round
# differently; with a pass-through x the reference's x weight is exactly 1.
_ZWALK_SRC = r"""
struct __align__(SALIGN) SVec { SRC v[VEC]; };
struct __align__(DALIGN) DVec { DST v[VEC]; };

extern "C" __global__ void vz_zwalk(
    const SRC* __restrict__ src,
    const int* __restrict__ iz, const WT* __restrict__ wz,
    const int* __restrict__ iy, const WT* __restrict__ wy,
    const int* __restrict__ ix, const WT* __restrict__ wx,
    const long long zi, const long long yi, const long long xi,
    const int zo, const int yo, const int xo, const int nzr, const int nbzr, const WT cval,
    DST* __restrict__ out)
{
    // xo, xi count VEC-element units where x passes through (KX == 1 and VEC > 1)
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= xo) return;
    int xs[KX];
    WT ws[KX];
#pragma unroll
    for (int e = 0; e < KX; ++e) {
        xs[e] = XPASS ? x : ix[x * KX + e];
        ws[e] = XPASS ? (WT)1 : wx[x * KX + e];
    }
    for (int y = blockIdx.y; y < yo; y += gridDim.y) {
        int yy[KY];
        WT wyy[KY];
#pragma unroll
        for (int c = 0; c < KY; ++c) {
            yy[c] = iy[y * KY + c];
            wyy[c] = wy[y * KY + c];
        }
        for (int q = blockIdx.z; q < nbzr; q += gridDim.z) {
            const int b = q / nzr;
            const int z0 = (q - b * nzr) * ZR;
            const SRC* base = src + (long long)b * zi * yi * xi * VEC;
            DST* obase = out + (((long long)b * zo) * yo + y) * (long long)xo * VEC;
            int prev[KZ];
#pragma unroll
            for (int a = 0; a < KZ; ++a) prev[a] = -2;
            SVec v[KZ * KY][KX];
            const int z1 = min(z0 + ZR, zo);
            for (int z = z0; z < z1; ++z) {
                int zz[KZ];
                bool same = true;
#pragma unroll
                for (int a = 0; a < KZ; ++a) {
                    zz[a] = iz[z * KZ + a];
                    same = same && zz[a] == prev[a];
                }
                if (!same) {
#pragma unroll
                    for (int a = 0; a < KZ; ++a) {
                        prev[a] = zz[a];
#pragma unroll
                        for (int c = 0; c < KY; ++c) {
                            const bool rc = HAS_CVAL && (zz[a] < 0 || yy[c] < 0);
                            const SVec* row = reinterpret_cast<const SVec*>(
                                base + ((long long)(rc ? 0 : zz[a]) * yi + (rc ? 0 : yy[c]))
                                * xi * VEC);
#pragma unroll
                            for (int e = 0; e < KX; ++e) {
                                if (HAS_CVAL && (rc || xs[e] < 0)) {
#pragma unroll
                                    for (int k = 0; k < VEC; ++k) v[a * KY + c][e].v[k] = 0;
                                } else {
                                    v[a * KY + c][e] = row[xs[e]];
                                }
                            }
                        }
                    }
                }
                WT rw[KZ * KY];
#pragma unroll
                for (int a = 0; a < KZ; ++a) {
#pragma unroll
                    for (int c = 0; c < KY; ++c) rw[a * KY + c] = wz[z * KZ + a] * wyy[c];
                }
                DVec d;
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    WT acc = 0;
#pragma unroll
                    for (int e = 0; e < KX; ++e) {
#pragma unroll
                        for (int r = 0; r < KZ * KY; ++r) {
                            const bool cv = HAS_CVAL && (zz[r / KY] < 0 || yy[r % KY] < 0
                                                         || xs[e] < 0);
                            const WT val = cv ? cval : TOWT(v[r][e].v[k]);
                            acc = XPASS ? fma(rw[r], val, acc) : fma(rw[r] * ws[e], val, acc);
                        }
                    }
                    d.v[k] = STORE(acc);
                }
                __stcs(reinterpret_cast<VSTORE*>(obase + ((long long)z * yo * xo + x) * VEC),
                       *reinterpret_cast<VSTORE*>(&d));
            }
        }
    }
}
"""


_STORE_TYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "uint2",
                16: "uint4"}


def _fast_cvt(src: np.dtype, wt: np.dtype, dst: np.dtype) -> str:
    """``TOWT`` / ``STORE`` macros of the fast kernels: :data:`_FAST_CVT` where it applies
    (float32 arithmetic on 8- and 16-bit integers), else the reference casts."""
    short = ("uint8", "uint16", "int8", "int16")
    if wt != np.float32 or src.name not in short:
        towt = "((WT)(s))"
    elif src.kind == "u":
        towt = "vz_u2f((unsigned)(s))"
    else:  # (float)(s + 32768) - 32768, both steps exact
        towt = "(vz_u2f((unsigned)((int)(s) + 32768)) - 32768.0f)"
    if wt != np.float32 or dst.name not in short:
        return f"#define TOWT(s) {towt}\n#define STORE(v) {_store_expr(dst, _CTYPES[wt.name])}\n"
    info = np.iinfo(dst)
    clip = f"fminf(fmaxf((v), {float(info.min)!r}f), {float(info.max)!r}f)"
    if dst.kind == "u":
        store = f"((DST)vz_floor_u({clip} + 0.5f))"
    else:
        store = (f"((DST)(({clip}) >= 0.0f ? (int)vz_floor_u(fabsf({clip}) + 0.5f) "
                 f": -(int)vz_floor_u(fabsf({clip}) + 0.5f)))")
    return f"#define TOWT(s) {towt}\n#define STORE(v) {store}\n"


def _store_expr(dtype: np.dtype, wt: str) -> str:
    """C expression casting the accumulator ``v`` like :func:`_cast` does."""
    if dtype.kind == "b":
        return "((v) > (WT)0.5)"
    if dtype.kind not in "iu":
        return "((DST)(v))"
    info = np.iinfo(dtype)
    clip = f"fmin(fmax((v), ({wt})({float(info.min)!r})), ({wt})({float(info.max)!r}))"
    if dtype.kind == "u":
        return f"((DST)floor({clip} + ({wt})0.5))"
    return (f"((DST)({clip} >= 0 ? floor({clip} + ({wt})0.5) "
            f": ceil({clip} - ({wt})0.5)))")


_KERNELS: dict[tuple[Any, ...], Any] = {}
#: output planes one thread of ``vz_zwalk`` walks (32: within 10 % of the best of 8-64 for
#: z-only and all-axes upsampling on an H100)
_ZR = 32


def _separable_kernel(name: str, src: np.dtype, wt: np.dtype, dst: np.dtype,
                      k: tuple[int, int, int], **extra: int) -> Any:
    """Compile (once per variant) ``vz_separable`` (reference) or ``vz_zwalk``."""
    key = (name, src.str, wt.str, dst.str, k, tuple(sorted(extra.items())))
    if key not in _KERNELS:
        import cupy

        wt_c = _CTYPES[wt.name]
        defs = (f"#define SRC {_CTYPES[src.name]}\n#define WT {wt_c}\n"
                f"#define DST {_CTYPES[dst.name]}\n#define KZ {k[0]}\n#define KY {k[1]}\n"
                f"#define KX {k[2]}\n")
        defs += "".join(f"#define {n.upper()} {v}\n" for n, v in extra.items())
        if name == "vz_separable":
            defs += f"#define STORE(v) {_store_expr(dst, wt_c)}\n"
        else:
            defs += _fast_cvt(src, wt, dst) + _FAST_CVT
            size = extra.get("dalign", dst.itemsize)
            defs += f"#define VSTORE {_STORE_TYPES[size]}\n"
        body = _REFERENCE_SRC if name == "vz_separable" else _ZWALK_SRC
        _KERNELS[key] = cupy.RawKernel(defs + body, name)
    return _KERNELS[key]


def _fused_plan(shape: tuple[int, ...], tables: Sequence[Any]) -> Any:
    """Lay a region out as ``(batch, z, y, x)`` for the fused kernel, or ``None``.

    It fits when at most three trailing axes are resampled and any leading axes (t, c)
    pass through unchanged: those fold into the batch. Returns ``(batch, taps, weights,
    out_shape)`` with per-axis ``(m, k)`` tap tables (``-1`` = cval) and weights for the
    three trailing axes (length-1 axes prepended for 1-D and 2-D data).
    """
    ndim = len(shape)
    lead = 0
    while lead < ndim and tables[lead] is None:
        lead += 1
    lead = min(lead, max(ndim - 3, 0))
    if ndim - lead > 3:
        return None
    spatial = list(range(lead, ndim))
    taps, weights, sizes_out = [], [], []
    for ax in [None] * (3 - len(spatial)) + spatial:
        n = 1 if ax is None else shape[ax]
        t = None if ax is None else tables[ax]
        idx, w = (np.arange(n, dtype=np.int64)[:, None], None) if t is None else t
        taps.append(np.ascontiguousarray(np.where(idx >= n, -1, idx), dtype=np.int32))
        weights.append(np.ones((idx.shape[0], 1)) if w is None else np.ascontiguousarray(w))
        sizes_out.append(idx.shape[0])
    batch = int(np.prod(shape[:lead], dtype=np.int64))
    out_shape = tuple(shape[:lead]) + tuple(sizes_out[3 - len(spatial):])
    return batch, taps, weights, out_shape


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _vector_width(xo: int, src: Any, out: Any) -> int:
    """Voxels per load / store in ``vz_zwalk``: the widest of 8, 4, 2, 1 that keeps every
    row start aligned and moves at most 16 bytes."""
    si, di = src.dtype.itemsize, out.dtype.itemsize
    for v in (8, 4, 2):
        if (xo % v == 0 and v * max(si, di) <= 16 and src.data.ptr % (v * si) == 0
                and out.data.ptr % (v * di) == 0):
            return v
    return 1


def _gpu_separable(region: Any, tables: Sequence[Any], cval: float, dtype: np.dtype,
                   cdtype: np.dtype, reference: bool = False) -> Any:
    """All axes in one fused CuPy kernel; ``None`` where the layout does not fit it.

    Runs ``vz_zwalk``; ``reference`` (tests, benchmarks) or a region too large for its
    32-bit indices runs ``vz_separable``. Both give the same result bit for bit.
    """
    import cupy

    plan = _fused_plan(region.shape, tables)
    if plan is None or region.dtype.name not in _CTYPES or dtype.name not in _CTYPES:
        return None
    batch, taps, weights, out_shape = plan
    src = cupy.ascontiguousarray(region)
    out = cupy.empty(out_shape, dtype=dtype)
    if out.size == 0:
        return out
    ks = tuple(t.shape[1] for t in taps)
    sizes_in = [1] * (3 - min(3, region.ndim)) + list(region.shape[-3:])
    zo, yo, xo = (t.shape[0] for t in taps)
    wt = np.float32 if cdtype == np.float32 else np.float64
    dev_taps = [cupy.asarray(t) for t in taps]
    dev_w = [cupy.asarray(w, dtype=cdtype) for w in weights]
    zi, yi, xi = (np.int64(n) for n in sizes_in)
    src_t, dst_t = np.dtype(src.dtype), np.dtype(dtype)
    nzr = _cdiv(zo, _ZR)
    if reference or batch * nzr >= 2**31 or xo * ks[2] >= 2**31 or yo >= 2**31:
        kernel = _separable_kernel("vz_separable", src_t, cdtype, dst_t, ks)
        threads = 256 if xo > 128 else 128
        grid = (1, min(yo, 65535), min(batch * zo, 65535))
        kernel(grid, (threads,), (src, dev_taps[0], dev_w[0], dev_taps[1], dev_w[1],
                                  dev_taps[2], dev_w[2], zi, yi, xi, np.int32(zo),
                                  np.int32(yo), np.int32(xo), np.int64(batch * zo),
                                  wt(cval), out))
        return out
    xpass = tables[-1] is None  # x passes through: vector loads, no x taps
    vec = _vector_width(xo, src, out) if xpass else 1
    xu = xo // vec  # x in units of VEC voxels
    tx = min(256, _cdiv(xu, 32) * 32)
    kernel = _separable_kernel(
        "vz_zwalk", src_t, cdtype, dst_t, ks[:2] + ((1,) if xpass else ks[2:]), vec=vec,
        salign=vec * src.dtype.itemsize, dalign=vec * out.dtype.itemsize,
        has_cval=int(any(int(t.min()) < 0 for t in taps)), xpass=int(xpass), zr=_ZR)
    grid = (_cdiv(xu, tx), min(yo, 65535), min(batch * nzr, 65535))
    kernel(grid, (tx,), (src, dev_taps[0], dev_w[0], dev_taps[1], dev_w[1], dev_taps[2],
                         dev_w[2], zi, yi, np.int64(xi // vec), np.int32(zo), np.int32(yo),
                         np.int32(xu), np.int32(nzr), np.int32(batch * nzr), wt(cval), out))
    return out
