"""Parse NGFF group attributes of any version into :mod:`voxzarr.ngff.model` objects.

The parser checks what it needs to build correct coordinates (vector lengths, finite positive
scales, known units, axis names) and raises :class:`~voxzarr.errors.MetadataError` naming the
store path and the JSON field. Full spec validation is :mod:`voxzarr.ngff.validate`.

Axes are kept in their stored order (the order of the array dimensions); any order of the names
``t, c, z, y, x`` is read, and :mod:`voxzarr.io` transposes to canonical order on open.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .._dims import AXIS_TYPES, DIM_ORDER  # not ..coords: parsing needs no xarray
from ..errors import MetadataError, UnitError
from ..units import normalize_unit
from .model import SUPPORTED_READ, Axis, Level, Multiscale

__all__ = ["ome_attrs", "ngff_version", "parse_multiscale", "layout_kind"]

_LEGACY_AXES = ("t", "c", "z", "y", "x")


def ome_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The OME metadata of a group: ``attrs["ome"]`` (0.5+) or the attributes themselves."""
    ome = attrs.get("ome")
    if isinstance(ome, Mapping):
        return dict(ome)
    return dict(attrs)


def ngff_version(attrs: Mapping[str, Any]) -> str | None:
    """The NGFF version declared by a group's attributes, or ``None`` when it has none."""
    ome = attrs.get("ome")
    if isinstance(ome, Mapping) and "version" in ome:
        return str(ome["version"])
    ms = attrs.get("multiscales")
    if isinstance(ms, list) and ms and isinstance(ms[0], Mapping) and "version" in ms[0]:
        return str(ms[0]["version"])
    for key in ("plate", "well"):
        block = attrs.get(key)
        if isinstance(block, Mapping) and "version" in block:
            return str(block["version"])
    return None


def layout_kind(attrs: Mapping[str, Any]) -> str | None:
    """What an OME group is: ``image``, ``bioformats2raw``, ``plate``, ``well``, ``labels``."""
    ome = ome_attrs(attrs)
    if "multiscales" in ome:
        return "image"
    if "plate" in ome:  # plates written by bioformats2raw carry both keys: the plate wins
        return "plate"
    if "bioformats2raw.layout" in ome:
        return "bioformats2raw"
    if "well" in ome:
        return "well"
    if "labels" in ome:
        return "labels"
    return None


def _fail(msg: str, path: object, fld: str) -> MetadataError:
    return MetadataError(msg, path=path, field=fld)


def _vector(value: Any, n: int, path: object, fld: str, *, positive: bool) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _fail(f"expected a list of {n} numbers, got {value!r}", path, fld)
    if len(value) != n:
        raise _fail(f"has {len(value)} values for {n} axes", path, fld)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail(f"expected numbers, got {v!r}", path, fld)
        f = float(v)
        if not math.isfinite(f):
            raise _fail(f"non-finite value {v!r}", path, fld)
        if positive and f <= 0:
            raise _fail(f"scale values must be > 0, got {v!r}", path, fld)
        out.append(f)
    return tuple(out)


def _parse_axes(raw: Any, path: object, fld: str) -> tuple[Axis, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("expected a non-empty list of axes", path, fld)
    axes = []
    for i, a in enumerate(raw):
        if isinstance(a, str):  # 0.3: plain names
            name, typ, unit = a, AXIS_TYPES.get(a), None
        elif isinstance(a, Mapping) and isinstance(a.get("name"), str):
            name, typ, unit = a["name"], a.get("type"), a.get("unit")
        else:
            raise _fail(f"axis {i} must be an object with a 'name', got {a!r}", path, f"{fld}[{i}]")
        if name not in DIM_ORDER:
            kind = f" of type {typ!r}" if typ is not None else ""
            raise _fail(
                f"found axis {name!r}{kind}; expected axis names from t, c, z, y, x (time, "
                "channel, space): voxzarr maps only those to image dimensions",
                path,
                f"{fld}[{i}].name",
            )
        if typ is not None and typ != AXIS_TYPES[name]:
            raise _fail(f"axis {name!r} has type {typ!r}, expected {AXIS_TYPES[name]!r}",
                        path, f"{fld}[{i}].type")
        try:
            unit = normalize_unit(unit, path=path, field=f"{fld}[{i}].unit")
        except UnitError as err:
            # NGFF only says units SHOULD be UDUNITS names (validate warns): read the data
            # without that unit rather than refuse a valid store, and say so
            where = f"{path}: " if path is not None else ""
            warnings.warn(f"{where}{err.field}: {err.message}; read without a unit",
                          UserWarning, stacklevel=2)
            unit = None
        axes.append(Axis(name, typ or AXIS_TYPES[name], unit))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise _fail(f"repeated axis names {names}", path, fld)
    # any order is read: the names say which array dimension is which. NGFF's ordering rules
    # (time, channel, then space; z, y, x only a SHOULD) are voxzarr.validate's to report
    return tuple(axes)


def _compose(
    transforms: Any, n: int, path: object, fld: str
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Compose a transform list into (scale, translation); either may be ``None``."""
    if transforms is None:
        return None, None
    if not isinstance(transforms, list):
        raise _fail("coordinateTransformations must be a list", path, fld)
    scale: tuple[float, ...] | None = None
    trans: tuple[float, ...] | None = None
    for i, t in enumerate(transforms):
        f = f"{fld}[{i}]"
        if not isinstance(t, Mapping) or "type" not in t:
            raise _fail("each transform needs a 'type'", path, f)
        kind = t["type"]
        if kind == "sequence":
            s2, t2 = _compose(t.get("transformations"), n, path, f"{f}.transformations")
            scale, trans = _chain(scale, trans, s2, t2)
        elif kind == "identity":
            continue
        elif kind == "scale":
            if "scale" not in t:
                raise _fail("scale transform given by 'path' is not supported", path, f)
            s = _vector(t["scale"], n, path, f"{f}.scale", positive=True)
            scale, trans = _chain(scale, trans, s, None)
        elif kind == "translation":
            if "translation" not in t:
                raise _fail("translation given by 'path' is not supported", path, f)
            tr = _vector(t["translation"], n, path, f"{f}.translation", positive=False)
            scale, trans = _chain(scale, trans, None, tr)
        else:
            raise _fail(f"transform type {kind!r} is not supported for images "
                        "(scale, translation, sequence, identity are)", path, f)
    return scale, trans


def _chain(s1, t1, s2, t2):
    """Apply (s1, t1) then (s2, t2): x -> (x * s1 + t1) * s2 + t2."""
    if s2 is not None:
        s1 = s2 if s1 is None else tuple(a * b for a, b in zip(s1, s2, strict=True))
        if t1 is not None:
            t1 = tuple(a * b for a, b in zip(t1, s2, strict=True))
    if t2 is not None:
        t1 = t2 if t1 is None else tuple(a + b for a, b in zip(t1, t2, strict=True))
    return s1, t1


def _ref_name(ref: Any) -> str | None:
    """``"name"`` or ``{"name": ...}`` of a 0.6 transformation's input / output."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
        return ref["name"]
    return None


def _axes_06(ms: Mapping[str, Any], path: object, fld: str
             ) -> tuple[tuple[Axis, ...], Any]:
    """Axes of a 0.6 image in array order, and how to reach them from the array.

    The datasets map array indices to the *intrinsic* coordinate system (their transforms'
    output). voxzarr's coordinates are that system when its axes are image dimensions
    (t, c, z, y, x). Otherwise (e.g. ``dim_0, dim_1``) one multiscale-level transformation
    from it to a named system is followed: ``mapAxis`` / ``identity`` (a permutation: the
    array's axis ``k`` is the output axis ``i`` with ``mapAxis[i] == k``) or ``scale`` /
    ``translation`` / ``sequence`` of them. Returns ``(axes, onward)``: the axes in array
    order and the scale/translation transform to compose after each level's (or ``None``).
    """
    systems = ms.get("coordinateSystems")
    sfld = f"{fld}.coordinateSystems"
    if not isinstance(systems, list) or not systems:
        raise _fail("0.6 images need 'coordinateSystems'", path, sfld)
    by_name = {cs.get("name"): (i, cs) for i, cs in enumerate(systems)
               if isinstance(cs, Mapping)}
    datasets = ms.get("datasets")
    intrinsic = None
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], Mapping):
        cts = datasets[0].get("coordinateTransformations")
        if isinstance(cts, list) and cts and isinstance(cts[-1], Mapping):
            intrinsic = _ref_name(cts[-1].get("output"))
    if intrinsic not in by_name:  # no output named: the first system, as before 0.6rc0
        intrinsic = next(iter(by_name), None)
    if intrinsic is None:
        raise _fail("expected coordinate systems with names", path, sfld)
    k, cs = by_name[intrinsic]
    raw_axes = cs.get("axes")
    names = [a.get("name") for a in raw_axes if isinstance(a, Mapping)] \
        if isinstance(raw_axes, list) else []
    if names and all(nm in DIM_ORDER for nm in names):
        return _parse_axes(raw_axes, path, f"{sfld}[{k}].axes"), None
    tfld = f"{fld}.coordinateTransformations"
    for j, t in enumerate(ms.get("coordinateTransformations") or []):
        if not isinstance(t, Mapping) or _ref_name(t.get("input")) != intrinsic:
            continue
        out = _ref_name(t.get("output"))
        if out not in by_name:
            continue
        ko, target = by_name[out]
        axes = _parse_axes(target.get("axes"), path, f"{sfld}[{ko}].axes")
        n = len(axes)
        kind = t.get("type")
        if kind == "mapAxis":
            order = t.get("mapAxis")
            if not (isinstance(order, list) and sorted(order) == list(range(n))):
                raise _fail(f"expected a permutation of 0..{n - 1}, found {order!r}", path,
                            f"{tfld}[{j}].mapAxis")
            # array axis k carries output axis i where order[i] == k
            # (level vectors are in array order, as these axes are)
            return tuple(axes[order.index(a)] for a in range(n)), None
        if kind == "identity":
            return axes, None
        if kind in ("scale", "translation", "sequence"):
            return axes, t
        raise _fail(f"found a {kind!r} transformation from the array's coordinate system "
                    f"{intrinsic!r} (axes {names}) to {out!r}: voxzarr reads images whose "
                    "physical axes are reached by scale, translation, identity or mapAxis; "
                    "this version is unsupported for reading", path, f"{tfld}[{j}].type")
    raise _fail(f"expected axes named from t, c, z, y, x in the datasets' coordinate system "
                f"{intrinsic!r}, or a transformation from it to such a system; found axes "
                f"{names} and none", path, f"{sfld}[{k}].axes")


def _check_order_04(transforms: Any, path: object, fld: str) -> None:
    """0.4/0.5: exactly one scale, then at most one translation."""
    kinds = [t.get("type") for t in transforms if isinstance(t, Mapping)]
    if not kinds or kinds[0] != "scale" or kinds[1:] not in ([], ["translation"]):
        raise _fail(f"must be [scale] or [scale, translation], got {kinds}", path, fld)


def parse_multiscale(
    attrs: Mapping[str, Any],
    *,
    path: object = None,
    index: int = 0,
    shapes: Sequence[Sequence[int]] | None = None,
) -> Multiscale:
    """Parse ``multiscales[index]`` of a group's attributes (any version).

    ``shapes`` (level array shapes) is needed only for 0.1-0.3 data, which stores no scale:
    there the per-level scale is the level-0 shape over the level's shape.
    """
    ome = ome_attrs(attrs)
    ms_list = ome.get("multiscales")
    if not isinstance(ms_list, list) or not ms_list:
        raise _fail("no 'multiscales' list: not an NGFF image group", path, "multiscales")
    if not -len(ms_list) <= index < len(ms_list):
        raise _fail(f"has {len(ms_list)} entries, asked for {index}", path, "multiscales")
    ms = ms_list[index]
    fld = f"multiscales[{index}]"
    if not isinstance(ms, Mapping):
        raise _fail("must be an object", path, fld)
    version = str(ome.get("version") or ms.get("version") or "0.4")
    if version not in SUPPORTED_READ:
        raise _fail(f"NGFF version {version!r} is not supported (reads {SUPPORTED_READ})",
                    path, "version")
    legacy = version in ("0.1", "0.2", "0.3")
    v06 = version.startswith("0.6")
    if v06 and not isinstance(attrs.get("ome"), Mapping):
        # as validate says: 0.6 readers look under "ome" only, so this is not an image
        raise _fail(f"is missing: expected the NGFF {version} metadata under 'ome', found it "
                    "at the top level", path, "ome")

    onward: Any = None
    if v06:
        axes, onward = _axes_06(ms, path, fld)
    elif "axes" in ms:
        axes = _parse_axes(ms["axes"], path, f"{fld}.axes")
    elif legacy:
        axes = tuple(Axis(a, AXIS_TYPES[a], None) for a in _LEGACY_AXES)
    else:
        raise _fail("missing 'axes'", path, f"{fld}.axes")
    n = len(axes)

    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise _fail("expected a non-empty list of datasets", path, f"{fld}.datasets")
    g_scale, g_trans = (None, None)
    if "coordinateTransformations" in ms and not v06:
        gct = ms["coordinateTransformations"]
        g_scale, g_trans = _compose(gct, n, path, f"{fld}.coordinateTransformations")
    if onward is not None:  # 0.6: intrinsic -> named system by scale / translation
        g_scale, g_trans = _compose([onward], n, path, f"{fld}.coordinateTransformations")

    levels = []
    for i, d in enumerate(datasets):
        dfld = f"{fld}.datasets[{i}]"
        if not isinstance(d, Mapping) or not isinstance(d.get("path"), str):
            raise _fail("each dataset needs a 'path' string", path, dfld)
        cts = d.get("coordinateTransformations")
        if cts is None and not legacy:
            raise _fail("missing 'coordinateTransformations'", path,
                        f"{dfld}.coordinateTransformations")
        if cts is not None and not v06:
            _check_order_04(cts, path, f"{dfld}.coordinateTransformations")
        scale, trans = _compose(cts, n, path, f"{dfld}.coordinateTransformations")
        if scale is None:
            if shapes is not None and i < len(shapes):
                scale = tuple(
                    1.0 if a.name in ("c", "t") else shapes[0][k] / shapes[i][k]
                    for k, a in enumerate(axes)
                )
            else:
                scale = (1.0,) * n
            if trans is None:  # legacy pyramids: pixel centres of a k-fold downsampling
                trans = tuple(0.0 if a.name in ("c", "t") else (s - 1) / 2
                              for a, s in zip(axes, scale, strict=True))
        trans = trans or (0.0,) * n
        scale, trans = _chain(scale, trans, g_scale, g_trans)
        levels.append(Level(d["path"], tuple(scale), tuple(trans)))

    omero = ome.get("omero") if isinstance(ome.get("omero"), Mapping) else None
    channel_names = None
    if omero and isinstance(omero.get("channels"), list):
        labels = [str(ch.get("label", i)) if isinstance(ch, Mapping) else str(i)
                  for i, ch in enumerate(omero["channels"])]
        channel_names = tuple(labels)
    image_label = ome.get("image-label") if isinstance(ome.get("image-label"), Mapping) else None
    return Multiscale(
        version=version,
        axes=axes,
        levels=tuple(levels),
        name=ms.get("name"),
        type=ms.get("type"),
        metadata=dict(ms["metadata"]) if isinstance(ms.get("metadata"), Mapping) else None,
        channel_names=channel_names,
        omero=dict(omero) if omero else None,
        image_label=dict(image_label) if image_label else None,
    )
