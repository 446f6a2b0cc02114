"""Registries: named implementations, found by name instead of imported or chosen by if-chains.

Like zarr-python's ``zarr.registry``. A :class:`Registry` maps names to implementations, each
an object, a lazy ``"module:attribute"`` reference imported on first use, or an entry point
of another installed package. Entry points are discovered on the registry's first lookup
(never at ``import voxzarr``) and each is loaded only when its name is used.

Two jobs:

- **Layer wiring.** Imports in voxzarr only go down (``spec/architecture.md``). Where a lower
  layer must still call into a higher one, the higher one is found by name here: the package
  facade (``voxzarr/__init__.py``) registers it as a lazy reference, so the wiring costs no
  import at start-up and the lower layer never names the higher one.
- **Plug-in points**, open to other packages through entry-point groups.

Registered today:

- :data:`HALO_DEPTH_RULES` ``"filter"``: turns the ``for_filter=`` spec of
  :func:`voxzarr.halo.write_halo` into a depth rule (:func:`voxzarr.filters.halo_depth_rule`);
  halo storage itself knows voxel depths only.
- :data:`LEVEL_STREAMS` ``"pyramid"``: the level stream that
  ``voxzarr.io.to_ome_zarr(pyramid=...)`` writes (:func:`voxzarr.pyramid.stream_levels`, a
  ``voxzarr._write.LevelStreamFactory``); io is below the pyramid layer.
- :data:`PYRAMID_METHODS`: pyramid block reductions (:func:`register_pyramid_method`,
  entry-point group ``voxzarr.pyramid_methods``). The built-in methods are registered here
  with lazy references to their kernels in :mod:`voxzarr._downsample`, so the names (for the
  command line) are known without importing numpy.
- Archive readers live in :mod:`voxzarr.convert.readers` (group ``voxzarr.archive_readers``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any

from .errors import ArgumentError, DependencyError, PyramidError, VoxzarrError

__all__ = [
    "HALO_DEPTH_RULES",
    "LEVEL_STREAMS",
    "PYRAMID_METHODS",
    "PYRAMID_METHOD_ALIASES",
    "NamesView",
    "PyramidMethod",
    "Registry",
    "import_reference",
    "register_pyramid_method",
]


def import_reference(ref: str) -> Any:
    """The object a ``"module:attribute"`` reference names (``attribute`` may be dotted)."""
    module, _, attr = ref.partition(":")
    obj: Any = import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


class Registry:
    """Named implementations: objects, lazy ``"module:attribute"`` references or entry points.

    Names keep their registration order (built-ins first); entry points of ``group`` join on
    the first lookup, after the names registered until then.

    Parameters
    ----------
    what
        What the entries are, for messages (``"pyramid method"``).
    group
        Entry-point group other packages register in (``None``: none).
    adapt
        ``adapt(name, obj)`` turns an object imported from a reference or an entry point
        into the registry's entry (e.g. a bare kernel into a method spec).
    error
        Exception class for unknown and duplicate names.
    field
        Argument the name was given as, for ``error``.
    """

    def __init__(self, what: str, *, group: str | None = None,
                 adapt: Callable[[str, Any], Any] | None = None,
                 error: type[VoxzarrError] = ArgumentError,
                 field: str = "name") -> None:
        self.what = what
        self.group = group
        self.error = error
        self.field = field
        self._adapt = adapt
        self._entries: dict[str, Any] = {}
        self._discovered = group is None

    # ------------------------------------------------------------------ registering
    def register(self, name: str, target: Any, *, replace: bool = False) -> None:
        """Register ``target`` (an object, or ``"module:attribute"`` to import on first use).

        A name registered already is refused unless ``replace``; a replaced entry keeps its
        place in the order.
        """
        if not isinstance(name, str) or not name:
            raise self.error(f"a {self.what} name must be a non-empty string, got {name!r}",
                             field="name")
        if name in self._entries and not replace:
            raise self.error(f"a {self.what} named {name!r} is registered already "
                             "(pass replace=True to replace it)", field="name")
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        """Remove ``name`` (unknown names are an error)."""
        self._discover()
        if name not in self._entries:
            raise self._unknown(name)
        del self._entries[name]

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported now if it was a reference)."""
        self._discover()
        try:
            target = self._entries[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None
        if isinstance(target, str) or _is_entry_point(target):
            target = self._load(name, target)
            self._entries[name] = target
        return target

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order (loads no entry point)."""
        self._discover()
        return tuple(self._entries)

    def items(self, *, skip_broken: bool = False) -> list[tuple[str, Any]]:
        """``(name, implementation)`` pairs in registration order, every entry loaded.

        With ``skip_broken``, an entry point that fails to load is left out with a warning
        (so one broken plug-in does not break the others); it fails again when used by name.
        """
        out = []
        for name in self.names():
            try:
                out.append((name, self.get(name)))
            except DependencyError as err:
                if not skip_broken:
                    raise
                warnings.warn(f"{err}; left out", RuntimeWarning, stacklevel=2)
        return out

    def view(self, where: Callable[[Any], bool] | None = None,
             extra: Iterable[str] = ()) -> NamesView:
        """A live, read-only sequence of the names (those whose entry passes ``where``)."""
        return NamesView(self, where, tuple(extra))

    # ------------------------------------------------------------------ internals
    def _unknown(self, name: object) -> VoxzarrError:
        return self.error(f"no {self.what} registered as {name!r}; registered: "
                          f"{', '.join(self.names())}", field=self.field)

    def _load(self, name: str, target: Any) -> Any:
        if isinstance(target, str):
            obj = import_reference(target)
        else:
            try:
                obj = target.load()
            except Exception as err:
                raise DependencyError(f"the {self.what} {name!r} (entry point {target.value!r} "
                                      f"of group {self.group!r}) failed to load: {err!r}",
                                      field=self.field) from err
        return self._adapt(name, obj) if self._adapt is not None else obj

    def _discover(self) -> None:
        """Add the entry points of :attr:`group`, once, on the first lookup."""
        if self._discovered:
            return
        self._discovered = True
        from importlib import metadata  # costs tens of ms: only when a lookup needs it

        for ep in metadata.entry_points(group=self.group):
            known = self._entries.get(ep.name)
            if known is None:
                self._entries[ep.name] = ep
            elif not (_is_entry_point(known) and known.value == ep.value):
                warnings.warn(f"entry point {ep.name} = {ep.value} of group {self.group!r} "
                              f"names a {self.what} registered already; ignored",
                              RuntimeWarning, stacklevel=3)


def _is_entry_point(obj: Any) -> bool:
    return type(obj).__name__ == "EntryPoint" and hasattr(obj, "load")


class NamesView(Sequence[str]):
    """Live, read-only names of a :class:`Registry` (reflects later registrations).

    Compares equal to the tuple of its names and prints like it.
    """

    def __init__(self, registry: Registry, where: Callable[[Any], bool] | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self._registry = registry
        self._where = where
        self._extra = extra

    def _names(self) -> tuple[str, ...]:
        reg = self._registry
        names = reg.names() if self._where is None else tuple(
            n for n, entry in reg.items(skip_broken=True) if self._where(entry))
        return names + tuple(e for e in self._extra if e not in names)

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NamesView):
            other = other._names()
        return isinstance(other, tuple) and self._names() == other

    __hash__ = None  # type: ignore[assignment]  # live contents: not hashable

    def __repr__(self) -> str:
        return repr(self._names())


#: ``name -> callable(spec) -> depth rule``; a depth rule maps ``(dims, voxel_size)`` of one
#: level to ``(depth per dim, boundary mode or None)`` (see :mod:`voxzarr.halo.store`)
HALO_DEPTH_RULES = Registry("halo depth rule")

#: ``name -> factory(obj, group_location, *, chunks, shards, label, **options) -> LevelStream``
#: (``voxzarr._write.LevelStreamFactory``): the levels a writer makes of one image
LEVEL_STREAMS = Registry("level stream")


# ----------------------------------------------------------------------------- pyramid methods
@dataclass(frozen=True)
class PyramidMethod:
    """A registered pyramid block reduction.

    Attributes
    ----------
    name
        What ``method=`` calls it.
    kernel
        ``kernel(block, factors, xp) -> reduced``, or a ``"module:attribute"`` reference to
        it. ``block`` is a numpy or CuPy array whose first voxel lies at a multiple of the
        integer ``factors`` (one per axis) and ``xp`` its array module. Output voxel ``j``
        along an axis summarises input voxels ``[j*k, (j+1)*k)``; the last block of an axis
        may be partial and is reduced over the voxels present, so the result has
        ``ceil(n / k)`` voxels per axis, and the input's dtype. The result of a voxel must
        depend on its own block only: levels are computed chunk by chunk.
    labels
        The method outputs only values present in its input, so label images may use it
        (and bool images, which cannot be averaged).
    summary
        One line for listings.
    """

    name: str
    kernel: Callable[..., Any] | str = field(repr=False)
    labels: bool = False
    summary: str = ""

    def load(self) -> Callable[..., Any]:
        """The kernel function (imported now if :attr:`kernel` is a reference)."""
        kernel = self.kernel
        return import_reference(kernel) if isinstance(kernel, str) else kernel


def _as_method(name: str, obj: Any) -> PyramidMethod:
    """An entry point's object as a method: a :class:`PyramidMethod`, or a bare kernel."""
    if isinstance(obj, PyramidMethod):
        return obj if obj.name == name else replace(obj, name=name)
    if callable(obj):
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        return PyramidMethod(name, obj, summary=doc[0] if doc else "")
    raise PyramidError(f"the pyramid method {name!r} is a {type(obj).__name__}, not a "
                       "kernel function or a PyramidMethod", field="method")


#: pyramid methods by name, in the order the docs list them (built-ins first); other packages
#: add theirs through the entry-point group ``voxzarr.pyramid_methods``
PYRAMID_METHODS = Registry("pyramid method", group="voxzarr.pyramid_methods",
                           adapt=_as_method, error=PyramidError, field="method")
#: other accepted spellings of built-in methods
PYRAMID_METHOD_ALIASES: dict[str, str] = {"stride": "nearest"}


def register_pyramid_method(name: str, kernel: Callable[..., Any] | str, *,
                            labels: bool = False, summary: str = "",
                            replace: bool = False) -> PyramidMethod:
    """Add a pyramid block reduction: ``img.vox.pyramid(method=name)`` and the rest use it.

    Parameters
    ----------
    name
        The ``method=`` name; a name registered already is refused unless ``replace``.
    kernel
        ``kernel(block, factors, xp) -> reduced`` (see :class:`PyramidMethod`), written once
        for numpy and CuPy through ``xp``, or a lazy ``"module:attribute"`` reference to it.
    labels
        ``True`` when the method outputs only values present in its input: label images
        (and bool images) may then be reduced with it.
    summary
        One line for listings.
    replace
        Replace a method registered under ``name``.

    Returns
    -------
    The registered :class:`PyramidMethod`.

    Notes
    -----
    Levels are placed as for every block method: voxel size ``K * s0`` and first-voxel
    centre at the centre of the first block (``spec/pyramid.md``). Other packages register
    methods without being imported, through an entry point in the group
    ``voxzarr.pyramid_methods`` naming a :class:`PyramidMethod` or a bare kernel (then
    ``labels=False``); it is loaded when its name is first used.
    """
    if not (callable(kernel) or (isinstance(kernel, str) and ":" in kernel)):
        raise PyramidError(f"kernel must be a function or a 'module:attribute' reference, got "
                           f"{kernel!r}", field="kernel")
    if name in PYRAMID_METHOD_ALIASES:
        raise PyramidError(f"{name!r} is another spelling of "
                           f"{PYRAMID_METHOD_ALIASES[name]!r}", field="name")
    spec = PyramidMethod(name, kernel, bool(labels), summary)
    PYRAMID_METHODS.register(name, spec, replace=replace)
    return spec


_DS = "voxzarr._downsample:"
register_pyramid_method("mean", _DS + "_mean", summary="block mean (integers exact, rounded "
                        "half to even)")
register_pyramid_method("gaussian", _DS + "_gaussian", summary="Gaussian pre-filter "
                        "(sigma (k - 1) / 2), then block mean")
register_pyramid_method("nearest", _DS + "_nearest", labels=True, summary="the block's centre "
                        "voxel (alias 'stride')")
register_pyramid_method("mode", _DS + "_mode", labels=True, summary="most frequent value "
                        "(ties: the smallest)")
register_pyramid_method("min", _DS + "_min", labels=True, summary="block minimum")
register_pyramid_method("max", _DS + "_max", labels=True, summary="block maximum")
register_pyramid_method("median", _DS + "_median", summary="block median (integers rounded "
                        "half to even)")
del _DS
