"""Check group attributes against the official NGFF JSON schemas shipped with voxzarr.

ome-zarr-models (the maintained typed model of NGFF that checks 0.4 and 0.5) has no public
model of 0.6rc0, so 0.6rc0 attributes are checked against the official 0.6rc0 schemas, which
ship in ``voxzarr/ngff/schemas/0.6rc0`` (BSD-3, OME-NGFF specification) and are resolved
offline. jsonschema's messages ("... is not valid under any of the given schemas") are
rewritten to voxzarr's form: the JSON field, what was expected and what was found.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ._checks_base import Finding, found, join, json_type, short

__all__ = ["SCHEMA_VERSIONS", "schema_findings", "load_schema", "describe_error"]

#: versions checked with the bundled schemas
SCHEMA_VERSIONS = ("0.6rc0",)
_SOURCE = "ngff-schema"
_JSON_TYPES = {"object": "an object", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "a boolean",
               "null": "null"}


@functools.cache
def _schemas(version: str) -> tuple[dict[str, dict[str, Any]], Any]:
    """``({stem: schema}, registry)`` of the bundled schemas of ``version``."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    folder = resources.files("voxzarr.ngff").joinpath("schemas").joinpath(version)
    by_stem: dict[str, dict[str, Any]] = {}
    res = []
    for entry in folder.iterdir():
        if entry.name.endswith(".schema"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            by_stem[entry.name.removesuffix(".schema")] = doc
            res.append((doc["$id"], Resource.from_contents(doc,
                                                           default_specification=DRAFT202012)))
    return by_stem, Registry().with_resources(res)


def load_schema(version: str, name: str) -> dict[str, Any]:
    """The bundled schema ``name`` (file stem, e.g. ``"image"``) of NGFF ``version``."""
    return _schemas(version)[0][name]


@functools.cache
def _validator(version: str, name: str) -> Any:
    import jsonschema

    by_stem, registry = _schemas(version)
    return jsonschema.Draft202012Validator(by_stem[name], registry=registry)


def _schema_names(kind: str, blk: Mapping[str, Any]) -> tuple[str, ...]:
    if kind == "image":
        return ("image",)
    if kind == "label":
        return ("label", "image") if "multiscales" in blk else ("label",)
    if kind == "bioformats2raw":
        return ("bf2raw", "plate") if "plate" in blk else ("bf2raw",)
    return {"plate": ("plate",), "well": ("well",), "series": ("ome",),
            "scene": ("scene",), "transformations": ("scene",)}.get(kind, ())


def schema_findings(attrs: Mapping[str, Any], blk: Mapping[str, Any], *, version: str,
                    kind: str, path: str | None) -> list[Finding]:
    """Findings of the (non-strict) official schemas of ``kind`` on a group's attributes.

    Strict-schema rules are voxzarr's ``recommended`` rules, so strictness is applied once,
    by severity. A stand-alone document of coordinate systems and transformations
    (``kind="transformations"``) is checked as the body of a scene, as 0.6rc0 defines it.
    """
    if version not in SCHEMA_VERSIONS:
        return []
    doc: Any = attrs
    strip = 0
    if kind == "transformations":
        doc, strip = {"ome": {"version": version, "scene": attrs}}, 2
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for name in _schema_names(kind, blk):
        for err in _validator(version, name).iter_errors(doc):
            for leaf in _leaves(err):
                fld, msg = describe_error(leaf)
                parts = list(leaf.absolute_path)[strip:]
                fld = _field(parts, fld_suffix=fld)
                if (fld, msg) not in seen:
                    seen.add((fld, msg))
                    out.append(Finding("ngff-schema", path, fld, msg, _SOURCE))
    return out


def _field(parts: Sequence[Any], fld_suffix: str) -> str:
    fld = ""
    for p in parts:
        fld = join(fld, p)
    return join(fld, fld_suffix) if fld_suffix else fld


# ------------------------------------------------------------------ picking the real error
def _discriminator_failed(sub: Any, top: Any) -> bool:
    """Whether a union member failed on the member's kind (``type`` const, JSON type)."""
    rel = list(sub.absolute_path)[len(list(top.absolute_path)):]
    if sub.validator in ("const", "enum") and rel and rel[-1] == "type":
        return True
    return sub.validator == "type" and not rel


def _leaves(err: Any) -> list[Any]:
    """The errors worth reporting under a failed ``oneOf`` / ``anyOf``.

    Each union member reports why it failed; the member whose kind the data declares (its
    ``type`` const, its JSON type) is the one the data meant, so its errors are the real
    ones. When no member fits the declared kind, the union itself is reported.
    """
    if err.validator not in ("oneOf", "anyOf") or not err.context:
        return [err]
    branches: dict[Any, list[Any]] = defaultdict(list)
    for sub in err.context:
        branches[sub.relative_schema_path[0]].append(sub)
    meant = [subs for subs in branches.values()
             if not any(_discriminator_failed(s, err) for s in subs)]
    if not meant:
        return [err]
    best = min(meant, key=len)
    out: list[Any] = []
    for sub in best:
        out.extend(_leaves(sub))
    return out


# ------------------------------------------------------------------ messages
def _expected_type(schema: Any) -> str:
    t = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(t, str):
        return _JSON_TYPES.get(t, t)
    if isinstance(t, list):
        return " or ".join(_JSON_TYPES.get(x, x) for x in t)
    if isinstance(schema, Mapping) and "const" in schema:
        return repr(schema["const"])
    return "a value"


def _union_kinds(err: Any) -> list[str]:
    """The ``type`` consts the members of a failed union expected."""
    kinds: list[str] = []
    for sub in err.context or ():
        rel = list(sub.absolute_path)[len(list(err.absolute_path)):]
        if sub.validator == "const" and rel and rel[-1] == "type":
            if sub.validator_value not in kinds:
                kinds.append(sub.validator_value)
    return kinds


def describe_error(err: Any) -> tuple[str, str]:
    """(extra field under the error's path, message) for one jsonschema error."""
    v, val, inst = err.validator, err.validator_value, err.instance
    if v == "required":
        missing = [k for k in val if isinstance(inst, Mapping) and k not in inst]
        key = missing[0] if missing else str(val)
        props = err.schema.get("properties", {}) if isinstance(err.schema, Mapping) else {}
        want = _expected_type(props.get(key, {}))
        want = want if want != "a value" else "this required field"
        return key, f"is missing; expected {want} (the NGFF schema requires it)"
    if v == "type":
        return "", f"expected {_expected_type(err.schema)}, found {found(inst)}"
    if v == "const":
        return "", f"expected {val!r}, found {short(inst)}"
    if v == "enum":
        return "", f"expected one of {list(val)}, found {short(inst)}"
    if v == "minItems":
        return "", f"expected at least {val} item{'s' * (val != 1)}, found {len(inst)}"
    if v == "maxItems":
        return "", f"expected at most {val} item{'s' * (val != 1)}, found {len(inst)}"
    if v == "uniqueItems":
        return "", "expected unique items, found duplicates"
    if v == "minLength":
        want = "a non-empty string" if val == 1 else f"at least {val} characters"
        return "", f"expected {want}, found {short(inst)}"
    if v == "pattern":
        return "", f"expected a string matching {val}, found {short(inst)}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=",
              "exclusiveMaximum": "<"}[v]
        return "", f"expected a number {op} {val}, found {short(inst)}"
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in allowed) if isinstance(inst, Mapping) else []
        return "", f"expected only the keys {allowed}, found also {extra}"
    if v in ("contains", "minContains", "maxContains"):
        lo = err.schema.get("minContains", 1)
        hi = err.schema.get("maxContains", "any number")
        want = json.dumps(err.schema.get("contains"))
        return "", f"expected {lo} to {hi} items matching {want}, found {short(inst)}"
    if v in ("oneOf", "anyOf"):
        kinds = _union_kinds(err)
        typ = inst.get("type") if isinstance(inst, Mapping) else None
        if kinds:
            return "", f"expected type one of {kinds}, found {short(typ)}"
        if v == "oneOf" and not err.context:
            return "", "expected exactly one of the allowed forms, found it matches several"
        return "", f"expected one of the allowed forms, found {json_type(inst)} matching none"
    if v == "not":
        return "", f"expected a value not matching {json.dumps(val)}, found {short(inst)}"
    return "", f"expected what the NGFF schema's {v!r} asks ({short(val)}), found {short(inst)}"
