"""Find the image group and its NGFF metadata in a store.

Plain images, bioformats2raw series, plate wells and fields, and ``labels/`` images are
resolved to one image group; its ``multiscales`` metadata is parsed and its level arrays
opened (not read). Zarr and metadata only: this module imports no xarray and no dask, so
``voxzarr info`` starts fast. :mod:`voxzarr.io` re-exports these functions under the same
names, and builds the xarray objects on top of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import zarr

from ._dims import DIM_ORDER
from ._warn import warn
from .errors import MetadataError, StoreError
from .ngff import Multiscale, layout_kind, ome_attrs
from .ngff.parse import parse_multiscale

__all__ = [
    "bf2raw_series",
    "canonical_dims",
    "read_multiscale_metadata",
    "resolve_image_group",
]


def _warn(message: str) -> None:
    """A ``UserWarning`` attributed to the first caller outside voxzarr and xarray.

    The same choice is reached through ``open_image``, ``open_multiscale`` and the xarray
    backend at different call depths, so a fixed ``stacklevel`` would point into a library.
    """
    warn(message, UserWarning, skip=("voxzarr", "xarray"))


def resolve_image_group(
    root: zarr.Group,
    *,
    location: Any = None,
    series: int | str | None = None,
    well: str | None = None,
    field: int | None = None,
    label: str | None = None,
    warn: bool = True,
) -> tuple[zarr.Group, str]:
    """Find the image group inside a store: plain image, bioformats2raw series, plate field.

    Parameters
    ----------
    root
        The group the location opens to.
    location
        What the caller passed, shown in messages (default: the store).
    series, well, field, label
        Which image (as for :func:`voxzarr.open_image`); ``None`` takes the first.
    warn
        Emit a ``UserWarning`` naming the image opened, and how to pick another, when a
        container holds more than one and the call did not say which.

    Returns
    -------
    tuple
        The image group and a display path used in messages.
    """
    group, where = root, str(location if location is not None else root.store)
    kind = layout_kind(group.attrs.asdict())
    bf2raw = "bioformats2raw.layout" in ome_attrs(group.attrs.asdict())
    # a bioformats2raw plate is opened through its wells, or by series= through OME/series
    if bf2raw and (kind == "bioformats2raw" or series is not None):
        listed = bf2raw_series(group)
        key = _bf2raw_series_path(listed, series)
        if series is None and warn and len(listed) > 1:
            _warn(f"opened series 0 (group {key!r}) of the bioformats2raw layout {where} "
                  f"({len(listed)} series); pick another with series=1 (0 to "
                  f"{len(listed) - 1}; `voxzarr info` lists them all)")
        group, where = _child_group(group, key, where, "series")
        kind = layout_kind(group.attrs.asdict())
    elif series is not None:
        raise MetadataError("series= given but the store is not a bioformats2raw layout",
                            path=where, field="series")
    plate_note: tuple[str, list[str]] | None = None  # (plate path, wells) when well= not given
    if kind == "plate":
        plate = ome_attrs(group.attrs.asdict())["plate"]
        wells = [w["path"] for w in plate.get("wells", [])]
        if not wells:
            raise MetadataError("plate lists no wells", path=where, field="plate.wells")
        key = well or wells[0]
        if key not in wells:
            raise MetadataError(f"no well {key!r}; wells are {wells}", path=where,
                                field="plate.wells")
        if well is None:
            plate_note = (where, wells)
        group, where = _child_group(group, key, where, "plate.wells")
        kind = layout_kind(group.attrs.asdict())
    if kind == "well":
        images = ome_attrs(group.attrs.asdict())["well"].get("images", [])
        index = 0 if field is None else field
        if not 0 <= index < len(images):
            raise MetadataError(f"well has {len(images)} fields, asked for field {index}",
                                path=where, field="well.images")
        if warn:
            _note_well_choice(where, plate_note, len(images), field)
        group, where = _child_group(group, images[index]["path"], where, "well.images")
        kind = layout_kind(group.attrs.asdict())
    if label is not None:
        group, where = _child_group(group, "labels", where, "labels")
        group, where = _child_group(group, label, where, "labels")
        kind = layout_kind(group.attrs.asdict())
    if kind != "image":
        raise MetadataError(
            "no NGFF image here (no 'multiscales' in the group attributes)",
            path=where,
            field="multiscales",
        )
    return group, where


def _note_well_choice(where: str, plate_note: tuple[str, list[str]] | None, n_fields: int,
                      field: int | None) -> None:
    """Warn which well and field were opened by default, when there was another to pick."""
    if plate_note is not None:
        plate, wells = plate_note
        if len(wells) == 1 and (field is not None or n_fields == 1):
            return
        index = 0 if field is None else field
        other_well = wells[1] if len(wells) > 1 else wells[0]
        other_field = 1 if n_fields > 1 and index == 0 else 0
        _warn(f"opened well {wells[0]!r} field {index} of plate {plate} ({len(wells)} wells; "
              f"{n_fields} field{'s' if n_fields != 1 else ''} in {wells[0]!r}); pick another "
              f"with well={other_well!r}, field={other_field} (`voxzarr info` lists them all)")
    elif field is None and n_fields > 1:
        _warn(f"opened field 0 of well {where} ({n_fields} fields); pick another with field=1 "
              f"(up to field={n_fields - 1})")


def bf2raw_series(group: zarr.Group) -> list[str]:
    """Group paths of the series of a bioformats2raw layout, in series order.

    ``OME/`` lists them where it has a ``series`` list (``"A/1/0"`` in plates); otherwise
    they are the child groups named ``0``, ``1``, ...
    """
    try:
        listed = ome_attrs(group["OME"].attrs.asdict()).get("series")
    except KeyError:
        listed = None
    if isinstance(listed, list):
        return [str(s) for s in listed]
    keys = [name for name, node in group.members()
            if isinstance(node, zarr.Group) and name.isdigit()]
    return sorted(keys, key=int)


def _bf2raw_series_path(listed: Sequence[str], series: int | str | None) -> str:
    """Path of a bioformats2raw series: a path as given, or the ``series``-th listed."""
    if isinstance(series, str):
        return series
    index = 0 if series is None else int(series)
    return listed[index] if 0 <= index < len(listed) else str(index)


def _child_group(group: zarr.Group, key: str, where: str, fld: str) -> tuple[zarr.Group, str]:
    try:
        child = group[key]
    except KeyError:
        raise StoreError(f"missing group {key!r}", path=where, field=fld) from None
    if not isinstance(child, zarr.Group):
        raise StoreError(f"{key!r} is an array, expected a group", path=where, field=fld)
    return child, f"{where.rstrip('/')}/{key}"


def _level_arrays(group: zarr.Group, ms: Multiscale, where: str) -> list[zarr.Array]:
    arrays = []
    for i, lv in enumerate(ms.levels):
        try:
            arr = group[lv.path]
        except KeyError:
            raise StoreError(f"level array {lv.path!r} is missing", path=where,
                             field=f"multiscales[0].datasets[{i}].path") from None
        if not isinstance(arr, zarr.Array):
            raise StoreError(f"{lv.path!r} is a group, expected an array", path=where,
                             field=f"multiscales[0].datasets[{i}].path")
        if arr.ndim != len(ms.axes):
            raise MetadataError(
                f"level {lv.path!r} has {arr.ndim} dimensions but {len(ms.axes)} axes are "
                "declared", path=where, field="multiscales[0].axes")
        arrays.append(arr)
    dtypes = {str(a.dtype) for a in arrays}
    if len(dtypes) > 1:
        raise MetadataError(f"levels have different dtypes {sorted(dtypes)}", path=where,
                            field="multiscales[0].datasets")
    return arrays


def read_multiscale_metadata(
    group: zarr.Group, where: str
) -> tuple[Multiscale, list[zarr.Array]]:
    """Parse a group's multiscale metadata and open (not read) its level arrays."""
    attrs = group.attrs.asdict()
    shapes = None
    ms_raw = ome_attrs(attrs).get("multiscales") or [{}]
    datasets = ms_raw[0].get("datasets", []) if isinstance(ms_raw[0], Mapping) else []
    if all(isinstance(d, Mapping) and "coordinateTransformations" not in d for d in datasets):
        shapes = []  # legacy: scales come from level shapes
        for d in datasets:
            try:
                shapes.append(group[d["path"]].shape)
            except (KeyError, TypeError):
                shapes = None
                break
    ms = parse_multiscale(attrs, path=where, shapes=shapes)
    return ms, _level_arrays(group, ms, where)


def canonical_dims(dims: Sequence[str]) -> tuple[str, ...]:
    """``dims`` in voxzarr's (and NGFF's recommended) order t, c, z, y, x."""
    return tuple(sorted(dims, key=DIM_ORDER.index))
