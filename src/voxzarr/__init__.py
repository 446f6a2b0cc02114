"""voxzarr: OME-Zarr microscopy images as xarray objects that know their physical geometry.

Importing voxzarr registers the ``.vox`` accessors on DataArray and DataTree and (through
the package entry point) the ``voxzarr`` xarray backend engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from . import accessor as _accessor  # noqa: F401  (registers .vox)
from .coords import Geometry
from .errors import (
    ChunkError,
    ConversionError,
    GeometryError,
    HaloError,
    MetadataError,
    OverwriteError,
    PyramidError,
    StaleHaloError,
    StoreError,
    UnitError,
    VoxzarrError,
)

# Imported eagerly, not lazily: the submodule `voxzarr.info` shares the function's name, and a
# later import of the submodule would rebind `vz.info` to the module.
from .info import info
from .io import from_array, open_image, open_multiscale, to_ome_zarr

__version__ = "0.1.0"

# Heavier capabilities load on first use, so `import voxzarr` stays fast.
_LAZY = {
    "validate": ("voxzarr.ngff.validate", "validate"),
    "convert": ("voxzarr.convert", "convert"),
    "upgrade": ("voxzarr.convert", "upgrade"),
    "open_halo": ("voxzarr.halo", "open_halo"),
    "open_series": ("voxzarr.series", "open_series"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'voxzarr' has no attribute {name!r}")


__all__ = [
    "ChunkError",
    "ConversionError",
    "Geometry",
    "GeometryError",
    "HaloError",
    "MetadataError",
    "OverwriteError",
    "PyramidError",
    "StaleHaloError",
    "StoreError",
    "UnitError",
    "VoxzarrError",
    "__version__",
    "convert",
    "from_array",
    "info",
    "open_halo",
    "open_image",
    "open_multiscale",
    "open_series",
    "to_ome_zarr",
    "upgrade",
    "validate",
]
