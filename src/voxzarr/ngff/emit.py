"""Emit NGFF 0.4 / 0.5 group attributes from :class:`~voxzarr.ngff.model.Multiscale`.

What voxzarr writes passes ``voxzarr validate --strict``: every multiscale names its
downscaling ``type`` and ``metadata`` (the method, or that there is a single level), and
label images list their label ``colors``.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import MetadataError
from .model import SUPPORTED_WRITE, Multiscale

__all__ = ["multiscales_attrs", "wrap_ome", "downscaling", "label_colors", "label_values",
           "levels_with_method", "MAX_LABEL_COLORS"]

#: at most this many label values get a colour in ``image-label.colors``: more would bloat
#: the group metadata; viewers colour the rest themselves
MAX_LABEL_COLORS = 4096


def _num(v: float) -> float | int:
    """Write integral floats as they are (1.0 stays 1.0): JSON readers get the same value."""
    return float(v)


def _software() -> dict[str, str]:
    from .. import __version__

    return {"software": "voxzarr", "version": __version__}


def downscaling(ms: Multiscale) -> tuple[str, dict[str, Any]]:
    """``(type, metadata)`` of a multiscale: as recorded, else what voxzarr can say of it.

    A single level was not downscaled (``"none"``); levels whose making was not recorded
    (handed in as a DataTree without a ``pyramid_method``) are ``"unknown"``.
    """
    single = len(ms.levels) == 1
    typ = ms.type or ("none" if single else "unknown")
    if ms.metadata:
        return typ, dict(ms.metadata)
    if single:
        meta = {"description": "a single resolution level; nothing was downscaled",
                "method": "none"}
    elif ms.type:
        meta = {"description": f"levels made by {ms.type!r} downscaling", "method": ms.type}
    else:
        meta = {"description": "levels supplied by the caller; how they were made was not "
                               "recorded", "method": "unknown"}
    return typ, {**meta, **_software()}


def multiscales_attrs(ms: Multiscale, version: str = "0.5") -> dict[str, Any]:
    """The OME metadata block (``multiscales``, ``omero``, ``image-label``) for ``version``.

    For 0.5 the caller nests it under ``"ome"`` with :func:`wrap_ome`; for 0.4 the block is
    the group's attributes and ``version`` sits inside each multiscale.
    """
    if version not in SUPPORTED_WRITE:
        raise MetadataError(f"cannot write NGFF {version!r}; writes {SUPPORTED_WRITE}",
                            field="version")
    axes = []
    for a in ms.axes:
        entry: dict[str, Any] = {"name": a.name, "type": a.type}
        if a.unit is not None:
            entry["unit"] = a.unit
        axes.append(entry)
    datasets = []
    for lv in ms.levels:
        cts: list[dict[str, Any]] = [{"type": "scale", "scale": [_num(s) for s in lv.scale]}]
        if any(t != 0 for t in lv.translation):
            cts.append({"type": "translation", "translation": [_num(t) for t in lv.translation]})
        datasets.append({"path": lv.path, "coordinateTransformations": cts})
    entry = {"axes": axes, "datasets": datasets, "name": ms.name or "image"}
    if version == "0.4":
        entry = {"version": "0.4", **entry}
    entry["type"], entry["metadata"] = downscaling(ms)
    block: dict[str, Any] = {"multiscales": [entry]}
    if ms.omero:
        block["omero"] = ms.omero
    if ms.image_label:
        label = dict(ms.image_label)
        if version == "0.4":
            label.setdefault("version", "0.4")
        else:
            label.pop("version", None)
        block["image-label"] = label
    return block


def wrap_ome(block: dict[str, Any], version: str) -> dict[str, Any]:
    """Group attributes holding ``block``: nested under ``ome`` for 0.5, flat for 0.4."""
    if version == "0.4":
        return dict(block)
    return {"ome": {"version": version, **block}}


def label_colors(values: Iterable[Any]) -> list[dict[str, Any]]:
    """``image-label.colors`` for label ``values``: 0 transparent, others distinct hues.

    Hues step by the golden angle, so neighbouring label values get far-apart colours and a
    value keeps its colour whatever other values are present. At most
    :data:`MAX_LABEL_COLORS` values (the smallest) are listed; at least 0 is, so the list is
    never empty.
    """
    vals = sorted({int(v) for v in values} | {0})[:MAX_LABEL_COLORS]
    out = []
    for v in vals:
        if v == 0:
            rgba = [0, 0, 0, 0]
        else:
            r, g, b = colorsys.hsv_to_rgb((v * 0.618033988749895) % 1.0, 0.75, 1.0)
            rgba = [round(r * 255), round(g * 255), round(b * 255), 255]
        out.append({"label-value": v, "rgba": rgba})
    return out


class _Levels(list):
    """A list of ``(path, DataArray)`` levels that says how they were made."""

    ngff_type: str | None = None
    ngff_metadata: dict[str, Any] | None = None


def levels_with_method(tree_attrs: Mapping[str, Any],
                       levels: Sequence[tuple[str, Any]]) -> _Levels:
    """``levels`` carrying the downscaling method a DataTree's attrs record, if any.

    Reads ``ngff_type`` / ``ngff_metadata`` (an opened multiscale) or ``pyramid_method``
    (``img.vox.pyramid``), so writing such a tree keeps its ``multiscales.type``.
    """
    out = _Levels(levels)
    typ = tree_attrs.get("ngff_type") or tree_attrs.get("pyramid_method")
    if isinstance(typ, str) and len(levels) > 1:
        out.ngff_type = typ
        meta = tree_attrs.get("ngff_metadata")
        if isinstance(meta, Mapping):
            out.ngff_metadata = dict(meta)
        elif "pyramid_method" in tree_attrs:
            out.ngff_metadata = {"description": "block reduce over the voxels present",
                                 "method": f"voxzarr.pyramid ({typ})", **_software()}
    return out


def label_values(arr: Any, **compute: Any) -> list[int]:
    """The distinct values of a stored label array, read chunk by chunk.

    ``compute`` is passed to dask (e.g. the ``scheduler`` a writer uses).
    """
    import dask.array as da

    x = da.from_array(arr, chunks=arr.chunks)
    return [int(v) for v in da.unique(x).compute(**compute)]
