"""vz.upgrade: NGFF 0.4 / zarr v2 -> NGFF 0.5 / zarr v3 with sharding, metadata kept whole."""

from __future__ import annotations

import importlib
import math
import time

import numcodecs
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.convert.upgrade import auto_shards, upgrade_attrs
from voxzarr.errors import ConversionError, OverwriteError


def _ms(paths=("0",), scales=((1.0, 0.5, 0.5),), unit="micrometer", **extra):
    return {"version": "0.4", "name": "img",
            "axes": [{"name": d, "type": "space", "unit": unit} for d in "zyx"],
            "datasets": [{"path": p, "coordinateTransformations": [
                {"type": "scale", "scale": list(s)}]} for p, s in zip(paths, scales, strict=True)],
            **extra}


# --------------------------------------------------------------------------- attributes
def test_upgrade_attrs_image_keeps_everything():
    omero = {"channels": [{"label": "a", "color": "FF0000"}], "rdefs": {"model": "color"},
             "version": "0.4"}
    attrs = {"multiscales": [_ms(metadata={"method": "mean"}, type="gaussian")],
             "omero": omero, "custom": {"x": 1}}
    out = upgrade_attrs(attrs)
    assert out["custom"] == {"x": 1}
    ome = out["ome"]
    assert ome["version"] == "0.5" and ome["omero"] == omero
    ms = ome["multiscales"][0]
    assert "version" not in ms
    assert ms["metadata"] == {"method": "mean"} and ms["type"] == "gaussian"
    assert ms["datasets"] == attrs["multiscales"][0]["datasets"]


def test_upgrade_attrs_normalises_units():
    out = upgrade_attrs({"multiscales": [_ms(unit="µm")]})
    assert {a["unit"] for a in out["ome"]["multiscales"][0]["axes"]} == {"micrometer"}


def test_upgrade_attrs_labels_plate_well_bf2raw():
    assert upgrade_attrs({"labels": ["cells"]}) == {"ome": {"version": "0.5",
                                                            "labels": ["cells"]}}
    lab = upgrade_attrs({"multiscales": [_ms()], "image-label": {
        "version": "0.4", "colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}]}})
    assert lab["ome"]["image-label"] == {"colors": [{"label-value": 1,
                                                     "rgba": [255, 0, 0, 255]}]}
    plate = {"version": "0.4", "rows": [{"name": "A"}], "columns": [{"name": "1"}],
             "wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0}]}
    out = upgrade_attrs({"plate": plate, "bioformats2raw.layout": 3})
    assert out["ome"]["bioformats2raw.layout"] == 3
    assert out["ome"]["plate"] == {k: v for k, v in plate.items() if k != "version"}
    assert upgrade_attrs({"well": {"version": "0.4", "images": [{"path": "0"}]}}) == {
        "ome": {"version": "0.5", "well": {"images": [{"path": "0"}]}}}
    # "series" is OME metadata only in the bioformats2raw OME/ group
    assert upgrade_attrs({"series": ["0"]}, is_ome_group=True) == {
        "ome": {"version": "0.5", "series": ["0"]}}
    assert upgrade_attrs({"series": ["0"]}) == {"series": ["0"]}


def test_upgrade_attrs_legacy_builds_axes_and_transforms():
    attrs = {"multiscales": [{"version": "0.2", "datasets": [{"path": "0"}, {"path": "1"}],
                              "name": "old"}]}
    out = upgrade_attrs(attrs, shapes=[(1, 1, 4, 32, 32), (1, 1, 4, 16, 16)])
    ms = out["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == list("tczyx") and ms["name"] == "old"
    t1 = ms["datasets"][1]["coordinateTransformations"]
    assert t1[0] == {"type": "scale", "scale": [1.0, 1.0, 1.0, 2.0, 2.0]}
    assert t1[1] == {"type": "translation", "translation": [0.0, 0.0, 0.0, 0.5, 0.5]}


def test_upgrade_attrs_refuses_05():
    with pytest.raises(ConversionError):
        upgrade_attrs({"ome": {"version": "0.5", "multiscales": []}})


def test_auto_shards():
    # 4 MiB chunks of uint16 grow to ~128 MiB shards over z, y, x; channels stay single
    sh = auto_shards((1, 3, 512, 2048, 2048), (1, 1, 64, 128, 128), 2, dims="tczyx")
    assert sh[:2] == (1, 1) and all(s % c == 0 for s, c in
                                    zip(sh, (1, 1, 64, 128, 128), strict=True))
    assert 64 << 20 < math.prod(sh) * 2 <= 128 << 20
    # never beyond the (chunk-padded) array
    assert auto_shards((10, 10), (4, 4), 1) == (12, 12)


# --------------------------------------------------------------------------- stores
@pytest.fixture
def store04(tmp_path):
    """A 0.4 image with a 2-level pyramid, omero, labels, and extra attributes."""
    data = np.random.default_rng(0).integers(0, 3000, (2, 12, 40, 50)).astype("uint16")
    img = vz.from_array(data, "czyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5},
                        channel_names=["dapi", "gfp"])
    lab = vz.from_array((data[0] > 1500).astype("uint8"), "zyx",
                        voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    path = tmp_path / "in.zarr"
    vz.to_ome_zarr(img, path, version="0.4", chunks={"c": 1, "z": 4, "y": 16, "x": 16},
                   labels={"cells": lab})
    # a second level and foreign attributes, as other writers leave them
    g = zarr.open_group(path, mode="r+")
    lv1 = g.create_array("1", shape=(2, 12, 20, 25), chunks=(1, 4, 16, 16), dtype="uint16",
                         compressors=numcodecs.Blosc("zstd", 3, numcodecs.Blosc.SHUFFLE),
                         chunk_key_encoding={"name": "v2", "separator": "/"})
    lv1[:] = data[:, :, ::2, ::2]
    lv1.attrs["note"] = "level one"
    attrs = g.attrs.asdict()
    attrs["multiscales"][0]["datasets"].append({"path": "1", "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, 2.0, 1.0, 1.0]},
        {"type": "translation", "translation": [0.0, 0.0, 0.25, 0.25]}]})
    attrs["multiscales"][0]["metadata"] = {"method": "stride"}
    attrs["acquisition"] = {"microscope": "lightsheet"}
    g.attrs.put(attrs)
    lab_g = g["labels/cells"]  # labels need as many levels as their image
    lab_g.create_array("1", shape=(12, 20, 25), chunks=(4, 16, 16), dtype="uint8",
                       chunk_key_encoding={"name": "v2", "separator": "/"})[:] = \
        (data[0, :, ::2, ::2] > 1500)
    lattrs = lab_g.attrs.asdict()
    lattrs["multiscales"][0]["datasets"].append({"path": "1", "coordinateTransformations": [
        {"type": "scale", "scale": [2.0, 1.0, 1.0]},
        {"type": "translation", "translation": [0.0, 0.25, 0.25]}]})
    lab_g.attrs.put(lattrs)
    return path, data


def test_upgrade_image_with_labels(store04, tmp_path):
    src, data = store04
    out = vz.upgrade(src, tmp_path / "out.zarr", shards=(1, 8, 32, 32))
    root = zarr.open_group(out, mode="r")
    assert root.metadata.zarr_format == 3
    assert root.attrs["acquisition"] == {"microscope": "lightsheet"}
    ome = root.attrs["ome"]
    assert ome["multiscales"][0]["metadata"] == {"method": "stride"}
    assert [ch["label"] for ch in ome["omero"]["channels"]] == ["dapi", "gfp"]
    assert root["labels"].attrs["ome"] == {"version": "0.5", "labels": ["cells"]}
    assert "image-label" in root["labels/cells"].attrs["ome"]
    arr = root["0"]
    assert arr.chunks == (1, 4, 16, 16) and arr.shards == (1, 8, 32, 32)
    assert arr.metadata.dimension_names == ("c", "z", "y", "x")
    assert root["1"].attrs["note"] == "level one"
    for level in (0, 1):
        a, b = vz.open_image(src, level), vz.open_image(out, level)
        assert a.vox.scale == b.vox.scale and a.vox.origin == b.vox.origin
        np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(vz.open_image(out, label="cells").values,
                                  (data[0] > 1500).astype("uint8"))
    assert vz.validate(out).valid


def test_upgrade_auto_and_no_shards(store04, tmp_path):
    src, data = store04
    auto = zarr.open_group(vz.upgrade(src, tmp_path / "a.zarr"), mode="r")["0"]
    assert auto.shards is not None and auto.chunks == (1, 4, 16, 16)
    plain = zarr.open_group(vz.upgrade(src, tmp_path / "p.zarr", shards=None), mode="r")["0"]
    assert plain.shards is None
    np.testing.assert_array_equal(auto[:], data)
    np.testing.assert_array_equal(plain[:], data)


def test_interrupted_upgrade_leaves_nothing(store04, tmp_path, monkeypatch):
    src, _ = store04
    # the package re-exports the function under the module's name: fetch the module itself
    up = importlib.import_module("voxzarr.convert.upgrade")
    calls = {"n": 0}
    real = up._copy_units

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        time.sleep(0.2)  # other tasks are still writing when the failure surfaces
        return real(*args)

    monkeypatch.setattr(up, "_copy_units", flaky)
    with pytest.raises(KeyboardInterrupt):
        vz.upgrade(src, tmp_path / "out.zarr", shards=(1, 4, 16, 16))
    time.sleep(0.5)  # a task that outlived the failure would have written by now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]


def test_upgrade_guards(store04, tmp_path):
    src, _ = store04
    out = vz.upgrade(src, tmp_path / "o.zarr")
    with pytest.raises(OverwriteError):
        vz.upgrade(src, out)
    vz.upgrade(src, out, overwrite=True)
    with pytest.raises(ConversionError, match="already zarr v3"):
        vz.upgrade(out, tmp_path / "again.zarr")


def test_cli_upgrade(store04, tmp_path, capsys):
    src, data = store04
    out = tmp_path / "cli.zarr"
    assert main(["upgrade", str(src), str(out), "--shards", "z=8,y=32,x=32",
                 "--no-progress"]) == 0
    arr = zarr.open_group(out, mode="r")["0"]
    assert arr.shards == (1, 8, 32, 32)
    np.testing.assert_array_equal(arr[:], data)
    assert main(["upgrade", str(src), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


_CODECS = {
    "blosc": lambda: numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
    "zstd": lambda: numcodecs.Zstd(level=1),
    "gzip": lambda: numcodecs.GZip(level=1),
    "none": lambda: None,
    "zlib": lambda: numcodecs.Zlib(level=1),  # no zarr v3 twin: decoded and re-encoded
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(st.integers(1, 23), min_size=2, max_size=3),
    data=st.data(),
    codec=st.sampled_from(sorted(_CODECS)),
    dtype=st.sampled_from(["<u2", ">u2", "<f4", "u1"]),
    order=st.sampled_from(["C", "F"]),
    delta=st.booleans(),
)
def test_upgrade_any_v2_array(tmp_path_factory, shape, data, codec, dtype, order, delta):
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    shards = tuple(c * data.draw(st.integers(1, 3)) for c in chunks)
    dims = "zyx"[-len(shape):]
    tmp = tmp_path_factory.mktemp("up")
    g = zarr.open_group(tmp / "in.zarr", mode="w", zarr_format=2)
    g.attrs.put({"multiscales": [{
        "version": "0.4", "axes": [{"name": d, "type": "space"} for d in dims],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * len(shape)}]}]}]})
    arr = g.create_array(
        "0", shape=tuple(shape), chunks=chunks, dtype=dtype, order=order,
        compressors=_CODECS[codec](), fill_value=0,
        filters=[numcodecs.Delta(dtype=dtype)] if delta else None,
        chunk_key_encoding={"name": "v2", "separator": data.draw(st.sampled_from("./"))})
    values = np.random.default_rng(0).integers(0, 200, shape).astype(dtype)
    values[tuple(slice(0, c) for c in chunks)] = 0  # an all-fill chunk may be absent
    arr[:] = values
    up = importlib.import_module("voxzarr.convert.upgrade")
    plan = up._plan_array("0", arr, shards, list(dims), "in.zarr")
    # encoded chunks are copied as they are exactly when zarr v3 has the same codec
    assert plan.raw == (codec != "zlib" and order == "C" and not delta)
    out = vz.upgrade(tmp / "in.zarr", tmp / "out.zarr", shards=shards)
    new = zarr.open_group(out, mode="r")["0"]
    assert new.metadata.dimension_names == tuple(dims)
    np.testing.assert_array_equal(new[:], values)
    np.testing.assert_array_equal(vz.open_image(out).values, values)
