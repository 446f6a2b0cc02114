"""Open and write OME-Zarr images as xarray objects with physical coordinates.

No maths here: geometry comes from :mod:`voxzarr.coords`, metadata from :mod:`voxzarr.ngff`,
and this module moves arrays between zarr stores and dask. Finding the image group in a store
and reading its metadata is :mod:`voxzarr._locate` (no xarray, no dask); writing levels and
the chunk policy are :mod:`voxzarr._write`, below both this module and
:mod:`voxzarr.pyramid`. Both are re-exported here. ``to_ome_zarr(pyramid=...)`` gets its
levels from the pyramid layer above by name (``voxzarr._registry.LEVEL_STREAMS``), as a
:class:`~voxzarr._write.LevelStream`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask.base import tokenize

from . import _store
from ._chunkread import ChunkDecodeError, read_region, stored_dask_array
from ._locate import (  # zarr-and-metadata only (what `voxzarr info` needs); re-exported
    _warn,
    bf2raw_series,
    canonical_dims,
    read_multiscale_metadata,
    resolve_image_group,
)
from ._progress import progress as show_progress
from ._progress import progress_keyword
from ._registry import LEVEL_STREAMS
from ._write import (  # writing and chunk policy, below io and pyramid; re-exported
    DEFAULT_CLEVEL,
    DEFAULT_COMPRESSOR,
    DEFERRED_SCHEDULER,
    IMAGE_VAR,
    LevelStream,
    LevelStreamFactory,
    PendingLevels,
    default_chunks,
    deferred_store,
    finish_after,
    open_write_group,
    prepare_multiscale,
    storage_units,
    write_multiscale,
    write_scheduler,
)
from ._write import aligned_dask as _aligned_dask  # noqa: F401  (their names before the split)
from ._write import normalize_shape_arg as _normalize_shape_arg  # noqa: F401
from ._write import omero_for as _omero_for  # noqa: F401
from .coords import SPATIAL, check_axes, combine_coords, make_coords, parse_dims, per_axis
from .errors import ArgumentError, ChunkError, StoreError
from .ngff import Level, Multiscale, wrap_ome
from .ngff.emit import levels_with_method

__all__ = [
    "IMAGE_VAR",
    "STORED_AXES_ATTR",
    "bf2raw_series",
    "canonical_dims",
    "note_axis_order",
    "from_array",
    "open_image",
    "open_multiscale",
    "read_multiscale_metadata",
    "resolve_image_group",
    "to_ome_zarr",
    "write_multiscale",
    "default_chunks",
    "level_attrs",
    "level_coords",
    "level_index",
    "storage_units",
]

#: attribute of an image opened from a store whose axes are not in t, c, z, y, x order: the
#: stored order (``"cxyz"``); the image itself was transposed to canonical order on open
STORED_AXES_ATTR = "voxzarr_stored_axes"


# --------------------------------------------------------------------------- construction
def from_array(
    arr: Any,
    dims: str | Sequence[str],
    *,
    voxel_size: Mapping[str, float] | Sequence[float] | float | None = None,
    units: Mapping[str, str] | str | None = "micrometer",
    translation: Mapping[str, float] | Sequence[float] | None = None,
    time_unit: str | None = "second",
    channel_names: Sequence[str] | None = None,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Wrap a numpy, dask or cupy array as an image with physical coordinates.

    Parameters
    ----------
    arr
        The pixel data, 2 to 5 dimensions.
    dims
        Dimension names in NGFF order, e.g. ``"zyx"`` or ``("t", "c", "y", "x")``.
    voxel_size
        Spacing per axis (``{"z": 1.0, "y": 0.202, "x": 0.202}``; ``"t"`` for the frame
        interval), one number per spatial axis in ``dims`` order (``(1.0, 0.202, 0.202)``
        for ``"zyx"``), or one number for every spatial axis. Missing axes get 1.0.
    units
        Unit of the spatial axes (one name, or one per axis). ``"um"`` etc. are normalised.
    translation
        Physical position of the *centre* of the first voxel per axis (default 0): a mapping
        (``{"z": 10.0}``) or one number per spatial axis in ``dims`` order.
    time_unit
        Unit of the ``t`` axis when there is one.
    channel_names
        Labels for the ``c`` axis.
    """
    dims_t = parse_dims(dims, ndim=np.ndim(arr))
    spatial = [d for d in dims_t if d in SPATIAL]
    physical = [d for d in dims_t if d != "c"]
    scale = {} if voxel_size is None else per_axis(voxel_size, "voxel_size", spatial,
                                                    physical)
    offset = {} if translation is None else per_axis(translation, "translation", spatial,
                                                     physical, scalar=False)
    if isinstance(units, Mapping):
        check_axes(units, "units", physical)
        unit_map: dict[str, str | None] = dict(units)
    else:
        unit_map = {d: units for d in spatial}
    if "t" in dims_t:
        unit_map.setdefault("t", time_unit)
    coords = make_coords(dims_t, np.shape(arr), scale, offset, unit_map, channel_names)
    out = xr.DataArray(arr, dims=dims_t, coords=coords, attrs=dict(attrs or {}))
    out.name = name  # xarray would otherwise take a dask array's key as the name
    return out


# --------------------------------------------------------------------------- reading
class _ChunkReader:
    """Array-like wrapper so a corrupt chunk raises a ChunkError naming array and chunk.

    It is the one object of an :func:`open_image` graph that names the store, and it
    pickles small (the zarr array pickles as its metadata and a store that reopens itself
    from its path or URL), so the graph runs on ``dask.distributed`` worker processes.
    """

    def __init__(self, array: zarr.Array, where: str):
        self.array = array
        self.where = where
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __reduce__(self) -> tuple[Any, ...]:
        store = self.array.store
        if _store.process_local(store) and not isinstance(store, zarr.storage.MemoryStore
                                                          | zarr.storage.ZipStore):
            # an fsspec memory:// filesystem is empty in any other process: reading it there
            # would silently give fill values, so refuse to ship it
            raise StoreError("an in-memory fsspec store cannot be read by other processes "
                             "(dask.distributed workers); use a local path or object store",
                             path=self.where)
        return (_ChunkReader, (self.array, self.where))

    def __deepcopy__(self, memo: dict) -> _ChunkReader:
        return self  # read-only view of the store: sharing it is safe

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        try:
            return read_region(self.array, key)
        except Exception as err:
            if isinstance(err, ChunkDecodeError):
                first, cause = err.index, err.err
            else:
                first = tuple(
                    (s.start or 0) // c if isinstance(s, slice) else 0
                    for s, c in zip(key, self.array.chunks, strict=False)
                )
                cause = err
            raise ChunkError(
                f"cannot read or decode chunk {first} ({type(cause).__name__}: {cause})",
                path=self.where,
                field=f"chunk {first}",
            ) from err


def _read_chunks(arr: zarr.Array) -> tuple[int, ...]:
    """Dask chunking for reading: the shard shape when sharded, else the chunk shape."""
    shards = getattr(arr, "shards", None)
    return tuple(shards) if shards else tuple(arr.chunks)


def level_coords(ms: Multiscale, lv: Level, shape: Sequence[int]) -> Any:
    """Coordinates of one level, as :func:`open_image` attaches them (via ``make_coords``).

    Shared with the xarray backend so both give the same geometry; whatever ``make_coords``
    returns (a mapping of variables or ``xr.Coordinates``) is passed on unchanged.
    """
    dims = ms.dims
    scale = {d: s for d, s in zip(dims, lv.scale, strict=True) if d != "c"}
    trans = {d: t for d, t in zip(dims, lv.translation, strict=True) if d != "c"}
    chan = ms.channel_names
    if chan is not None and "c" in dims and len(chan) != shape[dims.index("c")]:
        chan = None  # omero disagrees with the array: fall back to indices
    coords = make_coords(dims, shape, scale, trans, ms.units, chan)
    if "c" in dims and "c" not in coords:
        coords = combine_coords([coords, xr.Coordinates({"c": np.arange(shape[dims.index("c")])})])
    return coords


def level_attrs(ms: Multiscale) -> dict[str, Any]:
    """Attributes of the image variable of every level (``image-label``, ``omero``, and
    :data:`STORED_AXES_ATTR` when the stored axis order is not canonical)."""
    attrs: dict[str, Any] = {}
    if ms.image_label is not None:
        attrs["image-label"] = ms.image_label
    if ms.omero is not None:
        attrs["omero"] = ms.omero
    if canonical_dims(ms.dims) != ms.dims:
        attrs[STORED_AXES_ATTR] = "".join(ms.dims)
    return attrs


def note_axis_order(ms: Multiscale, where: str) -> None:
    """Warn that an image whose axes are stored out of t, c, z, y, x order is opened transposed.

    Called once per open by :func:`open_image`, :func:`open_multiscale` and the xarray backend.
    """
    canon = canonical_dims(ms.dims)
    if canon != ms.dims:
        _warn(f"{where}: axes are stored in the order {''.join(ms.dims)!r} "
              f"(multiscales[0].axes); opened as {''.join(canon)!r} (voxzarr's t, c, z, y, x "
              f"order) by a lazy transpose. attrs[{STORED_AXES_ATTR!r}] keeps the stored order; "
              "images are written in canonical order")


def _stored_chunks(chunks: Any, stored: Sequence[str], canon: Sequence[str]) -> Any:
    """``chunks=`` given for the canonical dims, as the stored array's dask chunks."""
    if isinstance(chunks, Mapping):  # by name (or by canonical axis index)
        by_name = {canon[k] if isinstance(k, int) else str(k): v for k, v in chunks.items()}
        return {stored.index(d): v for d, v in by_name.items() if d in stored}
    if isinstance(chunks, Sequence) and not isinstance(chunks, str) \
            and len(chunks) == len(stored):
        return tuple(chunks[list(canon).index(d)] for d in stored)
    return chunks  # one size for every axis, "auto", None


def level_index(ms: Multiscale, level: int | str, where: str) -> int:
    """Index of ``level`` (an index, or a dataset path) in ``ms.levels``."""
    try:
        idx = level if isinstance(level, int) else [lv.path for lv in ms.levels].index(level)
        ms.levels[idx]
    except (IndexError, ValueError):
        raise StoreError(f"no level {level!r}; levels are {[lv.path for lv in ms.levels]}",
                         path=where, field="level") from None
    return idx


def _level_dataarray(ms: Multiscale, lv: Level, arr: zarr.Array, where: str,
                     chunks: Any) -> xr.DataArray:
    reader = _ChunkReader(arr, f"{where.rstrip('/')}/{lv.path}")
    canon = canonical_dims(ms.dims)
    chunks = _stored_chunks(chunks, ms.dims, canon) if chunks is not None else None
    data = stored_dask_array(
        reader, chunks or _read_chunks(arr),
        f"open_image-{tokenize(where, lv.path, arr.metadata.to_dict())}")
    img = xr.DataArray(data, dims=ms.dims, coords=level_coords(ms, lv, arr.shape),
                       name=ms.name or IMAGE_VAR, attrs=level_attrs(ms))
    # voxzarr images are t, c, z, y, x: a lazy transpose (coordinates go with their dims)
    return img if canon == ms.dims else img.transpose(*canon)


def open_image(
    location: Any,
    level: int | str = 0,
    *,
    series: int | str | None = None,
    well: str | None = None,
    field: int | None = None,
    label: str | None = None,
    chunks: Any = None,
    storage_options: dict | None = None,
) -> xr.DataArray:
    """Open one level of an OME-Zarr image as a lazy :class:`xarray.DataArray`.

    Parameters
    ----------
    location
        Local path, ``.zip`` file, fsspec URL (``s3://``, ``memory://``), zarr store or group.
    level
        Level index (0 = full resolution) or dataset path.
    series
        bioformats2raw series to open: index or group path (default the first).
    well, field
        For plates: the well path (``"A/1"``; default the first) and field index (default
        0). Without them a container of several images opens the first, with a
        ``UserWarning`` naming it and how to pick another (``vz.info`` lists them all).
    label
        Open ``labels/<label>`` instead of the image.
    chunks
        Dask chunks (for the returned dims); default the stored shard (or chunk) shape.
    storage_options
        Options for the fsspec filesystem of a URL (``endpoint_url``, ``anon``...). For
        ``s3://`` voxzarr reads with s3fs's ``max_concurrency=1`` unless given here: it
        sends all chunk requests at once itself, and s3fs's default would add a HEAD
        request before every chunk.

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims from ``t, c, z, y, x`` in that order, pixel-centre physical
        coordinates with units in ``coord.attrs["units"]``; ``c`` holds channel labels.
        Axes stored in another order (NGFF allows e.g. ``c, x, y, z``) are transposed
        lazily, with a ``UserWarning`` and ``attrs["voxzarr_stored_axes"]`` (``"cxyz"``).
    """
    root = _store.open_root(location, storage_options=storage_options)
    group, where = resolve_image_group(root, location=location, series=series, well=well,
                                       field=field, label=label)
    ms, arrays = read_multiscale_metadata(group, where)
    idx = level_index(ms, level, where)
    lv = ms.levels[idx]
    note_axis_order(ms, where)
    img = _level_dataarray(ms, lv, arrays[idx], where, chunks)
    if img.dims == ms.dims:
        # lets filters find this image's stored halo while the data are still this untouched
        # read; halos are laid out in canonical order only, so a transposed read has none
        img.encoding["voxzarr_source"] = _Source(group=group, level=lv.path,
                                                 array=img.data.name)
    return img


class _Source(dict):
    """Where an opened image lives (``encoding["voxzarr_source"]``); shared, never copied."""

    def __deepcopy__(self, memo: dict) -> _Source:
        return self


def open_multiscale(
    location: Any,
    *,
    series: int | str | None = None,
    well: str | None = None,
    field: int | None = None,
    label: str | None = None,
    chunks: Any = None,
    storage_options: dict | None = None,
) -> xr.DataTree:
    """Open every level of an OME-Zarr image as an :class:`xarray.DataTree`.

    Children are the levels, named by their dataset paths (``/0``, ``/1``, ...), each a
    Dataset holding the variable ``"image"``. Arguments as for :func:`open_image`.
    """
    root = _store.open_root(location, storage_options=storage_options)
    group, where = resolve_image_group(root, location=location, series=series, well=well,
                                       field=field, label=label)
    ms, arrays = read_multiscale_metadata(group, where)
    note_axis_order(ms, where)
    children = {}
    for lv, arr in zip(ms.levels, arrays, strict=True):
        img = _level_dataarray(ms, lv, arr, where, chunks)
        children[lv.path] = xr.Dataset({IMAGE_VAR: img.rename(None)})
    tree = xr.DataTree.from_dict(children)
    tree.attrs.update({"name": ms.name or IMAGE_VAR, "ngff_version": ms.version})
    return tree


# --------------------------------------------------------------------------- writing
def _levels_of(obj: xr.DataArray | xr.DataTree) -> list[tuple[str, xr.DataArray]]:
    if isinstance(obj, xr.DataArray):
        return [("0", obj)]
    levels = []
    for name, node in obj.children.items():
        ds = node.to_dataset()
        var = IMAGE_VAR if IMAGE_VAR in ds else next(iter(ds.data_vars), None)
        if var is None:
            raise ArgumentError(f"level {name!r} holds no image variable", field=name)
        levels.append((str(name), ds[var]))
    if not levels:
        raise ArgumentError("the DataTree has no level children", field="children")
    return levels


def _check_pyramid_arg(pyramid: Any) -> None:
    """``pyramid=`` is a bool or a mapping of the pyramid level stream's own keywords."""
    import inspect

    if isinstance(pyramid, bool | np.bool_):
        return
    if not isinstance(pyramid, Mapping):
        raise ArgumentError(f"pyramid must be True, False or a dict of pyramid options, got "
                            f"{pyramid!r}", field="pyramid")
    params = inspect.signature(LEVEL_STREAMS.get("pyramid")).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return  # a stream taking any keyword (a wrapper) checks its own options
    known = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY
             and n not in ("chunks", "shards", "label")] + ["label_method"]
    unknown = sorted(str(k) for k in pyramid if k not in known)
    if unknown:
        raise ArgumentError(f"unknown pyramid option(s) {unknown}; known: {known}",
                            field="pyramid")


@progress_keyword
def to_ome_zarr(
    obj: xr.DataArray | xr.DataTree,
    location: Any,
    *,
    pyramid: bool | Mapping[str, Any] = False,
    chunks: Any = None,
    shards: Any = None,
    version: str = "0.5",
    overwrite: bool = False,
    compressor: str | None = DEFAULT_COMPRESSOR,
    clevel: int = DEFAULT_CLEVEL,
    name: str | None = None,
    labels: Mapping[str, xr.DataArray | xr.DataTree] | None = None,
    progress: bool | None = None,
    storage_options: dict | None = None,
    compute: bool = True,
) -> Any:
    """Write an image (or a multiscale DataTree) as OME-Zarr.

    Parameters
    ----------
    obj
        A DataArray with physical coordinates, or a DataTree of levels.
    location
        Local directory, ``.zip`` path, fsspec URL or zarr store.
    pyramid
        ``True`` or a dict of :func:`voxzarr.pyramid.build_pyramid` arguments (``levels``,
        ``method``, ``factors``, ``min_size``, ``device``; ``label_method`` for the labels,
        default ``"mode"``) to write a multiscale pyramid instead of one level. Levels are
        streamed: each is computed from the level below as written, in bounded memory.
        Label images given as DataArrays get the same pyramid.
    chunks, shards
        Chunk (and optional shard) shape: a tuple, a dict by dim, or one int for every spatial
        axis. Shards need NGFF 0.5. Dask chunks are aligned so each task writes whole shards.
    version
        ``"0.5"`` (zarr v3, default) or ``"0.4"`` (zarr v2).
    overwrite
        Replace an existing dataset. Without it, an existing path is an error.
    compressor, clevel
        Blosc compressor (``"zstd"`` default, ``"lz4"``, ...) with byte shuffle, or ``None``.
    labels
        ``{name: label image}`` written under ``labels/<name>`` with ``image-label`` metadata.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name. Ignored with ``compute=False``.
    compute
        ``False`` (as xarray's ``to_zarr(compute=False)``): check everything and create the
        arrays now, and return a :class:`dask.delayed.Delayed` whose ``compute()`` writes
        the pixels, then the metadata, and (local paths) renames the dataset into place.
        Until then the location does not open as an image: a local path does not exist yet
        (the arrays wait in a hidden ``.partial-*`` sibling, left behind if the Delayed is
        never computed or fails), and a store written in place has no ``multiscales``.
        Compute it with several others in one ``dask.compute(...)`` to share the work. A
        store that lives in this process only (``memory://``) must be computed on the
        threaded scheduler, not on ``dask.distributed`` workers.

    Returns
    -------
    The location written (with ``compute=False``: a Delayed that computes to it).
    """
    opts: dict[str, Any] | None = None
    label_opts: dict[str, Any] | None = None
    _check_pyramid_arg(pyramid)
    if pyramid:
        opts = dict(pyramid) if isinstance(pyramid, Mapping) else {}
        label_method = opts.pop("label_method", "mode")
        label_opts = {**opts, "method": label_method}
    if opts is None or not isinstance(obj, xr.DataArray):
        _levels_of(obj)  # check the tree before creating anything

    def source(img: Any, where: Any, pyr: dict[str, Any] | None,
               label: bool | None) -> LevelStream:
        """The levels to write: a DataArray with ``pyramid`` streams them level by level."""
        if pyr is None or not isinstance(img, xr.DataArray):
            # a tree's attrs may say how its levels were made (multiscales type / metadata)
            tree = levels_with_method(getattr(img, "attrs", {}), _levels_of(img))
            return LevelStream(tree, ngff_type=tree.ngff_type, ngff_metadata=tree.ngff_metadata)
        # the pyramid layer is above this one: its level stream is found by name
        make: LevelStreamFactory = LEVEL_STREAMS.get("pyramid")
        return make(img, where, chunks=chunks, shards=shards, label=label, **pyr)

    ref = _store.resolve(location, writable=True, storage_options=storage_options)
    write = _store.begin_atomic(ref, overwrite=overwrite, storage_options=storage_options)
    try:
        store = _store.open_store(write.target, mode="w", storage_options=storage_options)
        local = write_scheduler(store)

        def write_now(path: str, data: da.Array, target: Any) -> None:
            with show_progress(f"writing level {path}", progress):
                da.store(data, target, lock=False, compute=True, **local)

        common: dict[str, Any] = dict(
            version=version, chunks=chunks, shards=shards, compressor=compressor,
            clevel=clevel, storage_options=storage_options, extra_attrs=None,
            write_now=write_now if compute else None)
        # every source (and its options) is checked before anything is written
        lsources = {}
        for lname, limg in (labels or {}).items():
            for _, lv in _levels_of(limg):
                if not np.issubdtype(lv.dtype, np.integer):
                    raise ArgumentError(f"label image {lname!r} must have an integer dtype, "
                                               f"got {lv.dtype}", field=f"labels.{lname}")
            where = zarr.storage.StorePath(store, f"labels/{lname}")
            lsources[lname] = (where, source(limg, where, label_opts, True))
        levels = source(obj, store, opts, None)
        # labels first: the image's own metadata is the very last thing written
        pending: list[PendingLevels] = []
        for lname, (where, llevels) in lsources.items():
            il = _levels_of(labels[lname])[0][1].attrs.get("image-label") or {}  # type: ignore[index]
            p = prepare_multiscale(where, llevels, name=lname, mode="w",
                                    image_label={**il, "source": {"image": "../../"}},
                                    **common)
            if compute:
                p.store(progress, **local)
            pending.append(p)
        if labels:
            lgroup = open_write_group(store, version=version, mode="a", path="labels")
            lgroup.attrs.update(wrap_ome({"labels": list(labels)}, version))
        p = prepare_multiscale(store, levels, name=name, mode="a" if labels else "w",
                                image_label=None, **common)
        pending.append(p)
        if compute:
            p.store(progress, **local)
            write.commit()
            return location
        stored = deferred_store([s for q in pending for s in q.sources],
                                [t for q in pending for t in q.targets])
    except BaseException:
        write.abort()
        raise
    return dask.delayed(finish_after, pure=False)(
        stored, [q.finish for q in pending], DEFERRED_SCHEDULER, write, location)
