"""voxzarr's own checks of NGFF 0.6rc0 coordinate transformations.

The 0.6rc0 JSON schemas check the shape of each transformation type, but none of the rules
that tie a transformation to its coordinate systems: that ``input`` / ``output`` name systems
that exist, that parameters fit their dimensionality (a scale has one value per axis, an
affine is ``M x (N + 1)``, a rotation is orthonormal with determinant 1, a ``mapAxis`` is a
permutation, a ``byDimension`` covers every output axis once), that sequences do not nest,
and that names are unique. Those are checked here; field names are JSON paths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._checks_base import MISSING, Collector, Ref, found, join

__all__ = ["TRANSFORM_TYPES", "Scope", "Endpoint", "check_transform_list", "check_vector",
           "check_endpoint", "check_name"]

#: the transformation types of NGFF 0.6rc0 (its coordinate_transformations schema)
TRANSFORM_TYPES = ("identity", "mapAxis", "projectAxis", "scale", "translation", "affine",
                   "rotation", "bijection", "sequence", "byDimension", "displacements",
                   "coordinates")
#: types whose output has as many axes as their input
_SAME_DIM = ("identity", "mapAxis", "scale", "translation", "rotation")
#: how far a rotation matrix may be from orthonormal (JSON numbers are written rounded)
_ROTATION_TOL = 1e-6


@dataclass
class Scope:
    """What transformations in one metadata document are checked against.

    ``systems`` maps each coordinate system defined here to its axis names; ``names``
    records transformation names already used (name -> field), which must be unique.
    """

    c: Collector
    systems: dict[str, list[str]]
    names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """A resolved ``input`` / ``output``: a local system (``name``), or a group by ``path``."""

    name: str | None
    path: str | None
    axes: list[str] | None

    @property
    def ndim(self) -> int | None:
        return None if self.axes is None else len(self.axes)


def check_name(s: Scope, t: Mapping[str, Any], fld: str) -> None:
    """``name`` is a string, unique across the document's transformations."""
    if "name" not in t:
        return
    name = s.c.string(t["name"], join(fld, "name"))
    if name is None:
        return
    if name in s.names:
        s.c.add("transform-names", join(fld, "name"), "expected a name of its own, found "
                f"{name!r}, already the name of {s.names[name]}")
    else:
        s.names[name] = fld


def check_endpoint(s: Scope, t: Mapping[str, Any], key: str, fld: str, *, required: bool,
                   need_path: bool = False, only_keys: bool = False) -> Endpoint | None:
    """Resolve ``t[key]`` (``input`` or ``output``): ``{"name": ...}`` and/or ``{"path": ...}``.

    A ``path`` refers to another group (recorded for the store walk); a bare ``name`` must be
    a coordinate system of this document. ``need_path`` asks for ``path`` (a dataset's
    input), ``only_keys`` forbids keys other than ``name`` and ``path`` (scenes).
    """
    c = s.c
    ef = join(fld, key)
    v = c.get(t, key, fld, required=required)
    if v is MISSING:
        return None
    if isinstance(v, str):
        c.add("schema", ef, f"expected an object such as {{'name': {v!r}}}, found {v!r} (a "
              "string: NGFF 0.6rc0 names coordinate systems in objects)")
        return None
    ref = c.mapping(v, ef)
    if ref is None:
        return None
    if only_keys:
        extra = sorted(k for k in ref if k not in ("name", "path"))
        if extra:
            c.add("schema", ef, f"expected only the keys 'name' and 'path', found {extra}")
    name = c.string(ref.get("name", MISSING), join(ef, "name"))
    path = c.string(ref.get("path", MISSING), join(ef, "path"))
    if need_path:
        if "path" not in ref:
            c.add("schema", join(ef, "path"), "is missing; expected the path of the array "
                  "the transformation starts from")
        return Endpoint(name, path, None)
    if "name" not in ref and "path" not in ref:
        c.add("schema", join(ef, "name"), "is missing; expected the name of a coordinate "
              "system")
        return None
    if path is not None:
        s.c.refs.append(Ref(ef, "group", path, name))
        return Endpoint(name, path, None)
    if name is None:
        return None
    if name not in s.systems:
        c.add("transform-refs", join(ef, "name"), "expected the name of a coordinate system "
              f"defined here {sorted(s.systems)}, found {name!r}")
        return Endpoint(name, None, None)
    return Endpoint(name, None, s.systems[name])


def check_transform_list(s: Scope, raw: Any, fld: str, *,
                         scene: bool = False) -> list[tuple[Endpoint | None, Endpoint | None]]:
    """Check a top-level ``coordinateTransformations`` list (multiscale or scene).

    ``raw`` may be ``MISSING`` (the caller reports a missing required list). Every entry
    needs ``input`` and ``output``. Returns the resolved (input, output) of each entry, for
    the caller's own rules about which systems they may connect.
    """
    c = s.c
    items = c.array(raw, fld, min_items=1)
    out: list[tuple[Endpoint | None, Endpoint | None]] = []
    for k, t in enumerate(items or []):
        tf = join(fld, k)
        t = c.mapping(t, tf)
        if t is None:
            out.append((None, None))
            continue
        src = check_endpoint(s, t, "input", tf, required=True, only_keys=scene)
        dst = check_endpoint(s, t, "output", tf, required=True, only_keys=scene)
        check_transform(s, t, tf, src, dst)
        out.append((src, dst))
    return out


def check_transform(s: Scope, t: Any, fld: str, src: Endpoint | None, dst: Endpoint | None,
                    *, in_sequence: bool = False) -> None:
    """Check one transformation of any type between ``src`` and ``dst`` (either unknown)."""
    c = s.c
    t = c.mapping(t, fld)
    if t is None:
        return
    check_name(s, t, fld)
    kind = c.string(c.get(t, "type", fld, required=True), join(fld, "type"))
    if kind is None:
        return
    if kind not in TRANSFORM_TYPES:
        c.add("schema", join(fld, "type"), f"expected one of {list(TRANSFORM_TYPES)}, found "
              f"{kind!r}")
        return
    n_in = src.ndim if src else None
    n_out = dst.ndim if dst else None
    if kind in _SAME_DIM and n_in is not None and n_out is not None and n_in != n_out:
        c.add("transform-params", fld, f"expected input and output of the same dimension for "
              f"a {kind!r}, found {n_in} and {n_out} axes")
    n = n_in if n_in is not None else n_out
    if kind in ("scale", "translation"):
        check_vector(c, t, kind, fld, n)
    elif kind == "mapAxis":
        _map_axis(c, t, fld, n)
    elif kind == "projectAxis":
        _project_axis(c, t, fld, n_in, n_out)
    elif kind == "affine":
        _matrix(s, t, fld, "affine", n_in, n_out)
    elif kind == "rotation":
        _matrix(s, t, fld, "rotation", n_in, n_out)
    elif kind == "sequence":
        _sequence(s, t, fld, src, dst, in_sequence)
    elif kind == "byDimension":
        _by_dimension(s, t, fld, src, dst)
    elif kind == "bijection":
        _bijection(s, t, fld, src, dst)
    elif kind in ("displacements", "coordinates"):  # a vector field stored in an array
        _field(s, t, fld, n_in)


def check_vector(c: Collector, t: Mapping[str, Any], kind: str, fld: str,
                 n: int | None) -> list[float] | None:
    """A ``scale`` / ``translation`` vector: numbers, one per axis, scales finite and > 0."""
    vec = c.numbers(c.get(t, kind, fld, required=True), join(fld, kind))
    if vec is None:
        return None
    vf = join(fld, kind)
    ok = True
    if n is not None and len(vec) != n:
        c.add("transform-length", vf, f"has {len(vec)} values for {n} axes; expected {n}, one "
              "per axis")
        ok = False
    bad = [v for v in vec if not math.isfinite(v) or (kind == "scale" and v <= 0)]
    if bad:
        need = "finite and > 0" if kind == "scale" else "finite"
        c.add("transform-values", vf, f"expected values {need}, found {bad}")
        ok = False
    return vec if ok else None


def _ints(c: Collector, raw: Any, fld: str) -> list[int] | None:
    items = c.array(raw, fld)
    if items is None:
        return None
    out = [c.integer(x, join(fld, i)) for i, x in enumerate(items)]
    return None if any(x is None for x in out) else [int(x) for x in out]  # type: ignore[arg-type]


def _map_axis(c: Collector, t: Mapping[str, Any], fld: str, n: int | None) -> None:
    mf = join(fld, "mapAxis")
    perm = _ints(c, c.get(t, "mapAxis", fld, required=True), mf)
    if perm is None:
        return
    if n is not None and len(perm) != n:
        c.add("transform-params", mf, f"expected {n} indices, one per axis, found "
              f"{len(perm)}")
    elif sorted(perm) != list(range(len(perm))):
        c.add("transform-params", mf, f"expected a permutation of 0..{len(perm) - 1} (each "
              f"input axis once), found {perm}")


def _project_axis(c: Collector, t: Mapping[str, Any], fld: str, n_in: int | None,
                  n_out: int | None) -> None:
    dropped = _ints(c, t.get("droppedInputs", []), join(fld, "droppedInputs")) or []
    created = _ints(c, t.get("createdOutputs", []), join(fld, "createdOutputs")) or []
    if "droppedInputs" not in t and "createdOutputs" not in t:
        c.add("schema", fld, "expected 'droppedInputs' or 'createdOutputs', found neither")
    for key, idx, n in (("droppedInputs", dropped, n_in), ("createdOutputs", created, n_out)):
        bad = [i for i in idx if n is not None and not 0 <= i < n]
        if bad:
            c.add("transform-params", join(fld, key), f"expected indices below {n}, found "
                  f"{bad}")
    if n_in is not None and n_out is not None and n_in - len(dropped) + len(created) != n_out:
        c.add("transform-params", fld, f"expected {n_in} input axes - {len(dropped)} dropped "
              f"+ {len(created)} created = {n_in - len(dropped) + len(created)} output axes, "
              f"found {n_out}")


def _matrix(s: Scope, t: Mapping[str, Any], fld: str, kind: str, n_in: int | None,
            n_out: int | None) -> None:
    c = s.c
    if ("path" in t) == (kind in t):
        c.add("schema", fld, f"expected either {kind!r} (the matrix) or 'path' (an array "
              f"holding it), found {'both' if 'path' in t else 'neither'}")
        return
    if "path" in t:
        p = c.string(t["path"], join(fld, "path"))
        if p is not None:
            c.refs.append(Ref(join(fld, "path"), "array", p, None, 2))
        return
    mf = join(fld, kind)
    rows = c.array(t[kind], mf, min_items=1)
    if not rows:
        return
    m: list[list[float]] = []
    for i, row in enumerate(rows):
        r = c.numbers(row, join(mf, i))
        if r is None:
            return
        m.append(r)
    widths = sorted({len(r) for r in m})
    if len(widths) > 1:
        c.add("transform-params", mf, f"expected rows of one length, found lengths {widths}")
        return
    n_rows, n_cols = len(m), widths[0]
    if kind == "affine":
        want_rows = n_out if n_out is not None else n_rows
        want_cols = n_in + 1 if n_in is not None else n_cols
        if (n_rows, n_cols) != (want_rows, want_cols):
            c.add("transform-params", mf, f"expected a {want_rows}x{want_cols} matrix "
                  f"({want_rows} output axes by {want_cols - 1} input axes plus the "
                  f"translation column), found {n_rows}x{n_cols}")
        return
    n = n_in if n_in is not None else n_out
    if n_rows != n_cols or (n is not None and n_rows != n):
        want = n if n is not None else n_rows
        c.add("transform-params", mf, f"expected a {want}x{want} matrix, found "
              f"{n_rows}x{n_cols}")
        return
    _check_rotation(c, m, mf)


def _check_rotation(c: Collector, m: list[list[float]], mf: str) -> None:
    n = len(m)
    gram = [[sum(m[i][k] * m[j][k] for k in range(n)) for j in range(n)] for i in range(n)]
    off = max(abs(gram[i][j] - (1.0 if i == j else 0.0)) for i in range(n) for j in range(n))
    det = _det(m)
    if off > _ROTATION_TOL or abs(det - 1.0) > _ROTATION_TOL:
        c.add("transform-params", mf, "expected a rotation matrix (orthonormal rows, "
              f"determinant 1), found determinant {det:.6g} and rows off orthonormal by "
              f"{off:.3g}")


def _det(m: list[list[float]]) -> float:
    """Determinant by Gaussian elimination (matrices here are at most 5x5)."""
    a = [list(r) for r in m]
    n = len(a)
    det = 1.0
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(a[r][col]))
        if a[piv][col] == 0:
            return 0.0
        if piv != col:
            a[col], a[piv] = a[piv], a[col]
            det = -det
        det *= a[col][col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return det


def _out_dim(t: Any, n_in: int | None) -> int | None:
    """The output dimension of a transformation inside a sequence, when it can be told."""
    if not isinstance(t, Mapping) or n_in is None:
        return None
    kind = t.get("type")
    if "inputAxes" in t or kind in _SAME_DIM:  # subspace transformations keep the rest
        return n_in
    if kind == "affine" and isinstance(t.get("affine"), list):
        return len(t["affine"])
    if kind == "projectAxis":
        dropped, created = t.get("droppedInputs", []), t.get("createdOutputs", [])
        if isinstance(dropped, list) and isinstance(created, list):
            return n_in - len(dropped) + len(created)
    return None


def _sequence(s: Scope, t: Mapping[str, Any], fld: str, src: Endpoint | None,
              dst: Endpoint | None, in_sequence: bool) -> None:
    c = s.c
    if in_sequence:
        c.add("transform-sequence", fld, "expected no sequence inside a sequence, found one")
    sf = join(fld, "transformations")
    items = c.array(c.get(t, "transformations", fld, required=True), sf)
    if items is None:
        return
    if not items:
        c.add("transform-sequence", sf, "expected a non-empty list of transformations, found "
              "0")
        return
    cur = src.ndim if src else None
    for k, item in enumerate(items):
        itf = join(sf, k)
        if isinstance(item, Mapping) and "inputAxes" in item:
            _subspace(s, item, itf, src, cur)
            continue
        last = k == len(items) - 1
        nxt = (dst.ndim if dst else None) if last else _out_dim(item, cur)
        check_transform(s, item, itf, Endpoint(None, None, _unnamed(cur)),
                        Endpoint(None, None, _unnamed(nxt)), in_sequence=True)
        cur = nxt


def _unnamed(n: int | None) -> list[str] | None:
    return None if n is None else [""] * n


def _axis_refs(c: Collector, raw: Any, fld: str, ep: Endpoint | None,
               n: int | None) -> list[int | str] | None:
    """``inputAxes`` / ``outputAxes``: indices below ``n`` or names of ``ep``'s axes."""
    items = c.array(raw, fld)
    if items is None:
        return None
    out: list[int | str] = []
    names = ep.axes if ep is not None and ep.axes and all(ep.axes) else None
    for i, x in enumerate(items):
        xf = join(fld, i)
        if isinstance(x, str):
            if names is not None and x not in names:
                c.add("transform-params", xf, f"expected an axis name of {names}, found {x!r}")
            out.append(x)
        elif isinstance(x, int | float) and not isinstance(x, bool) and float(x).is_integer():
            if n is not None and not 0 <= x < n:
                c.add("transform-params", xf, f"expected an axis index below {n}, found "
                      f"{x:g}")
            out.append(int(x))
        else:
            c.add("schema", xf, f"expected an axis index or name, found {found(x)}")
    return out


def _subspace(s: Scope, item: Mapping[str, Any], fld: str, src: Endpoint | None,
              n: int | None) -> None:
    """A sequence member acting on some axes only (``inputAxes`` / ``outputAxes``)."""
    ins = _axis_refs(s.c, item.get("inputAxes"), join(fld, "inputAxes"), src, n)
    outs = _axis_refs(s.c, item.get("outputAxes", item.get("inputAxes")),
                      join(fld, "outputAxes"), None, n)
    check_transform(s, item, fld, Endpoint(None, None, _unnamed(len(ins) if ins else None)),
                    Endpoint(None, None, _unnamed(len(outs) if outs else None)),
                    in_sequence=True)


def _by_dimension(s: Scope, t: Mapping[str, Any], fld: str, src: Endpoint | None,
                  dst: Endpoint | None) -> None:
    c = s.c
    bf = join(fld, "transformations")
    children = c.array(c.get(t, "transformations", fld, required=True), bf)
    if children is None:
        return
    n_in = src.ndim if src else None
    n_out = dst.ndim if dst else None
    cover: dict[int | str, list[int]] = {}
    for k, ch in enumerate(children):
        cf = join(bf, k)
        ch = c.mapping(ch, cf)
        if ch is None:
            continue
        ins = _axis_refs(c, c.get(ch, "inputAxes", cf, required=True), join(cf, "inputAxes"),
                         src, n_in)
        outs = _axis_refs(c, c.get(ch, "outputAxes", cf, required=True),
                          join(cf, "outputAxes"), dst, n_out)
        for o in outs or []:
            cover.setdefault(o, []).append(k)
        sub = c.get(ch, "transformation", cf, required=True)
        if sub is MISSING:
            continue
        check_transform(s, sub, join(cf, "transformation"),
                        Endpoint(None, None, _unnamed(len(ins) if ins is not None else None)),
                        Endpoint(None, None, _unnamed(len(outs) if outs is not None else None)),
                        in_sequence=True)
    if n_out is None:
        return
    names = dst.axes if dst is not None and dst.axes and all(dst.axes) else None
    for j in range(n_out):
        hits = cover.get(j, []) + (cover.get(names[j], []) if names else [])
        if len(hits) != 1:
            what = f"axis {j}" + (f" ({names[j]!r})" if names else "")
            where = f"children {hits}" if hits else "none"
            c.add("transform-params", bf, f"expected output {what} in exactly one child's "
                  f"outputAxes, found it in {where}")


def _bijection(s: Scope, t: Mapping[str, Any], fld: str, src: Endpoint | None,
               dst: Endpoint | None) -> None:
    n_in = src.ndim if src else None
    n_out = dst.ndim if dst else None
    if n_in is not None and n_out is not None and n_in != n_out:
        s.c.add("transform-params", fld, "expected input and output of equal dimension for a "
                f"bijection, found {n_in} and {n_out} axes")
    for key, a, b in (("forward", src, dst), ("inverse", dst, src)):
        sub = s.c.get(t, key, fld, required=True)
        if sub is not MISSING:
            check_transform(s, sub, join(fld, key), a, b)


def _field(s: Scope, t: Mapping[str, Any], fld: str, n_in: int | None) -> None:
    c = s.c
    p = c.string(c.get(t, "path", fld, required=True), join(fld, "path"))
    if "interpolation" in t:
        c.string(t["interpolation"], join(fld, "interpolation"),
                 enum=("nearest", "linear", "cubic"))
    if p is not None:
        # the field array has one axis per input axis plus the vector axis
        c.refs.append(Ref(join(fld, "path"), "array", p, None,
                          None if n_in is None else n_in + 1))
