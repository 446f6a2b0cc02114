"""Upgrade an OME-Zarr store from NGFF 0.4 (or 0.1-0.3) on zarr v2 to NGFF 0.5 on zarr v3.

Every node is carried over: images with all their levels, ``omero``, labels and
``image-label``, plates and wells, the bioformats2raw layout with its ``OME/`` group and any
other file in the store (``OME/METADATA.ome.xml``). Non-OME attributes stay where they were.

Pixels are copied without decoding where the codecs allow it (C order, no filters, and a
compressor zarr v3 also has: blosc, zstd, gzip, or none): the encoded v2 chunks become the
inner chunks of v3 shards byte for byte, and only the shard index is computed. Other arrays
are decoded and re-encoded (blosc-zstd) by tasks aligned to whole shards. Either way each
task writes whole shards, so no two tasks ever write one shard, and memory stays at a few
shards per thread.

The new store is written beside the destination, checked against the source (metadata, and
the pixels of sample chunks of every array), and only then renamed into place.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import dask
import dask.array as da
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec

from .. import _store
from .._chunkwrite import shard_parts
from .._progress import progress as show_progress
from .._write import (
    DEFAULT_CLEVEL,
    DEFAULT_COMPRESSOR,
    codecs,
    open_write_group,
    write_scheduler,
)
from ..errors import ConversionError, MetadataError, VoxzarrError
from ..ngff import multiscales_attrs, ngff_version, parse_multiscale
from ..units import normalize_unit
from ._kv import KV
from ._pool import joined_pool

__all__ = ["upgrade", "upgrade_attrs", "auto_shards", "SHARD_BYTES"]

#: uncompressed size ``shards="auto"`` aims at
SHARD_BYTES = 128 << 20
#: keys whose values move under ``"ome"`` in NGFF 0.5
OME_KEYS = ("multiscales", "omero", "labels", "image-label", "plate", "well",
            "bioformats2raw.layout")
_V2_META = (".zarray", ".zattrs", ".zgroup", ".zmetadata")
_TASK_BYTES = 256 << 20
_RAW_TASK_BYTES = 16 << 20
#: byte copies of one array are spread over at least this many tasks where it has as many
#: shards, so small arrays still run in parallel (on threads or cluster workers)
_MIN_RAW_TASKS = 16


# --------------------------------------------------------------------------- metadata
def _upgrade_multiscale(entry: Mapping[str, Any], attrs: Mapping[str, Any], index: int,
                        shapes: Sequence[Sequence[int]] | None, where: str) -> dict[str, Any]:
    version = str(entry.get("version") or ngff_version(attrs) or "0.4")
    if version in ("0.1", "0.2", "0.3") or "axes" not in entry or any(
            "coordinateTransformations" not in d for d in entry.get("datasets", [])):
        # legacy: build axes and transforms from the model, keep every other key
        ms = parse_multiscale(attrs, path=where, index=index, shapes=shapes)
        new = multiscales_attrs(ms, "0.5")["multiscales"][0]
        extra = {k: v for k, v in entry.items()
                 if k not in ("version", "axes", "datasets", "coordinateTransformations")}
        return {**extra, **new, **{k: v for k, v in extra.items() if k not in new}}
    out = {k: v for k, v in entry.items() if k != "version"}
    axes = []
    for i, ax in enumerate(entry["axes"]):
        if isinstance(ax, Mapping) and ax.get("unit") is not None:
            ax = {**ax, "unit": normalize_unit(ax["unit"], path=where,
                                               field=f"multiscales[{index}].axes[{i}].unit")}
        axes.append(ax)
    out["axes"] = axes
    return out


def upgrade_attrs(attrs: Mapping[str, Any], *, is_ome_group: bool = False,
                  shapes: Sequence[Sequence[int]] | None = None,
                  where: str = "") -> dict[str, Any]:
    """NGFF 0.5 group attributes for the 0.4 (or older) group attributes ``attrs``.

    OME keys move under ``"ome"`` with ``"version": "0.5"`` and lose their own ``version``;
    legacy multiscales gain axes and transforms; units become full UDUNITS names. Every other
    key is kept as it is. ``is_ome_group`` marks the bioformats2raw ``OME/`` group, whose
    ``series`` list is OME metadata too. ``shapes`` (level array shapes) is needed for 0.1-0.3
    images only.
    """
    if isinstance(attrs.get("ome"), Mapping):
        raise ConversionError("already NGFF 0.5 or newer metadata", path=where, field="ome")
    keys = OME_KEYS + (("series",) if is_ome_group else ())
    ome: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for k, v in attrs.items():
        (ome if k in keys else rest)[k] = v
    if not ome:
        return dict(rest)
    if "multiscales" in ome:
        ome["multiscales"] = [_upgrade_multiscale(e, attrs, i, shapes, where)
                              for i, e in enumerate(ome["multiscales"])]
    for k in ("image-label", "plate", "well"):
        if isinstance(ome.get(k), Mapping):
            ome[k] = {kk: vv for kk, vv in ome[k].items() if kk != "version"}
    return {"ome": {"version": "0.5", **ome}, **rest}


# --------------------------------------------------------------------------- planning
def auto_shards(shape: Sequence[int], chunks: Sequence[int], itemsize: int,
                dims: Sequence[str] | None = None,
                target: int = SHARD_BYTES) -> tuple[int, ...]:
    """Shard shape for ``shards="auto"``: chunks doubled round-robin over the spatial axes
    (then time; never channels) until a shard holds about ``target`` bytes or the array."""
    dims = list(dims) if dims is not None else [""] * len(shape)
    order = [i for d in ("z", "y", "x", "t") for i, n in enumerate(dims) if n == d]
    if not any(dims):
        order = list(range(len(shape)))[::-1]
    k = [1] * len(shape)
    cap = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    grown = True
    while grown:
        grown = False
        for i in order:
            if k[i] < cap[i] and math.prod(chunks) * math.prod(k) * itemsize * 2 <= target:
                k[i] = min(cap[i], k[i] * 2)
                grown = True
    return tuple(c * m for c, m in zip(chunks, k, strict=True))


def _v3_compressor(comp: Any, itemsize: int) -> tuple[Any, bool]:
    """The v3 codec equal to a v2 compressor, and whether encoded bytes carry over as-is."""
    if comp is None:
        return None, True
    if isinstance(comp, numcodecs.Blosc):
        shuffle = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}.get(
            comp.shuffle, "bitshuffle" if itemsize == 1 else "shuffle")
        return BloscCodec(cname=comp.cname, clevel=comp.clevel, shuffle=shuffle,
                          typesize=itemsize, blocksize=comp.blocksize), True
    if isinstance(comp, numcodecs.Zstd):
        return ZstdCodec(level=comp.level, checksum=bool(getattr(comp, "checksum", False))), True
    if isinstance(comp, numcodecs.GZip):
        return GzipCodec(level=comp.level), True
    return _v3_compressor(_DEFAULT_COMPRESSOR, itemsize)[0], False


#: what re-encoded arrays are compressed with (voxzarr's default, as a v2 compressor)
_DEFAULT_COMPRESSOR = codecs("0.4", DEFAULT_COMPRESSOR, DEFAULT_CLEVEL)


@dataclass
class _ArrayPlan:
    path: str
    src: zarr.Array
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    compressor: Any
    raw: bool
    dimension_names: list[str] | None
    attrs: dict[str, Any]

    @property
    def unit(self) -> tuple[int, ...]:
        return self.shards or self.chunks


def _dims_by_array(nodes: Sequence[tuple[str, Any]], where: str) -> dict[str, list[str]]:
    """Axis names of every array that is a level of some multiscales, by array path."""
    out: dict[str, list[str]] = {}
    for path, node in nodes:
        if not isinstance(node, zarr.Group):
            continue
        for ms in node.attrs.asdict().get("multiscales") or []:
            if not isinstance(ms, Mapping):
                continue
            axes = ms.get("axes")
            names = ([a["name"] if isinstance(a, Mapping) else str(a) for a in axes]
                     if isinstance(axes, list) else list("tczyx"))
            for d in ms.get("datasets", []):
                if isinstance(d, Mapping) and "path" in d:
                    out[f"{path}/{d['path']}".lstrip("/")] = names
    return out


def _plan_array(path: str, arr: zarr.Array, shards: Any, names: list[str] | None,
                where: str, reencode: bool = False) -> _ArrayPlan:
    meta = arr.metadata
    if getattr(meta, "zarr_format", 2) != 2:
        raise ConversionError("array is already zarr v3", path=f"{where}/{path}")
    dtype = np.dtype(arr.dtype)
    if dtype.kind not in "biufc":
        raise ConversionError(f"dtype {dtype} cannot be upgraded", path=f"{where}/{path}",
                              field="dtype")
    chunks = tuple(int(c) for c in meta.chunks)
    attrs = dict(arr.attrs.asdict())
    if names is None and isinstance(attrs.get("_ARRAY_DIMENSIONS"), list):
        names = [str(n) for n in attrs.pop("_ARRAY_DIMENSIONS")]
    if names is not None and len(names) != arr.ndim:
        names = None
    comp, same = _v3_compressor(meta.compressor, dtype.itemsize)
    if reencode:
        comp, same = _v3_compressor(_DEFAULT_COMPRESSOR, dtype.itemsize)[0], False
    raw = same and not meta.filters and meta.order == "C" and arr.ndim > 0
    if shards == "auto":
        sh: tuple[int, ...] | None = auto_shards(arr.shape, chunks, dtype.itemsize, names)
    elif shards is None or shards is False:
        sh = None
    else:
        sh = _shard_arg(shards, names, arr.shape, chunks, f"{where}/{path}")
    if sh is not None and sh == chunks:
        sh = None  # one chunk per shard: plain chunks are simpler and equivalent
    return _ArrayPlan(path, arr, chunks, sh, comp, raw, names, attrs)


def _shard_arg(value: Any, names: list[str] | None, shape: tuple[int, ...],
               chunks: tuple[int, ...], where: str) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        if names is None:
            raise ConversionError("shards by axis name need named axes", path=where,
                                  field="shards")
        want = [int(value.get(n, c)) for n, c in zip(names, chunks, strict=True)]
    elif isinstance(value, int):
        spatial = [n in ("z", "y", "x") for n in (names or ["x"] * len(shape))]
        want = [value if s else c for s, c in zip(spatial, chunks, strict=True)]
    else:
        # a tuple lines up with the trailing axes, so (8, 256, 256) fits czyx images and
        # zyx labels alike; missing leading axes keep one chunk
        want = [int(v) for v in value][-len(shape):]
        want = list(chunks[:len(shape) - len(want)]) + want
    if len(want) != len(shape) or any(v < 1 for v in want):
        raise ConversionError(f"needs {len(shape)} positive sizes, got {value!r}", path=where,
                              field="shards")
    # whole chunks per shard, no bigger than the (chunk-padded) array
    return tuple(min(max(w, c) // c, math.ceil(n / c)) * c
                 for w, c, n in zip(want, chunks, shape, strict=True))


# --------------------------------------------------------------------------- copying
def _v2_key(plan: _ArrayPlan, idx: Sequence[int]) -> str:
    sep = plan.src.metadata.dimension_separator or "."
    return f"{plan.path}/{sep.join(map(str, idx))}".lstrip("/")


def _v3_key(plan: _ArrayPlan, idx: Sequence[int]) -> str:
    return f"{plan.path}/c/{'/'.join(map(str, idx))}".lstrip("/")


def _shard_parts(src: KV, plan: _ArrayPlan, shard: Sequence[int]) -> list[bytes] | None:
    """One v3 shard built from the encoded v2 chunks it holds, as the list of its parts
    (:func:`voxzarr._chunkwrite.shard_parts`), or ``None`` when every chunk is absent."""
    assert plan.shards is not None
    per = [s // c for s, c in zip(plan.shards, plan.chunks, strict=True)]
    grid = [math.ceil(n / c) for n, c in zip(plan.src.shape, plan.chunks, strict=True)]

    def encoded() -> Iterator[tuple[tuple[int, ...], bytes | None]]:
        for local in product(*(range(p) for p in per)):
            idx = [s * p + i for s, p, i in zip(shard, per, local, strict=True)]
            if all(i < g for i, g in zip(idx, grid, strict=True)):
                yield local, src.get(_v2_key(plan, idx))

    return shard_parts(encoded(), per)


def _copy_units(src: KV, dst: KV, plan: _ArrayPlan, units: Sequence[tuple[int, ...]]) -> int:
    """Copy the given shards (or chunks, unsharded) of one array as encoded bytes."""
    n = 0
    for u in units:
        if plan.shards:
            parts = _shard_parts(src, plan, u)
        else:
            chunk = src.get(_v2_key(plan, u))
            parts = None if chunk is None else [chunk]
        if parts is not None:
            dst.set(_v3_key(plan, u), parts)
            n += sum(len(p) for p in parts)
    return n


def _unit_grid(plan: _ArrayPlan) -> list[tuple[int, ...]]:
    return list(product(*(range(math.ceil(n / u))
                          for n, u in zip(plan.src.shape, plan.unit, strict=True))))


def _raw_tasks(src: KV, dst: KV, plan: _ArrayPlan) -> list[Any]:
    units = _unit_grid(plan)
    # group small shards so tasks are worth scheduling; big ones get a task each (parallel)
    per_task = max(1, min(
        _RAW_TASK_BYTES // max(1, math.prod(plan.unit) * plan.src.dtype.itemsize),
        math.ceil(len(units) / _MIN_RAW_TASKS)))
    copy = dask.delayed(_copy_units, pure=False)
    return [copy(src, dst, plan, units[i:i + per_task])
            for i in range(0, len(units), per_task)]


def _decoded_task(plan: _ArrayPlan, dest_arr: zarr.Array) -> Any:
    block = list(plan.unit)
    itemsize = plan.src.dtype.itemsize
    for ax in range(len(block)):  # several whole shards per task, still within budget
        while (block[ax] < plan.src.shape[ax]
               and math.prod(block) * itemsize * 2 <= _TASK_BYTES):
            block[ax] += plan.unit[ax]
    data = da.from_array(plan.src, chunks=tuple(block), asarray=True, lock=False)
    return da.store(data, dest_arr, lock=False, compute=False)


def _create_v3(store: Any, plan: _ArrayPlan) -> zarr.Array:
    dtype = np.dtype(plan.src.dtype)
    endian = None if dtype.itemsize == 1 else ("big" if dtype.byteorder == ">" else "little")
    fill = plan.src.metadata.fill_value
    return zarr.create_array(
        store, name=plan.path, shape=plan.src.shape, dtype=dtype, chunks=plan.chunks,
        shards=plan.shards, serializer=BytesCodec(endian=endian),
        compressors=plan.compressor, filters=None,
        fill_value=0 if fill is None else fill, dimension_names=plan.dimension_names,
        attributes=plan.attrs, zarr_format=3, overwrite=True)


# --------------------------------------------------------------------------- checks
def _sample_regions(plan: _ArrayPlan) -> list[tuple[slice, ...]]:
    """First and last inner chunk of the first, middle and last shard, each once.

    Reading them back through zarr also checks each sampled shard's index (and its CRC32C).
    """
    shape, unit, ck = plan.src.shape, plan.unit, plan.chunks
    grid = [math.ceil(n / u) for n, u in zip(shape, unit, strict=True)]
    picked: set[tuple[int, ...]] = set()
    for f in (0, 0.5, 1):
        shard = [min(g - 1, int(round((g - 1) * f))) for g in grid]
        first = [s * u // c for s, u, c in zip(shard, unit, ck, strict=True)]
        last = [(min((s + 1) * u, n) - 1) // c
                for s, u, c, n in zip(shard, unit, ck, shape, strict=True)]
        picked.update({tuple(first), tuple(last)})
    return [tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, ck, strict=True))
            for idx in sorted(picked)]


def _verify(src_root: zarr.Group, dest: Any, plans: Sequence[_ArrayPlan],
            groups: dict[str, dict[str, Any]], where: str,
            storage_options: dict | None = None) -> None:
    out = zarr.open_group(_store.open_store(dest, mode="r", storage_options=storage_options),
                          mode="r")
    for path, attrs in groups.items():
        node = out[path] if path else out
        got = node.attrs.asdict()
        if got != attrs:
            raise ConversionError("group attributes were not written as planned",
                                  path=f"{dest}/{path}", field="attributes")
        ms_src = src_root[path].attrs.asdict() if path else src_root.attrs.asdict()
        if "multiscales" in ms_src:
            shapes = [src_root[f"{path}/{d['path']}".lstrip("/")].shape
                      for d in ms_src["multiscales"][0]["datasets"]]
            a = parse_multiscale(ms_src, path=where, shapes=shapes)
            b = parse_multiscale(got, path=dest)
            if (a.dims, [(lv.path, lv.scale, lv.translation) for lv in a.levels]) != (
                    b.dims, [(lv.path, lv.scale, lv.translation) for lv in b.levels]):
                raise ConversionError("multiscale geometry differs after the upgrade",
                                      path=f"{dest}/{path}", field="multiscales")
    for plan in plans:
        arr = out[plan.path]
        native = np.dtype(plan.src.dtype).newbyteorder("=")  # v3 keeps byte order in codecs
        if arr.shape != plan.src.shape or np.dtype(arr.dtype).newbyteorder("=") != native:
            raise ConversionError(f"array reads back as {arr.shape} {arr.dtype}",
                                  path=f"{dest}/{plan.path}", field="shape")
        for key in _sample_regions(plan):
            if not np.array_equal(arr[key], plan.src[key], equal_nan=arr.dtype.kind in "fc"):
                raise ConversionError(f"pixels differ in {key}", path=f"{dest}/{plan.path}",
                                      field="data")


# --------------------------------------------------------------------------- entry point
def upgrade(
    src: Any,
    dest: Any,
    *,
    shards: Any = "auto",
    overwrite: bool = False,
    progress: bool | None = None,
    verify: bool = True,
    reencode: bool = False,
    storage_options: dict | None = None,
) -> Any:
    """Upgrade an NGFF 0.4 (or 0.1-0.3) / zarr v2 store to NGFF 0.5 / zarr v3.

    Parameters
    ----------
    src
        The store to read (local folder, ``.zip``, fsspec URL or zarr store).
    dest
        Where to write the 0.5 store.
    shards
        ``"auto"`` (default: about 128 MiB of pixels per shard, grown over the spatial axes),
        ``None`` for no sharding, one int for the spatial axes, a tuple (matched to each
        array's trailing axes, so one tuple fits an image and its lower-dimensional labels),
        or a dict by axis name. Inner chunks keep the source chunk shape; shards are rounded
        to whole chunks and clipped to the array.
    overwrite
        Replace an existing ``dest``.
    progress
        Show a progress bar (default: when stderr is a terminal).
    verify
        Before the result is moved into place, compare its metadata with the source and, in
        every array, the pixels of the first and last chunk of the first, middle and last
        shard.
    reencode
        Decode and re-encode every chunk (blosc-zstd, level 3) even where the encoded bytes
        could be copied as they are.
    storage_options
        fsspec options for URL locations (``endpoint_url``, ``anon``, ...), used for ``src``
        and ``dest`` alike: reading, the existence check, writing and verifying.
        Credentials come from the environment.

    The copy tasks run on the active dask scheduler: the workers of a ``dask.distributed``
    cluster when a Client is current (stores in this process only, such as a
    ``MemoryStore`` or a ``.zip`` source, are copied on local threads), else local threads.

    Returns
    -------
    ``dest``.
    """
    root = _store.open_root(src, storage_options=storage_options)
    where = str(src)
    if root.metadata.zarr_format != 2:
        raise ConversionError("the store is already zarr v3; nothing to upgrade", path=where)
    with warnings.catch_warnings():  # plain files (OME/METADATA.ome.xml) are expected here
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        members = root.members(max_depth=None)
    nodes = [("", root), *sorted(members, key=lambda m: m[0])]
    dims = _dims_by_array(nodes, where)
    bf2raw = "bioformats2raw.layout" in root.attrs.asdict()
    plans: list[_ArrayPlan] = []
    groups: dict[str, dict[str, Any]] = {}
    try:
        for path, node in nodes:
            if isinstance(node, zarr.Array):
                plans.append(_plan_array(path, node, shards, dims.get(path), where, reencode))
                continue
            attrs = node.attrs.asdict()
            shapes = None
            ms = attrs.get("multiscales")
            if isinstance(ms, list) and ms and isinstance(ms[0], Mapping):
                try:
                    shapes = [node[d["path"]].shape for d in ms[0].get("datasets", [])]
                except (KeyError, TypeError):
                    shapes = None
            groups[path] = upgrade_attrs(attrs, is_ome_group=bf2raw and path == "OME",
                                         shapes=shapes, where=f"{where}/{path}".rstrip("/"))
    except MetadataError as err:
        raise ConversionError(err.message, path=err.path, field=err.field) from None
    array_prefixes = tuple(f"{p.path}/" for p in plans)
    src_kv = KV(src, root.store)
    with _store.atomic_target(dest, overwrite=overwrite,
                              storage_options=storage_options) as tmp:
        store = _store.open_store(tmp, mode="w", storage_options=storage_options)
        dst_kv = KV(tmp, store)
        for path in groups:  # empty groups first; attributes come last
            open_write_group(store, version="0.5", path=path)
        tasks = []
        for plan in plans:
            arr = _create_v3(store, plan)
            tasks.extend(_raw_tasks(src_kv, dst_kv, plan) if plan.raw
                         else [_decoded_task(plan, arr)])
        for key in src_kv.list():  # other files (OME/METADATA.ome.xml, ...) verbatim
            name = key.rsplit("/", 1)[-1]
            if name in _V2_META or key.startswith(array_prefixes):
                continue
            data = src_kv.get(key)
            if data is not None:
                dst_kv.set(key, data)
        # a store living in this process only (memory, open zip) cannot be used by
        # distributed workers: such upgrades run on local threads, client or not
        with joined_pool(), show_progress("upgrading to NGFF 0.5", progress):
            dask.compute(*tasks, **write_scheduler(root.store, store))
        for path in sorted(groups, key=lambda p: -p.count("/") - (p != "")):
            g = zarr.open_group(store, path=path, mode="r+")
            g.attrs.update(groups[path])  # root last: until then it is not an image
        if verify:
            try:
                _verify(root, tmp if _store.local_path(tmp) is not None else dest, plans,
                        groups, where, storage_options)
            except VoxzarrError:
                raise
            except Exception as err:
                raise ConversionError(f"checking the result failed ({type(err).__name__}: "
                                      f"{err})", path=dest) from err
    return dest
