"""Resampling in physical units: isotropic voxels, any voxel size, affine maps, rotations.

Everything here is geometry: the interpolation itself is :mod:`voxzarr.ndinterp`, chunked,
lazy and exact to scipy's whole-array result. Conventions (``spec/resampling.md``):

- Coordinates are pixel centres. A new spacing ``s'`` on an axis keeps the grid's *lower
  edge* where it was, so the first voxel centre moves to ``t + (s' - s) / 2`` and output
  voxel ``j`` samples input index ``j * s'/s + (s'/s - 1) / 2``.
- The output length is ``round(n * s / s')`` (halves round up), at least 1.
- Default boundary mode ``nearest`` for resampling (no darkened border planes); ``constant``
  (``cval``, default 0) for affine maps and rotations, whose output grid usually reaches past
  the data.
- Downsampled axes are smoothed first (``anti_alias=True``): a Gaussian of
  ``sigma = (k - 1) / 2`` input voxels for a reduction by ``k = s' / s`` (scikit-image's
  rule), truncated at 4 sigma, boundary mode matched to ``mode``. Other axes are untouched.
- Label images (``attrs["image-label"]`` present, or ``labels=True``) use order 0 and no
  smoothing. ``t`` and ``c`` pass through. Integer outputs are rounded half away from zero
  and clipped to the dtype, on CPU and GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.utils import parse_bytes
from scipy import special

from . import ndinterp
from ._xp import (
    dask_to_device,
    gpu_block_chunks,
    is_cupy,
    rechunk_in_memory,
    resolve_device,
    run_now_on_gpu,
)
from .coords import SPATIAL, Geometry, combine_coords, geometry, make_coords
from .errors import ArgumentError, GeometryError
from .io import default_chunks

__all__ = [
    "DEFAULT_MAX_BYTES",
    "affine",
    "anti_alias_sigma",
    "isotropic_voxel_size",
    "output_length",
    "resample",
    "rotate",
    "to_isotropic",
]

#: outputs larger than this need an explicit ``chunks=`` (guards against a mistyped zoom)
DEFAULT_MAX_BYTES = 64 * 2**30


# --------------------------------------------------------------------------- small rules
def output_length(n: int, scale: float, target: float) -> int:
    """``round(n * scale / target)`` with halves rounded up, at least 1."""
    x = n * scale / target
    return max(1, int(math.floor(x + 0.5 + 1e-9 * x)))


def anti_alias_sigma(factor: float) -> float:
    """Gaussian sigma (input voxels) before reducing an axis by ``factor``: ``(k - 1) / 2``.

    Zero for ``factor <= 1`` (no smoothing when an axis is kept or upsampled).
    """
    return max(0.0, (float(factor) - 1.0) / 2.0)


def pull_reduction(matrix: np.ndarray, tol: float = 1e-9) -> list[float]:
    """Per input axis, how many input voxels one output step spans: the row norms of the
    output-to-input map ``matrix`` (voxel units), with values within ``tol`` of 1 (rounding
    in a rotation) taken as exactly 1."""
    norms = np.sqrt((np.asarray(matrix, dtype=np.float64) ** 2).sum(axis=1))
    return [1.0 if abs(k - 1.0) <= tol else float(k) for k in norms]


def _positive(value: Any, field: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"must be a number, got {value!r}", field=field) from None
    if not math.isfinite(v) or v <= 0:
        raise GeometryError(f"must be finite and > 0, got {value!r}", field=field)
    return v


def _image(obj: Any) -> tuple[xr.DataArray, Geometry]:
    if not isinstance(obj, xr.DataArray):
        raise ArgumentError(f"expected an xarray.DataArray image, got {type(obj).__name__}",
                            field="image")
    geo = geometry(obj)
    if not geo.spatial_dims:
        raise GeometryError(f"no spatial axis in dims {geo.dims}", field="dims")
    geo.require_scale()
    return obj, geo


def _is_labels(obj: xr.DataArray, labels: bool | None) -> bool:
    return bool("image-label" in obj.attrs) if labels is None else bool(labels)


def _dask_data(obj: xr.DataArray) -> da.Array:
    data = obj.data
    if isinstance(data, da.Array):
        return data
    return da.from_array(data, chunks=default_chunks(obj.dims, obj.shape),
                         asarray=not is_cupy(data))


def _out_chunks(chunks: Any, dims: Sequence[str], shape: Sequence[int],
                data: da.Array) -> tuple[int, ...]:
    """Output dask chunk shape: explicit ``chunks`` (tuple, dict by dim, or int for every
    spatial axis), else the input's chunk shape clipped to the output."""
    if chunks is None:
        base = {d: c for d, c in zip(dims, data.chunksize, strict=True)}
    elif isinstance(chunks, Mapping):
        base = {d: int(chunks.get(d, c)) for d, c in zip(dims, data.chunksize, strict=True)}
    elif isinstance(chunks, int | np.integer):
        base = {d: int(chunks) if d in SPATIAL else c
                for d, c in zip(dims, data.chunksize, strict=True)}
    else:
        values = tuple(int(c) for c in chunks)
        if len(values) != len(dims):
            raise ArgumentError(f"chunks needs {len(dims)} values for dims {tuple(dims)}, "
                                f"got {chunks!r}", field="chunks")
        base = dict(zip(dims, values, strict=True))
    if any(v < 1 for v in base.values()):
        raise ArgumentError(f"chunk sizes must be >= 1, got {chunks!r}", field="chunks")
    return tuple(min(base[d], n) for d, n in zip(dims, shape, strict=True))


def _check_size(shape: Sequence[int], dtype: np.dtype, chunks: Any,
                max_bytes: int | str | None) -> None:
    limit = DEFAULT_MAX_BYTES if max_bytes is None else (
        parse_bytes(max_bytes) if isinstance(max_bytes, str) else int(max_bytes))
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if chunks is None and nbytes > limit:
        raise ArgumentError(
            f"the output would be {nbytes / 2**30:.1f} GiB (shape {tuple(shape)}), over the "
            f"{limit / 2**30:.1f} GiB limit; check voxel_size / zoom, or pass chunks= (and "
            "max_bytes=) to confirm", field="chunks")


def _run_on(device: str, data: da.Array) -> tuple[da.Array, bool]:
    """Move chunks to the chosen device; remember whether they started on the GPU."""
    return dask_to_device(data, resolve_device(device, data)), is_cupy(data._meta)


def _prepare(obj: xr.DataArray, device: str, chunks: Any, dims: Sequence[str],
             shape: Sequence[int]) -> tuple[da.Array, bool, Any, Any]:
    """Input on its device, whether it started on the GPU, the chunks to compute the output
    in, and the chunks to hand it back in (``None``: as computed).

    Data already on the GPU and resampled there runs on a few large blocks
    (:func:`~voxzarr._xp.gpu_block_chunks`); the output keeps large blocks unless
    ``chunks`` asks for others.
    """
    src = _dask_data(obj)
    data, was_gpu = _run_on(device, src)
    wanted = _out_chunks(chunks, dims, shape, data)
    if not (was_gpu and is_cupy(data._meta)):
        return data, was_gpu, wanted, None
    blocks = gpu_block_chunks(data)
    if blocks is not None:  # views of the array when it is one in GPU memory
        data = rechunk_in_memory(data, blocks)
    out_blocks = gpu_block_chunks(data, shape=shape, dtype=obj.dtype)
    if out_blocks is None:  # too large for big GPU blocks: chunk as before
        return data, was_gpu, _out_chunks(chunks, dims, shape, data), None
    final = None if chunks is None or tuple(wanted) == tuple(out_blocks) else wanted
    return data, was_gpu, out_blocks, final


def _now_or_later(data: da.Array, out: da.Array, final: Any) -> da.Array:
    """The output in the chunks asked for; one block over an array in GPU memory is
    computed at call time (:func:`voxzarr._xp.run_now_on_gpu`)."""
    if final is None:
        now = run_now_on_gpu(data, out)
        if now is not None:
            return now
    return out if final is None else out.rechunk(final)


def _wrap(obj: xr.DataArray, geo: Geometry, data: da.Array, scale: Mapping[str, float],
          translation: Mapping[str, float], was_gpu: bool) -> xr.DataArray:
    if not was_gpu:
        data = dask_to_device(data, "cpu")
    new_scale = {**geo.scale, **scale}
    new_trans = {**geo.translation, **translation}
    coords = make_coords(geo.dims, data.shape, new_scale, new_trans, geo.units,
                         geo.channel_names)
    if "c" in obj.coords:  # channels pass through untouched
        coords = combine_coords([coords, xr.Coordinates({"c": obj.coords["c"].variable})])
    out = xr.DataArray(data, dims=geo.dims, coords=coords, attrs=dict(obj.attrs))
    out.name = obj.name  # the constructor would take a nameless input's dask key as the name
    return out


# --------------------------------------------------------------------------- resampling
def resample(
    obj: xr.DataArray,
    voxel_size: Mapping[str, float] | Sequence[float] | float,
    order: int = 1,
    *,
    mode: str = "nearest",
    anti_alias: bool = True,
    device: str = "auto",
    chunks: Any = None,
    cval: float = 0.0,
    labels: bool | None = None,
    max_bytes: int | str | None = None,
) -> xr.DataArray:
    """Resample to a new voxel size, keeping the image's physical extent and placement.

    Parameters
    ----------
    obj
        Image with physical coordinates on its spatial axes (any of ``t, c, z, y, x``).
    voxel_size
        Target spacing: one number for every spatial axis, one per spatial axis in dims
        order (``(1.0, 0.5, 0.5)`` for ``z, y, x``), or ``{"z": 0.5}`` (axes not named keep
        theirs), in each axis' own unit.
    order
        Spline order 0-5 (1 = (tri)linear). Forced to 0 for label images.
    mode, cval
        Boundary mode (any of :data:`voxzarr.ndinterp.MODES`) and constant.
    anti_alias
        Gaussian pre-smoothing of downsampled axes, ``sigma = (k - 1) / 2`` input voxels
        for a reduction by ``k`` (order >= 1 only).
    device
        ``"auto"`` (GPU when CuPy and a GPU are present), ``"cpu"`` or ``"gpu"``.
    chunks
        Output dask chunks: tuple, dict by dim, or one int for the spatial axes. Default:
        the input's chunk shape; for CuPy-backed input resampled on the GPU, a few large
        GPU blocks (the whole output when it fits in an eighth of free GPU memory; see
        :func:`voxzarr._xp.gpu_block_chunks`). When that is one block over one CuPy
        array already in GPU memory, it is computed at call time (asynchronously on the
        current CuPy stream): the result is a view of it, with no graph to schedule.
    labels
        Treat as a label image (order 0, no smoothing); default: ``"image-label"`` in attrs.
    max_bytes
        Outputs larger than this (default 64 GiB) are refused unless ``chunks`` is given.

    Returns
    -------
    xarray.DataArray
        Lazy (dask), same dims, dtype, units, name and attrs; coordinates on the new grid.
    """
    obj, geo = _image(obj)
    spatial = geo.spatial_dims
    if isinstance(voxel_size, Mapping):
        unknown = [d for d in voxel_size if d not in spatial]
        if unknown:
            raise GeometryError(f"voxel_size names {unknown}, which are not spatial axes of "
                                f"{geo.dims}", field="voxel_size")
        target = {d: _positive(voxel_size.get(d, geo.scale[d]), f"voxel_size.{d}")
                  for d in spatial}
    elif isinstance(voxel_size, Sequence) and not isinstance(voxel_size, str):
        if len(voxel_size) != len(spatial):
            raise GeometryError(f"voxel_size has {len(voxel_size)} values for the spatial "
                                f"axes {spatial}: give one per spatial axis, one number "
                                "for all, or a mapping such as {'z': 0.5}", field="voxel_size")
        target = {d: _positive(v, f"voxel_size.{d}")
                  for d, v in zip(spatial, voxel_size, strict=True)}
    else:
        v = _positive(voxel_size, "voxel_size")
        target = {d: v for d in spatial}
    return _resample(obj, geo, target, order, mode, anti_alias, device, chunks, cval, labels,
                     max_bytes)


def to_isotropic(
    obj: xr.DataArray,
    voxel_size: float | None = None,
    zoom: float = 1.0,
    order: int = 1,
    **kwargs: Any,
) -> xr.DataArray:
    """Resample to cubic voxels of side ``voxel_size / zoom``.

    ``voxel_size`` defaults to the finest current spatial spacing. The output length per
    spatial axis is ``round(n * s / (voxel_size / zoom))``: a (86, 396, 393) stack at
    (1, 0.202, 0.202) gives (86, 80, 79) with ``voxel_size=1`` and (172, 160, 159) with
    ``voxel_size=1, zoom=2``. Other keywords as for :func:`resample` (``mode="nearest"``,
    ``anti_alias=True``, ``device="auto"``, ``chunks``, ``cval``, ``labels``, ``max_bytes``).
    """
    return resample(obj, isotropic_voxel_size(obj, voxel_size, zoom), order, **kwargs)


def isotropic_voxel_size(obj: xr.DataArray, voxel_size: float | None = None,
                         zoom: float = 1.0) -> float:
    """The cubic voxel side :func:`to_isotropic` targets: ``voxel_size / zoom``.

    ``voxel_size`` defaults to the finest spatial spacing. All spatial axes must share one
    unit.
    """
    obj, geo = _image(obj)
    spatial = geo.spatial_dims
    units = {geo.units.get(d) for d in spatial}
    if len(units) > 1:
        raise GeometryError(f"spatial axes have different units {sorted(map(str, units))}; "
                            "convert them to one unit first (img.vox.set_voxel_size)",
                            field="units")
    z = _positive(zoom, "zoom")
    if isinstance(voxel_size, Sequence | Mapping) and not isinstance(voxel_size, str):
        raise GeometryError(f"to_isotropic takes one cube side, got {voxel_size!r}; "
                            "resample(voxel_size=...) takes one spacing per axis",
                            field="voxel_size")
    v = min(geo.scale[d] for d in spatial) if voxel_size is None else _positive(
        voxel_size, "voxel_size")
    return v / z


def _resample(obj: xr.DataArray, geo: Geometry, target: Mapping[str, float], order: int,
              mode: str, anti_alias: bool, device: str, chunks: Any, cval: float,
              labels: bool | None, max_bytes: int | str | None) -> xr.DataArray:
    is_labels = _is_labels(obj, labels)
    order = 0 if is_labels else order
    shape, scale, offset, sigma = [], [], [], []
    new_scale, new_trans = {}, {}
    for d, n in zip(geo.dims, obj.shape, strict=True):
        if d not in target:
            shape.append(n)
            scale.append(1.0)
            offset.append(0.0)
            sigma.append(0.0)
            continue
        s, t = geo.scale[d], target[d]
        m = t / s  # input voxels per output voxel
        shape.append(output_length(n, s, t))
        scale.append(m)
        offset.append((m - 1.0) / 2.0)
        smooth = anti_alias and not is_labels and order >= 1
        sigma.append(anti_alias_sigma(m) if smooth else 0.0)
        new_scale[d] = t
        new_trans[d] = geo.translation[d] + (t - s) / 2.0
    _check_size(shape, np.dtype(obj.dtype), chunks, max_bytes)
    data, was_gpu, out_chunks, final = _prepare(obj, device, chunks, geo.dims, shape)
    out = ndinterp.scale_translate(
        data, scale, offset, shape, order, out_chunks,
        mode=mode, cval=cval, output=obj.dtype, sigma=sigma)
    out = _now_or_later(data, out, final)
    return _wrap(obj, geo, out, new_scale, new_trans, was_gpu)


# --------------------------------------------------------------------------- affine maps
def _spatial_matrix(matrix: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of a forward map ``p' = A p + b`` over the ``k`` spatial axes."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape == (k, k):
        a, b = m, np.zeros(k)
    elif m.shape in ((k, k + 1), (k + 1, k + 1)):
        if m.shape[0] == k + 1 and not np.array_equal(m[-1], np.r_[np.zeros(k), 1.0]):
            raise GeometryError(f"last row of a homogeneous matrix must be "
                                f"{[0.0] * k + [1.0]}, got {m[-1].tolist()}", field="matrix")
        a, b = m[:k, :k], m[:k, k]
    else:
        raise GeometryError(f"matrix of shape {m.shape} does not fit {k} spatial axes; "
                            f"expected ({k}, {k}), ({k}, {k + 1}) or ({k + 1}, {k + 1})",
                            field="matrix")
    if not np.all(np.isfinite(m)):
        raise GeometryError("matrix must be finite", field="matrix")
    if abs(np.linalg.det(a)) < 1e-12 * max(1.0, float(np.abs(a).max())) ** k:
        raise GeometryError("matrix is singular (not invertible)", field="matrix")
    return a, b


def _grid_from(output_grid: Any, geo: Geometry, spatial: tuple[str, ...],
               corners: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Output ``(shape, spacing, first-voxel centre)`` over the spatial axes.

    ``output_grid``: ``None`` (bounding box of the transformed image at the input spacing,
    centred on it), an image DataArray (its grid), or a dict with any of ``voxel_size``,
    ``shape`` and ``origin`` (the rest from the bounding box).
    """
    if isinstance(output_grid, xr.DataArray):
        g = geometry(output_grid)
        missing = [d for d in spatial if d not in g.scale]
        if missing:
            raise GeometryError(f"output_grid lacks spatial axes {missing}",
                                field="output_grid")
        return ([g.size(d) for d in spatial], np.array([g.scale[d] for d in spatial]),
                np.array([g.translation[d] for d in spatial]))
    spec = dict(output_grid or {})
    unknown = set(spec) - {"voxel_size", "shape", "origin"}
    if unknown:
        raise GeometryError(f"unknown output_grid keys {sorted(unknown)}; use voxel_size, "
                            "shape, origin", field="output_grid")

    def per_axis(value: Any, default: Sequence[float], name: str) -> np.ndarray:
        if value is None:
            return np.asarray(default, dtype=np.float64)
        if isinstance(value, Mapping):
            return np.array([float(value.get(d, dv)) for d, dv in zip(spatial, default,
                                                                      strict=True)])
        if np.ndim(value) == 0:
            return np.full(len(spatial), float(value))
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (len(spatial),):
            raise GeometryError(f"needs {len(spatial)} values for {spatial}",
                                field=f"output_grid.{name}")
        return arr

    spacing = per_axis(spec.get("voxel_size"), [geo.scale[d] for d in spatial], "voxel_size")
    for d, s in zip(spatial, spacing, strict=True):
        _positive(s, f"output_grid.voxel_size.{d}")
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    auto = np.maximum(1, np.ceil((hi - lo) / spacing - 1e-6)).astype(int)
    shape = per_axis(spec.get("shape"), auto, "shape").astype(int)
    if np.any(shape < 1):
        raise GeometryError(f"shape must be >= 1, got {shape.tolist()}", field="output_grid.shape")
    centred = (lo + hi) / 2 - (shape - 1) * spacing / 2
    origin = per_axis(spec.get("origin"), centred, "origin")
    return shape.tolist(), spacing, origin


def _extent_corners(geo: Geometry, spatial: tuple[str, ...]) -> np.ndarray:
    """Physical corners of the image's voxel-edge box, ``(2**k, k)``."""
    ranges = [(geo.translation[d] - geo.scale[d] / 2,
               geo.translation[d] + (geo.size(d) - 0.5) * geo.scale[d]) for d in spatial]
    return np.array(np.meshgrid(*ranges, indexing="ij")).reshape(len(spatial), -1).T


def _snap(x: np.ndarray, bits: int = 20, tol: float = 1e-10) -> np.ndarray:
    """Remove float noise from index maps: values within ``tol`` of a multiple of
    ``2**-bits`` become that multiple, so an identity or a whole-voxel shift maps voxel
    centres exactly onto voxel centres (``constant`` mode would otherwise drop edge planes
    whose coordinate came out as -1e-16)."""
    grid = np.round(x * 2.0**bits) / 2.0**bits
    return np.where(np.abs(x - grid) < tol, grid, x)


def _pull(obj: xr.DataArray, geo: Geometry, a_pull: np.ndarray, b_pull: np.ndarray,
          grid: tuple[list[int], np.ndarray, np.ndarray], order: int, mode: str, cval: float,
          prefilter: bool, device: str, chunks: Any, labels: bool | None,
          max_bytes: int | str | None, anti_alias: bool = False,
          planes: tuple[str, str] | None = None) -> xr.DataArray:
    """Resample onto ``grid`` where output physical ``p`` reads input ``a_pull p + b_pull``.

    ``planes`` (two dims): transform plane by plane, other axes passing through untouched.
    """
    spatial = geo.spatial_dims
    shape_sp, s_out, t_out = grid
    s_in = np.array([geo.scale[d] for d in spatial])
    t_in = np.array([geo.translation[d] for d in spatial])
    # index maps: p = t + s * i on both sides
    m_sp = _snap((a_pull * s_out[None, :]) / s_in[:, None])
    off_sp = _snap((a_pull @ t_out + b_pull - t_in) / s_in)
    nd = len(geo.dims)
    pos = [geo.dims.index(d) for d in spatial]
    matrix, offset = np.eye(nd), np.zeros(nd)
    matrix[np.ix_(pos, pos)] = m_sp
    offset[pos] = off_sp
    shape = list(obj.shape)
    for p, n in zip(pos, shape_sp, strict=True):
        shape[p] = int(n)
    if _is_labels(obj, labels):
        order = 0
    sigma = np.zeros(nd)
    if anti_alias and order >= 1:
        sigma[pos] = [anti_alias_sigma(k) for k in pull_reduction(m_sp)]
    _check_size(shape, np.dtype(obj.dtype), chunks, max_bytes)
    data, was_gpu, out_chunks, final = _prepare(obj, device, chunks, geo.dims, shape)
    axes_pl = None if planes is None else [geo.dims.index(d) for d in planes]
    if sigma.any():
        out = ndinterp.smoothed_affine(data, matrix, offset, shape, order, out_chunks,
                                       mode=mode, cval=cval, prefilter=prefilter,
                                       output=obj.dtype, sigma=sigma.tolist(), planes=axes_pl)
    else:
        out = ndinterp.affine_transform(data, matrix, offset, shape, order, out_chunks,
                                        mode=mode, cval=cval, prefilter=prefilter,
                                        output=obj.dtype, planes=axes_pl)
    out = _now_or_later(data, out, final)
    return _wrap(obj, geo, out, dict(zip(spatial, s_out.tolist(), strict=True)),
                 dict(zip(spatial, t_out.tolist(), strict=True)), was_gpu)


def affine(
    obj: xr.DataArray,
    matrix: Any,
    output_grid: Any = None,
    order: int = 1,
    *,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    anti_alias: bool = True,
    device: str = "auto",
    chunks: Any = None,
    labels: bool | None = None,
    max_bytes: int | str | None = None,
) -> xr.DataArray:
    """Apply an affine map given in physical units (forward: where each point goes).

    Parameters
    ----------
    matrix
        Over the spatial axes in dims order (``z, y, x``): ``(k, k)`` linear, or
        homogeneous ``(k, k + 1)`` / ``(k + 1, k + 1)`` with the translation (in the axes'
        units) in the last column. A point at physical position ``p`` moves to
        ``A @ p + b``. To give the output-to-input map instead, pass its inverse.
    output_grid
        ``None``: the bounding box of the moved image, at the input voxel size, centred on
        it. An image (DataArray): resample onto its grid. A dict with any of
        ``voxel_size``, ``shape``, ``origin`` (first voxel centre): the rest as for ``None``.
    order, mode, cval, prefilter
        Interpolation as in :func:`voxzarr.ndinterp.affine_transform`; ``mode`` defaults to
        ``constant`` with ``cval=0`` (the grid usually reaches past the data).
    anti_alias
        Gaussian pre-smoothing of input axes the output samples more coarsely: with ``M``
        the output-to-input map in voxel units, input axis ``i`` is reduced by
        ``k_i = |M[i, :]|`` (the norm of its row: how many input voxels along ``i`` one
        output step spans), smoothed with ``sigma = (k_i - 1) / 2`` when ``k_i > 1``, as
        :func:`resample` does. Rotations and upsampling are left untouched.
    device, chunks, labels, max_bytes
        As for :func:`resample`.
    """
    obj, geo = _image(obj)
    spatial = geo.spatial_dims
    a, b = _spatial_matrix(matrix, len(spatial))
    a_inv = np.linalg.inv(a)
    corners = _extent_corners(geo, spatial) @ a.T + b
    grid = _grid_from(output_grid, geo, spatial, corners)
    return _pull(obj, geo, a_inv, -a_inv @ b, grid, order, mode, cval, prefilter, device,
                 chunks, labels, max_bytes, anti_alias)


def rotate(
    obj: xr.DataArray,
    angle: float,
    axes: tuple[str, str] = ("y", "x"),
    reshape: bool = True,
    *,
    order: int = 1,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
    anti_alias: bool = True,
    device: str = "auto",
    chunks: Any = None,
    labels: bool | None = None,
    max_bytes: int | str | None = None,
) -> xr.DataArray:
    """Rotate by ``angle`` degrees about the image centre, in physical space.

    The rotation acts on physical positions, so anisotropic voxels rotate correctly. The
    sense of rotation is scipy's: with equal voxel sizes and ``reshape=False`` the result
    equals ``scipy.ndimage.rotate(data, angle, axes=(i, j), reshape=False)`` with ``i, j``
    the positions of ``axes``. ``reshape=True`` grows the grid (same voxel size) to hold
    the whole rotated image; ``False`` keeps the input grid. With anisotropic voxels a
    rotation out of the fine plane samples the fine axis more coarsely; ``anti_alias``
    smooths it first, as in :func:`affine`. Other keywords as for :func:`affine`.
    """
    obj, geo = _image(obj)
    names = tuple(axes)
    if len(names) != 2 or names[0] == names[1] or any(d not in geo.spatial_dims
                                                      for d in names):
        raise GeometryError(f"axes must be two different spatial axes of {geo.dims}, got "
                            f"{axes!r}", field="axes")
    spatial = geo.spatial_dims
    i, j = sorted(spatial.index(d) for d in names)
    c, s = special.cosdg(angle), special.sindg(angle)
    a_pull = np.eye(len(spatial))
    a_pull[np.ix_([i, j], [i, j])] = [[c, s], [-s, c]]
    centre = np.array([geo.translation[d] + (geo.size(d) - 1) * geo.scale[d] / 2
                       for d in spatial])
    b_pull = centre - a_pull @ centre
    if reshape:
        corners = (_extent_corners(geo, spatial) - b_pull) @ np.linalg.inv(a_pull).T
        grid = _grid_from(None, geo, spatial, corners)
    else:
        grid = _grid_from(obj, geo, spatial, np.zeros((1, len(spatial))))
    # like scipy.ndimage.rotate, plane by plane: other axes are neither prefiltered nor
    # interpolated (they map to themselves)
    return _pull(obj, geo, a_pull, b_pull, grid, order, mode, cval, prefilter, device,
                 chunks, labels, max_bytes, anti_alias, planes=names)
