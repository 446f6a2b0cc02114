"""Image <-> series chunk-layout transpose: ``to_series``, ``to_images``, ``open_series``.

A series store is an NGFF 0.5 image whose chunks span the whole time axis (layout rules in
``spec/series.md``). Conversions run under a memory budget in resumable tasks (see
:mod:`voxzarr.series.plan` and :mod:`voxzarr.series.executor`):

* local directories are built in a hidden sibling ``.<name>.voxzarr-partial`` and renamed
  into place when complete, so the destination never holds a partial store;
* other stores (``memory://``, object storage) are written in place and the NGFF metadata is
  written last, so an interrupted store has no ``multiscales`` and does not open as an image;
* in both, the group's ``voxzarr`` attribute records the plan and the next task; running the
  same conversion again resumes there and gives a byte-identical result;
* with ``compute=False`` the target is created now and the tasks, the metadata and the rename
  run when the returned Delayed is computed (the resume point is then recorded per phase).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from .. import _store
from .._progress import progress_keyword, want_progress
from .._write import (
    DEFAULT_CLEVEL,
    DEFAULT_COMPRESSOR,
    check_codec,
    codecs,
    level_for,
    multiscale_for,
    open_write_group,
    storage_units,
)
from ..coords import SPATIAL, geometry, parse_dims
from ..errors import (
    ArgumentError,
    GeometryError,
    MetadataError,
    OverwriteError,
    StoreError,
    VoxzarrError,
)
from ..ngff import multiscales_attrs, wrap_ome
from ..ngff.layouts import VOXZARR_KEY, check_version, voxzarr_attrs
from .executor import Reader, ZarrReader, active_client, copy_region, reader_for, run_phase
from .plan import (
    LAYOUT,
    LAYOUT_VERSION,
    TransposePlan,
    parse_memory,
    plan_to_images,
    plan_to_series,
)

__all__ = ["to_series", "to_images", "open_series", "series_info", "ARRAY", "STAGING"]

#: path of the image array inside the group (the only NGFF level)
ARRAY = "0"
#: scratch array of a staged plan; deleted before the store is marked complete
STAGING = "voxzarr-staging"
_PARTIAL = ".voxzarr-partial"


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# ----------------------------------------------------------------------------- checks
def _check_image(obj: Any, what: str) -> xr.DataArray:
    if not isinstance(obj, xr.DataArray):
        raise ArgumentError(f"{what} needs an image DataArray, got {type(obj).__name__}",
                            field="obj")
    dims = parse_dims(tuple(str(d) for d in obj.dims))
    if "t" not in dims:
        raise GeometryError(f"{what} needs a time axis 't'; dims are {dims}", field="dims")
    if obj.sizes["t"] < 1 or any(n < 1 for n in obj.shape):
        raise GeometryError(f"empty axis in shape {obj.shape}", field="shape")
    geo = geometry(obj)
    missing = [d for d in dims if d != "c" and d not in geo.scale]
    if missing:
        raise GeometryError("axis has no coordinate, so no voxel size to write; use "
                            "vz.from_array or img.vox.set_voxel_size", field=",".join(missing))
    return obj


def _ngff_attrs(img: xr.DataArray, name: str | None) -> dict[str, Any]:
    """The NGFF 0.5 attributes of the store: one level, :data:`ARRAY`."""
    geo = geometry(img)
    ms = multiscale_for(img, [level_for(ARRAY, geo)], version="0.5", name=name, geo=geo)
    return wrap_ome(multiscales_attrs(ms, "0.5"), "0.5")


def _fingerprint(img: xr.DataArray, source: Any, chunks: Any) -> dict[str, Any]:
    """What identifies the source on resume (geometry included, pixel data not)."""
    geo = geometry(img)
    return {
        "location": None if source is None else str(source),
        "dims": list(geo.dims),
        "shape": list(geo.shape),
        "dtype": str(img.dtype),
        "chunks": None if chunks is None else [max(c) for c in chunks],
        "scale": [float(v) for v in geo.scale_vector()],
        "translation": [float(v) for v in geo.translation_vector()],
    }


# ----------------------------------------------------------------------------- targets
def _partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_PARTIAL}")


def _read_attrs(location: Any, storage_options: dict | None) -> dict[str, Any] | None:
    """Group attributes at ``location``, or ``None`` when there is no readable group."""
    path = _store.local_path(location)
    if path is not None and not path.exists():
        return None
    try:
        store = _store.open_store(location, mode="r", storage_options=storage_options)
        return zarr.open_group(store, mode="r").attrs.asdict()
    except Exception:
        return None


def _remove_stray_partials(path: Path) -> None:
    """Remove half-written chunk files zarr leaves behind when a process is killed."""
    for p in path.rglob("*.partial"):
        if p.is_file():
            p.unlink(missing_ok=True)


class _Progress:
    """Records the next task in the group attributes after each task (the resume point)."""

    def __init__(self, root: zarr.Group, state: dict[str, Any], plan: TransposePlan):
        self.root = root
        self.state = state
        self.plan = plan

    @property
    def position(self) -> tuple[int, int]:
        p = self.state.get("progress") or {}
        return int(p.get("phase", 0)), int(p.get("next", 0))

    def advance(self, phase: int, nxt: int) -> None:
        """Every task of ``phase`` before ``nxt`` (and of earlier phases) is written."""
        if nxt >= self.plan.phases[phase].n_tasks:
            phase, nxt = phase + 1, 0
        new = {"phase": phase, "next": nxt}
        if self.state.get("progress") == new:
            return  # a task finished out of order on a cluster: nothing new to record
        self.state["progress"] = new
        self.root.attrs.update({VOXZARR_KEY: self.state})

    def bytes_done(self, itemsize: int) -> int:
        phase, nxt = self.position
        total = 0
        for k, ph in enumerate(self.plan.phases[: phase + 1]):
            tasks = range(ph.n_tasks) if k < phase else range(nxt)
            total += sum(math.prod(s.stop - s.start for s in ph.region(i)) for i in tasks)
        return total * itemsize


def _convert(
    img: xr.DataArray,
    location: Any,
    plan: TransposePlan,
    *,
    header: dict[str, Any],
    final_attrs: dict[str, Any],
    compressor: str | None,
    clevel: int,
    overwrite: bool,
    resume: bool,
    progress: bool | None,
    storage_options: dict | None,
    compute: bool = True,
) -> Any:
    """Create or resume the target, run every phase, then write the metadata and finish.

    ``compute=False``: the target is created (or resumed) now; the phases and the finish
    are a Delayed (:func:`_deferred_phases`).
    """
    check_codec(compressor, clevel)
    path = _store.local_path(location)
    if path is not None and path.suffix == ".zip":
        raise StoreError("cannot convert into a .zip in place; write a directory and zip it",
                         path=path)
    if path is not None:
        _store.check_free(path, overwrite=overwrite)
        work: Any = _partial_path(path)
    else:
        work = location
    expected = {**header, "complete": False, "plan": plan.to_json()}
    old = (_read_attrs(work, storage_options) or {})
    if path is not None and old == final_attrs:  # finished, killed before the rename
        if not compute:
            return dask.delayed(_finish, pure=False)(None, None, work, path, None, location)
        _store.move_into_place(work, path)
        return location
    old_vz = voxzarr_attrs(old) or None
    can_resume = (
        resume and old_vz is not None and old_vz.get("complete") is False
        and {k: v for k, v in old_vz.items() if k != "progress"} == expected
    )
    if path is None and old and not can_resume and not overwrite:
        incomplete = old_vz is not None and old_vz.get("complete") is False
        if not incomplete:
            raise OverwriteError("already holds data; pass overwrite=True to replace it",
                                 path=location)
    if path is not None and work.exists() and not can_resume:
        shutil.rmtree(work)  # our own partial from other options: start again
    root = open_write_group(work, mode="r+" if can_resume else "w",
                            storage_options=storage_options)
    store = root.store_path
    dims, shape, dtype = plan.dims, plan.shape, np.dtype(plan.dtype)
    if can_resume:
        state = dict(old_vz)
        target = root[ARRAY]
        staging = root[STAGING] if plan.staging_chunks else None
    else:
        state = {**expected, "progress": {"phase": 0, "next": 0}}
        root.attrs.put({VOXZARR_KEY: state})  # marker first: this store is not complete
        target = zarr.create_array(
            store, name=ARRAY, shape=shape, dtype=dtype, chunks=plan.chunks,
            shards=plan.shards, compressors=codecs("0.5", compressor, clevel), fill_value=0,
            dimension_names=list(dims), zarr_format=3,
        )
        staging = None
        if plan.staging_chunks:
            staging = zarr.create_array(
                store, name=STAGING, shape=shape, dtype=dtype, chunks=plan.staging_chunks,
                compressors=None if path is not None else codecs("0.5", "lz4", 1),
                fill_value=0,
                zarr_format=3,
            )
    done = _Progress(root, state, plan)
    reader = reader_for(img.data, plan.threads)
    if not compute:
        phases = _deferred_phases(plan, done, reader, target, staging)
        return dask.delayed(_finish, pure=False)(phases, root, work, path, final_attrs,
                                                 location)
    client = active_client()  # a dask.distributed cluster takes the tasks, if one is active
    total = sum(math.prod(shape) for _ in plan.phases) * dtype.itemsize
    with tqdm(total=total, initial=done.bytes_done(dtype.itemsize), unit="B",
              unit_scale=True, desc=plan.direction, disable=not want_progress(progress),
              leave=False) as bar:
        first_phase, first_task = done.position
        for k, phase in enumerate(plan.phases):
            if k < first_phase:
                continue
            src = reader if phase.source == "source" else ZarrReader(staging, plan.threads)
            dst = target if phase.target == "target" else staging

            def on_progress(nxt: int, nbytes: int, k: int = k) -> None:
                done.advance(k, nxt)
                bar.update(nbytes)

            run_phase(phase, src, dst, start=first_task if k == first_phase else 0,
                      threads=plan.threads, on_progress=on_progress, client=client)
    return _finish(None, root, work, path, final_attrs, location)


def _finish(_done: Any, root: zarr.Group | None, work: Any, path: Path | None,
            final_attrs: dict[str, Any] | None, location: Any) -> Any:
    """Once every phase is written: drop the staging array, write the metadata (the
    store reads as complete from here on) and move a local store into place."""
    if root is not None:
        if STAGING in root:
            del root[STAGING]
        if path is not None:
            _remove_stray_partials(work)
        root.attrs.put(final_attrs)  # metadata last: from here on the store reads as complete
    if path is not None:
        _store.move_into_place(work, path)
    return location


def _copy_task(_after: Any, reader: Reader, read_region: tuple[slice, ...],
               target: zarr.Array, region: tuple[slice, ...], threads: int) -> int:
    """One task of a deferred phase (after the phase before it): :func:`copy_region`."""
    return copy_region(reader, read_region, target, region, threads)


def _phase_done(nbytes: list[int], done: _Progress, phase: int) -> int:
    """Every task of ``phase`` is written: record the next phase as the resume point."""
    done.advance(phase, done.plan.phases[phase].n_tasks)
    return sum(nbytes)


def _deferred_phases(plan: TransposePlan, done: _Progress, reader: Reader,
                     target: zarr.Array, staging: zarr.Array | None) -> Any:
    """The phases from the resume point on as one dask graph (``compute=False``).

    A phase's tasks depend on the whole phase before it (the staging array is read only
    once written), and :func:`copy_region` runs one task per process at a time, so the
    budget holds as in the direct run. The resume point is recorded per phase (tasks may
    finish in any order here), so an interrupted deferred conversion resumes at the start
    of the phase it was in.
    """
    first_phase, first_task = done.position
    shared = dask.delayed(reader, pure=False)  # in-process data: one graph key, not a copy
    prev: Any = None
    for k, phase in enumerate(plan.phases):
        if k < first_phase:
            continue
        src: Any = reader if phase.source == "source" else ZarrReader(staging, plan.threads)
        dst = target if phase.target == "target" else staging
        tasks = []
        for i in range(first_task if k == first_phase else 0, phase.n_tasks):
            region = phase.region(i)
            task = src.for_task(region)
            rdr, rregion = (shared if src is reader else src, region) if task is None else task
            tasks.append(dask.delayed(_copy_task, pure=False)(prev, rdr, rregion, dst, region,
                                                              plan.threads))
        prev = dask.delayed(_phase_done, pure=False)(tasks, done, k)
    return prev


def _with_fewer_threads(make: Callable[[int], TransposePlan], threads: int) -> TransposePlan:
    """Plan with ``threads``; when the budget cannot hold their buffers, with fewer."""
    for k in range(threads, 0, -1):
        try:
            return make(k)
        except VoxzarrError as err:
            if err.field != "memory" or k == 1:
                raise
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- public API
@progress_keyword
def to_series(
    obj: xr.DataArray,
    location: Any,
    memory: str | int = "512MB",
    *,
    block: Any = None,
    shards: Any = None,
    overwrite: bool = False,
    resume: bool = True,
    compressor: str | None = DEFAULT_COMPRESSOR,
    clevel: int = DEFAULT_CLEVEL,
    staging: bool | str = "auto",
    threads: int | None = None,
    name: str | None = None,
    source: Any = None,
    progress: bool | None = None,
    storage_options: dict | None = None,
    compute: bool = True,
) -> Any:
    """Write a time-lapse image in the series layout: each chunk holds whole time series.

    Parameters
    ----------
    obj
        Image with a ``t`` axis (``t[c](z)(y)x``, 1 to 3 spatial axes), lazy or in memory;
        e.g. ``vz.open_image("movie.ome.zarr")`` or ``vz.convert(...)`` output.
    location
        Local directory, fsspec URL or zarr store for the new series store.
    memory
        Memory budget (``"512MB"``, ``"2GiB"``, bytes) for the data in flight; peak memory
        stays within it plus the interpreter's own footprint (see ``spec/series.md``). With
        an active ``dask.distributed`` client the tasks run on its workers, one per worker
        process at a time, so the budget holds per worker.
    block
        Spatial block of one series chunk (int for every spatial axis, tuple over the
        spatial axes, or dict by dim). Default: about 1 MiB of whole series per chunk.
    shards
        ``None`` (shard only when there would be more than 4096 chunks), ``False``, or a
        spatial shard shape in whole blocks.
    overwrite
        Replace an existing store at ``location``.
    resume
        Continue an interrupted conversion with the same source and options (default).
    compressor, clevel
        Blosc compressor with byte shuffle (``"zstd"`` level 3 default) or ``None``.
    staging
        ``"auto"`` (stage through a scratch array when direct reading would decode each
        source chunk 3 times or more), ``True`` or ``False``.
    threads
        Threads for decoding and encoding (default: CPU count, at most 8).
    source
        Where the image came from, recorded in the ``voxzarr`` attribute.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name. Ignored with ``compute=False``.
    compute
        ``False`` (as xarray's ``to_zarr(compute=False)``): plan, check and create (or
        resume) the target now, and return a :class:`dask.delayed.Delayed` whose
        ``compute()`` runs the conversion's tasks as a dask graph, each phase after the one
        before, then writes the metadata and (local directories) renames the store into
        place. Until then :func:`open_series` refuses the store as unfinished. Tasks still
        run one per process at a time (the budget holds); the resume point is recorded
        per phase. With ``compute=True`` (default) the conversion runs here, submitting its
        tasks to an active ``dask.distributed`` client itself. A store that lives in this
        process only (``memory://``) must be computed on the threaded scheduler.

    Returns
    -------
    The location written (with ``compute=False``: a Delayed that computes to it). Open it
    with :func:`open_series`.
    """
    img = _check_image(obj, "to_series")
    budget = parse_memory(memory)
    n = threads or _default_threads()
    reader = reader_for(img.data, n)
    plan = _with_fewer_threads(
        lambda k: plan_to_series(img.dims, img.shape, img.dtype.itemsize, budget=budget,
                                 source_chunks=reader.chunks, block=block, shards=shards,
                                 threads=k, staging=staging, dtype=str(img.dtype)), n)
    sp = [d for d in plan.dims if d in SPATIAL]
    header = {
        "layout": LAYOUT,
        "version": LAYOUT_VERSION,
        "source": _fingerprint(img, source, reader.chunks),
        "array": ARRAY,
        "block": {d: plan.chunks[plan.dims.index(d)] for d in sp},
        "chunks": list(plan.chunks),
        "shards": list(plan.shards) if plan.shards else None,
    }
    final = _ngff_attrs(img, name)
    final[VOXZARR_KEY] = {**header, "complete": True}
    return _convert(img, location, plan, header=header, final_attrs=final,
                    compressor=compressor, clevel=clevel, overwrite=overwrite, resume=resume,
                    progress=progress, storage_options=storage_options, compute=compute)


@progress_keyword
def to_images(
    obj: xr.DataArray,
    location: Any,
    memory: str | int = "512MB",
    *,
    chunks: Any = None,
    shards: Any = None,
    overwrite: bool = False,
    resume: bool = True,
    compressor: str | None = DEFAULT_COMPRESSOR,
    clevel: int = DEFAULT_CLEVEL,
    staging: bool | str = "auto",
    threads: int | None = None,
    name: str | None = None,
    source: Any = None,
    progress: bool | None = None,
    storage_options: dict | None = None,
    compute: bool = True,
) -> Any:
    """Write a series-layout image (or any time-lapse) back in the image layout.

    The result is a plain NGFF 0.5 image chunked one timepoint per chunk (default
    :func:`voxzarr.io.default_chunks`, or ``chunks`` / ``shards`` as for
    :func:`voxzarr.io.to_ome_zarr`). Budget, resume, staging, ``compute`` and the other
    options are as for :func:`to_series`; until a ``compute=False`` write is computed the
    store does not open as an image.
    """
    img = _check_image(obj, "to_images")
    budget = parse_memory(memory)
    n = threads or _default_threads()
    reader = reader_for(img.data, n)
    dims = tuple(str(d) for d in img.dims)
    if chunks is None and shards is not None:
        raise ArgumentError("give chunks= with shards=", field="shards")
    ck, sh = (None, None) if chunks is None else storage_units(dims, img.shape, chunks, shards)
    plan = _with_fewer_threads(
        lambda k: plan_to_images(dims, img.shape, img.dtype.itemsize, budget=budget,
                                 source_chunks=reader.chunks, chunks=ck, shards=sh, threads=k,
                                 staging=staging, dtype=str(img.dtype)), n)
    header = {"layout": "image", "version": LAYOUT_VERSION,
              "source": _fingerprint(img, source, reader.chunks), "array": ARRAY}
    return _convert(img, location, plan, header=header, final_attrs=_ngff_attrs(img, name),
                    compressor=compressor, clevel=clevel, overwrite=overwrite, resume=resume,
                    progress=progress, storage_options=storage_options, compute=compute)


def series_info(location: Any, *, storage_options: dict | None = None) -> dict[str, Any]:
    """The ``voxzarr`` attribute of a complete series store (layout, block, source, ...).

    Raises :class:`StoreError` for an interrupted conversion and :class:`MetadataError` when
    the store is not in the series layout.
    """
    path = _store.local_path(location)
    if path is not None and not path.exists() and _partial_path(path).exists():
        raise StoreError("the conversion into this store did not finish; run to_series "
                         "again with the same options to resume it", path=location)
    root = _store.open_root(location, storage_options=storage_options)
    vz = voxzarr_attrs(root.attrs.asdict())
    if vz.get("layout") != LAYOUT:
        raise MetadataError("not a voxzarr series store (no voxzarr.layout == 'series'); "
                            "write one with img.vox.to_series", path=location,
                            field="voxzarr.layout")
    if vz.get("complete") is not True:
        raise StoreError("the conversion into this store did not finish; run to_series "
                         "again with the same options to resume it", path=location,
                         field="voxzarr.complete")
    check_version(vz.get("version"), LAYOUT_VERSION, layout=LAYOUT, path=location)
    return vz


def open_series(
    location: Any,
    *,
    chunks: Any = None,
    storage_options: dict | None = None,
) -> xr.DataArray:
    """Open a series store as a lazy DataArray whose dask chunks hold whole time series.

    ``ser.vox.series`` then gives the per-voxel analyses; ``ser.vox.to_images(path)``
    writes it back in the image layout. ``chunks`` defaults to the stored shard (or chunk)
    shape.
    """
    from ..io import open_image

    series_info(location, storage_options=storage_options)
    return open_image(location, chunks=chunks, storage_options=storage_options)
