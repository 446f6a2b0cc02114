"""What every reader hands to the writer: a lazy array plus the geometry read from the archive.

A reader (:mod:`.tiff`, :mod:`.frames`, :mod:`.raw`) describes its input as a :class:`Source`
in the input's own axis order. :func:`resolve` then applies what the user said on the command
line or in :func:`voxzarr.convert.convert` (axes, voxel size, units, frame interval), which
always wins over the file, and turns the result into an image DataArray in NGFF order.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..coords import DIM_ORDER, SPATIAL, make_coords
from ..errors import ConversionError
from ..units import normalize_unit

__all__ = ["Source", "VoxelSize", "apply_axes", "natural_key", "parse_axes", "reread",
           "resolve", "split_key"]

#: what users may pass as a voxel size: one number, ``{"z": 1, "y": 0.2}`` or ``(z, y, x)``
VoxelSize = float | Mapping[str, float] | Sequence[float]


@dataclass(frozen=True)
class Source:
    """A lazily read input image and the geometry its metadata gives.

    Attributes
    ----------
    data
        Dask array in the input's own axis order.
    axes
        One voxzarr dimension letter per axis of ``data`` (``"tzcyx"`` subset, any order), or
        ``"?"`` for an axis the file does not name (tifffile's ``Q`` / ``I``).
    path
        The file or folder read, for messages.
    scale, translation, units
        Per dimension, as far as the metadata says; missing entries mean "not stated".
    channel_names
        Labels of the ``c`` axis when the metadata names channels.
    origin
        Which metadata field each value came from (``{"x": "XResolution"}``), for messages.
    chunks
        Stored chunk shape this input suits best, by dimension (used when the user gives
        none); ``None`` for voxzarr's defaults.
    reader, token
        The array-like behind ``data`` and a name for it, so the data can be read again in
        the chunks the writer wants (see :meth:`lazy`).
    layout
        How the archive stores the pixels: ``"image"`` (frames or planes), or ``"series"``
        (records of whole time series, as Thunder's binary series), which
        :func:`voxzarr.convert.convert` writes in voxzarr's series layout by default.
    """

    data: da.Array
    axes: str
    path: str
    scale: dict[str, float] = field(default_factory=dict)
    translation: dict[str, float] = field(default_factory=dict)
    units: dict[str, str | None] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = None
    origin: dict[str, str] = field(default_factory=dict)
    chunks: dict[str, int] | None = None
    reader: Any = None
    token: str = ""
    layout: str = "image"

    def lazy(self, chunks: tuple[int, ...]) -> da.Array:
        """``data`` read afresh from ``reader`` in other chunks, so each write task reads
        exactly its own block (a rechunk would hold every input chunk it touches)."""
        if self.reader is None:
            return self.data.rechunk(chunks)
        name = f"{self.token or 'voxzarr-source'}-{tokenize(chunks)}"
        meta = np.empty((0,) * self.reader.ndim, self.reader.dtype)  # no read for meta
        return da.from_array(self.reader, chunks=chunks, asarray=False, lock=False,
                             name=name, meta=meta)


def split_key(key: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[Any, ...]]:
    """Split any numpy-style index into a box to read and an index to apply to that box.

    Readers fetch ``box`` (one unit-step slice per axis) from disk and return
    ``region[rest]``; dask may hand them integers, strided slices or arrays.
    """
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    key = key + (slice(None),) * (len(shape) - len(key))
    box, rest = [], []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, int | np.integer):
            i = int(k) + n if k < 0 else int(k)
            box.append(slice(i, i + 1))
            rest.append(0)
        elif isinstance(k, slice) and (k.step is None or k.step > 0):
            start, stop, step = k.indices(n)
            stop = max(start, stop)
            box.append(slice(start, stop))
            rest.append(slice(None, None, step) if step != 1 else slice(None))
        else:  # arrays, negative steps: read the whole axis, let numpy pick
            box.append(slice(0, n))
            rest.append(k)
    return tuple(box), tuple(rest)


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p)
    return (key, name)  # the exact name breaks ties ("a01" vs "a1", "A" vs "a")


def parse_axes(axes: str | Sequence[str], ndim: int, *, path: object) -> str:
    """Validate user-given axes: one of ``t, c, z, y, x`` per input axis, each at most once."""
    text = "".join(axes).lower()
    if len(text) != ndim:
        raise ConversionError(f"axes {text!r} name {len(text)} axes but the data has {ndim}",
                              path=path, field="axes")
    bad = sorted({a for a in text if a not in DIM_ORDER})
    if bad:
        raise ConversionError(f"axes {bad} are not voxzarr dimensions {DIM_ORDER}",
                              path=path, field="axes")
    if len(set(text)) != len(text):
        raise ConversionError(f"axes {text!r} repeat a dimension", path=path, field="axes")
    return text


def _voxel_size_map(value: VoxelSize | None, spatial: Sequence[str],
                    path: object) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out = {str(k).lower(): float(v) for k, v in value.items()}
    elif isinstance(value, int | float):
        out = {d: float(value) for d in spatial}
    else:
        vals = [float(v) for v in value]
        if len(vals) > len(spatial):
            raise ConversionError(f"{len(vals)} voxel sizes for spatial axes {tuple(spatial)}",
                                  path=path, field="voxel_size")
        out = dict(zip(spatial[len(spatial) - len(vals):], vals, strict=True))
    for k, v in out.items():
        if k not in spatial and k != "t":
            raise ConversionError(f"voxel size given for {k!r}, which is not a physical axis "
                                  f"of the result {tuple(spatial)}", path=path,
                                  field="voxel_size")
        if not v > 0 or v == float("inf"):
            raise ConversionError(f"voxel size must be > 0, got {v!r} for {k!r}", path=path,
                                  field="voxel_size")
    return out


def _fix_unknown_axes(src: Source) -> Source:
    """Name an unnamed leading axis ``z`` (a plain page stack) and say so; refuse two."""
    unknown = [i for i, a in enumerate(src.axes) if a == "?"]
    if not unknown:
        return src
    free = [d for d in ("z", "t") if d not in src.axes]
    if len(unknown) > len(free) or len(unknown) > 1:
        raise ConversionError(
            f"the file does not say what {len(unknown)} of its axes are; pass axes= "
            f"(e.g. axes='tzyx') naming each of its {src.data.ndim} axes",
            path=src.path, field="axes")
    warnings.warn(
        f"{src.path}: the file does not say what its page axis is; assuming 'z' "
        "(pass axes='tyx' or similar if it is time)", UserWarning, stacklevel=4)
    return replace(src, axes=src.axes.replace("?", free[0]))


def apply_axes(src: Source, axes: str | Sequence[str] | None = None) -> Source:
    """``src`` with every axis named: the user's ``axes``, else the file's (an unnamed page
    axis becomes ``z`` with a warning)."""
    if axes is not None:
        return replace(src, axes=parse_axes(axes, src.data.ndim, path=src.path))
    return _fix_unknown_axes(src)


def reread(src: Source, img: xr.DataArray, chunks: tuple[int, ...]) -> xr.DataArray:
    """``img`` (built from ``src`` by :func:`resolve`) with its pixels read in ``chunks``
    (given in ``img``'s dimension order). ``src.axes`` must already be final."""
    dims = [str(d) for d in img.dims]
    src_chunks = tuple(chunks[dims.index(a)] for a in src.axes)
    order = [src.axes.index(d) for d in dims]
    data = src.lazy(src_chunks)
    if order != list(range(len(order))):
        data = data.transpose(order)
    return img.copy(data=data)


def resolve(
    src: Source,
    *,
    axes: str | Sequence[str] | None = None,
    voxel_size: VoxelSize | None = None,
    unit: str | None = None,
    time_interval: float | None = None,
    time_unit: str | None = None,
    channel_names: Sequence[str] | None = None,
) -> xr.DataArray:
    """Apply the user's overrides to ``src`` and build the image in NGFF (t, c, z, y, x) order.

    Values the user gives replace the file's; axes without any spacing get 1.0 and, when no
    spatial unit is known at all, a warning says the result is in pixels.
    """
    src = apply_axes(src, axes)
    order = sorted(range(len(src.axes)), key=lambda i: DIM_ORDER.index(src.axes[i]))
    dims = tuple(src.axes[i] for i in order)
    data = src.data.transpose(order) if order != list(range(len(order))) else src.data
    spatial = [d for d in dims if d in SPATIAL]
    if not spatial:
        raise ConversionError(f"axes {''.join(dims)!r} have no spatial axis", path=src.path,
                              field="axes")

    user_scale = _voxel_size_map(voxel_size, spatial, src.path)
    if time_interval is not None:
        user_scale["t"] = float(time_interval)
    scale = {d: v for d, v in src.scale.items() if d in dims and d != "c"}
    scale.update(user_scale)
    units = {d: u for d, u in src.units.items() if d in dims and d != "c"}
    if unit is not None:
        u = normalize_unit(unit, path=src.path, field="unit")
        units.update({d: u for d in spatial})
    if time_unit is not None and "t" in dims:
        units["t"] = normalize_unit(time_unit, path=src.path, field="time_unit")
    if "t" in dims and units.get("t") is None and "t" in scale:
        units["t"] = "second"
    if not any(units.get(d) for d in spatial) and not user_scale.keys() & set(spatial):
        warnings.warn(f"{src.path}: no physical voxel size or unit found; writing voxel size "
                      "1 with no unit (pass voxel_size= and unit=)", UserWarning, stacklevel=3)
    names = channel_names if channel_names is not None else src.channel_names
    if names is not None and "c" in dims and len(names) != data.shape[dims.index("c")]:
        if channel_names is not None:
            raise ConversionError(f"{len(names)} channel names for "
                                  f"{data.shape[dims.index('c')]} channels", path=src.path,
                                  field="channel_names")
        names = None  # the file's labels do not fit its channel axis: use indices
    if "c" not in dims:
        names = None
    trans = {d: v for d, v in src.translation.items() if d in dims and d != "c"}
    coords = make_coords(dims, data.shape, scale, trans, units, names)
    return xr.DataArray(data, dims=dims, coords=coords, name="image")
