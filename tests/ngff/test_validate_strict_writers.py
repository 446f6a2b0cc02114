"""Everything voxzarr writes passes ``voxzarr validate --strict``.

Each writer (images with and without a pyramid in NGFF 0.4 and 0.5, label images, DataTree
levels, series and halo layouts, archive conversion, 0.4 -> 0.5 upgrades, the pyramid and
isotropic commands) is run on a small image and its output validated with ``strict=True``:
no error and no warning.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.ngff.emit import MAX_LABEL_COLORS, label_colors
from voxzarr.ngff.validate import ValidationResult


def _img():
    rng = np.random.default_rng(0)
    return vz.from_array(rng.integers(0, 1000, (8, 64, 64)).astype("uint16"), "zyx",
                         voxel_size={"z": 2.0, "y": 0.5, "x": 0.5}, units="micrometer")


def _labels():
    a = (np.arange(8 * 64 * 64).reshape(8, 64, 64) // 4096 % 5).astype("uint8")
    return vz.from_array(a, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5},
                         units="micrometer")


def _strict(path) -> ValidationResult:
    r = vz.validate(path, strict=True)
    assert r.valid and r.issues == (), r.message
    return r


def _ome(path, sub: str = "") -> dict:
    p = path / sub
    if (p / "zarr.json").exists():
        return json.loads((p / "zarr.json").read_text())["attributes"]["ome"]
    return json.loads((p / ".zattrs").read_text())


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("pyramid", [False, True])
def test_to_ome_zarr_with_labels(tmp_path, version, pyramid):
    path = tmp_path / "img.ome.zarr"
    _img().vox.to_ome_zarr(path, version=version, pyramid=pyramid, progress=False,
                           labels={"cells": _labels()})
    _strict(path)
    ms = _ome(path)["multiscales"][0]
    if pyramid:
        assert ms["type"] == "mean" and ms["metadata"]["method"] == "voxzarr.pyramid (mean)"
    else:
        assert ms["type"] == "none" and ms["metadata"]["method"] == "none"
    label = _ome(path, "labels/cells")
    assert [c["label-value"] for c in label["image-label"]["colors"]] == [0, 1, 2, 3, 4]
    assert label["image-label"]["colors"][0]["rgba"] == [0, 0, 0, 0]
    assert label["multiscales"][0]["type"] == ("mode" if pyramid else "none")


def test_tree_levels_keep_their_method(tmp_path):
    img = _img()
    path = tmp_path / "tree.ome.zarr"
    vz.to_ome_zarr(img.vox.pyramid(levels=2), path, progress=False,
                   labels={"cells": _labels().vox.pyramid(levels=2, method="mode")})
    _strict(path)
    assert _ome(path)["multiscales"][0]["type"] == "mean"
    assert _ome(path, "labels/cells")["multiscales"][0]["type"] == "mode"


def test_user_colors_are_kept(tmp_path):
    lab = _labels()
    lab.attrs["image-label"] = {"colors": [{"label-value": 3, "rgba": [1, 2, 3, 4]}]}
    path = tmp_path / "img.ome.zarr"
    _img().vox.to_ome_zarr(path, progress=False, labels={"cells": lab})
    _strict(path)
    assert _ome(path, "labels/cells")["image-label"]["colors"] == [
        {"label-value": 3, "rgba": [1, 2, 3, 4]}]


def test_label_colors_are_capped_and_stable():
    many = label_colors(range(10_000))
    assert len(many) == MAX_LABEL_COLORS and many[0] == {"label-value": 0, "rgba": [0, 0, 0, 0]}
    # a value keeps its colour whatever else is present
    assert label_colors([7])[1] == label_colors(range(20))[7]
    assert all(0 <= x <= 255 for c in many for x in c["rgba"])


def test_series_and_back(tmp_path):
    tim = vz.from_array(np.arange(6 * 16 * 16, dtype="uint16").reshape(6, 16, 16), "tyx",
                        voxel_size={"y": 1.0, "x": 1.0}, units="micrometer")
    tim.vox.to_series(tmp_path / "s.zarr", memory="64MB")
    _strict(tmp_path / "s.zarr")
    vz.open_series(tmp_path / "s.zarr").vox.to_images(tmp_path / "back.ome.zarr")
    _strict(tmp_path / "back.ome.zarr")


def test_halo(tmp_path):
    _img().vox.to_halo(tmp_path / "h.ome.zarr", depth=2)
    _strict(tmp_path / "h.ome.zarr")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_convert_tiff(tmp_path, version):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 32, 32), "uint16"), imagej=True,
                     resolution=(2.0, 2.0), metadata={"spacing": 1.5, "unit": "um",
                                                      "axes": "ZYX"})
    vz.convert(tmp_path / "a.tif", tmp_path / "c.ome.zarr", version=version, progress=False)
    _strict(tmp_path / "c.ome.zarr")
    vz.convert(tmp_path / "a.tif", tmp_path / "p.ome.zarr", version=version, pyramid=True,
               progress=False)
    _strict(tmp_path / "p.ome.zarr")


def test_convert_frames(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        tifffile.imwrite(frames / f"f{i}.tif", np.full((16, 16), i, "uint16"))
    vz.convert(frames, tmp_path / "f.ome.zarr", voxel_size=0.5, unit="um", progress=False)
    _strict(tmp_path / "f.ome.zarr")


@pytest.mark.parametrize("pyramid", [False, True])
def test_upgrade(tmp_path, pyramid):
    src = tmp_path / "v04.ome.zarr"
    _img().vox.to_ome_zarr(src, version="0.4", pyramid=pyramid, progress=False,
                           labels={"cells": _labels()})
    vz.upgrade(src, tmp_path / "v05.ome.zarr")
    r = _strict(tmp_path / "v05.ome.zarr")
    assert r.version == "0.5"


def test_pyramid_and_isotropic_commands(tmp_path, capsys):
    path = tmp_path / "img.ome.zarr"
    _img().vox.to_ome_zarr(path, progress=False)
    assert main(["pyramid", str(path), "--levels", "2"]) == 0
    _strict(path)
    assert _ome(path)["multiscales"][0]["type"] == "mean"
    assert main(["isotropic", str(path), str(tmp_path / "iso.ome.zarr")]) == 0
    _strict(tmp_path / "iso.ome.zarr")
    assert main(["validate", str(tmp_path / "iso.ome.zarr"), "--strict"]) == 0
    capsys.readouterr()


def test_zip_and_memory_stores_strict(tmp_path):
    _img().vox.to_ome_zarr(tmp_path / "img.ome.zarr.zip", progress=False)
    _strict(tmp_path / "img.ome.zarr.zip")
    mem = zarr.storage.MemoryStore()
    vz.to_ome_zarr(_img(), mem, version="0.4", progress=False,
                   labels={"cells": _labels()})
    _strict(mem)
