"""voxzarr's own checks of image metadata: ``multiscales``, ``omero`` and ``image-label``.

These cover what the official JSON schemas express (so a verdict never depends on
ome-zarr-models alone) plus the specification's rules the schemas cannot express: transform
order and vector lengths, axis order and counts, finite positive scales, resolution order,
unique paths and label values, units. Field names are JSON paths from the group attributes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .._dims import AXIS_TYPES
from ..errors import UnitError
from ..units import SPACE_UNITS, TIME_UNITS, normalize_unit
from ._checks_base import MISSING, Collector, found, join, json_type

__all__ = ["check_multiscales", "check_omero", "check_image_label", "AxisInfo"]

_AXIS_RANK = {"time": 0, "channel": 1, "space": 2, "array": 2}
_AXIS_TYPES = ("space", "time", "channel")
#: the axis types NGFF 0.6rc0 names (its strict axes schema's list)
_AXIS_TYPES_06 = ("array", "channel", "time", "space", "displacement", "coordinate",
                  "frequency")
_HEX = re.compile(r"[0-9A-Fa-f]{6}")


class AxisInfo:
    """What later checks (arrays, labels) need from a parsed ``multiscales`` entry."""

    def __init__(self, names: list[str], scales: list[list[float] | None],
                 paths: list[str | None]):
        self.names = names
        self.scales = scales
        self.paths = paths


def check_multiscales(c: Collector, blk: Mapping[str, Any], base: str, *,
                      version: str) -> list[AxisInfo]:
    """Check ``blk["multiscales"]``; ``base`` is ``"ome"`` for 0.5 and ``""`` for 0.4."""
    fld = join(base, "multiscales")
    entries = c.array(c.get(blk, "multiscales", base, required=True), fld, min_items=1,
                     unique=True)
    infos: list[AxisInfo] = []
    for i, ms in enumerate(entries or []):
        mf = join(fld, i)
        ms = c.mapping(ms, mf)
        if ms is None:
            continue
        infos.append(_check_one(c, ms, mf, version=version))
    return infos


def _check_one(c: Collector, ms: Mapping[str, Any], mf: str, *, version: str) -> AxisInfo:
    if version == "0.4":
        v = c.get(ms, "version", mf, required=False)
        if v is MISSING:
            c.add("recommended-field", join(mf, "version"), "is missing; expected '0.4' "
                  "(SHOULD)")
        else:
            c.string(v, join(mf, "version"), enum=("0.4",))
    c.string(c.get(ms, "name", mf, required=False), join(mf, "name"))
    for key in ("name", "type", "metadata"):
        if key not in ms:
            c.add("recommended-field", join(mf, key), "is missing; expected it (SHOULD; the "
                  "strict schema requires it)")

    names, _types = _check_axes(c, c.get(ms, "axes", mf, required=True), join(mf, "axes"))
    n = len(names) if names else None

    datasets = c.array(c.get(ms, "datasets", mf, required=True), join(mf, "datasets"),
                      min_items=1)
    scales: list[list[float] | None] = []
    paths: list[str | None] = []  # one per dataset (None where unusable), index-aligned
    for j, ds in enumerate(datasets or []):
        df = join(join(mf, "datasets"), j)
        ds = c.mapping(ds, df)
        if ds is None:
            scales.append(None)
            paths.append(None)
            continue
        p = c.string(c.get(ds, "path", df, required=True), join(df, "path"))
        if p is not None and p in paths:
            c.add("dataset-paths", join(df, "path"), f"expected a path of its own for each "
                  f"level, found {p!r}, which an earlier dataset uses")
        paths.append(p)
        cts = c.get(ds, "coordinateTransformations", df, required=True)
        scales.append(check_transforms(c, cts, join(df, "coordinateTransformations"), n))
    if "coordinateTransformations" in ms:
        check_transforms(c, ms["coordinateTransformations"], join(mf, "coordinateTransformations"),
                         n)
    _check_level_order(c, scales, join(mf, "datasets"), names)
    return AxisInfo(names or [], scales, paths)


def _check_axes(c: Collector, raw: Any, fld: str, *, version: str = "0.5",
                multiscale: bool = True) -> tuple[list[str] | None, list[Any]]:
    """Check an ``axes`` list; return (names or ``None`` when unusable, types).

    0.6 coordinate systems outside a multiscale only need what the axes schema asks (1-5
    axes; 2-3 of type space or 2+ of type array); the order and count rules hold for the
    coordinate systems of images.
    """
    v06 = version.startswith("0.6")
    axes = c.array(raw, fld, min_items=1 if v06 else 2, max_items=5, unique=True)
    if axes is not None and v06 and multiscale and len(axes) < 2:
        c.add("axes-count", fld, f"expected 2 to 5 axes for an image, found {len(axes)}")
    if axes is None:
        return None, []
    names: list[str] = []
    types: list[Any] = []
    ok = True
    for k, ax in enumerate(axes):
        af = join(fld, k)
        ax = c.mapping(ax, af)
        if ax is None:
            ok = False
            continue
        name = c.string(c.get(ax, "name", af, required=True), join(af, "name"))
        typ = ax.get("type")
        if "type" in ax and not isinstance(typ, str):
            c.add("schema", join(af, "type"), f"expected a string, found {found(typ)}")
            typ = None
        known = _AXIS_TYPES_06 if v06 else _AXIS_TYPES
        if "type" not in ax:
            c.add("axis-type", join(af, "type"), f"is missing; expected one of {list(known)} "
                  "(SHOULD)")
        elif typ is not None and typ not in known:
            c.add("axis-type", join(af, "type"), f"expected one of {list(known)} (SHOULD; "
                  f"custom types are allowed), found {typ!r}")
        if v06:
            for key, kind, what in (("discrete", bool, "a boolean"),
                                    ("longName", str, "a string")):
                if key in ax and not isinstance(ax[key], kind):
                    c.add("schema", join(af, key), f"expected {what}, found {found(ax[key])}")
            if name == "":
                c.add("schema", join(af, "name"), "expected a non-empty string, found ''")
        if name is None:
            ok = False
        else:
            names.append(name)
        types.append(typ)
        _check_unit(c, ax, af, typ)
        if multiscale and not v06:  # 0.6: the "voxzarr-read" advice says what opens
            _advise_voxzarr_axis(c, name, typ, af)
    n_space = sum(t == "space" for t in types)
    n_array = sum(t == "array" for t in types)
    spatial, array_cs = 2 <= n_space <= 3, v06 and n_array >= 2
    if spatial and array_cs:  # the 0.6 axes schema's oneOf: one branch, not both
        c.add("schema", fld, "expected either 2 or 3 axes of type 'space' or 2 or more of "
              f"type 'array', found {n_space} and {n_array}")
    elif not spatial and not array_cs:
        alt = " (or 2 or more of type 'array')" if v06 else ""
        c.add("schema", fld, f"expected 2 or 3 axes of type 'space'{alt}, found {n_space}")
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        c.add("axes-unique", fld, f"expected unique axis names, found {dupes} more than once")
    if not multiscale:
        return (names if ok else None), types
    n_time = sum(t == "time" for t in types)
    n_other = sum(t not in ("time", "space", "array") for t in types)
    if n_time > 1:
        c.add("axes-count", fld, f"expected at most one axis of type 'time', found {n_time}")
    if n_other > 1:
        c.add("axes-count", fld, "expected at most one axis of type 'channel' or of a custom "
              f"type, found {n_other}")
    ranks = [_AXIS_RANK.get(t, 1) if t is not None else 1 for t in types]
    if ranks != sorted(ranks):
        c.add("axes-order", fld, "expected axes ordered time, then channel (or custom), then "
              f"space; found types {types}")
    return (names if ok else None), types


def _check_unit(c: Collector, ax: Mapping[str, Any], af: str, typ: Any) -> None:
    if "unit" not in ax:
        return
    unit = ax["unit"]
    uf = join(af, "unit")
    if not isinstance(unit, str):
        c.add("schema", uf, f"expected a string, found {found(unit)}")
        return
    table = {"space": SPACE_UNITS, "time": TIME_UNITS}.get(typ)
    if unit in SPACE_UNITS or unit in TIME_UNITS:
        if table is not None and unit not in table:
            c.add("unit", uf, f"expected a {typ} unit such as "
                  f"{'micrometer' if typ == 'space' else 'second'!r}, found {unit!r}, which is "
                  f"not a {typ} unit")
        return
    try:
        full = normalize_unit(unit)
    except UnitError:
        full = None
    hint = f"; write {full!r}" if full else ""
    c.add("unit", uf, f"expected a UDUNITS unit name of the NGFF lists, found {unit!r}, which "
          f"is not a UDUNITS unit name{hint}")


def _advise_voxzarr_axis(c: Collector, name: str | None, typ: Any, af: str) -> None:
    if name is None:
        return
    if name not in AXIS_TYPES:
        c.add("voxzarr-axes", join(af, "name"), "expected an axis name from t, c, z, y, x "
              f"for voxzarr to open the image, found {name!r} (valid NGFF)")
    elif typ is not None and typ != AXIS_TYPES[name]:
        c.add("voxzarr-axes", join(af, "type"), f"expected type {AXIS_TYPES[name]!r} for "
              f"axis {name!r} for voxzarr to open the image, found {typ!r}")


def check_transforms(c: Collector, raw: Any, fld: str, n: int | None) -> list[float] | None:
    """Check a ``coordinateTransformations`` list; return the scale vector when usable."""
    items = c.array(raw, fld, min_items=1)
    if items is None:
        return None
    kinds: list[str | None] = []
    scale: list[float] | None = None
    for k, t in enumerate(items):
        tf = join(fld, k)
        t = c.mapping(t, tf)
        if t is None:
            kinds.append(None)
            continue
        kind = c.string(c.get(t, "type", tf, required=True), join(tf, "type"))
        kinds.append(kind)
        if kind not in ("scale", "translation"):
            if kind is not None:
                c.add("schema", join(tf, "type"), f"expected 'scale' or 'translation', found "
                      f"{kind!r}")
            continue
        vec = c.numbers(c.get(t, kind, tf, required=True), join(tf, kind), min_items=2)
        if vec is None:
            continue
        vf = join(tf, kind)
        usable = True
        if n is not None and len(vec) != n:
            c.add("transform-length", vf, f"has {len(vec)} values for {n} axes; expected "
                  f"{n}, one per axis")
            usable = False
        bad = [v for v in vec if not math.isfinite(v) or (kind == "scale" and v <= 0)]
        if bad:
            need = "finite and > 0" if kind == "scale" else "finite"
            c.add("transform-values", vf, f"expected values {need}, found {bad}")
            usable = False
        if kind == "scale" and scale is None and usable:
            scale = vec
    n_scale = kinds.count("scale")
    if n_scale != 1:
        c.add("schema", fld, f"expected exactly one 'scale' transformation, found {n_scale}")
    n_trans = kinds.count("translation")
    if n_trans > 1:
        c.add("transform-order", fld, f"expected at most one 'translation', found {n_trans}")
    if n_scale == 1 and n_trans >= 1 and kinds.index("translation") < kinds.index("scale"):
        c.add("transform-order", fld, f"expected [scale, translation] (the 'translation' "
              f"must come after the 'scale'), found {kinds}")
    return scale if n_scale == 1 else None  # the level-order check uses only sound scales


def _check_level_order(c: Collector, scales: list[list[float] | None], fld: str,
                       names: list[str] | None) -> None:
    # Levels go from highest to lowest resolution: no axis may get finer.
    usable = [(j, s) for j, s in enumerate(scales) if s is not None]
    for (j0, s0), (j1, s1) in zip(usable, usable[1:], strict=False):
        if len(s0) != len(s1):
            continue
        finer = [k for k, (a, b) in enumerate(zip(s0, s1, strict=True)) if b < a]
        if finer:
            which = [names[k] if names and k < len(names) else k for k in finer]
            c.add("levels-order", join(fld, j1), f"expected datasets from highest to lowest "
                  f"resolution, found this one finer than dataset {j0} along {which} (scale "
                  f"{s1} vs {s0})")


def check_omero(c: Collector, blk: Mapping[str, Any], base: str) -> int | None:
    """Check ``omero`` when present; return the number of channels listed."""
    if "omero" not in blk:
        return None
    of = join(base, "omero")
    om = c.mapping(blk["omero"], of)
    if om is None:
        return None
    chans = c.array(c.get(om, "channels", of, required=True), join(of, "channels"))
    for i, ch in enumerate(chans or []):
        cf = join(join(of, "channels"), i)
        ch = c.mapping(ch, cf)
        if ch is None:
            continue
        color = c.string(c.get(ch, "color", cf, required=True), join(cf, "color"))
        if color is not None and not _HEX.fullmatch(color):
            c.add("omero-color", join(cf, "color"), "expected a 6-digit hex RGB colour such "
                  f"as 'FF0000', found {color!r}")
        win = c.mapping(c.get(ch, "window", cf, required=True), join(cf, "window"))
        if win is not None:
            for key in ("start", "min", "end", "max"):
                c.number(c.get(win, key, join(cf, "window"), required=True),
                      join(join(cf, "window"), key))
        for key, kind in (("label", str), ("family", str), ("active", bool)):
            if key in ch and not isinstance(ch[key], kind):
                c.add("schema", join(cf, key), f"expected {json_type(kind())}, found "
                      f"{found(ch[key])}")
    return len(chans) if chans is not None else None


def check_image_label(c: Collector, blk: Mapping[str, Any], base: str, *, version: str) -> None:
    """Check the ``image-label`` block of a label image."""
    lf = join(base, "image-label")
    lab = c.mapping(c.get(blk, "image-label", base, required=True), lf)
    if lab is None:
        return
    if version == "0.4":
        v = c.get(lab, "version", lf, required=False)
        if v is MISSING:
            c.add("recommended-field", join(lf, "version"), "is missing; expected '0.4' "
                  "(SHOULD)")
        else:
            c.string(v, join(lf, "version"), enum=("0.4",))
    if "colors" not in lab:
        c.add("recommended-field", join(lf, "colors"), "is missing; expected a list of label "
              "colours (SHOULD; the strict schema requires it)")
    colors = _label_values(c, lab, "colors", lf, integer=False)
    props = _label_values(c, lab, "properties", lf, integer=True)
    if colors is not None:
        for i, col in enumerate(lab["colors"]):
            if isinstance(col, Mapping) and "rgba" in col:
                rf = join(join(join(lf, "colors"), i), "rgba")
                rgba = c.array(col["rgba"], rf, min_items=4, max_items=4)
                for k, x in enumerate(rgba or []):
                    c.integer(x, join(rf, k), minimum=0)
                    if isinstance(x, int | float) and not isinstance(x, bool) and x > 255:
                        c.add("schema", join(rf, k), f"expected an integer <= 255, found {x}")
    if colors is not None and props is not None and set(colors) != set(props):
        c.add("label-colors-properties", lf, "expected colors and properties to list the same "
              f"label values, found {sorted(colors)} and {sorted(props)}")
    if "source" in lab:
        src = c.mapping(lab["source"], join(lf, "source"))
        if src is not None and "image" in src:
            c.string(src["image"], join(join(lf, "source"), "image"))


def _label_values(c: Collector, lab: Mapping[str, Any], key: str, lf: str, *,
                  integer: bool) -> list[float] | None:
    if key not in lab:
        return None
    kf = join(lf, key)
    items = c.array(lab[key], kf, min_items=1, unique=True)
    if items is None:
        return None
    values: list[float] = []
    for i, it in enumerate(items):
        itf = join(kf, i)
        it = c.mapping(it, itf)
        if it is None:
            continue
        raw = c.get(it, "label-value", itf, required=True)
        v = (c.integer if integer else c.number)(raw, join(itf, "label-value"))
        if v is None:
            continue
        if not integer and not float(v).is_integer():
            c.add("label-values", join(itf, "label-value"), "expected an integer pixel "
                  f"value, found {v}")
        if v in values:
            c.add("label-values", join(itf, "label-value"), f"expected each label value "
                  f"once in {key}, found {v:g} again")
        values.append(v)
    return values
