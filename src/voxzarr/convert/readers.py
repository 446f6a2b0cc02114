"""Archive readers by name: what :func:`voxzarr.convert.read_source` may open, and how.

A reader turns one file or folder into a lazy :class:`~voxzarr.convert.source.Source` (no
pixels read). It claims a path by its file-name ending (``suffixes``, files only) or by a
look at it (``sniff``, files or folders). ``read_source`` asks the registered readers in
**reverse order of registration** and the first that claims the path opens it: a reader
registered later (a plug-in) is asked before the built-ins, and the built-ins are registered
so that the more particular is asked first:

==============  ==============================================================
``thunder``     a folder whose ``conf.json`` has ``nkeys`` / ``nvalues``
``raw``         any other folder with a ``conf.json`` (raw binary frames)
``tiff``        a file ending in ``.tif``, ``.tiff``, ``.btf``, ``.tf8``, ``.tf2``
``tiff-frames`` any other folder (TIFF frames, one per timepoint)
==============  ==============================================================

Other packages add readers without being imported, through an entry point in the group
``voxzarr.archive_readers`` naming an :class:`ArchiveReader`; they are loaded on the first
``read_source`` that asks them (one that fails to load is left out with a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._registry import Registry
from ..errors import ConversionError
from .frames import frame_files, read_frames
from .raw import (
    is_frames_conf,
    is_series_conf,
    read_conf,
    read_raw_frames,
    read_thunder_series,
)
from .source import Source
from .tiff import TIFF_SUFFIXES, read_tiff

__all__ = ["ARCHIVE_READERS", "ArchiveReader", "find_reader", "open_with",
           "register_archive_reader", "unknown_format"]

OpenFn = Callable[..., Source]  # open_fn(path, *, series) -> Source


@dataclass(frozen=True)
class ArchiveReader:
    """A registered archive reader.

    Attributes
    ----------
    name
        The reader's name, for messages and listings.
    open
        ``open(path, *, series=0) -> Source``: describe the archive at ``path`` (a
        :class:`~pathlib.Path`) as a lazy :class:`~voxzarr.convert.source.Source` without
        reading pixels. ``series`` is :func:`~voxzarr.convert.convert`'s ``series=``
        (which image of a multi-image file); readers of one-image formats ignore it.
        Raise :class:`~voxzarr.errors.ConversionError` for input that cannot be read.
    suffixes
        File-name endings it claims, lower case (``(".tif", ".tiff")``); files only.
    sniff
        ``sniff(path) -> bool`` for paths its suffixes do not claim (folders, or files
        told by their content); it must not raise for input of other formats.
    summary
        What it reads, for listings and the message about an unknown format.
    """

    name: str
    open: OpenFn = field(repr=False)
    suffixes: tuple[str, ...] = ()
    sniff: Callable[[Path], bool] | None = field(default=None, repr=False)
    summary: str = ""

    def claims(self, path: Path) -> bool:
        """Whether this reader opens ``path`` (an existing file or folder)."""
        if self.suffixes and path.is_file() and path.name.lower().endswith(self.suffixes):
            return True
        return self.sniff is not None and bool(self.sniff(path))


def _as_reader(name: str, obj: Any) -> ArchiveReader:
    """An entry point's object as a reader (it must be an :class:`ArchiveReader`)."""
    if isinstance(obj, ArchiveReader):
        return obj if obj.name == name else replace(obj, name=name)
    raise ConversionError(f"the archive reader {name!r} is a {type(obj).__name__}, not an "
                          "ArchiveReader", field="format")


#: archive readers by name, in registration order (built-ins first); asked newest first
ARCHIVE_READERS = Registry("archive reader", group="voxzarr.archive_readers",
                           adapt=_as_reader, error=ConversionError, field="format")


def register_archive_reader(name: str, open_fn: OpenFn, *, suffixes: Sequence[str] = (),
                            sniff: Callable[[Path], bool] | None = None, summary: str = "",
                            replace: bool = False) -> ArchiveReader:
    """Add an archive format to :func:`voxzarr.convert` (and ``voxzarr convert``).

    Parameters
    ----------
    name
        The reader's name; a name registered already is refused unless ``replace``.
    open_fn
        ``open_fn(path, *, series=0) -> Source`` (see :class:`ArchiveReader`).
    suffixes
        File-name endings it claims (case-insensitive; files only), e.g. ``(".lsm",)``.
    sniff
        ``sniff(path) -> bool``: claims folders, or files by their content.
    summary
        What it reads, in a few words (listed when no reader claims a path).
    replace
        Replace a reader registered under ``name`` (it keeps its place in the order).

    Returns
    -------
    The registered :class:`ArchiveReader`. Readers registered later are asked first.
    """
    if not callable(open_fn):
        raise ConversionError(f"open_fn must be callable, got {open_fn!r}", field="open_fn")
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    ends = tuple(str(s).lower() for s in suffixes)
    if not ends and sniff is None:
        raise ConversionError(f"the archive reader {name!r} claims nothing: give suffixes "
                              "or sniff", field="suffixes")
    spec = ArchiveReader(name, open_fn, ends, sniff, summary)
    ARCHIVE_READERS.register(name, spec, replace=replace)
    return spec


def find_reader(path: Path) -> ArchiveReader | None:
    """The reader that opens ``path`` (an existing file or folder), or ``None``."""
    for _, reader in reversed(ARCHIVE_READERS.items(skip_broken=True)):
        if reader.claims(path):
            return reader
    return None


def open_with(reader: ArchiveReader, path: Path, *, series: int = 0) -> Source:
    """``reader.open(path, series=series)``, checked to be a :class:`Source`."""
    src = reader.open(path, series=series)
    if not isinstance(src, Source):
        raise ConversionError(f"the archive reader {reader.name!r} returned a "
                              f"{type(src).__name__}, not a voxzarr.convert.source.Source",
                              path=path)
    return src


def unknown_format(path: Path) -> ConversionError:
    """The error for a path no reader claims: what each registered reader reads."""
    what = "; ".join(f"{name}: {r.summary}" if r.summary else name
                     for name, r in ARCHIVE_READERS.items(skip_broken=True))
    return ConversionError(f"cannot tell the format of {path.name!r}; the archive readers "
                           f"registered are {what}", path=path)


# ----------------------------------------------------------------------------- built-ins
def _open_tiff_frames(path: Path, *, series: int = 0) -> Source:
    return read_frames(frame_files(path), where=str(path))


def _open_tiff(path: Path, *, series: int = 0) -> Source:
    return read_tiff(path, series=series)


def _open_raw(path: Path, *, series: int = 0) -> Source:
    if not is_frames_conf(read_conf(path)):  # a conf.json that does not parse: its error
        raise ConversionError("conf.json has neither 'dims' (raw frames) nor 'nkeys'/"
                              "'nvalues' (Thunder series)", path=path / "conf.json")
    return read_raw_frames(path)


def _open_thunder(path: Path, *, series: int = 0) -> Source:
    return read_thunder_series(path)


def _has_conf(path: Path) -> bool:
    return path.is_dir() and (path / "conf.json").exists()


def _is_thunder(path: Path) -> bool:
    if not _has_conf(path):
        return False
    try:
        return is_series_conf(read_conf(path))
    except ConversionError:  # the raw reader reports a conf.json that does not parse
        return False


register_archive_reader("tiff-frames", _open_tiff_frames, sniff=Path.is_dir,
                        summary="folders of TIFF frames, one file per timepoint")
register_archive_reader("tiff", _open_tiff, suffixes=TIFF_SUFFIXES,
                        summary="TIFF, OME-TIFF and ImageJ files, ending in .tif, .tiff, "
                        ".ome.tif, .btf, .tf8 or .tf2")
register_archive_reader("raw", _open_raw, sniff=_has_conf,
                        summary="raw binary frames in a folder with a conf.json")
register_archive_reader("thunder", _open_thunder, sniff=_is_thunder,
                        summary="Thunder binary series folders, whose conf.json has nkeys")
