"""Raw binary archives described by a ``conf.json``, as written by Thunder.

Two layouts share the file name ``conf.json``; both describe one Thunder array per timepoint
whose axes are, in Thunder's own order, **(row, column[, plane]) = (y, x[, z])**: Thunder
reads a TIFF page into ``(rows, cols)`` and stacks pages last, and writes every binary
format from that array.

* **Image frames** (``saveAsBinaryImages``): ``{"dims": [...], "dtype": "int16"}`` and one
  flat binary file per frame (``image-00000.bin``, ...): the array's bytes in Fortran order,
  ``dims`` its shape. voxzarr reads the C-order array of shape ``dims[::-1]`` and names its
  axes ``(z, x, y)`` (``(x, y)`` in 2-D); :func:`voxzarr.convert.source.resolve` puts them in
  ``z, y, x`` order. An optional ``"order": "C"`` (a voxzarr extension) says the bytes are
  in C order with ``dims`` listed slowest first, ``(z, y, x)``.
* **Series** (Thunder 0.x ``saveAsBinarySeries``): ``{"nkeys", "nvalues", "keytype",
  "valuetype"}`` and files of records, each ``nkeys`` integer keys (the voxel's index into
  that same array, ``(y, x[, z])``) followed by ``nvalues`` values (its time series).
  A ``SUCCESS`` file marks a complete write.

So the same Thunder data give the same image from either layout, and the same as the TIFF
frames Thunder read it from. Neither layout records which axis is which; an optional
``"axes"`` entry in ``conf.json`` (a voxzarr extension, e.g. ``"xyz"`` for camera stacks
whose ``dims`` list x first) names the ``dims`` entries (or keys) in their listed order.

Both read lazily through ``numpy.memmap``: a task touches only the bytes of its block.
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..errors import ConversionError
from .source import Source, natural_key, split_key

__all__ = ["read_conf", "raw_frame_files", "read_raw_frames", "read_thunder_series",
           "is_series_conf", "is_frames_conf"]

_SKIP = {"conf.json", "SUCCESS", "_SUCCESS"}
_SPATIAL_BY_NDIM = {1: "x", 2: "yx", 3: "zyx"}
#: what Thunder's array axes are, in its order: TIFF rows, columns, then pages
_THUNDER_AXES = {1: "x", 2: "yx", 3: "yxz"}
_CHUNK_BYTES = 16 << 20


def read_conf(folder: Path) -> dict[str, Any]:
    """The ``conf.json`` of a raw archive, with a clear error when it does not parse."""
    conf = folder / "conf.json"
    try:
        data = json.loads(conf.read_text())
    except FileNotFoundError:
        raise ConversionError("no conf.json describing the raw files", path=folder) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConversionError(f"conf.json does not parse ({err})", path=conf) from None
    if not isinstance(data, dict):
        raise ConversionError("conf.json must hold an object", path=conf)
    return data


def is_series_conf(conf: dict[str, Any]) -> bool:
    return "nkeys" in conf or "nvalues" in conf


def is_frames_conf(conf: dict[str, Any]) -> bool:
    return "dims" in conf or "shape" in conf


def _dtype(value: Any, conf: Path, fld: str) -> np.dtype:
    try:
        dt = np.dtype(value)
    except TypeError:
        raise ConversionError(f"unknown dtype {value!r}", path=conf, field=fld) from None
    if dt.kind not in "biuf":
        raise ConversionError(f"dtype {dt} is not a numeric pixel type", path=conf, field=fld)
    return dt


def _positive_ints(value: Any, conf: Path, fld: str) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ConversionError(f"expected a list of positive integers, got {value!r}",
                              path=conf, field=fld)
    return tuple(value)


def _conf_axes(conf: dict[str, Any], cpath: Path, n: int, default: str) -> str:
    """Spatial axis of each ``dims`` entry (or key) in listed order: ``conf["axes"]`` when
    given (a voxzarr extension), else ``default``."""
    value = conf.get("axes")
    if value is None:
        return default
    text = str(value).lower() if isinstance(value, str) else ""
    if len(text) != n or len(set(text)) != n or not set(text) <= set("zyx"):
        raise ConversionError(f"axes must name each of the {n} dims once from 'z', 'y', 'x' "
                              f"(e.g. {default!r}), got {value!r}", path=cpath, field="axes")
    return text


def _token(paths: Sequence[Path]) -> str:
    """Dask name part that changes when any file changes."""
    return tokenize([(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths])


def raw_frame_files(folder: Path) -> list[Path]:
    """Data files of a raw archive, naturally sorted: ``*.bin``, else every non-config file."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.name not in _SKIP and not p.name.startswith(".")]
    bins = [p for p in files if p.suffix == ".bin"]
    chosen = bins or [p for p in files if p.suffix not in (".json", ".txt", ".md", ".crc")]
    return sorted(chosen, key=lambda p: natural_key(p.name))


# --------------------------------------------------------------------------- image frames
class RawFrames:
    """Array-like over equal-sized raw frames: axis 0 is the file, the rest the frame."""

    def __init__(self, paths: Sequence[str], frame_shape: tuple[int, ...], dtype: np.dtype):
        self.paths = [os.path.abspath(p) for p in paths]  # workers may run elsewhere
        self.frame_shape = frame_shape
        self.dtype = np.dtype(dtype)
        self.shape = (len(self.paths), *frame_shape)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        box, rest = split_key(key, self.shape)
        inner = box[1:]
        planes = []
        for i in range(box[0].start, box[0].stop):
            mm = np.memmap(self.paths[i], dtype=self.dtype, mode="r", shape=self.frame_shape)
            planes.append(np.array(mm[inner]))
            del mm
        if not planes:
            return np.zeros((0, *(s.stop - s.start for s in inner)), self.dtype)[rest]
        return np.stack(planes)[rest]


def read_raw_frames(folder: Path, files: Sequence[Path] | None = None) -> Source:
    """Raw binary frames (Thunder images) in ``folder`` as a lazy ``(t, [z,] y, x)`` source."""
    conf = read_conf(folder)
    cpath = folder / "conf.json"
    key = "dims" if "dims" in conf else "shape"
    dims = _positive_ints(conf.get(key), cpath, key)
    dtype = _dtype(conf.get("dtype", "int16"), cpath, "dtype")
    order = str(conf.get("order", "F")).upper()
    if order not in ("F", "C"):
        raise ConversionError(f"order must be 'F' or 'C', got {order!r}", path=cpath,
                              field="order")
    if len(dims) not in (2, 3):
        raise ConversionError(f"frames must be 2-D or 3-D, got dims {list(dims)}", path=cpath,
                              field=key)
    frame_shape = dims[::-1] if order == "F" else dims
    names = _conf_axes(conf, cpath, len(dims),
                       _THUNDER_AXES[len(dims)] if order == "F" else _SPATIAL_BY_NDIM[len(dims)])
    axes = "t" + (names[::-1] if order == "F" else names)  # the reader's (C) axis order
    paths = list(files) if files is not None else raw_frame_files(folder)
    if not paths:
        raise ConversionError("no frame files beside conf.json", path=folder)
    want = math.prod(frame_shape) * dtype.itemsize
    for p in paths:
        size = p.stat().st_size
        if size != want:
            raise ConversionError(
                f"frame has {size} bytes, conf.json describes {want} "
                f"({' x '.join(map(str, dims))} {dtype})", path=p, field="shape")
    reader = RawFrames([str(p) for p in paths], frame_shape, dtype)
    # one frame per task, split along its slowest axis so big volumes stream in slabs
    chunks = (1, 1, *frame_shape[1:]) if len(frame_shape) == 3 else (1, *frame_shape)
    name = f"voxzarr-raw-{_token(paths)}"
    data = da.from_array(reader, chunks=chunks, asarray=False, lock=False, name=name,
                         meta=np.empty((0,) * reader.ndim, reader.dtype))
    return Source(data=data, axes=axes, path=str(folder), reader=reader, token=name)


# --------------------------------------------------------------------------- Thunder series
class ThunderSeries:
    """Array-like ``(t, *spatial)`` view of Thunder binary series records.

    ``index`` maps each voxel (indexed by the keys in reverse, e.g. ``(z, x, y)`` for
    Thunder's ``(y, x, z)`` keys) to its global record number, -1 where no record holds it.
    It travels with every pickled graph (to ``dask.distributed`` workers), so it pickles as
    compressed steps between neighbouring voxels' record numbers: a few bytes in all when
    the records follow the voxel order, even blockwise.
    """

    def __init__(self, paths: Sequence[str], counts: Sequence[int], record: np.dtype,
                 index: np.ndarray, fill: Any = 0):
        self.paths = [os.path.abspath(p) for p in paths]  # workers may run elsewhere
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.record = record
        self.index = index
        self.dtype = record["v"].base
        self.shape = (int(record["v"].shape[0]), *index.shape)
        self.ndim = len(self.shape)
        self.fill = fill

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        steps = np.diff(self.index.ravel(), prepend=0)
        small = np.int32 if steps.size and abs(steps).max() < 2**31 else np.int64
        state["index"] = (self.index.shape, np.dtype(small).str,
                          zlib.compress(steps.astype(small).tobytes(), 1))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        shape, dtype, blob = state["index"]
        steps = np.frombuffer(zlib.decompress(blob), dtype=dtype)
        self.__dict__.update(state, index=np.cumsum(steps, dtype=np.int64).reshape(shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        box, rest = split_key(key, self.shape)
        return self._read(box[0], box[1:])[rest]

    def _read(self, tsel: slice, ssel: tuple[slice, ...]) -> np.ndarray:
        ids = self.index[ssel]
        nt = tsel.stop - tsel.start
        out = np.full((ids.size, nt), self.fill, dtype=self.dtype)
        flat = ids.ravel()
        for f, path in enumerate(self.paths):
            lo, hi = self.starts[f], self.starts[f + 1]
            hit = np.nonzero((flat >= lo) & (flat < hi))[0]
            if hit.size == 0:
                continue
            mm = np.memmap(path, dtype=self.record, mode="r")
            rec = flat[hit] - lo
            order = np.argsort(rec)  # read the file forwards
            out[hit[order]] = mm["v"][rec[order], tsel]
            del mm
        return np.ascontiguousarray(out.T.reshape((nt, *ids.shape)))


def read_thunder_series(folder: Path, files: Sequence[Path] | None = None) -> Source:
    """Thunder 0.x binary series (``nkeys``/``nvalues`` conf.json) as a lazy ``(t, ...)`` source.

    Keys are scanned once to place each record (memory: 8 bytes per voxel for the index);
    pixel values are then read block by block as the writer asks for them. The source says
    ``layout="series"``: :func:`voxzarr.convert.convert` writes it in the series layout.
    """
    conf = read_conf(folder)
    cpath = folder / "conf.json"
    for k in ("nkeys", "nvalues"):
        if not isinstance(conf.get(k), int) or isinstance(conf.get(k), bool) or conf[k] < 1:
            raise ConversionError(f"{k} must be a positive integer, got {conf.get(k)!r}",
                                  path=cpath, field=k)
    nkeys, nvalues = conf["nkeys"], conf["nvalues"]
    if nkeys > 3:
        raise ConversionError(f"{nkeys} keys per record; voxzarr reads 1 to 3 (y, x, z)",
                              path=cpath, field="nkeys")
    names = _conf_axes(conf, cpath, nkeys, _THUNDER_AXES[nkeys])
    ktype = _dtype(conf.get("keytype", "int16"), cpath, "keytype")
    vtype = _dtype(conf.get("valuetype", "int16"), cpath, "valuetype")
    if ktype.kind not in "iu":
        raise ConversionError(f"keytype must be an integer type, got {ktype}", path=cpath,
                              field="keytype")
    if not (folder / "SUCCESS").exists() and not (folder / "_SUCCESS").exists():
        warnings.warn(f"{folder}: no SUCCESS file; the series may be an unfinished write",
                      UserWarning, stacklevel=3)
    record = np.dtype([("k", ktype, (nkeys,)), ("v", vtype, (nvalues,))])
    paths = list(files) if files is not None else raw_frame_files(folder)
    if not paths:
        raise ConversionError("no series files beside conf.json", path=folder)
    counts, keys = [], []
    for p in paths:
        size = p.stat().st_size
        if size % record.itemsize:
            raise ConversionError(
                f"{size} bytes is not a whole number of {record.itemsize}-byte records "
                f"({nkeys} {ktype} keys + {nvalues} {vtype} values)", path=p, field="nvalues")
        n = size // record.itemsize
        counts.append(n)
        if n:
            keys.append(np.array(np.memmap(p, dtype=record, mode="r")["k"], dtype=np.int64))
    allk = np.concatenate(keys) if keys else np.zeros((0, nkeys), np.int64)
    if allk.size == 0:
        raise ConversionError("the series holds no records", path=folder)
    if allk.min() < 0:
        raise ConversionError("negative keys", path=folder, field="keys")
    spatial = tuple(int(m) + 1 for m in allk.max(axis=0))[::-1]  # index: keys reversed
    index = np.full(spatial, -1, dtype=np.int64)
    pos = tuple(allk[:, ::-1].T)
    index[pos] = np.arange(allk.shape[0])
    placed = int((index >= 0).sum())
    if placed != allk.shape[0]:
        raise ConversionError(f"{allk.shape[0] - placed} records repeat a key", path=folder,
                              field="keys")
    if placed != index.size:
        warnings.warn(f"{folder}: {index.size - placed} voxels have no record; written as 0",
                      UserWarning, stacklevel=3)
    reader = ThunderSeries([str(p) for p in paths], counts, record, index)
    # Records hold whole time series, so the natural stored chunk spans all of t and a
    # small spatial block: each task then reads every record it needs exactly once.
    side = max(1, int((_CHUNK_BYTES / (nvalues * vtype.itemsize)) ** (1 / len(spatial))))
    side = 1 << (side.bit_length() - 1)
    chunks = (nvalues, *(min(n, side) for n in spatial))
    axes = "t" + names[::-1]
    name = f"voxzarr-thunder-{_token(paths)}"
    data = da.from_array(reader, chunks=chunks, asarray=False, lock=False, name=name,
                         meta=np.empty((0,) * reader.ndim, reader.dtype))
    return Source(data=data, axes=axes, path=str(folder),
                  chunks=dict(zip(axes, chunks, strict=True)), reader=reader, token=name,
                  layout="series")
