"""voxzarr.validate against every NGFF conformance case and example in tests/data/ngff.

Each ``tests/*_suite.json`` (0.4, 0.5; upstream has none for 0.6rc0) names a schema
(``schemas/strict_image.schema`` ...): its stem gives the kind and whether the case is checked
with ``strict=True``. Examples carry the schema in ``.config.json`` beside them and may hold
``//`` comment lines.

With ``schema_only=True`` every verdict must be the suite's. With the default (which also
enforces the specification text), a handful of fixtures are data that break a MUST of the
spec text; those must be invalid for exactly that rule.

The dev-0.6rc0 examples are not run through the schemas upstream, and some do not pass them:
those are listed in ``V06_DEFECTS`` with the reason, and the official schemas are run here on
every example to show voxzarr's verdict is theirs. Image examples are also built into tiny
zarr stores, and ``validate`` and ``vz.open_image`` must agree on each.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.errors import VoxzarrError
from voxzarr.ngff._checks_attrs import normalize_kind
from voxzarr.ngff.validate import load_json, validate

NGFF = Path(__file__).resolve().parents[1] / "data" / "ngff"
#: version folder -> NGFF version string
FOLDERS = {"0.4": "0.4", "0.5": "0.5", "dev-0.6rc0": "0.6rc0"}
VERSIONS = ("0.4", "0.5")

# fixtures marked valid whose data breaks the specification text ("The length of the scale
# and translation array MUST be the same as the length of axes"; "The path MUST consist of a
# name in the rows list, a file separator (/), and a name from the columns list, in that
# order"). The schemas cannot express either rule.
SPEC_TEXT_EXCEPTIONS = {
    ("0.4", "image", "valid/mismatch_axes_units.json"): "transform-length",
    ("0.4", "plate", "plate/minimal_no_acquisitions"): "plate-well-path",
    ("0.4", "plate", "plate/minimal_acquisitions"): "plate-well-path",
    ("0.4", "plate", "plate/non_alphanumeric_row"): "plate-well-path",
    ("0.4", "strict_plate", "plate/strict_no_acquisitions"): "plate-well-path",
    ("0.4", "strict_plate", "plate/strict_acquisitions"): "plate-well-path",
}

#: dev-0.6rc0 examples whose verdict is not "valid under the folder's schema", and why.
#: Value: (schema_only verdict, default verdict, rules of the default errors, reason).
V06_DEFECTS: dict[str, tuple[bool, bool, set[str], str]] = {
    "multiscales_strict/multiscales_example_relative.json": (
        False, False, {"ome-namespace", "recommended-field"},
        "0.4-style flat layout (version inside multiscales, no 'ome' object), which every "
        "0.6rc0 schema rejects"),
    "label_strict/colors_properties.json": (
        False, False, {"recommended-field"},
        "in the strict label folder, but its multiscales lack 'name', 'type' and 'metadata', "
        "which the strict image schema requires of every multiscales (a label image is an "
        "image; valid without strict)"),
    "multiscales_strict/multiscales_reference_to_label.json": (
        False, False, {"recommended-field"},
        "in the strict folder but has no multiscales 'type' and 'metadata', which the strict "
        "image schema requires (valid without strict)"),
    "transformations/displacements/displacement_field.json": (
        True, False, {"transform-length"},
        "its scale has 2 values for 3 axes: the schema does not count them, the spec text "
        "('The list MUST have length N') does"),
    "transformations/displacements/multiscales.json": (
        False, False, {"ome-namespace"},
        "'ome' is the string '0.6rc0', not the object the image schema requires"),
    "transformations/bijection_verbose.json": (
        False, False, {"schema"},
        "a lone transformation object, not a document of coordinate systems and "
        "transformations"),
    "transformations/byDimension2.json": (
        False, False, {"schema"},
        "its input system has 4 axes of type 'space'; the axes schema allows 2 or 3"),
    "transformations/byDimensionXarray.json": (
        False, False, {"schema"},
        "its byDimension children put the transformation inline instead of under "
        "'transformation', which the schema requires"),
    "transformations/mapAxis1.json": (
        False, False, {"schema"},
        "one transformation names its input / output by a bare string, the pre-0.6rc0 form; "
        "0.6rc0 requires {'name': ...} objects"),
    "transformations/projectAxis.json": (
        False, False, {"schema"},
        "axes without a type: the axes schema requires 2 or 3 of type 'space'"),
    "transformations/projectAxis2.json": (
        False, False, {"schema"},
        "axes without a type: the axes schema requires 2 or 3 of type 'space'"),
    # the spec text calls these two invalid; the schema cannot tell
    "transformations/byDimensionInvalid1.json": (
        True, False, {"transform-params"},
        "the spec's own invalid example: output axes out of range, none covered"),
    "transformations/byDimensionInvalid2.json": (
        True, False, {"transform-params"},
        "the spec's own invalid example: output axis 'x' in two children, 'y' in none"),
}


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1].removesuffix(".schema")


def _suite_cases() -> list:
    out = []
    for v in VERSIONS:
        for f in sorted((NGFF / v / "tests").glob("*_suite.json")):
            suite = json.loads(f.read_text())
            assert _schema_name(suite["schema"]["id"])  # every suite names its schema
            for i, case in enumerate(suite["tests"]):
                cid = f"{v}-{f.stem}-{i}-{case.get('formerly', '')}"
                out.append(pytest.param(v, f.name, i, id=cid))
    return out


def _example_files() -> list:
    out = []
    for folder in FOLDERS:
        base = NGFF / folder / "examples"
        for cfg in sorted(base.rglob(".config.json")):
            for ex in sorted(cfg.parent.glob("[!.]*.json")):
                rel = str(ex.relative_to(base))
                out.append(pytest.param(folder, rel, id=f"{folder}-{rel.removesuffix('.json')}"))
    return out


SUITE_CASES = _suite_cases()
EXAMPLES = _example_files()


def _load_case(ngff_dir: Path, v: str, fname: str, i: int) -> tuple[str, dict]:
    suite = json.loads((ngff_dir / v / "tests" / fname).read_text())
    return _schema_name(suite["schema"]["id"]), suite["tests"][i]


def _options(schema: str) -> dict:
    return {"kind": schema.removeprefix("strict_"), "strict": schema.startswith("strict_")}


# ---------------------------------------------------------------- conformance suites
@pytest.mark.parametrize(("v", "fname", "i"), SUITE_CASES)
def test_suite_verdict_schema_only(ngff_dir, v, fname, i):
    schema, case = _load_case(ngff_dir, v, fname, i)
    r = validate(case["data"], version=v, schema_only=True, **_options(schema))
    assert r.valid is case["valid"], r.message
    if not case["valid"]:
        assert r.errors and all(e.field is not None for e in r.errors)


@pytest.mark.parametrize(("v", "fname", "i"), SUITE_CASES)
def test_suite_verdict_default(ngff_dir, v, fname, i):
    schema, case = _load_case(ngff_dir, v, fname, i)
    r = validate(case["data"], version=v, **_options(schema))
    rule = SPEC_TEXT_EXCEPTIONS.get((v, schema, case.get("formerly")))
    if rule is None:
        assert r.valid is case["valid"], r.message
    else:
        assert case["valid"] and not r.valid
        assert {e.rule for e in r.errors} == {rule}, r.message


# ---------------------------------------------------------------- examples
def _example(ngff_dir: Path, folder: str, rel: str) -> tuple[dict, dict]:
    """(validate options, the example document) for an example file."""
    path = ngff_dir / folder / "examples" / rel
    ref = json.loads((path.parent / ".config.json").read_text())["schema"]
    doc = load_json(path)
    if (ngff_dir / folder / ref).is_file():
        opts = _options(_schema_name(ref))
    else:  # the dev-0.6rc0 transformation folders name a schema upstream no longer has
        group = isinstance(doc, dict) and ("attributes" in doc or "ome" in doc)
        opts = {"kind": None if group else "transformations", "strict": False}
    if opts["kind"] in ("bf2raw", "ome"):
        opts["kind"] = normalize_kind(opts["kind"])
    return {**opts, "version": FOLDERS[folder]}, doc


def _expected(folder: str, rel: str) -> tuple[bool, bool, set[str] | None]:
    if folder == "dev-0.6rc0" and rel in V06_DEFECTS:
        schema_only, default, rules, _why = V06_DEFECTS[rel]
        return schema_only, default, rules
    return True, True, None


@pytest.mark.parametrize(("folder", "rel"), EXAMPLES)
def test_example_verdict(ngff_dir, folder, rel):
    opts, doc = _example(ngff_dir, folder, rel)
    want_schema_only, want_default, rules = _expected(folder, rel)
    r = validate(doc, schema_only=True, **opts)
    assert r.valid is want_schema_only, r.message
    r = validate(doc, **opts)
    assert r.valid is want_default, r.message
    if rules is not None:
        assert {e.rule for e in r.errors} == rules, r.message
    if r.valid:
        # without hints the version and kind are found from the document itself
        found = validate(doc)
        assert found.valid and found.version == opts["version"], found.message
        if opts["kind"] is not None:
            assert found.kind == normalize_kind(opts["kind"])
    _assert_voxzarr_form(r)  # every rejection says where, what was expected and found


def test_examples_found(ngff_dir):
    # the parametrisation above really ran over every example and suite case
    per = {f: sum(1 for p in EXAMPLES if p.values[0] == f) for f in FOLDERS}
    assert per == {"0.4": 10, "0.5": 10, "dev-0.6rc0": 38}
    assert len(SUITE_CASES) == 178
    assert set(V06_DEFECTS) <= {p.values[1] for p in EXAMPLES if p.values[0] == "dev-0.6rc0"}


def test_load_json_strips_comment_lines(ngff_dir):
    doc = load_json(ngff_dir / "0.4/examples/multiscales_strict/multiscales_example.json")
    assert doc["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        1.0, 1.0, 0.5, 0.5, 0.5]


def test_load_json_bad_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(vz.MetadataError, match="not valid JSON"):
        load_json(p)


# ---------------------------------------------------------------- official schemas agree
def _registry(folder: str):
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7, DRAFT202012

    # the 0.4 schemas are draft-07 even where they do not say so
    spec = DRAFT7 if folder == "0.4" else DRAFT202012
    res = []
    for f in (NGFF / folder / "schemas").glob("*.schema"):
        d = json.loads(f.read_text())
        res.append((d["$id"], Resource.from_contents(d, default_specification=spec)))
    return Registry().with_resources(res)


def _official(folder: str, schema: str, doc) -> bool:
    import jsonschema

    sch = json.loads((NGFF / folder / "schemas" / f"{schema}.schema").read_text())
    cls = jsonschema.Draft7Validator if folder == "0.4" else jsonschema.Draft202012Validator
    return cls(sch, registry=_registry(folder)).is_valid(doc)


@pytest.mark.parametrize(("rel"), [p.values[1] for p in EXAMPLES
                                   if p.values[0] == "dev-0.6rc0"])
def test_v06_examples_schema_only_is_the_official_verdict(ngff_dir, rel):
    """voxzarr's schema-only verdict is what the official 0.6rc0 schemas say."""
    opts, doc = _example(ngff_dir, "dev-0.6rc0", rel)
    attrs = doc.get("attributes", doc) if isinstance(doc, dict) else doc
    if opts["kind"] == "transformations":  # a scene's body, as 0.6rc0 defines it
        official = _official("dev-0.6rc0", "scene",
                             {"ome": {"version": "0.6rc0", "scene": attrs}})
    else:
        ref = json.loads((ngff_dir / "dev-0.6rc0" / "examples" / rel).parent.joinpath(
            ".config.json").read_text())["schema"]
        name = _schema_name(ref)
        if not (ngff_dir / "dev-0.6rc0" / ref).is_file():
            name = "image"  # the subspace example is an image
        official = _official("dev-0.6rc0", name, attrs)
        if name.endswith("label") and "multiscales" in attrs.get("ome", {}):
            # a label image is an image: the image schema holds for it as well
            official = official and _official("dev-0.6rc0", name.replace("label", "image"),
                                              attrs)
    r = validate(doc, schema_only=True, **opts)
    assert r.valid is official, r.message


# ---------------------------------------------------------------- stores from examples
def _ome(attrs: dict) -> dict:
    return attrs["ome"] if isinstance(attrs.get("ome"), dict) else attrs


def _axes(ms: dict) -> list[dict]:
    if "axes" in ms:
        return ms["axes"]
    # 0.6: the intrinsic system, the one the datasets map to
    name = ms["datasets"][0]["coordinateTransformations"][0]["output"]["name"]
    return next(cs["axes"] for cs in ms["coordinateSystems"] if cs["name"] == name)


def _scale(cts: list) -> list[float] | None:
    for t in cts:
        if t.get("type") == "scale":
            return t["scale"]
        if t.get("type") == "sequence":
            return _scale(t["transformations"])
    return None


def _write_image(group: zarr.Group, attrs: dict, zarr_format: int) -> None:
    """Arrays for every dataset path, shaped by the axes and the level scales."""
    for ms in _ome(attrs).get("multiscales", []):
        axes = _axes(ms)
        names = [a["name"] for a in axes]
        s0 = _scale(ms["datasets"][0]["coordinateTransformations"]) or [1.0] * len(axes)
        for ds in ms["datasets"]:
            s = _scale(ds["coordinateTransformations"]) or s0
            base = [2 if a.get("type") in ("time", "channel") else 16 for a in axes]
            # one dimension per axis, even where a scale has too few values
            ratio = [a0 / a for a0, a in zip(s0, s, strict=False)]
            ratio += [1.0] * (len(axes) - len(ratio))
            shape = tuple(max(1, round(b * r)) for b, r in zip(base, ratio, strict=False))
            kw = {"dimension_names": names} if zarr_format == 3 else {}
            group.create_array(ds["path"], shape=shape, dtype="uint8", chunks=shape, **kw)
    group.attrs.update(attrs)


def build_store(attrs: dict, version: str, where: Path) -> Path:
    """A tiny zarr store holding an example image: its attributes plus small arrays.

    A label group a 0.6 transformation refers to by path is made too, as a label image in
    the same coordinate system, so that reference resolves.
    """
    zf = 2 if version == "0.4" else 3
    root = zarr.open_group(where, mode="w", zarr_format=zf)
    _write_image(root, attrs, zf)
    for ms in _ome(attrs).get("multiscales", []):
        for t in ms.get("coordinateTransformations", []):
            path = t.get("input", {}).get("path") if isinstance(t.get("input"), dict) else None
            if not path or not path.startswith("labels/"):
                continue
            name = path.removeprefix("labels/")
            zarr.open_group(where / "labels", mode="w", zarr_format=zf).attrs.update(
                {"ome": {"version": version, "labels": [name]}})
            label = copy.deepcopy(_ome(attrs))
            for m in label["multiscales"]:
                m.pop("coordinateTransformations", None)
            label["image-label"] = {"colors": [{"label-value": 0}]}
            _write_image(zarr.open_group(where / path, mode="w", zarr_format=zf),
                         {"ome": label}, zf)
    return where


def _image_examples() -> list:
    out = []
    for p in EXAMPLES:
        folder, rel = p.values
        doc = load_json(NGFF / folder / "examples" / rel)
        attrs = doc.get("attributes", doc)
        if isinstance(attrs, dict) and "multiscales" in _ome(attrs):
            out.append(p)
    return out


IMAGE_EXAMPLES = _image_examples()


@pytest.mark.parametrize(("folder", "rel"), IMAGE_EXAMPLES)
def test_example_store_validate_and_open_image_agree(ngff_dir, tmp_path, folder, rel):
    opts, doc = _example(ngff_dir, folder, rel)
    attrs = doc.get("attributes", doc)
    store = build_store(attrs, FOLDERS[folder], tmp_path / "ex.ome.zarr")
    r = validate(store)
    _, want_default, rules = _expected(folder, rel)
    if rules == {"recommended-field"}:  # a strict-only defect: fine without strict
        want_default = True
    assert r.valid is want_default, r.message
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            vz.open_image(store)
        opened = None
        # the one warning a valid store may give: axes stored out of canonical order
        assert all("axes are stored in the order" in str(w.message) for w in said), said
    except VoxzarrError as err:
        opened = err
    assert (opened is None) is r.valid, f"validate: {r.message}\nopen_image: {opened}"


def test_example_stores_cover_every_image_example():
    assert len(IMAGE_EXAMPLES) == 12


# ---------------------------------------------------------------- jsonschema cross-check
def _valid_docs() -> list[tuple[str, str, dict]]:
    docs = []
    for p in SUITE_CASES:
        v, fname, i = p.values
        suite = json.loads((NGFF / v / "tests" / fname).read_text())
        case = suite["tests"][i]
        if case["valid"]:
            docs.append((v, _schema_name(suite["schema"]["id"]), case["data"]))
    return docs


_JSON_ATOMS = st.one_of(st.none(), st.booleans(), st.integers(-2, 300),
                        st.sampled_from([0.0, 0.5, -1.5, 1e300]),
                        st.sampled_from(["", "0.4", "0.5", "A", "1", "A/1", "x-y", "space",
                                         "time", "scale", "micrometer"]),
                        st.just([]), st.just({}))


def _locations(doc, here=()):
    yield here
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _locations(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _locations(v, (*here, i))


@st.composite
def _mutated(draw, docs):
    v, schema, data = draw(st.sampled_from(docs))
    doc = copy.deepcopy(data)
    loc = draw(st.sampled_from([p for p in _locations(doc) if p]))
    parent = doc
    for k in loc[:-1]:
        parent = parent[k]
    key = loc[-1]
    op = draw(st.sampled_from(["delete", "replace", "duplicate"]))
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = draw(_JSON_ATOMS)
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = [parent[key], parent[key]]
    return v, schema, doc


_DOCS: list | None = None


def _valid_docs_cached() -> list:
    global _DOCS
    if _DOCS is None:
        _DOCS = _valid_docs()
    return _DOCS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_schema_rejections_are_voxzarr_rejections(data):
    """Whatever an official schema rejects, validate(schema_only=True) rejects too."""
    v, schema, doc = data.draw(_mutated(_valid_docs_cached()))
    js_ok = _official(v, schema, doc)
    r = validate(doc, version=v, schema_only=True, **_options(schema))
    if not js_ok:
        assert not r.valid, f"schema rejects {json.dumps(doc)} but voxzarr accepts it"
    _assert_voxzarr_form(validate(doc, version=v, **_options(schema)))


def _assert_voxzarr_form(r) -> None:
    """Every issue says what was expected and what was found (and where: its field)."""
    for i in r.issues:
        assert i.field is not None and "expected" in i.message, i
        assert any(w in i.message for w in ("found", "missing", "has ")), i


# ---------------------------------------------------------------- 0.6rc0 mutations
def _v06_valid_docs() -> list[tuple[str, dict, dict]]:
    out = []
    for p in EXAMPLES:
        folder, rel = p.values
        if folder != "dev-0.6rc0" or rel in V06_DEFECTS:
            continue
        opts, doc = _example(NGFF, folder, rel)
        out.append((rel, opts, doc.get("attributes", doc)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_v06_schema_rejections_are_voxzarr_rejections(data):
    """Mutated 0.6rc0 examples: what the official schema rejects, voxzarr rejects."""
    rel, opts, attrs = data.draw(st.sampled_from(_v06_valid_docs()))
    doc = copy.deepcopy(attrs)
    loc = data.draw(st.sampled_from([p for p in _locations(doc) if p]))
    parent = doc
    for k in loc[:-1]:
        parent = parent[k]
    op = data.draw(st.sampled_from(["delete", "replace"]))
    if op == "delete":
        del parent[loc[-1]]
    else:
        parent[loc[-1]] = data.draw(_JSON_ATOMS)
    if opts["kind"] == "transformations":
        official = _official("dev-0.6rc0", "scene", {"ome": {"version": "0.6rc0",
                                                             "scene": doc}})
    else:
        ref = json.loads((NGFF / "dev-0.6rc0" / "examples" / rel).parent.joinpath(
            ".config.json").read_text())["schema"]
        name = _schema_name(ref).removeprefix("strict_")
        official = _official("dev-0.6rc0", name if name != "coordinate_systems_and_transforms"
                             else "image", doc)
    r = validate(doc, schema_only=True, **{**opts, "strict": False})
    if not official:
        assert not r.valid, f"schema rejects {json.dumps(doc)} but voxzarr accepts it"
    _assert_voxzarr_form(validate(doc, **opts))
