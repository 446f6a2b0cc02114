"""Archive conversion into OME-Zarr: TIFF / OME-TIFF / ImageJ, frame folders, raw and Thunder
binary archives (:func:`convert`), and NGFF 0.4 -> 0.5 sharded upgrades (:func:`upgrade`).

Formats are found in a registry (:mod:`.readers`): :func:`register_archive_reader` adds one,
and other packages add theirs through the entry-point group ``voxzarr.archive_readers``.

Every conversion streams in bounded memory, shows a progress bar, writes beside the target,
checks the result against the input and only then renames it into place.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._write import DEFAULT_COMPRESSOR
from ..coords import SPATIAL
from ..errors import ConversionError
from .frames import read_frames
from .readers import (
    ArchiveReader,
    find_reader,
    open_with,
    register_archive_reader,
    unknown_format,
)
from .source import Source, VoxelSize, apply_axes, reread, resolve
from .upgrade import upgrade
from .write import task_chunks, write_image, write_series, write_unit

__all__ = ["convert", "upgrade", "read_source", "register_archive_reader", "ArchiveReader"]


def _is_zarr(path: Path) -> bool:
    return any((path / n).exists() for n in ("zarr.json", ".zgroup", ".zattrs", ".zarray"))


def read_source(source: str | Path | Sequence[str | Path], *, series: int = 0) -> Source:
    """Describe ``source`` (a file or folder of a registered archive format, or a list of
    TIFF frame files) as a lazy :class:`~voxzarr.convert.source.Source` without reading pixels.

    The format is the first registered reader, newest first, that claims the path
    (:mod:`voxzarr.convert.readers`); a path none claims is a
    :class:`~voxzarr.errors.ConversionError` that lists the registered readers.
    """
    if not isinstance(source, str | Path):
        return read_frames([Path(p) for p in source])
    path = Path(source)
    if path.is_dir() and _is_zarr(path):
        raise ConversionError("this is already a zarr store; use vz.upgrade / "
                              "`voxzarr upgrade` to move NGFF 0.4 to 0.5", path=path)
    if not path.exists():
        raise ConversionError("no such file or folder", path=path)
    reader = find_reader(path)
    if reader is None:
        raise unknown_format(path)
    return open_with(reader, path, series=series)


def convert(
    source: str | Path | Sequence[str | Path],
    dest: Any,
    *,
    voxel_size: VoxelSize | None = None,
    unit: str | None = None,
    axes: str | Sequence[str] | None = None,
    time_interval: float | None = None,
    time_unit: str | None = None,
    channel_names: Sequence[str] | None = None,
    series: int = 0,
    chunks: Any = None,
    shards: Any = None,
    version: str = "0.5",
    pyramid: bool | Mapping[str, Any] = False,
    compressor: str | None = DEFAULT_COMPRESSOR,
    overwrite: bool = False,
    progress: bool | None = None,
    verify: bool = True,
    storage_options: dict | None = None,
    layout: str = "auto",
) -> Any:
    """Convert an image archive into OME-Zarr.

    Parameters
    ----------
    source
        A TIFF / ImageJ hyperstack / OME-TIFF file; a folder of frame files (one per
        timepoint, natural name order: TIFF, or raw binary described by a ``conf.json`` as
        Thunder writes it); a Thunder binary *series* folder; a list of frame files; or a
        file or folder of a format added by :func:`register_archive_reader`.
    dest
        Where to write: local path, ``.zip``, fsspec URL or zarr store.
    voxel_size
        Spacing of the spatial axes: one number, ``{"z": 1.0, "y": 0.2, "x": 0.2}`` or
        ``(z, y, x)`` (trailing axes when shorter). Overrides the file's metadata.
    unit
        Unit of the spatial axes (``"micrometer"``, ``"um"``, ``"nm"``, ...).
    axes
        What each axis of the input is, in the input's order, e.g. ``"tyx"`` for a plain
        multi-page TIFF that is a time-lapse. Letters from ``t, c, z, y, x``.
    time_interval, time_unit
        Frame interval and its unit (default ``"second"``) for the ``t`` axis.
    channel_names
        Labels of the ``c`` axis (else the file's channel names, else ``0, 1, ...``).
    series
        Which series of a multi-series TIFF.
    chunks, shards
        Stored chunk / shard shape (tuple, dict by dim, or one int for the spatial axes).
        In the series layout ``chunks`` gives the spatial block of a chunk (its ``t`` is
        always the whole time axis) and ``shards`` the shard shape in whole blocks, as for
        :func:`voxzarr.series.to_series`.
    version
        NGFF version to write: ``"0.5"`` (zarr v3, default) or ``"0.4"``.
    pyramid
        Also write a multiscale pyramid (``True`` or options for ``img.vox.pyramid``).
    overwrite
        Replace an existing ``dest``.
    progress
        Show a progress bar (default: when stderr is a terminal).
    verify
        Reopen the result and compare shape, dtype, geometry and sample pixels with the input
        before it is moved into place.
    storage_options
        fsspec options for an ``s3://`` (or other URL) ``dest``: where the store is and how
        to reach it (``endpoint_url``, ``anon``, ...); credentials come from the environment.
        Used for the existence check, the write and the verification.
    layout
        ``"auto"`` (default): a Thunder binary series (records of whole time series) is
        written in voxzarr's series layout (chunks spanning the whole time axis; open it
        with :func:`voxzarr.open_series`, see ``spec/series.md``), everything else in the
        image layout. ``"series"`` writes any time-lapse in the series layout, ``"image"``
        always the image layout. The series layout is NGFF 0.5 with one level: with
        ``version="0.4"`` or ``pyramid`` a Thunder series is written in the image layout
        (with a warning), and ``layout="series"`` is refused.

    The pixels are read and written on the active dask scheduler: the workers of a
    ``dask.distributed`` cluster when a Client is current (source files must then be
    reachable by the same path from every worker), else local threads.

    Returns
    -------
    ``dest``.

    Raises
    ------
    ConversionError
        The input cannot be read as described, or its metadata contradicts its pixels; the
        message names the file and the field.
    """
    src = apply_axes(read_source(source, series=series), axes)
    img = resolve(src, voxel_size=voxel_size, unit=unit, time_interval=time_interval,
                  time_unit=time_unit, channel_names=channel_names)
    if _as_series(layout, src, img, version=version, pyramid=pyramid):
        return write_series(img, dest, block=_series_block(chunks, img.dims), shards=shards,
                            overwrite=overwrite, progress=progress, compressor=compressor,
                            verify=verify, storage_options=storage_options,
                            source=None if not isinstance(source, str | Path) else str(source))
    if chunks is None and axes is None and src.chunks is not None:
        chunks = {d: n for d, n in src.chunks.items() if d in img.dims}
    # plan write tasks of whole shards within budget, and read each task's block directly
    dims = tuple(str(d) for d in img.dims)
    ck, sh = write_unit(dims, img.shape, chunks, shards)
    img = reread(src, img, task_chunks(img.data.chunks, sh or ck, img.dtype.itemsize))
    return write_image(img, dest, chunks=chunks, shards=shards, version=version,
                       overwrite=overwrite, progress=progress, pyramid=pyramid,
                       compressor=compressor, verify=verify, storage_options=storage_options)


def _as_series(layout: str, src: Source, img: Any, *, version: str,
               pyramid: bool | Mapping[str, Any]) -> bool:
    """Whether to write the series layout (see :func:`convert`, ``layout``)."""
    if layout not in ("auto", "image", "series"):
        raise ConversionError(f"layout must be 'auto', 'image' or 'series', got {layout!r}",
                              path=src.path, field="layout")
    blocked = ("NGFF 0.4 was asked" if version != "0.5"
               else "a pyramid was asked" if pyramid else None)
    if layout == "series":
        if blocked:
            raise ConversionError(f"the series layout is NGFF 0.5 with one level, but "
                                  f"{blocked}", path=src.path, field="layout")
        if "t" not in img.dims:
            raise ConversionError(f"the series layout needs a time axis; the image has "
                                  f"{tuple(img.dims)}", path=src.path, field="layout")
        return True
    if layout == "auto" and src.layout == "series":
        if blocked:
            warnings.warn(f"{src.path}: a Thunder series written in the image layout because "
                          f"{blocked}; vz.open_series will not open it (layout='series' "
                          "needs NGFF 0.5 without a pyramid)", UserWarning, stacklevel=3)
            return False
        return True
    return False


def _series_block(chunks: Any, dims: Sequence[Any]) -> Any:
    """``convert``'s ``chunks`` as a series block: the spatial entries only."""
    if chunks is None or isinstance(chunks, int):
        return chunks
    if isinstance(chunks, Mapping):
        return {d: n for d, n in chunks.items() if d in SPATIAL}
    values = tuple(chunks)
    if len(values) == len(dims):  # one entry per dim: drop t and c
        return tuple(n for d, n in zip(dims, values, strict=True) if d in SPATIAL)
    return values


class _CallablePackage(types.ModuleType):
    """``voxzarr.convert`` names both this package and :func:`convert`.

    Python binds ``voxzarr.convert`` to the package once any of its modules is imported, so
    the package itself is made callable: ``vz.convert(src, dest)`` works either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
