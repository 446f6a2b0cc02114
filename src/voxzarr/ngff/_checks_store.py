"""Walk an OME-Zarr hierarchy and check each group's metadata against its arrays.

The walk follows what the metadata promises: an image's level arrays and its ``labels``
group, each label image, a plate's wells and their fields, bioformats2raw series. Only
array metadata is read (shape, dtype, dimension names), never chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
import zarr.storage

from ._checks_attrs import AttrsReport, check_attrs
from ._checks_base import RULES, Finding, Ref, join
from ._checks_raw import diagnose

__all__ = ["walk"]

_LABEL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")


@dataclass
class _Image:
    """What a label image is compared against: its parent image's levels."""

    n_levels: int
    shape: tuple[int, ...] | None
    names: list[str]


@dataclass
class _Walk:
    hint: str | None
    findings: list[Finding] = field(default_factory=list)
    root_version: str | None = None
    root_kind: str | None = None
    root: zarr.Group | None = None
    where: str = ""
    #: groups already walked (by store key), so references never walk a group twice
    visited: set[str] = field(default_factory=set)

    def add(self, rule: str, where: str, fld: str, message: str) -> None:
        if rule not in RULES:  # pragma: no cover - programming error
            raise KeyError(rule)
        self.findings.append(Finding(rule, where, fld, message))


def walk(root: zarr.Group, where: str, *, version: str | None,
         kind: str | None) -> tuple[list[Finding], str | None, str | None]:
    """Check the hierarchy under ``root``; returns (findings, version, kind of the root)."""
    w = _Walk(version, root=root, where=where)
    rep = _group(w, root, where, kind=kind, is_root=True)
    if rep is not None and not rep.unsupported:  # nothing to walk in an unknown layout
        _dispatch(w, root, where, rep)
    return w.findings, w.root_version, w.root_kind


def _sub(where: str, key: str) -> str:
    return f"{where.rstrip('/')}/{key}"


def _node(w: _Walk, g: zarr.Group, key: str, where: str, fld: str, rule: str,
          what: str, expect: str | None = None) -> Any:
    """``g[key]`` or ``None`` with a finding saying what is missing or broken there.

    zarr-python raises ``KeyError`` for a node that is absent *and* for one whose metadata
    it cannot parse: the raw documents tell the two apart.
    """
    try:
        return g[key]
    except Exception as err:
        broken = [f for f in diagnose(g.store_path.store, _key(g, key), _sub(where, key),
                                      expect=expect) if f.rule == "zarr-metadata"]
        if broken:
            w.findings.extend(broken)
        elif isinstance(err, KeyError):
            w.add(rule, where, fld, f"expected {what} {key!r}, found nothing at that path")
        else:
            w.add("store", _sub(where, key), "", f"expected a readable zarr node, found one "
                  f"zarr cannot open ({type(err).__name__}: {err})")
    return None


def _key(g: zarr.Group, key: str) -> str:
    """Store key of ``key`` inside ``g`` (``g``'s own key for ``""``)."""
    base = g.store_path.path.strip("/")
    return f"{base}/{key}" if base and key else (base or key)


def _group(w: _Walk, g: zarr.Group, where: str, *, kind: str | None = None,
           is_root: bool = False, acquisitions: list[int] | None = None) -> AttrsReport | None:
    zf = g.metadata.zarr_format
    try:
        attrs = g.attrs.asdict()
    except Exception as err:
        w.add("store", where, "", f"expected readable attributes, found ones zarr cannot read "
              f"({type(err).__name__}: {err})")
        return None
    w.visited.add(_key(g, ""))
    rep = check_attrs(attrs, path=where, version=w.hint, kind=kind, zarr_format=zf,
                      acquisitions=acquisitions,
                      default_version=None if is_root else w.root_version)
    if is_root:
        w.findings.extend(rep.findings)
        w.root_version, w.root_kind = rep.version, rep.kind
        _zarr_format(w, where, "", rep.version, zf, "group")
        return rep
    # below the root an unknown version is a mixed hierarchy, which the spec forbids
    w.findings.extend(f for f in rep.findings if f.rule != "unsupported-version")
    if rep.version != w.root_version and rep.kind is not None:
        w.add("version-consistency", where, "ome.version" if rep.base else "",
              f"expected NGFF {w.root_version}, as the rest of the hierarchy, found NGFF "
              f"{rep.version}")
    if rep.unsupported:
        return None
    _zarr_format(w, where, "", rep.version, zf, "group")
    return rep


def _zarr_format(w: _Walk, where: str, fld: str, version: str | None, zf: int,
                 what: str) -> None:
    want = {"0.4": 2, "0.5": 3, "0.6rc0": 3}.get(str(version))
    if want is not None and zf != want:
        w.add("zarr-format", where, fld, f"expected a zarr v{want} {what} (NGFF {version} "
              f"uses zarr v{want}), found zarr v{zf}")


def _dispatch(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport,
              parent: _Image | None = None) -> None:
    if rep.kind in ("image", "label"):
        _image(w, g, where, rep, is_label=rep.kind == "label", label_of=parent)
        _refs(w, g, where, rep, walk_into=False)
    elif rep.kind == "scene":
        _refs(w, g, where, rep, walk_into=True)
    elif rep.kind == "labels":
        _labels(w, g, where, rep, parent)
    elif rep.kind == "plate":
        _plate(w, g, where, rep)
    elif rep.kind == "well":
        _well(w, g, where, rep)
    elif rep.kind == "bioformats2raw":
        _bf2raw(w, g, where, rep)


def _image(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport, *, is_label: bool,
           label_of: _Image | None = None) -> _Image | None:
    """Check the level arrays; a label image is compared with ``label_of`` when known."""
    base = rep.base
    first: _Image | None = None
    for i, ms in enumerate(rep.multiscales):
        mf = join(join(base, "multiscales"), i)
        arrays: list[tuple[int, zarr.Array]] = []
        for j, p in enumerate(ms.paths):
            if p is None:  # already reported by the attribute checks
                continue
            pf = join(join(join(mf, "datasets"), j), "path")
            node = _node(w, g, p, where, pf, "array-missing", "level array", "array")
            if node is None:
                continue
            if not isinstance(node, zarr.Array):
                w.add("array-missing", where, pf, f"expected an array at {p!r}, found a group")
                continue
            arrays.append((j, node))
        _arrays(w, where, mf, rep, ms.names, arrays, label=is_label)
        if i == 0:
            shape = tuple(arrays[0][1].shape) if arrays and arrays[0][0] == 0 else None
            first = _Image(len(ms.paths), shape, ms.names)
    if label_of is not None and first is not None:
        _label_vs_image(w, where, base, first, label_of)
    if not is_label and first is not None:
        try:
            child = g["labels"]
        except KeyError:
            child = None
        except Exception as err:
            w.add("store", _sub(where, "labels"), "", "expected a readable group, found one "
                  f"zarr cannot open ({err})")
            child = None
        if isinstance(child, zarr.Group):
            lrep = _group(w, child, _sub(where, "labels"), kind="labels")
            if lrep is not None:
                _labels(w, child, _sub(where, "labels"), lrep, first)
    return first


def _arrays(w: _Walk, where: str, mf: str, rep: AttrsReport, names: list[str],
            arrays: list[tuple[int, zarr.Array]], *, label: bool) -> None:
    n = len(names)
    dtypes: dict[str, list[str]] = {}
    prev: tuple[int, tuple[int, ...]] | None = None
    for j, arr in arrays:
        df = join(join(mf, "datasets"), j)
        aw = _sub(where, arr.basename or str(j))
        _zarr_format(w, aw, "", rep.version, arr.metadata.zarr_format, "array")
        if names and arr.ndim != n:
            w.add("array-ndim", where, df, f"expected {n} dimensions, one per axis {names}, "
                  f"found array {arr.basename!r} with {arr.ndim}")
        dtypes.setdefault(str(np.dtype(arr.dtype)), []).append(arr.basename)
        if label and str(np.dtype(arr.dtype)) not in _LABEL_DTYPES:
            w.add("label-image", aw, "dtype", f"expected an integer dtype for a label array "
                  f"({', '.join(_LABEL_DTYPES)}), found {np.dtype(arr.dtype)}")
        if rep.version == "0.5" and arr.metadata.zarr_format == 3:
            dn = arr.metadata.dimension_names
            if dn is None:
                w.add("dimension-names", aw, "dimension_names", f"is missing; expected {names} "
                      "(NGFF 0.5 arrays name their dimensions after the axes)")
            elif names and list(dn) != names:
                w.add("dimension-names", aw, "dimension_names", f"expected the axes {names}, "
                      f"found {list(dn)}")
        shape = tuple(arr.shape)
        if prev is not None and len(prev[1]) == len(shape):
            grown = [names[k] if k < len(names) else k
                     for k, (a, b) in enumerate(zip(prev[1], shape, strict=True)) if b > a]
            if grown:
                w.add("array-shape-order", where, join(df, "path"), f"expected level "
                      f"{arr.basename!r} no larger than the level before it {prev[1]}, found "
                      f"{shape}, larger along {grown}")
        prev = (j, shape)
        if j == 0 and rep.omero_channels is not None and "c" in names and len(shape) == n:
            size = shape[names.index("c")]
            if size != rep.omero_channels:
                w.add("omero-channels", where, join(rep.base, "omero.channels"),
                      f"expected one entry per channel, {size} (the 'c' axis), found "
                      f"{rep.omero_channels}")
    if len(dtypes) > 1:
        w.add("array-dtype", where, join(mf, "datasets"), f"expected one dtype across the "
              f"levels, found {dtypes}")


def _label_vs_image(w: _Walk, where: str, base: str, lab: _Image, img: _Image) -> None:
    mf = join(join(base, "multiscales"), 0)
    if lab.n_levels != img.n_levels:
        w.add("label-image", where, join(mf, "datasets"), f"expected {img.n_levels} levels, "
              f"as the image it labels has, found {lab.n_levels}")
    if lab.shape is None or img.shape is None or lab.names != img.names:
        return
    odd = [name for name, a, b in zip(lab.names, lab.shape, img.shape, strict=True)
           if a not in (b, 1)]
    if odd:
        w.add("label-shape", where, join(mf, "datasets[0]"), f"expected the image's shape "
              f"{img.shape} (or 1) along every axis, found {lab.shape}, which differs along "
              f"{odd}")


def _labels(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport,
            parent: _Image | None) -> None:
    lf = join(rep.base, "labels")
    for i, p in enumerate(rep.labels):
        node = _node(w, g, p, where, join(lf, i), "labels-group", "label image")
        if node is None:
            continue
        lw = _sub(where, p)
        if not isinstance(node, zarr.Group):
            w.add("labels-group", where, join(lf, i), f"expected a label image group at "
                  f"{p!r}, found an array")
            continue
        lrep = _group(w, node, lw)
        if lrep is None:
            continue
        if lrep.kind == "image":
            w.add("recommended-field", lw, join(lrep.base, "image-label"),
                  "is missing; expected it on a label image (SHOULD)")
        elif lrep.kind != "label" or "multiscales" not in lrep.block:
            w.add("label-image", lw, join(lrep.base, "multiscales"),
                  "is missing; expected a multiscale image (a label image MUST be one)")
            continue
        _image(w, node, lw, lrep, is_label=True, label_of=parent)


def _plate(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport) -> None:
    plate = rep.plate or {}
    wf = join(rep.base, "plate.wells")
    for i, p in enumerate(plate.get("wells", [])):
        node = _node(w, g, p, where, join(wf, i), "hcs-hierarchy", "well group")
        if not isinstance(node, zarr.Group):
            continue
        wrep = _group(w, node, _sub(where, p), kind="well",
                      acquisitions=plate.get("acquisitions"))
        if wrep is not None:
            _well(w, node, _sub(where, p), wrep)


def _well(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport) -> None:
    imf = join(rep.base, "well.images")
    for i, p in enumerate(rep.well_images):
        node = _node(w, g, p, where, join(join(imf, i), "path"), "hcs-hierarchy",
                     "field image group")
        if isinstance(node, zarr.Group):
            _any_image(w, node, _sub(where, p))


def _any_image(w: _Walk, g: zarr.Group, where: str) -> None:
    rep = _group(w, g, where)
    if rep is None:
        return
    if rep.kind not in ("image", "label"):
        w.add("hcs-hierarchy", where, "multiscales", f"is missing: expected an image here, "
              f"found {rep.kind or 'no NGFF metadata'}")
        return
    _image(w, g, where, rep, is_label=rep.kind == "label")


def _bf2raw(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport) -> None:
    if rep.plate is not None:  # the plate takes precedence over series
        _plate(w, g, where, rep)
        return
    series: list[str] | None = rep.series
    ome_where = _sub(where, "OME")
    try:
        ome = g["OME"]
    except KeyError:
        ome = None
    if isinstance(ome, zarr.Group) and "series" in _attrs(ome):  # OME MAY list the series
        orep = _group(w, ome, ome_where, kind="series")
        if orep is not None and orep.series is not None:
            series = orep.series
    if series is not None:
        for i, p in enumerate(series):
            node = _node(w, g, p, where, f"OME series[{i}]", "bf2raw-series", "series image")
            if isinstance(node, zarr.Group):
                _any_image(w, node, _sub(where, p))
        return
    k = 0
    while True:
        try:
            node = g[str(k)]
        except KeyError:
            break
        if isinstance(node, zarr.Group):
            _any_image(w, node, _sub(where, str(k)))
        k += 1
    if k == 0:
        w.add("bf2raw-series", where, "", "expected image group '0' or an OME/series list, "
              "found neither")


def _attrs(g: zarr.Group) -> dict[str, Any]:
    try:
        a = g.attrs.asdict()
    except Exception:
        return {}
    return dict(a.get("ome", a)) if isinstance(a.get("ome", a), dict) else {}


# ------------------------------------------------------------------ 0.6 references by path
def _resolve(g: zarr.Group, path: str) -> str | None:
    """Store key of ``path`` seen from ``g`` (``/``-rooted paths from the store root), or
    ``None`` when ``..`` leads out of the store."""
    base = [] if path.startswith("/") else [p for p in g.store_path.path.split("/") if p]
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not base:
                return None
            base.pop()
        else:
            base.append(part)
    return "/".join(base)


def _systems_of(node: zarr.Group) -> list[str]:
    """Names of the coordinate systems a group's 0.6 metadata defines."""
    ome = _attrs(node)
    names: list[str] = []
    blocks = [m for m in ome.get("multiscales", []) if isinstance(m, Mapping)] \
        if isinstance(ome.get("multiscales"), list) else []
    if isinstance(ome.get("scene"), Mapping):
        blocks.append(ome["scene"])
    for blk in blocks:
        for cs in blk.get("coordinateSystems", []) if isinstance(
                blk.get("coordinateSystems"), list) else []:
            if isinstance(cs, Mapping) and isinstance(cs.get("name"), str):
                names.append(cs["name"])
    return names


def _refs(w: _Walk, g: zarr.Group, where: str, rep: AttrsReport, *, walk_into: bool) -> None:
    """Groups and arrays that 0.6 transformations name by path exist and fit."""
    store = g.store_path.store
    for ref in rep.refs:
        key = _resolve(g, ref.path)
        if key is None:
            w.add("transform-path", where, ref.field, f"expected a path inside the store, "
                  f"found {ref.path!r}, which leads out of it")
            continue
        try:
            node = zarr.open(zarr.storage.StorePath(store, key), mode="r")
        except Exception:
            node = None
        if ref.kind == "array":
            _array_ref(w, where, ref, node)
            continue
        if not isinstance(node, zarr.Group):
            found = "an array" if isinstance(node, zarr.Array) else "nothing"
            w.add("transform-path", where, ref.field, f"expected a group with coordinate "
                  f"systems at {ref.path!r}, found {found}")
            continue
        if walk_into and key not in w.visited:
            shown = _shown(w, key)
            sub = _group(w, node, shown)
            if sub is not None:
                _dispatch(w, node, shown, sub)
        systems = _systems_of(node)
        if ref.name is not None and ref.name not in systems:
            w.add("transform-refs", where, join(ref.field, "name"), f"expected a coordinate "
                  f"system of the group at {ref.path!r} {systems}, found {ref.name!r}")


def _shown(w: _Walk, key: str) -> str:
    """How the node at store ``key`` is shown: the root's location plus the relative path."""
    base = w.root.store_path.path.strip("/") if w.root is not None else ""
    rel = key[len(base):].strip("/") if base and key.startswith(base) else key
    return _sub(w.where, rel) if rel else w.where


def _array_ref(w: _Walk, where: str, ref: Ref, node: Any) -> None:
    if not isinstance(node, zarr.Array):
        found = "a group" if isinstance(node, zarr.Group) else "nothing"
        w.add("transform-path", where, ref.field, f"expected an array at {ref.path!r}, "
              f"found {found}")
    elif ref.ndim is not None and node.ndim != ref.ndim:
        w.add("transform-path", where, ref.field, f"expected an array of {ref.ndim} "
              f"dimensions at {ref.path!r}, found {node.ndim}")
