"""Run ome-zarr-models' pydantic models on group attributes and turn errors into findings.

ome-zarr-models is the maintained typed model of NGFF 0.4 / 0.5 (its 0.6 model is private
and unreleased, so 0.6rc0 is checked against the official schemas instead). Its errors are
mapped onto voxzarr rule ids where they restate a rule voxzarr checks itself (so a rule keeps
one tier and one message); anything else it finds is kept as rule ``"ome-zarr-models"``, its
pydantic message rewritten to say what was expected and what was found.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ._checks_base import Finding, found, join, short

__all__ = ["omz_findings", "classify", "describe"]

# (pattern in ome-zarr-models' message, voxzarr rule id)
_CLASSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), rule)
    for p, rule in (
        (r"length of axes does not match the dimensionality", "transform-length"),
        (r"inconsistent dimensionality", "transform-length"),
        (r"expected a scale or \(scale, translation\)", "transform-order"),
        (r"length of transforms", "transform-order"),
        (r"lower resolution", "levels-order"),
        (r"axis names must be unique", "axes-unique"),
        (r"time axis must be at the beginning|space axes must be at the end", "axes-order"),
        (r"length of (time|channel|custom) axes", "axes-count"),
        (r"not in list of (rows|columns)|does not contain a single '/'", "plate-well-path"),
        (r"inconsistent `label_value`", "label-colors-properties"),
        (r"duplicated label-value", "label-values"),
    )
)


# ome-zarr-models errors that contradict the specification, dropped: (field, message).
_SPEC_ALLOWS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    # "the objects in this array MAY contain an rgba key" (image-label colors)
    (re.compile(r"\.colors\[\d+\]\.rgba$"), re.compile(r"^Field required$")),
)


def classify(message: str) -> str | None:
    """The voxzarr rule an ome-zarr-models message restates, if any."""
    for pattern, rule in _CLASSES:
        if pattern.search(message):
            return rule
    return None


def _model(version: str, kind: str, blk: Mapping[str, Any]) -> tuple[type[BaseModel], Any,
                                                                       str] | None:
    """(model class, data to validate, field prefix inside ``blk``) or ``None``."""
    if version == "0.4":
        from ome_zarr_models.v04 import bioformats2raw, hcs, image, image_label, labels, well
        from ome_zarr_models.v04.image_label_types import Label
    elif version == "0.5":
        from ome_zarr_models.v05 import (  # type: ignore[no-redef]
            bioformats2raw,
            hcs,
            image,
            image_label,
            labels,
            well,
        )
        from ome_zarr_models.v05.image_label_types import Label  # type: ignore[no-redef]
    else:
        return None
    table: dict[str, Callable[[], tuple[type[BaseModel], Any, str]]] = {
        "image": lambda: (image.ImageAttrs, blk, ""),
        "labels": lambda: (labels.LabelsAttrs, blk, ""),
        "plate": lambda: (hcs.HCSAttrs, blk, ""),
        "well": lambda: (well.WellAttrs, blk, ""),
        "bioformats2raw": lambda: (bioformats2raw.BioFormats2RawAttrs, blk, ""),
    }
    if kind == "label":
        if "multiscales" in blk:
            return image_label.ImageLabelAttrs, blk, ""
        # an image-label block on its own (as the label schema and its suite check it)
        return Label, blk.get("image-label"), "image-label"
    make = table.get(kind)
    return make() if make else None


def omz_findings(blk: Mapping[str, Any], *, version: str, kind: str, base: str,
                 path: str | None) -> list[Finding]:
    """Validate ``blk`` (the OME block of a group) with ome-zarr-models."""
    picked = _model(version, kind, blk)
    if picked is None:
        return []
    model, data, prefix = picked
    root = join(base, prefix) if prefix else base
    with warnings.catch_warnings():
        # voxzarr reports what these warnings say (e.g. translation before scale) itself
        warnings.simplefilter("ignore")
        try:
            model.model_validate(data)
        except ValidationError as err:
            found = [_finding(e, data, root, path) for e in err.errors()]
            return [f for f in found if not any(fp.search(f.field) and mp.search(f.message)
                                                for fp, mp in _SPEC_ALLOWS)]
        except Exception as err:  # noqa: BLE001 - a validator crashed (e.g. IndexError on
            # scale vectors of different lengths): that is no verdict on the data
            msg = f"ome-zarr-models could not check this group ({type(err).__name__}: {err})"
            return [Finding("ome-zarr-models-failed", path, root, msg, "ome-zarr-models")]
    return []


def _finding(e: Any, data: Any, root: str, path: str | None) -> Finding:
    # pydantic's loc mixes JSON keys with its own labels (union members, validator names):
    # keep a part only where it indexes the data, or where it names a missing last key.
    fld, node = root, data
    loc = list(e.get("loc", ()))
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list | tuple) and part < len(node):
            fld, node = join(fld, part), node[part]
        elif isinstance(part, str) and isinstance(node, Mapping) and part in node:
            fld, node = join(fld, part), node[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(node, Mapping):
            fld = join(fld, part)
    raw = str(e.get("msg", "invalid")).removeprefix("Value error, ").replace("\n", "; ")
    msg = describe(e, raw)
    return Finding(classify(raw) or "ome-zarr-models", path, fld, msg, "ome-zarr-models")


_TYPES = {"string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
          "int_from_float": "an integer", "float_type": "a number",
          "float_parsing": "a number", "bool_type": "a boolean", "bool_parsing": "a boolean",
          "list_type": "a list", "tuple_type": "a list", "dict_type": "an object",
          "model_type": "an object", "model_attributes_type": "an object",
          "none_required": "null"}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
_GOT = re.compile(r"^(?P<want>.*?)[.;,]?\s*(?:Got|got)\s+(?P<got>.*?)\.?$")


def describe(e: Mapping[str, Any], msg: str) -> str:
    """A pydantic error of ome-zarr-models as voxzarr says it: what was expected, what found.

    pydantic's own messages ("Input should be a valid string", "Field required") never
    show the value at fault; ome-zarr-models' validators mostly end in "Got ...".
    """
    kind = str(e.get("type", ""))
    ctx = e.get("ctx") or {}
    inp = e.get("input")
    if kind == "missing":
        return "is missing; expected it (ome-zarr-models requires it)"
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, found {found(inp)}"
    if kind == "literal_error" and "expected" in ctx:
        return f"expected {ctx['expected']}, found {short(inp)}"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        side = "at least" if kind == "too_short" else "at most"
        return f"expected {side} {bound} items, found {ctx['actual_length']}"
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        key, op = _BOUNDS[kind]
        return f"expected a number {op} {ctx[key]}, found {short(inp)}"
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return f"expected a string matching {ctx['pattern']}, found {short(inp)}"
    m = _GOT.match(msg)
    if m and m.group("want"):
        return f"expected: {m.group('want')}; found {m.group('got')}"
    return f"expected: {msg}; found {short(inp)}"
