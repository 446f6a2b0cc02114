"""voxzarr: OME-Zarr microscopy images as xarray objects that know their physical geometry.

Importing voxzarr registers the ``.vox`` accessors on DataArray and DataTree and (through
the package entry point) the ``voxzarr`` xarray backend engine.

Start-up is kept short (``voxzarr --help`` and ``voxzarr info`` import neither xarray nor
dask): every public name below loads from its module on first use (module ``__getattr__``,
then cached here), and the accessors are registered as soon as xarray is imported, which is
at once when it already is (see :func:`_register_accessors_with_xarray`).
"""

# plumbing under private names, so dir(voxzarr) shows the API (hence no __future__ import)
import sys as _sys
from importlib import import_module as _import_module
from typing import Any as _Any

from . import _registry
from .errors import (
    ArgumentError,
    ChunkError,
    ConversionError,
    DependencyError,
    GeometryError,
    HaloError,
    InvalidArgumentError,
    MetadataError,
    OverwriteError,
    PyramidError,
    StaleHaloError,
    StoreError,
    UnitError,
    VoxzarrError,
)

__version__ = "0.1.0"

# Public name -> (module, attribute), imported on first use. Names that match a submodule
# (``convert``) are cached in globals() after the import, which wins over the submodule the
# import binds to the package. No submodule may be named ``info`` (that would rebind ``vz.info``
# to the module once imported; the report code is in ``voxzarr.inspect``).
_LAZY: dict[str, tuple[str, str]] = {
    "Geometry": ("voxzarr.coords", "Geometry"),
    "from_array": ("voxzarr.io", "from_array"),
    "open_image": ("voxzarr.io", "open_image"),
    "open_multiscale": ("voxzarr.io", "open_multiscale"),
    "to_ome_zarr": ("voxzarr.io", "to_ome_zarr"),
    "info": ("voxzarr.inspect", "info"),
    "format_info": ("voxzarr.inspect", "format_info"),
    "validate": ("voxzarr.ngff.validate", "validate"),
    "convert": ("voxzarr.convert", "convert"),
    "upgrade": ("voxzarr.convert", "upgrade"),
    "open_halo": ("voxzarr.halo", "open_halo"),
    "open_series": ("voxzarr.series", "open_series"),
    # plug-in points (registries, see voxzarr._registry); also voxzarr.pyramid / .convert
    "register_pyramid_method": ("voxzarr._registry", "register_pyramid_method"),
    "register_archive_reader": ("voxzarr.convert.readers", "register_archive_reader"),
}


# Layer wiring: where a lower layer must call an implementation above it, it finds it in a
# registry (voxzarr._registry) that the package fills here, lazily, so imports only go down.
# Halo storage knows voxel depths only; the filter layer turns `for_filter=` into depths.
_registry.HALO_DEPTH_RULES.register("filter", "voxzarr.filters:halo_depth_rule", replace=True)
# io writes pyramids (`to_ome_zarr(pyramid=...)`) with the level stream of the pyramid layer.
_registry.LEVEL_STREAMS.register("pyramid", "voxzarr.pyramid:stream_levels", replace=True)


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(_import_module(module), attr)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'voxzarr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# --------------------------------------------------------------------------- accessors
# A meta-path finder and loader by duck typing: subclassing importlib.abc's would import
# importlib.resources and cost more start-up than all the rest of `import voxzarr`.
class _AccessorsOnXarrayImport:
    """Import :mod:`voxzarr.accessor` right after ``xarray`` is imported, then step aside.

    Sits first on ``sys.meta_path`` until the import system looks for ``xarray``. It then
    removes itself, lets the other finders find xarray as usual and returns their spec with
    the loader wrapped in :class:`_AccessorsAfterExec`, so xarray's module runs unchanged
    and the accessors register once it has run. It never finds any other module.
    """

    def find_spec(self, fullname: str, path: _Any = None, target: _Any = None) -> _Any:
        if fullname != "xarray":
            return None
        _remove_hook()
        from importlib.util import find_spec

        spec = find_spec("xarray")  # the usual finders (this one is gone)
        if spec is not None and spec.loader is not None:
            spec.loader = _AccessorsAfterExec(spec.loader)
        return spec


class _AccessorsAfterExec:
    """xarray's own loader, plus importing :mod:`voxzarr.accessor` after xarray has run.

    Everything but ``exec_module`` is the wrapped loader's (it stays ``xarray.__loader__``).
    """

    def __init__(self, loader: _Any) -> None:
        self._loader = loader

    def create_module(self, spec: _Any) -> _Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: _Any) -> None:
        self._loader.exec_module(module)  # xarray itself, complete after this line
        try:
            _import_module("voxzarr.accessor")  # registers .vox (xarray is in sys.modules)
        except Exception as err:  # never fail `import xarray` on voxzarr's account
            import warnings

            warnings.warn(f"voxzarr: could not register the .vox accessors: {err!r}",
                          RuntimeWarning, stacklevel=2)

    def __getattr__(self, name: str) -> _Any:  # get_code, get_filename, resources, ...
        return getattr(self._loader, name)


def _remove_hook() -> None:
    _sys.meta_path[:] = [f for f in _sys.meta_path
                         if not isinstance(f, _AccessorsOnXarrayImport)]


def _register_accessors_with_xarray() -> None:
    """Register the ``.vox`` accessors now if xarray is imported, else when it is."""
    if "xarray" in _sys.modules:
        _import_module("voxzarr.accessor")
    elif not any(isinstance(f, _AccessorsOnXarrayImport) for f in _sys.meta_path):
        _sys.meta_path.insert(0, _AccessorsOnXarrayImport())


_register_accessors_with_xarray()

__all__ = [
    "ArgumentError",
    "ChunkError",
    "ConversionError",
    "DependencyError",
    "Geometry",
    "GeometryError",
    "HaloError",
    "InvalidArgumentError",
    "MetadataError",
    "OverwriteError",
    "PyramidError",
    "StaleHaloError",
    "StoreError",
    "UnitError",
    "VoxzarrError",
    "__version__",
    "convert",
    "format_info",
    "from_array",
    "info",
    "open_halo",
    "open_image",
    "open_multiscale",
    "open_series",
    "register_archive_reader",
    "register_pyramid_method",
    "to_ome_zarr",
    "upgrade",
    "validate",
]
