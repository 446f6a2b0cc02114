"""What is in an OME-Zarr image: axes, geometry, storage layout and sizes of every level.

:func:`info` returns an :class:`ImageInfo`: typed fields (``report.levels[0].voxel_size``) that
is also the JSON-ready dict it always was (``report["levels"][0]["voxel_size"]``,
``json.dumps(report)``), read-only, shown as the table of :func:`format_info`, which is what
``voxzarr info PATH`` prints. Nothing is decoded: sizes come from the store's object listing
(``stored_bytes``, every object under the array's prefix, metadata included) and from the
array metadata (``raw_bytes`` = ``nbytes``, the decoded size).

Only zarr and the NGFF metadata are imported (no xarray, no dask), so ``voxzarr info`` starts
fast. This module used to be ``voxzarr/info.py``; it moved here because a submodule named
like the function ``vz.info`` rebinds the package attribute to the module once imported. Use
``vz.info`` / ``vz.format_info`` (or import them from ``voxzarr.inspect``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import zarr
from zarr.core.sync import sync

from . import _store
from ._locate import bf2raw_series, canonical_dims, read_multiscale_metadata, resolve_image_group
from .errors import StoreError, VoxzarrError
from .ngff import layout_kind, ome_attrs
from .ngff.layouts import VOXZARR_KEY

__all__ = ["ArrayInfo", "ImageInfo", "LevelInfo", "info", "format_info"]


# --------------------------------------------------------------------------- typed report
class _Record(dict):  # type: ignore[type-arg]
    """Base of the typed reports: a frozen dataclass that is also the plain dict of its
    fields, so code that indexes, compares or JSON-encodes the report keeps working. The
    dict cannot be changed (it would no longer match the fields)."""

    def __post_init__(self) -> None:
        dict.update(self, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} is read-only; copy it with dict(report)")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only
    __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), {f.name: getattr(self, f.name)
                                       for f in dataclasses.fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy: dicts and lists all the way down."""
        return _plain(self)


def _rebuild(cls: type, values: dict[str, Any]) -> Any:
    return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ArrayInfo(_Record):
    """Storage of one array: shape, dtype, chunking, codecs and sizes.

    ``stored_bytes`` counts every object under the array's prefix (metadata included),
    ``raw_bytes`` the decoded size; ``ratio`` is raw over stored (``None`` if nothing is
    stored).
    """

    path: str
    shape: list[int]
    dtype: str
    chunks: list[int]
    shards: list[int] | None
    codecs: list[dict[str, Any]]
    stored_bytes: int
    raw_bytes: int
    ratio: float | None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}: {_shape(self.shape)} {self.dtype}, "
                f"chunks {_shape(self.chunks)}, shards {_shape(self.shards)}, "
                f"{_size(self.stored_bytes)} stored)")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class LevelInfo(ArrayInfo):
    """One level of the image: its storage and its geometry (physical axes only)."""

    voxel_size: dict[str, float]
    translation: dict[str, float]
    units: dict[str, str | None]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ImageInfo(_Record):
    """What :func:`info` reports about an OME-Zarr image (see its docstring for each field).

    Shown (``repr``) as the table :func:`format_info` makes.
    """

    location: str
    image: str
    container: str
    series: list[str] | None
    images: list[dict[str, Any]] | None
    ngff_version: str | None
    zarr_format: int
    name: str | None
    axes: list[dict[str, Any]]
    stored_axes: str
    dims: list[str]
    channels: list[str] | None
    labels: list[str]
    voxzarr: dict[str, Any] | None
    layout: str
    levels: list[LevelInfo]
    other_arrays: list[ArrayInfo]
    stored_bytes: int
    raw_bytes: int
    ratio: float | None

    def __repr__(self) -> str:
        return format_info(self)



def info(
    location: Any,
    *,
    series: int | str | None = None,
    well: str | None = None,
    field: int | None = None,
    label: str | None = None,
    storage_options: dict | None = None,
) -> ImageInfo:
    """Describe an OME-Zarr image without reading its pixels.

    Parameters
    ----------
    location
        Local directory, ``.zip`` file, fsspec URL, zarr store or group (NGFF 0.1 to 0.6rc0,
        zarr v2 or v3).
    series, well, field, label
        Which image inside a bioformats2raw layout, a plate, or a ``labels/`` group (as for
        :func:`voxzarr.open_image`) is described level by level; default the first. Every
        image of the container is listed in ``images`` either way.

    Returns
    -------
    ImageInfo
        Typed fields, also readable as a (read-only, JSON-ready) dict:
        ``location``, ``image`` (the image group), ``container`` (``"image"``,
        ``"bioformats2raw"`` or ``"plate"``) and ``series`` (the series of a bioformats2raw
        layout), ``images`` (every image of a plate or bioformats2raw container, one dict
        each: ``well`` and ``field`` or ``series``, ``path``, ``name``, ``axes``, ``levels``
        and the level-0 ``shape`` and ``dtype``, or ``error`` when it cannot be read;
        ``None`` for a plain image), ``ngff_version``, ``zarr_format``, ``name``, ``axes``
        (name, type, unit; in stored order), ``stored_axes`` (that order, ``"cxyz"``) and
        ``dims`` (the dims :func:`voxzarr.open_image` gives, t, c, z, y, x order),
        ``channels`` (labels from ``omero``), ``labels`` (label images present),
        ``voxzarr`` (voxzarr's own metadata or ``None``) and ``layout`` (its ``layout``, else
        ``"image"``), ``levels`` (one dict per level: ``path``, ``shape``, ``dtype``,
        ``voxel_size``, ``translation``, ``units``, ``chunks``, ``shards``, ``codecs``,
        ``stored_bytes``, ``raw_bytes``, ``ratio``: a :class:`LevelInfo`), ``other_arrays``
        (arrays of the group that are not levels, e.g. ``halo/0``: :class:`ArrayInfo`) and
        the totals ``stored_bytes``, ``raw_bytes``,
        ``ratio``. ``ratio`` is raw over stored bytes (the compression factor; ``None`` when
        nothing is stored).
    """
    root = _store.open_root(location, storage_options=storage_options)
    root_attrs = root.attrs.asdict()
    # a bioformats2raw plate is a plate first: its wells, not numbered series, hold images
    container = "plate" if "plate" in ome_attrs(root_attrs) else layout_kind(root_attrs) or "image"
    # no warning about the default choice: the report lists every image of the container
    group, where = resolve_image_group(root, location=location, series=series, well=well,
                                       field=field, label=label, warn=False)
    ms, arrays = read_multiscale_metadata(group, where)
    attrs = group.attrs.asdict()
    dims = ms.dims

    levels = []
    for lv, arr in zip(ms.levels, arrays, strict=True):
        entry = _array_entry(arr)
        phys = [(d, s, t) for d, s, t in zip(dims, lv.scale, lv.translation, strict=True)
                if d != "c"]
        levels.append(LevelInfo(
            path=lv.path,
            **entry,
            voxel_size={d: s for d, s, _ in phys},
            translation={d: t for d, _, t in phys},
            units={d: ms.units.get(d) for d, _, _ in phys},
        ))
    level_paths = {arr.path for arr in arrays}
    others = [
        ArrayInfo(path=_relative(arr.path, group.path), **_array_entry(arr))
        for arr in _member_arrays(group)
        if arr.path not in level_paths
    ]
    vox = attrs.get(VOXZARR_KEY)
    stored = sum(lv["stored_bytes"] for lv in levels)
    raw = sum(lv["raw_bytes"] for lv in levels)
    return ImageInfo(
        location=str(location),
        image=where,
        container=container,
        series=bf2raw_series(root) if container == "bioformats2raw" else None,
        images=_container_images(root, container, str(location)),
        ngff_version=ms.version,
        zarr_format=group.metadata.zarr_format,
        name=ms.name,
        axes=[{"name": a.name, "type": a.type, "unit": a.unit} for a in ms.axes],
        stored_axes="".join(dims),
        dims=list(canonical_dims(dims)),
        channels=list(ms.channel_names) if ms.channel_names is not None else None,
        labels=_labels_of(group),
        voxzarr=_jsonable(vox) if isinstance(vox, Mapping) else None,
        layout=str(vox.get("layout", "image")) if isinstance(vox, Mapping) else "image",
        levels=levels,
        other_arrays=others,
        stored_bytes=stored,
        raw_bytes=raw,
        ratio=_ratio(raw, stored),
    )


# --------------------------------------------------------------------------- pieces
def _array_entry(arr: zarr.Array) -> dict[str, Any]:
    stored = _stored_bytes(arr)
    raw = int(arr.nbytes)
    return {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "chunks": list(arr.chunks),
        "shards": list(arr.shards) if arr.shards is not None else None,
        "codecs": _codecs_of(arr),
        "stored_bytes": stored,
        "raw_bytes": raw,
        "ratio": _ratio(raw, stored),
    }


def _ratio(raw: int, stored: int) -> float | None:
    return round(raw / stored, 3) if stored else None


def _stored_bytes(arr: zarr.Array) -> int:
    """Sum of the sizes of every object under the array's own prefix (metadata included).

    ``zarr.Array.nbytes_stored`` lists the bare prefix, so level ``"0"`` would also count
    ``"01"``; listing ``"<path>/"`` plus the metadata documents avoids that.
    """
    store = arr.store_path.store
    prefix = arr.store_path.path.rstrip("/")

    async def total() -> int:
        keys = [k async for k in store.list_prefix(f"{prefix}/" if prefix else "")]
        size = 0
        for i in range(0, len(keys), 256):  # concurrent, bounded: object stores are slow
            size += sum(await asyncio.gather(*(store.getsize(k) for k in keys[i:i + 256])))
        return int(size)

    return sync(total())


def _codec_dict(codec: Any) -> dict[str, Any]:
    """``{"name", "configuration"}`` for a zarr v3 codec or a numcodecs (v2) codec."""
    if hasattr(codec, "to_dict"):
        d = dict(codec.to_dict())
        return {"name": str(d.get("name")), "configuration": _jsonable(d.get("configuration", {}))}
    cfg = dict(codec.get_config())
    name = cfg.pop("id", type(codec).__name__)
    return {"name": str(name), "configuration": _jsonable(cfg)}


def _codecs_of(arr: zarr.Array) -> list[dict[str, Any]]:
    """Filters, serializer and compressors in order (the inner chain of a sharded array)."""
    chain: list[Any] = list(arr.filters or ())
    if arr.serializer is not None:
        chain.append(arr.serializer)
    chain.extend(arr.compressors or ())
    return [_codec_dict(c) for c in chain]


def _jsonable(value: Any) -> Any:
    """Plain JSON types: enums become their value, tuples lists, unknown objects strings."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    inner = getattr(value, "value", None)  # enum members
    if isinstance(inner, str | int | float):
        return inner
    return str(value)


def _member_arrays(group: zarr.Group) -> list[zarr.Array]:
    """Every array below ``group``, except those of label images (listed by name instead)."""
    found = []
    for name, node in group.members():
        if isinstance(node, zarr.Array):
            found.append(node)
        elif name != "labels":
            found.extend(_member_arrays(node))
    return found


def _relative(path: str, base: str) -> str:
    base = base.strip("/")
    return path[len(base) + 1:] if base and path.startswith(base + "/") else path


def _labels_of(group: zarr.Group) -> list[str]:
    try:
        labels = group["labels"]
    except KeyError:
        return []
    if not isinstance(labels, zarr.Group):
        return []
    names = ome_attrs(labels.attrs.asdict()).get("labels")
    return [str(n) for n in names] if isinstance(names, list) else []


def _image_summary(root: zarr.Group, path: str, where: str) -> dict[str, Any]:
    """Name, stored axes, level count, level-0 shape and dtype of the image at ``path``."""
    try:
        group = root[path]
        if not isinstance(group, zarr.Group):
            raise StoreError("is an array, expected an image group", path=where)
        ms, arrays = read_multiscale_metadata(group, where)
    except (KeyError, VoxzarrError) as err:  # one broken image must not hide the others
        return {"error": str(err) if isinstance(err, VoxzarrError) else f"missing {path!r}"}
    return {"name": ms.name, "axes": "".join(ms.dims), "levels": len(ms.levels),
            "shape": list(arrays[0].shape), "dtype": str(arrays[0].dtype)}


def _container_images(root: zarr.Group, container: str,
                      location: str) -> list[dict[str, Any]] | None:
    """Every image of a plate (by well and field) or bioformats2raw layout (by series)."""
    base = location.rstrip("/")
    found: list[dict[str, Any]] = []
    if container == "bioformats2raw":
        for i, path in enumerate(bf2raw_series(root)):
            found.append({"series": i, "path": path,
                          **_image_summary(root, path, f"{base}/{path}")})
        return found
    if container != "plate":
        return None
    plate = ome_attrs(root.attrs.asdict()).get("plate") or {}
    for w in plate.get("wells", []):
        well = str(w.get("path")) if isinstance(w, Mapping) else str(w)
        try:
            images = ome_attrs(root[well].attrs.asdict())["well"]["images"]
        except (KeyError, TypeError):
            found.append({"well": well, "field": None, "path": well,
                          "error": f"{base}/{well}: no well metadata ('well.images')"})
            continue
        for i, im in enumerate(images):
            path = f"{well}/{im.get('path') if isinstance(im, Mapping) else im}"
            found.append({"well": well, "field": i, "path": path,
                          **_image_summary(root, path, f"{base}/{path}")})
    return found


# --------------------------------------------------------------------------- table
def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _shape(values: Sequence[int] | None) -> str:
    return "-" if values is None else " x ".join(str(v) for v in values)


def _with_units(values: Mapping[str, float], units: Mapping[str, str | None]) -> str:
    """``"1 second, 0.125, 0.0225, 0.0225 micrometer"``: the unit closes each run of axes."""
    names = list(values)
    parts = []
    for i, d in enumerate(names):
        text = f"{values[d]:.6g}"
        unit = units.get(d)
        last_of_run = i == len(names) - 1 or units.get(names[i + 1]) != unit
        if last_of_run and unit:
            text += f" {unit}"
        parts.append(text)
    return ", ".join(parts)


_V2_SHUFFLE = {-1: "autoshuffle", 0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


def _codec_text(codec: Mapping[str, Any]) -> str:
    cfg = dict(codec.get("configuration") or {})
    if codec["name"] == "blosc" and isinstance(cfg.get("shuffle"), int):  # numcodecs (v2)
        cfg["shuffle"] = _V2_SHUFFLE.get(cfg["shuffle"], cfg["shuffle"])
    shown = [f"{v}" if k in ("cname", "shuffle") else f"{k}={v}"
             for k, v in cfg.items() if k not in ("typesize", "blocksize", "endian")]
    return f"{codec['name']}({', '.join(shown)})" if shown else str(codec["name"])


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _order_row(report: Mapping[str, Any]) -> list[list[str]]:
    """An ``axis order`` row when the axes are stored out of t, c, z, y, x order."""
    stored, dims = report.get("stored_axes"), report.get("dims")
    if not stored or not dims or "".join(dims) == stored:
        return []
    return [["axis order", f"stored {', '.join(stored)}; opened as {', '.join(dims)} "
                           "(lazy transpose; levels below show stored shapes)"]]


def _images_table(report: Mapping[str, Any]) -> list[str]:
    """The images of a plate or bioformats2raw container; ``*`` marks the one shown."""
    images = report.get("images")
    if not images:
        return []
    shown = str(report["image"]).rstrip("/")
    plate = report.get("container") == "plate"
    if plate:
        n_wells = len({im["well"] for im in images})
        title = (f"{n_wells} well{'s' if n_wells != 1 else ''}, {len(images)} image"
                 f"{'s' if len(images) != 1 else ''} (open one with well=..., field=..., or "
                 "its path)")
        rows = [["", "well", "field", "path", "name", "axes", "shape", "dtype"]]
    else:
        title = f"{len(images)} series (open one with series=..., or its path)"
        rows = [["", "series", "path", "name", "axes", "shape", "dtype"]]
    for im in images:
        mark = "*" if shown.endswith("/" + im["path"]) else ""
        ids = [im["well"], "-" if im["field"] is None else str(im["field"])] if plate \
            else [str(im["series"])]
        if "error" in im:
            rows.append([mark, *ids, im["path"], f"unreadable: {im['error']}", "", "", ""])
        else:
            rows.append([mark, *ids, im["path"], str(im.get("name") or "-"), im["axes"],
                         _shape(im["shape"]), im["dtype"]])
    return ["", title, *_table(rows)]


def format_info(report: Mapping[str, Any]) -> str:
    """A readable multi-line summary of an :func:`info` report (what ``voxzarr info`` prints)."""
    axes = ", ".join(
        a["name"] + " (" + ", ".join(x for x in (a.get("type"), a.get("unit")) if x) + ")"
        for a in report["axes"]
    )
    head = [
        ["image", report["image"]],
        ["format", f"NGFF {report['ngff_version']}, zarr v{report['zarr_format']}"
                   + (f", {report['container']} layout" if report["container"] != "image"
                      else "")],
        ["name", str(report.get("name") or "-")],
        ["axes", axes],
        *_order_row(report),
        ["channels", ", ".join(report["channels"]) if report.get("channels") else "-"],
        ["labels", ", ".join(report["labels"]) if report.get("labels") else "-"],
        ["layout", report.get("layout", "image")],
    ]
    if report.get("series") and not report.get("images"):  # else the images table lists them
        head.append(["series", ", ".join(report["series"])])
    vox = report.get(VOXZARR_KEY)
    if vox:
        head.append(["voxzarr", ", ".join(f"{k}={v}" for k, v in vox.items()
                                          if not isinstance(v, Mapping | list))])
    lines = _table(head) + _images_table(report)
    rows = [["level", "shape", "dtype", "voxel size", "origin", "chunks", "shards", "codecs",
             "stored", "raw", "ratio"]]
    for lv in report["levels"]:
        rows.append([
            lv["path"], _shape(lv["shape"]), lv["dtype"],
            _with_units(lv["voxel_size"], lv["units"]),
            _with_units(lv["translation"], lv["units"]),
            _shape(lv["chunks"]), _shape(lv["shards"]),
            ", ".join(_codec_text(c) for c in lv["codecs"]) or "-",
            _size(lv["stored_bytes"]), _size(lv["raw_bytes"]),
            "-" if lv["ratio"] is None else f"{lv['ratio']:.2f}",
        ])
    rows.append(["total", "", "", "", "", "", "", "", _size(report["stored_bytes"]),
                 _size(report["raw_bytes"]),
                 "-" if report["ratio"] is None else f"{report['ratio']:.2f}"])
    lines += [""] + _table(rows)
    if report.get("other_arrays"):
        orows = [["array", "shape", "dtype", "chunks", "shards", "stored"]]
        for a in report["other_arrays"]:
            orows.append([a["path"], _shape(a["shape"]), a["dtype"], _shape(a["chunks"]),
                          _shape(a["shards"]), _size(a["stored_bytes"])])
        lines += [""] + _table(orows)
    return "\n".join(lines)
