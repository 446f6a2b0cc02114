"""A folder (or list) of frame files, one per timepoint, as one lazy image.

Files are taken in natural order (``frame2`` before ``frame10``). TIFF frames are read page by
page; every frame must have the first frame's shape and dtype, else a
:class:`~voxzarr.errors.ConversionError` names the odd file. Geometry comes from the first
frame's metadata. A ``conf.json`` in the folder makes it a raw archive instead (see
:mod:`.raw`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..errors import ConversionError
from .raw import (
    is_frames_conf,
    is_series_conf,
    read_conf,
    read_raw_frames,
    read_thunder_series,
)
from .source import Source, natural_key, split_key
from .tiff import TIFF_SUFFIXES, open_tiff, read_region, read_tiff, series_layout, unreadable

__all__ = ["frame_files", "read_frames", "read_folder"]


def frame_files(folder: Path) -> list[Path]:
    """TIFF files directly in ``folder``, naturally sorted, hidden files skipped."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".")
             and p.name.lower().endswith(TIFF_SUFFIXES)]
    return sorted(files, key=lambda p: natural_key(p.name))


class TiffFrames:
    """Array-like over TIFF files of equal layout: axis 0 is the file, the rest its series 0."""

    def __init__(self, paths: Sequence[str], frame_shape: tuple[int, ...], dtype: np.dtype,
                 n_page_axes: int):
        self.paths = [os.path.abspath(p) for p in paths]  # workers may run elsewhere
        self.frame_shape = frame_shape
        self.dtype = np.dtype(dtype)
        self.n_page_axes = n_page_axes
        self.shape = (len(self.paths), *frame_shape)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        box, rest = split_key(key, self.shape)
        out = []
        for i in range(box[0].start, box[0].stop):
            try:
                with open_tiff(self.paths[i]) as tif:
                    out.append(read_region(tif, 0, self.frame_shape, self.n_page_axes,
                                           box[1:]))
            except Exception as err:
                raise unreadable(self.paths[i], box[1:], err) from err
        if not out:
            inner = tuple(s.stop - s.start for s in box[1:])
            return np.zeros((0, *inner), self.dtype)[rest]
        return np.stack(out)[rest]


def read_frames(files: Sequence[Path | str], *, where: str | None = None) -> Source:
    """Stack TIFF ``files`` (one per timepoint, in the order given) along a new leading axis."""
    paths = [Path(f) for f in files]
    where = where or str(paths[0].parent if paths else ".")
    if not paths:
        raise ConversionError("no frame files found", path=where)
    first = read_tiff(paths[0])
    with open_tiff(str(paths[0])) as tif:
        shape, dtype, npa = series_layout(tif.series[0])
    for p in paths[1:]:
        with open_tiff(str(p)) as tif:
            s = tif.series[0]
            if tuple(s.shape) != shape:
                raise ConversionError(f"frame shape {tuple(s.shape)} differs from the first "
                                      f"frame's {shape} ({paths[0].name})", path=p,
                                      field="shape")
            if np.dtype(s.dtype) != dtype:
                raise ConversionError(f"frame dtype {s.dtype} differs from the first frame's "
                                      f"{dtype} ({paths[0].name})", path=p, field="dtype")
    reader = TiffFrames([str(p) for p in paths], shape, dtype, npa)
    chunks = (1, *(1 if i < npa else n for i, n in enumerate(shape)))
    stats = [(p.stat().st_mtime_ns, p.stat().st_size) for p in paths]
    name = f"voxzarr-frames-{tokenize([str(p) for p in paths], stats)}"
    data = da.from_array(reader, chunks=chunks, asarray=False, lock=False, name=name,
                         meta=np.empty((0,) * reader.ndim, reader.dtype))
    stack = "t" if "t" not in first.axes else "?"
    if math.prod(shape) == 0:
        raise ConversionError("frames are empty", path=paths[0], field="shape")
    return Source(data=data, axes=stack + first.axes, path=where, scale=first.scale,
                  translation=first.translation, units=first.units,
                  channel_names=first.channel_names, origin=first.origin, reader=reader,
                  token=name)


def read_folder(folder: Path) -> Source:
    """A folder of frames: raw (``conf.json``), Thunder series, or TIFF files.

    :func:`voxzarr.convert.read_source` chooses among the same built-in readers through the
    registry (:mod:`.readers`), where other formats can join; this stays for direct callers.
    """
    if (folder / "conf.json").exists():
        conf = read_conf(folder)
        if is_series_conf(conf):
            return read_thunder_series(folder)
        if is_frames_conf(conf):
            return read_raw_frames(folder)
        raise ConversionError("conf.json has neither 'dims' (raw frames) nor 'nkeys'/"
                              "'nvalues' (Thunder series)", path=folder / "conf.json")
    return read_frames(frame_files(folder), where=str(folder))
