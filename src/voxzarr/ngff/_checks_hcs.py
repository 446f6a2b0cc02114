"""voxzarr's own checks of collection metadata: plate, well, labels, bioformats2raw, series.

Like :mod:`._checks_image`, these cover the schemas' rules and the specification text's
cross-field rules (well path against rows/columns and indices, unique acquisition ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._checks_base import MISSING, Collector, join

__all__ = ["check_plate", "check_well", "check_labels", "check_bf2raw", "check_series"]

_ALNUM = r"[A-Za-z0-9]+"
#: 0.6rc0 widens field (image) paths in a well to these characters
_FIELD_06 = r"[A-Za-z0-9_.-]+"


def _version_field(c: Collector, obj: Mapping[str, Any], fld: str, version: str) -> None:
    """0.4 keeps a ``version`` inside plate / well; 0.5 moved it to ``ome.version``."""
    v = c.get(obj, "version", fld, required=False)
    if version == "0.4":
        if v is MISSING:
            c.add("recommended-field", join(fld, "version"), "is missing; expected '0.4' "
                  "(SHOULD)")
        else:
            c.string(v, join(fld, "version"), enum=("0.4",))
    elif v is not MISSING:
        c.string(v, join(fld, "version"))


def check_plate(c: Collector, blk: Mapping[str, Any], base: str, *,
                version: str) -> dict[str, Any]:
    """Check ``plate``; return what the hierarchy walk needs (well paths, acquisition ids)."""
    pf = join(base, "plate")
    plate = c.mapping(c.get(blk, "plate", base, required=True), pf)
    out: dict[str, Any] = {"wells": [], "acquisitions": None}
    if plate is None:
        return out
    _version_field(c, plate, pf, version)
    if "name" not in plate:
        c.add("recommended-field", join(pf, "name"), "is missing; expected the plate's name "
              "(SHOULD; the strict schema requires it)")
    c.string(c.get(plate, "name", pf, required=False), join(pf, "name"))
    c.integer(c.get(plate, "field_count", pf, required=False), join(pf, "field_count"),
          exclusive_minimum=0)
    rows = _names(c, plate, "rows", pf)
    cols = _names(c, plate, "columns", pf)
    out["acquisitions"] = _acquisitions(c, plate, pf)

    wf = join(pf, "wells")
    wells = c.array(c.get(plate, "wells", pf, required=True), wf, min_items=1)
    for i, w in enumerate(wells or []):
        f = join(wf, i)
        w = c.mapping(w, f)
        if w is None:
            continue
        path = c.string(c.get(w, "path", f, required=True), join(f, "path"),
                     pattern=f"{_ALNUM}/{_ALNUM}")
        ri = c.integer(c.get(w, "rowIndex", f, required=True), join(f, "rowIndex"), minimum=0)
        ci = c.integer(c.get(w, "columnIndex", f, required=True), join(f, "columnIndex"),
                   minimum=0)
        if path is not None:
            if path in out["wells"]:
                c.add("schema", join(f, "path"), f"expected each well once, found {path!r} "
                      "again")
            out["wells"].append(path)
        _check_well_position(c, f, path, ri, ci, rows, cols)
    return out


def _names(c: Collector, plate: Mapping[str, Any], key: str, pf: str) -> list[str | None] | None:
    f = join(pf, key)
    # name uniqueness (below) is stronger than the schema's uniqueItems on whole objects
    items = c.array(c.get(plate, key, pf, required=True), f, min_items=1)
    if items is None:
        return None
    names: list[str | None] = []
    for i, it in enumerate(items):
        it = c.mapping(it, join(f, i))
        if it is None:
            names.append(None)
            continue
        name = c.string(c.get(it, "name", join(f, i), required=True), join(join(f, i), "name"),
                     pattern=_ALNUM)
        if name is not None and name in names:
            c.add("schema", join(join(f, i), "name"), f"expected unique {key[:-1]} names, "
                  f"found {name!r} again")
        names.append(name)
    return names


def _check_well_position(c: Collector, f: str, path: str | None, ri: int | None,
                         ci: int | None, rows: list[str | None] | None,
                         cols: list[str | None] | None) -> None:
    if ri is not None and rows is not None and ri >= len(rows):
        c.add("plate-well-path", join(f, "rowIndex"), f"expected an index into the "
              f"{len(rows)} rows, found {ri}")
        return
    if ci is not None and cols is not None and ci >= len(cols):
        c.add("plate-well-path", join(f, "columnIndex"), f"expected an index into the "
              f"{len(cols)} columns, found {ci}")
        return
    if path is None or rows is None or cols is None or ri is None or ci is None:
        return
    row, col = rows[ri], cols[ci]
    if row is None or col is None:
        return
    if path != f"{row}/{col}":
        c.add("plate-well-path", join(f, "path"), f"expected row/column "
              f"{row + '/' + col!r} for rowIndex {ri} and columnIndex {ci}, found {path!r}")


def _acquisitions(c: Collector, plate: Mapping[str, Any], pf: str) -> list[int] | None:
    if "acquisitions" not in plate:
        return None
    af = join(pf, "acquisitions")
    items = c.array(plate["acquisitions"], af)
    ids: list[int] = []
    for i, acq in enumerate(items or []):
        f = join(af, i)
        acq = c.mapping(acq, f)
        if acq is None:
            continue
        aid = c.integer(c.get(acq, "id", f, required=True), join(f, "id"), minimum=0)
        if aid is not None:
            if aid in ids:
                c.add("plate-acquisitions", join(f, "id"), f"expected unique acquisition "
                      f"ids, found {aid} again")
            ids.append(aid)
        c.integer(c.get(acq, "maximumfieldcount", f, required=False),
              join(f, "maximumfieldcount"), exclusive_minimum=0)
        for key in ("starttime", "endtime"):
            c.integer(c.get(acq, key, f, required=False), join(f, key), minimum=0)
        for key in ("name", "description"):
            c.string(c.get(acq, key, f, required=False), join(f, key))
        for key in ("name", "maximumfieldcount"):
            if key not in acq:
                c.add("recommended-field", join(f, key), "is missing; expected it (SHOULD; "
                      "the strict schema requires it)")
    return ids


def check_well(c: Collector, blk: Mapping[str, Any], base: str, *, version: str,
               acquisitions: list[int] | None = None) -> list[str]:
    """Check ``well``; ``acquisitions`` are the plate's ids when known. Returns image paths."""
    wf = join(base, "well")
    well = c.mapping(c.get(blk, "well", base, required=True), wf)
    if well is None:
        return []
    _version_field(c, well, wf, version)
    imf = join(wf, "images")
    images = c.array(c.get(well, "images", wf, required=True), imf, min_items=1)
    paths: list[str] = []
    for i, im in enumerate(images or []):
        f = join(imf, i)
        im = c.mapping(im, f)
        if im is None:
            continue
        v06 = version.startswith("0.6")
        p = c.string(c.get(im, "path", f, required=True), join(f, "path"),
                     pattern=_FIELD_06 if v06 else _ALNUM)
        if p is not None and v06 and (set(p) == {"."} or p.startswith("__")):
            c.add("schema", join(f, "path"), "expected a field path that is not only dots and "
                  f"does not start with '__', found {p!r}")
            p = None
        if p is not None:
            if p in paths:
                c.add("schema", join(f, "path"), f"expected each field once, found {p!r} "
                      "again")
            paths.append(p)
        aid = c.integer(c.get(im, "acquisition", f, required=False), join(f, "acquisition"))
        if acquisitions is None or not acquisitions:
            continue
        if aid is None and "acquisition" not in im and len(acquisitions) > 1:
            c.add("plate-acquisitions", join(f, "acquisition"), "is missing; expected one "
                  f"of the plate's acquisition ids {acquisitions}")
        elif aid is not None and aid not in acquisitions:
            c.add("plate-acquisitions", join(f, "acquisition"), "expected one of the plate's "
                  f"acquisition ids {acquisitions}, found {aid}")
    return paths


def check_labels(c: Collector, blk: Mapping[str, Any], base: str) -> list[str]:
    """Check the ``labels`` group listing; return the label image paths."""
    lf = join(base, "labels")
    items = c.array(c.get(blk, "labels", base, required=True, rule="labels-group"), lf)
    paths: list[str] = []
    for i, p in enumerate(items or []):
        if not isinstance(p, str) or not p:
            c.add("labels-group", join(lf, i), f"expected a non-empty path string, found "
                  f"{p!r}")
        elif p in paths:
            c.add("labels-group", join(lf, i), f"expected each label image once, found {p!r} "
                  "again")
        else:
            paths.append(p)
    return paths


def check_bf2raw(c: Collector, blk: Mapping[str, Any], base: str) -> None:
    """Check ``bioformats2raw.layout`` (must be 3)."""
    key = "bioformats2raw.layout"
    v = c.get(blk, key, base, required=True)
    if v is not MISSING and (isinstance(v, bool) or v != 3):
        c.add("schema", join(base, key), f"expected 3, found {v!r}")


def check_series(c: Collector, blk: Mapping[str, Any], base: str, *, required: bool) -> list[str]:
    """Check the OME group's ``series`` list of image paths."""
    sf = join(base, "series")
    items = c.array(c.get(blk, "series", base, required=required), sf)
    paths: list[str] = []
    for i, p in enumerate(items or []):
        if c.string(p, join(sf, i)) is not None:
            paths.append(p)
    return paths
