"""Writing OME-Zarr levels: chunk and codec policy, the level-stream protocol, the writer.

Below both :mod:`voxzarr.io` (which re-exports the public names and builds
:func:`~voxzarr.io.to_ome_zarr` on :func:`prepare_multiscale`) and :mod:`voxzarr.pyramid`
(which plans levels with :func:`storage_units` and hands them over as a
:class:`LevelStream`), so neither imports the other. No reading here, and no pyramid maths:
a writer takes whatever levels it is given, lazily if need be.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import dask
import dask.array as da
import dask.threaded
import numpy as np
import xarray as xr
import zarr
from dask.delayed import Delayed
from numcodecs import Blosc
from zarr.codecs import BloscCodec
from zarr.codecs.blosc import BloscCname

from . import _store
from ._chunkwrite import chunk_target
from ._progress import progress as show_progress
from ._progress import progress_keyword
from ._views import dask_view
from .coords import SPATIAL, Geometry, geometry, parse_dims
from .errors import ArgumentError, GeometryError, MetadataError
from .ngff import Axis, Level, Multiscale, multiscales_attrs, wrap_ome
from .ngff.emit import label_colors, label_values

__all__ = [
    "DEFAULT_CLEVEL",
    "DEFAULT_COMPRESSOR",
    "DEFERRED_SCHEDULER",
    "IMAGE_VAR",
    "LevelStream",
    "LevelStreamFactory",
    "PendingLevels",
    "aligned_dask",
    "array_naming",
    "check_codec",
    "codecs",
    "default_chunks",
    "deferred_store",
    "finish_after",
    "level_for",
    "level_stream",
    "multiscale_for",
    "normalize_shape_arg",
    "omero_for",
    "open_write_group",
    "prepare_multiscale",
    "storage_units",
    "write_multiscale",
    "write_scheduler",
    "zarr_format",
]

#: name of the image variable in each level Dataset of a multiscale DataTree, and the image
#: name written when neither ``name=`` nor the image's own name gives one
IMAGE_VAR = "image"
#: the Blosc compressor and level every writer uses unless told otherwise
DEFAULT_COMPRESSOR = "zstd"
DEFAULT_CLEVEL = 3


# --------------------------------------------------------------------------- level streams
@dataclass(eq=False)
class LevelStream:
    """The levels of one image as a writer takes them, and how they were made.

    The protocol between what makes levels (:func:`voxzarr.pyramid.stream_levels`, a
    DataTree's children) and what writes them (:func:`write_multiscale`,
    :func:`voxzarr.io.to_ome_zarr`). Any other iterable of levels is taken as
    ``LevelStream(levels)`` (:func:`level_stream`).

    Attributes
    ----------
    levels
        ``(path, image)`` pairs, level 0 first. A sequence is all at hand; any other
        iterable is lazy: each level is taken only after the one before it is written, so
        it may read that level back from the store.
    fused
        When set, ``fused()`` gives every level at once as one dask graph (each level
        reduced from the one below in memory), written in one pass instead of iterating
        ``levels``; both must give the same bytes.
    ngff_type, ngff_metadata
        How the levels were made, written as ``multiscales[0].type`` / ``.metadata``
        (``None``: not recorded).
    """

    levels: Iterable[tuple[str, xr.DataArray]]
    fused: Callable[[], Sequence[tuple[str, xr.DataArray]]] | None = None
    ngff_type: str | None = None
    ngff_metadata: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[tuple[str, xr.DataArray]]:
        return iter(self.levels)

    @property
    def at_once(self) -> bool:
        """Whether every level can be had before any is written (fused, or a sequence).

        Only such a stream can be written later (``compute=False``): a lazy one reads each
        level back from the store as it is written.
        """
        return self.fused is not None or isinstance(self.levels, Sequence)


def level_stream(levels: Iterable[tuple[str, xr.DataArray]] | LevelStream) -> LevelStream:
    """``levels`` as a :class:`LevelStream` (one is returned as it is)."""
    return levels if isinstance(levels, LevelStream) else LevelStream(levels)


class LevelStreamFactory(Protocol):
    """What makes the levels of a pyramid to write: the shape of the ``"pyramid"`` entry of
    :data:`voxzarr._registry.LEVEL_STREAMS` (:func:`voxzarr.pyramid.stream_levels`).

    ``obj`` is level 0 and ``group_location`` the group the levels are written into (a
    lazy stream reads them back from it); ``chunks`` / ``shards`` are those of the write;
    ``options`` are the ``pyramid=`` options of :func:`voxzarr.io.to_ome_zarr`.
    """

    def __call__(self, obj: xr.DataArray, group_location: Any, *, chunks: Any, shards: Any,
                 label: bool | None, **options: Any) -> LevelStream: ...


# --------------------------------------------------------------------------- chunk policy
def default_chunks(dims: Sequence[str], shape: Sequence[int]) -> tuple[int, ...]:
    """Chunk shape voxzarr writes by default: 1 along t and c; 128^3 / 512^2 spatial blocks."""
    n_sp = sum(d in SPATIAL for d in dims)
    side = {1: 4096, 2: 512, 3: 128}[n_sp]
    return tuple(min(n, side) if d in SPATIAL else 1 for d, n in zip(dims, shape, strict=True))


def normalize_shape_arg(value: Any, dims: Sequence[str], shape: Sequence[int],
                         what: str) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        defaults = default_chunks(dims, shape)
        out = tuple(int(value.get(d, c)) for d, c in zip(dims, defaults, strict=True))
    elif isinstance(value, int):
        out = tuple(min(n, value) if d in SPATIAL else 1 for d, n in zip(dims, shape,
                                                                           strict=True))
    else:
        out = tuple(int(v) for v in value)
    if len(out) != len(dims) or any(v < 1 for v in out):
        raise ArgumentError(f"needs {len(dims)} positive sizes for dims {tuple(dims)}, got "
                                   f"{value!r}", field=what)
    return tuple(min(v, max(n, 1)) for v, n in zip(out, shape, strict=True))


def _write_unit(chunks: tuple[int, ...], shards: tuple[int, ...] | None) -> tuple[int, ...]:
    return shards if shards else chunks


def storage_units(dims: Sequence[str], shape: Sequence[int], chunks: Any = None,
                  shards: Any = None) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Chunk and shard shape one level is written with (``chunks=None``: the default)."""
    ck = normalize_shape_arg(chunks if chunks is not None else default_chunks(dims, shape),
                              dims, shape, "chunks")
    sh = None
    if shards is not None:
        sh = normalize_shape_arg(shards, dims, shape, "shards")
        sh = tuple(max(s, c) // c * c for s, c in zip(sh, ck, strict=True))
    return ck, sh


def aligned_dask(data: Any, unit: tuple[int, ...], target_bytes: int = 64 << 20) -> da.Array:
    """A dask array whose chunks are whole multiples of ``unit`` (shard or chunk shape).

    Every task then writes whole shards, so no two tasks ever touch one shard. Units are
    grouped along the leading axes up to ``target_bytes`` per task.
    """
    arr = data
    itemsize = arr.dtype.itemsize
    block = list(unit)
    for ax in range(arr.ndim):
        while (block[ax] < arr.shape[ax]
               and np.prod(block) * itemsize * 2 <= target_bytes
               and block[ax] * 2 <= arr.shape[ax] + unit[ax]):
            block[ax] += unit[ax]
    if not isinstance(data, da.Array):
        return dask_view(data, tuple(block))
    aligned = all(
        all(c % u == 0 for c in cs[:-1]) for cs, u in zip(arr.chunks, unit, strict=True)
    )
    if aligned and isinstance(data, da.Array):
        return arr
    return arr.rechunk(tuple(block))


# --------------------------------------------------------------------------- codec policy
_CNAMES = tuple(c.value for c in BloscCname)


def check_codec(compressor: Any, clevel: Any) -> None:
    """Refuse a ``compressor`` / ``clevel`` pair no writer can use, before anything is
    written (:class:`ArgumentError`): a Blosc compressor name or ``None``, a level 0-9."""
    if compressor is not None and compressor not in _CNAMES:
        raise ArgumentError(f"unknown Blosc compressor {compressor!r}; choose one of "
                            f"{', '.join(_CNAMES)} or None", field="compressor")
    if compressor is not None and (isinstance(clevel, bool) or not isinstance(clevel, int)
                                   or not 0 <= clevel <= 9):
        raise ArgumentError(f"clevel must be an integer from 0 to 9, got {clevel!r}",
                            field="clevel")


def codecs(version: str, compressor: str | None, clevel: int) -> Any:
    """The ``compressors=`` of an array voxzarr writes for NGFF ``version``.

    Blosc ``compressor`` at ``clevel`` with byte shuffle (numcodecs' ``Blosc`` for zarr v2,
    zarr's ``BloscCodec`` for v3), or ``None`` for none; checked by :func:`check_codec`.
    """
    check_codec(compressor, clevel)
    if compressor is None:
        return None
    if zarr_format(version) == 2:
        return Blosc(cname=compressor, clevel=clevel, shuffle=Blosc.SHUFFLE)
    return BloscCodec(cname=compressor, clevel=clevel, shuffle="shuffle")


# --------------------------------------------------------------------------- NGFF metadata
def zarr_format(version: str) -> int:
    """The zarr format an NGFF ``version`` is written in: 2 for 0.4, 3 from 0.5 on."""
    return 2 if version == "0.4" else 3


def array_naming(zarr_fmt: int, dims: Sequence[str]) -> dict[str, Any]:
    """``zarr.create_array`` keywords naming the axes and chunk keys of an image array:
    v3 records ``dimension_names``; v2 has no axis names and uses ``/``-separated chunk
    keys, as NGFF 0.4 asks."""
    if zarr_fmt == 3:
        return {"dimension_names": list(dims)}
    return {"chunk_key_encoding": {"name": "v2", "separator": "/"}}


def open_write_group(location: Any, *, version: str = "0.5", mode: str = "w",
                     path: str = "", storage_options: dict | None = None) -> zarr.Group:
    """The group at ``location`` (``path`` inside it) opened to write NGFF ``version`` into.

    ``mode`` is zarr's: ``"w"`` creates it afresh, ``"a"`` keeps what is there, ``"r+"``
    needs it to exist. New arrays go in ``group.store_path`` (``zarr.create_array``), which
    is ``location`` itself when that is a :class:`zarr.storage.StorePath`.
    """
    store = _store.open_store(location, mode="w", storage_options=storage_options)
    return zarr.open_group(store, path=path, mode=mode, zarr_format=zarr_format(version))


def multiscale_for(img0: xr.DataArray, levels: Sequence[Level], *, version: str,
                   name: str | None = None, geo: Geometry | None = None,
                   image_label: Mapping[str, Any] | None = None, ngff_type: str | None = None,
                   ngff_metadata: dict[str, Any] | None = None) -> Multiscale:
    """The NGFF multiscale of levels written from ``img0`` (level 0, whose geometry is
    ``geo``): axes and units from its coordinates, its name (``name``, else its own, else
    :data:`IMAGE_VAR`) and ``omero`` (:func:`omero_for`)."""
    geo = geometry(img0) if geo is None else geo
    axes = tuple(Axis(d, {"t": "time", "c": "channel"}.get(d, "space"),
                      None if d == "c" else geo.units.get(d)) for d in geo.dims)
    return Multiscale(
        version=version, axes=axes, levels=tuple(levels),
        name=name or (str(img0.name) if img0.name is not None else IMAGE_VAR),
        omero=omero_for(img0, geo.channel_names),
        image_label=dict(image_label) if image_label is not None else None,
        type=ngff_type, metadata=ngff_metadata,
    )


def level_for(path: str, geo: Geometry) -> Level:
    """The NGFF level of an array at ``path`` with geometry ``geo``."""
    return Level(path, tuple(geo.scale_vector()), tuple(geo.translation_vector()))


def omero_for(img: xr.DataArray, names: tuple[str, ...] | None) -> dict[str, Any] | None:
    """``omero`` metadata for an image with a ``c`` axis: its own, relabelled, if it has
    one per channel, else one colour and the dtype's full window per channel."""
    if "c" not in img.dims:
        return None
    n = img.sizes["c"]
    labels = list(names) if names else [str(i) for i in range(n)]
    old = img.attrs.get("omero")
    old_ch = old.get("channels") if isinstance(old, Mapping) else None
    if isinstance(old_ch, list) and len(old_ch) == n:
        channels = [{**dict(ch), "label": lab} for ch, lab in zip(old_ch, labels, strict=True)]
        return {**dict(old), "channels": channels}
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        lo, hi = float(info.min), float(info.max)
    else:
        lo, hi = 0.0, 1.0
    colours = ["FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]
    channels = [
        {"label": lab, "color": colours[i % len(colours)], "active": True,
         "window": {"min": lo, "max": hi, "start": lo, "end": hi}}
        for i, lab in enumerate(labels)
    ]
    return {"channels": channels, "rdefs": {"model": "color" if n > 1 else "greyscale"}}


# --------------------------------------------------------------------------- writing
def _check_same(levels: Sequence[tuple[str, xr.DataArray]]) -> None:
    """Levels must share dims and dtype."""
    dtypes = {str(img.dtype) for _, img in levels}
    if len(dtypes) > 1:
        raise MetadataError(f"levels have different dtypes {sorted(dtypes)}",
                            field="datasets")
    dims = {tuple(str(d) for d in img.dims) for _, img in levels}
    if len(dims) > 1:
        raise GeometryError(f"levels have different dims {sorted(dims)}", field="dims")


def write_scheduler(*stores: Any) -> dict[str, Any]:
    """``scheduler`` keyword for the dask computations of a writer reading or writing
    ``stores``.

    A store living in this process only (memory, open zip) would be used as a copy on
    distributed workers and the data lost: when any of ``stores`` is one, the work runs
    here, on threads. Without a configured scheduler and with ``distributed`` never
    imported, no client can exist, so the threaded scheduler is named directly: dask would
    otherwise import ``distributed`` to look for a client (about 0.3 s on the first write
    of a process).
    """
    if any(_store.process_local(s) for s in stores) or (
            dask.config.get("scheduler", None) is None and "distributed" not in sys.modules):
        return {"scheduler": dask.threaded.get}
    return {}


@dataclass
class PendingLevels:
    """Levels whose arrays exist but whose pixels and metadata are still to be written.

    ``sources[i]`` goes to ``targets[i]`` (one ``dask.array.store``); then ``finish`` writes
    the group's NGFF metadata, the last step of a write (before it, the group is not an
    image). ``finish`` takes the ``dask`` keywords to read the stored labels with.
    """

    sources: list[da.Array]
    targets: list[Any]
    paths: list[str]
    finish: Callable[..., Multiscale]

    def store(self, progress: bool | None, **scheduler: Any) -> Multiscale:
        """Write the pending pixels now (one graph: shared blocks computed once, levels
        overlapping), then the metadata."""
        if self.sources:
            with show_progress(f"writing levels {self.paths[0]}-{self.paths[-1]}", progress):
                da.store(self.sources, self.targets, lock=False, compute=True, **scheduler)
        return self.finish(**scheduler)


def _finish_multiscale(root: zarr.Group, ms: Multiscale, extra_attrs: Mapping[str, Any] | None,
                       **scheduler: Any) -> Multiscale:
    """Write the NGFF metadata of ``root`` (its last step); label colours from the data."""
    if ms.image_label is not None and "colors" not in ms.image_label:
        # NGFF: label images SHOULD list their colours; taken from the values stored
        ms = replace(ms, image_label={**ms.image_label, "colors": label_colors(
            label_values(root[ms.levels[0].path], **scheduler))})
    attrs = wrap_ome(multiscales_attrs(ms, ms.version), ms.version)
    if extra_attrs:
        attrs.update(extra_attrs)
    root.attrs.update(attrs)  # metadata last: before this the group is not an image
    return ms


def prepare_multiscale(
    group_location: Any,
    levels: Iterable[tuple[str, xr.DataArray]] | LevelStream,
    *,
    version: str,
    chunks: Any,
    shards: Any,
    compressor: str | None,
    clevel: int,
    name: str | None,
    image_label: Mapping[str, Any] | None,
    storage_options: dict | None,
    extra_attrs: Mapping[str, Any] | None,
    mode: str,
    write_now: Callable[[str, da.Array, Any], None] | None,
) -> PendingLevels:
    """Create the level arrays of a multiscale group; the pixels wait in the result.

    With ``write_now``, levels that are not a fused stream are written as they come (a
    lazy stream reads each level back from the group, so it must be); without it, every
    level is left pending, and a stream that is neither fused nor a sequence is refused.
    """
    if version not in ("0.4", "0.5"):
        raise MetadataError(f"cannot write NGFF {version!r}; choose '0.4' or '0.5'",
                            field="version")
    if zarr_format(version) == 2 and shards is not None:
        raise ArgumentError("sharding needs zarr v3, i.e. NGFF 0.5", field="shards")
    compressors = codecs(version, compressor, clevel)
    stream = level_stream(levels)
    if isinstance(stream.levels, Sequence):  # all at hand: refuse mixed levels before writing
        _check_same(stream.levels)
    # the levels may be lazy (voxzarr.pyramid.stream_levels): level i reads level i - 1
    # back from this group, so each level is taken only after the one before is written;
    # a stream that can fuse gives every level as one graph instead, written in one pass
    if write_now is None and not stream.at_once:
        raise ArgumentError(
            "compute=False cannot defer a level stream that reads each level back from the "
            "store as it is written; pass the levels at once (a list or a DataTree) or "
            "write with compute=True", field="compute")
    level_iter = iter(stream.fused() if stream.fused is not None else stream)
    first = next(level_iter, None)
    if first is None:
        raise ArgumentError("no levels to write", field="levels")
    img0 = first[1]
    geos = [geometry(img0)]
    dims = geos[0].dims
    parse_dims(dims)
    for d in dims:
        if d != "c" and d not in geos[0].scale:
            raise GeometryError("axis has no coordinate, so no voxel size to write; use "
                                "vz.from_array or img.vox.set_voxel_size", field=d)
    root = open_write_group(group_location, version=version, mode=mode,
                            storage_options=storage_options)
    store = root.store_path
    ngff_levels = []
    pending = PendingLevels([], [], [], _finish_multiscale)
    for path, img in itertools.chain([first], level_iter):
        geo = geometry(img) if ngff_levels else geos[0]
        if ngff_levels:
            _check_same([first, (path, img)])
            geos.append(geo)
        ck, sh = storage_units(dims, img.shape, chunks, shards)
        kwargs: dict[str, Any] = dict(
            name=path, shape=img.shape, dtype=img.dtype, chunks=ck, shards=sh,
            fill_value=0, zarr_format=zarr_format(version), compressors=compressors,
        )
        kwargs.update(array_naming(zarr_format(version), dims))
        arr = zarr.create_array(store, **kwargs)
        data = aligned_dask(img.data, _write_unit(ck, sh))
        if write_now is not None and stream.fused is None:
            write_now(path, data, chunk_target(arr))
        else:
            pending.sources.append(data)
            pending.targets.append(chunk_target(arr))
            pending.paths.append(path)
        ngff_levels.append(level_for(path, geo))
    # a pyramid stream names its downscaling method (NGFF multiscales type / metadata)
    ms = multiscale_for(img0, ngff_levels, version=version, name=name, geo=geos[0],
                        image_label=image_label, ngff_type=stream.ngff_type,
                        ngff_metadata=stream.ngff_metadata)
    extra = dict(extra_attrs) if extra_attrs else None
    pending.finish = partial(_finish_multiscale, root, ms, extra)
    return pending


@progress_keyword
def write_multiscale(
    group_location: Any,
    levels: Iterable[tuple[str, xr.DataArray]] | LevelStream,
    *,
    version: str = "0.5",
    chunks: Any = None,
    shards: Any = None,
    compressor: str | None = DEFAULT_COMPRESSOR,
    clevel: int = DEFAULT_CLEVEL,
    name: str | None = None,
    image_label: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    storage_options: dict | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    mode: str = "w",
    compute: bool = True,
) -> Multiscale | Delayed:
    """Write levels into a (new, empty) group at ``group_location``; metadata last.

    This is the building block of :func:`voxzarr.io.to_ome_zarr`; it does not guard against
    overwriting. ``levels`` may be a lazy iterator: each level is taken only after the one
    before it is written. A :class:`LevelStream` (:func:`voxzarr.pyramid.stream_levels`)
    that can fuse is written in one pass, and its ``ngff_type`` / ``ngff_metadata`` are
    written too. ``mode="a"`` keeps existing children of the group (``labels/``).

    With ``compute=False`` the level arrays are created now and a
    :class:`dask.delayed.Delayed` is returned whose ``compute()`` writes the pixels and then
    the metadata; a lazy stream that reads each level back from the group (one that cannot
    fuse) cannot be deferred and raises :class:`ArgumentError`.

    Returns
    -------
    The written :class:`Multiscale` (with ``compute=False``: a Delayed computing to it).
    """
    local: dict[str, Any] = {}

    def write_now(path: str, data: da.Array, target: Any) -> None:
        with show_progress(f"writing level {path}", progress):
            da.store(data, target, lock=False, compute=True, **local)

    store = _store.open_store(group_location, mode="w", storage_options=storage_options)
    local.update(write_scheduler(store))
    pending = prepare_multiscale(
        store, levels, version=version, chunks=chunks, shards=shards, compressor=compressor,
        clevel=clevel, name=name, image_label=image_label, storage_options=storage_options,
        extra_attrs=extra_attrs, mode=mode, write_now=write_now if compute else None)
    if not compute:
        return dask.delayed(finish_after, pure=False)(deferred_store(pending.sources,
                                                                     pending.targets),
                                                      [pending.finish], DEFERRED_SCHEDULER)
    return pending.store(progress, **local)


#: how the metadata step of a deferred write reads back what it needs (label values):
#: threads of the process that computes the Delayed, wherever that runs
DEFERRED_SCHEDULER: dict[str, Any] = {"scheduler": "threads"}


def deferred_store(sources: list[da.Array], targets: list[Any]) -> Delayed | None:
    """``dask.array.store`` of every pending level, not yet computed."""
    return da.store(sources, targets, lock=False, compute=False) if sources else None


def finish_after(_stored: Any, finishes: Sequence[Callable[..., Any]],
                 scheduler: dict[str, Any], write: _store.AtomicWrite | None = None,
                 result: Any = None) -> Any:
    """The last task of a deferred write: once ``_stored`` (the pixels) is computed, run
    ``finishes`` (the metadata) in order and commit ``write``; ``result``, or the last
    finish's result, is what the Delayed computes to."""
    try:
        out = None
        for fn in finishes:
            out = fn(**scheduler)
        if write is not None:
            write.commit()
    except BaseException:
        if write is not None:
            write.abort()
        raise
    return out if result is None else result

