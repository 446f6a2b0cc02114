"""voxzarr.validate: API, attribute checks, hierarchy walk with arrays, CLI."""

from __future__ import annotations

import copy
import json
import math
import shutil

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.errors import MetadataError, StoreError
from voxzarr.ngff import Axis, Level, Multiscale, multiscales_attrs, wrap_ome
from voxzarr.ngff.validate import RULES, Issue, ValidationResult, validate


# ----------------------------------------------------------------------------- helpers
def _image_attrs(version: str = "0.5", **ms_extra) -> dict:
    """Valid attributes of a two-level zyx image."""
    ms = {
        "name": "img", "type": "mean", "metadata": {"method": "test"},
        "axes": [{"name": "z", "type": "space", "unit": "micrometer"},
                 {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [
            {"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [2.0, 0.5, 0.5]}]},
            {"path": "1", "coordinateTransformations": [
                {"type": "scale", "scale": [2.0, 1.0, 1.0]},
                {"type": "translation", "translation": [0.0, 0.25, 0.25]}]},
        ],
        **ms_extra,
    }
    if version == "0.4":
        return {"multiscales": [{"version": "0.4", **ms}]}
    return {"ome": {"version": "0.5", "multiscales": [ms]}}


def _ms(attrs: dict) -> dict:
    return (attrs["ome"] if "ome" in attrs else attrs)["multiscales"][0]


def _errors(r: ValidationResult) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in r.errors:
        out.setdefault(e.rule, set()).add(e.field)
    return out


def _levels(dtype: str = "uint16", label: bool = False) -> xr.DataTree:
    """Two pyramid levels (16, 32, 32) and (16, 16, 16) with pixel-centre geometry."""
    rng = np.random.default_rng(0)
    a0 = rng.integers(0, 5 if label else 1000, size=(16, 32, 32)).astype(dtype)
    a1 = a0[:, ::2, ::2]
    l0 = vz.from_array(a0, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    l1 = vz.from_array(a1, "zyx", voxel_size={"z": 2.0, "y": 1.0, "x": 1.0},
                       translation={"y": 0.25, "x": 0.25})
    return xr.DataTree.from_dict({"0": xr.Dataset({"image": l0}),
                                  "1": xr.Dataset({"image": l1})})


@pytest.fixture(params=["0.5", "0.4"])
def store(request, tmp_path):
    """A voxzarr-written two-level image with a label image, per NGFF version."""
    path = tmp_path / f"img{request.param}.ome.zarr"
    vz.to_ome_zarr(_levels(), path, version=request.param,
                   labels={"cells": _levels("uint8", label=True)}, progress=False)
    return path


def _set_attrs(group_path, version: str, fn) -> None:
    g = zarr.open_group(group_path, mode="r+")
    attrs = g.attrs.asdict()
    fn(attrs["ome"] if version == "0.5" else attrs)
    g.attrs.clear()
    g.attrs.update(attrs)


# ----------------------------------------------------------------------------- API
def test_result_api_valid():
    r = validate(_image_attrs(), strict=True)
    assert isinstance(r, ValidationResult) and r and r.valid
    assert (r.version, r.kind, r.path, r.issues) == ("0.5", "image", None, ())
    assert r.message == "valid NGFF 0.5 image"
    assert r.to_dict() == {"valid": True, "status": "valid", "message": "valid NGFF 0.5 image",
                           "version": "0.5", "kind": "image", "issues": []}
    r.raise_for_errors()  # nothing to raise


def test_result_api_invalid_names_path_and_field():
    attrs = _image_attrs()
    _ms(attrs)["datasets"][1]["coordinateTransformations"][0]["scale"] = [2.0, 1.0]
    r = validate(attrs)
    assert not r and r.errors == r.issues[:1]
    e = r.errors[0]
    assert isinstance(e, Issue)
    assert (e.rule, e.severity, e.source, e.path) == ("transform-length", "error", "voxzarr",
                                                      None)
    assert e.field == "ome.multiscales[0].datasets[1].coordinateTransformations[0].scale"
    assert e.message == "has 2 values for 3 axes; expected 3, one per axis"
    assert str(e) == f"{e.field}: {e.message}"
    assert r.message.splitlines() == ["invalid NGFF 0.5 image: 1 error",
                                      f"  error: {e.field}: {e.message}"]
    with pytest.raises(MetadataError) as info:
        validate(attrs, raise_on_error=True)
    assert info.value.field == e.field and "has 2 values for 3 axes" in str(info.value)


def test_raise_on_error_counts_more_errors(tmp_path):
    attrs = _image_attrs("0.4")
    _ms(attrs)["datasets"][0]["coordinateTransformations"][0]["scale"][2] = 0
    _ms(attrs)["datasets"][1]["coordinateTransformations"][1]["translation"][2] = math.inf
    with pytest.raises(MetadataError, match=r"and 1 more error\)"):
        validate(attrs, raise_on_error=True)


def test_missing_store_is_store_error(tmp_path):
    r = validate(tmp_path / "nope.ome.zarr")
    assert not r.valid and [e.rule for e in r.errors] == ["store"]
    with pytest.raises(StoreError) as info:
        validate(tmp_path / "nope.ome.zarr", raise_on_error=True)
    assert info.value.path.endswith("nope.ome.zarr")


@pytest.mark.parametrize(("kw", "fld"), [({"version": "0.3"}, "version"),
                                        ({"kind": "movie"}, "kind")])
def test_bad_arguments(kw, fld):
    with pytest.raises(MetadataError) as info:
        validate(_image_attrs(), **kw)
    assert info.value.field == fld


def test_rules_table_is_documented():
    text = (__import__("pathlib").Path(__file__).parents[2] / "spec" / "validation.md")
    doc = text.read_text()
    missing = [r for r in RULES if f"`{r}`" not in doc]
    assert missing == []


# ----------------------------------------------------------------------------- attributes
@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan"), float("inf")])
def test_scale_must_be_finite_positive(version, bad):
    attrs = _image_attrs(version)
    _ms(attrs)["datasets"][0]["coordinateTransformations"][0]["scale"][1] = bad
    r = validate(attrs)
    base = "ome." if version == "0.5" else ""
    assert _errors(r) == {"transform-values": {
        f"{base}multiscales[0].datasets[0].coordinateTransformations[0].scale"}}, r.message
    assert "finite and > 0" in r.errors[0].message


def test_translation_before_scale():
    attrs = _image_attrs()
    cts = _ms(attrs)["datasets"][1]["coordinateTransformations"]
    cts.reverse()
    r = validate(attrs)
    assert _errors(r) == {"transform-order": {
        "ome.multiscales[0].datasets[1].coordinateTransformations"}}, r.message
    assert "'translation' must come after the 'scale'" in r.errors[0].message
    # a second translation is just as wrong
    cts.reverse()
    cts.append({"type": "translation", "translation": [0.0, 0.0, 0.0]})
    assert _errors(validate(attrs)) == {"transform-order": {
        "ome.multiscales[0].datasets[1].coordinateTransformations"}}


def test_axes_out_of_order():
    attrs = _image_attrs()
    _ms(attrs)["axes"].insert(1, {"name": "t", "type": "time", "unit": "second"})
    for ds in _ms(attrs)["datasets"]:
        for t in ds["coordinateTransformations"]:
            vec = t[t["type"]]
            vec.insert(1, 1.0 if t["type"] == "scale" else 0.0)
    r = validate(attrs)
    assert _errors(r) == {"axes-order": {"ome.multiscales[0].axes"}}, r.message
    assert "time, then channel (or custom), then space" in r.errors[0].message


def test_two_time_axes():
    attrs = _image_attrs("0.4")
    _ms(attrs)["axes"][0] = {"name": "t", "type": "time"}
    _ms(attrs)["axes"].insert(0, {"name": "t2", "type": "time"})
    for ds in _ms(attrs)["datasets"]:
        for t in ds["coordinateTransformations"]:
            t[t["type"]].insert(0, 1.0 if t["type"] == "scale" else 0.0)
    assert "axes-count" in _errors(validate(attrs))


def test_unit_abbreviation_warns_then_fails_strict():
    attrs = _image_attrs()
    _ms(attrs)["axes"][2]["unit"] = "um"
    r = validate(attrs)
    assert r.valid and [(w.rule, w.field) for w in r.warnings] == [
        ("unit", "ome.multiscales[0].axes[2].unit")]
    s = validate(attrs, strict=True)
    assert not s.valid and _errors(s) == {"unit": {"ome.multiscales[0].axes[2].unit"}}
    assert "expected a UDUNITS unit name" in s.errors[0].message
    assert "found 'um'" in s.errors[0].message
    assert "write 'micrometer'" in s.errors[0].message


@pytest.mark.parametrize(("unit", "hint"), [("furlong", None), ("second", "not a space unit"),
                                            ("micron", "write 'micrometer'")])
def test_unknown_or_wrong_kind_unit_fails_strict(unit, hint):
    attrs = _image_attrs("0.4")
    _ms(attrs)["axes"][0]["unit"] = unit
    r = validate(attrs, strict=True)
    assert _errors(r) == {"unit": {"multiscales[0].axes[0].unit"}}
    if hint:
        assert hint in r.errors[0].message


def test_levels_out_of_resolution_order():
    attrs = _image_attrs()
    _ms(attrs)["datasets"].reverse()
    r = validate(attrs)
    assert "levels-order" in _errors(r), r.message


def test_duplicate_dataset_paths():
    attrs = _image_attrs("0.4")
    _ms(attrs)["datasets"][1]["path"] = "0"
    assert _errors(validate(attrs)) == {"dataset-paths": {"multiscales[0].datasets[1].path"}}


def test_flat_attrs_checked_as_05_need_ome():
    r = validate(_image_attrs("0.4"), version="0.5")
    assert not r.valid and "ome-namespace" in _errors(r)


def test_05_attrs_without_version():
    attrs = _image_attrs()
    del attrs["ome"]["version"]
    r = validate(attrs)
    assert _errors(r) == {"ome-namespace": {"ome.version"}}, r.message


def test_labels_group_05_needs_version():
    assert validate({"ome": {"version": "0.5", "labels": ["cells"]}}).valid
    r = validate({"ome": {"labels": ["cells"]}})
    assert not r.valid and r.kind == "labels"
    assert _errors(r) == {"ome-namespace": {"ome.version"}}


def test_zarr_json_document_is_unwrapped():
    doc = {"zarr_format": 3, "node_type": "group", "attributes": _image_attrs()}
    assert validate(doc).valid
    arr = {"zarr_format": 3, "node_type": "array", "attributes": {}}
    assert _errors(validate(arr)) == {"not-ngff": {"node_type"}}


def test_no_ngff_metadata():
    r = validate({"foo": 1})
    assert _errors(r) == {"not-ngff": {""}} and r.kind is None


def test_old_versions_are_reported():
    r = validate({"multiscales": [{"version": "0.3", "axes": ["y", "x"],
                                   "datasets": [{"path": "0"}]}]})
    assert not r.valid and r.version == "0.3"
    assert "voxzarr upgrade" in r.errors[0].message


def test_plate_well_path_and_acquisitions():
    plate = {"ome": {"version": "0.5", "plate": {
        "name": "p", "columns": [{"name": "1"}, {"name": "2"}], "rows": [{"name": "A"}],
        "acquisitions": [{"id": 0, "name": "a", "maximumfieldcount": 1},
                         {"id": 0, "name": "b", "maximumfieldcount": 1}],
        "wells": [{"path": "A/2", "rowIndex": 0, "columnIndex": 0},
                  {"path": "A/1", "rowIndex": 0, "columnIndex": 5}]}}}
    r = validate(plate, strict=True)
    assert _errors(r) == {
        "plate-well-path": {"ome.plate.wells[0].path", "ome.plate.wells[1].columnIndex"},
        "plate-acquisitions": {"ome.plate.acquisitions[1].id"}}, r.message


def test_ome_zarr_models_only_findings_are_kept():
    # ome-zarr-models rejects a non-hex colour string; voxzarr reports it as its own rule
    attrs = _image_attrs()
    attrs["ome"]["omero"] = {"channels": [{"color": "red", "window": {
        "start": 0, "end": 1, "min": 0, "max": 1}}]}
    r = validate(attrs)
    assert _errors(r) == {"omero-color": {"ome.omero.channels[0].color"}}
    assert all(i.source == "voxzarr" for i in r.issues)


def test_ome_zarr_models_crash_is_not_a_verdict():
    # scale vectors of different lengths crash ome-zarr-models' level-order check
    attrs = _image_attrs()
    _ms(attrs)["datasets"][1]["coordinateTransformations"] = [
        {"type": "scale", "scale": [2.0, 1.0]}]
    r = validate(attrs)
    assert _errors(r) == {"transform-length": {
        "ome.multiscales[0].datasets[1].coordinateTransformations[0].scale"}}


# property: anything voxzarr's own emitter writes from a valid geometry validates; breaking
# one scale value is always caught and named
@st.composite
def _multiscale(draw):
    dims = draw(st.sampled_from(["yx", "zyx", "czyx", "tzyx", "tcyx", "tczyx"]))
    n_levels = draw(st.integers(1, 4))
    base = {d: draw(st.floats(0.01, 100)) for d in dims if d != "c"}
    levels = []
    for k in range(n_levels):
        f = 2 ** k
        scale = tuple(1.0 if d == "c" else base[d] * (f if d in "yx" else 1) for d in dims)
        trans = tuple((f - 1) * base[d] / 2 if d in "yx" else 0.0 for d in dims)
        levels.append(Level(str(k), scale, trans))
    axes = tuple(Axis(d, {"t": "time", "c": "channel"}.get(d, "space"),
                      {"t": "second", "c": None}.get(d, "micrometer")) for d in dims)
    return Multiscale(version="0.5", axes=axes, levels=tuple(levels), name="x")


@settings(max_examples=40, deadline=None)
@given(ms=_multiscale(), version=st.sampled_from(["0.4", "0.5"]), data=st.data())
def test_emitted_metadata_validates(ms, version, data):
    attrs = wrap_ome(multiscales_attrs(ms, version), version)
    r = validate(attrs, version=version, strict=True)
    assert r.valid and not r.issues, r.message
    bad = copy.deepcopy(attrs)
    lv = data.draw(st.integers(0, len(ms.levels) - 1))
    ax = data.draw(st.integers(0, len(ms.axes) - 1))
    value = data.draw(st.sampled_from([0.0, -1.0, math.nan]))
    _ms(bad)["datasets"][lv]["coordinateTransformations"][0]["scale"][ax] = value
    errs = _errors(validate(bad, version=version))
    assert "transform-values" in errs
    base = "ome." if version == "0.5" else ""
    assert f"{base}multiscales[0].datasets[{lv}].coordinateTransformations[0].scale" in \
        errs["transform-values"]


# ----------------------------------------------------------------------------- stores
def test_voxzarr_written_stores_validate(store):
    r = validate(store)
    assert r.valid and not r.errors, r.message
    version = "0.4" if "0.4" in store.name else "0.5"
    assert (r.version, r.kind) == (version, "image")
    assert validate(str(store), schema_only=True).valid
    assert validate(zarr.open_group(store, mode="r")).valid


def test_zip_and_memory_stores(tmp_path):
    img = vz.from_array(np.zeros((4, 32, 32), "uint8"), "zyx", voxel_size=1.0)
    img.vox.to_ome_zarr(tmp_path / "img.ome.zarr.zip", progress=False)
    r = vz.validate(tmp_path / "img.ome.zarr.zip")
    assert r.valid and r.kind == "image", r.message
    mem = zarr.storage.MemoryStore()
    vz.to_ome_zarr(img, mem, version="0.4", progress=False)
    r = vz.validate(mem)
    assert r.valid and r.version == "0.4" and r.path.startswith("memory://"), r.message
    assert vz.validate is validate


def test_voxzarr_written_stores_walk_labels(store):
    # the label image is visited: its warnings name its own path
    version = "0.4" if "0.4" in store.name else "0.5"
    _set_attrs(store / "labels" / "cells", version,
               lambda a: a["multiscales"][0]["axes"][2].update(unit="um"))
    r = validate(store)
    assert r.valid and [(w.path, w.rule) for w in r.warnings] == [
        (f"{store}/labels/cells", "unit")], r.message


def test_missing_level_array(store):
    shutil.rmtree(store / "1")
    r = validate(store)
    base = "ome." if "0.5" in store.name else ""
    assert _errors(r) == {"array-missing": {f"{base}multiscales[0].datasets[1].path"}}
    assert r.errors[0].path == str(store)
    assert r.errors[0].message == "expected level array '1', found nothing at that path"


def test_levels_of_different_dtype(store):
    g = zarr.open_group(store, mode="r+")
    old = g["1"]
    kw = {"dimension_names": old.metadata.dimension_names} if old.metadata.zarr_format == 3 \
        else {}
    g.create_array("1", shape=old.shape, dtype="float32", chunks=old.chunks, overwrite=True,
                   **kw)
    r = validate(store)
    base = "ome." if "0.5" in store.name else ""
    assert _errors(r) == {"array-dtype": {f"{base}multiscales[0].datasets"}}, r.message
    assert "float32" in r.errors[0].message and "uint16" in r.errors[0].message


def test_array_ndim_and_shape_order(store):
    g = zarr.open_group(store, mode="r+")
    fmt = g.metadata.zarr_format
    kw3 = (lambda names: {"dimension_names": names}) if fmt == 3 else (lambda names: {})
    g.create_array("1", shape=(16, 64, 64), dtype="uint16", overwrite=True,
                   **kw3(["z", "y", "x"]))
    base = "ome." if fmt == 3 else ""
    assert _errors(validate(store)) == {"array-shape-order": {
        f"{base}multiscales[0].datasets[1].path"}}
    g.create_array("1", shape=(16, 16), dtype="uint16", overwrite=True, **kw3(["y", "x"]))
    errs = _errors(validate(store))
    assert errs.get("array-ndim") == {f"{base}multiscales[0].datasets[1]"}


def test_dimension_names_mismatch(tmp_path):
    path = tmp_path / "img.ome.zarr"
    vz.to_ome_zarr(_levels(), path, progress=False)
    g = zarr.open_group(path, mode="r+")
    g.create_array("1", shape=(16, 16, 16), dtype="uint16", overwrite=True,
                   dimension_names=["z", "x", "y"])
    r = validate(path)
    assert _errors(r) == {"dimension-names": {"dimension_names"}}
    assert r.errors[0].path == f"{path}/1"
    assert r.errors[0].message == "expected the axes ['z', 'y', 'x'], found ['z', 'x', 'y']"
    g.create_array("1", shape=(16, 16, 16), dtype="uint16", overwrite=True)
    assert "is missing" in validate(path).errors[0].message


def test_05_labels_group_without_version(tmp_path):
    path = tmp_path / "img.ome.zarr"
    vz.to_ome_zarr(_levels(), path, labels={"cells": _levels("uint8", True)},
                   progress=False)
    _set_attrs(path / "labels", "0.5", lambda ome: ome.pop("version"))
    r = validate(path)
    assert _errors(r) == {"ome-namespace": {"ome.version"}}, r.message
    assert r.errors[0].path == f"{path}/labels"


def test_label_image_dtype_and_levels(store):
    version = "0.4" if "0.4" in store.name else "0.5"
    g = zarr.open_group(store / "labels" / "cells", mode="r+")
    kw = {"dimension_names": ["z", "y", "x"]} if version == "0.5" else {}
    g.create_array("0", shape=(16, 32, 32), dtype="float32", overwrite=True, **kw)
    g.create_array("1", shape=(16, 16, 16), dtype="float32", overwrite=True, **kw)
    r = validate(store)
    assert set(_errors(r)) == {"label-image"}
    assert all("integer dtype" in e.message for e in r.errors) and len(r.errors) == 2
    # one level fewer than the image it labels
    _set_attrs(store / "labels" / "cells", version,
               lambda a: a["multiscales"][0]["datasets"].pop())
    r = validate(store)
    base = "ome." if version == "0.5" else ""
    assert f"{base}multiscales[0].datasets" in _errors(r)["label-image"]


def test_label_listed_but_missing(store):
    shutil.rmtree(store / "labels" / "cells")
    r = validate(store)
    base = "ome." if "0.5" in store.name else ""
    assert _errors(r) == {"labels-group": {f"{base}labels[0]"}}


def test_zarr_format_must_match_version(tmp_path):
    path = tmp_path / "img.zarr"
    g = zarr.open_group(path, mode="w", zarr_format=3)
    g.create_array("0", shape=(16, 32, 32), dtype="uint16")
    g.create_array("1", shape=(16, 16, 16), dtype="uint16")
    attrs = _image_attrs("0.4")
    g.attrs.update(attrs)
    r = validate(path)
    assert r.version == "0.4" and set(_errors(r)) == {"zarr-format"}


@pytest.mark.parametrize("name", ["fake-series-2.zarr", "plate-rows-2.zarr"])
def test_bioformats2raw_data_validates(data_dir, name):
    r = validate(data_dir / "ome-zarr" / "v0.4-bioformats2raw" / name)
    assert r.valid and not r.errors, r.message
    assert (r.version, r.kind) == ("0.4", "bioformats2raw")


def test_bioformats2raw_series_are_walked(data_dir, tmp_path):
    src = data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "fake-series-2.zarr"
    dst = tmp_path / "series.zarr"
    shutil.copytree(src, dst)
    attrs = json.loads((dst / "1" / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["scale"] = [1, 1]
    (dst / "1" / ".zattrs").write_text(json.dumps(attrs))
    r = validate(dst)
    assert [(e.rule, e.path) for e in r.errors] == [("transform-length", f"{dst}/1")]
    shutil.rmtree(dst / "1")
    r = validate(dst)
    assert [(e.rule, e.field) for e in r.errors] == [("bf2raw-series", "OME series[1]")]


def test_plate_wells_and_fields_are_walked(data_dir, tmp_path):
    src = data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "plate-rows-2.zarr"
    dst = tmp_path / "plate.zarr"
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "B" / "1" / "0" / "1")
    r = validate(dst)
    assert [(e.rule, e.path) for e in r.errors] == [("array-missing", f"{dst}/B/1/0")]
    well = json.loads((dst / "A" / "1" / ".zattrs").read_text())
    well["well"]["images"][0]["acquisition"] = 7
    (dst / "A" / "1" / ".zattrs").write_text(json.dumps(well))
    shutil.rmtree(dst / "B")
    r = validate(dst)
    assert {(e.rule, e.path) for e in r.errors} == {
        ("plate-acquisitions", f"{dst}/A/1"), ("hcs-hierarchy", str(dst))}


def test_05_keys_outside_ome():
    attrs = _image_attrs()
    attrs["image-label"] = {"colors": [{"label-value": 1}]}
    r = validate(attrs)
    assert _errors(r) == {"ome-namespace": {"image-label"}}
    assert r.errors[0].message.startswith("expected under 'ome', found at the top level")


# ----------------------------------------------------------------------------- interop
def test_ome_zarr_py_05_labels_group_lacks_version(tmp_path):
    """ome-zarr-py 0.18 writes a 0.5 labels group without ome.version (FACTS.md)."""
    writer = pytest.importorskip("ome_zarr.writer")
    g = zarr.open_group(tmp_path / "oz.zarr", mode="w", zarr_format=3)
    writer.write_image(np.zeros((8, 64, 64), "uint16"), g, axes="zyx")
    writer.write_labels(np.zeros((8, 64, 64), "uint8"), g, name="cells", axes="zyx")
    attrs = zarr.open_group(tmp_path / "oz.zarr" / "labels", mode="r").attrs.asdict()
    if "version" in attrs.get("ome", {}):
        pytest.skip("this ome-zarr version writes ome.version on labels groups")
    r = validate(tmp_path / "oz.zarr")
    assert [(e.rule, e.path, e.field) for e in r.errors] == [
        ("ome-namespace", f"{tmp_path / 'oz.zarr'}/labels", "ome.version")]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ngff_zarr_output_validates(tmp_path, version):
    nz = pytest.importorskip("ngff_zarr")
    img = nz.to_ngff_image(np.zeros((8, 64, 64), "uint16"), dims=["z", "y", "x"],
                           scale={"z": 2.0, "y": 0.5, "x": 0.5})
    nz.to_ngff_zarr(tmp_path / "nz.zarr", nz.to_multiscales(img, scale_factors=[2]),
                    version=version)
    r = validate(tmp_path / "nz.zarr")
    assert r.valid and r.version == version and not r.errors, r.message


# ----------------------------------------------------------------------------- CLI
def test_cli_json_valid(store, capsys):
    assert main(["validate", str(store), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and isinstance(out["message"], str)
    assert out["message"].startswith("valid NGFF")


def test_cli_invalid_exit_1(store, capsys):
    shutil.rmtree(store / "0")
    assert main(["validate", str(store), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and out["status"] == "invalid"
    assert "expected level array '0', found nothing" in out["message"]
    assert out["issues"][0]["rule"] == "array-missing"
    assert main(["validate", str(store)]) == 1
    assert capsys.readouterr().out.startswith("invalid NGFF")


def test_cli_json_file_and_flags(tmp_path, capsys):
    attrs = _image_attrs()
    _ms(attrs)["axes"][0]["unit"] = "um"
    p = tmp_path / "zarr.json"
    p.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    assert main(["validate", str(p)]) == 0
    assert main(["validate", str(p), "--strict"]) == 1
    assert main(["validate", str(p), "--ngff-version", "0.4", "--kind", "image"]) == 1
    assert "write 'micrometer'" in capsys.readouterr().out
