"""Say what is wrong with a zarr node that zarr-python refuses to open.

zarr-python's own errors name neither the file nor the key and sometimes mislead ("Invalid
zarr_format. Expected one of 2 or 3. Got 2." for the *string* ``"2"``; a ``KeyError`` that
reads as "does not exist" for an array whose metadata lacks a key). Here the raw metadata
documents (``zarr.json``, ``.zgroup``, ``.zarray``, ``.zattrs``) are read and checked key by
key, so each finding names the document, the JSON field, what was expected and what was found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ._checks_base import Finding, found, short

__all__ = ["diagnose"]

_V3_ARRAY_KEYS = ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value",
                  "codecs")
_V2_ARRAY_KEYS = ("shape", "chunks", "dtype", "compressor", "fill_value", "order", "filters",
                  "zarr_format")


def _read(store: Any, key: str) -> bytes | None:
    try:
        buf = sync(store.get(key, prototype=default_buffer_prototype()))
    except Exception:  # unreadable counts as absent; the caller reports what it can
        return None
    return None if buf is None else buf.to_bytes()


def _key(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def diagnose(store: Any, prefix: str, where: str, *, expect: str | None = None) -> list[Finding]:
    """Findings on the metadata documents of the node at ``prefix`` in ``store``.

    ``where`` is the node's location as shown to the user; ``expect`` is ``"group"`` or
    ``"array"`` when the caller knows which the node must be. Returns ``[]`` when the
    documents look sound (the problem lies elsewhere).
    """
    out: list[Finding] = []

    def add(doc: str, fld: str, msg: str) -> None:
        out.append(Finding("zarr-metadata", f"{where.rstrip('/')}/{doc}", fld, msg))

    docs = {n: _read(store, _key(prefix, n)) for n in ("zarr.json", ".zgroup", ".zarray",
                                                       ".zattrs")}
    if all(v is None for v in docs.values()):
        what = expect or "zarr group or array"
        out.append(Finding("store", where, "", f"expected a {what} here, found no zarr "
                           "metadata (no zarr.json, .zgroup or .zarray)"))
        return out
    parsed: dict[str, Any] = {}
    for name, raw in docs.items():
        if raw is None:
            continue
        try:
            parsed[name] = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            add(name, "", f"expected a JSON document, found text that does not parse ({err})")
    for name, doc in parsed.items():
        if not isinstance(doc, Mapping):
            add(name, "", f"expected a JSON object, found {found(doc)}")
    if "zarr.json" in parsed and isinstance(parsed["zarr.json"], Mapping):
        _v3(parsed["zarr.json"], add, expect)
    elif ".zarray" in parsed and isinstance(parsed[".zarray"], Mapping):
        _v2(parsed[".zarray"], ".zarray", add, "array", expect)
    elif ".zgroup" in parsed and isinstance(parsed[".zgroup"], Mapping):
        _v2(parsed[".zgroup"], ".zgroup", add, "group", expect)
    return out


def _format(doc: Mapping[str, Any], name: str, want: int, add: Any) -> None:
    if "zarr_format" not in doc:
        add(name, "zarr_format", f"is missing; expected {want}")
    elif doc["zarr_format"] != want or isinstance(doc["zarr_format"], bool | float):
        add(name, "zarr_format", f"expected {want} (an integer), found "
            f"{found(doc['zarr_format'])}")


def _v3(doc: Mapping[str, Any], add: Any, expect: str | None) -> None:
    _format(doc, "zarr.json", 3, add)
    nt = doc.get("node_type")
    if nt not in ("group", "array"):
        add("zarr.json", "node_type", f"expected 'group' or 'array', found "
            f"{short(nt) if 'node_type' in doc else 'nothing'}")
        return
    if expect is not None and nt != expect:
        add("zarr.json", "node_type", f"expected {expect!r}, found {nt!r}")
    if "attributes" in doc and not isinstance(doc["attributes"], Mapping):
        add("zarr.json", "attributes", f"expected an object, found {found(doc['attributes'])}")
    if nt == "array":
        for key in _V3_ARRAY_KEYS:
            if key not in doc:
                add("zarr.json", key, "is missing; expected it (zarr v3 array metadata "
                    "requires it)")
        _shape(doc, "zarr.json", add)


def _v2(doc: Mapping[str, Any], name: str, add: Any, nt: str, expect: str | None) -> None:
    _format(doc, name, 2, add)
    if expect is not None and nt != expect:
        add(name, "", f"expected a zarr {expect}, found a zarr {nt}")
    if nt == "array":
        for key in _V2_ARRAY_KEYS:
            if key not in doc:
                add(name, key, "is missing; expected it (zarr v2 array metadata requires "
                    "it)")
        _shape(doc, name, add)


def _shape(doc: Mapping[str, Any], name: str, add: Any) -> None:
    shape = doc.get("shape")
    if "shape" in doc and not (isinstance(shape, list) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        add(name, "shape", f"expected a list of non-negative integers, found {found(shape)}")
