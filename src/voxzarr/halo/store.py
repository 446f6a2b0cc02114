"""Halo arrays in the store: build, stamp with the image generation, check, rebuild regions.

Layout (``spec/halo.md``): beside an NGFF image's levels, ``halo/<level>`` holds one array per
level with chunk ``c + 2h`` and shape ``n_chunks * (c + 2h)``; its ``"voxzarr"`` attribute
(:class:`~voxzarr.halo.layout.HaloMeta`) records the layout. The image group's
``"voxzarr"`` attribute carries ``generation``, bumped by every write through voxzarr; a halo
is used only while its own ``generation`` equals the image's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr

from .. import _store
from .._chunkwrite import chunk_target
from .._progress import progress as show_progress
from .._progress import progress_keyword
from .._registry import HALO_DEPTH_RULES
from .._write import array_naming, write_scheduler
from ..coords import SPATIAL
from ..errors import (
    ArgumentError,
    HaloError,
    MetadataError,
    StaleHaloError,
    StoreError,
    VoxzarrError,
)
from ..io import read_multiscale_metadata, resolve_image_group
from ..ngff import Multiscale
from ..ngff.layouts import HALO_LAYOUT, VOXZARR_KEY, voxzarr_attrs
from .graph import run_blocks
from .layout import LAYOUT_VERSION, HaloLayout, HaloMeta

__all__ = [
    "HALO_GROUP",
    "RegionReport",
    "bump_generation",
    "find_source",
    "halo_status",
    "image_generation",
    "write_halo",
    "write_region",
]

#: name of the group (inside the image group) that holds one halo array per level
HALO_GROUP = "halo"


# --------------------------------------------------------------------------- opening
def open_image_group(location: Any, *, writable: bool = False,
                     storage_options: dict | None = None) -> tuple[zarr.Group, str]:
    """The NGFF image group at ``location`` (a path, URL, store, group or
    :class:`~voxzarr._store.StoreRef`) and a display path."""
    return image_group(_store.resolve(location, writable=writable,
                                      storage_options=storage_options))


def image_group(ref: _store.StoreRef) -> tuple[zarr.Group, str]:
    """The NGFF image group of a resolved location (writable unless ``ref.read_only``)."""
    if isinstance(ref.location, zarr.Group):
        # Reopened, never used as given: zarr caches attributes at open, and a group kept
        # from an earlier open_image would hold the generation of that moment, so a halo
        # gone stale since (pixels written, generation bumped) would pass as fresh.
        group = ref.group("r" if ref.read_only else "r+")
        return resolve_image_group(group, location=ref.where)
    if ref.read_only:
        return resolve_image_group(_store.open_root(ref), location=ref.location)
    if ref.local is not None and ref.local.suffix == ".zip":
        raise StoreError("zip stores cannot be updated in place; unzip the image first",
                         path=ref.location)
    if ref.local is not None and not ref.local.exists():
        raise StoreError("no such file or directory", path=ref.location)
    try:
        root = ref.group("r+")
    except Exception as err:
        raise StoreError(f"not a zarr group ({type(err).__name__}: {err})",
                         path=ref.location) from None
    return resolve_image_group(root, location=ref.location)


def level_array(group: zarr.Group, where: str, level: int | str
                ) -> tuple[Multiscale, str, zarr.Array]:
    """The multiscale metadata, dataset path and array of one level (by index or path)."""
    ms, arrays = read_multiscale_metadata(group, where)
    paths = [lv.path for lv in ms.levels]
    if isinstance(level, int | np.integer) and not isinstance(level, bool):
        ok = 0 <= int(level) < len(paths)
        idx = int(level) if ok else -1
    else:
        idx = paths.index(str(level)) if str(level) in paths else -1
    if idx < 0:
        raise StoreError(f"no level {level!r}; levels are {paths}", path=where, field="level")
    return ms, paths[idx], arrays[idx]


def _voxzarr_attrs(node: zarr.Group | zarr.Array) -> dict[str, Any]:
    return voxzarr_attrs(node.attrs.asdict())


def _update_voxzarr_attrs(node: zarr.Group | zarr.Array, **values: Any) -> None:
    """Merge ``values`` into the node's ``"voxzarr"`` attribute (other keys are kept)."""
    node.attrs.update({VOXZARR_KEY: {**_voxzarr_attrs(node), **values}})


# --------------------------------------------------------------------------- writer lock
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def image_lock(group: zarr.Group) -> Iterator[zarr.Group]:
    """Hold the image's writer lock; yields the group re-read under the lock.

    Every change of the generation (:func:`write_region`, :func:`write_halo`,
    :func:`bump_generation`) is a read-modify-write of the group's attributes followed by
    halo blocks and a stamp. Two of them running at once lose an increment (two writes get
    one generation) or let one write's halo rebuild land after another's and be stamped
    fresh: a silently stale halo. So they are serialized per image: a thread lock in this
    process, and for local stores also an exclusive ``flock`` on a lock file in the system
    temporary folder (named from the image's real path, so nothing is added to the store),
    which serializes processes on this host. Writers on several hosts (shared filesystems,
    object stores) must be serialized by the caller.

    The group is reopened inside the lock because zarr caches attributes at open: the
    generation must be read after the previous writer released the lock.
    """
    store = _store.base_store(group.store)
    root = _store.local_root(store)
    # memory stores print as memory://<id of their contents>, remote ones as their URL
    key = os.path.realpath(root / group.path) if root is not None else f"{store}/{group.path}"
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        fd = None
        if root is not None:
            try:
                import fcntl
            except ImportError:  # not POSIX: threads of this process only
                fcntl = None  # type: ignore[assignment]
            if fcntl is not None:
                digest = hashlib.sha256(key.encode()).hexdigest()[:24]
                fd = os.open(os.path.join(tempfile.gettempdir(), f"voxzarr-{digest}.lock"),
                             os.O_RDWR | os.O_CREAT, 0o666)
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by closing fd, even on a crash
        try:
            yield zarr.open_group(group.store, path=group.path, mode="r+")
        finally:
            if fd is not None:
                os.close(fd)


def image_generation(group: zarr.Group, where: str = "") -> int:
    """The image's generation number (0 when the image never recorded one)."""
    gen = _voxzarr_attrs(group).get("generation", 0)
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
        raise MetadataError(f"generation must be a non-negative integer, got {gen!r}",
                            path=where, field="voxzarr.generation")
    return gen


def bump_generation(location: Any, *, storage_options: dict | None = None) -> int:
    """Record that the image at ``location`` changed: every existing halo becomes stale.

    Call this after writing pixels of a voxzarr image by any means other than
    :func:`write_region`. Returns the new generation.
    """
    group, where = open_image_group(location, writable=True, storage_options=storage_options)
    with image_lock(group) as group:
        new = image_generation(group, where) + 1
        _update_voxzarr_attrs(group, generation=new)
    return new


def _halo_group(group: zarr.Group) -> zarr.Group | None:
    try:
        node = group[HALO_GROUP]
    except KeyError:
        return None
    return node if isinstance(node, zarr.Group) else None


def halo_array(group: zarr.Group, where: str, level_path: str) -> zarr.Array:
    """The halo array of ``level_path``; :class:`HaloError` when there is none."""
    hg = _halo_group(group)
    node = None
    if hg is not None:
        try:
            node = hg[level_path]
        except KeyError:
            node = None
    if not isinstance(node, zarr.Array):
        raise HaloError(f"no halo for level {level_path!r}; build one with "
                        "img.vox.to_halo(location, depth=...) or `voxzarr halo`",
                        path=where, field=f"{HALO_GROUP}/{level_path}")
    return node


def read_meta(harr: zarr.Array, where: str) -> HaloMeta:
    """Parse and cross-check a halo array's metadata against the array itself."""
    here = f"{where.rstrip('/')}/{harr.path}"
    meta = HaloMeta.from_dict(harr.attrs.asdict().get(VOXZARR_KEY), path=here)
    layout = meta.layout
    stored = tuple(harr.shards or harr.chunks)  # one block per object
    if tuple(harr.shape) != layout.stored_shape or stored != layout.block_shape:
        raise MetadataError(f"array shape {harr.shape} / blocks {stored} do not match "
                            f"the recorded layout ({layout.stored_shape} / "
                            f"{layout.block_shape})", path=here, field="voxzarr.shape")
    return meta


def stale_reason(meta: HaloMeta, group: zarr.Group, src: zarr.Array, where: str) -> str | None:
    """Why a halo no longer matches its image, or ``None`` when it is fresh."""
    gen = image_generation(group, where)
    if meta.generation != gen:
        return f"halo generation {meta.generation} != image generation {gen}"
    if tuple(src.shape) != meta.shape:
        return f"image shape {tuple(src.shape)} != recorded {meta.shape}"
    if str(src.dtype) != meta.dtype:
        return f"image dtype {src.dtype} != recorded {meta.dtype}"
    return None


def check_fresh(meta: HaloMeta, group: zarr.Group, src: zarr.Array, where: str) -> None:
    """Raise :class:`StaleHaloError` when the halo no longer matches the image."""
    reason = stale_reason(meta, group, src, where)
    if reason is not None:
        raise StaleHaloError(f"stale halo: {reason}; rebuild it with to_halo or "
                             "open_halo(..., rebuild=True)", path=where,
                             field=f"{HALO_GROUP}/{meta.source_level}")


def find_source(obj: xr.DataArray) -> tuple[zarr.Group, str] | None:
    """``(image group, level path)`` when ``obj`` is an untouched :func:`open_image` read."""
    rec = obj.encoding.get("voxzarr_source")
    if not isinstance(rec, Mapping) or not isinstance(obj.data, da.Array):
        return None
    if obj.data.name != rec.get("array"):
        return None  # sliced, computed on or rechunked: not the stored image any more
    return rec["group"], rec["level"]


# --------------------------------------------------------------------------- depth
def _depth_vector(depth: Any, dims: tuple[str, ...]) -> tuple[int, ...]:
    spatial = [d for d in dims if d in SPATIAL]
    if isinstance(depth, Mapping):
        unknown = set(depth) - set(dims)
        if unknown:
            raise HaloError(f"depth given for {sorted(unknown)}, not dims of {dims}",
                            field="depth")
        raw = [depth.get(d, 0) for d in dims]
    elif np.ndim(depth) == 0:
        raw = [depth if d in SPATIAL else 0 for d in dims]
    else:
        seq = list(depth)
        if len(seq) == len(spatial):
            it = iter(seq)
            raw = [next(it) if d in SPATIAL else 0 for d in dims]
        elif len(seq) == len(dims):
            raw = seq
        else:
            raise HaloError(f"depth needs 1, {len(spatial)} (spatial) or {len(dims)} values, "
                            f"got {depth!r}", field="depth")
    out = []
    for v in raw:
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 0:
            raise HaloError(f"depth must be non-negative integers, got {depth!r}",
                            field="depth")
        out.append(int(v))
    return tuple(out)


#: ``rule(dims, voxel_size) -> (depth per dim, boundary mode or None)``: the halo one level
#: needs, given that level's voxel size. Halo storage knows voxel depths only; the filter layer
#: turns ``for_filter=("gaussian", {...})`` into such a rule
#: (:func:`voxzarr.filters.halo_depth_rule`, found through :mod:`voxzarr._registry`).
DepthRule = Callable[[tuple[str, ...], Mapping[str, float]], tuple[tuple[int, ...], str | None]]


def depth_rule(for_filter: Any) -> DepthRule:
    """The depth rule for ``for_filter``: a rule (callable) as it is, a filter spec through
    the registered filter layer."""
    if callable(for_filter):
        return for_filter
    return HALO_DEPTH_RULES.get("filter")(for_filter)


def resolve_depth(depth: Any, rule: DepthRule | None, dims: tuple[str, ...],
                  scale: Mapping[str, float]) -> tuple[tuple[int, ...], str | None]:
    """The stored depth per dim from ``depth`` and/or a depth ``rule`` (checked to suffice)."""
    if depth is None and rule is None:
        raise HaloError("give depth= (voxels per axis) or for_filter=(name, params)",
                        field="depth")
    need, mode = (None, None) if rule is None else rule(dims, scale)
    if depth is None:
        assert need is not None
        return need, mode
    got = _depth_vector(depth, dims)
    if need is not None:
        short = {d: (g, n) for d, g, n in zip(dims, got, need, strict=True) if g < n}
        if short:
            raise HaloError(f"depth is smaller than the filter needs on {sorted(short)} "
                            f"(given, needed): {short}", field="depth")
    return got, mode


def _periodic(periodic: Any, dims: tuple[str, ...], mode: str | None) -> tuple[str, ...]:
    if periodic is None:
        periodic = mode == "wrap"
    if periodic is True:
        return tuple(d for d in dims if d in SPATIAL)
    if periodic is False:
        return ()
    names = (periodic,) if isinstance(periodic, str) else tuple(periodic)
    bad = [p for p in names if p not in dims]
    if bad:
        raise HaloError(f"periodic axes {bad} are not dims of {dims}", field="periodic")
    return tuple(d for d in dims if d in names)


# --------------------------------------------------------------------------- building blocks
class _WriteBlock:
    """Block function that writes one stored halo block (zero where outside the image):
    one object, its chunks (a shard's inner chunks) encoded on the codec pool."""

    def __init__(self, harr: zarr.Array, layout: HaloLayout):
        self.harr, self.layout = harr, layout

    def __call__(self, region: np.ndarray, index: tuple[int, ...]) -> None:
        buf = np.zeros(self.layout.block_shape, dtype=self.harr.dtype)
        buf[self.layout.valid_in_stored(index)] = region
        chunk_target(self.harr)[self.layout.stored_slices(index)] = buf


def _source_dask(src: zarr.Array) -> da.Array:
    chunks = getattr(src, "shards", None) or src.chunks
    # a fresh name each time: the canonical data may have changed since the last build
    return da.from_array(src, chunks=chunks, lock=False,
                         name=f"voxzarr-halo-source-{uuid.uuid4().hex}")


def build_blocks(src: zarr.Array, harr: zarr.Array, layout: HaloLayout,
                 blocks: Sequence[tuple[int, ...]], *, desc: str,
                 progress: bool | None = None) -> int:
    """Write ``blocks`` of a halo array from the canonical array, one task per block."""
    if not blocks:
        return 0
    job = run_blocks(_source_dask(src), layout, blocks, _WriteBlock(harr, layout))
    with show_progress(desc, progress):
        return int(job.compute(**write_scheduler(harr.store)))


def _levels_list(levels: Any, ms: Multiscale, where: str) -> list[int | str]:
    if isinstance(levels, str) and levels == "all":
        return list(range(len(ms.levels)))
    if isinstance(levels, int | str):
        return [levels]
    if isinstance(levels, Sequence) and levels:
        return list(levels)
    raise HaloError(f"levels must be 'all', a level or a list of levels, got {levels!r}",
                    path=where, field="levels")


@progress_keyword
def write_halo(
    obj: xr.DataArray | None,
    location: Any,
    depth: Any = None,
    for_filter: Any = None,
    *,
    levels: Any = "all",
    periodic: Any = None,
    chunks: Any = None,
    progress: bool | None = None,
    storage_options: dict | None = None,
    compute: bool = True,
) -> Any:
    """Store overlap-halo chunks beside the levels of the OME-Zarr image at ``location``.

    Parameters
    ----------
    obj
        The image. When ``location`` holds no image yet, ``obj`` is first written there
        with :func:`voxzarr.to_ome_zarr`; otherwise it must have the dims and the shape of
        one of the levels written (the halo is always built from the stored pixels).
        ``None`` to skip the check.
    location
        The OME-Zarr image (path, URL, store or group); must be writable.
    depth
        Halo voxels per side: one int for every spatial axis, a ``{dim: int}`` mapping, or a
        sequence per spatial axis (or per dim). Default: what ``for_filter`` needs.
    for_filter
        ``(name, params)`` of a registered filter, or a chain ``[(name, params), ...]``:
        its exact radius becomes the depth (sigmas with ``"units": "physical"`` use each
        level's voxel size). With ``depth`` as well, ``depth`` must be at least that.
        ``"mode": "wrap"`` in the params makes the spatial axes periodic. The filter layer
        resolves the spec (:func:`voxzarr.filters.halo_depth_rule`); a :data:`DepthRule`
        (any callable ``(dims, voxel_size) -> (depth, mode)``) is taken as it is.
    levels
        ``"all"`` (default), one level (index or path) or a list of them.
    periodic
        Axes whose halo holds the opposite face (for ``mode="wrap"``): ``True`` for every
        spatial axis, a dim name or a list of them. Default: none (unless mode is wrap).
    chunks
        Core chunk shape (tuple per dim, or ``{dim: n}``); default the stored chunk shape.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name. Ignored with ``compute=False``.
    compute
        ``False`` (as xarray's ``to_zarr(compute=False)``): check everything and create the
        (empty, unstamped) halo arrays now, and return a :class:`dask.delayed.Delayed` whose
        ``compute()`` builds the halo blocks and then stamps them. Until it is computed the
        halo of each level has no metadata, so :func:`voxzarr.open_halo` refuses it. The
        stamp checks that the image generation is still the one read at call time, and
        raises :class:`StaleHaloError` (leaving the halo unstamped) when a write changed
        the image in between. The image must already be stored at ``location``: writing
        ``obj`` first and building its halo from the stored pixels cannot be deferred
        (:class:`ArgumentError`). A store that lives in this process only
        (``memory://``) must be computed on the threaded scheduler.

    Returns
    -------
    The location, for chaining (with ``compute=False``: a Delayed that computes to it).
    """
    if obj is not None and not isinstance(obj, xr.DataArray):
        raise HaloError(f"expects an image DataArray or None, got {type(obj).__name__}",
                        field="obj")
    ref = _store.resolve(location, writable=True, storage_options=storage_options)
    if obj is not None and not ref.exists():
        if not compute:
            raise ArgumentError(
                "compute=False needs the image already stored at the location (the halo is "
                "built from the stored pixels); write it first with to_ome_zarr, or use "
                "compute=True", path=ref.where, field="compute")
        from ..io import to_ome_zarr

        to_ome_zarr(obj, ref, chunks=chunks, progress=progress,
                    storage_options=storage_options)
    group, where = image_group(ref)
    ms, _ = read_multiscale_metadata(group, where)
    wanted = _levels_list(levels, ms, where)
    rule = None if for_filter is None else depth_rule(for_filter)
    plans = []
    for lv in wanted:
        _, path, src = level_array(group, where, lv)
        level_meta = ms.level(path)
        scale = {d: s for d, s in zip(ms.dims, level_meta.scale, strict=True) if d != "c"}
        dvec, mode = resolve_depth(depth, rule, ms.dims, scale)
        per = _periodic(periodic, ms.dims, mode)
        core = _core_chunks(chunks, ms.dims, src)
        plans.append((path, src, dvec, per, core))
    if obj is not None:
        shapes = {path: tuple(src.shape) for path, src, *_ in plans}
        if tuple(obj.dims) != ms.dims or tuple(obj.shape) not in shapes.values():
            raise HaloError(f"the image {tuple(obj.dims)} {tuple(obj.shape)} is not one "
                            f"stored here ({ms.dims}, level shapes {shapes})",
                            path=where, field="obj")
    # serialized with region writes (see image_lock): a write landing between reading the
    # generation and stamping it must not leave a halo built from older pixels stamped fresh
    with image_lock(group) as group:
        gen = image_generation(group, where)
        if "generation" not in _voxzarr_attrs(group):
            _update_voxzarr_attrs(group, generation=gen)
        hg = _halo_group(group)
        if hg is None:
            hg = group.create_group(HALO_GROUP)
        builds, metas = [], []
        for path, src, dvec, per, core in plans:
            meta = HaloMeta(source_level=path, dims=ms.dims, shape=tuple(src.shape),
                            core_chunks=core, depth=dvec, periodic=per, generation=gen,
                            dtype=str(src.dtype), source_chunks=tuple(src.chunks))
            harr = _create_halo_array(group, hg, meta, src)
            blocks = list(meta.layout.blocks())
            if compute:
                build_blocks(src, harr, meta.layout, blocks, desc=f"halo level {path}",
                             progress=progress)
                _stamp(hg, harr, meta)
            else:
                builds.append(run_blocks(_source_dask(src), meta.layout, blocks,
                                         _WriteBlock(harr, meta.layout)))
                metas.append(meta)
    if compute:
        return location
    return dask.delayed(_stamp_when_built, pure=False)(builds, group, where, metas, location)


def _create_halo_array(group: zarr.Group, hg: zarr.Group, meta: HaloMeta,
                       src: zarr.Array) -> zarr.Array:
    """A new, empty halo array for ``meta`` (replacing any): no metadata until stamped."""
    layout = meta.layout
    kwargs: dict[str, Any] = dict(
        name=meta.source_level, shape=layout.stored_shape, chunks=layout.block_shape,
        dtype=src.dtype, fill_value=0, compressors=src.compressors, overwrite=True,
    )
    inner = inner_chunks(layout.block_shape, meta.dims, src.dtype.itemsize)
    if group.metadata.zarr_format == 3 and inner != layout.block_shape:
        kwargs.update(chunks=inner, shards=layout.block_shape)
    kwargs.update(array_naming(group.metadata.zarr_format, meta.dims))
    return hg.create_array(**kwargs)


#: a stored block this large or larger is split into inner chunks (zarr v3 only)
SPLIT_BYTES = 2 << 20
#: at most this many inner chunks per block
SPLIT_PIECES = 8


def inner_chunks(block: Sequence[int], dims: Sequence[str], itemsize: int) -> tuple[int, ...]:
    """Inner chunk shape of a stored halo block (the block itself: no split).

    A block of :data:`SPLIT_BYTES` or more is stored as one shard of up to
    :data:`SPLIT_PIECES` inner chunks, halving the longest evenly divisible spatial axis
    each time: still one object per block (one read, one write), but its decode and encode
    run on several threads, which is what a single block read (a region of interest) waits
    on. The split depends on the block alone, never on the machine.
    """
    inner = list(block)
    nbytes = int(np.prod(block, dtype=np.int64)) * itemsize
    if nbytes < SPLIT_BYTES:
        return tuple(inner)
    pieces = 1
    while pieces < SPLIT_PIECES:
        fit = [i for i, d in enumerate(dims) if d in SPATIAL and inner[i] % 2 == 0
               and inner[i] >= 32]
        if not fit:
            break
        i = max(fit, key=lambda j: inner[j])
        inner[i] //= 2
        pieces *= 2
    return tuple(inner)


def _stamp(hg: zarr.Group, harr: zarr.Array, meta: HaloMeta) -> None:
    """Mark the halo of one level complete: its metadata, then the halo group's list."""
    harr.attrs.update({VOXZARR_KEY: meta.to_dict()})  # metadata last
    done = sorted(set(_voxzarr_attrs(hg).get("levels", [])) | {meta.source_level})
    _update_voxzarr_attrs(hg, layout=HALO_LAYOUT, version=LAYOUT_VERSION, levels=done)


def _stamp_when_built(_built: Any, group: zarr.Group, where: str, metas: Sequence[HaloMeta],
                      result: Any) -> Any:
    """The last task of a deferred :func:`write_halo`: stamp the built halos, under the
    image lock, if the image generation is still the one they were built for."""
    with image_lock(group) as group:
        now = image_generation(group, where)
        hg = _halo_group(group)
        if hg is None:
            raise HaloError("the halo group was removed while the halo was built", path=where,
                            field=HALO_GROUP)
        for meta in metas:
            if meta.generation != now:
                raise StaleHaloError(
                    f"the image changed while its halo was built (generation "
                    f"{meta.generation} -> {now}); the halo is left unstamped: build it "
                    "again", path=where, field=f"{HALO_GROUP}/{meta.source_level}")
            _stamp(hg, halo_array(group, where, meta.source_level), meta)
    return result


def _core_chunks(chunks: Any, dims: tuple[str, ...], src: zarr.Array) -> tuple[int, ...]:
    if chunks is None:
        raw = list(src.chunks)
    elif isinstance(chunks, Mapping):
        raw = [chunks.get(d, c) for d, c in zip(dims, src.chunks, strict=True)]
    else:
        raw = list(chunks) if np.ndim(chunks) else [chunks if d in SPATIAL else c
                                                     for d, c in zip(dims, src.chunks,
                                                                     strict=True)]
    if len(raw) != len(dims) or any(not isinstance(c, int | np.integer) or c < 1 for c in raw):
        raise HaloError(f"chunks needs {len(dims)} positive integers, got {chunks!r}",
                        field="chunks")
    return tuple(min(int(c), n) for c, n in zip(raw, src.shape, strict=True))


# --------------------------------------------------------------------------- region writes
@dataclass(frozen=True)
class RegionReport:
    """What :func:`write_region` did."""

    level: str
    region: tuple[slice, ...]
    generation: int
    rebuilt: dict[str, int] = field(default_factory=dict)  # halo level -> blocks rebuilt
    stale: tuple[str, ...] = ()  # halo levels that were already stale (left stale)


def _region_slices(region: Any, dims: tuple[str, ...], shape: tuple[int, ...], where: str
                   ) -> tuple[slice, ...]:
    if isinstance(region, Mapping):
        unknown = set(region) - set(dims)
        if unknown:
            raise ArgumentError(f"region names {sorted(unknown)}, not dims of {dims}",
                                path=where, field="region")
        items = [region.get(d, slice(None)) for d in dims]
    else:
        items = list(region) if isinstance(region, Sequence) else [region]
        items += [slice(None)] * (len(dims) - len(items))
    if len(items) != len(dims):
        raise ArgumentError(f"region has {len(items)} entries for dims {dims}", path=where,
                            field="region")
    out = []
    for s, n, d in zip(items, shape, dims, strict=True):
        if isinstance(s, int | np.integer):
            s = slice(int(s), int(s) + 1)
        if not isinstance(s, slice):
            raise ArgumentError(f"region entries must be slices or ints, got {s!r}",
                                path=where, field=f"region.{d}")
        lo, hi, step = s.indices(n)
        if step != 1 or hi <= lo or (s.start is not None and not -n <= s.start <= n) or (
                s.stop is not None and not -n <= s.stop <= n):
            raise ArgumentError(f"region {s} is empty, strided or outside [0, {n})",
                                path=where, field=f"region.{d}")
        out.append(slice(lo, hi))
    return tuple(out)


@progress_keyword
def write_region(location: Any, region: Any, data: Any, *, level: int | str = 0,
                 progress: bool | None = None, storage_options: dict | None = None
                 ) -> RegionReport:
    """Write pixels into a region of the canonical image and rebuild the halo it touches.

    The image generation is bumped first (so an interrupted write leaves every halo stale,
    never silently wrong), the pixels are written, then exactly the halo blocks whose valid
    part overlaps the region are rebuilt (one task each) and the fresh halos are stamped
    with the new generation. Halos of other levels keep matching their (untouched) level
    and are re-stamped; halos that were already stale stay stale.

    Parameters
    ----------
    location
        The OME-Zarr image (writable).
    region
        One slice (or int) per dim, or ``{dim: slice}``; unit step, inside the image.
    data
        numpy / dask array or DataArray of the region's shape (cast to the image dtype).
    level
        Level index or path.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name.
    """
    group, where = open_image_group(location, writable=True, storage_options=storage_options)
    # serialized with every other writer of this image (see image_lock): the generation
    # read below, the bump, the pixels, the rebuilt blocks and the stamp are one step
    with image_lock(group) as group:
        ms, path, arr = level_array(group, where, level)
        sl = _region_slices(region, ms.dims, tuple(arr.shape), where)
        values = data.data if isinstance(data, xr.DataArray) else data
        want = tuple(s.stop - s.start for s in sl)
        if tuple(np.shape(values)) != want:
            raise ArgumentError(f"data shape {tuple(np.shape(values))} != region shape "
                                f"{want}", path=where, field="data")
        halos: dict[str, tuple[zarr.Array, HaloMeta]] = {}
        hg = _halo_group(group)
        for name in (_voxzarr_attrs(hg).get("levels", []) if hg is not None else []):
            try:
                harr = halo_array(group, where, name)
                halos[name] = (harr, read_meta(harr, where))
            except VoxzarrError:
                continue  # incomplete or foreign: never stamped fresh
        fresh = set()
        for name, (_, meta) in halos.items():
            try:
                _, _, src = level_array(group, where, name)
            except VoxzarrError:
                continue
            if stale_reason(meta, group, src, where) is None:
                fresh.add(name)
        new_gen = image_generation(group, where) + 1
        _update_voxzarr_attrs(group, generation=new_gen)  # every halo is stale from here on
        if isinstance(values, da.Array):
            da.store(values.astype(arr.dtype), arr, regions=sl, lock=True)
        else:
            arr[sl] = np.asarray(values, dtype=arr.dtype)
        rebuilt: dict[str, int] = {}
        for name in sorted(fresh):
            harr, meta = halos[name]
            if name == path:
                blocks = meta.layout.blocks_touching(sl)
                rebuilt[name] = build_blocks(arr, harr, meta.layout, blocks,
                                             desc=f"halo level {name}", progress=progress)
            harr.attrs.update({VOXZARR_KEY: {**meta.to_dict(), "generation": new_gen}})
        return RegionReport(level=path, region=sl, generation=new_gen, rebuilt=rebuilt,
                            stale=tuple(sorted(set(halos) - fresh)))


# --------------------------------------------------------------------------- status
def halo_status(location: Any, *, storage_options: dict | None = None) -> list[dict[str, Any]]:
    """One entry per stored halo: level, depth, chunks, periodic axes, fresh or why stale."""
    group, where = open_image_group(location, storage_options=storage_options)
    hg = _halo_group(group)
    out: list[dict[str, Any]] = []
    if hg is None:
        return out
    gen = image_generation(group, where)
    for name in _voxzarr_attrs(hg).get("levels", []):
        entry: dict[str, Any] = {"level": name, "image_generation": gen}
        try:
            harr = halo_array(group, where, name)
            meta = read_meta(harr, where)
            _, _, src = level_array(group, where, name)
            reason = stale_reason(meta, group, src, where)
            entry.update(depth=dict(zip(meta.dims, meta.depth, strict=True)),
                         core_chunks=list(meta.core_chunks), periodic=list(meta.periodic),
                         generation=meta.generation, fresh=reason is None, reason=reason)
        except VoxzarrError as err:
            entry.update(fresh=False, reason=str(err))
        out.append(entry)
    return out
