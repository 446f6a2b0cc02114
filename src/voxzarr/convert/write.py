"""Write a converted image as OME-Zarr in bounded memory, then check what was written.

Tasks are planned so each writes whole stored chunks (whole shards when sharded), so no two
tasks ever touch one shard, and so no task holds more than :data:`TASK_BYTES` of pixels where
the input allows it. The result is written beside the destination, reopened and compared with
the input (shape, dtype, geometry, and pixels of sample regions re-read from the archive)
before it is renamed into place: an interrupted or wrong conversion never looks complete.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import _store
from .._write import DEFAULT_COMPRESSOR
from ..coords import geometry
from ..errors import ConversionError
from ..io import open_image, storage_units, to_ome_zarr
from ._pool import joined_pool

__all__ = ["TASK_BYTES", "write_unit", "task_chunks", "write_image", "write_series",
           "verify_image"]

#: most pixel bytes one write task holds, where the input can be split that finely
TASK_BYTES = 128 << 20


def write_unit(dims: tuple[str, ...], shape: tuple[int, ...], chunks: Any,
               shards: Any) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Stored ``(chunks, shards)`` exactly as :func:`voxzarr.io.to_ome_zarr` will write them."""
    return storage_units(dims, shape, chunks, shards)


def task_chunks(src_chunks: tuple[tuple[int, ...], ...], unit: tuple[int, ...],
                itemsize: int, budget: int | None = None) -> tuple[int, ...]:
    """Dask chunk shape for writing: whole multiples of ``unit`` (the shard or chunk), or
    the whole axis.

    Each axis starts at the input's own chunk (an axis the input reads whole stays whole,
    others are rounded to whole units, at least one), so pages or frames are read once; axes
    larger than one unit then shrink, largest first, until a task holds at most ``budget``
    bytes (never below one unit).
    """
    budget = TASK_BYTES if budget is None else budget
    target = []
    for c, u in zip(src_chunks, unit, strict=True):
        n = sum(c)
        target.append(n if max(c) >= n else max(u, max(c) // u * u))
    while math.prod(target) * itemsize > budget:
        ax = max(range(len(target)), key=lambda i: target[i] / unit[i])
        if target[ax] <= unit[ax]:
            break
        target[ax] = max(unit[ax], (math.ceil(target[ax] / unit[ax]) // 2) * unit[ax])
    return tuple(target)


def _sample_regions(shape: tuple[int, ...], dims: tuple[str, ...]) -> list[tuple[slice, ...]]:
    """Three small regions (start, middle, end) covering every axis, for pixel checks."""
    regions = []
    for frac in (0.0, 0.5, 1.0):
        key = []
        for d, n in zip(dims, shape, strict=True):
            size = min(n, 256) if d in ("y", "x") else 1
            start = int(round((n - size) * frac))
            key.append(slice(start, start + size))
        regions.append(tuple(key))
    return regions


def verify_image(expected: xr.DataArray, location: Any, *,
                 storage_options: dict | None = None) -> None:
    """Reopen ``location`` (with ``storage_options``, for fsspec URLs) and compare it with
    ``expected`` (lazy input image).

    Checks dims, shape, dtype, scale, translation, units, channel labels and the pixels of
    three sample regions, raising :class:`~voxzarr.errors.ConversionError` on a difference.
    """
    got = open_image(location, storage_options=storage_options)
    where = str(location)
    if got.dims != expected.dims or got.shape != expected.shape:
        raise ConversionError(f"wrote {got.dims} {got.shape}, expected {expected.dims} "
                              f"{expected.shape}", path=where, field="shape")
    if got.dtype != expected.dtype:
        raise ConversionError(f"wrote dtype {got.dtype}, expected {expected.dtype}",
                              path=where, field="dtype")
    g_exp, g_got = geometry(expected), geometry(got)
    for d in g_exp.scale:
        for what, a, b in (("scale", g_exp.scale[d], g_got.scale.get(d)),
                           ("translation", g_exp.translation[d], g_got.translation.get(d))):
            if b is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                raise ConversionError(f"{what} of {d!r} reads back as {b}, expected {a}",
                                      path=where, field=f"{what}.{d}")
        if g_exp.units.get(d) != g_got.units.get(d):
            raise ConversionError(f"unit of {d!r} reads back as {g_got.units.get(d)!r}, "
                                  f"expected {g_exp.units.get(d)!r}", path=where,
                                  field=f"units.{d}")
    if g_exp.channel_names is not None and g_exp.channel_names != g_got.channel_names:
        raise ConversionError(f"channel labels read back as {g_got.channel_names}, expected "
                              f"{g_exp.channel_names}", path=where, field="omero.channels")
    for key in _sample_regions(expected.shape, tuple(str(d) for d in expected.dims)):
        # a few small regions, read here: no cluster round trip, and it works for stores
        # that live in this process only (memory://), which workers cannot read
        a = np.asarray(expected.data[key].compute(scheduler="sync"))
        b = np.asarray(got.data[key].compute(scheduler="sync"))
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            raise ConversionError(f"pixels differ in region {key}", path=where, field="data")


def write_image(
    img: xr.DataArray,
    dest: Any,
    *,
    chunks: Any = None,
    shards: Any = None,
    version: str = "0.5",
    overwrite: bool = False,
    progress: bool | None = None,
    pyramid: bool | Mapping[str, Any] = False,
    compressor: str | None = DEFAULT_COMPRESSOR,
    verify: bool = True,
    storage_options: dict | None = None,
) -> Any:
    """Write ``img`` to ``dest`` through :func:`voxzarr.io.to_ome_zarr`, verified, atomically.

    The write runs on the active dask scheduler: a ``dask.distributed`` cluster when a
    Client is current, else local threads; either way no write task outlives a failure
    (see :func:`~voxzarr.convert._pool.joined_pool`). ``storage_options`` reach every
    store opened (existence check, write, verification).
    """
    dims = tuple(str(d) for d in img.dims)
    ck, sh = write_unit(dims, img.shape, chunks, shards)
    unit = sh or ck
    target = task_chunks(img.data.chunks, unit, img.dtype.itemsize)
    data = img.data.rechunk(target) if img.data.chunksize != target else img.data
    img = img.copy(data=data)
    common = dict(chunks=ck, shards=sh, version=version, overwrite=True,
                  progress=progress, pyramid=pyramid, compressor=compressor,
                  storage_options=storage_options)
    with _store.atomic_target(dest, overwrite=overwrite,
                              storage_options=storage_options) as tmp:
        if _store.local_path(tmp) is None:  # remote: written in place, metadata last
            with joined_pool():
                to_ome_zarr(img, tmp, **common)
            if verify:
                verify_image(img, tmp, storage_options=storage_options)
            return dest
        # Local: write into a work folder beside the target, so that whatever the writer
        # leaves behind on failure (its own hidden partial included) goes with that folder,
        # removed only once every write task has stopped.
        work = Path(tmp).with_name(Path(tmp).name + ".work")
        try:
            with joined_pool():
                to_ome_zarr(img, work / "image", **common)
            if verify:
                verify_image(img, work / "image", storage_options=storage_options)
            _store.move_into_place(work / "image", Path(tmp))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def write_series(
    img: xr.DataArray,
    dest: Any,
    *,
    block: Any = None,
    shards: Any = None,
    overwrite: bool = False,
    progress: bool | None = None,
    compressor: str | None = DEFAULT_COMPRESSOR,
    verify: bool = True,
    storage_options: dict | None = None,
    source: Any = None,
) -> Any:
    """Write ``img`` (with a ``t`` axis) to ``dest`` in voxzarr's series layout, verified,
    atomically: chunks span the whole time axis, so :func:`voxzarr.series.open_series`
    opens it (``spec/series.md``).

    ``block`` and ``shards`` are those of :func:`voxzarr.series.to_series` (spatial block of
    a chunk; shard shape in whole blocks); the conversion runs under its default memory
    budget. Like :func:`write_image`, a local result is built beside ``dest``, reopened and
    compared with ``img`` before it is moved into place.
    """
    from ..series import open_series, to_series

    common = dict(block=block, shards=shards, compressor=compressor, progress=progress,
                  storage_options=storage_options, source=source)
    with _store.atomic_target(dest, overwrite=overwrite,
                              storage_options=storage_options) as tmp:
        if _store.local_path(tmp) is None:  # remote: written in place, metadata last
            to_series(img, tmp, overwrite=True, **common)
            if verify:
                verify_image(img, tmp, storage_options=storage_options)
                open_series(tmp, storage_options=storage_options)
            return dest
        work = Path(tmp).with_name(Path(tmp).name + ".work")
        try:
            # to_series runs its own bounded tasks (locally or on an active cluster)
            to_series(img, work / "image", **common)
            if verify:
                verify_image(img, work / "image")
                open_series(work / "image")  # the layout metadata is complete
            _store.move_into_place(work / "image", Path(tmp))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest
