"""Check one group's attributes: find version and kind, then run every check for that kind.

This is where the sources of findings meet: voxzarr's own checks (:mod:`._checks_image`,
:mod:`._checks_hcs`, :mod:`._checks_v06`) and an outside reference, ome-zarr-models for 0.4 /
0.5 (:mod:`._checks_omz`) or the official JSON schemas for 0.6rc0 (:mod:`._checks_schema`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError, MetadataError
from ._checks_base import Collector, Finding, Ref, join, short, tier_of
from ._checks_hcs import check_bf2raw, check_labels, check_plate, check_series, check_well
from ._checks_image import AxisInfo, check_image_label, check_multiscales, check_omero
from ._checks_omz import omz_findings
from ._checks_schema import SCHEMA_VERSIONS, schema_findings
from ._checks_v06 import check_multiscales_v06, check_scene

__all__ = ["KINDS", "VALIDATED", "AttrsReport", "check_attrs", "normalize_kind",
           "detect_kind", "is_version_number"]

#: kinds of NGFF group validate knows, in detection order; ``transformations`` is a
#: stand-alone 0.6 document of coordinate systems and transformations (a scene's body)
KINDS = ("image", "label", "labels", "plate", "well", "bioformats2raw", "series", "scene",
         "transformations")
_KIND_ALIASES = {
    "multiscales": "image", "image-label": "label", "bf2raw": "bioformats2raw",
    "ome": "series", "hcs": "plate", "strict_image": "image", "strict_label": "label",
    "strict_plate": "plate", "strict_well": "well",
    "coordinate_systems_and_transforms": "transformations",
}
_OME_KEYS = ("multiscales", "image-label", "labels", "plate", "well", "bioformats2raw.layout",
             "series", "omero", "scene")
#: the NGFF versions validate checks
VALIDATED = ("0.4", "0.5", "0.6rc0")
_LEGACY = ("0.1", "0.2", "0.3")
#: what an NGFF version string looks like ("0.6", "0.6rc1", "0.6.dev2", "1.0"): one that is
#: not among VALIDATED is unsupported, not invalid; anything else ("foo") is invalid
_VERSION_NUMBER = re.compile(r"\d+\.\d+(\.\d+)?([.-]?(a|b|rc|dev)\d*)?")


@dataclass
class AttrsReport:
    """Findings for one group plus what the hierarchy walk needs next."""

    version: str | None
    kind: str | None
    findings: list[Finding]
    multiscales: list[AxisInfo] = field(default_factory=list)
    omero_channels: int | None = None
    plate: dict[str, Any] | None = None
    well_images: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    series: list[str] | None = None
    block: Mapping[str, Any] = field(default_factory=dict)
    #: JSON path of ``block`` in the attributes: ``"ome"`` (0.5 nesting) or ``""``
    base: str = ""
    #: groups and arrays the metadata refers to by path (0.6 transformations)
    refs: list[Ref] = field(default_factory=list)
    #: the declared version is one validate cannot check: nothing else was checked
    unsupported: bool = False


def normalize_kind(kind: str | None) -> str | None:
    """Accept the kind names of the NGFF schemas too (``bf2raw``, ``strict_image``, ...)."""
    if kind is None:
        return None
    k = _KIND_ALIASES.get(kind, kind)
    if k not in KINDS:
        raise ArgumentError(f"unknown kind {kind!r}; choose from {KINDS}", field="kind")
    return k


def is_version_number(v: Any) -> bool:
    """Whether ``v`` is written like an NGFF version (``"0.6"``, ``"0.7rc1"``)."""
    return isinstance(v, str) and _VERSION_NUMBER.fullmatch(v) is not None


def detect_kind(blk: Mapping[str, Any]) -> str | None:
    """What an OME block describes, or ``None`` when it holds no NGFF metadata."""
    if "multiscales" in blk:
        return "label" if "image-label" in blk else "image"
    for key, kind in (("image-label", "label"), ("bioformats2raw.layout", "bioformats2raw"),
                      ("plate", "plate"), ("well", "well"), ("labels", "labels"),
                      ("series", "series"), ("scene", "scene")):
        if key in blk:
            return kind
    return None


def _declared_flat(attrs: Mapping[str, Any]) -> str | None:
    ms = attrs.get("multiscales")
    if isinstance(ms, list) and ms and isinstance(ms[0], Mapping) and "version" in ms[0]:
        return str(ms[0]["version"])
    for key in ("plate", "well", "image-label"):
        blk = attrs.get(key)
        if isinstance(blk, Mapping) and "version" in blk:
            return str(blk["version"])
    return None


def _resolve_version(c: Collector, attrs: Mapping[str, Any], hint: str | None,
                     zarr_format: int | None, default: str | None = None) -> str | None:
    """The version to check against, recording envelope problems on the way.

    ``default`` is what nested metadata without a version is taken as (the version of the
    hierarchy around it; 0.5 on its own).
    """
    ome = attrs.get("ome")
    nested = isinstance(ome, Mapping)
    # NGFF keys at the top level ("ome" that is no object is reported once, just below)
    flat_keys = "ome" not in attrs and any(k in attrs for k in _OME_KEYS)
    if "ome" in attrs and not nested:
        c.add("ome-namespace", "ome", f"expected an object holding the NGFF metadata, found "
              f"{short(ome)}")
    declared = (str(ome["version"]) if nested and "version" in ome else
                None if nested else _declared_flat(attrs))
    if hint is not None:
        if hint != "0.4" and not nested and flat_keys:
            c.add("ome-namespace", "ome", "is missing: expected the metadata under 'ome' "
                  f"(with 'version': {hint!r}), as NGFF {hint} nests it; found it at the top "
                  "level")
        if hint == "0.4" and nested:
            c.add("ome-namespace", "ome", "expected the metadata at the top level, as NGFF "
                  "0.4 keeps it; found it under 'ome', the 0.5 layout")
        # a declared version other than the hint fails the version checks that follow
        return hint
    if nested:
        return declared or default or "0.5"
    if declared is None and zarr_format == 3 and flat_keys:
        c.add("ome-namespace", "ome", "is missing: expected the metadata under 'ome', as a "
              "zarr v3 group is NGFF 0.5 or newer; found it at the top level")
        return "0.5"
    if declared in ("0.5", "0.6rc0") and flat_keys:
        c.add("ome-namespace", "ome", "is missing: expected the metadata under 'ome' (with "
              f"'version': {declared!r}), as NGFF {declared} nests it; found it at the top "
              "level")
    return declared or "0.4"


def _version_field(attrs: Mapping[str, Any]) -> str:
    if isinstance(attrs.get("multiscales"), list):
        return "multiscales[0].version"
    for key in ("plate", "well", "image-label"):
        if isinstance(attrs.get(key), Mapping):
            return f"{key}.version"
    return "version"


def check_attrs(attrs: Any, *, path: str | None, version: str | None = None,
                kind: str | None = None, zarr_format: int | None = None,
                acquisitions: list[int] | None = None,
                default_version: str | None = None) -> AttrsReport:
    """Check the attributes of one group (any NGFF kind) without touching arrays.

    ``acquisitions`` are the ids of the enclosing plate, for a well's ``acquisition`` refs;
    ``default_version`` the hierarchy's version, for nested metadata that declares none.
    """
    c = Collector(path, version)
    if not isinstance(attrs, Mapping):
        c.add("schema", "", f"expected the group attributes as a JSON object, found "
              f"{type(attrs).__name__}")
        return AttrsReport(version, None, c.findings)
    k0 = normalize_kind(kind)
    if k0 is None and _is_transformations_doc(attrs):
        k0 = "transformations"
    if k0 == "transformations":
        return _check_transformations_doc(c, attrs, version, path)
    v = _resolve_version(c, attrs, version, zarr_format, default_version)
    c.version = v
    nested = isinstance(attrs.get("ome"), Mapping)
    blk: Mapping[str, Any] = attrs["ome"] if nested else attrs
    base = "ome" if nested else ""
    k = k0 or detect_kind(blk)
    report = AttrsReport(v, k, c.findings, block=blk, base=base, refs=c.refs)
    if v not in VALIDATED:
        fld = join(base, "version") if nested else _version_field(attrs)
        if is_version_number(v):
            hint = ("; `voxzarr upgrade` converts it to 0.5" if v in _LEGACY else "")
            c.add("unsupported-version", fld, f"NGFF {v!r} is a version validate cannot "
                  f"check; it checks {', '.join(VALIDATED)}{hint}")
            report.unsupported = True
        else:
            c.add("version", fld, f"expected an NGFF version ({', '.join(VALIDATED)}), found "
                  f"{short(v)}")
        return report
    if v != "0.4" and nested:
        if "version" not in blk:
            c.add("ome-namespace", "ome.version", f"is missing; expected {v!r}")
        elif blk["version"] != v:
            c.add("version", "ome.version", f"expected {v!r}, found {short(blk['version'])}")
        stray = [key for key in _OME_KEYS if key in attrs]
        for key in stray:
            c.add("ome-namespace", key, "expected under 'ome', found at the top level, where "
                  f"NGFF {v} readers will not see it")
    if k is None:
        c.add("not-ngff", base, "expected NGFF metadata here (one of multiscales, "
              "image-label, labels, plate, well, bioformats2raw.layout, series, scene), found "
              "none")
        return report
    _run_kind(c, report, blk, base, v, k, acquisitions)
    if v in SCHEMA_VERSIONS:
        report.findings.extend(schema_findings(attrs, blk, version=v, kind=k, path=path))
    else:
        report.findings.extend(omz_findings(blk, version=v, kind=k, base=base, path=path))
    return report


def _is_transformations_doc(attrs: Mapping[str, Any]) -> bool:
    """A bare ``{coordinateSystems, coordinateTransformations}`` document (no group keys)."""
    return ("coordinateTransformations" in attrs and "ome" not in attrs
            and not any(k in attrs for k in _OME_KEYS))


def _check_transformations_doc(c: Collector, doc: Mapping[str, Any], version: str | None,
                               path: str | None) -> AttrsReport:
    """A stand-alone ``{coordinateSystems, coordinateTransformations}`` document (0.6rc0)."""
    v = version or "0.6rc0"
    c.version = v
    report = AttrsReport(v, "transformations", c.findings, block=doc, refs=c.refs)
    if v not in SCHEMA_VERSIONS:
        c.add("version", "", f"expected NGFF 0.6rc0, which defines coordinate systems and "
              f"transformations documents, found {v!r}")
        return report
    check_scene(c, doc, "")
    report.findings.extend(schema_findings(doc, doc, version=v, kind="transformations",
                                           path=path))
    return report


def _advise_reader(c: Collector, blk: Mapping[str, Any], base: str) -> None:
    """Say so where valid 0.6 metadata is beyond what ``vz.open_image`` maps to pixel-centre
    coordinates (e.g. an affine to the named system), so validate and reading agree."""
    import warnings

    from .parse import parse_multiscale

    if base != "ome" or any(tier_of(f.rule, c.version) in ("schema", "spec")
                            for f in c.findings):
        return  # invalid anyway: the errors already say why
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse_multiscale({"ome": dict(blk)}, path=None)
    except MetadataError as err:
        c.add("voxzarr-read", join(base, err.field or ""), "expected metadata vz.open_image "
              f"maps to pixel-centre coordinates (valid NGFF all the same), found: "
              f"{err.message}")


def _run_kind(c: Collector, r: AttrsReport, blk: Mapping[str, Any], base: str, v: str,
              k: str, acquisitions: list[int] | None) -> None:
    v06 = v.startswith("0.6")
    if k in ("image", "label") and (k == "image" or "multiscales" in blk):
        r.multiscales = (check_multiscales_v06(c, blk, base) if v06 else
                         check_multiscales(c, blk, base, version=v))
        r.omero_channels = check_omero(c, blk, base)
        if v06:
            _advise_reader(c, blk, base)
    if k == "label":
        check_image_label(c, blk, base, version=v)
    elif k == "labels":
        r.labels = check_labels(c, blk, base)
    elif k == "plate":
        r.plate = check_plate(c, blk, base, version=v)
    elif k == "well":
        r.well_images = check_well(c, blk, base, version=v, acquisitions=acquisitions)
    elif k == "bioformats2raw":
        check_bf2raw(c, blk, base)
        if "plate" in blk:
            r.plate = check_plate(c, blk, base, version=v)
        if "series" in blk:
            r.series = check_series(c, blk, base, required=False)
    elif k == "series":
        r.series = check_series(c, blk, base, required=True)
    elif k == "scene":
        if not v06:
            c.add("version", join(base, "scene"), f"expected NGFF 0.6rc0 for a scene, found "
                  f"NGFF {v}")
            return
        scene = c.mapping(c.get(blk, "scene", base, required=True), join(base, "scene"))
        if scene is not None:
            check_scene(c, scene, join(base, "scene"))
