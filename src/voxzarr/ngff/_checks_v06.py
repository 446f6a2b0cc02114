"""voxzarr's own checks of NGFF 0.6rc0 images and scenes: coordinate systems and transforms.

0.6rc0 replaces ``axes`` by named ``coordinateSystems``; every dataset maps its array to one
and the same *intrinsic* coordinate system by one ``scale``, ``identity`` or a ``sequence``
of one ``scale`` and one ``translation``, each with ``input`` (the array path) and
``output`` (the system's name). A multiscale's own ``coordinateTransformations`` lead from the
intrinsic system to others; a ``scene`` relates coordinate systems of several images.
The checks here cover the schemas' rules (so a verdict never rests on one source) and the
specification text's rules that no schema expresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._checks_base import MISSING, Collector, join
from ._checks_image import AxisInfo, _check_axes, _check_level_order
from ._checks_transforms import (
    Endpoint,
    Scope,
    check_endpoint,
    check_name,
    check_transform_list,
    check_vector,
)

__all__ = ["check_multiscales_v06", "check_coordinate_systems", "check_scene"]

_DATASET_TYPES = ("scale", "identity", "sequence")


def check_coordinate_systems(c: Collector, raw: Any, fld: str, *,
                             image: bool) -> dict[str, list[str]]:
    """Check a ``coordinateSystems`` list; return ``{name: axis names}`` of the usable ones.

    ``image`` applies the rules for an image's systems (2-5 axes, order and counts by type).
    """
    items = c.array(raw, fld, min_items=1 if image else 0, unique=True)
    systems: dict[str, list[str]] = {}
    for k, cs in enumerate(items or []):
        csf = join(fld, k)
        cs = c.mapping(cs, csf)
        if cs is None:
            continue
        name = c.string(c.get(cs, "name", csf, required=True), join(csf, "name"))
        if name == "":
            c.add("schema", join(csf, "name"), "expected a non-empty string, found ''")
            name = None
        names, _types = _check_axes(c, c.get(cs, "axes", csf, required=True),
                                    join(csf, "axes"), version="0.6rc0", multiscale=image)
        if name is None:
            continue
        if name in systems:
            c.add("coordinate-systems", join(csf, "name"), "expected a name of its own for "
                  f"each coordinate system, found {name!r} again")
        elif names is not None:
            systems[name] = names
    return systems


def check_multiscales_v06(c: Collector, blk: Mapping[str, Any], base: str) -> list[AxisInfo]:
    """Check ``blk["multiscales"]`` of an NGFF 0.6rc0 image (``base`` is ``"ome"``)."""
    fld = join(base, "multiscales")
    entries = c.array(c.get(blk, "multiscales", base, required=True), fld, min_items=1,
                      unique=True)
    names: dict[str, str] = {}  # transformation names, unique across the document
    infos: list[AxisInfo] = []
    for i, ms in enumerate(entries or []):
        mf = join(fld, i)
        ms = c.mapping(ms, mf)
        if ms is not None:
            infos.append(_one(c, ms, mf, names))
    return infos


def _one(c: Collector, ms: Mapping[str, Any], mf: str, names: dict[str, str]) -> AxisInfo:
    c.string(c.get(ms, "name", mf, required=False), join(mf, "name"))
    for key in ("name", "type", "metadata"):
        if key not in ms:
            c.add("recommended-field", join(mf, key), "is missing; expected it (SHOULD; the "
                  "strict schema requires it)")
    if "metadata" in ms:
        c.mapping(ms["metadata"], join(mf, "metadata"))
    csf = join(mf, "coordinateSystems")
    systems = check_coordinate_systems(c, c.get(ms, "coordinateSystems", mf, required=True),
                                       csf, image=True)
    default = _intrinsic(ms, systems)
    axes = systems.get(default) if default is not None else None
    n = len(axes) if axes is not None else None
    scope = Scope(c, systems, names)

    dsf = join(mf, "datasets")
    datasets = c.array(c.get(ms, "datasets", mf, required=True), dsf, min_items=1)
    scales: list[list[float] | None] = []
    paths: list[str | None] = []
    for j, ds in enumerate(datasets or []):
        df = join(dsf, j)
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
        ctf = join(df, "coordinateTransformations")
        cts = c.array(c.get(ds, "coordinateTransformations", df, required=True), ctf,
                      min_items=1, max_items=1, unique=True)
        scale = None
        if cts:
            scale = _dataset_transform(scope, cts[0], join(ctf, 0), p, default, n)
        scales.append(scale)
    _check_level_order(c, scales, dsf, axes)

    if "coordinateTransformations" in ms:
        mtf = join(mf, "coordinateTransformations")
        pairs = check_transform_list(scope, ms["coordinateTransformations"], mtf)
        for k, (src, dst) in enumerate(pairs):
            _multiscale_transform_ends(c, join(mtf, k), src, dst, default)
    return AxisInfo(axes or [], scales, paths)


def _intrinsic(ms: Mapping[str, Any], systems: Mapping[str, list[str]]) -> str | None:
    """The intrinsic coordinate system: the one the first dataset maps to, if defined."""
    try:
        name = ms["datasets"][0]["coordinateTransformations"][0]["output"]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and name in systems else None


def _dataset_transform(s: Scope, t: Any, tf: str, path: str | None, default: str | None,
                       n: int | None) -> list[float] | None:
    """Check a dataset's one transformation; return its scale (per-level voxel size)."""
    c = s.c
    t = c.mapping(t, tf)
    if t is None:
        return None
    check_name(s, t, tf)
    kind = c.string(c.get(t, "type", tf, required=True), join(tf, "type"))
    src = check_endpoint(s, t, "input", tf, required=True, need_path=True)
    if src is not None and src.path is not None and path is not None and src.path != path:
        c.add("dataset-input", join(tf, "input.path"), f"expected {path!r}, the dataset's own "
              f"array, found {src.path!r}")
    dst = check_endpoint(s, t, "output", tf, required=True)
    if dst is not None and dst.name is not None and dst.path is None and default is not None \
            and dst.name in s.systems and dst.name != default:
        c.add("multiscale-transforms", join(tf, "output.name"), f"expected {default!r}, the "
              "intrinsic coordinate system the first dataset maps to (all datasets map to "
              f"one), found {dst.name!r}")
    if kind is None:
        return None
    if kind not in _DATASET_TYPES:
        c.add("schema", join(tf, "type"), "expected 'scale', 'identity' or a 'sequence' of "
              f"one 'scale' and one 'translation', found {kind!r}")
        return None
    if kind == "identity":
        return [1.0] * n if n is not None else None
    if kind == "scale":
        return check_vector(c, t, "scale", tf, n)
    sf = join(tf, "transformations")
    items = c.array(c.get(t, "transformations", tf, required=True), sf, min_items=2,
                    max_items=2)
    if items is None:
        return None
    kinds: list[str | None] = []
    scale = None
    for k, it in enumerate(items):
        itf = join(sf, k)
        it = c.mapping(it, itf)
        if it is None:
            kinds.append(None)
            continue
        ik = c.string(c.get(it, "type", itf, required=True), join(itf, "type"))
        kinds.append(ik)
        if ik not in ("scale", "translation"):
            if ik is not None:
                c.add("schema", join(itf, "type"), f"expected 'scale' or 'translation', found "
                      f"{ik!r}")
            continue
        vec = check_vector(c, it, ik, itf, n)
        if ik == "scale":
            scale = vec
    named = sorted(k for k in kinds if k is not None)
    if len(named) == 2 and named != ["scale", "translation"]:
        c.add("multiscale-transforms", sf, "expected one 'scale' and one 'translation', found "
              f"{kinds}")
        return None
    return scale


def _multiscale_transform_ends(c: Collector, fld: str, src: Endpoint | None,
                               dst: Endpoint | None, default: str | None) -> None:
    """A multiscale's own transformations lead from its intrinsic system to another one."""
    if default is None or src is None or dst is None:
        return
    if src.path is None and src.name is not None and src.name != default:
        c.add("multiscale-transforms", join(fld, "input.name"), f"expected {default!r}, the "
              f"intrinsic coordinate system of the datasets, found {src.name!r}")
    if src.path is None and dst.path is None and dst.name == default:
        c.add("multiscale-transforms", join(fld, "output.name"), "expected a coordinate "
              f"system other than the intrinsic {default!r}, found {dst.name!r}")


def check_scene(c: Collector, body: Mapping[str, Any], fld: str,
                names: dict[str, str] | None = None) -> None:
    """Check a scene: ``coordinateSystems`` and ``coordinateTransformations`` between them.

    ``fld`` is the JSON path of ``body`` (``"ome.scene"``, or ``""`` for a stand-alone
    document of coordinate systems and transformations). ``input`` / ``output`` name a
    system defined here, or one of the image at ``path``.
    """
    systems: dict[str, list[str]] = {}
    if "coordinateSystems" in body:
        systems = check_coordinate_systems(c, body["coordinateSystems"],
                                           join(fld, "coordinateSystems"), image=False)
    raw = c.get(body, "coordinateTransformations", fld, required=True)
    if raw is MISSING:
        return
    check_transform_list(Scope(c, systems, names if names is not None else {}), raw,
                         join(fld, "coordinateTransformations"), scene=True)
