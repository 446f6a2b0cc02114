"""vz.info (voxzarr.inspect) / `voxzarr info`: geometry, storage layout and sizes of every level."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.inspect import format_info, info


def _disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _image(shape=(4, 30, 40), dtype="uint16", **kw) -> xr.DataArray:
    data = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
    kw.setdefault("voxel_size", {"z": 2.0, "y": 0.5, "x": 0.5})
    return vz.from_array(data, "zyx"[-len(shape):] if len(shape) <= 3 else "czyx", **kw)


def test_sharded_v3_store(tmp_path):
    path = tmp_path / "a.ome.zarr"
    img = _image(translation={"z": 10.0, "y": 0.0, "x": -1.0})
    vz.to_ome_zarr(img, path, chunks=(2, 16, 16), shards=(4, 32, 32))
    rep = info(path)
    assert rep["ngff_version"] == "0.5" and rep["zarr_format"] == 3
    assert rep["container"] == "image" and rep["layout"] == "image"
    assert [a["name"] for a in rep["axes"]] == ["z", "y", "x"]
    assert rep["axes"][0] == {"name": "z", "type": "space", "unit": "micrometer"}
    (lv,) = rep["levels"]
    assert lv["path"] == "0"
    assert lv["shape"] == [4, 30, 40] and lv["dtype"] == "uint16"
    assert lv["voxel_size"] == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert lv["translation"] == {"z": 10.0, "y": 0.0, "x": -1.0}
    assert lv["units"] == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    assert lv["chunks"] == [2, 16, 16]
    arr = zarr.open_array(path / "0", mode="r")
    assert lv["shards"] == list(arr.shards)
    assert [c["name"] for c in lv["codecs"]] == ["bytes", "blosc"]
    blosc = lv["codecs"][1]["configuration"]
    assert (blosc["cname"], blosc["clevel"], blosc["shuffle"]) == ("zstd", 3, "shuffle")
    assert lv["raw_bytes"] == 4 * 30 * 40 * 2
    assert lv["stored_bytes"] == _disk_bytes(path / "0")
    assert lv["ratio"] == round(lv["raw_bytes"] / lv["stored_bytes"], 3)
    assert rep["stored_bytes"] == lv["stored_bytes"]
    json.dumps(rep)  # plain JSON types only


def test_level_prefix_does_not_count_siblings(tmp_path):
    """Level "0" must not include the objects of a sibling level named "01"."""
    a = _image()
    b = a.isel(y=slice(0, None, 2), x=slice(0, None, 2))
    tree = xr.DataTree.from_dict({"0": xr.Dataset({"image": a}), "01": xr.Dataset({"image": b})})
    path = tmp_path / "p.ome.zarr"
    vz.to_ome_zarr(tree, path)
    rep = info(path)
    assert [lv["path"] for lv in rep["levels"]] == ["0", "01"]
    assert rep["levels"][0]["stored_bytes"] == _disk_bytes(path / "0")
    assert rep["levels"][1]["stored_bytes"] == _disk_bytes(path / "01")
    assert rep["levels"][1]["voxel_size"] == {"z": 2.0, "y": 1.0, "x": 1.0}
    assert rep["levels"][1]["translation"] == {"z": 0.0, "y": 0.0, "x": 0.0}


def test_zip_v2_store(tmp_path):
    path = tmp_path / "a.ome.zarr.zip"
    vz.to_ome_zarr(_image(dtype="uint8"), path, version="0.4")
    rep = info(path)
    assert rep["ngff_version"] == "0.4" and rep["zarr_format"] == 2
    (lv,) = rep["levels"]
    assert [c["name"] for c in lv["codecs"]] == ["blosc"]
    assert lv["shards"] is None
    import zipfile

    with zipfile.ZipFile(path) as z:
        expected = sum(i.file_size for i in z.infolist() if i.filename.startswith("0/"))
    assert lv["stored_bytes"] == expected
    assert "blosc(zstd, clevel=3, shuffle)" in format_info(rep)


def test_memory_store_channels_labels_and_voxzarr_key():
    store = zarr.storage.MemoryStore()
    img = _image(shape=(2, 3, 8, 8), voxel_size={"z": 1.0, "y": 0.25, "x": 0.25},
                 channel_names=["DAPI", "GFP"])
    lab = vz.from_array(np.zeros((3, 8, 8), "uint16"), "zyx",
                        voxel_size={"z": 1.0, "y": 0.25, "x": 0.25})
    vz.to_ome_zarr(img, store, labels={"cells": lab})
    root = zarr.open_group(store, mode="r+")
    root.attrs["voxzarr"] = {"version": 1, "layout": "series", "block": [1, 4, 4]}
    root.create_array("halo/0", shape=(3, 12, 12), chunks=(3, 12, 12), dtype="uint16")
    rep = info(store)
    assert rep["channels"] == ["DAPI", "GFP"]
    assert rep["labels"] == ["cells"]
    assert rep["layout"] == "series"
    assert rep["voxzarr"] == {"version": 1, "layout": "series", "block": [1, 4, 4]}
    assert [a["path"] for a in rep["other_arrays"]] == ["halo/0"]
    assert rep["other_arrays"][0]["shape"] == [3, 12, 12]
    text = format_info(rep)
    assert "DAPI, GFP" in text and "cells" in text and "halo/0" in text
    assert "layout=series" in text


def test_format_info_rows(tmp_path):
    path = tmp_path / "a.ome.zarr"
    vz.to_ome_zarr(_image(), path, chunks=(2, 16, 16))
    text = format_info(info(path))
    lines = text.splitlines()
    assert lines[0].split() == ["image", str(path)]
    assert "NGFF 0.5, zarr v3" in lines[1]
    row = next(line for line in lines if line.startswith("0 "))
    assert "4 x 30 x 40" in row and "uint16" in row
    assert "2, 0.5, 0.5 micrometer" in row
    assert "2 x 16 x 16" in row
    assert "9.4 KiB" in row  # raw 9600 bytes


def test_real_bioformats2raw_series(data_dir):
    root = data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "fake-series-2.zarr"
    rep = info(root)
    assert rep["container"] == "bioformats2raw" and rep["series"] == ["0", "1"]
    assert rep["ngff_version"] == "0.4" and rep["zarr_format"] == 2
    assert [lv["shape"] for lv in rep["levels"]] == [[1, 1, 1, 512, 512], [1, 1, 1, 256, 256]]
    assert rep["levels"][1]["voxel_size"] == {"t": 1.0, "z": 1.0, "y": 2.0, "x": 2.0}
    assert [c["name"] for c in rep["levels"][0]["codecs"]] == ["blosc"]
    assert rep["levels"][0]["stored_bytes"] == _disk_bytes(root / "0" / "0")
    rep1 = info(root, series=1)
    assert rep1["image"].endswith(os.sep + "1") or rep1["image"].endswith("/1")


@pytest.mark.parametrize(("name", "version"), [("v1", "0.1"), ("v2", "0.2")])
def test_real_legacy(data_dir, name, version):
    root = data_dir / "ome-zarr" / "legacy-v0.1-v0.2" / name
    rep = info(root)
    assert rep["ngff_version"] == version
    assert rep["levels"][0]["shape"] == [1, 2, 1, 16, 16]
    assert rep["levels"][0]["raw_bytes"] == 512
    assert rep["levels"][0]["stored_bytes"] == _disk_bytes(root / "0")


def test_real_plate(data_dir):
    rep = info(data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "plate-rows-2.zarr")
    assert rep["container"] == "plate"
    assert rep["image"].endswith("A/1/0")


def test_cli_table_and_json(tmp_path, capsys):
    path = tmp_path / "a.ome.zarr"
    vz.to_ome_zarr(_image(), path)
    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out.strip() == format_info(info(path))
    assert main(["info", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(info(path)))


def test_missing_store(tmp_path, capsys):
    with pytest.raises(vz.StoreError):
        info(tmp_path / "nope.ome.zarr")
    assert main(["info", str(tmp_path / "nope.ome.zarr")]) == 1
    assert "nope.ome.zarr" in capsys.readouterr().err


def test_exported_function_not_module():
    """``vz.info`` stays the function whatever submodules are imported (the report code is
    ``voxzarr.inspect``: a submodule ``voxzarr.info`` would rebind the package attribute)."""
    for mod in pkgutil.walk_packages(vz.__path__, "voxzarr."):
        try:
            importlib.import_module(mod.name)
        except ImportError:  # optional dependencies (cupy, ...)
            continue
    assert not isinstance(vz.info, types.ModuleType)
    assert vz.info is info and vz.format_info is format_info


def test_info_is_typed_and_still_a_dict(tmp_path):
    import copy
    import pickle

    from voxzarr.inspect import ImageInfo, LevelInfo

    path = tmp_path / "t.ome.zarr"
    vz.to_ome_zarr(_image(), path, chunks=(2, 16, 16))
    rep = info(path)
    assert isinstance(rep, ImageInfo) and isinstance(rep.levels[0], LevelInfo)
    assert rep.levels[0].voxel_size == rep["levels"][0]["voxel_size"] == {
        "z": 2.0, "y": 0.5, "x": 0.5}
    assert rep.ngff_version == rep["ngff_version"] == "0.5"
    assert repr(rep) == format_info(rep)  # shown as the `voxzarr info` table
    plain = json.loads(json.dumps(rep))
    assert rep == plain and rep.to_dict() == plain and format_info(plain) == format_info(rep)
    assert pickle.loads(pickle.dumps(rep)) == rep and copy.deepcopy(rep) == rep
    with pytest.raises(TypeError, match="read-only"):
        rep["name"] = "other"
    assert "0.5" in repr(rep) and "t.ome.zarr" in repr(rep)
