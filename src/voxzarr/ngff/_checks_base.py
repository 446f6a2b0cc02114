"""Shared pieces of the NGFF validator: rule table, findings and JSON-shape helpers.

Every check records a :class:`Finding` under a rule id from :data:`RULES`. Whether a finding
is an error or a warning is decided once, in :mod:`voxzarr.ngff.validate`, from the rule's
tier and the caller's ``strict`` / ``schema_only`` options, so the checks themselves never
need to know about those options.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RULES", "TIERS", "Finding", "Collector", "Ref", "MISSING", "tier_of", "join",
           "short", "found", "json_type"]

#: Tiers, strongest first. ``schema``: what the official JSON schemas (and the conformance
#: suites shipped with them) reject. ``spec``: MUST rules of the specification text that the
#: schemas cannot express. ``recommended``: SHOULD rules, errors only with ``strict=True``.
#: ``advice``: never an error (things that work but hurt interoperability or voxzarr).
#: ``unsupported``: no verdict at all; the data is in a version validate cannot check.
TIERS = ("schema", "spec", "recommended", "advice", "unsupported")

#: rule id -> (tier, one-line description). spec/validation.md documents the same table.
RULES: dict[str, tuple[str, str]] = {
    "store": ("schema", "the location opens as a zarr group"),
    "not-ngff": ("schema", "the group carries NGFF metadata of a known kind"),
    "zarr-metadata": ("schema", "zarr.json / .zgroup / .zarray documents are well-formed"),
    "version": ("schema", "declared NGFF versions are known ones and agree with the hint"),
    "unsupported-version": ("unsupported", "the declared NGFF version is one validate cannot "
                                           "check (0.1-0.3, or newer than 0.6rc0)"),
    "ome-namespace": ("schema", "0.5 / 0.6rc0 metadata sits under 'ome' with 'version'; 0.4 is "
                                "flat"),
    "schema": ("schema", "JSON types, required keys, enums, patterns, list sizes"),
    "ngff-schema": ("schema", "errors found only by the official NGFF JSON schemas (0.6rc0)"),
    "ome-zarr-models": ("schema", "errors found only by ome-zarr-models"),
    "ome-zarr-models-failed": ("advice", "ome-zarr-models crashed instead of answering"),
    "axes-unique": ("schema", "axis names are unique"),
    "axes-order": ("spec", "axes ordered time, channel or custom, space"),
    "axes-count": ("spec", "at most one time axis and one channel-or-custom axis"),
    "transform-order": ("spec", "exactly one scale, then at most one translation"),
    "transform-length": ("spec", "scale and translation have one value per axis"),
    "transform-values": ("spec", "scale values finite and > 0, translations finite"),
    "levels-order": ("spec", "levels ordered from highest to lowest resolution"),
    "dataset-paths": ("spec", "dataset paths unique within a multiscale"),
    "coordinate-systems": ("spec", "0.6: coordinate system names non-empty and unique"),
    "multiscale-transforms": ("spec", "0.6: every dataset maps to one intrinsic coordinate "
                                      "system by one scale, identity or sequence of one "
                                      "scale and one translation; multiscale transforms lead "
                                      "from the intrinsic system to another"),
    "transform-refs": ("spec", "0.6: transformation input / output name coordinate systems "
                               "that exist"),
    "transform-params": ("spec", "0.6: parameters fit the input / output dimensionality "
                                 "(identity, mapAxis, projectAxis, affine, rotation, "
                                 "byDimension, bijection)"),
    "transform-sequence": ("spec", "0.6: a sequence is non-empty and holds no sequence"),
    "transform-names": ("spec", "0.6: transformation names are unique"),
    "transform-path": ("spec", "0.6: groups and arrays a transformation refers to by path "
                               "exist, with the dimensionality it needs"),
    "dataset-input": ("spec", "0.6: a dataset transformation's input path is the dataset "
                              "path"),
    "omero-color": ("spec", "omero channel colours are 6-digit hex RGB"),
    "label-values": ("spec", "label-value integers, unique within colors / properties"),
    "plate-well-path": ("spec", "well path is rows[rowIndex]/columns[columnIndex]"),
    "plate-acquisitions": ("spec", "acquisition ids unique; wells refer to known ones"),
    "labels-group": ("spec", "labels group lists label image paths (0.5: with ome.version)"),
    "label-image": ("spec", "label images: multiscales, integer dtype, same level count"),
    "hcs-hierarchy": ("spec", "wells a plate lists and fields a well lists exist as groups"),
    "bf2raw-series": ("spec", "bioformats2raw series images exist where listed / numbered"),
    "zarr-format": ("spec", "0.4 on zarr v2, 0.5 on zarr v3"),
    "version-consistency": ("spec", "one NGFF version throughout a hierarchy"),
    "array-missing": ("spec", "each dataset path is an array"),
    "array-ndim": ("spec", "array dimensionality equals the number of axes"),
    "array-dtype": ("spec", "one dtype across the levels"),
    "array-shape-order": ("spec", "level shapes never grow"),
    "dimension-names": ("spec", "0.5: array dimension_names equal the axis names"),

    "unit": ("recommended", "units are UDUNITS names of the axis' kind"),
    "axis-type": ("recommended", "axes declare a type"),
    "recommended-field": ("recommended", "fields the strict schemas require are present"),
    "label-shape": ("recommended", "label dims equal the image's or 1"),
    "omero-channels": ("advice", "omero.channels matches the channel axis length"),
    "label-colors-properties": ("advice", "colors and properties list the same label values"),
    "voxzarr-axes": ("advice", "axes named t, c, z, y, x with matching types (voxzarr opens "
                               "only these)"),
    "voxzarr-read": ("advice", "0.6: vz.open_image maps the image to pixel-centre coordinates "
                               "(scale, translation, identity or mapAxis to named axes)"),
}

#: Rules whose tier differs by NGFF version. The 0.5 conformance suite rejects a well path
#: with column before row; the 0.4 suite's own fixtures are written that way and pass.
#: The 0.6rc0 schemas require scale values > 0 (earlier schemas did not).
_VERSION_TIERS: dict[tuple[str, str], str] = {("plate-well-path", "0.5"): "schema",
                                              ("transform-values", "0.6rc0"): "schema"}


def tier_of(rule: str, version: str | None) -> str:
    """The tier of ``rule`` for NGFF ``version``."""
    return _VERSION_TIERS.get((rule, str(version)), RULES[rule][0])


@dataclass(frozen=True)
class Finding:
    """One problem found, before severity is decided."""

    rule: str
    path: str | None
    field: str
    message: str
    source: str = "voxzarr"


def join(base: str, key: str | int) -> str:
    """JSON path of ``key`` under ``base``: ``multiscales[0].axes``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _is_int(v: Any) -> bool:
    # JSON Schema counts 1.0 as an integer; bool is never a number in JSON.
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


@dataclass(frozen=True)
class Ref:
    """Something a group's metadata points at by path, checked when a store is walked.

    ``kind`` is ``"group"`` (a coordinate system ``name`` in the group at ``path``) or
    ``"array"`` (an array at ``path`` with ``ndim`` dimensions when known). ``path`` is
    relative to the group holding the metadata, or to the store root when it starts with /.
    """

    field: str
    kind: str
    path: str
    name: str | None = None
    ndim: int | None = None


@dataclass
class Collector:
    """Collects findings for one group; small typed helpers for JSON shape checks."""

    path: str | None
    version: str | None
    findings: list[Finding] = field(default_factory=list)
    #: paths the metadata refers to (0.6 transformations), for the store walk
    refs: list[Ref] = field(default_factory=list)

    def add(self, rule: str, fld: str, message: str) -> None:
        if rule not in RULES:  # pragma: no cover - programming error
            raise KeyError(rule)
        self.findings.append(Finding(rule, self.path, fld, message))

    # -- shape helpers; each returns the value when it has the right shape, else None
    def get(self, obj: Mapping[str, Any], key: str, fld: str, *, required: bool,
            rule: str = "schema", why: str = "") -> Any:
        if key in obj:
            return obj[key]
        if required:
            self.add(rule, join(fld, key), f"is missing; expected {why or 'this required field'}")
        return MISSING

    def mapping(self, v: Any, fld: str) -> Mapping[str, Any] | None:
        if v is MISSING:
            return None
        if not isinstance(v, Mapping):
            self.add("schema", fld, f"expected an object, found {found(v)}")
            return None
        return v

    def array(self, v: Any, fld: str, *, min_items: int = 0, max_items: int | None = None,
             unique: bool = False) -> list[Any] | None:
        if v is MISSING:
            return None
        if not isinstance(v, list | tuple):
            self.add("schema", fld, f"expected a list, found {found(v)}")
            return None
        if len(v) < min_items:
            what = "a non-empty list" if min_items == 1 else f"at least {min_items} items"
            self.add("schema", fld, f"expected {what}, found {len(v)} items")
        if max_items is not None and len(v) > max_items:
            self.add("schema", fld, f"expected at most {max_items} items, found {len(v)}")
        if unique:
            seen: dict[str, int] = {}
            for i, item in enumerate(v):
                key = _canon(item)
                if key in seen:
                    self.add("schema", join(fld, i), f"expected unique items, found a "
                             f"repeat of item {seen[key]} ({_short(item)})")
                else:
                    seen[key] = i
        return list(v)

    def string(self, v: Any, fld: str, *, pattern: str | None = None,
            enum: tuple[str, ...] | None = None) -> str | None:
        if v is MISSING:
            return None
        if not isinstance(v, str):
            self.add("schema", fld, f"expected a string, found {found(v)}")
            return None
        if enum is not None and v not in enum:
            self.add("schema", fld, f"expected one of {list(enum)}, found {v!r}")
            return None
        if pattern is not None and not re.fullmatch(pattern, v):
            self.add("schema", fld, f"expected a string matching {pattern}, found {v!r}")
            return None
        return v

    def integer(self, v: Any, fld: str, *, minimum: int | None = None,
            exclusive_minimum: int | None = None) -> int | None:
        if v is MISSING:
            return None
        if not _is_int(v):
            self.add("schema", fld, f"expected an integer, found {found(v)}")
            return None
        if minimum is not None and v < minimum:
            self.add("schema", fld, f"expected an integer >= {minimum}, found {v}")
            return None
        if exclusive_minimum is not None and v <= exclusive_minimum:
            self.add("schema", fld, f"expected an integer > {exclusive_minimum}, found {v}")
            return None
        return int(v)

    def number(self, v: Any, fld: str) -> float | None:
        if v is MISSING:
            return None
        if not _is_num(v):
            self.add("schema", fld, f"expected a number, found {found(v)}")
            return None
        return float(v)

    def numbers(self, v: Any, fld: str, *, min_items: int = 0) -> list[float] | None:
        items = self.array(v, fld, min_items=min_items)
        if items is None:
            return None
        out = [self.number(x, join(fld, i)) for i, x in enumerate(items)]
        return None if any(x is None for x in out) else [float(x) for x in out]  # type: ignore[arg-type]


def short(v: Any) -> str:
    """A value as it appears in a message: its repr, cut to 60 characters."""
    text = repr(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


_short = short


def json_type(v: Any) -> str:
    """The JSON type of ``v`` with its article: ``"a string"``, ``"an object"``, ``"null"``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list | tuple):
        return "a list"
    return type(v).__name__


def found(v: Any) -> str:
    """What a message says was found: the value and its JSON type."""
    return f"{short(v)} ({json_type(v)})"
