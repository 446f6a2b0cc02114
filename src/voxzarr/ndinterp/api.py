"""The public functions of :mod:`voxzarr.ndinterp`: validate, then plan the graph."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np

from .._xp import empty_meta, is_cupy, ndimage_module
from ..errors import ArgumentTypeError, GeometryError, InterpolationArgumentError
from ._checks import (
    _as_dask,
    _check_mode,
    _check_order,
    _check_sigma,
    _output_shape,
    _resolve_output,
)
from ._complex import _complex_parts
from ._cval import _map_cval_fix, _needs_cval_fix
from ._graph import _default_chunks
from ._matrix import _check_planes, _is_diagonal, normalize_matrix, rotation_matrix
from ._plan import _general, _separable, _transform
from ._points import map_points
from ._taps import prefilter_depth

__all__ = [
    "affine_transform",
    "map_coordinates",
    "rotate",
    "scale_translate",
    "smoothed_affine",
    "spline_filter",
    "spline_filter1d",
]


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
            raise InterpolationArgumentError(
                f"input and output rank must be > 0 (input {ndim_in}-D, coordinates of shape "
                f"{np.shape(coords)})", field="coordinates")
        if np.shape(coords)[0] != ndim_in:
            raise InterpolationArgumentError(f"coordinates must have shape ({ndim_in}, ...), got "
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
    whatever the data read nothing (see :mod:`voxzarr.ndinterp._points`). numpy coordinates
    are planned at once; dask coordinates in one pass over them, computed up front.
    ``prefilter`` defaults to ``True`` as in scipy (dask-image's default of ``False`` does not
    interpolate the data for order > 1).
    """
    image = _as_dask(input)
    order = _check_order(order)
    mode = _check_mode(mode)
    dtype = _resolve_output(output, image)
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

    As in scipy, ``order`` must be 2-5 (:class:`~voxzarr.errors.InterpolationArgumentError`, a
    ``RuntimeError``, otherwise) and a 0-d input is returned as it is.
    """
    image = _as_dask(image, min_ndim=0)
    order = _check_order(order)
    if order < 2:
        raise InterpolationArgumentError(f"spline_filter needs a spline order 2-5, got {order}",
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
