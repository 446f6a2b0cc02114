"""TIFF, ImageJ hyperstacks and OME-TIFF as a lazy :class:`~.source.Source`.

Pixels are read page by page through :mod:`tifffile` (one task per page, each thread keeping
its own open file), so memory stays bounded by the pages one write task needs. Geometry comes,
in this order of trust, from OME-XML, ImageJ metadata, then the TIFF resolution tags; what the
user passes to :func:`voxzarr.convert.convert` overrides all of them.

Axis letters of tifffile's ``series.axes`` map to voxzarr dimensions as in :data:`AXIS_MAP`:
RGB(A) samples ``S`` become the ``c`` axis, ``Q``/``I`` (page axes the file does not name) are
left unnamed for the caller to resolve.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import tifffile
import zarr
from dask.base import tokenize

from ..errors import ConversionError
from ..units import normalize_unit
from .source import Source, split_key

__all__ = ["AXIS_MAP", "TIFF_SUFFIXES", "TiffPages", "open_tiff", "read_region", "read_tiff",
           "series_layout", "spacing_from_resolution", "tiff_calibration", "unreadable"]

#: tifffile axis letter -> voxzarr dimension ("?" = not named by the file)
AXIS_MAP: dict[str, str] = {"T": "t", "C": "c", "S": "c", "Z": "z", "Y": "y", "X": "x",
                            "Q": "?", "I": "?"}
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")

#: pages at least this large are read by region (memory map or segments), not whole
PAGE_REGION_BYTES = 16 << 20

# TIFF ResolutionUnit values whose length is known, in micrometres (INCH means print dpi)
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}


# --------------------------------------------------------------------------- pixel access
class TiffPages:
    """Array-like view of one TIFF series that reads only the pages a slice touches.

    Leading (page) axes are addressed by page index; a part of a large page is read by
    region (see :func:`page_part`), a small page is decoded whole.
    Each thread opens its own :class:`tifffile.TiffFile`; the object pickles to its
    (absolute) path, so it can travel to ``dask.distributed`` workers. A page that cannot be
    read or decoded raises :class:`~voxzarr.errors.ConversionError` naming file and region.
    """

    def __init__(self, path: str, series: int, shape: tuple[int, ...], dtype: np.dtype,
                 n_page_axes: int):
        self.path = os.path.abspath(path)  # a worker may run in another directory
        self.series = series
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)
        self.n_page_axes = n_page_axes
        self._local = threading.local()
        self._open: list[tifffile.TiffFile] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._open)

    def __getstate__(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in ("path", "series", "shape", "dtype", "n_page_axes")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _tif(self) -> tifffile.TiffFile:
        tif = getattr(self._local, "tif", None)
        if tif is None:
            tif = tifffile.TiffFile(self.path)
            self._local.tif = tif
            with self._lock:
                self._open.append(tif)
        return tif

    def __getitem__(self, key: Any) -> np.ndarray:
        box, rest = split_key(key, self.shape)
        try:
            block = read_region(self._tif(), self.series, self.shape, self.n_page_axes, box)
        except Exception as err:
            raise unreadable(self.path, box, err) from err
        return block[rest]


def unreadable(path: str, box: tuple[slice, ...], err: Exception) -> ConversionError:
    """The error for pixels of ``path`` that cannot be read or decoded (corrupt, truncated)."""
    if isinstance(err, ConversionError):
        return err
    region = ", ".join(f"{s.start}:{s.stop}" for s in box)
    return ConversionError(f"cannot read or decode the pixels [{region}] "
                           f"({type(err).__name__}: {err})", path=path, field="pixels")


def read_region(tif: tifffile.TiffFile, series: int, shape: tuple[int, ...], n_page_axes: int,
                key: tuple[slice, ...]) -> np.ndarray:
    """Read ``key`` (one unit-step slice per axis) of a series, decoding only the pages it
    touches."""
    npa = n_page_axes
    lead_shape = shape[:npa]
    ranges = [range(*k.indices(n)) for k, n in zip(key[:npa], lead_shape, strict=True)]
    out_lead = tuple(len(r) for r in ranges)
    inner = (Ellipsis, *key[npa:])
    if math.prod(out_lead) == 0:
        return np.zeros(out_lead + shape[npa:], tif.series[series].dtype)[inner]
    if not npa:
        if len(tif.series[series].pages) == 1:  # one page: read just the region
            return page_part(tif, series, 0, shape, tuple(key))
        return np.asarray(tif.asarray(series=series)).reshape(shape)[inner]
    grid = np.meshgrid(*[np.asarray(r) for r in ranges], indexing="ij")
    pages = np.ravel_multi_index(grid, lead_shape).ravel()
    page_shape = shape[npa:]
    crop = tuple(key[npa:])
    if all(k == slice(0, n) for k, n in zip(crop, page_shape, strict=True)):
        arr = tif.asarray(key=[int(p) for p in pages], series=series)
        return np.asarray(arr).reshape(out_lead + page_shape)
    # part of each page: one page at a time, keeping only the part asked for
    out = np.empty((pages.size, *(len(range(*k.indices(n))) for k, n in
                                  zip(crop, page_shape, strict=True))),
                   tif.series[series].dtype)
    for i, p in enumerate(pages):
        out[i] = page_part(tif, series, int(p), page_shape, crop)
    return out.reshape(out_lead + out.shape[1:])


def page_part(tif: tifffile.TiffFile, series: int, index: int, page_shape: tuple[int, ...],
              crop: tuple[slice, ...]) -> np.ndarray:
    """``crop`` of page ``index`` of a series, without decoding all of a large page.

    A large uncompressed contiguous page is memory-mapped, so only the bytes of ``crop`` are
    read; a large page stored in several strips or tiles is read through tifffile's zarr view
    of the page, which decodes only the segments ``crop`` touches. Small pages (and pages in
    one compressed segment) are decoded whole, which is cheapest there.
    """
    dtype = tif.series[series].dtype
    if math.prod(page_shape) * dtype.itemsize >= PAGE_REGION_BYTES:
        page = tif.series[series].pages[index]
        full = page if isinstance(page, tifffile.TiffPage) else page.aspage()
        if full.is_memmappable and tif.filehandle.is_file:
            mm = np.memmap(tif.filehandle.path, dtype=np.dtype(tif.byteorder + dtype.char),
                           mode="r", offset=full.dataoffsets[0], shape=math.prod(page_shape))
            return np.array(mm.reshape(page_shape)[crop], dtype=dtype)  # a copy: mm closes
        if len(full.dataoffsets) > 1:
            z = zarr.open_array(page.aszarr(), mode="r")
            if tuple(z.shape) == tuple(page_shape):
                return np.asarray(z[crop], dtype=dtype)
    whole = np.asarray(tif.asarray(key=index, series=series)).reshape(page_shape)
    return whole[crop]


def _close_all(handles: list[tifffile.TiffFile]) -> None:
    for h in handles:
        h.close()


# --------------------------------------------------------------------------- geometry
def spacing_from_resolution(res: tuple[int, int] | float) -> float:
    """Voxel size from a TIFF resolution (pixels per unit): the shortest decimal that the
    stored rational reproduces.

    ImageJ stores ``1 / spacing`` as a rational with denominator 10**6, truncated, so a spacing
    of 1.5 comes back as 1/0.666666 = 1.5000015. Among the decimals that give back the stored
    numerator to within one unit, the one with the fewest digits is returned (1.5); a small
    denominator (an exact fraction) is taken as it is.
    """
    if isinstance(res, tuple):
        num, den = int(res[0]), int(res[1])
    else:
        num, den = float(res), 1
    if num <= 0 or den <= 0:
        raise ConversionError(f"resolution must be > 0, got {res!r}", field="resolution")
    exact = den / num
    if den < 1000:
        return exact
    for digits in range(1, 16):
        cand = float(f"{exact:.{digits}g}")
        if cand > 0 and abs(den / cand - num) < 1.0:
            return cand
    return exact


@dataclass
class _Calibration:
    scale: dict[str, float]
    translation: dict[str, float]
    units: dict[str, str | None]
    channel_names: tuple[str, ...] | None
    origin: dict[str, str]


def _resolution(page: tifffile.TiffPage, tag: str, path: str) -> float | None:
    t = page.tags.get(tag)
    if t is None:
        return None
    try:
        return spacing_from_resolution(t.value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise ConversionError(f"invalid resolution {t.value!r} (must be a positive number of "
                              "pixels per unit)", path=path, field=tag) from None


def _positive(value: Any, path: str, fld: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConversionError(f"expected a number, got {value!r}", path=path,
                              field=fld) from None
    if not math.isfinite(v) or v <= 0:
        raise ConversionError(f"must be a finite number > 0, got {value!r}", path=path,
                              field=fld)
    return v


def _imagej_calibration(tif: tifffile.TiffFile, path: str) -> _Calibration:
    meta = tif.imagej_metadata or {}
    page = tif.pages.first
    cal = _Calibration({}, {}, {}, None, {})
    unit = normalize_unit(meta.get("unit"), path=path, field="ImageJ unit")
    if unit is not None:
        for dim, tag, ukey in (("x", "XResolution", "unit"), ("y", "YResolution", "yunit")):
            sp = _resolution(page, tag, path)
            if sp is not None:
                cal.scale[dim] = sp
                cal.origin[dim] = tag
            cal.units[dim] = normalize_unit(meta.get(ukey, meta.get("unit")), path=path,
                                            field=f"ImageJ {ukey}")
        cal.units["z"] = normalize_unit(meta.get("zunit", meta.get("unit")), path=path,
                                        field="ImageJ zunit")
        if "spacing" in meta:
            cal.scale["z"] = _positive(meta["spacing"], path, "ImageJ spacing")
            cal.origin["z"] = "ImageJ spacing"
    if "finterval" in meta:
        cal.scale["t"] = _positive(meta["finterval"], path, "ImageJ finterval")
        cal.units["t"] = normalize_unit(meta.get("tunit", "second"), path=path,
                                        field="ImageJ tunit")
        cal.origin["t"] = "ImageJ finterval"
    for dim in ("x", "y", "z"):
        org = meta.get(f"{dim}origin")
        if org is not None and dim in cal.scale:
            cal.translation[dim] = -float(org) * cal.scale[dim]
    return cal


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_pixels(tif: tifffile.TiffFile, series: int, path: str) -> ET.Element | None:
    xml = tif.ome_metadata
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ConversionError(f"OME-XML does not parse ({err})", path=path,
                              field="ImageDescription") from None
    images = [el for el in root if _local(el.tag) == "Image"]
    if not 0 <= series < len(images):
        return None
    for el in images[series]:
        if _local(el.tag) == "Pixels":
            return el
    return None


def _ome_calibration(pixels: ET.Element, path: str) -> _Calibration:
    cal = _Calibration({}, {}, {}, None, {})
    a = pixels.attrib
    for dim, key in (("x", "PhysicalSizeX"), ("y", "PhysicalSizeY"), ("z", "PhysicalSizeZ")):
        if key in a:
            cal.scale[dim] = _positive(a[key], path, f"OME Pixels {key}")
            cal.units[dim] = normalize_unit(a.get(f"{key}Unit", "µm"), path=path,
                                            field=f"OME Pixels {key}Unit")
            cal.origin[dim] = f"OME Pixels {key}"
    if "TimeIncrement" in a:
        cal.scale["t"] = _positive(a["TimeIncrement"], path, "OME Pixels TimeIncrement")
        cal.units["t"] = normalize_unit(a.get("TimeIncrementUnit", "s"), path=path,
                                        field="OME Pixels TimeIncrementUnit")
        cal.origin["t"] = "OME Pixels TimeIncrement"
    names = [ch.attrib.get("Name") for ch in pixels if _local(ch.tag) == "Channel"]
    if names and all(names):
        cal.channel_names = tuple(str(n) for n in names)
    return cal


def _check_ome_shape(pixels: ET.Element, series: tifffile.TiffPageSeries, path: str) -> None:
    """Refuse an OME-TIFF whose declared sizes disagree with the pages actually present."""
    a = pixels.attrib
    missing = sum(p is None for p in series.pages)
    if missing:
        sizes = " x ".join(f"{k}={a.get(k)}" for k in ("SizeZ", "SizeC", "SizeT"))
        raise ConversionError(
            f"OME-XML declares {len(series.pages)} planes ({sizes}) but {missing} of them are "
            "not in the file", path=path, field="OME Pixels SizeZ/SizeC/SizeT")
    full = dict(zip(series.get_axes(False), series.get_shape(False), strict=True))
    for letter in "XYZT":
        key = f"Size{letter}"
        if key in a and letter in full and int(a[key]) != full[letter]:
            raise ConversionError(f"OME-XML says {key}={a[key]} but the pages hold "
                                  f"{full[letter]}", path=path, field=f"OME Pixels {key}")
    if "SizeC" in a and "C" in full:
        n = full["C"] * full.get("S", 1)
        if int(a["SizeC"]) != n:
            raise ConversionError(f"OME-XML says SizeC={a['SizeC']} but the pages hold {n} "
                                  "channels (samples included)", path=path,
                                  field="OME Pixels SizeC")


def _check_imagej_shape(tif: tifffile.TiffFile, series: tifffile.TiffPageSeries,
                        path: str) -> None:
    """ImageJ metadata whose counts do not fit the pages makes tifffile fall back silently."""
    if series.kind == "imagej":
        return
    meta = tif.imagej_metadata or {}
    counts = {k: meta[k] for k in ("images", "channels", "slices", "frames") if k in meta}
    said = ", ".join(f"{k}={v}" for k, v in counts.items())
    fld = "ImageJ " + "/".join(counts) if counts else "ImageJ images"
    raise ConversionError(f"ImageJ metadata ({said}) does not fit the {len(tif.pages)} pages "
                          "in the file", path=path, field=fld)


def _plain_calibration(tif: tifffile.TiffFile, path: str) -> _Calibration:
    """Resolution tags of a plain TIFF, when ResolutionUnit gives them a length."""
    cal = _Calibration({}, {}, {}, None, {})
    page = tif.pages.first
    unit_tag = page.tags.get("ResolutionUnit")
    factor = _RESUNIT_UM.get(int(unit_tag.value)) if unit_tag is not None else None
    if factor is None:
        return cal  # no unit, or inch (a print resolution, not a pixel size)
    for dim, tag in (("x", "XResolution"), ("y", "YResolution")):
        sp = _resolution(page, tag, path)
        if sp is not None:
            cal.scale[dim] = float(f"{sp * factor:.12g}")
            cal.units[dim] = "micrometer"
            cal.origin[dim] = tag
    return cal


def tiff_calibration(tif: tifffile.TiffFile, series: int = 0, *,
                     path: str | None = None) -> _Calibration:
    """Geometry a TIFF states about ``series``: OME-XML, else ImageJ, else resolution tags.

    Also checks that the metadata agrees with the pages present, raising
    :class:`~voxzarr.errors.ConversionError` naming the file and field when it does not.
    """
    where = path or tif.filehandle.path
    s = tif.series[series]
    pixels = _ome_pixels(tif, series, where) if tif.is_ome else None
    if pixels is not None:
        _check_ome_shape(pixels, s, where)
        return _ome_calibration(pixels, where)
    if tif.is_imagej:
        _check_imagej_shape(tif, s, where)
        return _imagej_calibration(tif, where)
    return _plain_calibration(tif, where)


# --------------------------------------------------------------------------- reader
def _axes_letters(series: tifffile.TiffPageSeries, path: str) -> str:
    axes = series.axes
    letters = [AXIS_MAP.get(a, "?") for a in axes]
    if "C" in axes and "S" in axes:
        raise ConversionError(
            f"series has both channels (C={series.shape[axes.index('C')]}) and samples per "
            f"pixel (S={series.shape[axes.index('S')]}); voxzarr has one channel axis",
            path=path, field="axes")
    return "".join(letters)


def series_layout(s: tifffile.TiffPageSeries) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and number of leading page axes of a series (0: read it whole)."""
    shape, dtype = tuple(int(n) for n in s.shape), np.dtype(s.dtype)
    n_page_axes = len(shape) - len(s.keyframe.shape)
    if n_page_axes < 0 or math.prod(shape[:n_page_axes]) != len(s.pages):
        n_page_axes = 0  # pages do not tile the series simply: read it whole
    return shape, dtype, n_page_axes


def open_tiff(path: str) -> tifffile.TiffFile:
    """Open a TIFF, turning "missing" and "not a TIFF" into ConversionError naming it."""
    try:
        return tifffile.TiffFile(path)
    except FileNotFoundError:
        raise ConversionError("no such file", path=path) from None
    except Exception as err:
        raise ConversionError(f"not a readable TIFF ({type(err).__name__}: {err})",
                              path=path) from None


def read_tiff(path: str | Path, *, series: int = 0) -> Source:
    """Describe one series of a TIFF / ImageJ / OME-TIFF file as a lazy :class:`Source`.

    The dask array has one chunk per page along the page axes and whole pages otherwise.
    """
    where = str(path)
    with open_tiff(where) as tif:
        if not 0 <= series < len(tif.series):
            raise ConversionError(f"has {len(tif.series)} series, asked for {series}",
                                  path=where, field="series")
        s = tif.series[series]
        cal = tiff_calibration(tif, series, path=where)
        axes = _axes_letters(s, where)
        shape, dtype, n_page_axes = series_layout(s)
    reader = TiffPages(where, series, shape, dtype, n_page_axes)
    chunks = tuple(1 if i < n_page_axes else n for i, n in enumerate(shape))
    stat = Path(where).stat()
    name = f"voxzarr-tiff-{tokenize(where, series, stat.st_mtime_ns, stat.st_size)}"
    data = da.from_array(reader, chunks=chunks, asarray=False, lock=False, name=name,
                         meta=np.empty((0,) * reader.ndim, reader.dtype))
    return Source(data=data, axes=axes, path=where, scale=cal.scale,
                  translation=cal.translation, units=cal.units,
                  channel_names=cal.channel_names, origin=cal.origin, reader=reader,
                  token=name)
