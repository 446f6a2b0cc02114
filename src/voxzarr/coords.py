"""The one place where geometry meets xarray coordinates.

Convention (see ``spec/conventions.md``): for every ``t``, ``z``, ``y``, ``x`` dimension the
coordinate holds *pixel-centre* physical positions, ``coord[i] = translation + i * scale``,
with the unit as a full UDUNITS name in ``coord.attrs["units"]``. The ``c`` coordinate holds
channel labels. Voxel size, origin and units are derived from the coordinates each time they
are needed, so slicing, ``isel``, ``coarsen`` or ``thin`` keep the geometry right.

A coordinate of length one cannot show its spacing. Coordinates made here are indexed by a
:class:`~voxzarr.gridindex.GridIndex`, which carries the sampling step through ``isel``,
``sel``, ``concat`` and alignment; where an operation dropped that index and the step is not
certain, :func:`geometry` refuses rather than return a stale spacing. Longer axes always
derive it from their values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ._dims import AXIS_TYPES, DIM_ORDER, SPATIAL
from .errors import ArgumentError, GeometryError
from .gridindex import GridIndex, grid_coordinate, spacing_of_single
from .units import normalize_unit

__all__ = [
    "DIM_ORDER",
    "SPATIAL",
    "AXIS_TYPES",
    "Geometry",
    "parse_dims",
    "axis_coord",
    "make_coords",
    "combine_coords",
    "geometry",
    "with_geometry",
]


def parse_dims(dims: str | Sequence[str], ndim: int | None = None) -> tuple[str, ...]:
    """Validate dimension names: a subset of ``t, c, z, y, x`` in that order, 2 to 5 of them.

    ``dims`` may be a string such as ``"zyx"`` or a sequence of names.
    """
    names = tuple(dims) if not isinstance(dims, str) else tuple(dims)
    if len(set(names)) != len(names):
        raise GeometryError(f"repeated dimension names in {names}", field="dims")
    unknown = [d for d in names if d not in DIM_ORDER]
    if unknown:
        raise GeometryError(
            f"unknown dimension(s) {unknown}; voxzarr images use names from {DIM_ORDER}",
            field="dims",
        )
    if list(names) != sorted(names, key=DIM_ORDER.index):
        ordered = "".join(sorted(names, key=DIM_ORDER.index))
        raise GeometryError(
            f"dimensions {''.join(names)!r} are not in NGFF order t, c, z, y, x; "
            f"transpose to {ordered!r} first",
            field="dims",
        )
    if not 2 <= len(names) <= 5 or not any(d in SPATIAL for d in names):
        raise GeometryError(
            f"an image needs 2 to 5 dimensions with at least one spatial axis, got {names}",
            field="dims",
        )
    if ndim is not None and ndim != len(names):
        raise GeometryError(
            f"{len(names)} dimension names {names} for an array of {ndim} dimensions",
            field="dims",
        )
    return names


def _check_spacing(dim: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise GeometryError(f"voxel size must be finite and > 0, got {value!r}", field=dim)
    return v


def axis_coord(dim: str, n: int, scale: float, translation: float,
               unit: str | None) -> xr.Coordinates:
    """Pixel-centre coordinate ``translation + arange(n) * scale`` for one axis.

    Returned as :class:`xarray.Coordinates` indexed by a :class:`GridIndex`, so the spacing
    survives selections down to one sample.
    """
    scale = _check_spacing(dim, scale)
    translation = float(translation)
    if not np.isfinite(translation):
        raise GeometryError(f"translation must be finite, got {translation!r}", field=dim)
    values = translation + np.arange(n, dtype=np.float64) * scale
    attrs: dict[str, object] = {}
    unit = normalize_unit(unit, field=f"units.{dim}")
    if unit is not None:
        attrs["units"] = unit
    return grid_coordinate(dim, values, scale, attrs)


def make_coords(
    dims: Sequence[str],
    shape: Sequence[int],
    scale: Mapping[str, float] | None = None,
    translation: Mapping[str, float] | None = None,
    units: Mapping[str, str | None] | None = None,
    channel_names: Sequence[str] | None = None,
) -> xr.Coordinates:
    """Coordinates for an image of ``dims`` / ``shape`` (missing scale 1, translation 0).

    Physical axes are indexed by :class:`~voxzarr.gridindex.GridIndex`; pass the result as
    ``coords=`` (it is an :class:`xarray.Coordinates`, which keeps those indexes).
    """
    scale = dict(scale or {})
    translation = dict(translation or {})
    units = dict(units or {})
    parts: list[xr.Coordinates] = []
    for dim, n in zip(dims, shape, strict=True):
        if dim == "c":
            if channel_names is not None:
                names = list(channel_names)
                if len(names) != n:
                    raise GeometryError(
                        f"{len(names)} channel names for {n} channels", field="channel_names"
                    )
                parts.append(xr.Coordinates({"c": np.asarray(names, dtype=object)}))
            continue
        parts.append(axis_coord(
            dim, n, scale.get(dim, 1.0), translation.get(dim, 0.0), units.get(dim)
        ))
    return combine_coords(parts)


def combine_coords(parts: Iterable[xr.Coordinates]) -> xr.Coordinates:
    """One :class:`xarray.Coordinates` from several, keeping each one's indexes."""
    variables: dict[str, xr.Variable] = {}
    indexes: dict[str, object] = {}
    for part in parts:
        variables.update({str(k): v for k, v in part.variables.items()})
        indexes.update({str(k): v for k, v in part.xindexes.items()})
    return xr.Coordinates(variables, indexes=indexes)


@dataclass(frozen=True)
class Geometry:
    """Geometry of an image, derived from its coordinates (never stored separately).

    ``scale`` / ``translation`` / ``units`` hold every non-channel dimension that has a
    coordinate; dimensions without a coordinate are absent from them.
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    scale: dict[str, float] = field(default_factory=dict)
    translation: dict[str, float] = field(default_factory=dict)
    units: dict[str, str | None] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = None

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.dims if d in SPATIAL)

    def size(self, dim: str) -> int:
        return self.shape[self.dims.index(dim)]

    def require_scale(self, dims: Iterable[str] | None = None) -> dict[str, float]:
        """Scale of ``dims`` (default: spatial), raising if an axis has no voxel size."""
        wanted = tuple(self.spatial_dims if dims is None else dims)
        missing = [d for d in wanted if d not in self.scale]
        if missing:
            raise GeometryError(
                f"no voxel size on axis {missing}: give a coordinate or use vz.from_array / "
                "img.vox.set_voxel_size",
                field=",".join(missing),
            )
        return {d: self.scale[d] for d in wanted}

    def scale_vector(self) -> list[float]:
        """NGFF scale vector in ``dims`` order (channel 1.0)."""
        return [1.0 if d == "c" else float(self.scale.get(d, 1.0)) for d in self.dims]

    def translation_vector(self) -> list[float]:
        """NGFF translation vector in ``dims`` order (channel 0.0)."""
        return [0.0 if d == "c" else float(self.translation.get(d, 0.0)) for d in self.dims]


def _exact_spacing(values: np.ndarray, known: float | None = None) -> float:
    """Spacing that best reproduces ``values`` as ``values[0] + i * s``.

    Candidates are ``known`` (the step a :class:`~voxzarr.gridindex.GridIndex` carries:
    the spacing the coordinate was made with), short decimal roundings of the end-to-end
    mean step, the step itself, the first step and values a few ulps around it; the first
    that reproduces the coordinates bit for bit wins (so a spacing of 0.202 reads back as
    0.202, not 0.20200000000000001), else ``known`` when it is within the coordinates'
    rounding of the mean step, else the mean step.
    """
    n = values.size
    mean_step = (values[-1] - values[0]) / (n - 1)
    candidates = [] if known is None else [float(known)]
    for digits in (6, 9, 12, 15):  # short decimals first: the value a person typed
        candidates.append(float(f"{mean_step:.{digits}g}"))
    candidates += [mean_step, values[1] - values[0]]
    # translation + i * s is rounded to the ulp of the largest coordinate, so the written
    # spacing lies within about that ulp / (n - 1) of the mean step: search that interval.
    delta = float(np.spacing(np.max(np.abs(values)))) / (n - 1) / 4
    candidates += [mean_step + k * delta for k in range(-24, 25) if k]
    ramp = np.arange(n, dtype=np.float64)
    for s in candidates:
        if np.array_equal(values[0] + ramp * s, values):
            return float(s)
    if known is not None and abs(known - mean_step) <= 64 * delta + 4 * np.spacing(known):
        return float(known)
    return float(mean_step)


def geometry(obj: xr.DataArray, *, path: object = None,
             unknown_ok: Iterable[str] = ()) -> Geometry:
    """Derive the :class:`Geometry` of an image from its coordinates.

    Raises :class:`GeometryError` for non-uniform, non-increasing or non-finite coordinates,
    and for a length-1 axis whose spacing is not known (see :mod:`voxzarr.gridindex`) unless
    it is named in ``unknown_ok``, where it is left out of ``scale``.
    """
    unknown_ok = set(unknown_ok)
    dims = tuple(str(d) for d in obj.dims)
    scale: dict[str, float] = {}
    translation: dict[str, float] = {}
    units: dict[str, str | None] = {}
    channel_names = None
    for dim, n in zip(dims, obj.shape, strict=True):
        if dim not in obj.coords:
            continue
        coord = obj.coords[dim]
        if dim == "c":
            channel_names = tuple(str(v) for v in np.asarray(coord.values).tolist())
            continue
        values = np.asarray(coord.values, dtype=np.float64)
        if values.size == 0:
            raise GeometryError("empty axis", path=path, field=dim)
        if not np.all(np.isfinite(values)):
            raise GeometryError("coordinate has non-finite values", path=path, field=dim)
        if n == 1:
            single = spacing_of_single(coord, obj.xindexes.get(dim))
            if single is None and dim in unknown_ok:
                translation[dim] = float(values[0])
                units[dim] = coord.attrs.get("units")
                continue
            if single is None:
                raise GeometryError(
                    "this axis has one sample and its spacing is not known: an operation "
                    "rebuilt the coordinate from its value (coarsen, interp, expand_dims, "
                    "assign_coords ...), so one position cannot tell the voxel size; set it "
                    f"with img.vox.set_voxel_size({{{dim!r}: ...}})",
                    path=path,
                    field=dim,
                )
            step = single
        else:
            steps = np.diff(values)
            index = obj.xindexes.get(dim)
            known = index.step if isinstance(index, GridIndex) else None
            step = _exact_spacing(values, known)
            if step <= 0:
                raise GeometryError(
                    "coordinate must increase (flip with .isel(..., slice(None, None, -1)) "
                    "changes the handedness voxzarr does not track)",
                    path=path,
                    field=dim,
                )
            if np.max(np.abs(steps - step)) > 1e-6 * step:
                raise GeometryError(
                    "coordinate is not uniformly spaced; NGFF needs a constant voxel size "
                    f"(steps from {steps.min():.6g} to {steps.max():.6g})",
                    path=path,
                    field=dim,
                )
        scale[dim] = step
        translation[dim] = float(values[0])
        units[dim] = coord.attrs.get("units")
    shape = tuple(int(s) for s in obj.shape)
    return Geometry(dims, shape, scale, translation, units, channel_names)


def check_axes(mapping: Mapping[str, Any], field: str, physical: Sequence[str]) -> None:
    """A clear error naming ``field`` if ``mapping`` has a key that is not in ``physical``."""
    unknown = [k for k in mapping if k not in physical]
    if unknown:
        raise GeometryError(f"{field} given for {unknown}, which are not physical axes of "
                            f"{''.join(physical)!r}", field=field)


def per_axis(value: Any, field: str, spatial: Sequence[str], physical: Sequence[str], *,
             scalar: bool = True) -> dict[str, float]:
    """Numbers per axis from a mapping (any physical axis), a sequence (one per spatial axis
    in dims order) or, where ``scalar``, one number for every spatial axis."""
    if isinstance(value, Mapping):
        check_axes(value, field, physical)
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(spatial):
            raise ArgumentError(
                f"{field} has {len(value)} values for the {len(spatial)} spatial axes "
                f"{''.join(spatial)!r}: give one per spatial axis"
                + (", one number for all" if scalar else "") + ", or a mapping such as "
                "{'z': 1.0}", field=field)
        items = list(zip(spatial, value, strict=True))
    elif scalar:
        items = [(d, value) for d in spatial]
    else:
        raise ArgumentError(f"{field} must be a mapping such as {{'z': 1.0}} or one number "
                            f"per spatial axis, got {value!r}", field=field)
    try:
        return {k: float(v) for k, v in items}
    except (TypeError, ValueError):
        raise ArgumentError(f"{field} must be numbers, got {value!r}", field=field) from None


def with_geometry(
    obj: xr.DataArray,
    *,
    scale: Mapping[str, float] | Sequence[float] | float | None = None,
    translation: Mapping[str, float] | Sequence[float] | None = None,
    units: Mapping[str, str | None] | str | None = None,
) -> xr.DataArray:
    """Return ``obj`` with new coordinates for the given axes; others keep theirs.

    A scalar ``scale`` or ``units`` applies to every spatial axis; a sequence ``scale`` or
    ``translation`` gives one value per spatial axis in dims order. An axis given a new
    ``scale`` may be one whose spacing is unknown (a single sample whose index was dropped).
    """
    named = scale if isinstance(scale, Mapping) else (SPATIAL if scale is not None else ())
    geo = geometry(obj, unknown_ok=named)
    spatial = geo.spatial_dims
    physical = [d for d in geo.dims if d != "c"]
    scale = {} if scale is None else per_axis(scale, "voxel_size", spatial, physical)
    translation = ({} if translation is None else
                   per_axis(translation, "origin", spatial, physical, scalar=False))
    if isinstance(units, str):
        units = {d: units for d in spatial}
    units = dict(units or {})
    check_axes(units, "units", physical)
    new = []
    for dim in sorted(set(scale) | set(translation) | set(units), key=DIM_ORDER.index):
        new.append(axis_coord(
            dim,
            geo.size(dim),
            scale.get(dim, geo.scale.get(dim, 1.0)),
            translation.get(dim, geo.translation.get(dim, 0.0)),
            units[dim] if dim in units else geo.units.get(dim),
        ))
    return obj.assign_coords(combine_coords(new))
