"""Exception hierarchy: every error voxzarr raises on bad input is a :class:`VoxzarrError`.

Each error can name the store path and the metadata field (or array, chunk, argument) at
fault, so a user sees *where* the problem is, not a traceback from deep inside a library.
Subclasses also derive from the matching builtin (``ValueError``, ``OSError``,
``FileExistsError``, ``ImportError``) so generic ``except`` clauses keep working. voxzarr
raises only these subclasses, never the bare base class (``tests/test_errors.py`` checks):

- a bad argument is an :class:`ArgumentError` (a ``ValueError``), or the more precise
  subclass where one applies (:class:`GeometryError`, :class:`UnitError`, :class:`HaloError`,
  :class:`PyramidError`, :class:`ConversionError`, ...); :class:`InvalidArgumentError` is
  its older name, kept for compatibility;
- :class:`InterpolationArgumentError` and :class:`ArgumentTypeError` are the interpolation
  arguments that :mod:`scipy.ndimage` rejects with ``RuntimeError`` / ``TypeError``
  (:mod:`voxzarr.ndinterp` raises them): they are invalid arguments too (:class:`ArgumentError`).
"""

from __future__ import annotations

__all__ = [
    "VoxzarrError",
    "ArgumentError",
    "InvalidArgumentError",
    "MetadataError",
    "GeometryError",
    "InterpolationArgumentError",
    "ArgumentTypeError",
    "UnitError",
    "StoreError",
    "ChunkError",
    "OverwriteError",
    "ConversionError",
    "HaloError",
    "StaleHaloError",
    "PyramidError",
    "DependencyError",
]


class VoxzarrError(Exception):
    """Base class of all voxzarr errors.

    Parameters
    ----------
    message
        What is wrong and, where it helps, what was expected.
    path
        The store, group, array or file the problem is in.
    field
        The metadata field, argument or chunk at fault (``"multiscales[0].axes"``).
    """

    def __init__(self, message: str, *, path: object = None, field: str | None = None):
        self.message = message
        self.path = None if path is None else _plain_path(str(path))
        self.field = field
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.field is not None:
            where.append(self.field)
        return f"{': '.join(where)}: {self.message}" if where else self.message


def _plain_path(path: str) -> str:
    """A local store's ``file://`` URL (how zarr names a local store) as the plain path the
    user gave, so every error names a local dataset the same way."""
    if path.startswith("file://"):
        path = path[len("file://"):]
        return path.rstrip("/") or "/"
    return path


class ArgumentError(VoxzarrError, ValueError):
    """An argument of a voxzarr function, method or command is invalid: a value out of range,
    of the wrong kind, or not fitting the image it is used with. ``field`` names it."""


#: The older name of :class:`ArgumentError`, the same class, kept for compatibility: raising
#: either and catching either are interchangeable.
InvalidArgumentError = ArgumentError


class MetadataError(VoxzarrError, ValueError):
    """NGFF or voxzarr metadata is missing, malformed or contradicts itself."""


class GeometryError(VoxzarrError, ValueError):
    """Coordinates, voxel sizes or transforms are invalid (non-uniform, zero, NaN, ...)."""


class InterpolationArgumentError(ArgumentError, GeometryError, RuntimeError):
    """An interpolation argument that :mod:`scipy.ndimage` rejects with ``RuntimeError``.

    Spline order, boundary mode, matrix, offset or coordinate shapes, array ranks. It is
    also an :class:`ArgumentError` and a :class:`GeometryError` (so a ``ValueError``),
    so both scipy-style ``except RuntimeError`` and voxzarr-style handlers catch it.
    """


class ArgumentTypeError(ArgumentError, GeometryError, TypeError):
    """An interpolation argument of a type :mod:`scipy.ndimage` rejects with ``TypeError``
    (complex coordinates); also an :class:`ArgumentError` and a :class:`GeometryError`."""


class UnitError(VoxzarrError, ValueError):
    """A unit name that is not a known UDUNITS space or time unit."""


class StoreError(VoxzarrError, OSError):
    """A store, group or array cannot be opened or is missing."""


class ChunkError(VoxzarrError, OSError):
    """A stored chunk cannot be read or decoded."""


class OverwriteError(VoxzarrError, FileExistsError):
    """A write would replace existing data and ``overwrite=True`` was not given."""


class ConversionError(VoxzarrError, ValueError):
    """An input archive (TIFF, frame folder, raw binary) cannot be converted as described."""


class HaloError(VoxzarrError, ValueError):
    """A halo layout is inconsistent or too shallow for the requested computation."""


class StaleHaloError(HaloError):
    """A halo array's generation does not match the canonical image it was built from."""


class PyramidError(VoxzarrError, ValueError):
    """A pyramid cannot be built as asked (bad factors, levels, method, dtype or device)."""


class DependencyError(VoxzarrError, ImportError):
    """An optional package (or device) that the call needs is not installed or not present."""
