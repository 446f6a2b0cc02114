"""The data behind the series figures: which voxels to draw, their traces, per-voxel maps.

:meth:`SeriesAnalysis.plot <voxzarr.series.SeriesAnalysis.plot>` and
:meth:`~voxzarr.series.SeriesAnalysis.map_figure` compute here and hand plain arrays to
:mod:`voxzarr.plot`, which only draws what it is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..coords import SPATIAL
from ..errors import ArgumentError
from .analysis import SeriesAnalysis

__all__ = ["SERIES_MAP_STATS", "TRACE_NORMALIZE", "choose_voxels", "grid_voxels", "map_data",
           "trace_data"]

#: per-voxel statistics that ``map_figure`` draws by name (the ``*_map`` methods)
SERIES_MAP_STATS = ("mean", "std", "var", "min", "max", "sum", "median")

#: normalisations of ``plot`` and the y-axis label of each
TRACE_NORMALIZE = {None: "intensity", "dff": "dF/F", "zscore": "z-score"}


def _even_picks(total: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(total)`` (both ends included)."""
    return np.unique(np.round(np.linspace(0, total - 1, min(n, total))).astype(np.intp))


def grid_voxels(sizes: Mapping[str, int], n: int) -> dict[str, np.ndarray]:
    """``n`` voxel positions on a regular grid over ``sizes``, one index array per dim.

    Points per axis grow on the axis with the widest gaps until the grid holds ``n``; each
    point is the centre of its grid cell; ``n`` of the grid points are then taken evenly
    in storage order.
    """
    dims = list(sizes)
    k = {d: 1 for d in dims}
    while math.prod(k.values()) < n:
        room = [d for d in dims if k[d] < sizes[d]]
        if not room:
            break
        widest = max(room, key=lambda d: sizes[d] / k[d])
        k[widest] += 1
    axes = [np.floor((np.arange(k[d]) + 0.5) * sizes[d] / k[d]).astype(np.intp) for d in dims]
    grid = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    pick = _even_picks(grid.shape[1], n)
    return {d: grid[i, pick] for i, d in enumerate(dims)}


def choose_voxels(ser: xr.DataArray, voxels: Any, n: int) -> dict[str, np.ndarray]:
    """Voxel indices (one integer array per voxel dim) from dicts, a mask, or a grid."""
    vox_dims = [str(d) for d in ser.dims if d not in ("t", "c")]
    if int(n) < 1:
        raise ArgumentError(f"n must be >= 1, got {n}", field="n")
    if voxels is None:
        return grid_voxels({d: ser.sizes[d] for d in vox_dims}, int(n))
    if isinstance(voxels, xr.DataArray):
        mask = np.asarray(SeriesAnalysis(ser)._spatial_array(voxels, "voxels").values)
        if mask.dtype != bool:
            raise ArgumentError(f"a voxels mask must be boolean, got {mask.dtype}",
                                field="voxels")
        spatial = [str(d) for d in ser.dims if d in SPATIAL]
        pos = np.nonzero(mask)
        if pos[0].size == 0:
            raise ArgumentError("the voxels mask selects no voxel", field="voxels")
        pick = _even_picks(pos[0].size, int(n))
        return {d: p[pick] for d, p in zip(spatial, pos, strict=True)}
    if isinstance(voxels, Mapping) or not isinstance(voxels, Sequence) or not voxels:
        raise ArgumentError("voxels must be a non-empty list of index dicts such as "
                            "[{'y': 3, 'x': 5}] or a boolean mask DataArray", field="voxels")
    out: dict[str, list[int]] = {d: [] for d in vox_dims}
    for i, v in enumerate(voxels):
        if not isinstance(v, Mapping) or set(v) != set(vox_dims):
            got = sorted(v) if isinstance(v, Mapping) else type(v).__name__
            raise ArgumentError(f"voxels[{i}] must name exactly {vox_dims}, got {got}",
                                field="voxels")
        for d in vox_dims:
            size = ser.sizes[d]
            idx = int(v[d])
            if not -size <= idx < size:
                raise ArgumentError(f"voxels[{i}]: {d}={idx} out of range for {size}",
                                    field="voxels")
            out[d].append(idx % size)
    return {d: np.asarray(p, dtype=np.intp) for d, p in out.items()}


def trace_data(ser: xr.DataArray, voxels: Any = None, n: int = 8,
               normalize: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The chosen voxels and their series, computed: ``(indices per dim, values)``.

    ``values`` has shape ``(voxel, [c,] t)``. Only the chosen voxels' series are read (a
    dask point selection), never the whole movie; ``normalize`` is ``None``, ``"dff"``
    (:meth:`SeriesAnalysis.dff`) or ``"zscore"`` (:meth:`SeriesAnalysis.zscore`).
    """
    if "t" not in ser.dims:
        raise ArgumentError(f"series traces need a 't' axis, got dims {ser.dims}",
                            field="dims")
    if normalize not in TRACE_NORMALIZE:
        raise ArgumentError(f"unknown normalize {normalize!r}; choose None, 'dff' or "
                            "'zscore'", field="normalize")
    idx = choose_voxels(ser, voxels, n)
    picked = ser.isel({d: xr.DataArray(p, dims="voxel") for d, p in idx.items()})
    picked = picked.transpose("voxel", *(["c"] if "c" in ser.dims else []), "t")
    if normalize is not None:
        picked = getattr(SeriesAnalysis(picked), normalize)().transpose(*picked.dims)
    return idx, np.asarray(picked.values)


def map_data(ser: xr.DataArray, stat: str | xr.DataArray = "mean") -> tuple[xr.DataArray, str]:
    """A per-voxel map over the spatial axes and what it shows (``"mean over t"``).

    ``stat`` names a statistic over time (:data:`SERIES_MAP_STATS`) or is a map already made
    (a DataArray without ``t``). Coordinates the map lacks, or holds without units, come
    from ``ser``; a ``c`` axis must hold one channel (it is dropped).
    """
    if isinstance(stat, xr.DataArray):
        smap, what = stat, str(stat.name or "map")
        if "t" in smap.dims:
            raise ArgumentError(f"a map has no 't' axis, got dims {smap.dims}", field="stat")
    elif stat in SERIES_MAP_STATS:
        smap = getattr(SeriesAnalysis(ser), f"{stat}_map")()
        what = f"{stat} over t"
    else:
        raise ArgumentError(f"unknown stat {stat!r}; choose from {SERIES_MAP_STATS} or "
                            "give a DataArray map", field="stat")
    # coordinates the map lacks, or holds without units (some reductions drop coordinate
    # attrs), come from the series where they agree
    smap = smap.assign_coords({
        d: ser.coords[d] for d in smap.dims
        if d in ser.coords and ser.sizes.get(d) == smap.sizes[d]
        and (d not in smap.coords or ("units" not in smap.coords[d].attrs
                                      and np.array_equal(smap.coords[d].values,
                                                         ser.coords[d].values)))})
    if "c" in smap.dims:
        if smap.sizes["c"] != 1:
            raise ArgumentError("a map of several channels: select one first, e.g. "
                                "ser.isel(c=0)", field="c")
        smap = smap.isel(c=0)
    return smap, what
