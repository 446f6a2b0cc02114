"""The ``.vox`` accessors. Thin by design: every method delegates to a module function.

The accessor keeps only the wrapped object; geometry is derived from the coordinates on each
access (see :mod:`voxzarr.coords`), so it can never go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import xarray as xr

from . import coords as _coords

__all__ = ["VoxAccessor", "VoxTreeAccessor"]


@xr.register_dataarray_accessor("vox")
class VoxAccessor:
    """Physical geometry and voxzarr operations on an image DataArray (``img.vox``)."""

    def __init__(self, obj: xr.DataArray):
        self._obj = obj

    # ------------------------------------------------------------------ geometry
    @property
    def geometry(self) -> _coords.Geometry:
        """All geometry (dims, shape, scale, translation, units, channels) in one object."""
        return _coords.geometry(self._obj)

    @property
    def voxel_size(self) -> dict[str, float]:
        """Spacing of the spatial axes, e.g. ``{"z": 1.0, "y": 0.202, "x": 0.202}``."""
        geo = self.geometry
        return {d: geo.scale[d] for d in geo.spatial_dims if d in geo.scale}

    @property
    def scale(self) -> dict[str, float]:
        """Spacing of every physical axis, ``t`` (frame interval) included."""
        return dict(self.geometry.scale)

    @property
    def units(self) -> dict[str, str | None]:
        """Unit (full UDUNITS name) of each physical axis, ``t`` included."""
        return dict(self.geometry.units)

    @property
    def origin(self) -> dict[str, float]:
        """Physical position of the centre of the first voxel, per physical axis."""
        return dict(self.geometry.translation)

    @property
    def extent(self) -> dict[str, tuple[float, float]]:
        """Physical bounds ``(lower edge, upper edge)`` of the voxels along each physical axis."""
        geo = self.geometry
        return {
            d: (geo.translation[d] - geo.scale[d] / 2,
                geo.translation[d] + (geo.size(d) - 0.5) * geo.scale[d])
            for d in geo.scale
        }

    def set_voxel_size(
        self,
        voxel_size: Mapping[str, float] | Sequence[float] | float | None = None,
        *,
        units: Mapping[str, str | None] | str | None = None,
        origin: Mapping[str, float] | Sequence[float] | None = None,
    ) -> xr.DataArray:
        """Return a copy with new voxel size, units and/or origin (first voxel centre).

        ``voxel_size`` and ``origin`` are mappings by axis or one value per spatial axis in
        dims order; one number for ``voxel_size`` (or ``units``) sets every spatial axis.
        """
        return _coords.with_geometry(self._obj, scale=voxel_size, translation=origin,
                                     units=units)

    # ------------------------------------------------------------------ I/O
    def to_ome_zarr(self, location: Any, *, compute: bool = True, **kwargs: Any) -> Any:
        """Write as OME-Zarr; see :func:`voxzarr.io.to_ome_zarr` for the options.

        ``compute=False`` returns a :class:`dask.delayed.Delayed` that writes when computed.
        """
        from .io import to_ome_zarr

        return to_ome_zarr(self._obj, location, compute=compute, **kwargs)

    # ------------------------------------------------------------------ resampling
    def to_isotropic(self, voxel_size: float | None = None, zoom: float = 1.0, order: int = 1,
                     **kwargs: Any) -> xr.DataArray:
        """Resample to isotropic voxels; see :func:`voxzarr.resample.to_isotropic`."""
        from .resample import to_isotropic

        return to_isotropic(self._obj, voxel_size=voxel_size, zoom=zoom, order=order, **kwargs)

    def resample(self, voxel_size: Mapping[str, float] | Sequence[float] | float,
                 order: int = 1, **kwargs: Any) -> xr.DataArray:
        """Resample to any voxel size; see :func:`voxzarr.resample.resample`."""
        from .resample import resample

        return resample(self._obj, voxel_size=voxel_size, order=order, **kwargs)

    def affine(self, matrix: Any, output_grid: Any = None, order: int = 1,
               **kwargs: Any) -> xr.DataArray:
        """Apply an affine transform in physical units; see :func:`voxzarr.resample.affine`."""
        from .resample import affine

        return affine(self._obj, matrix, output_grid=output_grid, order=order, **kwargs)

    def rotate(self, angle: float, axes: tuple[str, str] = ("y", "x"), reshape: bool = True,
               **kwargs: Any) -> xr.DataArray:
        """Rotate about the image centre; see :func:`voxzarr.resample.rotate`."""
        from .resample import rotate

        return rotate(self._obj, angle, axes=axes, reshape=reshape, **kwargs)

    # ------------------------------------------------------------------ pyramids
    def pyramid(self, levels: int | None = None, method: str | None = None,
                **kwargs: Any) -> xr.DataTree:
        """Multiscale pyramid as a DataTree; see :func:`voxzarr.pyramid.build_pyramid`."""
        from .pyramid import build_pyramid

        return build_pyramid(self._obj, levels=levels, method=method, **kwargs)

    # ------------------------------------------------------------------ filters and halos
    def filter(self, name: str, **params: Any) -> xr.DataArray:
        """Seam-free chunked filter; see :func:`voxzarr.filters.apply_filter`."""
        from .filters import apply_filter

        return apply_filter(self._obj, name, **params)

    def to_halo(self, location: Any, depth: Any = None, for_filter: Any = None, *,
                compute: bool = True, **kwargs: Any) -> Any:
        """Store overlap-halo chunks beside the image; see :func:`voxzarr.halo.write_halo`.

        ``compute=False`` returns a :class:`dask.delayed.Delayed` that builds them when
        computed (the image must already be stored at ``location``).
        """
        from .filters import halo_depth_rule
        from .halo import write_halo

        rule = None if for_filter is None else halo_depth_rule(for_filter)
        return write_halo(self._obj, location, depth=depth, for_filter=rule, compute=compute,
                          **kwargs)

    def find_halo_depth(self, fn: Callable[..., Any], max_depth: int = 64,
                        **kwargs: Any) -> Any:
        """Smallest seam-free halo depth for ``fn``; see :func:`voxzarr.halo.find_halo_depth`."""
        from .halo import find_halo_depth

        return find_halo_depth(self._obj, fn, max_depth=max_depth, **kwargs)

    # ------------------------------------------------------------------ series
    def to_series(self, location: Any, memory: str | int = "512MB", *, compute: bool = True,
                  **kwargs: Any) -> Any:
        """Image -> series chunk-layout transpose; see :func:`voxzarr.series.to_series`.

        ``compute=False`` returns a :class:`dask.delayed.Delayed` that converts when computed.
        """
        from .series import to_series

        return to_series(self._obj, location, memory=memory, compute=compute, **kwargs)

    def to_images(self, location: Any, *, compute: bool = True, **kwargs: Any) -> Any:
        """Series -> image chunk layout; see :func:`voxzarr.series.to_images`.

        ``compute=False`` returns a :class:`dask.delayed.Delayed` that converts when computed.
        """
        from .series import to_images

        return to_images(self._obj, location, compute=compute, **kwargs)

    @property
    def series(self) -> Any:
        """Per-voxel series analyses (``ser.vox.series.mean_map()`` ...)."""
        from .series import SeriesAnalysis

        return SeriesAnalysis(self._obj)

    # ------------------------------------------------------------------ pictures
    def projections(self, **kwargs: Any) -> Any:
        """XY, XZ and ZY maximum projections at true physical aspect (matplotlib figure)."""
        from .plot import projections

        return projections(self._obj, **kwargs)

    def to_pngs(self, directory: Any, **kwargs: Any) -> list[Any]:
        """One PNG per plane or timepoint; see :func:`voxzarr.plot.to_pngs`."""
        from .plot import to_pngs

        return to_pngs(self._obj, directory, **kwargs)


@xr.register_datatree_accessor("vox")
class VoxTreeAccessor:
    """voxzarr operations on a multiscale DataTree (``tree.vox``)."""

    def __init__(self, obj: xr.DataTree):
        self._obj = obj

    def to_ome_zarr(self, location: Any, *, compute: bool = True, **kwargs: Any) -> Any:
        """Write every level as one OME-Zarr multiscale image (see
        :func:`voxzarr.io.to_ome_zarr`; ``compute=False`` returns a Delayed)."""
        from .io import to_ome_zarr

        return to_ome_zarr(self._obj, location, compute=compute, **kwargs)

    def level(self, index: int | str = 0) -> xr.DataArray:
        """The image DataArray of one level (by position or name)."""
        from .io import IMAGE_VAR

        names = list(self._obj.children)
        key = names[index] if isinstance(index, int) else index
        return self._obj[key].to_dataset()[IMAGE_VAR]
