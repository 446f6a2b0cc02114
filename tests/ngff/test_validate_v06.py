"""voxzarr.validate on NGFF 0.6rc0: coordinate systems, transformations, scenes, stores.

Also what every version shares since 0.6rc0 support came in: unsupported versions are no
verdict, and rejections of the outside references (zarr-python, ome-zarr-models, the
official schemas) are said in voxzarr's form: where, what was expected, what was found.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import zarr
from pydantic import ValidationError

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.ngff._checks_omz import describe
from voxzarr.ngff._checks_schema import schema_findings
from voxzarr.ngff.validate import load_json, validate


# ----------------------------------------------------------------------------- helpers
def _image(**ms_extra) -> dict:
    """Valid 0.6rc0 attributes: a two-level zyx image, plus a world system 10 um away."""
    cs = [{"name": "physical", "axes": [{"name": n, "type": "space", "unit": "micrometer"}
                                        for n in "zyx"]}]
    world = {"name": "world", "axes": copy.deepcopy(cs[0]["axes"])}
    ms = {
        "name": "img", "type": "mean", "metadata": {"method": "test"},
        "coordinateSystems": [*cs, world],
        "datasets": [
            {"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [2.0, 0.5, 0.5],
                 "input": {"path": "0"}, "output": {"name": "physical"}}]},
            {"path": "1", "coordinateTransformations": [
                {"type": "sequence", "input": {"path": "1"}, "output": {"name": "physical"},
                 "transformations": [
                     {"type": "scale", "scale": [2.0, 1.0, 1.0]},
                     {"type": "translation", "translation": [0.0, 0.25, 0.25]}]}]},
        ],
        "coordinateTransformations": [
            {"type": "translation", "translation": [10.0, 0.0, 0.0],
             "input": {"name": "physical"}, "output": {"name": "world"}}],
        **ms_extra,
    }
    return {"ome": {"version": "0.6rc0", "multiscales": [ms]}}


def _ms(attrs: dict) -> dict:
    return attrs["ome"]["multiscales"][0]


def _errors(r) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in r.errors:
        out.setdefault(e.rule, set()).add(e.field)
    return out


def _doc(systems: dict[str, str], *transforms: dict) -> dict:
    """A transformations document: systems by name -> axis names (all of type space)."""
    return {"coordinateSystems": [{"name": n, "axes": [{"name": a, "type": "space"}
                                                       for a in axes]}
                                  for n, axes in systems.items()],
            "coordinateTransformations": list(transforms)}


def _tf(kind: str, src: str = "in", dst: str = "out", **params) -> dict:
    return {"type": kind, "input": {"name": src}, "output": {"name": dst}, **params}


def _store(tmp_path, attrs: dict, name: str = "img.ome.zarr"):
    """A zarr v3 store with the image's two levels (16, 32, 32) and (16, 16, 16)."""
    path = tmp_path / name
    g = zarr.open_group(path, mode="w", zarr_format=3)
    for p, shape in (("0", (16, 32, 32)), ("1", (16, 16, 16))):
        g.create_array(p, shape=shape, dtype="uint16", chunks=shape,
                       dimension_names=["z", "y", "x"])
    g.attrs.update(attrs)
    return path


def _assert_voxzarr_form(r) -> None:
    for e in r.errors:
        assert "expected" in e.message, e
        assert any(w in e.message for w in ("found", "missing", "has ")), e


# ----------------------------------------------------------------------------- images
def test_v06_image_valid_strict():
    r = validate(_image(), strict=True)
    assert r.valid and r.issues == () and (r.version, r.kind) == ("0.6rc0", "image"), r.message
    assert r.message == "valid NGFF 0.6rc0 image"


def test_v06_store_is_valid_where_open_image_and_info_read_it(tmp_path):
    # the reported bug: every 0.6rc0 store was "not one validate checks"
    path = _store(tmp_path, _image())
    r = validate(path, strict=True)
    assert r.valid and r.status == "valid", r.message
    img = vz.open_image(path)
    assert img.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert "0.6rc0" in str(vz.info(path))
    assert main(["validate", str(path), "--strict"]) == 0


@pytest.mark.parametrize(("change", "rule", "fld"), [
    (lambda ms: ms["datasets"][0]["coordinateTransformations"][0]["scale"].pop(),
     "transform-length", "datasets[0].coordinateTransformations[0].scale"),
    (lambda ms: ms["datasets"][1]["coordinateTransformations"][0]["transformations"][1]
     ["translation"].append(0.0),
     "transform-length",
     "datasets[1].coordinateTransformations[0].transformations[1].translation"),
    (lambda ms: ms["datasets"][1]["coordinateTransformations"][0]["output"].update(
        name="world"),
     "multiscale-transforms", "datasets[1].coordinateTransformations[0].output.name"),
    (lambda ms: ms["datasets"][1]["coordinateTransformations"][0]["output"].update(
        name="nowhere"),
     "transform-refs", "datasets[1].coordinateTransformations[0].output.name"),
    (lambda ms: ms["datasets"][1]["coordinateTransformations"][0]["input"].update(path="0"),
     "dataset-input", "datasets[1].coordinateTransformations[0].input.path"),
    (lambda ms: ms["datasets"][1]["coordinateTransformations"][0]["transformations"][1]
     .update(type="scale", scale=[1.0, 1.0, 1.0]),
     "multiscale-transforms", "datasets[1].coordinateTransformations[0].transformations"),
    (lambda ms: ms["coordinateTransformations"][0]["input"].update(name="world"),
     "multiscale-transforms", "coordinateTransformations[0].input.name"),
    (lambda ms: ms["coordinateSystems"][1].update(name="physical", axes=ms[
        "coordinateSystems"][1]["axes"][::-1]),
     "coordinate-systems", "coordinateSystems[1].name"),
    (lambda ms: ms["datasets"].reverse(),
     "levels-order", "datasets[1]"),
    (lambda ms: ms["coordinateSystems"][0]["axes"].insert(
        0, {"name": "t", "type": "time"}) or ms["coordinateSystems"][0]["axes"].reverse(),
     "axes-order", "coordinateSystems[0].axes"),
])
def test_v06_spec_rules(change, rule, fld):
    attrs = _image()
    change(_ms(attrs))
    r = validate(attrs)
    assert rule in _errors(r), r.message
    assert f"ome.multiscales[0].{fld}" in _errors(r)[rule], r.message
    _assert_voxzarr_form(r)
    # the spec text is what the schema cannot say: schema_only lets these pass
    assert validate(attrs, schema_only=True).valid or rule in ("levels-order",)


def test_v06_scale_zero_is_a_schema_error():
    attrs = _image()
    _ms(attrs)["datasets"][0]["coordinateTransformations"][0]["scale"][1] = 0.0
    r = validate(attrs, schema_only=True)  # the 0.6rc0 schema itself wants scale > 0
    assert _errors(r) == {"transform-values": {
        "ome.multiscales[0].datasets[0].coordinateTransformations[0].scale"}}, r.message
    assert r.errors[0].message == "expected values finite and > 0, found [0.0]"


def test_v06_dataset_transform_type_and_missing_output():
    attrs = _image()
    t = _ms(attrs)["datasets"][0]["coordinateTransformations"][0]
    t["type"] = "affine"
    del _ms(attrs)["datasets"][1]["coordinateTransformations"][0]["output"]
    r = validate(attrs)
    fields = {e.field: e.message for e in r.errors}
    assert fields["ome.multiscales[0].datasets[0].coordinateTransformations[0].type"] == (
        "expected 'scale', 'identity' or a 'sequence' of one 'scale' and one 'translation', "
        "found 'affine'")
    assert fields["ome.multiscales[0].datasets[1].coordinateTransformations[0].output"] == (
        "is missing; expected this required field")
    _assert_voxzarr_form(r)


def test_v06_axis_types_and_units_strict():
    attrs = _image()
    axes = _ms(attrs)["coordinateSystems"][0]["axes"]
    axes[1]["unit"] = "um"
    del axes[0]["type"]  # untyped: a custom axis, before the space axes
    r = validate(attrs)
    assert r.valid and {w.rule for w in r.warnings} >= {"unit", "axis-type"}, r.message
    s = validate(attrs, strict=True)
    assert {"unit", "axis-type"} <= set(_errors(s)), s.message


def test_v06_flat_layout_is_not_06():
    attrs = _image()
    flat = {"multiscales": [{**_ms(attrs), "version": "0.6rc0"}]}
    r = validate(flat)
    assert r.version == "0.6rc0" and _errors(r) == {"ome-namespace": {"ome"}}, r.message


# ----------------------------------------------------------------------------- transforms
@pytest.mark.parametrize(("doc", "rule", "needle"), [
    (_doc({"in": "yx", "out": "yx"}, _tf("mapAxis", mapAxis=[0, 0])),
     "transform-params", "expected a permutation of 0..1"),
    (_doc({"in": "yx", "out": "zyx"}, _tf("scale", scale=[1.0, 2.0])),
     "transform-params", "expected input and output of the same dimension"),
    (_doc({"in": "yx", "out": "zyx"}, _tf("affine", affine=[[1, 0, 0], [0, 1, 0]])),
     "transform-params", "expected a 3x3 matrix"),
    (_doc({"in": "yx", "out": "yx"}, _tf("rotation", rotation=[[1, 1], [0, 1]])),
     "transform-params", "expected a rotation matrix"),
    (_doc({"in": "yx", "out": "yx"}, _tf("rotation", rotation=[[0, 1], [1, 0]])),
     "transform-params", "determinant -1"),
    (_doc({"in": "zyx", "out": "yx"}, _tf("projectAxis", droppedInputs=[0, 1])),
     "transform-params", "expected 3 input axes - 2 dropped"),
    (_doc({"in": "yx", "out": "zyx"}, _tf("bijection", forward={"type": "identity"},
                                          inverse={"type": "identity"})),
     "transform-params", "equal dimension for a bijection"),
    (_doc({"in": "yx", "out": "yx"}, _tf("sequence", transformations=[
        {"type": "sequence", "transformations": [{"type": "identity"}]}])),
     "transform-sequence", "expected no sequence inside a sequence"),
    (_doc({"in": "yx", "out": "yx"}, _tf("sequence", transformations=[])),
     "transform-sequence", "expected a non-empty list"),
    (_doc({"in": "yx", "out": "yx"}, _tf("identity", name="a"), _tf("identity", name="a")),
     "transform-names", "expected a name of its own"),
    (_doc({"in": "yx", "out": "yx"}, _tf("identity", dst="elsewhere")),
     "transform-refs", "expected the name of a coordinate system defined here"),
    (_doc({"in": "yx", "out": "yx"}, _tf("translation", translation=[1.0])),
     "transform-length", "has 1 values for 2 axes"),
    (_doc({"in": "yx", "out": "yx"}, _tf("sequence", transformations=[
        {"type": "translation", "translation": [1.0, 2.0]},
        {"type": "scale", "scale": [2.0, 3.0, 4.0]}])),
     "transform-length", "has 3 values for 2 axes"),
    (_doc({"in": "yx", "out": "yx"}, _tf("byDimension", transformations=[
        {"transformation": {"type": "scale", "scale": [2.0]},
         "inputAxes": [0], "outputAxes": [0]}])),
     "transform-params", "expected output axis 1 ('x') in exactly one child's outputAxes"),
    (_doc({"in": "yx", "out": "yx"}, _tf("inverseOf", transformation={"type": "identity"})),
     "schema", "expected one of ['identity', 'mapAxis'"),
])
def test_v06_transformation_rules(doc, rule, needle):
    r = validate(doc, kind="transformations")
    assert rule in _errors(r), r.message
    assert any(needle in e.message for e in r.errors if e.rule == rule), r.message
    _assert_voxzarr_form(r)


def test_transformations_document_is_detected(ngff_dir, capsys):
    path = ngff_dir / "dev-0.6rc0" / "examples" / "transformations" / "rotation.json"
    r = validate(path)
    assert r.valid and (r.version, r.kind) == ("0.6rc0", "transformations"), r.message
    assert main(["validate", str(path)]) == 0
    bad = ngff_dir / "dev-0.6rc0" / "examples" / "transformations" / "byDimensionInvalid2.json"
    assert main(["validate", str(bad)]) == 1
    assert "expected output axis 0 ('y') in exactly one child's outputAxes, found it in none" \
        in capsys.readouterr().out


def test_v06_good_transformations():
    doc = _doc({"in": "zyx", "out": "zyx", "yx": "yx"},
               _tf("rotation", rotation=[[0, -1, 0], [1, 0, 0], [0, 0, 1]]),
               _tf("affine", dst="yx", affine=[[0, 1, 0, 5], [0, 0, 1, 6]]),
               _tf("mapAxis", mapAxis=[2, 0, 1]),
               _tf("projectAxis", dst="yx", droppedInputs=[0]),
               _tf("sequence", transformations=[{"type": "scale", "scale": [1, 2, 3]},
                                                {"type": "affine",
                                                 "affine": [[1, 0, 0, 1], [0, 1, 0, 1]]}],
                   dst="yx"),
               _tf("bijection", forward={"type": "displacements", "path": "f"},
                   inverse={"type": "displacements", "path": "g"}))
    r = validate(doc, kind="transformations")
    assert r.valid and not r.issues and r.version == "0.6rc0", r.message


# ----------------------------------------------------------------------------- stores
def test_v06_reference_to_a_label_group(tmp_path):
    attrs = _image()
    _ms(attrs)["coordinateTransformations"].append(
        {"type": "identity", "input": {"path": "labels/cells", "name": "physical"},
         "output": {"name": "physical"}})
    path = _store(tmp_path, attrs)
    r = validate(path)
    assert _errors(r) == {"transform-path": {
        "ome.multiscales[0].coordinateTransformations[1].input"}}, r.message
    assert r.errors[0].message == ("expected a group with coordinate systems at "
                                   "'labels/cells', found nothing")
    # make the label image: a label of the same image, in a system of another name
    zarr.open_group(path / "labels", mode="w", zarr_format=3).attrs.update(
        {"ome": {"version": "0.6rc0", "labels": ["cells"]}})
    label = copy.deepcopy(_image())
    del _ms(label)["coordinateTransformations"]
    _ms(label)["coordinateSystems"][1]["name"] = "other"
    label["ome"]["image-label"] = {"colors": [{"label-value": 0}]}
    lpath = _store(path / "labels", label, "cells")
    assert lpath.exists()
    r = validate(path)
    assert r.valid, r.message
    # the named system must exist in the referenced group
    ref = _ms(attrs)["coordinateTransformations"][1]["input"]
    ref["name"] = "elsewhere"
    zarr.open_group(path, mode="r+", zarr_format=3).attrs.update(attrs)
    r = validate(path)
    assert _errors(r) == {"transform-refs": {
        "ome.multiscales[0].coordinateTransformations[1].input.name"}}, r.message


def test_v06_scene_walks_its_images(tmp_path):
    root = zarr.open_group(tmp_path / "scene.zarr", mode="w", zarr_format=3)
    root.attrs.update({"ome": {"version": "0.6rc0", "scene": {
        "coordinateSystems": [{"name": "world", "axes": [
            {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]}],
        "coordinateTransformations": [
            {"type": "translation", "translation": [0, 0, 16 * k],
             "input": {"path": f"tile_{k}", "name": "physical"},
             "output": {"name": "world"}} for k in range(2)]}}})
    _store(tmp_path / "scene.zarr", _image(), "tile_0")
    r = validate(tmp_path / "scene.zarr")
    assert r.kind == "scene"
    assert _errors(r) == {"transform-path": {"ome.scene.coordinateTransformations[1].input"}}
    bad = _image()
    _ms(bad)["datasets"][0]["coordinateTransformations"][0]["scale"] = [1.0, 1.0]
    _store(tmp_path / "scene.zarr", bad, "tile_1")
    r = validate(tmp_path / "scene.zarr")
    # the referenced image is validated too, and its issue names its own path
    assert [(e.rule, e.path) for e in r.errors] == [
        ("transform-length", f"{tmp_path / 'scene.zarr'}/tile_1")], r.message


def test_v06_displacement_field_array(tmp_path):
    attrs = _image()
    _ms(attrs)["coordinateTransformations"].append(
        {"type": "displacements", "path": "coordinateTransformations/dfield",
         "input": {"name": "physical"}, "output": {"name": "world"}})
    path = _store(tmp_path, attrs)
    fld = "ome.multiscales[0].coordinateTransformations[1].path"
    assert _errors(validate(path)) == {"transform-path": {fld}}
    g = zarr.open_group(path, mode="r+")
    g.create_array("coordinateTransformations/dfield", shape=(4, 4, 3), dtype="float32")
    r = validate(path)
    assert r.errors[0].message == ("expected an array of 4 dimensions at "
                                   "'coordinateTransformations/dfield', found 3")
    g.create_array("coordinateTransformations/dfield", shape=(4, 4, 4, 3), dtype="float32",
                   overwrite=True)
    assert validate(path).valid


def test_v06_array_ndim_and_zarr_format(tmp_path):
    path = _store(tmp_path, _image())
    g = zarr.open_group(path, mode="r+")
    g.create_array("1", shape=(16, 16), dtype="uint16", overwrite=True)
    r = validate(path)
    assert _errors(r) == {"array-ndim": {"ome.multiscales[0].datasets[1]"}}, r.message
    v2 = zarr.open_group(tmp_path / "v2.zarr", mode="w", zarr_format=2)
    for p, shape in (("0", (16, 32, 32)), ("1", (16, 16, 16))):
        v2.create_array(p, shape=shape, dtype="uint16")
    v2.attrs.update(_image())
    assert "zarr-format" in _errors(validate(tmp_path / "v2.zarr"))


# ----------------------------------------------------------------------------- versions
@pytest.mark.parametrize("version", ["0.6", "0.7", "1.0", "0.6rc1", "0.6.dev2", "0.3"])
def test_unsupported_version_is_no_verdict(tmp_path, version, capsys):
    attrs = _image()
    attrs["ome"]["version"] = version
    r = validate(attrs)
    assert r.status == "unsupported" and not r.valid
    assert [i.rule for i in r.issues] == ["unsupported-version"]
    assert r.message.startswith(f"unsupported NGFF {version} image: NGFF {version!r} is a "
                                "version validate cannot check; it checks 0.4, 0.5, 0.6rc0")
    assert "invalid" not in r.message
    path = _store(tmp_path, attrs)
    assert validate(path).status == "unsupported"
    assert main(["validate", str(path), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "unsupported" and out["valid"] is False


def test_not_a_version_is_invalid():
    attrs = _image()
    attrs["ome"]["version"] = "foo"
    r = validate(attrs)
    assert r.status == "invalid" and _errors(r) == {"version": {"ome.version"}}
    assert r.errors[0].message == "expected an NGFF version (0.4, 0.5, 0.6rc0), found 'foo'"


def test_unsupported_child_is_a_mixed_hierarchy(tmp_path):
    path = _store(tmp_path, _image())
    zarr.open_group(path / "labels", mode="w", zarr_format=3).attrs.update(
        {"ome": {"version": "0.7", "labels": ["x"]}})
    zarr.open_group(path, mode="r+").attrs.update(_image())
    # the image's walk reaches labels/ (voxzarr checks a labels group under any image)
    r = validate(path)
    assert r.status == "invalid" and "version-consistency" in _errors(r), r.message


def test_v06_labels_group_without_version(tmp_path):
    path = _store(tmp_path, _image())
    zarr.open_group(path / "labels", mode="w", zarr_format=3).attrs.update(
        {"ome": {"labels": []}})
    r = validate(path)
    assert [(e.rule, e.path, e.field, e.message) for e in r.errors] == [
        ("ome-namespace", f"{path}/labels", "ome.version", "is missing; expected '0.6rc0'")]


def test_version_argument():
    assert validate(_image(), version="0.6rc0").valid
    r = validate(_image(), version="0.5")
    assert not r.valid and "version" in _errors(r)
    with pytest.raises(vz.MetadataError, match=r"expected a version validate checks"):
        validate(_image(), version="0.6")


# ----------------------------------------------------------------------------- messages
def test_zarr_format_string_is_said_plainly(tmp_path):
    """zarr-python says "Expected one of 2 or 3. Got 2." for the string "2"."""
    (tmp_path / "a.zarr").mkdir()
    (tmp_path / "a.zarr" / ".zgroup").write_text('{"zarr_format": "2"}')
    r = validate(tmp_path / "a.zarr")
    assert [str(e) for e in r.errors] == [
        f"{tmp_path / 'a.zarr'}/.zgroup: zarr_format: expected 2 (an integer), found '2' "
        "(a string)"]
    assert r.errors[0].rule == "zarr-metadata"


def test_broken_array_metadata_is_not_reported_missing(tmp_path):
    path = _store(tmp_path, _image())
    doc = json.loads((path / "1" / "zarr.json").read_text())
    del doc["codecs"]
    doc["shape"] = [16, "16", 16]
    (path / "1" / "zarr.json").write_text(json.dumps(doc))
    r = validate(path)
    assert {(e.path, e.field) for e in r.errors} == {
        (f"{path}/1/zarr.json", "codecs"), (f"{path}/1/zarr.json", "shape")}, r.message
    _assert_voxzarr_form(r)


def test_pydantic_messages_are_rewritten():
    from ome_zarr_models.v05.image import ImageAttrs

    data = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "y", "type": 5}, {"name": "y", "type": "space"}],
        "datasets": []}]}
    with pytest.raises(ValidationError) as info:
        ImageAttrs.model_validate(data)
    msgs = [describe(e, str(e["msg"]).removeprefix("Value error, "))
            for e in info.value.errors()]
    assert "expected a string, found 5 (an integer)" in msgs
    assert "expected at least 1 items, found 0" in msgs
    assert all("expected" in m and ("found" in m or "missing" in m) for m in msgs)


def test_official_schema_messages_are_rewritten():
    attrs = _image()
    t = _ms(attrs)["datasets"][0]["coordinateTransformations"][0]
    t["type"] = "identity"
    t["input"] = "0"
    _ms(attrs)["coordinateSystems"][0]["axes"][0]["discrete"] = "yes"
    found = schema_findings(attrs, attrs["ome"], version="0.6rc0", kind="image", path="p")
    by_field = {f.field: f.message for f in found}
    base = "ome.multiscales[0]"
    assert by_field[f"{base}.datasets[0].coordinateTransformations[0].input"] == (
        "expected an object, found '0' (a string)")
    assert by_field[f"{base}.coordinateSystems[0].axes[0].discrete"] == (
        "expected a boolean, found 'yes' (a string)")
    assert all(f.path == "p" and f.rule == "ngff-schema" for f in found)


def test_example_file_validates_from_disk(ngff_dir):
    path = (ngff_dir / "dev-0.6rc0" / "examples" / "multiscales_strict"
            / "multiscales_example.json")
    r = validate(path, strict=True)
    assert r.valid and r.version == "0.6rc0", r.message
    assert load_json(path)["attributes"]["ome"]["version"] == "0.6rc0"


def test_v06_label_image_arrays(tmp_path):
    attrs = _image()
    attrs["ome"]["image-label"] = {"colors": [{"label-value": 1, "rgba": [0, 0, 0, 255]}]}
    path = _store(tmp_path, attrs)
    assert validate(path).kind == "label"
    g = zarr.open_group(path, mode="r+")
    for p, shape in (("0", (16, 32, 32)), ("1", (16, 16, 16))):
        g.create_array(p, shape=shape, dtype="float32", overwrite=True,
                       dimension_names=["z", "y", "x"])
    r = validate(path)
    assert _errors(r) == {"label-image": {"dtype"}}, r.message
    assert np.dtype("float32").name in r.errors[0].message
