"""Validate OME-Zarr (NGFF 0.4, 0.5 and 0.6rc0): metadata, hierarchy and arrays.

Two sources of findings meet here. An outside reference checks each group's attributes:
ome-zarr-models (the maintained typed model of NGFF) for 0.4 and 0.5, and the official JSON
schemas for 0.6rc0, which ome-zarr-models does not model yet (they ship with voxzarr).
voxzarr's own checks cover what the official JSON schemas express plus the specification's
rules that no schema can (transform order and vector lengths, axis order, finite positive
scales, resolution order, units, 0.6 coordinate-system references and transformation
parameters, and everything that needs the arrays: dimensionality, one dtype, shrinking
shapes, ``dimension_names``, label dtypes and level counts). Where both report the same rule,
voxzarr's finding stands, so a rule has one tier and one message. Every message says what was
expected and what was found; every issue names the store path and the JSON field.
A version validate cannot check is reported as unsupported, never as invalid.
``spec/validation.md`` lists every rule.

Examples
--------
>>> import voxzarr as vz
>>> print(vz.validate("cells.ome.zarr").message)        # doctest: +SKIP
valid NGFF 0.5 image (cells.ome.zarr)
>>> r = vz.validate({"ome": {"version": "0.5", "multiscales": []}})
>>> r.valid, str(r.errors[0])
(False, 'ome.multiscales: expected a non-empty list, found 0 items')
>>> vz.validate({"ome": {"version": "0.7", "multiscales": []}}).status
'unsupported'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import zarr

from .. import _store
from ..errors import MetadataError, StoreError, VoxzarrError
from ._checks_attrs import KINDS, VALIDATED, check_attrs, normalize_kind
from ._checks_base import RULES, Finding, tier_of
from ._checks_raw import diagnose
from ._checks_store import walk

__all__ = ["Issue", "ValidationResult", "validate", "load_json", "RULES", "KINDS",
           "VALIDATED"]

Severity = Literal["error", "warning"]
Status = Literal["valid", "invalid", "unsupported"]
#: findings of outside references, dropped where voxzarr reports the same thing itself
_OUTSIDE = ("ome-zarr-models", "ngff-schema")


@dataclass(frozen=True)
class Issue:
    """One problem: where (``path`` in the store, JSON ``field``), what, how serious.

    ``rule`` is the id from :data:`RULES`; ``source`` is ``"voxzarr"``,
    ``"ome-zarr-models"`` or ``"ngff-schema"`` (the official JSON schemas).
    """

    path: str | None
    field: str
    message: str
    severity: Severity = "error"
    rule: str = "schema"
    source: str = "voxzarr"

    def __str__(self) -> str:
        where = [p for p in (self.path, self.field) if p]
        return ": ".join([*where, self.message])

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "field": self.field, "message": self.message,
                "severity": self.severity, "rule": self.rule, "source": self.source}


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :func:`validate`. Truthy when valid; ``issues`` lists errors and warnings.

    ``status`` is ``"valid"``, ``"invalid"`` or ``"unsupported"``. Unsupported is no verdict
    either way: the data declares an NGFF version validate cannot check, so ``valid`` is
    ``False`` and the one issue, of rule ``unsupported-version``, says which versions are.
    """

    valid: bool
    issues: tuple[Issue, ...]
    version: str | None = None
    kind: str | None = None
    path: str | None = None

    @property
    def status(self) -> Status:
        if self.valid:
            return "valid"
        if any(i.rule == "unsupported-version" for i in self.issues):
            return "unsupported"
        return "invalid"

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def message(self) -> str:
        """One summary line, then one line per error and per warning."""
        what = " ".join(p for p in ("NGFF", self.version, self.kind) if p)
        where = f" ({self.path})" if self.path else ""
        ne, nw = len(self.errors), len(self.warnings)
        counts = ", ".join(x for x in (_plural(ne, "error") if ne else "",
                                       _plural(nw, "warning") if nw else "") if x)
        if self.status == "unsupported":
            why = next(i for i in self.issues if i.rule == "unsupported-version")
            return f"unsupported {what}{where}: {why.message}"
        head = f"{self.status} {what}{where}"
        head += f": {counts}" if counts else ""
        lines = [head]
        lines += [f"  error: {i}" for i in self.errors]
        lines += [f"  warning: {i}" for i in self.warnings]
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        """``{"valid", "status", "message", "version", "kind", "issues"}``, JSON-ready."""
        return {"valid": self.valid, "status": self.status, "message": self.message,
                "version": self.version, "kind": self.kind,
                "issues": [i.to_dict() for i in self.issues]}

    def raise_for_errors(self) -> None:
        """Raise on the first error (:class:`MetadataError`, or :class:`StoreError` when the
        store itself cannot be read), naming its path and field."""
        errs = self.errors
        if not errs:
            return
        first = errs[0]
        more = f" (and {len(errs) - 1} more error{'s' * (len(errs) > 2)})" if len(errs) > 1 else ""
        cls = StoreError if first.rule == "store" else MetadataError
        raise cls(first.message + more, path=first.path, field=first.field or None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def validate(
    source: Any,
    *,
    version: str | None = None,
    kind: str | None = None,
    strict: bool = False,
    schema_only: bool = False,
    raise_on_error: bool = False,
    storage_options: dict | None = None,
) -> ValidationResult:
    """Validate an OME-Zarr store, group, JSON file or a group's attributes.

    Parameters
    ----------
    source
        A store location (local path, ``.zip``, fsspec URL), a zarr store or
        :class:`zarr.Group`: the whole hierarchy is walked and the arrays are checked too.
        A ``.json`` file or a mapping is checked as one group's attributes: a ``.zattrs``
        dict, a ``zarr.json`` document, or 0.5 attributes ``{"ome": {...}}``.
    version
        ``"0.4"``, ``"0.5"`` or ``"0.6rc0"`` to check against that version; default: what
        the metadata declares (``ome`` nesting without a version means 0.5, flat attributes
        0.4). A declared version validate cannot check (0.1-0.3, or newer than 0.6rc0) gives
        an ``"unsupported"`` result, not an invalid one.
    kind
        ``image``, ``label``, ``labels``, ``plate``, ``well``, ``bioformats2raw``,
        ``series``, ``scene`` (0.6rc0), or ``transformations`` (a 0.6rc0 document of
        ``coordinateSystems`` and ``coordinateTransformations``, as the spec's
        transformation examples are); default: detected from the keys present.
    strict
        Also require what NGFF recommends (SHOULD): the fields the official strict schemas
        require (``name``, ``type``, ``metadata``, versions, label ``colors``, plate
        ``name``, acquisition ``name`` / ``maximumfieldcount``), typed axes, and units
        spelled as UDUNITS names of the axis' kind (``"um"`` fails, ``"micrometer"``
        passes). Without it these are warnings.
    schema_only
        Make errors only of what the official JSON schemas and their conformance suites
        reject; voxzarr's checks of the specification text become warnings. This gives the
        verdict the NGFF test suites state; the default also enforces the spec text.
    raise_on_error
        Raise :class:`~voxzarr.errors.MetadataError` (naming path and field) on the first
        error instead of returning an invalid result.
    storage_options
        For fsspec URLs.

    Returns
    -------
    ValidationResult
        ``valid``, ``status``, ``message`` and ``issues`` (each with ``path``, ``field``,
        ``message``, ``severity`` and ``rule``).
    """
    if version is not None and version not in VALIDATED:
        raise MetadataError(f"expected a version validate checks ({', '.join(VALIDATED)}), "
                            f"found {version!r}", field="version")
    try:
        kind = normalize_kind(kind)
    except ValueError as err:
        raise MetadataError(str(err), field="kind") from None

    if isinstance(source, Mapping):
        findings, v, k = _check_document(source, None, version, kind)
        where = None
    else:
        where = _display(source)
        path = _store.local_path(source) if isinstance(source, str | os.PathLike) else None
        if path is not None and path.is_file() and path.suffix == ".json":
            findings, v, k = _check_document(load_json(path), where, version, kind)
        else:
            findings, v, k = _check_store(source, where, version, kind, storage_options)
    issues = _merge(findings, version=v, strict=strict, schema_only=schema_only)
    result = ValidationResult(not any(i.severity == "error" for i in issues), issues, v, k,
                              where)
    if raise_on_error:
        result.raise_for_errors()
    return result


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, dropping whole-line ``//`` comments (as in the NGFF examples)."""
    text = Path(path).read_text(encoding="utf-8")
    text = re.sub(r"(?m)^\s*//.*$", "", text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise MetadataError(f"is not valid JSON ({err})", path=path) from None


def _display(source: Any) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, zarr.Group):
        return str(source.store_path)
    return str(source)


def _check_document(doc: Mapping[str, Any], where: str | None, version: str | None,
                    kind: str | None) -> tuple[list[Finding], str | None, str | None]:
    zarr_format = None
    attrs: Any = doc
    if "zarr_format" in doc and "node_type" in doc:  # a whole zarr.json document
        zarr_format = doc.get("zarr_format")
        if doc.get("node_type") != "group":
            f = Finding("not-ngff", where, "node_type", "expected 'group' (NGFF metadata lives on "
                        f"groups), found {doc.get('node_type')!r}")
            return [f], version, kind
        attrs = doc.get("attributes", {})
    rep = check_attrs(attrs, path=where, version=version, kind=kind,
                      zarr_format=zarr_format if isinstance(zarr_format, int) else None)
    return rep.findings, rep.version, rep.kind


def _check_store(source: Any, where: str, version: str | None, kind: str | None,
                 storage_options: dict | None) -> tuple[list[Finding], str | None, str | None]:
    try:
        root = _store.open_root(source, storage_options=storage_options)
    except VoxzarrError as err:
        return _unopenable(source, where, err, storage_options), version, kind
    return walk(root, where, version=version, kind=kind)


def _unopenable(source: Any, where: str, err: VoxzarrError,
                storage_options: dict | None) -> list[Finding]:
    """What is wrong with a root zarr cannot open, from its raw metadata documents."""
    try:
        store = _store.open_store(source, mode="r", storage_options=storage_options)
    except VoxzarrError:
        store = None
    if store is not None:
        prefix = store.path if isinstance(store, zarr.storage.StorePath) else ""
        raw = store.store if isinstance(store, zarr.storage.StorePath) else store
        found = diagnose(raw, prefix, where, expect="group")
        if found:
            return found
    # nothing there at all (or a store that cannot even be listed)
    msg = err.message
    if msg in ("no such file or directory", "no such file"):
        msg = "expected a zarr group here, found no such file or directory"
    elif "expected" not in msg:
        msg = f"expected a zarr group here, found a location that cannot be opened ({msg})"
    return [Finding("store", where, err.field or "", msg)]


def _severity(tier: str, *, strict: bool, schema_only: bool) -> Severity:
    if tier in ("schema", "unsupported"):
        return "error"
    if tier == "spec":
        return "warning" if schema_only else "error"
    if tier == "recommended":
        return "error" if strict else "warning"
    return "warning"


def _related(a: str, b: str) -> bool:
    """Whether one JSON field path contains the other."""
    if not a or not b or a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return long_.startswith(short) and long_[len(short)] in ".["


def _restaters(f: Finding, own: list[Finding], version: str | None) -> list[Finding]:
    """voxzarr's findings that repeat an outside reference's finding ``f`` (maybe none)."""
    same_place = [o for o in own if o.path == f.path]
    if f.rule not in _OUTSIDE:  # already mapped onto a voxzarr rule
        same = [o for o in same_place if o.rule == f.rule]
        if same:
            return same
    # pydantic also reports the other members of a union ("path: Field required" beside a
    # bad "scale"), so a finding one level up counts as the same place
    near = (f.field, _parent(f.field))
    return [o for o in same_place if tier_of(o.rule, version) in ("schema", "spec")
            and any(_related(o.field, x) for x in near)]


def _parent(fld: str) -> str:
    cut = max(fld.rfind("."), fld.rfind("["))
    return fld[:cut] if cut > 0 else ""


def _merge(findings: list[Finding], *, version: str | None, strict: bool,
           schema_only: bool) -> tuple[Issue, ...]:
    own = [f for f in findings if f.source == "voxzarr"]
    # a spec-text finding the official schema also makes is a schema finding there
    promoted: set[int] = set()
    dropped: set[int] = set()
    for k, f in enumerate(findings):
        if f.source == "voxzarr":
            continue
        same = _restaters(f, own, version)
        if same:
            dropped.add(k)
            if f.source == "ngff-schema":
                promoted.update(id(o) for o in same)
    seen: set[tuple[str | None, str, str]] = set()
    out: list[Issue] = []
    for k, f in enumerate(findings):
        if k in dropped:
            continue
        key = (f.path, f.field, f.message)
        if key in seen:
            continue
        seen.add(key)
        tier = "schema" if id(f) in promoted else tier_of(f.rule, version)
        sev = _severity(tier, strict=strict, schema_only=schema_only)
        out.append(Issue(f.path, f.field, f.message, sev, f.rule, f.source))
    out.sort(key=lambda i: i.severity != "error")  # stable: errors first, in walk order
    return tuple(out)
